"""Small helpers shared by tests in several folders (import as ``from testkit import ...``)."""

from __future__ import annotations


def csv_rows(header: list[str], rows: list[dict[str, str]], sep: str = ",") -> list[str]:
    """Header + rows as delimited lines (missing keys empty)."""
    return [sep.join(header)] + [sep.join(r.get(h, "") for h in header) for r in rows]
