"""Ingest with files parsed in worker processes (jobs.ingest.parse_pool) writes what ingest in one
process writes: the same bronze rows, quarantine, ledger and receipts, duplicates and rejected
files included; a worker that dies costs no file."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from jobs import ingest
from jobs.ingest import parse_pool
from jobs.ingest import stage as ingest_stage
from phmx import lakehouse, storage
from phmx.context import RunContext

# Clock columns: when the run happened, not what it wrote.
CLOCKS = {"ingested_at", "received_at", "quarantined_at"}


def _landing(phmx_home: Path, synth_root: Path) -> None:
    shutil.copytree(synth_root, phmx_home / "landing")
    # A rejected file (a truncated 834) and the same bytes as another file under a second name (a duplicate).
    x12 = next((phmx_home / "landing" / "mcp_sierra" / "enrollment_834").rglob("*.x12"))
    x12.write_bytes(x12.read_bytes()[: len(x12.read_bytes()) // 2])
    enr = next((phmx_home / "landing" / "mcp_bluecoast" / "enrollment").rglob("*.txt"))
    shutil.copy(enr, enr.with_name("again_" + enr.name))


def _written(spark, home: Path) -> dict[str, object]:
    """Every bronze table's rows (sorted, clock columns aside) and every receipt (clock aside)."""
    out: dict[str, object] = {}
    for folder in sorted((home / "lakehouse" / "bronze").iterdir()):
        df = lakehouse.read(spark, f"bronze.{folder.name}")
        cols = sorted(c for c in df.columns if c not in CLOCKS)
        # The receipts' addresses hold the home folder: the same relative place is the same.
        out[folder.name] = sorted(json.dumps(r, sort_keys=True, default=str).replace(str(home), "<home>")
                                  for r in df.select(*cols).toArrow().to_pylist())
    for p in sorted((home / "outbox").rglob("*.json")):
        doc = json.loads(p.read_text())
        doc.pop("received_at", None)
        out[str(p.relative_to(home))] = doc
    return out


def _ingest(spark, home: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> tuple[dict, dict]:
    monkeypatch.setenv("PHMX_HOME", str(home))
    monkeypatch.setenv("PHMX_INGEST_WORKERS", str(workers))
    monkeypatch.setattr(parse_pool, "POOL_MIN_BYTES", 0)  # the test's files are small
    result = ingest.run(spark, RunContext.new())
    return result.counts, _written(spark, home)


@pytest.mark.slow
def test_ingest_with_worker_processes_writes_what_one_process_writes(spark, phmx_home, synth_root, tmp_path,
                                                                     monkeypatch):
    _landing(phmx_home, synth_root)
    other = tmp_path / "serial"
    other.mkdir()
    shutil.copytree(phmx_home / "landing", other / "landing")
    started: list[int] = []
    real_init = parse_pool.FileParser.__enter__

    def spy(self):
        started.append(self.workers)
        return real_init(self)

    monkeypatch.setattr(parse_pool.FileParser, "__enter__", spy)
    released: list = []
    real_release = ingest_stage.release_rows

    def keep(outcomes):
        real_release(outcomes)
        released.extend(outcomes)

    monkeypatch.setattr(ingest_stage, "release_rows", keep)
    staged: list[str] = []
    real_write = ingest_stage.bronze.write

    def spy_write(*args, parts=(), **kwargs):
        staged.extend(parts)
        return real_write(*args, parts=parts, **kwargs)

    monkeypatch.setattr(ingest_stage.bronze, "write", spy_write)
    counts, pooled = _ingest(spark, phmx_home, monkeypatch, 2)
    # Every file's rows were let go once written and recorded; its receipt stays.
    assert len(released) == counts["files"]
    assert all(not o.accepted and not o.accepted_parts and not o.quarantine and o.receipt.submission_id
               for o in released)
    # The workers staged their accepted rows as Parquet parts (not sent back), and no part is left
    # anywhere once the stage ended (moved into bronze's staging, which is removed after its commit).
    assert staged and all(p.endswith(".parquet") for p in staged)
    assert not any(Path(p).exists() for p in staged)
    assert not [p for p in (phmx_home / "lakehouse" / "work").rglob("*") if p.name.startswith("ingest_")]
    released.clear()
    counts1, serial = _ingest(spark, other, monkeypatch, 1)
    assert started == [2, 1]
    assert counts == counts1
    assert counts["duplicate_files"] == 1 and counts["rejected_files"] == 1
    assert counts["rows_landed"] == counts["rows_accepted"] + counts["rows_quarantined"] > 0
    assert pooled.keys() == serial.keys()
    for key in pooled:
        assert pooled[key] == serial[key], key
    # A second run with the pool finds every file ingested before and writes nothing new.
    again, _ = _ingest(spark, phmx_home, monkeypatch, 2)
    assert again["files"] == 0 and again["skipped_already_ingested"] > 0


def _die(*_args, **_kwargs):
    os._exit(1)  # a worker killed mid-file (out of memory, say)


def test_a_dead_worker_costs_no_file(synth_root, monkeypatch):
    """The pool breaks on the first file; that file and every later one are parsed in this process."""
    from datetime import UTC, datetime

    from jobs.ingest.landing import scan
    from jobs.ingest.process import process_file
    from jobs.ingest.specs import load_specs

    specs = load_specs()
    received = datetime(2025, 2, 1, tzinfo=UTC)
    files = [lf for lf in scan(str(synth_root)) if lf.feed in ("enrollment", "claims", "pharmacy")]
    assert len(files) >= 3
    items = [parse_pool.Submission(lf, lf.feed, storage.read_bytes(lf.uri), f"sha{i}", f"sha{i}", f"sid{i}")
             for i, lf in enumerate(files)]
    monkeypatch.setattr(parse_pool, "_process_in_worker", _die)
    with parse_pool.FileParser(specs, received, workers=2) as parser:
        got = [parser.outcome(item) for item in parser.ahead(items)]
        assert parser._pool is None  # noqa: SLF001 - given up after the worker died
    for item, outcome in zip(items, got, strict=True):
        want = process_file(item.lf, item.data, specs, received_at=received, sha256=item.sha)
        assert outcome.receipt == want.receipt and outcome.receipt.status != "rejected"
        assert [t.to_pylist() for t in outcome.accepted] == [t.to_pylist() for t in want.accepted]


def test_small_runs_parse_in_this_process(monkeypatch):
    monkeypatch.setenv("PHMX_INGEST_WORKERS", "4")
    assert parse_pool.ingest_workers(parse_pool.POOL_MIN_BYTES - 1) == 1
    assert parse_pool.ingest_workers(parse_pool.POOL_MIN_BYTES) == 4
    monkeypatch.setenv("PHMX_INGEST_WORKERS", "1")
    assert parse_pool.ingest_workers(10 * parse_pool.POOL_MIN_BYTES) == 1
