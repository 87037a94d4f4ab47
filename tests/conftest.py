"""Shared fixtures: one engine session for the whole run, a fresh lakehouse home per test.

The engine is started once per test process (see phmx.engine); each test gets its own
PHMX_HOME so tables never leak between tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PHMX_SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("PHMX_LOG_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def spark():
    """The process-wide SparkSession (embedded Sail unless SPARK_REMOTE is set)."""
    from phmx.engine import get_spark

    return get_spark()


@pytest.fixture
def phmx_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private PHMX_HOME (landing, lakehouse, outbox, publish, keys) for one test."""
    home = tmp_path / "var"
    home.mkdir()
    monkeypatch.setenv("PHMX_HOME", str(home))
    for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                "PHMX_KEYS_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def land(phmx_home: Path):
    """Write a file into the landing zone: land(submitter, feed, period, name, rows or text)."""

    def _land(submitter: str, feed: str, period: str, name: str, content: bytes | str | list[str]) -> Path:
        if isinstance(content, list):
            content = "\n".join(content) + "\n"
        p = phmx_home / "landing" / submitter / feed / period / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return p

    return _land


def csv_rows(header: list[str], rows: list[dict[str, str]], sep: str = ",") -> list[str]:
    """Header + rows as delimited lines (missing keys empty)."""
    return [sep.join(header)] + [sep.join(r.get(h, "") for h in header) for r in rows]
