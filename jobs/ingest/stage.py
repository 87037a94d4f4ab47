"""Ingest: landing -> bronze, with per-record validation, quarantine, receipts and a submissions ledger.

For every landed file: parse with the feed's parser (delimited, fixed-width, X12 834, HL7 VXU,
FHIR NDJSON), validate every record against the feed spec (vectorised), write accepted rows to
``bronze.<spec.bronze_table>`` with lineage, quarantined records to ``bronze.quarantine`` with
their rule, record the submission in ``bronze.submissions`` and write a receipt to the
submitter's outbox. One bad file never stops the others.

Conservation: for every file, records landed = records accepted + records quarantined.
Idempotency: submission ids are deterministic; a file already processed is skipped; the same
bytes sent again elsewhere get a ``duplicate`` receipt and change nothing. A corrected file for
the same (submitter, feed, period) replaces the earlier submission's rows when the feed spec
says ``on_resubmit: replace``; both submissions stay in the ledger.
Cross-file: claims are checked against the enrollment the hub holds (``within_coverage``
rules, warnings) after the batch's bronze rows are written; enrollment files are processed
first so that a plan's roster and claims sent together see each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobs.ingest import bronze, bulk, join
from jobs.ingest.acknowledgments import acknowledge
from jobs.ingest.coverage import check_within_coverage, coverage_tables
from jobs.ingest.landing import LandedFile, path_problem, scan, submission_id
from jobs.ingest.parse_pool import FileParser, Submission, ingest_workers
from jobs.ingest.process import FileOutcome, bronze_columns, bronze_schema, process_file, submission_sha
from jobs.ingest.receipts import Receipt, receipt_prefix, write_receipt
from jobs.ingest.specs import load_specs
from phmx import lakehouse, storage
from phmx.context import RunContext, StageResult
from phmx.errors import PhmxError
from phmx.feedspec import FeedSpec
from phmx.log import get_logger
from phmx.tables import SUBMISSIONS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import SparkSession

__all__ = ["FileOutcome", "bronze_columns", "bronze_schema", "process_file", "run"]

log = get_logger(__name__)

FLUSH_ROWS = 1_000_000


def _previous_submissions(spark: SparkSession) -> list[dict[str, Any]]:
    if not lakehouse.exists(SUBMISSIONS):
        return []
    cols = ["submission_id", "submitter", "feed", "period", "source_file", "source_file_sha256", "status",
            "rows_landed"]
    return [r.asDict() for r in lakehouse.read(spark, SUBMISSIONS).select(*cols).collect()]


def _dedupable(status: str, rows_landed: int | None) -> bool:
    """Whether later copies of these bytes are ``duplicate``: not for a rejected file (a resend may
    follow a fix of the folder or the spec) nor a header-only one (the same empty file withdrawing
    two periods is two withdrawals, not one file sent twice)."""
    return status not in ("rejected", "duplicate") and bool(rows_landed)


def _ordered(files: list[LandedFile], specs: dict[str, FeedSpec]) -> list[LandedFile]:
    """Files whose rows other feeds are checked against (enrollment) go first; otherwise path order."""
    first = coverage_tables(specs)

    def rank(lf: LandedFile) -> int:
        spec = specs.get(lf.feed)
        return 0 if spec is not None and spec.bronze_table in first else 1

    return sorted(files, key=lambda lf: (rank(lf), lf.relpath))


def run(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Ingest every landed file of the context's period (or all periods)."""
    cfg = ctx.settings
    specs = load_specs()
    previous = _previous_submissions(spark)
    known_ids = {p["submission_id"] for p in previous}
    by_sha: dict[tuple[str, str, str], str] = {
        (p["submitter"], p["feed"], p["source_file_sha256"]): p["submission_id"]
        for p in previous if _dedupable(p["status"], p["rows_landed"])
    }

    landed = scan(cfg.landing_root, ctx.period)
    seen = {p["source_file"] for p in previous}
    workers = ingest_workers(sum(lf.size for lf in landed if lf.relpath not in seen))
    # Parse workers stage accepted rows as Parquet here (PHI: the private scratch of this process,
    # removed when the stage ends) instead of sending them back (:mod:`jobs.ingest.parse_pool`).
    scratch = lakehouse.Scratch(spark, "ingest", root=storage.join(cfg.lakehouse_root, lakehouse.SCRATCH_LAYER))
    with scratch:
        return _run(spark, ctx, specs, previous, by_sha, known_ids, landed, workers,
                    scratch.folder("parsed") if workers > 1 else None)


def _run(spark: SparkSession, ctx: RunContext, specs: dict[str, FeedSpec], previous: list[dict[str, Any]],
         by_sha: dict[tuple[str, str, str], str], known_ids: set[str], landed: list[LandedFile], workers: int,
         stage_dir: str | None) -> StageResult:
    cfg = ctx.settings
    received_at = datetime.now(UTC).replace(microsecond=0)
    buffers: dict[str, list[FileOutcome]] = {}
    buffered_rows = 0
    outcomes: list[FileOutcome] = []
    unrecorded: list[FileOutcome] = []
    counts = {"files": 0, "skipped_already_ingested": 0, "rows_landed": 0, "rows_accepted": 0,
              "rows_quarantined": 0, "rejected_files": 0, "duplicate_files": 0}
    per_feed: dict[str, dict[str, int]] = {}
    with FileParser(specs, received_at, workers=workers, stage_dir=stage_dir) as parser:
        for item in parser.ahead(_submissions(landed, specs, known_ids, counts)):
            lf, routed, data, sha, sha_key, sid = item.lf, item.routed, item.data, item.sha, item.sha_key, item.sid
            counts["files"] += 1
            # The path is judged first: a misplaced file gets its path error, never ``duplicate``.
            placed = replace(lf, feed=routed)
            dup = by_sha.get((lf.submitter, routed, sha_key)) if path_problem(placed, specs) is None else None
            if dup:
                parser.drop(item)
                spec = specs.get(routed)
                r = Receipt(sid, lf.submitter, routed, lf.period, lf.relpath, sha,
                            received_at.isoformat(timespec="seconds"), "duplicate", duplicate_of=dup,
                            notes=["the same bytes were received before; nothing was changed"],
                            spec_version=spec.version if spec else "")
                outcome = FileOutcome(r, None)
                counts["duplicate_files"] += 1
            else:
                try:
                    outcome = parser.outcome(item)
                except PhmxError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
                    log.error("internal error on submission %s: %s", sid, type(exc).__name__)
                    outcome = FileOutcome(Receipt(sid, lf.submitter, routed, lf.period, lf.relpath, sha,
                                                  received_at.isoformat(timespec="seconds"), "rejected",
                                                  file_errors=[{"rule_id": "internal_error",
                                                                "message": type(exc).__name__}]), None)
                try:
                    outcome.acknowledgments = acknowledge(data, outcome, received_at)
                except Exception as exc:  # noqa: BLE001 - a missing acknowledgment never costs the submission
                    log.error("no acknowledgment for submission %s: %s", sid, type(exc).__name__)
                if _dedupable(outcome.receipt.status, outcome.receipt.rows_landed):
                    by_sha[(lf.submitter, routed, sha_key)] = sid
            r = outcome.receipt
            if r.status == "rejected":
                counts["rejected_files"] += 1
                _quarantine_file(cfg.lakehouse_root, sid, lf, data)
            counts["rows_landed"] += r.rows_landed
            counts["rows_accepted"] += r.rows_accepted
            counts["rows_quarantined"] += r.rows_quarantined
            pf = per_feed.setdefault(r.feed or "(unknown)", {"files": 0, "landed": 0, "accepted": 0, "quarantined": 0})
            pf["files"] += 1
            pf["landed"] += r.rows_landed
            pf["accepted"] += r.rows_accepted
            pf["quarantined"] += r.rows_quarantined
            # Supersession: a corrected file for the same scope replaces the earlier submission's rows.
            if outcome.spec and outcome.spec.on_resubmit == "replace" and r.status in ("accepted", "accepted_with_errors"):
                r.supersedes = sorted(
                    p["submission_id"] for p in previous + [o.receipt.__dict__ for o in outcomes]
                    if p["submitter"] == lf.submitter and p["feed"] == r.feed and p["period"] == lf.period
                    and p["submission_id"] != sid and p["status"] in ("accepted", "accepted_with_errors")
                    and not (p in [o.receipt.__dict__ for o in outcomes] and bulk.same_export(p["source_file"], lf.relpath))
                )
            outcomes.append(outcome)
            if outcome.spec is not None:
                buffers.setdefault(outcome.spec.bronze_table, []).append(outcome)
            else:
                unrecorded.append(outcome)
            buffered_rows += r.rows_accepted + r.rows_quarantined
            if buffered_rows >= FLUSH_ROWS:
                _flush(spark, buffers, cfg.outbox_root, cfg.lakehouse_root, specs)
                buffers, buffered_rows = {}, 0
    _flush(spark, buffers, cfg.outbox_root, cfg.lakehouse_root, specs)
    _record(spark, unrecorded, cfg.outbox_root, cfg.lakehouse_root)
    release_rows(unrecorded)
    return StageResult("ingest", {**counts}, {"per_feed": per_feed, "statuses": _status_counts(outcomes)})


def _submissions(landed: list[LandedFile], specs: dict[str, FeedSpec], known_ids: set[str],
                 counts: dict[str, int]) -> Iterator[Submission]:
    """The landed files to ingest, in processing order (:func:`_ordered`), each read once with its
    submission id; a file whose id is in ``known_ids`` (ingested before) is counted and skipped."""
    folders: dict[tuple[str, str, str], list[LandedFile]] = {}
    for lf in landed:
        folders.setdefault((lf.submitter, lf.feed, lf.period), []).append(lf)
    exports: dict[tuple[str, str], bulk.Export] = {}
    for lf in _ordered(landed, specs):
        spec = specs.get(lf.feed)
        companion_files: dict[str, bytes] | None = None
        export: bulk.Export | None = None
        routed = lf.feed
        if lf.feed == bulk.BULK_FEED and lf.layout_ok:
            # A FHIR Bulk Data export: every file of the folder is read once, each file is taken as
            # its resource type's feed, and the others resolve its references.
            key = (lf.submitter, lf.period)
            if key not in exports:
                exports[key] = bulk.Export.read(folders[(lf.submitter, lf.feed, lf.period)], storage.read_bytes)
            export = exports[key]
            routed = bulk.routed_feed(lf, export, specs)
            companion_files = export.companions(lf.name)
        elif spec is not None and join.takes_companions(spec) and lf.layout_ok:
            if join.is_companion(spec, lf.name):
                continue  # read with the main file(s) of its folder, not a submission of its own
            companion_files = {c.name: storage.read_bytes(c.uri) for c in folders[(lf.submitter, lf.feed, lf.period)]
                               if join.is_companion(spec, c.name)}
        data = export.files[lf.name] if export is not None else storage.read_bytes(lf.uri)
        sha = hashlib.sha256(data).hexdigest()
        sha_key = submission_sha(sha, companion_files)
        sid = submission_id(lf.submitter, routed, lf.period, lf.relpath, sha_key)
        if sid in known_ids:
            counts["skipped_already_ingested"] += 1
            continue
        yield Submission(lf, routed, data, sha, sha_key, sid, export, companion_files)


def _status_counts(outcomes: list[FileOutcome]) -> dict[str, int]:
    c: dict[str, int] = {}
    for o in outcomes:
        c[o.receipt.status] = c.get(o.receipt.status, 0) + 1
    return c


def _flush(spark: SparkSession, buffers: dict[str, list[FileOutcome]], outbox_root: str, lakehouse_root: str,
           specs: dict[str, FeedSpec]) -> None:
    """Write buffered files: bronze rows (replacing superseded scopes), cross-file checks, then the
    quarantine, ledger and receipts.

    Each bronze write is one overwrite with ``replaceWhere`` naming exactly the submissions (and
    for replace-mode feeds, the submitter+feed+period scopes) in this batch, so re-running a
    batch never duplicates rows and never touches another submission's rows.
    """
    first = coverage_tables(specs)
    order = sorted(buffers, key=lambda t: (t not in first, t))
    for bronze_table in order:
        outcomes = buffers[bronze_table]
        written = _latest_per_scope([o for o in outcomes if o.receipt.status in ("accepted", "accepted_with_errors")])
        if not written:
            continue
        scopes = []
        for o in written:
            r = o.receipt
            assert o.spec is not None
            if o.spec.on_resubmit == "replace":
                scopes.append(f"(submitter = {lakehouse.sql_literal(r.submitter)} AND feed = "
                              f"{lakehouse.sql_literal(r.feed)} AND period = {lakehouse.sql_literal(r.period)})")
            else:
                scopes.append(f"submission_id = {lakehouse.sql_literal(r.submission_id)}")
        spec = written[0].spec
        assert spec is not None
        bronze.write(spark, f"bronze.{bronze_table}", [t for o in written for t in o.accepted],
                     bronze_schema(spec, specs), " OR ".join(sorted(set(scopes))), lakehouse_root,
                     parts=[p for o in written for p in o.accepted_parts])
    all_outcomes = [o for t in order for o in buffers[t]]
    check_within_coverage(spark, all_outcomes, specs)
    _record(spark, all_outcomes, outbox_root, lakehouse_root)
    release_rows(all_outcomes)


def release_rows(outcomes: list[FileOutcome]) -> None:
    """Drop the rows of files written and recorded; their receipts stay (the rest of the run reads
    only those: supersession, status counts).

    Why: the stage keeps every file's outcome until it ends, and with its rows that was the whole
    landing in memory (13.7 GB of the stage's process while ingesting 25.8 million rows at
    1,000,000 members); now it is one flush's worth (:data:`FLUSH_ROWS`) and the files in flight.
    """
    for o in outcomes:
        o.accepted = []
        o.accepted_parts = []  # moved into bronze's staging by the write (or removed, if superseded)
        o.quarantine = []
        o.warning_findings = []
        o.acknowledgments = {}


def _latest_per_scope(written: list[FileOutcome]) -> list[FileOutcome]:
    """The files whose rows bronze keeps: in a replace feed only the last file of each
    (submitter, feed, period) in processing order (path order, so ``v2`` after ``v1``), as its
    receipt says it supersedes the others; append feeds keep every file.

    An earlier file of the scope keeps its ledger row and receipt (with a note saying which file
    replaced it) but none of its rows, so bronze and therefore silver hold the latest file only.
    """
    last: dict[tuple[str, str, str], FileOutcome] = {}
    for o in written:
        if o.spec is not None and o.spec.on_resubmit == "replace":
            last[(o.receipt.submitter, o.receipt.feed, o.receipt.period)] = o
    keep = []
    for o in written:
        r = o.receipt
        winner = last.get((r.submitter, r.feed, r.period))
        if winner is None or winner is o or bulk.same_export(winner.receipt.source_file, r.source_file):
            keep.append(o)
            continue
        o.accepted = []
        for part in o.accepted_parts:
            storage.delete(part)
        o.accepted_parts = []
        note = (f"replaced by {winner.receipt.submission_id} ({winner.receipt.source_file.rsplit('/', 1)[-1]}), "
                "a later file for the same feed and period in the same run: none of this file's records are kept")
        if note not in r.notes:
            r.notes.append(note)
    return keep


def _record(spark: SparkSession, outcomes: list[FileOutcome], outbox_root: str, lakehouse_root: str) -> None:
    """Quarantine rows, the submissions ledger and receipts for a batch of files."""
    if not outcomes:
        return
    bronze.write_quarantine(spark, outcomes, lakehouse_root)
    rows = []
    for o in outcomes:
        r = o.receipt
        uri = write_receipt(outbox_root, r)
        for suffix, content in o.acknowledgments.items():  # HL7 ACK, X12 999/TA1 beside the receipt
            storage.write_text(receipt_prefix(outbox_root, r) + suffix, content, content_type="text/plain")
        rows.append({"submission_id": r.submission_id, "submitter": r.submitter, "feed": r.feed,
                     "period": r.period, "source_file": r.source_file, "source_file_sha256": r.source_file_sha256,
                     "received_at": datetime.fromisoformat(r.received_at), "status": r.status,
                     "rows_landed": r.rows_landed, "rows_accepted": r.rows_accepted,
                     "rows_quarantined": r.rows_quarantined,
                     "file_errors": "; ".join(f"{f['rule_id']}: {f['message']}" for f in r.file_errors),
                     "supersedes": ",".join(r.supersedes), "receipt_uri": uri, "spec_version": r.spec_version})
    import pyarrow as pa

    sdf = spark.createDataFrame(pa.Table.from_pylist(rows))
    lakehouse.merge(spark, sdf, SUBMISSIONS)


def _quarantine_file(lakehouse_root: str, sid: str, lf: LandedFile, data: bytes) -> None:
    """Keep a copy of a rejected file in the hub's quarantine area (PHI zone, never the outbox)."""
    dest = storage.join(lakehouse_root, "_quarantine_files", sid, lf.name or "file")
    storage.write_bytes(dest, data)
