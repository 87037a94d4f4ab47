"""Helpers shared by the intake tests: landing files, reading receipts, running process_file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from jobs.ingest.landing import LandedFile
from jobs.ingest.process import FileOutcome, process_file
from jobs.ingest.specs import load_specs

RECEIVED = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)


def land(home: Path, submitter: str, feed: str, period: str, name: str, content: bytes | str) -> Path:
    p = home / "landing" / submitter / feed / period / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return p


def receipts(home: Path, submitter: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((home / "outbox" / submitter).rglob("*.json"))]


def run_file(data: bytes, feed: str, submitter: str, *, period: str = "2025-01", name: str = "f.dat",
             chunk_rows: int = 100_000) -> FileOutcome:
    """process_file on bytes, as intake would for landing/<submitter>/<feed>/<period>/<name>."""
    lf = LandedFile(uri=name, relpath=f"{submitter}/{feed}/{period}/{name}", submitter=submitter, feed=feed,
                    period=period, name=name, size=len(data), layout_ok=True)
    return process_file(lf, data, load_specs(), received_at=RECEIVED, chunk_rows=chunk_rows)


def accepted_rows(outcome: FileOutcome) -> list[dict]:
    if not outcome.accepted:
        return []
    rows = pa.concat_tables(outcome.accepted).to_pylist()
    return sorted(rows, key=lambda r: r["row_number"])


def assert_conserved(outcome: FileOutcome) -> None:
    """Landed = accepted + quarantined; every quarantined record has a quarantine row; counts agree."""
    r = outcome.receipt
    assert r.rows_landed == r.rows_accepted + r.rows_quarantined, r
    assert sum(t.num_rows for t in outcome.accepted) == r.rows_accepted
    quarantined_rows = {q["row_number"] for q in outcome.quarantine}
    assert len(quarantined_rows) == r.rows_quarantined
    accepted = {row["row_number"] for row in accepted_rows(outcome)}
    assert not accepted & quarantined_rows
    assert len(accepted) == r.rows_accepted  # row numbers are unique per file
