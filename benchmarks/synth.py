"""Benchmark the synthetic submitters: wall time, rows/s per feed and peak RSS per population size.

    .venv/bin/python -m benchmarks.synth            # 10k, 100k and 1M members
    .venv/bin/python -m benchmarks.synth --quick    # 10k members only (well under a minute)
    .venv/bin/python -m benchmarks.synth --sizes 100000 --workers 2

Each size runs in a fresh subprocess so its peak RSS (its own and its worker processes') is
measured alone. Output goes to a temporary directory that is removed afterwards unless --keep.
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
import tempfile
import time

import psutil

COUNTIES = "06001,06013,06075,06037"


def _one(size: int, out: str, workers: int, months: int) -> dict:
    from phmx.synth import generate

    t0 = time.perf_counter()
    s = generate(out, members=size, counties=COUNTIES.split(","), seed=2025, months=months, workers=workers)
    wall = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    self_kb, child_kb = me.ru_maxrss, kids.ru_maxrss
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    size_bytes = sum(os.path.getsize(os.path.join(out, rel)) for rel in s.files)
    return {
        "members": size, "workers": workers, "months": months, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "members_per_cpu_s": round(size / cpu),
        "members_per_s": round(size / wall), "rows": s.total_rows, "rows_per_s": round(s.total_rows / wall),
        "rows_by_feed": s.rows_by_feed, "feed_rows_per_s": {k: round(v / wall) for k, v in s.rows_by_feed.items()},
        "peak_rss_mb_main": round(self_kb / 1024), "peak_rss_mb_worker": round(child_kb / 1024),
        "files": len(s.files), "output_mb": round(size_bytes / 2**20),
    }


def _machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    return f"{platform.machine()} {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.synth")
    ap.add_argument("--quick", action="store_true", help="10,000 members only")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        sys.stdout.write(json.dumps(_one(args.one, args.out, args.workers, args.months)) + "\n")
        return 0
    sizes = [10_000] if args.quick else [int(x) for x in args.sizes.split(",")]
    sys.stdout.write(f"machine: {_machine()}\n")
    results = []
    for size in sizes:
        out = tempfile.mkdtemp(prefix=f"phmx-bench-synth-{size}-")
        try:
            cmd = [sys.executable, "-m", "benchmarks.synth", "--one", str(size), "--out", out,
                   "--workers", str(args.workers), "--months", str(args.months)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                  env={**os.environ, "PHMX_LOG_LEVEL": "WARNING"})
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-4000:])
                return proc.returncode
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            sys.stdout.write(
                f"{r['members']:>9,} members x {r['months']} months, {r['workers']} workers: {r['wall_s']:8.1f} s wall ({r['cpu_s']:.1f} s CPU), "
                f"{r['members_per_s']:>7,} members/s ({r['members_per_cpu_s']:,} per CPU-s), {r['rows']:>11,} rows, {r['rows_per_s']:>8,} rows/s, "
                f"peak RSS main {r['peak_rss_mb_main']} MB / worker {r['peak_rss_mb_worker']} MB, "
                f"{r['output_mb']:,} MB in {r['files']} files\n")
            sys.stdout.write("    rows/s per feed: " + ", ".join(f"{k} {v:,}" for k, v in r["feed_rows_per_s"].items()) + "\n")
        finally:
            if args.keep:
                sys.stdout.write(f"    kept {out}\n")
            else:
                shutil.rmtree(out, ignore_errors=True)
    sys.stdout.write(json.dumps({"machine": _machine(), "results": results}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
