"""``phmx feeds``: what was published to whom and when; ``phmx feeds verify DIR``: check a package.

``verify`` is what a recipient runs on receipt. It needs only the package folder (offline): it
checks the Ed25519 signature of manifest.json with the public key inside the package, every
file's SHA-256 and size, and that no unlisted file was added; it prints the key's fingerprint so
the recipient can compare it with the one the hub publishes (or pass ``--fingerprint`` to make
that part of the check). Exit 0 when the package is intact, 71 (with the bad file named) if not.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``feeds`` (list) and ``feeds verify DIR`` to the phmx command."""
    p = subparsers.add_parser("feeds", help="list published feeds; verify a received package",
                              description="List what was published to whom and when, or verify a package.")
    p.add_argument("--recipient", help="only this recipient (e.g. lhj_alameda, mcp_sierra)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--source", choices=("log", "folder"), default="log",
                   help="log: gold.feed_log (every version); folder: the latest version of each feed in the "
                        "publish root")
    p.set_defaults(func=_cmd_list)
    sub = p.add_subparsers(dest="feeds_command")
    v = sub.add_parser("verify", help="check a received package's signature and checksums (offline)")
    v.add_argument("directory", help="the package folder (a version folder, or its period folder with 'latest')")
    v.add_argument("--fingerprint", help="the hub's published key fingerprint; fail if the package's differs")
    v.add_argument("--json", action="store_true", dest="verify_json")
    v.set_defaults(func=_cmd_verify)


def _rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    from jobs.publish import feed_log
    from jobs.publish.summary import summarize_publish
    from phmx import settings

    if args.source == "log":
        rows = feed_log.read(args.recipient)
        if rows:
            return [{"recipient": r["recipient"], "feed": r["feed"], "period": r["period"], "version": f"v{r['version']}",
                     "published_at": r["published_at"].isoformat(timespec="seconds") if r["published_at"] else "",
                     "files": r["files"], "members": r["members"], "suppressed": r["suppressed_cells"],
                     "ledger_seq": r["ledger_seq"], "path": r["uri"]} for r in rows]
    rows = summarize_publish(settings.load().publish_root)
    return [{"recipient": r["recipient"], "feed": r["feed"], "period": r["period"], "version": r["version"],
             "published_at": r["published_at"], "files": r["files"], "members": None,
             "suppressed": r["suppressed_cells"], "ledger_seq": None, "path": r["path"]}
            for r in rows if not args.recipient or r["recipient"] == args.recipient]


def _cmd_list(args: argparse.Namespace) -> int:
    rows = _rows(args)
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=1, default=str) + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Published feeds ({len(rows)})")
    for c in ("recipient", "feed", "period", "version", "published_at", "files", "members", "suppressed",
              "ledger_seq", "path"):
        t.add_column(c, justify="right" if c in ("files", "members", "suppressed", "ledger_seq") else "left")
    for r in rows:
        t.add_row(*["" if r[c] is None else str(r[c]) for c in ("recipient", "feed", "period", "version",
                                                                 "published_at", "files", "members", "suppressed",
                                                                 "ledger_seq", "path")])
    Console().print(t)
    if not rows:
        Console().print("Nothing has been published yet.")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from jobs.publish.verify import verify_package

    v = verify_package(args.directory, expected_fingerprint=args.fingerprint)
    if args.verify_json:
        sys.stdout.write(json.dumps({"ok": True, "directory": v.directory, "recipient": v.recipient, "feed": v.feed,
                                     "period": v.period, "version": v.version, "files": v.files, "key_id": v.key_id,
                                     "fingerprint": v.fingerprint}, indent=1) + "\n")
        return 0
    lines = [f"OK {v.recipient} / {v.feed} / {v.period} {v.version}: signature valid, {v.files} files match "
             "their SHA-256", f"Signed by key {v.key_id}", f"Fingerprint: {v.fingerprint}"]
    if args.fingerprint:
        lines.append("The fingerprint matches the one you gave.")
    else:
        lines.append("Compare this fingerprint with the one the hub publishes (or re-run with --fingerprint).")
    sys.stdout.write("\n".join(lines) + "\n")  # plain text: the fingerprint must not be wrapped
    return 0
