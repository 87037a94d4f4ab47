"""``phmx audit ...``: the auditor's commands (verify, disclosures, report, checkpoint).

``register(subparsers)`` adds ``audit`` to the ``phmx`` command. Handlers return an exit code:
0 when all is well; ``LedgerError.exit_code`` (50) when verification finds a problem.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from phmx.errors import ConfigError, LedgerError, PhmxError


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def _date(s: str) -> datetime:
    try:
        return datetime.fromisoformat(s)
    except ValueError:
        raise ConfigError(f"not an ISO date or timestamp: {s!r}", hint="use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS") from None


def _head(s: str) -> tuple[int, str]:
    seq, _, h = s.partition(":")
    if not seq.isdigit() or len(h) != 64:
        raise ConfigError("--expect-head must be SEQ:SHA256HEX", hint="copy it from an earlier verify output")
    return int(seq), h


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify the ledger: exit 0 only for a ledger that verifies; 50 for any finding (including a
    missing, empty or unreadable ledger), printed with its location, never as a traceback."""
    from consent import audit
    from privacy import signing

    try:
        keys = signing.load_public_keys(signing.LEDGER, args.public_key) if args.public_key else None
    except Exception as exc:  # noqa: BLE001 - a bad key file is the auditor's input, named
        raise LedgerError(f"the public key given cannot be read: {type(exc).__name__}",
                          hint="pass the PEM file the hub published (publisher or ledger key)") from None
    try:
        rep = audit.verify(args.ledger, public_keys=keys, members_path=args.members,
                           expect_head=_head(args.expect_head) if args.expect_head else None)
    except PhmxError:
        raise
    except Exception as exc:  # noqa: BLE001 - belt and braces: verify reports, it never crashes
        rep = audit.VerifyReport(ok=False, entries=0, checkpoints=0, last_signed_seq=0, unsigned_tail=0,
                                 disclosures=0, problems=[audit.Problem(None, "unverifiable",
                                                                        f"{type(exc).__name__}")])
    con = _console()
    if args.json:
        con.print_json(json.dumps(rep.to_dict(), default=str))
        return 0 if rep.ok else LedgerError.exit_code
    con.print(f"entries: {rep.entries}  checkpoints: {rep.checkpoints}  disclosures: {rep.disclosures}  "
              f"last signed seq: {rep.last_signed_seq}")
    if rep.head:
        con.print(f"head: {rep.head}   (keep this; pass it as --expect-head next time to detect truncation)")
    for w in rep.warnings:
        con.print(f"[yellow]warning[/] seq {w.seq}: {w.kind}: {w.detail}")
    if rep.ok:
        con.print("[green]OK[/]: hash chain, checkpoint signatures and disclosure digests verify")
        return 0
    fb = rep.first_bad
    kinds = {p.kind for p in rep.problems}
    if kinds & {"no_ledger", "empty_ledger"}:
        con.print(f"[red]FAILED[/]: {fb.detail if fb else 'no ledger'}" + (f" ({fb.file})" if fb and fb.file else "")
                  + "; check --ledger / PHMX_LEDGER_ROOT (or PHMX_HOME) point at the hub's ledger")
        demo = _demo_home_hint()
        if demo:
            con.print(demo)
    elif fb is not None:
        con.print(f"[red]FAILED[/]: first bad entry seq {fb.seq}: {fb.kind}: {fb.detail}"
                  + (f" (file {fb.file})" if fb.file else ""))
    for p in rep.problems:
        con.print(f"  seq {p.seq}: {p.kind}: {p.detail}" + (f" (file {p.file})" if p.file else ""))
    return LedgerError.exit_code


def _demo_home_hint() -> str:
    """When nothing is configured and ``make demo``'s hub exists, say how to look at it."""
    from pathlib import Path

    from phmx import settings as settings_mod

    s = settings_mod.load()
    demo = Path(s.demo_home).resolve()
    if Path(s.home).resolve() == demo or not (demo / "lakehouse" / "audit" / "ledger").is_dir():
        return ""
    return f"The demo's hub is at {demo}: run `export PHMX_HOME={demo}` first (make demo prints this too)."


def cmd_disclosures(args: argparse.Namespace) -> int:
    from consent import audit

    rows = audit.disclosures_for_member(args.member, since=_date(args.since) if args.since else None,
                                        until=_date(args.until) if args.until else None)
    if not rows and not audit.member_known(args.member):
        raise ConfigError("member not found: no such member_id in gold.member and no disclosure recorded for it",
                          hint="use the hub's member_id (gold.member), not a plan or county id")
    con = _console()
    if args.json:
        con.print_json(json.dumps(rows))
        return 0
    from rich.table import Table

    if not rows:
        con.print("no disclosures recorded for this member in the period asked")
        return 0
    t = Table(title=f"Accounting of disclosures ({len(rows)})")
    for c in ("when", "recipient", "purpose", "class", "rules", "consents", "files", "seq"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["disclosed_at"], r["recipient"], r["purpose"], r["data_class"], ", ".join(r["rule_ids"]),
                  ", ".join(r["consent_ids"]), "\n".join(f"{f['uri']} sha256:{f['sha256'][:12]}" for f in r["files"]),
                  str(r["seq"]))
    con.print(t)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from consent import report

    report.ensure_dir(args.out)
    written = report.write_report(args.out)
    _console().print(f"report: {written['report']} ({len(written) - 1} CSV files)")
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from consent import ledger

    seq = ledger.checkpoint()
    head = ledger.read_head()
    _console().print(f"checkpoint seq {seq}; head {head.seq}:{head.entry_hash}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``audit`` and its subcommands to the ``phmx`` parser."""
    p = subparsers.add_parser("audit", help="verify the consent ledger, account for disclosures, report")
    sub = p.add_subparsers(dest="audit_command", required=True)

    v = sub.add_parser("verify", help="recompute the hash chain and check checkpoint signatures")
    v.add_argument("--ledger", default=None, help="ledger Delta table path (default: the lakehouse's audit.ledger)")
    v.add_argument("--members", default=None, help="audit.disclosure_member path (default: next to the ledger)")
    v.add_argument("--public-key", action="append", default=None,
                   help="Ed25519 public key PEM obtained out of band (repeatable); default: keys exported next to the ledger")
    v.add_argument("--expect-head", default=None, help="SEQ:HASH of a checkpoint seen earlier (detects truncation)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(func=cmd_verify)

    d = sub.add_parser("disclosures", help="accounting of disclosures for one member")
    d.add_argument("--member", required=True, help="member_id")
    d.add_argument("--from", dest="since", default=None, help="from this date/time (inclusive)")
    d.add_argument("--to", dest="until", default=None, help="until this date/time (exclusive)")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_disclosures)

    r = sub.add_parser("report", help="HTML report with charts, and the same figures as CSV")
    r.add_argument("--out", required=True, help="output directory (local or s3://)")
    r.set_defaults(func=cmd_report)

    c = sub.add_parser("checkpoint", help="sign the ledger head now")
    c.set_defaults(func=cmd_checkpoint)
