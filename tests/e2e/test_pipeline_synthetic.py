"""The pipeline on the synthetic submitters: conservation per file and idempotency per period."""

from __future__ import annotations

import json

import pytest

from phmx import lakehouse
from phmx.pipeline import run_pipeline
from phmx.tables import ALL, SUBMISSIONS

# Columns that record when something happened; everything else must be identical on a rerun. Identity
# runs in full mode by default, so a rerun scores every pair again: scored_at is the time it did.
_CLOCK_COLUMNS = {"ingested_at", "received_at", "quarantined_at", "linked_at", "decided_at", "recorded_at",
                  "scored_at", "run_id", "as_of", "generated_at", "published_at"}
# gold.feed_log records deliveries, which are events, so a rerun adds rows. A rerun over the same data
# makes packages equal to the published ones: they are logged `unchanged` against that version, and
# what each carries must not change.
_DELIVERY_LOG = "gold.feed_log"
_DELIVERY_CONTENT = ("recipient", "feed", "period", "version", "files", "bytes", "cells", "suppressed_cells",
                     "members")


@pytest.fixture(scope="module")
def synthetic_home(tmp_path_factory):
    from phmx.synth import generate

    home = tmp_path_factory.mktemp("synthetic") / "var"
    generate(home, members=400, counties=["06001", "06075"], seed=7, start="2025-01", months=3)
    return home


def _snapshot(spark) -> dict[str, list]:
    snap = {}
    for t in ALL:
        if t.layer in ("bronze", "silver", "gold") and t.fqn != _DELIVERY_LOG and lakehouse.exists(t):
            df = lakehouse.read(spark, t)
            cols = [c for c in df.columns if c not in _CLOCK_COLUMNS]
            snap[t.fqn] = sorted(map(repr, (tuple(r) for r in df.select(*cols).collect())))
    for name in ("enrollment", "claims", "mh_csi", "sud_caloms", "dental_claims", "immunizations"):
        fqn = f"bronze.{name}"
        if lakehouse.exists(fqn):
            df = lakehouse.read(spark, fqn)
            cols = [c for c in df.columns if c not in _CLOCK_COLUMNS]
            snap[fqn] = sorted(map(repr, (tuple(r) for r in df.select(*cols).collect())))
    return snap


@pytest.mark.slow
def test_conservation_and_idempotency_on_synthetic_submitters(spark, synthetic_home, monkeypatch):
    monkeypatch.setenv("PHMX_HOME", str(synthetic_home))
    first = {r.stage: r for r in run_pipeline(period="2025-02", run_id="run-a")}
    ingest = first["ingest"].counts
    assert ingest["files"] > 0 and ingest["rows_landed"] == ingest["rows_accepted"] + ingest["rows_quarantined"]
    # Conservation holds for every single file, and every receipt says the same as the ledger.
    subs = lakehouse.read(spark, SUBMISSIONS).collect()
    assert subs and all(s.period == "2025-02" for s in subs)
    for s in subs:
        assert s.rows_landed == s.rows_accepted + s.rows_quarantined, s.source_file
        receipt = json.loads(open(s.receipt_uri).read())
        assert (receipt["rows_landed"], receipt["rows_accepted"], receipt["rows_quarantined"]) == (
            s.rows_landed, s.rows_accepted, s.rows_quarantined)
    q = lakehouse.read(spark, "bronze.quarantine")
    for s in subs:
        bad_rows = q.where(q.submission_id == s.submission_id).select("row_number").distinct().count()
        assert bad_rows == s.rows_quarantined, s.source_file
    before = _snapshot(spark)
    second = {r.stage: r for r in run_pipeline(period="2025-02", run_id="run-b")}
    assert second["ingest"].counts["files"] == 0
    assert second["ingest"].counts["skipped_already_ingested"] == ingest["files"]
    assert _snapshot(spark) == before
    log = lakehouse.read(spark, _DELIVERY_LOG)
    runs = {rid: sorted(tuple(r) for r in log.where(log.run_id == rid).select(*_DELIVERY_CONTENT).collect())
            for rid in ("run-a", "run-b")}
    assert runs["run-a"] and runs["run-a"] == runs["run-b"]
    assert {r.status for r in log.where(log.run_id == "run-a").collect()} == {"published"}
    assert {(r.version, r.status, r.ledger_seq) for r in log.where(log.run_id == "run-b").collect()} == {
        (1, "unchanged", None)}
