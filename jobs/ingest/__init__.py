"""Ingest: landing -> bronze, with per-row validation, quarantine, receipts and a submissions ledger.

For every landed file: parse with the feed's parser, validate every row against the feed spec
(vectorised), write accepted rows to ``bronze.<feed>`` with lineage, quarantined rows to
``bronze.quarantine`` with their rule, record the submission in ``bronze.submissions`` and
write a receipt to the submitter's outbox. One bad file never stops the others.

Conservation: for every file, rows landed = rows accepted + rows quarantined.
Idempotency: submission ids are deterministic; a file already processed is skipped; the same
bytes sent again elsewhere get a ``duplicate`` receipt and change nothing. A corrected file for
the same (submitter, feed, period) replaces the earlier submission's rows when the feed spec
says ``on_resubmit: replace``; both submissions stay in the ledger.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from jobs.ingest.formats import FileRejected, get_parser
from jobs.ingest.landing import LandedFile, scan, submission_id
from jobs.ingest.receipts import Receipt, group_findings, write_receipt
from jobs.ingest.validate import validate_chunk
from phmx import lakehouse, storage
from phmx.context import RunContext, StageResult
from phmx.errors import PhmxError
from phmx.feedspec import FeedSpec, all_specs
from phmx.log import get_logger
from phmx.tables import LINEAGE, QUARANTINE, SUBMISSIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = get_logger(__name__)

FLUSH_ROWS = 1_000_000


@dataclass
class FileOutcome:
    """Everything one file produced: receipt, accepted Arrow batches, quarantine rows."""

    receipt: Receipt
    spec: FeedSpec | None
    accepted: list[pa.Table] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)


def process_file(lf: LandedFile, data: bytes, specs: dict[str, FeedSpec], *, received_at: datetime,
                 chunk_rows: int = 100_000) -> FileOutcome:
    """Parse and validate one file into a receipt, accepted rows and quarantine rows (no writes)."""
    sha = hashlib.sha256(data).hexdigest()
    sid = submission_id(lf.submitter, lf.feed, lf.period, lf.relpath, sha)
    spec = specs.get(lf.feed)
    receipt = Receipt(submission_id=sid, submitter=lf.submitter, feed=lf.feed, period=lf.period,
                      source_file=lf.relpath, source_file_sha256=sha,
                      received_at=received_at.isoformat(timespec="seconds"), status="accepted",
                      spec_version=spec.version if spec else "")
    out = FileOutcome(receipt, spec)
    lineage = {"submission_id": sid, "submitter": lf.submitter, "feed": lf.feed, "period": lf.period,
               "source_file": lf.relpath, "source_file_sha256": sha}

    def quarantine(row: int, rule: str, fld: str, msg: str, raw: str) -> None:
        out.quarantine.append({**lineage, "row_number": row, "rule_id": rule, "field": fld, "message": msg,
                               "raw_record": raw, "quarantined_at": received_at})

    def reject(rule: str, msg: str, records: list[tuple[int, str]] | None = None) -> FileOutcome:
        receipt.status = "rejected"
        receipt.file_errors.append({"rule_id": rule, "message": msg})
        for row, raw in records or []:
            quarantine(row, rule, "", msg, raw)
        receipt.rows_landed = receipt.rows_quarantined = len(records or [])
        receipt.rows_accepted = 0
        out.accepted.clear()
        return out

    if not lf.layout_ok:
        return reject("bad_period" if lf.feed else "unknown_feed",
                      "file is not at landing/<submitter>/<feed>/<YYYY-MM>/<file>")
    from jobs.ingest.landing import PERIOD

    if not PERIOD.match(lf.period):
        return reject("bad_period", "the period folder must be YYYY-MM")
    if spec is None:
        return reject("unknown_feed", f"no feed spec named {lf.feed!r}")
    if not spec.accepts_submitter(lf.submitter):
        return reject("unknown_submitter", f"feed {spec.feed} is not accepted from this submitter")

    parse = get_parser(spec)
    seen: set[str] = set()
    errors: list[tuple[int, str, str, str]] = []
    warnings: list[tuple[int, str, str, str]] = []
    landed = accepted_n = quarantined_n = 0
    try:
        for chunk in parse(data, spec, file_name=lf.name, chunk_rows=chunk_rows):
            receipt.notes.extend(n for n in chunk.notes if n not in receipt.notes)
            for issue in chunk.issues:
                quarantine(issue.row_number, issue.rule_id, issue.field, issue.message, issue.raw)
                errors.append((issue.row_number, issue.rule_id, issue.field, issue.message))
            bad_rows = {i.row_number for i in chunk.issues}
            landed += len(chunk) + len(bad_rows)
            quarantined_n += len(bad_rows)
            if not len(chunk):
                continue
            vc = validate_chunk(chunk, spec, seen)
            rejected_idx: set[int] = set()
            for fd in vc.findings:
                row = chunk.row_numbers[fd.index]
                item = (row, fd.rule_id, fd.field, fd.message)
                if fd.severity == "error":
                    errors.append(item)
                    quarantine(row, fd.rule_id, fd.field, fd.message, chunk.raw[fd.index])
                    rejected_idx.add(fd.index)
                else:
                    warnings.append(item)
            quarantined_n += len(rejected_idx)
            accepted_n += vc.accepted.num_rows
            if vc.accepted.num_rows:
                rows = pa.array([chunk.row_numbers[i] for i in vc.accepted_rows], pa.int64())
                tbl = vc.accepted
                for k, v in lineage.items():
                    tbl = tbl.append_column(k, pa.array([v] * tbl.num_rows, pa.string()))
                tbl = tbl.append_column("row_number", rows)
                tbl = tbl.append_column("ingested_at", pa.array([received_at] * tbl.num_rows,
                                                                 pa.timestamp("us", tz="UTC")))
                out.accepted.append(tbl)
    except FileRejected as fr:
        return reject(fr.rule_id, fr.message, fr.records)
    receipt.rows_landed, receipt.rows_accepted, receipt.rows_quarantined = landed, accepted_n, quarantined_n
    receipt.errors = group_findings(errors, spec.how_to_fix)
    receipt.warnings = group_findings(warnings, spec.how_to_fix)
    if accepted_n == 0 and quarantined_n > 0:
        receipt.status = "rejected"
        receipt.file_errors.append({"rule_id": "no_valid_rows", "message": "no row passed validation"})
    elif quarantined_n:
        receipt.status = "accepted_with_errors"
    return out


def _previous_submissions(spark: SparkSession) -> list[dict[str, Any]]:
    if not lakehouse.exists(SUBMISSIONS):
        return []
    return [r.asDict() for r in lakehouse.read(spark, SUBMISSIONS).collect()]


def run(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Ingest every landed file of the context's period (or all periods)."""
    cfg = ctx.settings
    specs = all_specs()
    previous = _previous_submissions(spark)
    known_ids = {p["submission_id"] for p in previous}
    by_sha: dict[tuple[str, str, str], str] = {
        (p["submitter"], p["feed"], p["source_file_sha256"]): p["submission_id"]
        for p in previous if p["status"] not in ("rejected", "duplicate")
    }
    received_at = datetime.now(UTC).replace(microsecond=0)
    buffers: dict[str, list[FileOutcome]] = {}
    buffered_rows = 0
    outcomes: list[FileOutcome] = []
    counts = {"files": 0, "skipped_already_ingested": 0, "rows_landed": 0, "rows_accepted": 0,
              "rows_quarantined": 0, "rejected_files": 0, "duplicate_files": 0}
    per_feed: dict[str, dict[str, int]] = {}

    for lf in scan(cfg.landing_root, ctx.period):
        data = storage.read_bytes(lf.uri)
        sha = hashlib.sha256(data).hexdigest()
        sid = submission_id(lf.submitter, lf.feed, lf.period, lf.relpath, sha)
        if sid in known_ids:
            counts["skipped_already_ingested"] += 1
            continue
        counts["files"] += 1
        dup = by_sha.get((lf.submitter, lf.feed, sha))
        if dup:
            r = Receipt(sid, lf.submitter, lf.feed, lf.period, lf.relpath, sha,
                        received_at.isoformat(timespec="seconds"), "duplicate", duplicate_of=dup,
                        notes=["the same bytes were received before; nothing was changed"])
            outcome = FileOutcome(r, specs.get(lf.feed))
            counts["duplicate_files"] += 1
        else:
            try:
                outcome = process_file(lf, data, specs, received_at=received_at)
            except PhmxError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
                log.error("internal error on submission %s: %s", sid, type(exc).__name__)
                outcome = FileOutcome(Receipt(sid, lf.submitter, lf.feed, lf.period, lf.relpath, sha,
                                              received_at.isoformat(timespec="seconds"), "rejected",
                                              file_errors=[{"rule_id": "internal_error",
                                                            "message": type(exc).__name__}]), None)
            if outcome.receipt.status not in ("rejected",):
                by_sha[(lf.submitter, lf.feed, sha)] = sid
        if outcome.receipt.status == "rejected":
            counts["rejected_files"] += 1
            _quarantine_file(cfg.lakehouse_root, sid, lf, data)
        r = outcome.receipt
        counts["rows_landed"] += r.rows_landed
        counts["rows_accepted"] += r.rows_accepted
        counts["rows_quarantined"] += r.rows_quarantined
        pf = per_feed.setdefault(lf.feed or "(unknown)", {"files": 0, "landed": 0, "accepted": 0, "quarantined": 0})
        pf["files"] += 1
        pf["landed"] += r.rows_landed
        pf["accepted"] += r.rows_accepted
        pf["quarantined"] += r.rows_quarantined
        # Supersession: a corrected file for the same scope replaces the earlier submission's rows.
        if outcome.spec and outcome.spec.on_resubmit == "replace" and r.status in ("accepted", "accepted_with_errors"):
            r.supersedes = sorted(
                p["submission_id"] for p in previous + [o.receipt.__dict__ for o in outcomes]
                if p["submitter"] == lf.submitter and p["feed"] == lf.feed and p["period"] == lf.period
                and p["submission_id"] != sid and p["status"] in ("accepted", "accepted_with_errors")
            )
        outcomes.append(outcome)
        if outcome.spec is not None:
            buffers.setdefault(outcome.spec.bronze_table, []).append(outcome)
        buffered_rows += r.rows_accepted
        if buffered_rows >= FLUSH_ROWS:
            _flush(spark, buffers, cfg.outbox_root)
            buffers, buffered_rows = {}, 0
    _flush(spark, buffers, cfg.outbox_root)
    _record(spark, [o for o in outcomes if o.spec is None], cfg.outbox_root)
    return StageResult("ingest", counts, {"per_feed": per_feed,
                                          "statuses": _status_counts(outcomes)})


def _status_counts(outcomes: list[FileOutcome]) -> dict[str, int]:
    c: dict[str, int] = {}
    for o in outcomes:
        c[o.receipt.status] = c.get(o.receipt.status, 0) + 1
    return c


def _flush(spark: SparkSession, buffers: dict[str, list[FileOutcome]], outbox_root: str) -> None:
    """Write buffered files: bronze rows (replacing superseded scopes), quarantine, ledger, receipts.

    Each bronze write is an overwrite with ``replaceWhere`` naming exactly the submissions (and
    for replace-mode feeds, the submitter+period scopes) in this batch, so re-running a batch
    never duplicates rows and never touches another submission's rows.
    """
    for bronze_table, outcomes in buffers.items():
        spec = outcomes[0].spec
        assert spec is not None
        fqn = f"bronze.{bronze_table}"
        batches = [t for o in outcomes for t in o.accepted]
        written = [o for o in outcomes if o.receipt.status in ("accepted", "accepted_with_errors")]
        if written:
            scopes = []
            for o in written:
                r = o.receipt
                if spec.on_resubmit == "replace":
                    scopes.append(f"(submitter = {lakehouse.sql_literal(r.submitter)} AND feed = "
                                  f"{lakehouse.sql_literal(r.feed)} AND period = {lakehouse.sql_literal(r.period)})")
                else:
                    scopes.append(f"submission_id = {lakehouse.sql_literal(r.submission_id)}")
            predicate = " OR ".join(sorted(set(scopes)))
            table = pa.concat_tables(batches, promote_options="default") if batches else None
            if table is not None and table.num_rows:
                df = spark.createDataFrame(table)
            else:
                cols = spec.field_names + LINEAGE.column_names
                ddl = ", ".join(f"{c} {'bigint' if c == 'row_number' else 'timestamp' if c == 'ingested_at' else 'string'}"
                                for c in cols)
                df = spark.createDataFrame([], ddl)
            lakehouse.overwrite(df, fqn, replace_where=predicate)
        _record(spark, outcomes, outbox_root)


def _record(spark: SparkSession, outcomes: list[FileOutcome], outbox_root: str) -> None:
    """Quarantine rows, the submissions ledger and receipts for a batch of files."""
    if not outcomes:
        return
    q = [row for o in outcomes for row in o.quarantine]
    if q:
        qdf = spark.createDataFrame(pa.Table.from_pylist(q))
        ids = sorted({o.receipt.submission_id for o in outcomes if o.quarantine})
        pred = "submission_id IN (" + ", ".join(lakehouse.sql_literal(i) for i in ids) + ")"
        lakehouse.overwrite(lakehouse.conform_to(qdf, QUARANTINE), QUARANTINE, replace_where=pred)
    rows = []
    for o in outcomes:
        r = o.receipt
        uri = write_receipt(outbox_root, r)
        rows.append({"submission_id": r.submission_id, "submitter": r.submitter, "feed": r.feed,
                     "period": r.period, "source_file": r.source_file, "source_file_sha256": r.source_file_sha256,
                     "received_at": datetime.fromisoformat(r.received_at), "status": r.status,
                     "rows_landed": r.rows_landed, "rows_accepted": r.rows_accepted,
                     "rows_quarantined": r.rows_quarantined,
                     "file_errors": "; ".join(f"{f['rule_id']}: {f['message']}" for f in r.file_errors),
                     "supersedes": ",".join(r.supersedes), "receipt_uri": uri, "spec_version": r.spec_version})
    sdf = spark.createDataFrame(pa.Table.from_pylist(rows))
    lakehouse.merge(spark, sdf, SUBMISSIONS)


def _quarantine_file(lakehouse_root: str, sid: str, lf: LandedFile, data: bytes) -> None:
    """Keep a copy of a rejected file in the hub's quarantine area (PHI zone, never the outbox)."""
    dest = storage.join(lakehouse_root, "_quarantine_files", sid, lf.name or "file")
    storage.write_bytes(dest, data)
