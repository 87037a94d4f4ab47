"""``phmx measures ...``: run the measures stage, print rates, list the definitions.

``register(subparsers)`` adds ``measures`` to the ``phmx`` command:

* ``phmx measures run [--period P] [--run-id R] [--group FUM ...] [--no-risk] [--json]``
* ``phmx measures rates [--period P] [--by lhj|age_band|sex|race_ethnicity|plan_id] [--json]``
* ``phmx measures list [--json]``: every measure, its family and the public specification
* ``phmx measures risk-history --from YYYY-MM --to YYYY-MM [--json]``: rolling 12-month risk tiers for
  every month of the range (the tier history) and the transition matrix

Output is counts and rates only (never a member). Handlers return an exit code; user errors
raise phmx.errors types, printed once by phmx.cli.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

STRATIFIERS = ("lhj", "age_band", "sex", "race_ethnicity", "plan_id")


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def cmd_run(args: argparse.Namespace) -> int:
    from jobs.measures.stage import run
    from phmx.context import RunContext
    from phmx.engine import get_spark

    result = run(get_spark(), RunContext.new(period=args.period, run_id=args.run_id),
                 groups=args.group or None, risk=not args.no_risk)
    if args.json:
        sys.stdout.write(result.to_json() + "\n")
        return 0
    rates = result.details["rates"]
    assert isinstance(rates, dict)  # run_stage puts the rate table here
    _print_rates(rates, title=f"Measures for period {result.counts['period']}")
    risk = {k: v for k, v in result.counts.items() if k.startswith(("risk_", "ecm_"))}
    if risk:
        _console().print("member risk: " + ", ".join(f"{k}={v}" for k, v in sorted(risk.items())))
    return 0


def cmd_risk_history(args: argparse.Namespace) -> int:
    from jobs.measures.risk_history import backfill, months_between
    from phmx.context import RunContext
    from phmx.engine import get_spark

    months = months_between(args.first, args.last)
    counts = backfill(get_spark(), months, RunContext.new(run_id=args.run_id).run_id)
    if args.json:
        sys.stdout.write(json.dumps(counts, sort_keys=True) + "\n")
    else:
        _console().print("member risk per rolling period: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def _print_rates(rates: dict[str, dict[str, Any]], title: str, by: str | None = None) -> None:
    from rich.table import Table

    t = Table(title=title)
    cols = ["measure", *([by] if by else []), "units", "denominator", "numerator", "rate"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("measure", by) else "right")
    for key, r in rates.items():
        mid, _, stratum = key.partition("|")
        t.add_row(mid, *([stratum] if by else []), str(r["units"]), str(r["denominator"]), str(r["numerator"]),
                  f"{100 * r['rate']:.1f}%" if r["denominator"] else "-")
    _console().print(t)


def rates_table(period: str | None = None, by: str | None = None) -> dict[str, dict[str, Any]]:
    """Rates per measure (and stratum) from gold.measure_event: ``{"FUM-7|Alameda": {...}}``."""
    from pyspark.sql import functions as F

    from phmx import lakehouse
    from phmx.engine import get_spark
    from phmx.tables import MEASURE_EVENT

    df = lakehouse.read(get_spark(), MEASURE_EVENT)
    if period and period != "all":
        df = df.where(F.col("period") == period)
    keys = ["period", "measure_id", *([by] if by else [])]
    rows = (df.groupBy(*keys).agg(F.count("*").alias("units"),
                                  F.sum(F.col("in_denominator").cast("int")).alias("den"),
                                  F.sum(F.col("in_numerator").cast("int")).alias("num"))
            .orderBy(*keys).collect())
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"{r['measure_id']} ({r['period']})" + (f"|{r[by]}" if by else "")
        den, num = int(r["den"] or 0), int(r["num"] or 0)
        out[key] = {"units": int(r["units"]), "denominator": den, "numerator": num,
                    "rate": round(num / den, 4) if den else 0.0}
    return out


def cmd_rates(args: argparse.Namespace) -> int:
    rates = rates_table(args.period, args.by)
    if args.json:
        sys.stdout.write(json.dumps(rates, indent=2, sort_keys=True) + "\n")
        return 0
    _print_rates(rates, title="Measure rates from gold.measure_event", by=args.by)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from jobs.measures import config

    cfg = config.default()
    items: list[dict[str, Any]] = [{"group": m.group, "measure_ids": list(m.measure_ids), "family": m.family, "title": m.title,
              "spec": m.spec, "sensitivity": m.sensitivity} for m in cfg.measures.values()]
    if args.json:
        sys.stdout.write(json.dumps({"measures": items, "versions": cfg.versions}, indent=2) + "\n")
        return 0
    from rich.table import Table

    t = Table(title="PHM measures (definitions: docs/measures.md)")
    for c in ("measure ids", "title", "specification followed", "sensitivity"):
        t.add_column(c)
    for m in items:
        t.add_row(", ".join(m["measure_ids"]), m["title"], m["spec"], m["sensitivity"])
    _console().print(t)
    return 0


def register(subparsers: Any) -> None:
    """Add ``measures`` and its subcommands to the ``phmx`` parser."""
    p = subparsers.add_parser("measures", help="PHM measures: run the stage, print rates, list definitions")
    sub = p.add_subparsers(dest="measures_command", required=True)

    r = sub.add_parser("run", help="compute the measures and member risk for a period")
    r.add_argument("--period", default="all", help="YYYY, YYYY-MM (that year), R12-YYYY-MM (rolling), or all")
    r.add_argument("--run-id", default=None)
    r.add_argument("--group", action="append", default=None, help="only this measure group (repeatable), e.g. FUM")
    r.add_argument("--no-risk", action="store_true", help="skip gold.member_risk")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("rates", help="rates per measure (optionally per stratum) from gold.measure_event")
    s.add_argument("--period", default="all", help="a period label (2025, R12-2025-06) or all")
    s.add_argument("--by", choices=STRATIFIERS, default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_rates)

    h = sub.add_parser("risk-history", help="rolling 12-month risk tiers for every month of a range, and transitions")
    h.add_argument("--from", dest="first", required=True, help="first month, YYYY-MM")
    h.add_argument("--to", dest="last", required=True, help="last month, YYYY-MM")
    h.add_argument("--run-id", default=None)
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_risk_history)

    ls = sub.add_parser("list", help="the measures, their families and the specifications they follow")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
