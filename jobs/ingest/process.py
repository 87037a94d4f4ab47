"""One file in, one verdict out: parse + validate into accepted rows, quarantine rows and a receipt.

Pure Python and Arrow, no engine and no lakehouse: ``phmx validate`` runs exactly this offline,
and ``jobs.ingest.run`` runs it for every landed file before writing anything.

Conservation: for every file, rows landed = rows accepted + rows quarantined, where a record
is whatever the format calls one (a line, a member loop, an RXA, an NDJSON line). A parser
reports each unreadable record once (a :class:`RecordIssue`); a file it cannot read at all
raises :class:`FileRejected` with every record it could still count, and all of them are
quarantined under that rule.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from jobs.ingest import join
from jobs.ingest.formats import FileRejected, get_parser
from jobs.ingest.landing import LandedFile, path_problem, submission_id
from jobs.ingest.receipts import Receipt, group_findings, rule_summary
from jobs.ingest.rules import field_fixes, how_to_fix
from jobs.ingest.validate import KeyTracker, validate_chunk
from phmx.feedspec import FeedSpec
from phmx.tables import LINEAGE

# Records validated at once. Large chunks keep the per-chunk fixed costs (one Arrow kernel call per
# check, the cross-chunk duplicate lookup) small; memory is bounded by the file, already in memory.
CHUNK_ROWS = 500_000

# A finding as the receipt sees it: (row number, rule id, field, message, locator).
Finding = tuple[int, str, str, str, str]


class AcceptedSink(Protocol):
    """Where a file's accepted rows go instead of :attr:`FileOutcome.accepted` (a parse worker's
    staged Parquet parts, :class:`jobs.ingest.parse_pool.StagedParts`)."""

    def add(self, table: pa.Table) -> None: ...

    def clear(self) -> None: ...


@dataclass
class FileOutcome:
    """Everything one file produced: receipt, accepted rows, quarantine rows.

    Accepted rows are Arrow tables in memory (``accepted``) or, from a parse worker, Parquet parts
    already staged in the stage's private scratch folder (``accepted_parts``, the bronze schema,
    :data:`jobs.ingest.bronze.STAGE_ROWS` rows each): a worker that sent its rows back pickled
    them, and a pickled slice of an Arrow array carries its whole parent buffers (10.9 GB of a
    worker for one 360 MB file at 1,000,000 members).
    """

    receipt: Receipt
    spec: FeedSpec | None
    accepted: list[pa.Table] = field(default_factory=list)
    accepted_parts: list[str] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    # Raw warning findings, kept so a later cross-file check can add to them and regroup.
    warning_findings: list[Finding] = field(default_factory=list)
    # Standard acknowledgments due to the submitter (HL7 ACK, X12 999/TA1): outbox file suffix -> content.
    acknowledgments: dict[str, str] = field(default_factory=dict)


def bronze_columns(spec: FeedSpec, specs: dict[str, FeedSpec]) -> list[str]:
    """The feed columns of ``bronze.<spec.bronze_table>``: the base feed's fields.

    A format variant (``enrollment_834``) writes the base feed's table, so its rows carry the
    base spec's columns (fields the variant does not send are null).
    """
    base = specs.get(spec.bronze_table)
    if base is not None and base.feed == spec.bronze_table:
        return base.field_names
    return spec.field_names


def bronze_schema(spec: FeedSpec, specs: dict[str, FeedSpec]) -> pa.Schema:
    """The Arrow schema of the bronze table a spec writes (feed columns + lineage)."""
    cols = [pa.field(c, pa.string()) for c in bronze_columns(spec, specs)]
    return pa.schema([*cols, *LINEAGE.arrow_schema])


def process_file(lf: LandedFile, data: bytes, specs: dict[str, FeedSpec], *, received_at: datetime,
                 chunk_rows: int = CHUNK_ROWS, check_submitter: bool = True, sha256: str | None = None,
                 companions: dict[str, bytes] | None = None, sink: AcceptedSink | None = None) -> FileOutcome:
    """Parse and validate one file into a receipt, accepted rows and quarantine rows (no writes
    unless ``sink`` is given: then accepted rows go to it chunk by chunk, not into the outcome).

    ``sha256`` may be passed when the caller already hashed the bytes. ``companions`` are the other
    files of the submission by file name, for a feed that joins them (:mod:`jobs.ingest.join`) or,
    for FHIR, the other files of a Bulk Data export whose resources references point at.
    """
    sha = sha256 or hashlib.sha256(data).hexdigest()
    sid = submission_id(lf.submitter, lf.feed, lf.period, lf.relpath, submission_sha(sha, companions))
    spec = specs.get(lf.feed)
    receipt = Receipt(submission_id=sid, submitter=lf.submitter, feed=lf.feed, period=lf.period,
                      source_file=lf.relpath, source_file_sha256=sha,
                      received_at=received_at.isoformat(timespec="seconds"), status="accepted",
                      spec_version=spec.version if spec else "",
                      record_unit=spec.record_unit if spec else "line",
                      format=spec.format_type if spec else "")
    out = FileOutcome(receipt, spec)
    lineage = {"submission_id": sid, "submitter": lf.submitter, "feed": lf.feed, "period": lf.period,
               "source_file": lf.relpath, "source_file_sha256": sha}

    def quarantine(row: int, rule: str, fld: str, msg: str, raw: str) -> None:
        out.quarantine.append({**lineage, "row_number": int(row), "rule_id": rule, "field": fld, "message": msg,
                               "raw_record": raw, "quarantined_at": received_at})

    def reject(rule: str, msg: str, records: Sequence[tuple[int, str]] = ()) -> FileOutcome:
        receipt.status = "rejected"
        receipt.file_errors.append({"rule_id": rule, "message": msg})
        out.quarantine.clear()
        out.accepted.clear()
        if sink is not None:
            sink.clear()
        out.warning_findings.clear()
        receipt.errors, receipt.warnings = [], []
        for row, raw in records:
            quarantine(row, rule, "", msg, raw)
        receipt.rows_landed = receipt.rows_quarantined = len(records)
        receipt.rows_accepted = 0
        if records:
            receipt.errors = group_findings([(r, rule, "", msg, "") for r, _ in records], _fixes(spec))
        receipt.rule_summary = rule_summary(out.quarantine, [], receipt.rows_landed)
        return out

    problem = path_problem(lf, specs, check_submitter=check_submitter)
    if problem is not None or spec is None:
        return reject(*(problem or ("unknown_feed", "no feed spec")))

    parse = get_parser(spec)
    # A FHIR Bulk Data export's other files resolve references (Immunization.patient -> Patient/<id>).
    refs = {"companions": companions} if companions and spec.format_type == "fhir_ndjson" else {}
    chunks = parse(data, spec, file_name=lf.name, chunk_rows=chunk_rows, **refs)
    if join.joins(spec):
        try:
            tables, join_notes = join.read_all(spec, companions or {})
        except FileRejected as fr:
            try:
                every = [(int(r), raw) for c in parse(data, spec, file_name=lf.name, chunk_rows=chunk_rows)
                         for r, raw in [*zip(c.row_numbers, c.raw, strict=True), *((i.row_number, i.raw)
                                                                                   for i in c.issues)]]
            except FileRejected as own:
                return reject(own.rule_id, own.message, own.records)
            return reject(fr.rule_id, fr.message, sorted(every))
        chunks = join.apply(chunks, spec, tables, join_notes)
    columns = bronze_columns(spec, specs)
    schema = bronze_schema(spec, specs)
    seen = KeyTracker()
    errors: list[Finding] = []
    warnings: list[Finding] = []
    landed = accepted_n = quarantined_n = 0
    try:
        for chunk in chunks:
            receipt.notes.extend(n for n in chunk.notes if n not in receipt.notes)
            for issue in chunk.issues:
                quarantine(issue.row_number, issue.rule_id, issue.field, issue.message, issue.raw)
                errors.append((issue.row_number, issue.rule_id, issue.field, issue.message, issue.locator))
            landed += len(chunk) + len(chunk.issues)
            quarantined_n += len(chunk.issues)
            if not len(chunk):
                continue
            rows = np.asarray(chunk.row_numbers, dtype=np.int64)
            locs = chunk.locators
            vc = validate_chunk(chunk, spec, seen)
            rejected_idx: set[int] = set()
            for fd in vc.findings:
                row = int(rows[fd.index])
                item = (row, fd.rule_id, fd.field, fd.message, locs[fd.index] if locs else "")
                if fd.severity == "error":
                    errors.append(item)
                    quarantine(row, fd.rule_id, fd.field, fd.message, chunk.raw[fd.index])
                    rejected_idx.add(fd.index)
                else:
                    warnings.append(item)
            quarantined_n += len(rejected_idx)
            n_ok = vc.accepted.num_rows
            accepted_n += n_ok
            if n_ok:
                rows_ok = _with_lineage(vc.accepted, columns, schema, lineage, rows[vc.accepted_rows], received_at)
                if sink is not None:
                    sink.add(rows_ok)
                else:
                    out.accepted.append(rows_ok)
    except FileRejected as fr:
        return reject(fr.rule_id, fr.message, fr.records)
    receipt.rows_landed, receipt.rows_accepted, receipt.rows_quarantined = landed, accepted_n, quarantined_n
    fixes = _fixes(spec)
    receipt.errors = group_findings(errors, fixes)
    receipt.warnings = group_findings(warnings, fixes)
    out.warning_findings = warnings
    receipt.rule_summary = rule_summary(out.quarantine, warnings, landed)
    if accepted_n == 0 and quarantined_n > 0:
        receipt.status = "rejected"
        receipt.file_errors.append({"rule_id": "no_valid_rows", "message": "no record passed validation"})
    elif accepted_n == 0 and landed == 0:
        receipt.file_warnings.append(empty_file_warning(spec, lf.period))
    elif quarantined_n:
        receipt.status = "accepted_with_errors"
    return out


def submission_sha(sha: str, companions: dict[str, bytes] | None) -> str:
    """What a submission id hashes: the file's sha256, plus its companions' for a joined feed (a
    changed companion makes a new submission even when the main file is unchanged)."""
    if not companions:
        return sha
    parts = [sha] + [f"{n}:{hashlib.sha256(companions[n]).hexdigest()}" for n in sorted(companions)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def empty_file_warning(spec: FeedSpec, period: str) -> dict[str, str]:
    """What a file with a header and no records does: for a replace feed it withdraws the period."""
    if spec.on_resubmit == "replace":
        return {"rule_id": "period_withdrawn",
                "message": f"the file holds no records, so it replaces every record sent earlier for feed "
                           f"{spec.feed}, period {period or '(the period folder it lands in)'} with nothing: the "
                           "period is withdrawn. If that is not what you meant, send the complete file again."}
    return {"rule_id": "no_records", "message": "the file holds no records; nothing was added"}


def _fixes(spec: FeedSpec | None) -> dict[str, str]:
    """How-to-fix texts for a feed: its spec's rules take their check's text unless the spec says more."""
    if spec is None:
        return {}
    fixes = {r.id: how_to_fix(r.check) for r in spec.rules}
    fixes.update(field_fixes(spec))
    fixes.update(spec.how_to_fix)
    return fixes


def _with_lineage(tbl: pa.Table, columns: list[str], schema: pa.Schema, lineage: dict[str, str],
                  rows: np.ndarray, received_at: datetime) -> pa.Table:
    """Accepted rows in the bronze table's column order, lineage appended."""
    n = tbl.num_rows
    present = set(tbl.column_names)
    arrays: list[pa.Array] = [tbl.column(c) if c in present else pa.nulls(n, pa.string()) for c in columns]
    for name, _ in LINEAGE.columns:
        if name == "row_number":
            arrays.append(pa.array(rows, pa.int64()))
        elif name == "ingested_at":
            arrays.append(pa.repeat(pa.scalar(received_at, pa.timestamp("us", tz="UTC")), n))
        else:
            arrays.append(pa.repeat(pa.scalar(lineage[name], pa.string()), n))
    return pa.Table.from_arrays(arrays, schema=schema)
