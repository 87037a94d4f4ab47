"""The spark_submit runner for real: the operator the DAG builds (PHMX_RUNNER=spark_submit) runs
``spark-submit --master local[2]`` with the jars ``make jvm`` resolved on its class path, and the driver
(jobs/submit.py on a classic JVM session) runs the ingest stage into Delta tables."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from jvm_kit import REPO, requires_jvm

pytestmark = [requires_jvm, pytest.mark.slow]


def test_spark_submit_runner_runs_a_stage_on_local_jvm_spark(tmp_path, monkeypatch):
    import deltalake
    from airflow.sdk import DAG

    from phmx import jvm, runners
    from phmx.synth import generate

    home = tmp_path / "var"
    generate(home, members=30, counties=["06001"], seed=3, months=1)
    monkeypatch.setenv("PHMX_HOME", str(home))
    for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                "PHMX_KEYS_DIR", "PHMX_LEDGER_ROOT", "SPARK_REMOTE", "PHMX_ENGINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PHMX_RUNNER", "spark_submit")
    monkeypatch.setenv("PHMX_SPARK_JARS", "make-jvm")
    # a short-lived driver on one machine: the C1 JIT, as docs/scaling.md section 5 advises
    monkeypatch.setenv("PHMX_SPARK_JAVA_OPTIONS", jvm.SHORT_JVM_JAVA_OPTIONS)
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[2]"}))
    monkeypatch.setenv("PATH", f"{jvm.spark_home() / 'bin'}{os.pathsep}{os.environ['PATH']}")
    for key, value in jvm.worker_environment().items():
        monkeypatch.setenv(key, value)
    with DAG("engines_spark_submit", schedule=None):
        op = runners.stage_task("ingest")
    assert op.__class__.__name__ == "SparkSubmitOperator"
    # nothing from Maven at run time, and the jars on the class path where they lie: not copied
    # into the job's scratch folder as --jars would (670 MB per task)
    assert not op.packages and not op.jars and "delta-spark_4.2_2.13" in op.driver_class_path
    assert op.conf["spark.executor.extraClassPath"] == op.driver_class_path
    assert op.env_vars["PHMX_ENGINE"] == "classic"
    # a manual run (Airflow's context always holds its dag_run): the period stays the one asked for
    op.render_template_fields({"params": {"period": "all"}, "run_id": "manual__engines",
                               "dag_run": SimpleNamespace(run_type="manual")})
    assert op.application_args == ["--stage", "ingest", "--period", "all", "--run-id", "manual__engines"]
    op.execute({})
    submissions = deltalake.DeltaTable(str(home / "lakehouse" / "bronze" / "submissions")).to_pandas()
    assert len(submissions) > 0 and set(submissions["status"]) <= {"accepted", "accepted_with_errors", "rejected"}
    enrollment = deltalake.DeltaTable(str(home / "lakehouse" / "bronze" / "enrollment"))
    assert enrollment.to_pyarrow_table().num_rows > 0
    assert "Apache-Spark" in json.dumps(enrollment.history(1))  # written by the JVM, not the embedded engine
    assert str(REPO / "jobs" / "submit.py") == op.application
