"""End-to-end scale benchmark: synthetic submitters -> every stage, rows/s per stage and peak memory.

    python -m benchmarks.pipeline --members 10000 100000      # the issue #2 figures
    python -m benchmarks.pipeline --quick                      # 2,000 members, under a minute

Each size runs in a fresh PHMX_HOME under var/bench/ on the embedded engine. Reports, per
stage: seconds, CPU seconds (every thread of this process, so the embedded engine's too: the
figure to compare when the machine is shared), the input rows it processed, rows/s; the whole
run's wall time; the load average at the start; peak RSS of
this process (the engine runs in-process, so this includes it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> str:
    import psutil

    return (f"{platform.machine()} {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"Python {platform.python_version()}, engine {os.environ.get('PHMX_ENGINE', 'sail')}")


def _input_rows(spark, stage: str) -> int:
    from phmx import lakehouse
    from phmx.tables import MEMBER_XWALK, PERSON, SILVER_EVENT_TABLES, SUBMISSIONS

    if stage == "ingest":
        rows = lakehouse.read(spark, SUBMISSIONS).agg({"rows_landed": "sum"}).collect()[0][0]
        return int(rows or 0)
    if stage == "conform":
        total = 0
        for name in ("enrollment", "claims", "pharmacy", "mh_csi", "sud_caloms", "dental_claims", "immunizations"):
            if lakehouse.exists(f"bronze.{name}"):
                total += lakehouse.read(spark, f"bronze.{name}").count()
        return total
    if stage == "identity":
        return lakehouse.read(spark, PERSON).count()
    if stage in ("consent", "measures", "publish"):
        return sum(lakehouse.read(spark, t).count() for t in SILVER_EVENT_TABLES) + \
            lakehouse.read(spark, MEMBER_XWALK).count() * 0
    return 0


def run_size(members: int, counties: list[str], months: int, root: Path) -> dict:
    from jobs import STAGES
    from jobs.entry import run_stage
    from phmx.engine import get_spark
    from phmx.errors import PhmxError
    from phmx.synth import generate

    home = root / f"m{members}"
    shutil.rmtree(home, ignore_errors=True)
    os.environ["PHMX_HOME"] = str(home)
    t0 = time.perf_counter()
    generate(home, members=members, counties=counties, seed=1, months=months)
    synth_s = time.perf_counter() - t0
    spark = get_spark()
    stages = []
    t_all = time.perf_counter()
    for stage in STAGES:
        t, cpu = time.perf_counter(), time.process_time()
        try:
            result = run_stage(stage, period="all", run_id=f"bench-{members}")
            failure = None
        except PhmxError as exc:  # e.g. publish refusing a feed the privacy audit cannot protect
            result, failure = None, str(exc).splitlines()[0][:160]
        secs, cpu = time.perf_counter() - t, time.process_time() - cpu
        rows = _input_rows(spark, stage)
        stages.append({"stage": stage, "seconds": round(secs, 2), "cpu_seconds": round(cpu, 2), "input_rows": rows,
                       "rows_per_s": round(rows / secs) if secs > 0 else None,
                       "failure": failure,
                       "counts": {k: v for k, v in result.counts.items() if isinstance(v, int | float)}
                       if result else {}})
    return {"members": members, "synth_seconds": round(synth_s, 1),
            "pipeline_seconds": round(time.perf_counter() - t_all, 1), "stages": stages,
            "peak_rss_mb": round(_peak_rss_mb())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline")
    parser.add_argument("--members", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--counties", default="06001,06013,06075,06037,06067")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="var/bench")
    args = parser.parse_args(argv)
    sizes = [2_000] if args.quick else args.members
    root = Path(args.out).resolve()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start")
    results = []
    for n in sizes:
        r = run_size(n, args.counties.split(","), args.months, root)
        results.append(r)
        print(f"\n== {n:,} members: synth {r['synth_seconds']} s, pipeline {r['pipeline_seconds']} s, "
              f"peak RSS {r['peak_rss_mb']} MB")
        for s in r["stages"]:
            print(f"  {s['stage']:<9} {s['seconds']:>8.1f} s  CPU {s['cpu_seconds']:>7.1f} s  "
                  f"{s['input_rows']:>11,} rows in  "
                  f"{(s['rows_per_s'] or 0):>10,} rows/s" + (f"  FAILED: {s['failure']}" if s["failure"] else ""))
        sys.stdout.flush()
    (root / "pipeline.json").write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
