"""The DAG end to end with ``PHMX_RUNNER=spark_submit`` under the real Airflow, from the
``make dist`` bundle, on local JVM Spark (``--master local[2]``).

The bundle is built (``phmx.dist.build``: wheel, packed environment, entry point) and its
environment unpacked where a worker would; ``airflow dags test phm_exchange`` then submits every
stage with ``spark-submit`` (the jars ``make jvm`` resolved, nothing from Maven) running the
bundle's ``submit.py`` with the bundle's Python and no ``PYTHONPATH`` from the Airflow worker, so
the driver and its UDF workers import only what ``make dist`` packed. The same population run in
process on the embedded engine (one keys folder for both) is the reference: every gold table and
every published measures.csv and FHIR resource must be identical (tests/engines/same_results.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pytest
from jvm_kit import requires_jvm, run_script
from same_results import assert_same_outputs

from benchmarks.engines import DAG_SET_ASIDE

pytestmark = [requires_jvm, pytest.mark.slow, pytest.mark.cluster]  # make test-cluster

MEMBERS = 30
RUN = textwrap.dedent("""
    import json
    from phmx.pipeline import run_pipeline
    print("COUNTS " + json.dumps({r.stage: r.counts for r in run_pipeline(period="all", run_id="run-ref")},
                                 default=str))
""")


def test_dag_runs_every_stage_with_spark_submit_from_the_bundle(tmp_path, monkeypatch):
    import deltalake

    from phmx import dist, jvm
    from phmx.airflow_env import airflow_env, ensure_db
    from phmx.synth import generate

    bundle = dist.build(tmp_path / "dist", compresslevel=1)
    env_dir = tmp_path / "worker" / "environment"
    env_dir.mkdir(parents=True)
    with tarfile.open(bundle.archive) as tar:
        tar.extractall(env_dir, filter="fully_trusted")  # keeps bin/python, a link to the interpreter
    python = env_dir / "bin" / "python"

    src = tmp_path / "source"
    generate(src, members=MEMBERS, counties=["06001"], seed=3, months=1)
    keys = tmp_path / "keys"
    ref = tmp_path / "inprocess"
    shutil.copytree(src / "landing", ref / "landing")
    run_script(RUN, engine="sail", home=ref, env={"PHMX_KEYS_DIR": str(keys)})

    home = tmp_path / "dag"
    shutil.copytree(src / "landing", home / "landing")
    for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                "PHMX_LEDGER_ROOT", "SPARK_REMOTE", "PHMX_ENGINE", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PHMX_HOME", str(home))
    monkeypatch.setenv("PHMX_KEYS_DIR", str(keys))
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    env = airflow_env()
    env.update({
        "PHMX_RUNNER": "spark_submit", "PHMX_SPARK_JARS": "make-jvm", "PHMX_TASK_RETRIES": "0",
        "PHMX_SPARK_APPLICATION": str(bundle.entry_point), "PHMX_SPARK_PYTHON": str(python),
        "PHMX_SHUFFLE_PARTITIONS": "2", "SPARK_LOCAL_IP": "127.0.0.1",
        "PHMX_SPARK_JAVA_OPTIONS": jvm.SHORT_JVM_JAVA_OPTIONS,  # a driver per task: the C1 JIT (docs/scaling.md section 5)
        "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "PATH": f"{jvm.spark_home() / 'bin'}{os.pathsep}{env['PATH']}",
    })
    ensure_db(env)
    proc = subprocess.run([str(shutil.which("airflow", path=os.path.dirname(sys.executable))), "dags", "test",
                           "phm_exchange", "--conf", '{"period": "all"}'], env=env, capture_output=True, text=True,
                          timeout=3000, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "state=failed" not in out and "Task failed" not in out, out[-6000:]

    # the stages ran on the JVM: each table's last writer is Apache Spark, not the embedded engine
    for table in ("bronze/enrollment", "silver/person", "gold/member", "gold/member_month"):
        assert "Apache-Spark" in json.dumps(deltalake.DeltaTable(str(home / "lakehouse" / table)).history(1)), table

    assert_same_outputs(ref, home, set_aside=DAG_SET_ASIDE)  # what differs by design, and why: see there
