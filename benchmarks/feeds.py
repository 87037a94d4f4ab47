"""Feeds benchmark: the measures stage and the publish stage (all 61 LHJ feeds and the plan feeds).

    python -m benchmarks.feeds --quick                        # 10,000 members, 61 LHJ feeds (about 1 min)
    python -m benchmarks.feeds --members 100000 1000000       # direct gold: publish at scale
    python -m benchmarks.feeds --source synth --members 10000 # synthetic submitters -> ... -> measures -> publish

Two ways to get a lakehouse:

* ``direct`` (default): members spread over all 61 LHJs (weighted roughly by population, every
  LHJ at least 0.1%), their plan enrollment and one claim each, and ``gold.measure_event`` units
  for ten measures, generated on the engine in seconds whatever the size. Times the publish
  stage only (there are no realistic clinical events for the measures stage to find).
* ``synth``: the project's synthetic submitters (12 counties across the state) through ingest,
  conform, identity and consent (built once per size in a child process under
  var/bench/feeds/, reused later), then times the measures stage and the publish stage.

Reports, per size: seconds for measures (synth), the consent stage (decisions for every plan and
every member's LHJ; publish only reads them), publish prepare (stored consent for every LHJ at
once, one aggregation), per-LHJ packaging (suppression, files, signing, ledger, delivery; total, mean
and max), plan feeds (FHIR NDJSON streamed from the engine; by default up to 1,000,000 members);
rows/s; peak RSS (the engine runs in this process); the machine. For the measures stage and every
feed on a realistic 1,000,000-member lakehouse spread over all 61 LHJs, see
``benchmarks.measures_feeds``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.measures import machine

SYNTH_COUNTIES = ["06001", "06013", "06019", "06029", "06037", "06059", "06065", "06067", "06071", "06073",
                  "06075", "06085"]
BUILD_STAGES = ("ingest", "conform", "identity", "consent")
PLAN_LIMIT = 1_000_000  # plan feeds stream from the engine (bounded memory): timed up to this size by default
# Rough shares of the Medi-Cal population for the largest LHJs (the rest share what is left).
BIG = {"Los Angeles": 0.24, "San Bernardino": 0.07, "Riverside": 0.07, "San Diego": 0.07, "Orange": 0.07,
       "Sacramento": 0.04, "Fresno": 0.04, "Kern": 0.03, "Alameda": 0.03, "Santa Clara": 0.03,
       "San Joaquin": 0.02, "Tulare": 0.02, "Contra Costa": 0.02, "Stanislaus": 0.02, "Long Beach": 0.015,
       "San Francisco": 0.015, "Ventura": 0.015}
MEASURES = (  # measure id, share of members with a unit, numerator rate, sensitivity, unit kind
    ("OEV-CH", 0.30, 0.50, "general", "child"), ("TFL-CH", 0.28, 0.17, "general", "child"),
    ("WCV", 0.30, 0.45, "general", "child"), ("CIS-10", 0.02, 0.35, "general", "child"),
    ("FUM-7", 0.02, 0.35, "mh", "any"), ("FUM-30", 0.02, 0.60, "mh", "any"),
    ("FUA-7", 0.015, 0.30, "sud", "any"), ("FUA-30", 0.015, 0.55, "sud", "any"),
    ("FUH-7", 0.006, 0.30, "mh", "any"), ("TRC-30", 0.02, 0.65, "general", "any"),
)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---- direct gold ---------------------------------------------------------------------------------
def _lhj_buckets() -> list[tuple[int, str, str, str]]:
    """1000 buckets -> (bucket, lhj, county_fips, zip): every LHJ at least one bucket."""
    from jobs.identity.geo import load_lhj

    table = load_lhj()
    lhjs = [(name, fips, "") for fips, name in sorted(table["counties"].items())]
    lhjs += [(name, str(spec["county_fips"]), str(spec["zips"][0])) for name, spec in sorted(table["cities"].items())]
    rest = 1.0 - sum(BIG.values())
    small = [n for n, _, _ in lhjs if n not in BIG]
    share = {n: BIG.get(n, rest / len(small)) for n, _, _ in lhjs}
    counts = {n: max(1, round(1000 * share[n])) for n, _, _ in lhjs}
    out: list[tuple[int, str, str, str]] = []
    for name, fips, zip5 in lhjs:
        out += [(0, name, fips, zip5)] * counts[name]
    out = out[:1000] + [out[-1]] * max(0, 1000 - len(out))
    return [(i, n, f, z or "90001") for i, (_, n, f, z) in enumerate(out)]


def build_direct(spark, members: int) -> dict:  # noqa: ANN001
    """Write gold.member, the crosswalk, plan person/coverage/claims and gold.measure_event."""
    from pyspark.sql import functions as F

    from phmx import lakehouse
    from phmx.tables import COVERAGE, ENCOUNTER, MEASURE_EVENT, MEMBER, MEMBER_XWALK, PERSON

    t = time.perf_counter()
    buckets = spark.createDataFrame(_lhj_buckets(), "bucket int, lhj string, county_fips string, zip string")
    base = spark.range(members).select(
        F.format_string("m%08d", F.col("id")).alias("member_id"), F.col("id"),
        F.pmod(F.xxhash64("id", F.lit(1)), F.lit(1000)).cast("int").alias("bucket"),
        F.pmod(F.xxhash64("id", F.lit(2)), F.lit(100)).cast("int").alias("h_age"),
        F.pmod(F.xxhash64("id", F.lit(3)), F.lit(100)).cast("int").alias("h_race"),
        F.when(F.pmod(F.col("id"), F.lit(2)) == 0, "mcp_bluecoast").otherwise("mcp_sierra").alias("plan_src"),
    ).join(F.broadcast(buckets), "bucket")
    age = F.when(F.col("h_age") < 12, "0-5").when(F.col("h_age") < 24, "6-11").when(F.col("h_age") < 34, "12-17") \
        .when(F.col("h_age") < 40, "18-20").when(F.col("h_age") < 70, "21-44").when(F.col("h_age") < 92, "45-64") \
        .otherwise("65+")
    race = F.when(F.col("h_race") < 50, "Hispanic or Latino").when(F.col("h_race") < 65, "White") \
        .when(F.col("h_race") < 75, "Black or African American").when(F.col("h_race") < 85, "Asian") \
        .when(F.col("h_race") < 87, "American Indian or Alaska Native") \
        .when(F.col("h_race") < 88, "Native Hawaiian or Pacific Islander").when(F.col("h_race") < 93, "Other") \
        .otherwise(F.lit(None))
    sex = F.when(F.pmod(F.col("id"), F.lit(7)) < 4, "F").otherwise("M")
    m = base.select("*", age.alias("age_band"), race.alias("race_ethnicity"), sex.alias("sex"),
                    F.concat(F.when(F.col("plan_src") == "mcp_bluecoast", "BC").otherwise("SR"),
                             F.col("id").cast("string")).alias("local_id"))
    m = m.cache()
    lakehouse.overwrite(lakehouse.conform_to(m.select(
        "member_id", F.lit(None).cast("string").alias("cin"), F.lit("1990-01-01").cast("date").alias("birth_date"),
        "sex", "zip", "county_fips", "lhj", F.col("race_ethnicity").alias("race"), F.lit(1).alias("source_count"),
        F.lit("bench").alias("run_id")), MEMBER), MEMBER)
    lakehouse.overwrite(lakehouse.conform_to(m.select(
        F.col("plan_src").alias("source"), F.col("local_id").alias("source_person_id"), "member_id",
        F.lit("exact").alias("link_method"), F.lit(1.0).alias("link_probability"), F.lit("bench").alias("run_id"),
        F.current_timestamp().alias("linked_at")), MEMBER_XWALK), MEMBER_XWALK)
    lakehouse.overwrite(lakehouse.conform_to(m.select(
        F.col("plan_src").alias("source"), F.col("local_id").alias("source_person_id"), "sex", "zip", "county_fips",
        F.lit("1990-01-01").cast("date").alias("birth_date"), F.array().cast("array<string>").alias("security_labels"),
        F.lit("general").alias("sensitivity")), PERSON), PERSON)
    lakehouse.overwrite(lakehouse.conform_to(m.select(
        F.col("plan_src").alias("source"), F.col("local_id").alias("source_person_id"),
        F.when(F.col("plan_src") == "mcp_bluecoast", "BC").otherwise("SR").alias("plan_id"),
        F.lit("2024-07-01").cast("date").alias("start_date")), COVERAGE), COVERAGE)
    month = (F.pmod(F.col("id"), F.lit(12)) + 1).cast("int")
    lakehouse.overwrite(lakehouse.conform_to(m.select(
        F.col("plan_src").alias("source"), F.concat(F.lit("C"), F.col("id").cast("string")).alias("encounter_id"),
        F.col("local_id").alias("source_person_id"), F.lit("OP").alias("setting"),
        F.make_date(F.lit(2025), month, F.lit(10)).alias("service_date"), F.array(F.lit("99213")).alias("procedure_codes"),
        F.array(F.lit("J459")).alias("diagnosis_codes"), F.array().cast("array<string>").alias("security_labels"),
        F.lit("general").alias("sensitivity")), ENCOUNTER), ENCOUNTER)
    specs = spark.createDataFrame([(i, *x) for i, x in enumerate(MEASURES)],
                                  "k int, measure_id string, share double, rate double, sensitivity string, kind string")
    units = m.crossJoin(F.broadcast(specs)).where(
        (F.pmod(F.xxhash64("id", "k"), F.lit(100000)) / 100000.0 < F.col("share") * F.when(
            (F.col("kind") == "child"), F.lit(3.0)).otherwise(F.lit(1.0)))
        & ((F.col("kind") == "any") | F.col("age_band").isin("0-5", "6-11", "12-17", "18-20")))
    labels = F.when(F.col("sensitivity") == "sud", F.array(F.lit("SUD"))).when(
        F.col("sensitivity") == "mh", F.array(F.lit("MH"))).otherwise(F.array().cast("array<string>"))
    me = units.select(
        "measure_id", F.lit("2025").alias("period"), "member_id",
        F.concat_ws("|", "member_id", "measure_id").alias("unit_id"),
        F.make_date(F.lit(2025), (F.pmod(F.xxhash64("id", "k", F.lit(9)), F.lit(12)) + 1).cast("int"),
                    F.lit(15)).alias("anchor_date"),
        F.lit(True).alias("in_denominator"),
        (F.pmod(F.xxhash64("id", "k", F.lit(5)), F.lit(1000)) / 1000.0 < F.col("rate")).alias("in_numerator"),
        "lhj", "age_band", "sex", "race_ethnicity",
        F.when(F.col("plan_src") == "mcp_bluecoast", "BC").otherwise("SR").alias("plan_id"),
        labels.alias("security_labels"), "sensitivity", F.lit("bench").alias("run_id"))
    table = MEASURE_EVENT
    lakehouse.overwrite(lakehouse.conform_to(me, table), table)
    n_units = lakehouse.read(spark, table).count()
    m.unpersist()
    return {"build_seconds": round(time.perf_counter() - t, 1), "measure_event_rows": n_units}


# ---- synthetic submitters --------------------------------------------------------------------------
def build_synth(home: Path, members: int) -> dict:
    """Synthetic data -> ingest -> conform -> identity -> consent, in this process (a child)."""
    from benchmarks.measures import build

    return build(home, members, counties=SYNTH_COUNTIES, seed=11, stages=BUILD_STAGES)


def _ensure_synth(home: Path, members: int, rebuild: bool) -> dict:
    marker = home / "built.json"
    if marker.exists() and not rebuild:
        return {**json.loads(marker.read_text()), "reused": True}
    cmd = [sys.executable, "-m", "benchmarks.feeds", "--build-only", "--source", "synth", "--members", str(members),
           "--root", str(home.parent)]
    subprocess.run(cmd, check=True, env={**os.environ, "PHMX_LOG_LEVEL": "WARNING"})
    return {**json.loads(marker.read_text()), "reused": False}


# ---- the timed part ----------------------------------------------------------------------------------
def _reset_outputs(home: Path) -> None:
    for sub in ("publish", "keys", "lakehouse/audit", "lakehouse/work", "lakehouse/gold/feed_log"):
        shutil.rmtree(home / sub, ignore_errors=True)


def timed_run(home: Path, *, source: str, period: str = "all", plans: bool = True) -> dict:
    """Measures (synth only) then publish, step by step, on the lakehouse under ``home``."""
    from jobs.publish import lhj_tables, prepare, stage
    from phmx import lakehouse
    from phmx.context import RunContext
    from phmx.engine import get_spark
    from phmx.tables import MEASURE_EVENT
    from privacy.keys import reset_provider_cache

    os.environ["PHMX_HOME"] = str(home)
    reset_provider_cache()
    spark = get_spark()
    out: dict = {"members": lakehouse.read(spark, "gold.member").count()}
    if source == "synth":
        from jobs.measures import run as run_measures

        t = time.perf_counter()
        run_measures(spark, RunContext.new(period=period, run_id="bench-measures"))
        out["measures_seconds"] = round(time.perf_counter() - t, 1)
    out["measure_event_rows"] = lakehouse.read(spark, MEASURE_EVENT).count()
    _reset_outputs(home)
    # Publish reads only the consent stage's decisions (every plan, and every member toward their LHJ).
    from jobs.consent_decisions import run as run_consent

    t = time.perf_counter()
    run_consent(spark, RunContext.new(period=period, run_id="bench-consent"))
    out["consent_seconds"] = round(time.perf_counter() - t, 1)
    ctx = RunContext.new(period=period, run_id="bench-publish")
    t0 = time.perf_counter()
    prepared = prepare.prepare(spark, ctx)
    out["prepare_seconds"] = round(time.perf_counter() - t0, 1)
    t = time.perf_counter()
    done, failed = stage.publish_lhjs(spark, ctx, prepared, prepared.recipients)
    lhj_seconds = time.perf_counter() - t
    plan_seconds = 0.0
    n_plans = 0
    for r in prepared.plans if plans else []:
        t = time.perf_counter()
        try:
            stage.publish_recipient(spark, ctx, r, prepared)
            n_plans += 1
        except Exception as exc:  # noqa: BLE001 - as the stage does: the others still publish
            failed.append(f"{r} ({type(exc).__name__})")
        plan_seconds += time.perf_counter() - t
    n_lhj = len(done)
    out.update({
        "lhj_feeds": n_lhj, "lhj_seconds_total": round(lhj_seconds, 1),
        "lhj_seconds_mean": round(lhj_seconds / n_lhj, 2) if n_lhj else None,
        "build_workers": lhj_tables.pool_size(),
        "plan_feeds": n_plans, "plan_seconds_total": round(plan_seconds, 1),
        "publish_seconds": round(time.perf_counter() - t0, 1), "failed": failed,
        "cells": len(prepared.cells) if prepared.cells is not None else 0,
        "peak_rss_mb": round(_peak_rss_mb()),
    })
    out["measure_units_per_s_prepare"] = round(out["measure_event_rows"] / max(out["prepare_seconds"], 1e-9))
    return out


def run_size(members: int, *, source: str, root: Path, rebuild: bool, plans: bool | None = None,
             quick: bool = False) -> dict:
    home = root.resolve() / f"{source}-m{members}"
    if source == "synth":
        built = _ensure_synth(home, members, rebuild)
    else:
        from phmx.engine import get_spark

        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        os.environ["PHMX_HOME"] = str(home)
        built = build_direct(get_spark(), members)
    t = time.perf_counter()
    plans = (members <= PLAN_LIMIT and not quick) if plans is None else plans
    out = {"source": source, "build": built, **timed_run(home, source=source, plans=plans)}
    out["wall_seconds"] = round(time.perf_counter() - t, 1)
    return out


def _print(out: dict) -> None:
    b = out["build"]
    print(f"\n== {out['members']:,} members ({out['source']}); build: "
          + ", ".join(f"{k} {v}" for k, v in b.items()))
    if "measures_seconds" in out:
        print(f"measures stage        {out['measures_seconds']:>8} s")
    print(f"measure_event rows    {out['measure_event_rows']:>8,}")
    print(f"consent stage         {out['consent_seconds']:>8} s  (decisions for every plan and every member's LHJ)")
    print(f"publish prepare       {out['prepare_seconds']:>8} s  (stored consent for every LHJ at once + one aggregation; "
          f"{out['measure_units_per_s_prepare']:,} units/s; {out['cells']:,} cells incl. state)")
    print(f"LHJ packages          {out['lhj_seconds_total']:>8} s  ({out['lhj_feeds']} feeds, "
          f"{out['lhj_seconds_mean']} s each on average; built by {out['build_workers']} worker processes, "
          "delivered one by one)")
    if out["plan_feeds"]:
        print(f"plan packages         {out['plan_seconds_total']:>8} s  ({out['plan_feeds']} feeds)")
    else:
        print("plan packages         (not timed at this size; --plans to include)")
    print(f"publish total         {out['publish_seconds']:>8} s; wall {out['wall_seconds']} s; "
          f"peak RSS {out['peak_rss_mb']:,} MB")
    if out["failed"]:
        print(f"NOT published ({len(out['failed'])}): {', '.join(out['failed'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.feeds", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--quick", action="store_true", help="10,000 members, direct gold, LHJ feeds only")
    parser.add_argument("--source", choices=("direct", "synth"), default="direct")
    parser.add_argument("--root", default="var/bench/feeds")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the direct lakehouse and packages")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plans", action=argparse.BooleanOptionalAction, default=None,
                        help=f"time the plan feeds too (default: up to {PLAN_LIMIT:,} members)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ.setdefault("PHMX_LOG_LEVEL", "WARNING")
    sizes = [10_000] if args.quick else args.members
    root = Path(args.root)
    if args.build_only:
        build_synth(root.resolve() / f"synth-m{sizes[0]}", sizes[0])
        return 0
    results = []
    print(f"machine: {machine()}")
    for n in sizes:
        out = run_size(n, source=args.source, root=root, rebuild=args.rebuild, plans=args.plans, quick=args.quick)
        results.append(out)
        if not args.json:
            _print(out)
        if args.source == "direct" and not args.keep:
            shutil.rmtree(root.resolve() / f"direct-m{n}", ignore_errors=True)
    if args.json:
        print(json.dumps({"machine": machine(), "results": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
