"""``phmx identity ...``: run the stage, work the review queue, explain a pair, link files.

* ``phmx identity run [--period P] [--run-id R] [--mode auto|full|incremental]``
* ``phmx identity review [--limit N] [--accept PAIR_ID ...] [--reject PAIR_ID ...] --reviewer NAME``
  lists open possible matches (with their evidence: the comparison levels), and records
  decisions that later runs honour.
* ``phmx identity explain PAIR_ID | SOURCE:ID SOURCE:ID [--html FILE] [--show-values]``
  prints each comparison's contribution to the match weight (a waterfall), optionally as HTML.
* ``phmx identity link INPUT [INPUT ...] --mapping MAP.yaml [--mapping ...] --out DIR`` links any person
  files (one mapping for all inputs, or one per input).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from phmx.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add ``identity`` and its subcommands to the ``phmx`` parser."""
    p = subparsers.add_parser("identity", help="member identity: run, review, explain, link files")
    sub = p.add_subparsers(dest="identity_command", required=True)

    r = sub.add_parser("run", help="run the identity stage in this process")
    r.add_argument("--period", default="all")
    r.add_argument("--run-id", default=None)
    r.add_argument("--mode", choices=("auto", "full", "incremental"), default=None)
    r.set_defaults(func=_cmd_run)

    r = sub.add_parser("review", help="list possible matches; record accept/reject decisions")
    r.add_argument("--limit", type=int, default=50)
    r.add_argument("--accept", action="append", default=[], metavar="PAIR_ID", help="same person")
    r.add_argument("--reject", action="append", default=[], metavar="PAIR_ID", help="different people")
    r.add_argument("--reviewer", default=None, help="who decides (required with --accept/--reject)")
    r.add_argument("--note", default="")
    r.add_argument("--json", action="store_true", help="print JSON instead of a table")
    r.set_defaults(func=_cmd_review)

    r = sub.add_parser("explain", help="per-comparison contributions to a pair's match weight")
    r.add_argument("pair", nargs="+", help="PAIR_ID from the review queue, or SOURCE:ID SOURCE:ID")
    r.add_argument("--html", default=None, metavar="FILE", help="also write an HTML page with a waterfall chart")
    r.add_argument("--show-values", action="store_true", help="show the compared values (PHI zone only)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_cmd_explain)

    r = sub.add_parser("link", help="link person files (CSV or Parquet) with a field mapping")
    r.add_argument("inputs", nargs="+", metavar="INPUT")
    r.add_argument("--mapping", required=True, action="append", metavar="MAP.yaml",
                   help="field mapping: once for all inputs, or once per input in the same order")
    r.add_argument("--out", required=True, metavar="DIR")
    r.add_argument("--settings", default=None, help="identity settings YAML (default: the stage's)")
    r.add_argument("--min-probability", type=float, default=None,
                   help="lowest match probability written to pairs.parquet (default: the review threshold)")
    r.set_defaults(func=_cmd_link)


def _console() -> Any:
    from rich.console import Console

    return Console()


def _cmd_run(args: argparse.Namespace) -> int:
    import os

    from jobs.identity import run
    from phmx.context import RunContext
    from phmx.engine import get_spark

    if args.mode:
        os.environ["PHMX_IDENTITY_MODE"] = args.mode
    result = run(get_spark(), RunContext.new(period=args.period, run_id=args.run_id))
    sys.stdout.write(result.to_json() + "\n")
    return 0


def _cmd_review(args: argparse.Namespace) -> int:
    from jobs.identity import review
    from phmx.engine import get_spark

    spark = get_spark()
    if args.accept or args.reject:
        if not args.reviewer:
            raise ConfigError("--reviewer is required to record decisions")
        for pid in args.accept:
            review.decide(spark, pid, "accept", reviewer=args.reviewer, note=args.note)
        for pid in args.reject:
            review.decide(spark, pid, "reject", reviewer=args.reviewer, note=args.note)
        sys.stdout.write(f"recorded {len(args.accept)} accept and {len(args.reject)} reject decision(s); "
                         "the next identity run applies them\n")
        return 0
    items = review.open_items(spark).head(args.limit)
    if args.json:
        sys.stdout.write(items.to_json(orient="records", date_format="iso") + "\n")
        return 0
    from rich.table import Table

    table = Table(title=f"Open review items ({len(items)} shown)")
    for col in ("pair_id", "left", "right", "probability", "reason", "evidence", "if accepted"):
        table.add_column(col)
    for it in items.itertuples(index=False):
        evidence = ", ".join(x for x in str(it.gamma).split(",") if not x.endswith("=null"))
        table.add_row(it.pair_id, f"{it.source_l}:{it.source_person_id_l}", f"{it.source_r}:{it.source_person_id_r}",
                      f"{it.match_probability:.3f}", str(it.reason), evidence, str(getattr(it, "if_accepted", "")))
    _console().print(table)
    _console().print("A reject keeps the two apart on every later run; `phmx identity explain PAIR_ID` shows the "
                     "waterfall of a pair's evidence.")
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from pathlib import Path

    from jobs.identity import explain
    from jobs.identity.stage import stage_settings
    from phmx.engine import get_spark

    spark = get_spark()
    left, right = explain.resolve_pair(spark, args.pair)
    e = explain.explain_records(spark, stage_settings(), left, right)
    if args.html:
        Path(args.html).write_text(explain.to_html(e, show_values=args.show_values), encoding="utf-8")
    if args.json:
        sys.stdout.write(json.dumps({"left": e.left, "right": e.right, "steps": e.rows, "match_weight": e.weight,
                                     "match_probability": e.probability}) + "\n")
        return 0
    from rich.table import Table

    table = Table(title=f"{left[0]}:{left[1]} vs {right[0]}:{right[1]}")
    head = ["comparison", "level", "bits", "running"] + (["left", "right"] if args.show_values else [])
    for h in head:
        table.add_column(h, justify="right" if h in ("bits", "running") else "left")
    for row in explain.to_text_rows(e, show_values=args.show_values):
        table.add_row(*row)
    con = _console()
    con.print(table)
    con.print(f"match weight {e.weight:+.2f} bits, probability {e.probability:.6f}")
    return 0


def _cmd_link(args: argparse.Namespace) -> int:
    from jobs.identity import config, linkfiles
    from phmx.engine import get_spark

    settings = config.load(args.settings) if args.settings else None
    counts = linkfiles.link_files(get_spark(), args.inputs, args.mapping, args.out, settings=settings,
                                  min_probability=args.min_probability)
    sys.stdout.write(json.dumps(counts) + "\n")
    return 0
