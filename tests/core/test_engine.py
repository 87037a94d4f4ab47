"""The engine: embedded Sail once per process, a clean exit, the Spark Connect route (the JVM routes: tests/engines)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys
    from phmx.engine import get_spark
    s1 = get_spark(); s2 = get_spark()
    assert s1 is s2
    path = sys.argv[1]
    s1.range(3).write.format("delta").mode("overwrite").save(path)
    s1.createDataFrame([(1,)], "id long").createOrReplaceTempView("src")
    s1.sql(f"MERGE INTO delta.`{path}` t USING src s ON t.id = s.id WHEN NOT MATCHED THEN INSERT *")
    print("rows", s1.read.format("delta").load(path).count())
""")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # The timeout only guards against a hang at exit (the failure this design prevents).
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_embedded_engine_runs_delta_and_exits_cleanly(tmp_path):
    env = {**os.environ, "PHMX_HOME": str(tmp_path)}
    env.pop("SPARK_REMOTE", None)
    proc = _run([str(tmp_path / "t")], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rows 3" in proc.stdout


def test_spark_remote_route_connects_to_another_server(tmp_path):
    from pysail.spark import SparkConnectServer

    server = SparkConnectServer(ip="127.0.0.1", port=0)
    server.start(background=True)
    try:
        host, port = server.listening_address
        env = {**os.environ, "PHMX_HOME": str(tmp_path), "SPARK_REMOTE": f"sc://{host}:{port}"}
        env.pop("PHMX_ENGINE", None)
        proc = _run([str(tmp_path / "t")], env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "rows 3" in proc.stdout
        assert "embedded Sail engine listening" not in proc.stderr  # it did not start its own
    finally:
        server.stop()


IDLE = textwrap.dedent("""
    import os, sys, time
    from phmx.engine import get_spark
    spark = get_spark()
    print("timeout", os.environ["SAIL_SPARK__SESSION_TIMEOUT_SECS"])
    assert spark.range(2).count() == 2
    time.sleep(float(sys.argv[1]))  # the driver busy elsewhere, the engine idle
    try:
        print("after idle", spark.range(3).count())
    except Exception as exc:
        print("after idle failed:", type(exc).__name__, str(exc)[:200])
""")


def _idle(seconds: float, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", IDLE, str(seconds)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=REPO)


def test_the_embedded_session_outlives_an_idle_driver_unless_the_operator_sets_sails_timeout(tmp_path):
    from phmx.engine import EMBEDDED_SESSION_TIMEOUT_SECS

    env = {**os.environ, "PHMX_HOME": str(tmp_path)}
    for var in ("SPARK_REMOTE", "PHMX_ENGINE", "SAIL_SPARK__SESSION_TIMEOUT_SECS"):
        env.pop(var, None)
    # Sail's own setting reaches the server: with a 1-second timeout, a 4-second idle loses the session
    # (the failure the embedded default prevents, after 15 idle minutes with Sail's default) ...
    short = _idle(4, {**env, "SAIL_SPARK__SESSION_TIMEOUT_SECS": "1"})
    assert short.returncode == 0, short.stderr[-2000:]
    assert "timeout 1\n" in short.stdout and "after idle failed" in short.stdout and "is not running" in short.stdout
    # ... and unless the operator sets it, the embedded engine sets it far beyond any run
    default = _idle(4, env)
    assert default.returncode == 0, default.stderr[-2000:]
    assert f"timeout {EMBEDDED_SESSION_TIMEOUT_SECS}\n" in default.stdout
    assert "after idle 3" in default.stdout
