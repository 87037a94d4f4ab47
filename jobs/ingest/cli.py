"""``phmx validate`` (offline pre-check) and ``phmx submissions`` (the history of a submitter).

``phmx validate FILE --feed FEED`` runs exactly the intake rules on a local (or s3://) file,
without the engine or the lakehouse, and prints what the receipt would say. Exit codes:
0 accepted (warnings allowed), 21 accepted with errors (some records would be quarantined),
20 rejected (``phmx.errors.ValidationFailed``), 10/11 for a bad command or spec. The
cross-file ``service_within_coverage`` check needs the hub's enrollment and is skipped (noted).

``phmx submissions --submitter X [--feed F] [--period P]`` lists what the hub received from X,
newest first, with statuses, counts and which submission superseded which.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phmx.errors import ConfigError, ValidationFailed

if TYPE_CHECKING:
    from jobs.ingest.receipts import Receipt

EXIT_ACCEPTED = 0
EXIT_ACCEPTED_WITH_ERRORS = 21
EXIT_REJECTED = ValidationFailed.exit_code
# The stand-in period folder of a pre-check run without --period (never shown to the sender).
NO_PERIOD = "0000-01"
SKIPPED_COVERAGE = "service_within_coverage not checked offline (it needs the enrollment the hub holds)"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``validate`` and ``submissions`` to the phmx CLI."""
    v = subparsers.add_parser(
        "validate", help="check a file against its feed spec offline (same rules as intake)",
        description="Run the intake rules on FILE without the hub and print what the receipt would say. "
                    f"Exit 0 accepted, {EXIT_ACCEPTED_WITH_ERRORS} accepted with errors, {EXIT_REJECTED} rejected.")
    v.add_argument("file", help="the file to check (a local path or s3://...)")
    v.add_argument("--feed", required=True, help="feed folder name, e.g. enrollment or enrollment_834")
    v.add_argument("--submitter", default=None, help="your submitter id (checks the feed accepts it)")
    v.add_argument("--period", default=None, help="reporting period YYYY-MM (default: none; the file is "
                   "checked as it would be in any period folder)")
    v.add_argument("--with", dest="companions", action="append", default=[], metavar="FILE",
                   help="another file of the same submission, for a feed that joins files (e.g. the "
                        "patients.csv of a patients + immunizations export); repeat for several")
    v.add_argument("--json", action="store_true", help="print the receipt as JSON")
    v.add_argument("--x12-strict", action="store_true",
                   help="also validate an 834 against the full 005010X220A1 guide with pyx12 (slow)")
    v.set_defaults(func=validate_command)
    s = subparsers.add_parser(
        "submissions", help="list a submitter's submissions and their statuses",
        description="The history of files received from one submitter, newest first.")
    s.add_argument("--submitter", required=True)
    s.add_argument("--feed", default=None)
    s.add_argument("--period", default=None, help="YYYY-MM")
    s.add_argument("--limit", type=int, default=200)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=submissions_command)


# ---- validate ----------------------------------------------------------------------------
def precheck(data: bytes, feed: str, *, name: str, submitter: str | None = None, period: str | None = None,
             x12_strict: bool = False, companions: dict[str, bytes] | None = None) -> Receipt:
    """The receipt intake would write for ``data`` as feed ``feed`` (no engine, no lakehouse)."""
    from jobs.ingest.landing import LandedFile
    from jobs.ingest.process import process_file
    from jobs.ingest.receipts import group_findings
    from jobs.ingest.specs import load_specs
    from phmx.period import LANDING_KINDS, Period

    specs = load_specs()
    if feed not in specs:
        raise ConfigError(f"unknown feed {feed!r}", hint="one of: " + ", ".join(sorted(specs)))
    if period is not None:
        period = Period.parse(period, allowed=LANDING_KINDS, what="--period").label
    # Without --period the check runs in a stand-in period folder and the receipt names none: a
    # pre-check must not tell the sender which month to send for.
    given_period, period = period, period or NO_PERIOD
    sub = submitter or "precheck"
    lf = LandedFile(uri=name, relpath=f"{sub}/{feed}/{period}/{name}", submitter=sub, feed=feed, period=period,
                    name=name, size=len(data), layout_ok=True)
    outcome = process_file(lf, data, specs, received_at=datetime.now(UTC).replace(microsecond=0),
                           check_submitter=submitter is not None, companions=companions)
    receipt = outcome.receipt
    spec = specs[feed]
    if given_period is None:
        receipt.period = ""
        for fw in receipt.file_warnings:
            fw["message"] = fw["message"].replace(f"period {NO_PERIOD}", "the period folder it lands in")
        receipt.notes.append("checked without --period: the receipt names no reporting period")
    if any(r.check == "within_coverage" for r in spec.rules) and receipt.status != "rejected":
        receipt.notes.append(SKIPPED_COVERAGE)
    if x12_strict:
        if spec.format_type != "x12_834":
            raise ConfigError("--x12-strict applies to X12 834 feeds only")
        from jobs.ingest.x12strict import pyx12_findings

        ok, findings = pyx12_findings(data)
        receipt.notes.append("pyx12 005010X220A1 validation: " + ("no errors" if ok else
                                                                   f"{len(findings)} problem(s), see warnings"))
        if findings:
            extra = [(pos, "x12_999", "", msg, "") for pos, msg in findings]
            receipt.warnings = group_findings(outcome.warning_findings + extra, dict(spec.how_to_fix))
    return receipt


def exit_code(status: str) -> int:
    return {"accepted": EXIT_ACCEPTED, "accepted_with_errors": EXIT_ACCEPTED_WITH_ERRORS}.get(status, EXIT_REJECTED)


def validate_command(args: argparse.Namespace) -> int:
    from phmx import storage
    from phmx.errors import StorageError

    if not storage.is_s3(args.file) and not Path(args.file).is_file():
        raise StorageError(f"no such file: {args.file}")
    data = storage.read_bytes(args.file)
    name = args.file.rstrip("/").rsplit("/", 1)[-1]
    companions = {}
    for c in getattr(args, "companions", None) or []:
        if not storage.is_s3(c) and not Path(c).is_file():
            raise StorageError(f"no such file: {c}")
        companions[c.rstrip("/").rsplit("/", 1)[-1]] = storage.read_bytes(c)
    receipt = precheck(data, args.feed, name=name, submitter=args.submitter, period=args.period,
                       x12_strict=args.x12_strict, companions=companions or None)
    code = exit_code(receipt.status)
    if args.json:
        doc = json.loads(receipt.to_json())
        doc["exit_code"] = code
        _console().print_json(json.dumps(doc))
    else:
        print_report(receipt)
    return code


def _console():  # noqa: ANN202 - rich Console
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def print_report(r: Receipt) -> None:
    """A readable pre-check report: status, counts, file problems, errors and warnings by rule."""
    from rich.panel import Panel
    from rich.table import Table

    from jobs.ingest.receipts import next_steps, percent
    from jobs.ingest.rules import how_to_fix

    console = _console()
    colour = {"accepted": "green", "accepted_with_errors": "yellow", "rejected": "red"}.get(r.status, "white")
    console.print(Panel(f"[bold {colour}]{r.status}[/]  {r.source_file.rsplit('/', 1)[-1]}  feed {r.feed} "
                        f"(spec {r.spec_version})\nrecords {r.rows_landed}: accepted {r.rows_accepted}, "
                        f"quarantined {r.rows_quarantined}", title="phmx validate", expand=False))
    for fe in r.file_errors:
        console.print(f"[bold red]file problem[/] {fe['rule_id']}: {fe['message']}\n  how to fix: "
                      f"{how_to_fix(fe['rule_id'])}")
    for fw in r.file_warnings:
        console.print(f"[bold yellow]file warning[/] {fw['rule_id']}: {fw['message']}")
    if r.rule_summary:
        t = Table(title="Summary by rule", title_style="bold")
        for col in ("rule", "severity", "records", "share of records"):
            t.add_column(col)
        for x in r.rule_summary:
            t.add_row(x["rule_id"], x["severity"], str(x["records"]), percent(x["share"]))
        console.print(t)
    for title, groups, style in (("Errors (records quarantined)", r.errors, "red"),
                                 ("Warnings (records accepted)", r.warnings, "yellow")):
        if not groups:
            continue
        t = Table(title=title, title_style=f"bold {style}", show_lines=False)
        for col in ("rule", "field", "count", "rows", "problem", "how to fix"):
            t.add_column(col, overflow="fold")
        for g in groups:
            rows = ", ".join(map(str, g["rows"][:12])) + (" ..." if len(g["rows"]) > 12 or g["rows_truncated"] else "")
            t.add_row(g["rule_id"], g["field"], str(g["count"]), rows, g["message"], g["how_to_fix"])
        console.print(t)
    for note in r.notes:
        console.print(f"[dim]note:[/] {note}")
    console.print(f"[dim]{r.unit_text}[/]")
    for step in next_steps(r):
        console.print(f"- {step}")


# ---- submissions -------------------------------------------------------------------------
def list_submissions(submitter: str, feed: str | None = None, period: str | None = None,
                     limit: int = 200) -> list[dict[str, Any]]:
    """The ledger rows of one submitter, newest first, each with ``superseded_by`` filled in."""
    from pyspark.sql import functions as F

    from phmx import lakehouse
    from phmx.engine import get_spark
    from phmx.tables import SUBMISSIONS

    if not lakehouse.exists(SUBMISSIONS):
        return []
    df = lakehouse.read(get_spark(), SUBMISSIONS).where(F.col("submitter") == submitter)
    rows = [r.asDict() for r in df.collect()]
    superseded_by: dict[str, str] = {}
    for r in sorted(rows, key=lambda x: (x["received_at"], x["submission_id"])):
        for old in filter(None, (r.get("supersedes") or "").split(",")):
            superseded_by[old] = r["submission_id"]
    out = []
    for r in rows:
        if (feed and r["feed"] != feed) or (period and r["period"] != period):
            continue
        r["superseded_by"] = superseded_by.get(r["submission_id"], "")
        out.append(r)
    out.sort(key=lambda x: (x["received_at"], x["source_file"]), reverse=True)
    return out[:limit]


def submissions_command(args: argparse.Namespace) -> int:
    from rich.table import Table

    rows = list_submissions(args.submitter, args.feed, args.period, args.limit)
    console = _console()
    if args.json:
        console.print_json(json.dumps(rows, default=str))
        return 0
    if not rows:
        console.print(f"no submissions from {args.submitter}"
                      + (f" for feed {args.feed}" if args.feed else "") + (f" in {args.period}" if args.period else ""))
        return 0
    t = Table(title=f"submissions from {args.submitter}")
    for col in ("received (UTC)", "feed", "period", "file", "status", "records", "accepted", "quarantined",
                "submission", "notes"):
        t.add_column(col, overflow="fold", justify="right" if col in ("records", "accepted", "quarantined") else "left")
    colours = {"accepted": "green", "accepted_with_errors": "yellow", "rejected": "red", "duplicate": "cyan"}
    for r in rows:
        notes = []
        if r["superseded_by"]:
            notes.append(f"replaced by {r['superseded_by']}")
        if r.get("supersedes"):
            notes.append(f"replaces {r['supersedes']}")
        if r.get("file_errors"):
            notes.append(str(r["file_errors"]).split(":")[0])
        status = f"[{colours.get(r['status'], 'white')}]{r['status']}[/]"
        t.add_row(str(r["received_at"])[:19], r["feed"], r["period"], str(r["source_file"]).rsplit("/", 1)[-1], status,
                  str(r["rows_landed"]), str(r["rows_accepted"]), str(r["rows_quarantined"]), r["submission_id"],
                  "; ".join(notes))
    console.print(t)
    return 0
