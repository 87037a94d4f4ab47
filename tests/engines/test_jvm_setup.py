"""The JVM set-up without starting a JVM: pins, the jars `make jvm` resolved, the classic builder's
configuration, and where data keys are unwrapped on each engine route."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phmx import jvm
from phmx.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _pom_property(name: str) -> str:
    root = ET.parse(REPO / "jvm" / "pom.xml").getroot()  # noqa: S314 - our own file
    node = root.find(f"m:properties/m:{name}", NS)
    assert node is not None and node.text
    return node.text


def test_pom_pins_are_the_ones_phmx_jvm_names():
    assert _pom_property("delta.version") == jvm.DELTA_VERSION
    assert _pom_property("spark.line") == jvm.SPARK_LINE
    assert _pom_property("hadoop.version") == jvm.HADOOP_VERSION


def test_hadoop_pin_matches_the_hadoop_client_inside_pyspark():
    names = {p.name for p in (jvm.spark_home() / "jars").glob("hadoop-client-api-*.jar")}
    assert names == {f"hadoop-client-api-{jvm.HADOOP_VERSION}.jar"}
    import pyspark

    assert ".".join(pyspark.__version__.split(".")[:2]) == jvm.SPARK_LINE


def test_make_jvm_resolved_delta_and_s3a_without_duplicating_spark():
    names = {Path(j).name for j in jvm.jars()}
    assert f"delta-spark_{jvm.SPARK_LINE}_2.13-{jvm.DELTA_VERSION}.jar" in names
    assert f"delta-storage-{jvm.DELTA_VERSION}.jar" in names
    assert f"hadoop-aws-{jvm.HADOOP_VERSION}.jar" in names
    assert any(n.startswith("bundle-2.") for n in names)  # the AWS SDK v2 that hadoop-aws needs
    spark_artifacts = {p.name.rsplit("-", 1)[0] for p in (jvm.spark_home() / "jars").glob("*.jar")}
    # One copy of each class on the class path: nothing pyspark already ships (Scala, Hadoop
    # client, Parquet, Jackson core, logging) comes a second time in another version.
    assert not {n.rsplit("-", 1)[0] for n in names} & spark_artifacts


def test_missing_jars_fail_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PHMX_JVM_JARS", str(tmp_path))
    with pytest.raises(ConfigError, match="make jvm") as exc:
        jvm.jars()
    assert exc.value.exit_code == 10


def test_classic_builder_uses_local_jars_and_this_interpreter(monkeypatch):
    import sys

    from phmx.engine import classic_builder

    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    opts = classic_builder()._options
    assert opts["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert opts["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert "spark.jars.packages" not in opts  # nothing resolved from Maven at run time
    assert any(Path(p).name.startswith("delta-spark_4.2_2.13") for p in opts["spark.driver.extraClassPath"].split(":"))
    assert opts["spark.sql.adaptive.enabled"] == "true" and opts["spark.master"] == "local[2]"
    assert opts["spark.driver.bindAddress"] == "127.0.0.1"

    assert os.environ["PYSPARK_PYTHON"] == sys.executable
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(REPO)


def test_cluster_conf_ships_the_jars_with_spark_jars():
    conf = jvm.session_conf(shuffle_partitions=8, local=False)
    assert "spark.driver.extraClassPath" not in conf
    assert any(j.endswith(f"delta-spark_4.2_2.13-{jvm.DELTA_VERSION}.jar") for j in conf["spark.jars"].split(","))


def test_every_jvm_route_runs_with_the_one_engine_conf(monkeypatch):
    """Adaptive execution, Arrow, shuffle partitions, UTC, Delta and its snapshot partitions: the
    same values for a classic session started here, the Spark Connect server, the spark-submit
    command line and the driver's session builder under spark-submit (phmx.jvm.engine_conf).
    Code generation follows the master where it is known."""
    from phmx import runners, settings
    from phmx.engine import classic_builder

    for key in jvm.worker_environment():  # classic_builder sets them: restored after the test
        monkeypatch.setitem(os.environ, key, os.environ.get(key, ""))
    monkeypatch.setenv("PHMX_SHUFFLE_PARTITIONS", "6")
    monkeypatch.setenv("PHMX_SPARK_LOG_LEVEL", "ERROR")
    monkeypatch.setenv("PHMX_SPARK_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1")
    monkeypatch.delenv("PHMX_SPARK_CODEGEN", raising=False)
    cfg = settings.load()
    want = jvm.engine_conf(shuffle_partitions=6)
    for key in ("spark.sql.adaptive.enabled", "spark.sql.adaptive.coalescePartitions.enabled",
                "spark.sql.execution.arrow.pyspark.enabled", "spark.databricks.delta.snapshotPartitions",
                "spark.sql.extensions", "spark.sql.catalog.spark_catalog", "spark.sql.session.timeZone"):
        assert key in want
    assert want["spark.sql.shuffle.partitions"] == "6" and want["spark.log.level"] == "ERROR"
    assert "spark.sql.codegen.factoryMode" not in want  # no master known: the driver's builder decides

    def has_all(conf: dict[str, str]) -> bool:
        return {k: conf.get(k) for k in want} == want

    own = classic_builder()._options
    submit = runners.SparkSubmitConfig.from_settings(cfg).conf(cfg)
    server = jvm.ConnectServer(port=15002, shuffle_partitions=6).command()
    server_conf = dict(a.split("=", 1) for a in server[server.index("--name") + 2:-1] if "=" in a)
    assert has_all(own) and has_all(submit) and has_all(server_conf)
    # a local master (the session's default and the server's): queries run interpreted
    for conf in (own, server_conf):
        assert {k: conf.get(k) for k in jvm.NO_CODEGEN_CONF} == jvm.NO_CODEGEN_CONF
    assert "spark.sql.codegen.factoryMode" not in submit  # spark-submit's master: only its driver knows it
    # what only counts when the driver's JVM starts: where it starts
    for conf in (own, submit, server_conf):
        assert conf["spark.driver.extraJavaOptions"] == conf["spark.executor.extraJavaOptions"] \
            == "-XX:TieredStopAtLevel=1"
        assert conf["spark.driver.memory"] == cfg.spark_driver_memory

    # The driver spark-submit started sets the same list, but never the driver's host, bind
    # address, memory or jars: the submitter chose them (on a cluster, executors on other nodes
    # connect to the driver's host; the memory is fixed once its JVM runs).
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "1")  # what spark-submit gives its Python driver
    driver = classic_builder()._options
    assert has_all(driver)
    assert not {"spark.driver.host", "spark.driver.bindAddress", "spark.driver.memory", "spark.jars",
                "spark.driver.extraClassPath", "spark.master", "spark.driver.extraJavaOptions"} & set(driver)


def test_code_generation_follows_the_master_unless_set(monkeypatch):
    """A local master runs queries interpreted, a cluster generates code, PHMX_SPARK_CODEGEN wins
    either way (docs/scaling.md section 5 has the measurement)."""
    monkeypatch.delenv("PHMX_SPARK_CODEGEN", raising=False)
    local = jvm.session_conf(shuffle_partitions=2, master="local[2]")
    assert local["spark.sql.codegen.wholeStage"] == "false" and local["spark.sql.codegen.factoryMode"] == "NO_CODEGEN"
    cluster = jvm.session_conf(shuffle_partitions=2, master="spark://10.0.0.1:7077", local=False)
    assert cluster["spark.sql.codegen.wholeStage"] == "true" and cluster["spark.sql.codegen.factoryMode"] == "FALLBACK"
    server = jvm.ConnectServer(port=15002, master="local[1]").command()
    assert "spark.sql.codegen.factoryMode=NO_CODEGEN" in server
    monkeypatch.setenv("PHMX_SPARK_CODEGEN", "on")
    assert jvm.session_conf(shuffle_partitions=2, master="local[2]")["spark.sql.codegen.wholeStage"] == "true"
    monkeypatch.setenv("PHMX_SPARK_CODEGEN", "off")
    assert jvm.engine_conf(shuffle_partitions=2)["spark.sql.codegen.factoryMode"] == "NO_CODEGEN"  # even unknown


def test_spark_submit_puts_make_jvms_jars_on_the_class_path_and_ships_a_given_list():
    """``--jars`` copies every jar into each job's scratch folder (670 MB a DAG task, the AWS SDK
    bundle); the jars ``make jvm`` resolved are on this machine, so they go on the class path."""
    from phmx import runners, settings

    local = runners.SparkSubmitConfig.from_settings(settings.load({"PHMX_HOME": "/tmp/hub",
                                                                   "PHMX_SPARK_JARS": "make-jvm"}))
    assert not local.jars and local.class_path.split(os.pathsep) == jvm.jars()
    listed = runners.SparkSubmitConfig.from_settings(settings.load({"PHMX_HOME": "/tmp/hub",
                                                                    "PHMX_SPARK_JARS": "/opt/jars/delta.jar"}))
    assert (listed.jars, listed.class_path) == ("/opt/jars/delta.jar", "")
    cfg = settings.load({"PHMX_HOME": "/tmp/hub"})
    assert local.packages(cfg) == listed.packages(cfg) == ""  # nothing from Maven either way


def test_s3a_conf_maps_s3_and_turns_sse_kms_on():
    conf = jvm.s3a_conf(endpoint="http://127.0.0.1:5000", kms_key_id="alias/phi", region="us-west-2")
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.encryption.algorithm"] == "SSE-KMS"
    assert conf["spark.hadoop.fs.s3a.encryption.key"] == "alias/phi"


@pytest.mark.parametrize(("engine", "remote", "master", "expected"), [
    ("sail", None, None, "driver"),
    ("connect", "sc://127.0.0.1:15002", None, "driver"),       # loopback: the key stays on this machine
    ("connect", "sc://spark.example.org:15002", None, "executor"),
    ("connect", "sc://spark.example.org:443/;use_ssl=true", None, "executor"),
    ("classic", None, "local[2]", "driver"),
    ("classic", None, "yarn", "executor"),
])
def test_data_keys_are_unwrapped_on_the_executors_of_every_remote_engine(monkeypatch, engine, remote, master,
                                                                          expected):
    from privacy import crypto

    monkeypatch.delenv("PHMX_DEK_UNWRAP", raising=False)
    monkeypatch.setenv("PHMX_ENGINE", engine)
    if remote:
        monkeypatch.setenv("SPARK_REMOTE", remote)
    else:
        monkeypatch.delenv("SPARK_REMOTE", raising=False)
    if master:
        monkeypatch.setenv("PHMX_SPARK_MASTER", master)
    assert crypto.unwrap_mode() == expected


def test_plaintext_keys_are_refused_over_plain_sc_to_a_remote_server(monkeypatch):
    from privacy import crypto

    monkeypatch.setenv("PHMX_ENGINE", "connect")
    monkeypatch.setenv("PHMX_DEK_UNWRAP", "driver")
    monkeypatch.setenv("SPARK_REMOTE", "sc://spark.example.org:15002")
    with pytest.raises(ConfigError, match="unencrypted") as exc:
        crypto.unwrap_mode()
    assert "use_ssl=true" in str(exc.value.hint)
    monkeypatch.setenv("SPARK_REMOTE", "sc://spark.example.org:443/;use_ssl=true")
    assert crypto.unwrap_mode() == "driver"  # TLS: the operator's explicit choice stands
