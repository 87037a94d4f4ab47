"""Measures stage benchmark: time per measure group and total, peak memory, over a synthetic lakehouse.

    python -m benchmarks.measures                    # 100,000 members
    python -m benchmarks.measures --quick            # 10,000 members (under a minute once built)
    python -m benchmarks.measures --members 1000000 --replicate-from 100000
                                                     # 1M members: the 100k lakehouse x10

A full synthetic build of 1,000,000 members (generate, ingest, conform, identity) takes well
over an hour on 2 cores, so ``--replicate-from N`` builds the larger lakehouse by copying the
N-member one (members, crosswalk, coverage and every silver event table, plus the two bronze
tables the interim homelessness evidence reads) with every identifier suffixed ``~<copy>``:
the same clinical distribution, members x (size / N).

The lakehouse (synthetic submitters -> ingest -> conform -> identity) is built once per size
under var/bench/measures/m<N>/ in a child process, and reused on later runs (``--rebuild`` to
start over), so the figures here are the measures stage alone: its peak RSS is this process's
(the embedded engine runs in-process). Reports input rows (silver events + coverage), units
written (gold.measure_event rows), seconds for the inputs, for every group's measure events
(written together in one commit) and for member risk, total
seconds, rows/s, peak RSS, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

COUNTIES = ["06001", "06013", "06075", "06037"]
BUILD_STAGES = ("ingest", "conform", "identity")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> str:
    import psutil

    return (f"{platform.machine()} {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"Python {platform.python_version()}, engine {os.environ.get('PHMX_ENGINE', 'sail')}")


def build(home: Path, members: int, *, counties: list[str] | None = None, seed: int = 7,
          stages: tuple[str, ...] = BUILD_STAGES) -> dict:
    """Synthetic data -> the ``stages`` (ingest, conform, identity), in this process (called in a
    child); timings in ``<home>/built.json``. benchmarks.feeds builds its source this way too."""
    from jobs.entry import run_stage
    from phmx.synth import generate

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ["PHMX_HOME"] = str(home)
    t = time.perf_counter()
    generate(home, members=members, counties=counties or COUNTIES, seed=seed)
    out = {"synth_seconds": round(time.perf_counter() - t, 1)}
    for stage in stages:
        t = time.perf_counter()
        run_stage(stage, period="all", run_id=f"bench-build-{members}")
        out[f"{stage}_seconds"] = round(time.perf_counter() - t, 1)
    (home / "built.json").write_text(json.dumps(out))
    return out


# What the measures stage reads (benchmarks.measures_feeds.TABLES names each table's id columns).
REPLICATED = ("gold.member", "gold.member_xwalk", "silver.coverage", "silver.encounter", "silver.bh_service",
              "silver.dental_service", "silver.immunization", "silver.medication", "silver.social_observation")


def replicate(src: Path, home: Path, factor: int) -> dict:
    """Build a lakehouse ``factor`` times the size of ``src`` by copying it with suffixed ids
    (members keep their LHJs)."""
    from benchmarks.measures_feeds import TABLES
    from benchmarks.measures_feeds import replicate as copy_tables
    from phmx.engine import get_spark

    return copy_tables(get_spark(), src, home, factor, tables={t: TABLES[t] for t in REPLICATED},
                       spread_lhjs=False)


def _ensure_built(home: Path, members: int, rebuild: bool, replicate_from: int | None = None) -> dict:
    marker = home / "built.json"
    if marker.exists() and not rebuild:
        return {**json.loads(marker.read_text()), "reused": True}
    cmd = [sys.executable, "-m", "benchmarks.measures", "--build-only", "--members", str(members),
           "--root", str(home.parent)]
    if replicate_from:
        _ensure_built(home.parent / f"m{replicate_from}", replicate_from, False)
        cmd += ["--replicate-from", str(replicate_from)]
    subprocess.run(cmd, check=True, env={**os.environ, "PHMX_LOG_LEVEL": "WARNING"})
    return {**json.loads(marker.read_text()), "reused": False}


def _input_rows(spark) -> int:  # noqa: ANN001
    from phmx import lakehouse
    from phmx.tables import COVERAGE, SILVER_EVENT_TABLES

    return sum(lakehouse.read(spark, t).count() for t in (*SILVER_EVENT_TABLES, COVERAGE))


def measure(home: Path, period: str) -> dict:
    """Run the measures stage on a built lakehouse; per-step seconds from the stage itself."""
    from jobs.measures.stage import run
    from phmx import lakehouse
    from phmx.context import RunContext
    from phmx.engine import get_spark
    from phmx.tables import MEASURE_EVENT, MEMBER_RISK

    os.environ["PHMX_HOME"] = str(home)
    spark = get_spark()
    rows_in = _input_rows(spark)
    members = lakehouse.read(spark, "gold.member").count()
    t = time.perf_counter()
    result = run(spark, RunContext.new(period=period, run_id="bench-measures"))
    total = time.perf_counter() - t
    units = lakehouse.read(spark, MEASURE_EVENT).where(f"period = '{result.counts['period']}'").count()
    risk_rows = lakehouse.read(spark, MEMBER_RISK).where(f"period = '{result.counts['period']}'").count()
    return {"members": members, "input_rows": rows_in, "measure_event_rows": units, "member_risk_rows": risk_rows,
            "period": result.counts["period"], "seconds_total": round(total, 1),
            "seconds_per_group": result.details["seconds"],
            "input_rows_per_s": round(rows_in / total) if total else None,
            "rates": {k: v["rate"] for k, v in result.details["rates"].items()},
            "peak_rss_mb": round(_peak_rss_mb())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.measures", description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 members")
    parser.add_argument("--period", default="all", help="measurement period (default: the data's latest year)")
    parser.add_argument("--root", default="var/bench/measures")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the lakehouse even if one exists")
    parser.add_argument("--replicate-from", type=int, default=None,
                        help="build by copying the lakehouse of this many members (ids suffixed)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    members = 10_000 if args.quick else args.members
    home = Path(args.root).resolve() / f"m{members}"
    if args.build_only:
        if args.replicate_from:
            src = Path(args.root).resolve() / f"m{args.replicate_from}"
            replicate(src, home, max(1, members // args.replicate_from))
        else:
            build(home, members)
        return 0
    built = _ensure_built(home, members, args.rebuild, args.replicate_from)
    out = {"machine": machine(), "build": built, **measure(home, args.period)}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"machine: {out['machine']}")
    b = out["build"]
    if "factor" in b:
        print(f"lakehouse ({'reused' if b.get('reused') else 'built'}): the {b['replicated_from']} lakehouse "
              f"x{b['factor']} ({b['replicate_seconds']} s)")
    else:
        print(f"lakehouse ({'reused' if b.get('reused') else 'built'}): synth {b.get('synth_seconds')} s, "
              + ", ".join(f"{s} {b.get(f'{s}_seconds')} s" for s in BUILD_STAGES))
    print(f"members {out['members']:,}; silver event + coverage rows {out['input_rows']:,}; period {out['period']}")
    print(f"{'step':14s} {'seconds':>8s}")
    for g, s in out["seconds_per_group"].items():
        print(f"{g:14s} {s:8.2f}")
    print(f"total {out['seconds_total']} s (incl. reading inputs and the result counts); "
          f"{out['input_rows_per_s']:,} input rows/s; {out['measure_event_rows']:,} measure_event rows, "
          f"{out['member_risk_rows']:,} member_risk rows; peak RSS {out['peak_rss_mb']:,} MB")
    print("rates: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in out["rates"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
