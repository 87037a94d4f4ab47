"""``make dist`` (phmx.dist): what the packed environment holds, and how the spark-submit runner
points a job at it. The bundle itself is built and run by
tests/engines/test_same_results.py with PHMX_ENGINES_CLASSIC=dag (make test-cluster)."""

from __future__ import annotations

from phmx import dist, runners, settings


def test_the_environment_holds_the_pinned_runtime_dependencies_and_not_what_the_cluster_brings():
    shipped = dist.runtime_distributions()
    pins = dist.pinned_versions()
    # what the stages and their UDFs import
    assert {"deltalake", "pyarrow", "pandas", "cryptography", "boto3", "pydantic", "fhir-resources", "jellyfish",
            "rapidfuzz", "highspy", "pyyaml", "presidio-analyzer", "spacy"} <= set(shipped)
    # the cluster's own pyspark and py4j, the embedded engine, Airflow and the portal stay out
    for name in ("pyspark", "py4j", "pyspark-client", "pysail", "delta-spark", "apache-airflow",
                 "apache-airflow-providers-amazon", "fastapi", "uvicorn", "weasyprint"):
        assert name not in shipped, name
    assert not [n for n in shipped if n.startswith("apache-airflow")]
    # exactly the versions of constraints.txt
    assert {n: d.version for n, d in shipped.items() if n in pins} == {n: pins[n] for n in shipped if n in pins}
    assert {n for n in shipped if n not in pins} <= {"setuptools"}  # made with the venv, not by -c constraints


def test_the_archive_and_entry_point_have_the_names_the_emr_runner_expects():
    assert dist.VENV_ARCHIVE == runners.VENV_ARCHIVE_NAME == "phmx-venv.tar.gz"
    emr = runners.EmrServerlessConfig(application_id="a", execution_role_arn="r", code_uri="s3://code/phmx/",
                                      log_uri="s3://logs/")
    assert emr.entry_point == "s3://code/phmx/" + dist.ENTRY_POINT


def test_spark_submit_jobs_run_the_bundles_python_without_the_workers_pythonpath():
    cfg = settings.load({"PHMX_HOME": "/tmp/hub", "PHMX_SPARK_PYTHON": "/opt/phmx/environment/bin/python"})
    sub = runners.SparkSubmitConfig.from_settings(cfg)
    assert sub.python_environment() == {"PYSPARK_PYTHON": "/opt/phmx/environment/bin/python",
                                        "PYSPARK_DRIVER_PYTHON": "/opt/phmx/environment/bin/python",
                                        "PYTHONPATH": ""}
    assert runners.SparkSubmitConfig.from_settings(settings.load({"PHMX_HOME": "/tmp/hub"})).python_environment() == {}


def test_spark_submit_ships_the_packed_environment_to_a_cluster(monkeypatch):
    from airflow.sdk import DAG

    monkeypatch.setenv("PHMX_HOME", "/tmp/hub")
    monkeypatch.setenv("PHMX_RUNNER", "spark_submit")
    monkeypatch.setenv("PHMX_SPARK_ARCHIVE", "hdfs:///apps/phmx/phmx-venv.tar.gz")
    monkeypatch.setenv("PHMX_SPARK_JARS", "/opt/jars/delta-spark_4.2_2.13-4.4.0.jar")
    with DAG("dist_archive", schedule=None):
        op = runners.stage_task("conform")
    assert op._archives == "hdfs:///apps/phmx/phmx-venv.tar.gz#environment"
    assert op.conf["spark.pyspark.python"] == op.conf["spark.pyspark.driver.python"] == "./environment/bin/python"
    assert op.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"  # the rest stays
    monkeypatch.setenv("PHMX_SPARK_PYTHON", "/opt/phmx/environment/bin/python")
    with DAG("dist_python", schedule=None):
        op = runners.stage_task("conform")
    assert op.env_vars["PYSPARK_PYTHON"] == "/opt/phmx/environment/bin/python" and op.env_vars["PYTHONPATH"] == ""
    assert op.env_vars["PHMX_ENGINE"] == "classic"
    monkeypatch.delenv("PHMX_SPARK_PYTHON")
    monkeypatch.delenv("PHMX_SPARK_ARCHIVE")
    with DAG("dist_no_archive", schedule=None):
        op = runners.stage_task("conform")
    assert not op._archives and "spark.pyspark.python" not in op.conf
