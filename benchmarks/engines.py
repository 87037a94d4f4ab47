"""The same pipeline on every engine route, per-stage wall time side by side.

    python -m benchmarks.engines                      # 2,000 members (the demo size), all three routes
    python -m benchmarks.engines --members 300        # the size the cross-engine test uses
    python -m benchmarks.engines --routes sail classic
    python -m benchmarks.engines --quick              # 200 members
    python -m benchmarks.engines --parallel           # routes after the first at the same time
    python -m benchmarks.engines --routes sail dag    # the DAG under spark-submit beside Sail

Routes: ``sail`` (embedded), ``classic`` (JVM Spark local[2] with Delta, ``PHMX_ENGINE=classic``),
``connect`` (a JVM Spark Connect server with Delta on 127.0.0.1, started here), ``dag`` (the
Airflow DAG under ``PHMX_RUNNER=spark_submit``: every task a ``spark-submit --master local[2]``
of the ``make dist`` bundle, its own JVM; per-task seconds from Airflow's metadata database).
Each route runs the whole pipeline in a fresh process on the same synthetic landing zone (same
seed) with its own PHMX_HOME under ``--out``; the JVM start-up is inside the first stage's time
(in every task's, on ``dag``). The machine and its
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
ROUTES = ("sail", "classic", "connect", "dag")
DEFAULT_ROUTES = ("sail", "classic", "connect")
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
    # Commit files of every Delta table of this run's lakehouse (a commit is a JSON file in
    # _delta_log), a local folder or an s3:// root.
    from phmx import settings, storage
    root = settings.load().lakehouse_root
    return sum(1 for f in storage.list_files(root) if "_delta_log/" in f.relpath
               and f.relpath.endswith(".json") and f.relpath.rsplit("/", 1)[-1][:-5].isdigit())

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
from phmx.engine import get_spark
print("ENGINE " + json.dumps(type(get_spark()).__module__))
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

    A finished route (its ``stages.json``) is reused. Returns ``{"STAGES", "CPU", "COMMITS", "WINDOWS", "COUNTS", "RSS_MB",
    "ENGINE"}``: wall and CPU seconds per stage (CPU of the whole process tree, the JVM and the
    Connect server included), Delta commits per stage, each stage's clock window, counts, the
    driver's peak RSS, the session's module (``pyspark.sql.session`` on classic, ``...connect...``
    otherwise). ``env`` may move any zone elsewhere (``PHMX_LAKEHOUSE_ROOT=s3://...``; the caller
    puts the landing zone there when it moves ``PHMX_LANDING_ROOT``).
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
           for k in ("STAGES", "CPU", "COMMITS", "WINDOWS", "COUNTS", "RSS_MB", "ENGINE") if line.startswith(k + " ")}
    if events.is_dir():
        out["SPARK"] = spark_jobs_per_stage(events, out["WINDOWS"])
    (home / "stages.json").write_text(json.dumps(out))
    return out


DAG_SET_ASIDE = {
    # a package's size depends on its run id (an Airflow run's is longer than the in-process
    # runs'), printed in its manifest and report; its ledger sequence on the order Airflow's mapped
    # publish tasks finished in; an identity event's id derives from its run's id
    "feed_log": ["bytes", "ledger_seq"], "identity_events": ["event_id"],
    # the tasks run JVM Spark, whose to_json text of a few standardised records differs from
    # Sail's (an engine gap in docs/ARCHITECTURE.md; test_same_results.ENGINE_TEXT sets it aside too)
    "identity_index": ["pii_fingerprint"],
}
# What an in-process run's environment may carry that the DAG's tasks must not inherit.
_NOT_FOR_THE_DAG = ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                    "PHMX_LEDGER_ROOT", "SPARK_REMOTE", "PHMX_ENGINE", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON",
                    "PYSPARK_SUBMIT_ARGS", "AIRFLOW_HOME", "PHMX_AIRFLOW_HOME")
_TIMED = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
          "r = resource.getrusage(resource.RUSAGE_CHILDREN); "
          "print(f'DAG_CPU {r.ru_utime + r.ru_stime:.2f} {r.ru_maxrss / 1024:.0f}'); sys.exit(rc)")


def job_bundle(base: Path) -> Path:
    """The ``make dist`` bundle, built once under ``base``, its environment unpacked where a worker
    would: returns the unpacked environment's folder (``bin/python``; the entry point beside it)."""
    import tarfile

    from phmx import dist

    env_dir = base / "worker" / "environment"
    if (env_dir / "bin" / "python").exists() and (base / "worker" / "submit.py").is_file():
        return env_dir
    shutil.rmtree(base / "worker", ignore_errors=True)
    bundle = dist.build(base / "dist", compresslevel=1)
    env_dir.mkdir(parents=True)
    with tarfile.open(bundle.archive) as tar:
        tar.extractall(env_dir, filter="fully_trusted")  # keeps bin/python, a link to the interpreter
    shutil.copy2(bundle.entry_point, base / "worker" / "submit.py")
    shutil.rmtree(base / "dist", ignore_errors=True)
    return env_dir


def run_dag_route(base: Path, landing: Path, env: dict[str, str] | None = None, timeout: int = 3600) -> dict:
    """``airflow dags test phm_exchange`` with ``PHMX_RUNNER=spark_submit`` on ``base/dag``.

    Every stage task is a ``spark-submit --master local[2]`` of the bundle's ``submit.py`` on the
    bundle's Python with no ``PYTHONPATH`` from the Airflow worker (the jars ``make jvm``
    resolved, nothing from Maven), so the driver and its UDF workers import only what ``make
    dist`` packed. ``env`` sets the run's zones and keys (``PHMX_LAKEHOUSE_ROOT=s3://...``,
    ``PHMX_KMS_KEY_ID``; the caller puts the landing zone there when it moves
    ``PHMX_LANDING_ROOT``): the runner hands them to every task (``phmx.runners.job_environment``).
    Returns ``STAGES`` (wall seconds per task, a mapped task's instances summed), ``TASKS`` (task
    -> [instances, seconds, states]), ``COUNTS`` (the counts each stage's driver printed, for the
    stages that ran as one task: a mapped stage's are per instance), ``CPU`` (the whole run's,
    Airflow and every JVM included, under ``dag``) and ``RSS_MB`` (the largest process's peak).
    The run's output is kept in ``<home>/dag.log``.
    """
    import sqlite3
    import time

    from phmx import jvm, settings
    from phmx.airflow_env import airflow_bin, airflow_env, ensure_db

    home = base / "dag"
    if (home / "stages.json").is_file():
        return json.loads((home / "stages.json").read_text())
    zones = env or {}
    env_dir = job_bundle(base)
    shutil.rmtree(home, ignore_errors=True)
    if "PHMX_LANDING_ROOT" not in zones:
        shutil.copytree(landing, home / "landing")
    ours = {k: v for k, v in os.environ.items() if k not in _NOT_FOR_THE_DAG}
    ours.update({"PHMX_HOME": str(home), "PHMX_KEYS_DIR": str(base / "keys"), "PHMX_LOG_LEVEL": "WARNING", **zones})
    env = {k: v for k, v in airflow_env(settings.load(ours)).items() if k not in _NOT_FOR_THE_DAG[5:]}
    env.update({
        "AIRFLOW_HOME": str(home / "airflow"), "PHMX_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow' / 'airflow.db'}",
        "PHMX_RUNNER": "spark_submit", "PHMX_SPARK_JARS": "make-jvm", "PHMX_TASK_RETRIES": "0",
        "PHMX_SPARK_APPLICATION": str(base / "worker" / "submit.py"),
        "PHMX_SPARK_PYTHON": str(env_dir / "bin" / "python"),
        "PHMX_SHUFFLE_PARTITIONS": os.environ.get("PHMX_SHUFFLE_PARTITIONS", "2"), "SPARK_LOCAL_IP": "127.0.0.1",
        "PHMX_SPARK_JAVA_OPTIONS": os.environ.get("PHMX_SPARK_JAVA_OPTIONS") or jvm.SHORT_JVM_JAVA_OPTIONS,
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "PATH": f"{jvm.spark_home() / 'bin'}{os.pathsep}{env['PATH']}",
        # the spark-submit hook logs each line of the driver's output at INFO: the counts line too
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    })
    (home / "airflow").mkdir(parents=True, exist_ok=True)
    ensure_db(env)
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", _TIMED, airflow_bin(), "dags", "test", "phm_exchange",  # noqa: S603
                           "--conf", '{"period": "all"}'], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=home)
    wall = time.time() - t0
    log = proc.stdout + proc.stderr
    (home / "dag.log").write_text(log)
    if proc.returncode != 0 or "state=failed" in log or "Task failed" in log:
        raise RuntimeError(f"the DAG failed under spark-submit:\n{log[-6000:]}")
    with sqlite3.connect(home / "airflow" / "airflow.db") as db:
        rows = db.execute("SELECT task_id, state, duration FROM task_instance").fetchall()
    tasks: dict[str, list] = {}
    for task_id, state, seconds in rows:
        n, total, states = tasks.get(task_id, [0, 0.0, []])
        tasks[task_id] = [n + 1, round(total + float(seconds or 0), 2), sorted({*states, str(state)})]
    cpu, rss = next(line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("DAG_CPU "))
    stages: dict[str, float] = {}
    for task_id, (_, seconds, _) in tasks.items():  # publish_prepare, publish_recipient, ... -> publish
        stage = "publish" if task_id.startswith("publish") else task_id
        stages[stage] = round(stages.get(stage, 0.0) + seconds, 2)
    out = {"STAGES": stages, "TASKS": tasks, "WALL": round(wall, 1),
           "CPU": {"dag": float(cpu)}, "RSS_MB": float(rss), "COUNTS": driver_counts(log)}
    (home / "stages.json").write_text(json.dumps(out))
    return out


def driver_counts(log: str) -> dict[str, dict]:
    """Each stage's counts from a DAG run's output: the JSON line ``jobs/submit.py`` prints
    (``StageResult.to_json``), which the spark-submit hook logs. Only the stages that printed
    exactly one line (a mapped stage prints one per instance, each a part of the stage)."""
    found: dict[str, list[dict]] = {}
    decoder = json.JSONDecoder()
    for line in log.splitlines():
        at = line.find('{"counts": ')
        if at < 0:
            continue
        try:
            result, _ = decoder.raw_decode(line[at:])
        except ValueError:
            continue
        if isinstance(result, dict) and isinstance(result.get("stage"), str):
            found.setdefault(result["stage"], []).append(result["counts"])
    return {stage: counts[0] for stage, counts in found.items() if len(counts) == 1}


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


def run_routes(base: Path, landing: Path, routes: tuple[str, ...] = DEFAULT_ROUTES, parallel: bool = False,
               env: dict[str, dict[str, str]] | None = None) -> dict[str, dict]:
    """Run ``routes``; the Spark Connect route gets its own server for its run. ``env`` adds
    variables per route (the same-results test puts the classic route's zones on S3 with it).

    With ``parallel`` the first route runs alone (it makes the shared keys folder, so every route
    pseudonymises with the same keys) and the others then run at the same time, each in its own
    process: a JVM route spends most of its wall time between small Spark jobs, so two of them
    overlap well on two cores. Per-stage figures of overlapping routes include each other's load;
    the benchmark runs them one after the other unless told otherwise.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(route: str) -> dict:
        extra = (env or {}).get(route, {})
        if route == "dag":
            return run_dag_route(base, landing, extra)
        if route == "connect" and not (base / "connect" / "stages.json").is_file():
            from phmx.jvm import ConnectServer

            with ConnectServer(log_path=base / "connect-server.log") as server:
                return run_route(base, route, landing, {"PHMX_ENGINE": "connect", "SPARK_REMOTE": server.address,
                                                        "PHMX_BENCH_SERVER_PID": str(server.pid), **extra})
        return run_route(base, route, landing, {**({"PHMX_ENGINE": route} if route != "connect" else {}), **extra})

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
    parser.add_argument("--routes", nargs="*", default=list(DEFAULT_ROUTES), choices=ROUTES)
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
    nan = float("nan")
    print(f"  {'stage':<11}" + "".join(f"{r + ' wall':>15}{r + ' cpu':>14}" for r in results))
    for stage in [*stages, "total"]:
        cells = []
        for r in results.values():
            cpu = r.get("CPU", {})
            wall = r.get("WALL", sum(r["STAGES"].values())) if stage == "total" else r["STAGES"].get(stage, nan)
            used = sum(cpu.values()) if stage == "total" else cpu.get(stage, nan)
            cells.append(f"{wall:>15.1f}{used:>14.1f}")
        print(f"  {stage:<11}" + "".join(cells))
    print("  Delta commits per stage: " + "; ".join(
        f"{k} " + ", ".join(f"{s} {n}" for s, n in v.get("COMMITS", {}).items()) for k, v in results.items()))
    for k, v in results.items():
        if "SPARK" in v:
            print(f"  Spark jobs per stage on {k} (jobs / job-seconds / tasks): " + ", ".join(
                f"{s} {j['jobs']}/{j['job_seconds']:.0f}/{j['tasks']}" for s, j in v["SPARK"].items()))
    if "TASKS" in results.get("dag", {}):
        print("  DAG tasks under spark-submit (instances / seconds; the whole run's wall and CPU under total): "
              + ", ".join(f"{t} {n}/{sec:.0f}" for t, (n, sec, _) in results["dag"]["TASKS"].items()))
    print("  peak RSS of the driver process (MB): " + ", ".join(f"{k} {v['RSS_MB']:.0f}" for k, v in results.items()))
    (base / "engines.json").write_text(json.dumps({"machine": machine(), "members": members,
                                                   "load": [load_before, load_after], "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
