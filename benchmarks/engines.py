"""The same pipeline on every engine route, per-stage wall time side by side.

    python -m benchmarks.engines                      # 2,000 members (the demo size), all three routes
    python -m benchmarks.engines --members 300        # the size the cross-engine test uses
    python -m benchmarks.engines --routes sail classic
    python -m benchmarks.engines --quick              # 200 members
    python -m benchmarks.engines --parallel           # routes after the first at the same time

Routes: ``sail`` (embedded), ``classic`` (JVM Spark local[2] with Delta, ``PHMX_ENGINE=classic``),
``connect`` (a JVM Spark Connect server with Delta on 127.0.0.1, started here). Each route runs
the whole pipeline in a fresh process on the same synthetic landing zone (same seed) with its own
PHMX_HOME under ``--out``; the JVM start-up is inside the first stage's time. The machine and its
load are printed with the figures (2 cores shared with other work make figures noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess  # noqa: S404 - runs this project's own pipeline in a child process
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_ID = "run-engines"
ROUTES = ("sail", "classic", "connect")
RUN_SCRIPT = """
import json, os, resource, sys, time
import psutil
from jobs import STAGES
from phmx.pipeline import run_pipeline

def cpu_seconds():
    # This process, its live descendants (the classic JVM and its Python workers) and the Spark
    # Connect server (PHMX_BENCH_SERVER_PID): user + system seconds so far.
    procs = [psutil.Process()]
    procs += procs[0].children(recursive=True)
    if os.environ.get("PHMX_BENCH_SERVER_PID"):
        server = psutil.Process(int(os.environ["PHMX_BENCH_SERVER_PID"]))
        procs += [server, *server.children(recursive=True)]
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total

def delta_commits():
    # Commit files of every Delta table of this home (a commit is a JSON file in _delta_log).
    root = os.path.join(os.environ["PHMX_HOME"], "lakehouse")
    return sum(1 for d, _, files in os.walk(root) if d.endswith("_delta_log")
               for f in files if f.endswith(".json") and f[:-5].isdigit())

stages, cpu, counts, commits, windows = {}, {}, {}, {}, {}
for stage in STAGES:
    c0, n0, t0 = cpu_seconds(), delta_commits(), time.time()
    (r,) = run_pipeline(period="all", run_id=sys.argv[1], stages=[stage])
    stages[stage], cpu[stage], counts[stage] = r.details.get("seconds"), round(cpu_seconds() - c0, 2), r.counts
    commits[stage], windows[stage] = delta_commits() - n0, [int(t0 * 1000), int(time.time() * 1000)]
print("STAGES " + json.dumps(stages))
print("CPU " + json.dumps(cpu))
print("COMMITS " + json.dumps(commits))
print("WINDOWS " + json.dumps(windows))
print("COUNTS " + json.dumps(counts, default=str))
print("RSS_MB " + json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""

def prepare(base: Path, members: int, seed: int = 7) -> Path:
    """One synthetic landing zone (same seed, byte-identical files) shared by every route."""
    from phmx.synth import generate

    src = base / "source"
    if not (src / "landing").is_dir():
        generate(src, members=members, counties=["06001", "06075"], seed=seed, months=3)
    return src / "landing"


def run_route(base: Path, route: str, landing: Path, env: dict[str, str], timeout: int = 3600) -> dict:
    """Run every stage on ``route`` in a fresh process with its own home and the shared keys.

    A finished route (its ``stages.json``) is reused. Returns ``{"STAGES", "CPU", "COMMITS", "WINDOWS", "COUNTS", "RSS_MB"}``:
    wall and CPU seconds per stage (CPU of the whole process tree, the JVM and the Connect server
    included), Delta commits per stage, each stage's clock window, counts, the driver's peak RSS.
    On the classic route the JVM writes a Spark event log under ``<home>/events``, summarised per
    stage as ``SPARK`` (:func:`spark_jobs_per_stage`).
    """
    home = base / route
    if (home / "stages.json").is_file():
        return json.loads((home / "stages.json").read_text())
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(landing, home / "landing")
    full = {**os.environ, "PHMX_HOME": str(home), "PHMX_KEYS_DIR": str(base / "keys"), "PYTHONPATH": str(REPO),
            "PHMX_SHUFFLE_PARTITIONS": os.environ.get("PHMX_SHUFFLE_PARTITIONS", "2"),
            "PHMX_LOG_LEVEL": "WARNING", **env}
    if full.get("PHMX_ENGINE") != "connect":
        full.pop("SPARK_REMOTE", None)
    events = home / "events"
    if full.get("PHMX_ENGINE") == "classic":
        events.mkdir(parents=True, exist_ok=True)
        full["PYSPARK_SUBMIT_ARGS"] = (f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir={events.as_uri()} "
                                       "--conf spark.eventLog.compress=false pyspark-shell")
    proc = subprocess.run([sys.executable, "-c", RUN_SCRIPT, RUN_ID], env=full, capture_output=True,  # noqa: S603
                          text=True, timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"the pipeline failed on {route}:\n{proc.stderr[-5000:]}")
    out = {k: json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
           for k in ("STAGES", "CPU", "COMMITS", "WINDOWS", "COUNTS", "RSS_MB") if line.startswith(k + " ")}
    if events.is_dir():
        out["SPARK"] = spark_jobs_per_stage(events, out["WINDOWS"])
    (home / "stages.json").write_text(json.dumps(out))
    return out


def spark_jobs_per_stage(events: Path, windows: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    """Spark jobs, their summed seconds and tasks per pipeline stage, from a Spark event log.

    A job belongs to the stage whose clock window holds its submission time (the stages run one
    after the other in one process). Where the time goes on the JVM: per job and per Delta commit
    far more than per row, so these counts are the figures to bring down.
    """
    out = {stage: {"jobs": 0, "job_seconds": 0.0, "tasks": 0} for stage in windows}

    def stage_at(ms: int) -> str | None:
        return next((s for s, (t0, t1) in windows.items() if t0 <= ms <= t1), None)

    submitted: dict[int, tuple[int, str | None]] = {}
    stage_of: dict[int, str | None] = {}
    for path in sorted(events.rglob("events_*")) + sorted(p for p in events.glob("local-*") if p.is_file()):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue  # the last line of a log still being written
                kind = e.get("Event")
                if kind == "SparkListenerJobStart":
                    stage = stage_at(e["Submission Time"])
                    submitted[e["Job ID"]] = (e["Submission Time"], stage)
                    stage_of.update(dict.fromkeys(e.get("Stage IDs", []), stage))
                elif kind == "SparkListenerJobEnd" and e["Job ID"] in submitted:
                    t0, stage = submitted[e["Job ID"]]
                    if stage:
                        out[stage]["jobs"] += 1
                        out[stage]["job_seconds"] += round((e["Completion Time"] - t0) / 1000, 3)
                elif kind == "SparkListenerTaskEnd" and stage_of.get(e.get("Stage ID", -1)):
                    out[str(stage_of[e["Stage ID"]])]["tasks"] += 1
    return out


def run_routes(base: Path, landing: Path, routes: tuple[str, ...] = ROUTES, parallel: bool = False) -> dict[str, dict]:
    """Run ``routes``; the Spark Connect route gets its own server for its run.

    With ``parallel`` the first route runs alone (it makes the shared keys folder, so every route
    pseudonymises with the same keys) and the others then run at the same time, each in its own
    process: a JVM route spends most of its wall time between small Spark jobs, so two of them
    overlap well on two cores. Per-stage figures of overlapping routes include each other's load;
    the benchmark runs them one after the other unless told otherwise.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(route: str) -> dict:
        if route == "connect" and not (base / "connect" / "stages.json").is_file():
            from phmx.jvm import ConnectServer

            with ConnectServer(log_path=base / "connect-server.log") as server:
                return run_route(base, route, landing, {"PHMX_ENGINE": "connect", "SPARK_REMOTE": server.address,
                                                        "PHMX_BENCH_SERVER_PID": str(server.pid)})
        return run_route(base, route, landing, {"PHMX_ENGINE": route} if route != "connect" else {})

    if not parallel or len(routes) < 2:
        return {route: one(route) for route in routes}
    out = {routes[0]: one(routes[0])}
    with ThreadPoolExecutor(max_workers=len(routes) - 1) as pool:
        futures = {route: pool.submit(one, route) for route in routes[1:]}
        out.update({route: f.result() for route, f in futures.items()})
    return out


def main(argv: list[str] | None = None) -> int:
    from benchmarks.pipeline import machine

    parser = argparse.ArgumentParser(prog="python -m benchmarks.engines")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--routes", nargs="*", default=list(ROUTES), choices=ROUTES)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--parallel", action="store_true",
                        help="run the routes after the first at the same time (quicker; figures include each other's load)")
    parser.add_argument("--out", default="var/bench/engines")
    args = parser.parse_args(argv)
    members = 200 if args.quick else args.members
    base = Path(args.out).resolve() / f"m{members}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    landing = prepare(base, members)
    load_before = os.getloadavg()
    results = run_routes(base, landing, tuple(args.routes), parallel=args.parallel)
    load_after = os.getloadavg()
    print(f"machine: {machine()}; load average before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    print(f"{members:,} members; wall / CPU seconds per stage (JVM start-up inside ingest; CPU of the "
          "whole process tree: driver, JVM, Python workers, Connect server):")
    stages = list(next(iter(results.values()))["STAGES"])
    print(f"  {'stage':<11}" + "".join(f"{r + ' wall':>15}{r + ' cpu':>14}" for r in results))
    for stage in [*stages, "total"]:
        cells = []
        for r in results.values():
            cpu = r.get("CPU", {})
            wall = sum(r["STAGES"].values()) if stage == "total" else r["STAGES"][stage]
            used = sum(cpu.values()) if stage == "total" else cpu.get(stage, float("nan"))
            cells.append(f"{wall:>15.1f}{used:>14.1f}")
        print(f"  {stage:<11}" + "".join(cells))
    print("  Delta commits per stage: " + "; ".join(
        f"{k} " + ", ".join(f"{s} {n}" for s, n in v.get("COMMITS", {}).items()) for k, v in results.items()))
    for k, v in results.items():
        if "SPARK" in v:
            print(f"  Spark jobs per stage on {k} (jobs / job-seconds / tasks): " + ", ".join(
                f"{s} {j['jobs']}/{j['job_seconds']:.0f}/{j['tasks']}" for s, j in v["SPARK"].items()))
    print("  peak RSS of the driver process (MB): " + ", ".join(f"{k} {v['RSS_MB']:.0f}" for k, v in results.items()))
    (base / "engines.json").write_text(json.dumps({"machine": machine(), "members": members,
                                                   "load": [load_before, load_after], "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
