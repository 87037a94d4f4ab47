"""Open an LHJ package's report.html in Debian's headless Chromium (Playwright) and read what a
reader sees: console errors, each chart's legend and mark colours, the order of bars (read by
tests/chart_reader.py, shared with the ECM dashboard test), the suppressed-cell total; saves a
full-page screenshot under var/artifacts/ (git-ignored; CI keeps it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts" / "report"


@dataclass
class Seen:
    console_errors: list[str] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    suppressed_total: str = ""
    text: str = ""
    screenshot: Path | None = None


def open_report(path: Path, name: str) -> Seen:
    """Render ``path`` in Chromium and return what was seen (screenshot saved as ``name``.png)."""
    from chart_reader import browse, read_charts

    seen = Seen()
    with browse(path) as (page, errors):
        seen.console_errors = errors
        seen.charts = read_charts(page)
        seen.suppressed_total = page.inner_text("#suppressed-total")
        seen.text = page.inner_text("body")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        seen.screenshot = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(seen.screenshot), full_page=True)
    return seen
