"""Population indicators at scale (issue #17 item 7): 1,000,000 members across all 61 LHJs with ZIP
strata, the suppression and the LP attacker audit included.

    python -m benchmarks.indicators                       # 1,000,000 members (a 20,000 build x50)
    python -m benchmarks.indicators --quick               # 1,000 x3 (a smoke run)
    python -m benchmarks.indicators --source-home H       # replicate an existing lakehouse built through consent
    python -m benchmarks.indicators --home H --stage-only # the stage alone on a lakehouse kept (--keep) by a run

The lakehouse: a synthetic lakehouse built through consent (``--source-home``, or one of
``--source-members`` built once under ``<root>/src-m<N>``), replicated with fresh ids
(:func:`benchmarks.measures_feeds.replicate`: every member placed in one of the 61 LHJs, weighted
roughly by Medi-Cal population). Residence ZIPs are then spread: a city LHJ's members over its own
ZIPs, a county's over 3-99 synthetic ZIPs (``8`` + county index + 2 digits, so they never meet a
real city ZIP), and 3% of county members in a neighbouring county's ZIP, so ZIPs straddle LHJs.

Timed: the indicators stage (member-months, denominators, cube, rates), then the LHJ feed's
indicator table for every LHJ and the state at once (privacy.suppression with its LP audit, one
LHJ per worker process: PHMX_PUBLISH_WORKERS, default the cores up to 4), then
an independent privacy.attack.audit of the published table. Prints seconds, rows, peak RSS and
the machine with its load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import time
from pathlib import Path

from benchmarks.feeds import machine
from benchmarks.measures_feeds import TABLES, build_source, replicate

BENCH_TABLES = {k: v for k, v in TABLES.items() if k != "gold.consent_decision" and not k.startswith("bronze.")}


def _rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def spread_zips(spark) -> int:  # noqa: ANN001
    """Rewrite silver.person's ZIP and county so each member lives where gold.member now places them."""
    from pyspark.sql import functions as F

    from jobs.identity.geo import load_lhj
    from phmx import lakehouse
    from phmx.tables import MEMBER, MEMBER_XWALK, PERSON

    cities = load_lhj()["cities"]
    city_rows = [(name, i, str(z)) for name, spec in cities.items() for i, z in enumerate(spec["zips"])]
    city_zips = spark.createDataFrame(city_rows, "_city string, _k int, _czip string")
    city_n = spark.createDataFrame([(n, len(s["zips"])) for n, s in cities.items()], "_city string, _n int")
    m = lakehouse.read(spark, MEMBER).select("member_id", F.col("lhj").alias("_lhj"), F.col("county_fips").alias("_fips"))
    h = F.pmod(F.xxhash64("member_id", F.lit("zip")), F.lit(1_000_000))
    idx = ((F.col("_fips").substr(3, 3).cast("int") - 1) / 2).cast("int")
    m = m.join(F.broadcast(city_n), F.col("_lhj") == F.col("_city"), "left").drop("_city")
    straddle = (h % 100) < 3
    nz = F.least(F.lit(99), F.greatest(F.lit(3), (F.pmod(F.xxhash64("_fips"), F.lit(97)) + 3)))
    county_zip = F.format_string("8%02d%02d", F.when(straddle, (idx + 1) % 58).otherwise(idx), (h / 100).cast("int") % nz)
    m = m.withColumn("_k", F.when(F.col("_n").isNotNull(), (h % F.col("_n")).cast("int")))
    m = m.join(F.broadcast(city_zips.withColumnRenamed("_k", "_k2")),
               (F.col("_lhj") == F.col("_city")) & (F.col("_k") == F.col("_k2")), "left")
    m = m.withColumn("_zip", F.coalesce(F.col("_czip"), county_zip)).select("member_id", "_zip", "_fips")
    xw = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    person = lakehouse.read(spark, PERSON)
    cols = person.columns
    placed = person.join(xw, ["source", "source_person_id"], "left").join(m, "member_id", "left") \
        .withColumn("zip", F.coalesce("_zip", "zip")).withColumn("county_fips", F.coalesce("_fips", "county_fips")) \
        .select(*cols)
    lakehouse.overwrite(placed, PERSON)
    return int(lakehouse.read(spark, PERSON).count())


def timed(spark, home: Path, period: str, *, union: bool = False, stage_only: bool = False) -> dict:  # noqa: ANN001
    from jobs.indicators.stage import run
    from jobs.publish import lhj_indicators
    from phmx.context import RunContext
    from privacy.attack import audit
    from privacy.suppression import SuppressionSpec

    os.environ["PHMX_HOME"] = str(home)
    out: dict = {}
    t = time.perf_counter()
    res = run(spark, RunContext.new(period=period, run_id="bench-indicators"))
    out["stage_seconds"] = round(time.perf_counter() - t, 1)
    out["stage"] = {"counts": res.counts, "seconds": res.details.get("seconds")}
    year = str(res.counts["period"])
    t = time.perf_counter()
    long = lhj_indicators.load_strata(spark, year)
    assert long is not None
    out["strata_seconds"] = round(time.perf_counter() - t, 1)
    if stage_only:
        out["peak_rss_mb"] = _rss_mb()
        out["strata_rows"] = len(long)
        return out
    t = time.perf_counter()
    workers = lhj_indicators.workers_default()
    published = lhj_indicators.decide_strata(long, workers=workers)
    out["suppress_seconds"] = round(time.perf_counter() - t, 1)
    out["suppress_workers"] = workers
    t = time.perf_counter()
    if union:  # the attacker's LP over the union as one system (what protected() falls back to)
        from jobs.indicators.catalogue import default

        table = lhj_indicators.audit_table(published)
        report = audit(table, SuppressionSpec.from_dict(lhj_indicators.spec(table, default()[0])))
        ok, figures = report.ok, {"failures": len(report.failures),
                                  "small_count_failures": sum(1 for f in report.failures if f["high"] < 11 - 1e-6),
                                  "suppressed_cells": report.suppressed_cells, "components": report.components}
    else:  # the gate the publish stage runs: the same union, solved in parts where that is exact
        ok, figures = lhj_indicators.protected(published)
    out["audit_seconds"] = round(time.perf_counter() - t, 1)
    crude = published[published["rate_type"] == "crude"]
    out["published"] = {"strata_rows": len(long), "rows": len(published), "cells": len(crude),
                        "lhjs": int(published["lhj"].nunique() - 1),
                        "zip_cells": int((crude["stratifier"] == "zip").sum()),
                        "straddling_zips": int(crude[crude["stratifier"] == "zip"].groupby("stratum")["lhj"]
                                               .nunique().gt(1).sum()),
                        "suppressed_cells": lhj_indicators.suppressed_cells(published),
                        "withheld_share": round(lhj_indicators.suppressed_cells(published) / max(len(crude), 1), 3),
                        # indicator rows only (not the population rows): the share whose rate is withheld
                        "withheld_share_indicators": round(float(
                            crude[crude["kind"] != "population"]["annotation"]
                            .isin(lhj_indicators.SUPPRESSED_CODES).mean()), 3),
                        "withheld_share_lhj_totals": round(float(
                            crude[(crude["stratifier"] == "all") & (crude["lhj"] != "California")]["annotation"]
                            .isin(lhj_indicators.SUPPRESSED_CODES).mean()), 3),
                        "audit": "union" if union else "protected (in parts where exact)",
                        "audit_ok": ok, "audit_failures": figures.get("failures", 0),
                        # high < 11: a small count recovered; low > 0 only: a count proven non-zero (the audit's
                        # stricter rule), which reveals no small count
                        "audit_failures_small_count": figures.get("small_count_failures", 0),
                        "audit_suppressed_cells": figures.get("suppressed_cells", 0),
                        "audit_components": figures.get("components", 0)}
    out["peak_rss_mb"] = _rss_mb()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.indicators", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--source-home", help="a PHMX_HOME built through consent (read only)")
    parser.add_argument("--source-members", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="1,000 synthetic members x3")
    parser.add_argument("--period", default="all")
    parser.add_argument("--root", default="var/bench/indicators")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--home", help="a lakehouse an earlier run kept (--keep): time it as it is, no build")
    parser.add_argument("--stage-only", action="store_true",
                        help="time the indicators stage and the feed's strata only (no suppression, no gate)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--union-audit", action="store_true",
                        help="audit the union of every LHJ and the state as one LP (default: the publish gate, "
                             "lhj_indicators.protected, which solves it in parts where that is exact)")
    args = parser.parse_args(argv)
    os.environ.setdefault("PHMX_LOG_LEVEL", "WARNING")
    root = Path(args.root).resolve()
    members, src_members = (3_000, 1_000) if args.quick else (args.members, args.source_members)
    from phmx.engine import get_spark

    if args.home:
        home = Path(args.home).resolve()
        spark = get_spark()
        built: dict = {"home": str(home)}
    else:
        src = Path(args.source_home).resolve() if args.source_home else root / f"src-m{src_members}"
        if not args.source_home:
            build_source(src, src_members)
        from phmx import lakehouse

        spark = get_spark()
        os.environ["PHMX_HOME"] = str(src)
        have = lakehouse.read(spark, "gold.member").count()
        factor = max(1, math.ceil(members / max(have, 1)))
        home = root / f"m{members}"
        t = time.perf_counter()
        built = replicate(spark, src, home, factor, tables=BENCH_TABLES)
        os.environ["PHMX_HOME"] = str(home)
        built["person_rows"] = spread_zips(spark)
        built["build_seconds"] = round(time.perf_counter() - t, 1)
    load_before = [round(x, 1) for x in os.getloadavg()]
    cpu = time.process_time()
    out = {"machine": machine(), "build": built,
           **timed(spark, home, args.period, union=args.union_audit, stage_only=args.stage_only)}
    # this process's CPU (the embedded engine's threads included; the suppression's workers not)
    out["cpu_seconds"] = round(time.process_time() - cpu, 1)
    out["load"] = {"before": load_before, "after": [round(x, 1) for x in os.getloadavg()]}
    if args.stage_only:
        print(json.dumps(out, indent=2, default=str) if args.json else
              f"machine: {out['machine']}; load average before {out['load']['before']}, after {out['load']['after']}\n"
              f"members: {out['stage']['counts']['members']:,}  member-months: "
              f"{out['stage']['counts']['member_months']:,}\n"
              f"indicators stage: {out['stage_seconds']} s {out['stage']['seconds']}\n"
              f"the strata for the feed: {out['strata_seconds']} s ({out['strata_rows']:,} rows)\n"
              f"CPU of this process: {out['cpu_seconds']} s   peak RSS: {out['peak_rss_mb']:,} MB", flush=True)
        if not args.keep and not args.home:
            shutil.rmtree(home, ignore_errors=True)
        return 0
    out["total_seconds"] = round(out["stage_seconds"] + out["strata_seconds"] + out["suppress_seconds"]
                                 + out["audit_seconds"], 1)
    print(json.dumps(out, indent=2, default=str) if args.json else "\n".join(
        [f"machine: {out['machine']}; load average (1, 5, 15 min) before {out['load']['before']}, "
         f"after {out['load']['after']}",
         f"members: {out['stage']['counts']['members']:,}  member-months: {out['stage']['counts']['member_months']:,}",
         f"indicators stage: {out['stage_seconds']} s {out['stage']['seconds']}",
         f"the cube's strata summed by the engine (for the feed): {out['strata_seconds']} s",
         f"suppression (all LHJs + state, LP audit inside; {out['suppress_workers']} process(es), "
         f"PHMX_PUBLISH_WORKERS): {out['suppress_seconds']} s",
         f"attacker audit over every LHJ and the state ({out['published']['audit']}): {out['audit_seconds']} s",
         f"total: {out['total_seconds']} s   CPU of this process: {out['cpu_seconds']} s   "
         f"peak RSS: {out['peak_rss_mb']:,} MB",
         f"published: {json.dumps(out['published'])}"]), flush=True)
    if not args.keep and not args.home:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
