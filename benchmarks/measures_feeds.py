"""Measures and every feed at scale (issue #7 item 7): time per stage on a 1,000,000-member gold layer.

    python -m benchmarks.measures_feeds --source-home /tmp/m100k --members 1000000   # 100k x10
    python -m benchmarks.measures_feeds --quick          # a 1,000-member synthetic lakehouse x3, 6 LHJ feeds

The lakehouse: a synthetic lakehouse that went through ingest, conform, identity and consent
(``--source-home``; without it one of ``--source-members`` members is built once under
``<root>/src-m<N>`` and reused) is replicated ``members / N`` times with fresh ids (every member,
person, record and consent id suffixed ``~<copy>``: the same clinical distribution), and each
member is then placed in one of the 61 LHJs (58 counties, Berkeley, Long Beach, Pasadena) by a
hash of the member id, weighted roughly by Medi-Cal population (every LHJ at least 0.1%), so the
measures and all 61 LHJ feeds have members. A full synthetic build of 1,000,000 members would
take well over an hour on 2 cores; the replication takes minutes.

Timed, in this process (the embedded engine runs in-process; LHJ packages are built in worker
processes): the measures stage; the consent stage (decisions for every plan and every member's
LHJ, made again because the copies moved LHJ); publish prepare (stored consent for every LHJ at
once, one aggregation); the LHJ packages (suppression, files, signing, ledger, delivery); each plan's
feed (consent, FHIR NDJSON streamed from the engine, signing, ledger, delivery). Prints seconds,
rows/s, peak RSS (this process and the largest worker) and the machine with its load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.feeds import _lhj_buckets, machine

# table -> identifier columns suffixed in each copy (absent tables are skipped)
TABLES = {
    "gold.member": ["member_id"],
    "gold.member_xwalk": ["source_person_id", "member_id"],
    "gold.consent_decision": ["member_id"],
    "silver.person": ["source_person_id"],
    "silver.coverage": ["source_person_id"],
    "silver.encounter": ["source_person_id", "encounter_id"],
    "silver.bh_service": ["source_person_id", "service_id"],
    "silver.dental_service": ["source_person_id", "service_id"],
    "silver.immunization": ["source_person_id", "immunization_id"],
    "silver.medication": ["source_person_id", "rx_claim_id"],
    "silver.social_observation": ["source_person_id", "observation_id"],
    "silver.consent": ["source_person_id", "consent_id"],
    "bronze.sud_caloms": ["client_id"],
    "bronze.mh_csi": ["client_number"],
}
CITIES = ("Berkeley", "Long Beach", "Pasadena")


def _rss() -> tuple[int, int]:
    """Peak RSS in MB of this process and of the largest finished child (the LHJ workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return round(own), round(kids)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def build_source(home: Path, members: int) -> None:
    """A synthetic lakehouse through consent, built in a child process (once; reused later)."""
    if (home / "built.json").exists():
        return
    cmd = [sys.executable, "-m", "benchmarks.feeds", "--build-only", "--source", "synth", "--members", str(members),
           "--root", str(home.parent)]
    subprocess.run(cmd, check=True, env={**os.environ, "PHMX_LOG_LEVEL": "WARNING"})
    built = home.parent / f"synth-m{members}"
    if built != home:
        shutil.rmtree(home, ignore_errors=True)
        built.rename(home)


def replicate(spark, src: Path, home: Path, factor: int, *, tables: dict[str, list[str]] | None = None,  # noqa: ANN001
              spread_lhjs: bool = True) -> dict:
    """Copy ``src``'s ``tables`` (default :data:`TABLES`) ``factor`` times with suffixed ids into
    ``home``; with ``spread_lhjs``, spread the members over all 61 LHJs."""
    from pyspark.sql import functions as F

    from phmx import lakehouse

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    t = time.perf_counter()
    copies = spark.range(factor).select(F.col("id").cast("string").alias("_copy"))
    buckets = spark.createDataFrame(
        [(b, lhj, fips, zip5 if lhj in CITIES else None) for b, lhj, fips, zip5 in _lhj_buckets()],
        "_bucket int, _lhj string, _fips string, _zip string")
    rows = {}
    for table, ids in (tables or TABLES).items():
        os.environ["PHMX_HOME"] = str(src)
        if not lakehouse.exists(table):
            continue
        df = lakehouse.read(spark, table)
        cols = df.columns
        df = df.crossJoin(copies)
        for c in ids:
            if c in cols:
                df = df.withColumn(c, F.when(F.col(c).isNotNull(), F.concat(F.col(c), F.lit("~"), F.col("_copy"))))
        df = df.drop("_copy")
        if table == "gold.member" and spread_lhjs:
            df = (df.withColumn("_bucket", F.pmod(F.xxhash64("member_id"), F.lit(1000)).cast("int"))
                  .join(F.broadcast(buckets), "_bucket")
                  .withColumn("lhj", F.col("_lhj")).withColumn("county_fips", F.col("_fips"))
                  .withColumn("zip", F.coalesce(F.col("_zip"), F.col("zip"))).select(*cols))
        os.environ["PHMX_HOME"] = str(home)
        lakehouse.overwrite(df, table)
        rows[table] = lakehouse.read(spark, table).count()
    out = {"replicated_from": str(src), "factor": factor, "replicate_seconds": round(time.perf_counter() - t, 1),
           "rows": rows}
    (home / "built.json").write_text(json.dumps(out))
    return out


def _silver_rows(spark) -> int:  # noqa: ANN001
    from phmx import lakehouse
    from phmx.tables import COVERAGE, SILVER_EVENT_TABLES

    return sum(lakehouse.read(spark, t).count() for t in (*SILVER_EVENT_TABLES, COVERAGE) if lakehouse.exists(t))


def timed(spark, home: Path, period: str, lhj_limit: int | None = None) -> dict:  # noqa: ANN001
    """The measures stage, then publish: prepare, the LHJ packages (all, or the first ``lhj_limit``),
    each plan's feed; seconds each."""
    from pyspark.sql import functions as F

    from jobs.measures import run as run_measures
    from jobs.publish import lhj_tables, prepare, stage
    from phmx import lakehouse
    from phmx.context import RunContext
    from phmx.tables import MEASURE_EVENT
    from privacy.keys import reset_provider_cache

    os.environ["PHMX_HOME"] = str(home)
    reset_provider_cache()
    out: dict = {"members": lakehouse.read(spark, "gold.member").count(),
                 "lhjs_with_members": lakehouse.read(spark, "gold.member").where(F.col("lhj").isNotNull())
                 .select("lhj").distinct().count(),
                 "silver_rows": _silver_rows(spark), "load_before": _load()}
    t = time.perf_counter()
    run_measures(spark, RunContext.new(period=period, run_id="bench-measures"))
    out["measures_seconds"] = round(time.perf_counter() - t, 1)
    out["measure_event_rows"] = lakehouse.read(spark, MEASURE_EVENT).count()
    out["rss_after_measures_mb"] = _rss()[0]
    for sub in ("publish", "lakehouse/work", "lakehouse/gold/feed_log"):
        shutil.rmtree(home / sub, ignore_errors=True)
    # The replicated members moved to other LHJs: the consent stage decides again (publish only reads).
    from jobs.consent_decisions import run as run_consent

    t = time.perf_counter()
    run_consent(spark, RunContext.new(period=period, run_id="bench-consent"))
    out["consent_seconds"] = round(time.perf_counter() - t, 1)
    ctx = RunContext.new(period=period, run_id="bench-publish")
    t0 = time.perf_counter()
    prepared = prepare.prepare(spark, ctx)
    out["prepare_seconds"] = round(time.perf_counter() - t0, 1)
    out["cells"] = len(prepared.cells) if prepared.cells is not None else 0
    t = time.perf_counter()
    lhjs = prepared.recipients[:lhj_limit] if lhj_limit else prepared.recipients
    done, failed = stage.publish_lhjs(spark, ctx, prepared, lhjs)
    out["lhj_seconds"] = round(time.perf_counter() - t, 1)
    out["lhj_recipients"] = len(prepared.recipients)
    out["lhj_published"] = len(lhjs)
    out["lhj_feeds"] = len(done)
    out["lhj_workers"] = lhj_tables.pool_size()
    plans = []
    for r in prepared.plans:
        t = time.perf_counter()
        try:
            res = stage.publish_plan(spark, ctx, r)
            plans.append({"recipient": r, "seconds": round(time.perf_counter() - t, 1),
                          "resources": sum(res["resources"].values()), "members": res["members"],
                          "bytes": sum(p.stat().st_size for p in Path(res["uri"]).iterdir())})
        except Exception as exc:  # noqa: BLE001 - as the stage does: the others still publish
            failed.append(f"{r} ({type(exc).__name__}: {str(exc)[:120]})")
            plans.append({"recipient": r, "seconds": round(time.perf_counter() - t, 1), "resources": 0})
    out["plans"] = plans
    out["publish_seconds"] = round(time.perf_counter() - t0, 1)
    out["failed"] = failed
    out["peak_rss_mb"], out["peak_rss_worker_mb"] = _rss()
    out["load_after"] = _load()
    return out


def _rate(n: int, s: float) -> str:
    return f"{n / s:>12,.0f}" if s else f"{'-':>12}"


def report(out: dict) -> None:
    b = out["build"]
    print(f"machine: {out['machine']}")
    print(f"lakehouse: {b['replicated_from']} x{b['factor']} ({b['replicate_seconds']} s to replicate); "
          f"{out['members']:,} members in {out['lhjs_with_members']} LHJs; {out['silver_rows']:,} silver event + "
          f"coverage rows; {out['load_before']} at start")
    print(f"{'stage':34s} {'seconds':>9s} {'rows':>14s} {'rows/s':>12s}")
    print(f"{'measures (all measures, risk)':34s} {out['measures_seconds']:>9.1f} {out['silver_rows']:>14,} "
          f"{_rate(out['silver_rows'], out['measures_seconds'])}  (silver rows in; "
          f"{out['measure_event_rows']:,} measure_event rows out)")
    print(f"{'consent stage (plans, members x LHJ)':34s} {out['consent_seconds']:>9.1f}")
    print(f"{'publish: prepare (61 LHJs at once)':34s} {out['prepare_seconds']:>9.1f} {out['measure_event_rows']:>14,} "
          f"{_rate(out['measure_event_rows'], out['prepare_seconds'])}  (measure units in; {out['cells']:,} cells)")
    print(f"{'publish: LHJ packages':34s} {out['lhj_seconds']:>9.1f} {out['cells']:>14,} "
          f"{_rate(out['cells'], out['lhj_seconds'])}  ({out['lhj_feeds']} of {out['lhj_published']} LHJ feeds "
          f"delivered, of {out['lhj_recipients']} LHJs with members; built by {out['lhj_workers']} worker processes)")
    for p in out["plans"]:
        print(f"{'publish: plan ' + p['recipient']:34s} {p['seconds']:>9.1f} {p['resources']:>14,} "
              f"{_rate(p['resources'], p['seconds'])}  (FHIR resources; {p.get('members', 0):,} members, "
              f"{p.get('bytes', 0) / 2**20:,.0f} MiB)")
    print(f"{'publish total':34s} {out['publish_seconds']:>9.1f}")
    print(f"{'measures + publish':34s} {out['measures_seconds'] + out['publish_seconds']:>9.1f}")
    worker = (f"{out['peak_rss_worker_mb']:,} MB" if out["peak_rss_worker_mb"]
              else "none (built in this process)")
    print(f"RSS after the measures stage {out['rss_after_measures_mb']:,} MB; peak RSS {out['peak_rss_mb']:,} MB "
          f"(this process, engine included); largest LHJ worker {worker}; {out['load_after']} at the end")
    if out["failed"]:
        print(f"NOT published ({len(out['failed'])}): {'; '.join(out['failed'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.measures_feeds", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--source-home", help="a PHMX_HOME built through consent (read only)")
    parser.add_argument("--source-members", type=int, default=100_000,
                        help="size of the source lakehouse built when --source-home is not given")
    parser.add_argument("--quick", action="store_true",
                        help="1,000 synthetic members x3, 6 LHJ feeds and the plans (under a minute once built)")
    parser.add_argument("--lhj-limit", type=int, default=None, help="package only the first N LHJs")
    parser.add_argument("--period", default="all")
    parser.add_argument("--root", default="var/bench/measures_feeds")
    parser.add_argument("--keep", action="store_true", help="keep the replicated lakehouse and packages")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("PHMX_LOG_LEVEL", "WARNING")
    root = Path(args.root).resolve()
    members, src_members = (3_000, 1_000) if args.quick else (args.members, args.source_members)
    if args.source_home:
        src = Path(args.source_home).resolve()
    else:
        src = root / f"src-m{src_members}"
        build_source(src, src_members)
    from phmx import lakehouse
    from phmx.engine import get_spark

    spark = get_spark()
    os.environ["PHMX_HOME"] = str(src)
    have = lakehouse.read(spark, "gold.member").count()
    factor = max(1, math.ceil(members / max(have, 1)))  # at least the size asked for
    home = root / f"m{members}"
    built = replicate(spark, src, home, factor)
    limit = args.lhj_limit or (6 if args.quick else None)
    out = {"machine": machine(), "build": built, **timed(spark, home, args.period, limit)}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        report(out)
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
