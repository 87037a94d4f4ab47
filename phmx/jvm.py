"""The JVM side of the two JVM engine routes: pinned jars, where they live, and a local Spark Connect server.

Why a module of its own: the classic session (:func:`phmx.engine.classic_builder`), the
spark-submit runner (:mod:`phmx.runners`) and the Spark Connect server script all need the same
three facts: which Delta and Hadoop artifacts match the pinned pyspark, where ``make jvm`` put
them, and which Python the JVM's workers must start. Keeping them here means one place to bump.

``make jvm`` resolves ``jvm/pom.xml`` with Maven into ``.jvm/jars`` (a second run does nothing);
the pins below must equal the pom's properties (``tests/engines/test_jvm_setup.py`` checks it).
Nothing is downloaded at run time: a session that cannot find the jars fails with how to fix it.

Pins (Maven Central, checked when set):

* ``io.delta:delta-spark_4.2_2.13:4.4.0``: the newest Delta built against Spark 4.2.0. The
  PyPI package delta-spark 4.4.1 is pure Python; Maven Central has no 4.4.1 build for Spark 4.2,
  so its ``configure_spark_with_delta_pip`` would name a coordinate that does not exist.
* ``org.apache.hadoop:hadoop-aws:3.5.0``: the Hadoop of pyspark 4.2.0's own
  ``hadoop-client-api`` jar, with the AWS SDK v2 bundle (2.35.4) it declares.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess  # noqa: S404 - starts the local Spark Connect server, with fixed arguments
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from phmx import settings
from phmx.errors import ConfigError
from phmx.log import get_logger

log = get_logger(__name__)

SPARK_LINE = "4.2"
SCALA_LINE = "2.13"
DELTA_VERSION = "4.4.0"
HADOOP_VERSION = "3.5.0"
DELTA_PACKAGE = f"io.delta:delta-spark_{SPARK_LINE}_{SCALA_LINE}:{DELTA_VERSION}"
HADOOP_AWS_PACKAGE = f"org.apache.hadoop:hadoop-aws:{HADOOP_VERSION}"
CONNECT_SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"

DELTA_SQL_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def jars_dir() -> Path:
    """Where ``make jvm`` copied the jars: ``PHMX_JVM_JARS``, else ``<project>/.jvm/jars``."""
    override = settings.load().jvm_jars
    return Path(override) if override else PROJECT_ROOT / ".jvm" / "jars"


def jars() -> list[str]:
    """The resolved jars, sorted; a :class:`ConfigError` naming the fix when they are missing."""
    folder = jars_dir()
    found = sorted(str(p) for p in folder.glob("*.jar")) if folder.is_dir() else []
    if not any(Path(j).name.startswith(f"delta-spark_{SPARK_LINE}_") for j in found):
        raise ConfigError(f"the Delta jars for the JVM engine are not in {folder}",
                          hint="run `make jvm` in the project (Maven resolves jvm/pom.xml), "
                               "or set PHMX_JVM_JARS to a folder holding them")
    return found


def spark_home() -> Path:
    """The pyspark distribution's folder (its ``bin/spark-submit`` and ``jars/``)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def worker_environment() -> dict[str, str]:
    """Environment a local JVM needs so its Python workers run this project's code.

    ``PYSPARK_PYTHON`` (and the driver's) is this interpreter, so the workers have the same
    packages; ``PYTHONPATH`` starts with the project root, so pandas UDFs in ``privacy`` and
    ``jobs`` import on the workers whether or not the project is installed there.
    """
    env = {"SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP") or "127.0.0.1",
           "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON") or sys.executable,
           "PYSPARK_DRIVER_PYTHON": os.environ.get("PYSPARK_DRIVER_PYTHON") or sys.executable}
    paths = [str(PROJECT_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def s3a_conf(*, endpoint: str | None, kms_key_id: str | None, region: str,
             credentials_provider: str | None = None,
             bucket_keys: dict[str, str] | None = None) -> dict[str, str]:
    """Hadoop S3A settings for ``s3://`` and ``s3a://`` roots (endpoint, region, credentials, SSE-KMS).

    ``s3://`` is mapped to S3A so the same URIs work on Sail and on the JVM. A plain-HTTP
    endpoint (moto on loopback in tests, a MinIO) turns SSL off and uses path-style addressing.
    ``credentials_provider`` replaces S3A's default chain (environment, profile, web identity,
    instance role; right for EMR and EC2, so unset is the normal case). With a KMS key every
    object S3A writes carries SSE-KMS with it; ``bucket_keys`` gives a bucket its own key
    (S3A's per-bucket ``fs.s3a.bucket.<name>.*``): the ledger bucket takes only the audit key.
    """
    conf = {"spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "spark.hadoop.fs.s3a.endpoint.region": region}
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        if endpoint.startswith("http://"):
            conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "false"
    if credentials_provider:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = credentials_provider
    if kms_key_id:
        conf["spark.hadoop.fs.s3a.encryption.algorithm"] = "SSE-KMS"
        conf["spark.hadoop.fs.s3a.encryption.key"] = kms_key_id
    for bucket, key in sorted((bucket_keys or {}).items()):
        conf[f"spark.hadoop.fs.s3a.bucket.{bucket}.encryption.algorithm"] = "SSE-KMS"
        conf[f"spark.hadoop.fs.s3a.bucket.{bucket}.encryption.key"] = key
    return conf


def object_store_conf(cfg: settings.Settings | None = None) -> dict[str, str]:
    """:func:`s3a_conf` from the project's settings and the standard AWS variables of this process.

    The endpoint is ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (as boto3 and delta-rs read
    it), the key ``PHMX_KMS_KEY_ID``, the provider ``PHMX_S3A_CREDENTIALS_PROVIDER``; a ledger root
    in a bucket of its own gets ``PHMX_LEDGER_KMS_KEY_ID`` (as :func:`phmx.storage.delta_storage_options`).
    """
    from phmx import storage

    cfg = cfg or settings.load()
    bucket_keys: dict[str, str] = {}
    ledger_key = cfg.ledger_kms_key_id
    if ledger_key and ledger_key != cfg.kms_key_id and storage.is_s3(cfg.ledger_root):
        ledger_bucket = storage.split_s3(cfg.ledger_root)[0]
        lake_bucket = storage.split_s3(cfg.lakehouse_root)[0] if storage.is_s3(cfg.lakehouse_root) else None
        if ledger_bucket != lake_bucket:
            bucket_keys[ledger_bucket] = ledger_key
    return s3a_conf(endpoint=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"),
                    kms_key_id=cfg.kms_key_id,
                    region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-west-2",
                    credentials_provider=cfg.s3a_credentials_provider, bucket_keys=bucket_keys)


def under_spark_submit() -> bool:
    """Whether this Python was started by ``spark-submit`` (the JVM, its jars and master exist)."""
    return bool(os.environ.get("PYSPARK_GATEWAY_PORT"))


def is_local_master(master: str | None) -> bool:
    """Whether ``master`` runs the whole engine in one JVM on this machine (``local``, ``local[2]``)."""
    return bool(master) and str(master).strip().startswith("local")


# What a JVM on one machine (a ``local[...]`` master) runs with: Spark's interpreted expressions
# instead of generating and compiling Java code for every query. A run on such a master is
# thousands of small queries over small periods; compiling each query's generated classes (Janino,
# then the JIT again for every new class) cost more CPU than evaluating its few rows: one stage of a
# 200-member hub used a third less CPU without it (docs/scaling.md section 5). PHMX_SPARK_CODEGEN
# overrides it either way.
NO_CODEGEN_CONF: dict[str, str] = {"spark.sql.codegen.wholeStage": "false",
                                   "spark.sql.codegen.factoryMode": "NO_CODEGEN"}
# JVM options for short-lived drivers (a spark-submit task per stage on one machine): the C1 JIT
# only, which cut a bare driver's start from 24 to 14 CPU seconds. Not a default: over a long
# session the optimising compiler pays for itself (section 5).
SHORT_JVM_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


def codegen_off(master: str | None, cfg: settings.Settings | None = None) -> bool | None:
    """Whether queries run interpreted: ``PHMX_SPARK_CODEGEN`` when set, else on a local master
    (:data:`NO_CODEGEN_CONF`); ``None`` when neither says (the master unknown)."""
    choice = (cfg or settings.load()).spark_codegen
    if choice:
        return choice == "off"
    return is_local_master(master) if master is not None else None


def engine_conf(*, shuffle_partitions: int, log_level: str | None = None,
                master: str | None = None) -> dict[str, str]:
    """What every JVM driver of ours runs with, however it starts: a classic session started here,
    the Spark Connect server, a spark-submit driver (``phmx.runners.SparkSubmitConfig.conf`` puts
    these on its command line) and an EMR driver (its session builder sets them). One list, so
    the routes cannot drift apart.

    Delta's extension and catalog, UTC, adaptive execution with partition coalescing (small
    periods make many near-empty shuffle partitions), few partitions for Delta's log replay (50
    by default, for one small log), Arrow for pandas UDFs and conversions. Code generation follows
    :func:`codegen_off`: off on a local ``master`` (:data:`NO_CODEGEN_CONF`); with the master
    unknown (``None``: the spark-submit command line, built before the connection names one) the
    driver's own builder, which knows it, decides.
    """
    cfg = settings.load()
    conf = {**DELTA_SQL_CONF,
            "spark.sql.shuffle.partitions": str(shuffle_partitions),
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.adaptive.enabled": "true",
            "spark.sql.adaptive.coalescePartitions.enabled": "true",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.log.level": log_level or cfg.spark_log_level}
    off = codegen_off(master, cfg)
    if off is not None:
        conf.update(NO_CODEGEN_CONF if off else {"spark.sql.codegen.wholeStage": "true",
                                                 "spark.sql.codegen.factoryMode": "FALLBACK"})
    return conf


# A JVM this process starts on this machine: no UI, the driver on loopback, no progress bar. Never
# set under spark-submit, where the submitter chose the driver's host (on a cluster, executors on
# other nodes must reach it) and its memory (fixed when its JVM started).
OWN_JVM_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.ui.showConsoleProgress": "false",
}


def jvm_start_conf(cfg: settings.Settings) -> dict[str, str]:
    """What only counts when a driver's JVM starts: its memory (``PHMX_SPARK_DRIVER_MEMORY``) and
    the extra JVM options of the driver and executors (``PHMX_SPARK_JAVA_OPTIONS``). Set by a
    classic session or Connect server started here and on spark-submit's command line; too late
    in a session builder under spark-submit."""
    conf = {"spark.driver.memory": cfg.spark_driver_memory}
    if cfg.spark_java_options:
        conf["spark.driver.extraJavaOptions"] = cfg.spark_java_options
        conf["spark.executor.extraJavaOptions"] = cfg.spark_java_options
    return conf


def session_conf(*, shuffle_partitions: int, local: bool = True, submitted: bool = False,
                 master: str | None = None) -> dict[str, str]:
    """Everything a JVM session of ours is configured with (classic session and Connect server).

    :func:`engine_conf`, the object store's settings, and, for a JVM this process starts
    (``submitted`` false), :data:`OWN_JVM_CONF`, the driver's memory and the jars. Local jars
    (never ``spark.jars.packages``): on a local master they go on the JVM's class path directly
    (``spark.jars`` would copy the 650 MB AWS SDK bundle into every session's scratch folder);
    for a cluster, ``spark.jars`` ships them. Under spark-submit (``submitted``) the submitter
    chose the jars, the driver's host and its memory. ``master`` is the session's (see
    :func:`engine_conf`); by default ``local[2]`` for a JVM started here and unknown under spark-submit.
    """
    if master is None and not submitted:
        master = "local[2]" if local else None
    conf = engine_conf(shuffle_partitions=shuffle_partitions, master=master)
    if not submitted:
        jar_list = jars()
        if jar_list and local:
            conf.update({"spark.driver.extraClassPath": os.pathsep.join(jar_list),
                         "spark.executor.extraClassPath": os.pathsep.join(jar_list)})
        elif jar_list:
            conf["spark.jars"] = ",".join(jar_list)
        conf.update(OWN_JVM_CONF)
        conf.update(jvm_start_conf(settings.load()))
    conf.update(object_store_conf())
    return conf


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ConnectServer:
    """A JVM Spark Connect server with Delta on 127.0.0.1, started with pyspark's ``spark-submit``.

    The server's Python workers get :func:`worker_environment`, so the project's pandas UDFs
    import there. Use as a context manager (stops the server on exit) or call :meth:`start` /
    :meth:`stop`; ``scripts/spark-connect-server.sh`` runs one in the foreground.
    """

    port: int = 0
    master: str = "local[2]"
    shuffle_partitions: int = 8
    log_path: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (benchmarks add its CPU time to the stages')."""
        return self._proc.pid if self._proc is not None else None

    def command(self) -> list[str]:
        conf = session_conf(shuffle_partitions=self.shuffle_partitions, master=self.master)
        conf.update({"spark.connect.grpc.binding.address": "127.0.0.1",
                     "spark.connect.grpc.binding.port": str(self.port),
                     "spark.master": self.master})
        cmd = [str(spark_home() / "bin" / "spark-submit"), "--class", CONNECT_SERVER_CLASS,
               "--name", "phmx Spark Connect server"]
        for key, value in sorted(conf.items()):
            cmd += ["--conf", f"{key}={value}"]
        return [*cmd, "spark-internal"]

    def start(self, timeout: float = 180.0) -> str:
        if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
            raise ConfigError("no Java for the Spark Connect server", hint="install a JDK 17 or 21 (apt-get install openjdk-17-jdk-headless)")
        self.port = self.port or free_port()
        env = {**os.environ, **worker_environment()}
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - lives with the server
        self._proc = subprocess.Popen(self.command(), env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                      start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ConfigError(f"the Spark Connect server exited with code {self._proc.returncode}",
                                  hint=f"see its log{' at ' + str(self.log_path) if self.log_path else ''}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                log.info("JVM Spark Connect server listening on 127.0.0.1:%s", self.port)
                return self.address
            time.sleep(1)
        self.stop()
        raise ConfigError(f"the Spark Connect server did not listen within {timeout:.0f} s", hint="see its log")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)

    def __enter__(self) -> ConnectServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m phmx.jvm connect-server [--port N] [--master M]``: run a server until interrupted."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m phmx.jvm")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("connect-server", help="a JVM Spark Connect server with Delta on 127.0.0.1")
    serve.add_argument("--port", type=int, default=15002)
    serve.add_argument("--master", default="local[2]")
    serve.add_argument("--shuffle-partitions", type=int, default=8)
    sub.add_parser("jars", help="print the resolved jars, one a line")
    args = parser.parse_args(argv)
    if args.command == "jars":
        sys.stdout.write("\n".join(jars()) + "\n")
        return 0
    server = ConnectServer(port=args.port, master=args.master, shuffle_partitions=args.shuffle_partitions)
    server.start()
    sys.stdout.write(f"SPARK_REMOTE={server.address}\n")
    sys.stdout.flush()
    try:
        assert server._proc is not None  # noqa: S101 - set by start()
        return server._proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
