"""End-to-end scale benchmark: synthetic submitters -> every stage, rows/s per stage and peak memory.

    python -m benchmarks.pipeline --members 10000 100000      # the issue #2 figures
    python -m benchmarks.pipeline --members 1000000            # one real million (issue #15)
    python -m benchmarks.pipeline --quick                      # 2,000 members, under a minute
    python -m benchmarks.pipeline --members 1000000 --population var/pop/m1000000
                                 # a population ``phmx synth`` made before (same --members), not generated again
    python -m benchmarks.pipeline --members 1000000 --from-stage indicators
                                 # resume the run kept under --out at a stage (after one failed): the
                                 # stages before it are not run again; their figures stay in the partial JSON

Each size runs in a fresh PHMX_HOME under var/bench/ on the embedded engine. The population is
generated first in a child process (``phmx synth``), so its peak RSS is the generator's own and
shows whether generation stays in bounded memory. Reports, per stage: wall seconds, CPU seconds
(every thread of this process, so the embedded engine's too, plus any worker processes the stage
waited for: the figure to compare when the machine is shared), peak RSS during that stage (the
high-water mark is reset before each stage through /proc/self/clear_refs, so each figure is that
stage's own; Linux only, else the process's peak so far), the peak RSS of worker processes the
stage started (ingest's parsers, publish's LHJ builders: the largest child so far, shown when a
stage raised it), the input rows it processed, rows/s; the whole run's wall time; the load average
at the start and end.
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


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux: writing 5 to clear_refs); False elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _stage_peak_rss_mb() -> float:
    """The RSS high-water mark since the last reset (VmHWM), or the process's peak so far."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return _peak_rss_mb()


def _children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def synth_in_child(home: Path, members: int, counties: list[str], months: int) -> dict:
    """Run ``phmx synth`` in a child process; its wall seconds, CPU seconds and peak RSS (MB)."""
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [sys.executable, "-m", "phmx.cli", "synth", "--members", str(members), "--counties", ",".join(counties),
           "--seed", "1", "--months", str(months), "--out", str(home), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"synth failed ({proc.returncode}): {proc.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(proc.stdout)
    # ru_maxrss of RUSAGE_CHILDREN is the largest child waited for so far: the synth is the first.
    return {"seconds": round(time.perf_counter() - t0, 1),
            "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "peak_rss_mb": round(after.ru_maxrss / 1024.0), "rows": summary.get("total_rows", 0),
            "rows_by_feed": summary.get("rows_by_feed", {})}


def reuse_population(home: Path, population: Path) -> dict:
    """Put a population made before by ``phmx synth --out <population>`` into ``home`` (hard links where the
    file system allows, else copies: ingest only reads the landing files) instead of generating it.

    Why: at 1,000,000 members generation is a run of its own (its figures come from that run, e.g. under
    ``/usr/bin/time -v``); the pipeline's figures do not depend on who generated the files.
    """
    if not (population / "landing").is_dir():
        raise SystemExit(f"{population}: no landing/ folder; make it with phmx synth --out {population}")

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    t0 = time.perf_counter()
    shutil.copytree(population, home, copy_function=link)
    # The rows landed are the ingest stage's input_rows.
    return {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": None, "peak_rss_mb": None,
            "rows": 0, "rows_by_feed": {}, "reused": str(population)}


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


def _print_stage(s: dict) -> None:
    workers = f"  workers' peak {s['workers_peak_rss_mb']:,} MB" if s.get("workers_peak_rss_mb") else ""
    print(f"  {s['stage']:<10} {s['seconds']:>8.1f} s  CPU {s['cpu_seconds']:>7.1f} s  "
          f"peak {s['peak_rss_mb']:>6,} MB{workers}  {s['input_rows']:>11,} rows in  "
          f"{(s['rows_per_s'] or 0):>10,} rows/s  load {s['load']:.1f}"
          + (f"  FAILED: {s['failure']}" if s["failure"] else ""), flush=True)


def run_size(members: int, counties: list[str], months: int, root: Path, population: Path | None = None,
             from_stage: str | None = None) -> dict:
    from jobs import STAGES
    from jobs.entry import run_stage
    from phmx.engine import get_spark
    from phmx.errors import PhmxError

    home = root / f"m{members}"
    partial = root / f"pipeline-{members}.partial.json"
    stages: list[dict] = []
    if from_stage:
        # Resume: the home and the figures of the stages before ``from_stage`` are the kept run's.
        if from_stage not in STAGES or not home.is_dir():
            raise SystemExit(f"--from-stage {from_stage}: needs a stage of {', '.join(STAGES)} and the run kept in {home}")
        before = STAGES[:STAGES.index(from_stage)]
        stages = [s for s in (json.loads(partial.read_text()) if partial.exists() else []) if s["stage"] in before]
        synth = {"seconds": 0.0, "cpu_seconds": None, "peak_rss_mb": None, "rows": 0, "rows_by_feed": {},
                 "resumed_at": from_stage}
    else:
        shutil.rmtree(home, ignore_errors=True)
    os.environ["PHMX_HOME"] = str(home)
    if not from_stage:
        synth = reuse_population(home, population) if population else synth_in_child(home, members, counties, months)
    print(f"\n== {members:,} members: population {'reused from ' + str(population) if population else 'generated'} "
          f"in {synth['seconds']} s; load {os.getloadavg()[0]:.1f}"
          + (f"; resumed at {from_stage}" if from_stage else ""), flush=True)
    spark = get_spark()
    t_all = time.perf_counter()
    load_start = os.getloadavg()[0]
    for stage in STAGES[STAGES.index(from_stage) if from_stage else 0:]:
        _reset_peak_rss()
        children_peak = _children_peak_mb()
        t, cpu, child_cpu = time.perf_counter(), time.process_time(), _children_cpu()
        try:
            result = run_stage(stage, period="all", run_id=f"bench-{members}")
            failure = None
        except PhmxError as exc:  # e.g. publish refusing a feed the privacy audit cannot protect
            result, failure = None, str(exc).splitlines()[0][:160]
        secs = time.perf_counter() - t
        cpu = time.process_time() - cpu + _children_cpu() - child_cpu
        peak = _stage_peak_rss_mb()
        workers_peak = _children_peak_mb()
        rows = _input_rows(spark, stage)
        stages.append({"stage": stage, "seconds": round(secs, 2), "cpu_seconds": round(cpu, 2),
                       "peak_rss_mb": round(peak), "input_rows": rows,
                       "workers_peak_rss_mb": round(workers_peak) if workers_peak > children_peak else None,
                       "rows_per_s": round(rows / secs) if secs > 0 else None,
                       "failure": failure, "load": round(os.getloadavg()[0], 1),
                       "counts": {k: v for k, v in result.counts.items() if isinstance(v, int | float)}
                       if result else {}})
        _print_stage(stages[-1])  # as each stage ends: a long run shows its figures before it finishes
        partial.write_text(json.dumps(stages, indent=2))
    return {"members": members, "synth_seconds": synth["seconds"], "synth": synth,
            "pipeline_seconds": round(time.perf_counter() - t_all, 1), "stages": stages,
            "peak_rss_mb": max([round(_peak_rss_mb())] + [s["peak_rss_mb"] for s in stages]), "load_start": round(load_start, 1),
            "load_end": round(os.getloadavg()[0], 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pipeline")
    parser.add_argument("--members", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--counties", default="06001,06013,06075,06037,06067")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="var/bench")
    parser.add_argument("--population", type=Path, default=None,
                        help="a folder phmx synth made (same --members): reuse it instead of generating one")
    parser.add_argument("--from-stage", default=None,
                        help="resume the run kept under --out at this stage (one size only)")
    args = parser.parse_args(argv)
    sizes = [2_000] if args.quick else args.members
    root = Path(args.out).resolve()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start")
    results = []
    for n in sizes:
        r = run_size(n, args.counties.split(","), args.months, root,
                     args.population.resolve() if args.population else None, args.from_stage)
        results.append(r)
        sy = r["synth"]
        print(f"\n== {n:,} members: synth {sy['seconds']} s (CPU {sy['cpu_seconds']} s, peak RSS "
              f"{sy['peak_rss_mb']} MB, {sy['rows']:,} rows), pipeline {r['pipeline_seconds']} s "
              f"(CPU {sum(s['cpu_seconds'] for s in r['stages']):.1f} s), "
              f"peak RSS {r['peak_rss_mb']} MB, load {r['load_start']} -> {r['load_end']}")
        for s in r["stages"]:
            _print_stage(s)
        sys.stdout.flush()
    (root / "pipeline.json").write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
