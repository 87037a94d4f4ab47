"""Task runners: how one pipeline stage runs, chosen by ``PHMX_RUNNER`` without touching DAG structure.

The DAG files build their tasks through :func:`stage_task` (or :func:`mapped_stage_task` for a
task mapped over values, e.g. one publish task per recipient); the runner decides what each task is:

| PHMX_RUNNER      | task                              | where the stage runs                                     |
|------------------|-----------------------------------|----------------------------------------------------------|
| inprocess        | ``@task`` calling jobs.entry      | inside the Airflow worker, on the embedded engine        |
| spark_submit     | ``SparkSubmitOperator``           | a classic Spark driver with delta-spark (``--packages``) |
| emr_serverless   | ``EmrServerlessStartJobOperator`` | a job run on the EMR Serverless application              |

The two cluster runners start the same driver, ``jobs/submit.py --stage S --period P --run-id R``
(extra ``--option key=value`` pairs for mapped tasks), which calls ``get_spark()`` and
``jobs.entry.run_stage``: one code path whichever runner is chosen.

Each runner is a class (:class:`InProcessRunner`, :class:`SparkSubmitRunner`,
:class:`EmrServerlessRunner`) named by the :class:`Runner` enum and chosen in one place,
:func:`task_runner`. The cluster settings come from :mod:`phmx.settings` through two small
dataclasses (:class:`SparkSubmitConfig`, :class:`EmrServerlessConfig`); the Terraform output
``phmx_settings`` and the outputs ``emr_*`` name the EMR values. Any mistake is raised when the
DAG file is parsed, as a :class:`~phmx.errors.ConfigError` naming the variable and how to fix it.
"""

from __future__ import annotations

import inspect
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from phmx import jvm, storage
from phmx import settings as settings_mod
from phmx.errors import ConfigError

# Jinja templates the operators render at run time: the run's period and Airflow's run id. The
# period is the trigger conf's {"period": ...} when given; a scheduled or backfill run left at the
# default "all" processes the month its data interval starts in (run_period below, the same rule).
PERIOD_TEMPLATE = ("{{ params.period if params.period != 'all' or dag_run.run_type not in ('scheduled', 'backfill') "
                   "else data_interval_start.strftime('%Y-%m') }}")
INTERVAL_RUN_TYPES: frozenset[str] = frozenset({"scheduled", "backfill"})
RUN_ID_TEMPLATE = "{{ run_id }}"
# The same two values as environment variables (the driver's defaults for --period and --run-id).
RUN_ENV_TEMPLATES: dict[str, str] = {"PHMX_JOB_PERIOD": PERIOD_TEMPLATE, "PHMX_JOB_RUN_ID": RUN_ID_TEMPLATE}

DELTA_SQL_CONF: dict[str, str] = jvm.DELTA_SQL_CONF
# The Delta jars that ship with every EMR 7 release (the same list as the Terraform module
# emr_serverless's output spark_submit_parameters).
EMR_DELTA_JARS = "/usr/share/aws/delta/lib/delta-spark.jar,/usr/share/aws/delta/lib/delta-storage.jar"
EMR_DELTA_PARAMETERS = " ".join(
    [f"--conf spark.jars={EMR_DELTA_JARS}"] + [f"--conf {k}={v}" for k, v in DELTA_SQL_CONF.items()]
)
HADOOP_AWS_PACKAGE = jvm.HADOOP_AWS_PACKAGE  # the Hadoop of pyspark's own client jars (phmx.jvm)
VENV_ARCHIVE_NAME = "phmx-venv.tar.gz"  # what `make dist` builds (phmx.dist)

_OPTION_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


def submit_script() -> str:
    """Path of the driver script (``jobs/submit.py``) of the installed ``jobs`` package."""
    import jobs

    return str(Path(jobs.__file__).resolve().parent / "submit.py")


def delta_package() -> str:
    """The delta-spark Maven coordinate for the pinned pyspark: ``phmx.jvm.DELTA_PACKAGE``.

    The artifact names the Spark line (``delta-spark_4.2_2.13``) like delta-spark's own
    ``configure_spark_with_delta_pip``, but its version is the newest Delta *jar* built for that
    line (the PyPI package can be a patch ahead with no matching jar; see :mod:`phmx.jvm`).
    Set ``PHMX_DELTA_PACKAGE`` when the cluster's Spark differs from the client's.
    """
    return jvm.DELTA_PACKAGE


def job_arguments(stage: str, options: Mapping[str, str] | None = None) -> list[str]:
    """The driver's arguments: ``--stage S --period {{ params.period }} --run-id {{ run_id }}``."""
    args = ["--stage", stage, "--period", PERIOD_TEMPLATE, "--run-id", RUN_ID_TEMPLATE]
    for key, value in sorted((options or {}).items()):
        if not _OPTION_KEY.match(key):
            raise ConfigError(f"job option name {key!r} is not a lowercase identifier", hint="use e.g. recipient")
        args += ["--option", f"{key}={value}"]
    return args


def job_environment(cfg: settings_mod.Settings | None = None) -> dict[str, str]:
    """The phmx settings a cluster driver needs (same buckets, keys and partitions as Airflow).

    An allow-list (``Settings.as_env``, the log level and ``PHMX_DEK_UNWRAP``, ``executor`` unless
    set), never the whole environment, so no unrelated variable reaches a job definition. ``PHMX_ENGINE=classic``: the driver is a JVM
    Spark session with Delta, not the embedded engine.
    """
    cfg = cfg or settings_mod.load()
    env = cfg.as_env()
    env.pop("PHMX_RUNNER", None)
    env["PHMX_ENGINE"] = "classic"
    # Cluster executors unwrap the data keys of encrypted columns themselves (through KMS), so no
    # plaintext key travels inside a task closure (docs/encryption-at-rest.md).
    env["PHMX_DEK_UNWRAP"] = cfg.dek_unwrap or "executor"
    if cfg.log_level:
        env["PHMX_LOG_LEVEL"] = cfg.log_level
    return dict(sorted(env.items()))


def _data_roots(cfg: settings_mod.Settings) -> dict[str, str]:
    return {"PHMX_LANDING_ROOT": cfg.landing_root, "PHMX_LAKEHOUSE_ROOT": cfg.lakehouse_root,
            "PHMX_OUTBOX_ROOT": cfg.outbox_root, "PHMX_PUBLISH_ROOT": cfg.publish_root,
            "PHMX_LEDGER_ROOT": cfg.ledger_root}


def _shared_roots(cfg: settings_mod.Settings) -> dict[str, str]:
    """Everything a job run must share with every other: the data roots and the keys.

    On EMR Serverless a local folder lives as long as one job run. A local PHMX_KEYS_DIR there
    would mint a new master key version and new signing keys in every run (pseudonyms that no
    longer join, checkpoints signed by throwaway keys), so it is refused like a local data root.
    """
    return {**_data_roots(cfg), "PHMX_KEYS_DIR": cfg.keys_dir}


# ---- configuration of the two cluster runners ------------------------------------------------
def _jars_setting(value: str) -> tuple[str, str]:
    """``PHMX_SPARK_JARS`` as ``(jars to ship, class path)``: ``make-jvm`` is the class path of the
    jars ``make jvm`` resolved on this machine, anything else a list shipped with ``--jars``."""
    value = value.strip()
    return ("", os.pathsep.join(jvm.jars())) if value == "make-jvm" else (value, "")


@dataclass(frozen=True)
class SparkSubmitConfig:
    """Settings of the ``spark_submit`` runner (all optional).

    | variable              | default                         | meaning                                  |
    |-----------------------|---------------------------------|------------------------------------------|
    | PHMX_SPARK_CONN_ID    | spark_default                   | Airflow connection naming the master     |
    | PHMX_DELTA_PACKAGE    | from the installed delta-spark  | delta-spark Maven coordinate             |
    | PHMX_SPARK_APPLICATION| jobs/submit.py of this install  | driver script spark-submit runs          |
    | PHMX_SPARK_JARS       | unset                           | local jars instead of ``--packages``     |
    | PHMX_SPARK_PYTHON     | unset                           | driver and workers' Python (``make dist``) |
    | PHMX_SPARK_ARCHIVE    | unset                           | ``make dist`` environment, ``--archives`` |

    ``PHMX_SPARK_JARS=make-jvm`` puts the jars ``make jvm`` resolved on the driver's and executors'
    class path where they lie (``--driver-class-path`` and ``spark.executor.extraClassPath``: a
    local master, or nodes holding the same folder). ``--jars`` would copy every jar into each
    job's scratch folder, 670 MB (the AWS SDK bundle) per task of the DAG, before the first
    Spark job. Any other value is a comma-separated list shipped with ``--jars``. Either way
    nothing is resolved from Maven when the driver starts.
    """

    conn_id: str = "spark_default"
    delta_package: str = field(default_factory=delta_package)
    application: str = field(default_factory=submit_script)
    jars: str = ""
    class_path: str = ""
    python: str = ""
    archive: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SparkSubmitConfig:
        """From the environment (or the mapping ``env``), through :mod:`phmx.settings`."""
        return cls.from_settings(settings_mod.load(env))

    @classmethod
    def from_settings(cls, cfg: settings_mod.Settings) -> SparkSubmitConfig:
        jars, class_path = _jars_setting(cfg.spark_jars or "")
        return cls(conn_id=cfg.spark_conn_id or "spark_default",
                   delta_package=cfg.delta_package or delta_package(),
                   application=cfg.spark_application or submit_script(),
                   jars=jars, class_path=class_path, python=(cfg.spark_python or "").strip(),
                   archive=(cfg.spark_archive or "").strip())

    def python_environment(self) -> dict[str, str]:
        """``PHMX_SPARK_PYTHON`` as the driver's and workers' Python, and an empty ``PYTHONPATH``.

        spark-submit starts with the Airflow worker's environment; its ``PYTHONPATH`` (a checkout
        of the project, the worker's packages) would shadow the bundle's, so the job runs the
        code ``make dist`` packed and nothing else. spark-submit adds its own pyspark and py4j.
        """
        if not self.python:
            return {}
        return {"PYSPARK_PYTHON": self.python, "PYSPARK_DRIVER_PYTHON": self.python, "PYTHONPATH": ""}

    def archive_kwargs(self) -> dict[str, Any]:
        """``PHMX_SPARK_ARCHIVE``: the packed environment as ``--archives <it>#environment``, and
        the driver's and executors' Python inside it (YARN and Kubernetes unpack it in each
        container's working directory, as PySpark's guide to packing a virtualenv describes)."""
        if not self.archive:
            return {}
        python = "./environment/bin/python"
        return {"archives": f"{self.archive}#environment",
                "conf": {"spark.pyspark.python": python, "spark.pyspark.driver.python": python}}

    def packages(self, cfg: settings_mod.Settings) -> str:
        """delta-spark, plus hadoop-aws when any data root is on S3 (none when jars are given)."""
        if self.jars or self.class_path:
            return ""
        pkgs = [self.delta_package]
        if any(storage.is_s3(root) for root in _data_roots(cfg).values()):
            pkgs.append(HADOOP_AWS_PACKAGE)
        return ",".join(pkgs)

    def conf(self, cfg: settings_mod.Settings) -> dict[str, str]:
        """:func:`phmx.jvm.engine_conf`, the list every JVM driver of ours runs with (Delta, shuffle
        partitions, UTC, adaptive execution, Arrow, Delta's snapshot partitions; code generation,
        which depends on the master the connection names, is set by the driver's builder); S3A for ``s3://``
        roots (:func:`phmx.jvm.object_store_conf`: endpoint, credentials provider, SSE-KMS with the
        zone's key); the driver's memory (``PHMX_SPARK_DRIVER_MEMORY``, as a classic session gets:
        spark-submit's own default is 1g, and the driver-side steps of identity, measures and
        publish need more) and JVM options (:func:`phmx.jvm.jvm_start_conf`). The driver's session builder sets the same engine list again
        (``phmx.engine.classic_builder``), never its host or memory."""
        conf = jvm.engine_conf(shuffle_partitions=cfg.shuffle_partitions, log_level=cfg.spark_log_level)
        conf.update(jvm.jvm_start_conf(cfg))
        if any(storage.is_s3(root) for root in _data_roots(cfg).values()):
            conf.update(jvm.object_store_conf(cfg))  # the same S3A settings as a classic session's
        return conf


@dataclass(frozen=True)
class EmrServerlessConfig:
    """Settings of the ``emr_serverless`` runner; the first four are required.

    | variable                        | Terraform output (envs/example) | meaning                               |
    |---------------------------------|---------------------------------|---------------------------------------|
    | PHMX_EMR_APPLICATION_ID         | emr_application_id              | the Spark application                 |
    | PHMX_EMR_EXECUTION_ROLE_ARN     | emr_execution_role_arn          | job runtime role (pipeline-spark)     |
    | PHMX_EMR_CODE_URI               | emr_code_uri                    | s3:// prefix holding submit.py        |
    | PHMX_EMR_LOG_URI                | emr_log_uri                     | s3:// prefix for job logs             |
    | PHMX_EMR_SPARK_SUBMIT_PARAMETERS| emr_spark_submit_parameters     | Delta on EMR (default: the same text) |
    | PHMX_EMR_VENV_ARCHIVE           | <code uri>phmx-venv.tar.gz      | packed venv; empty for a custom image |
    | PHMX_EMR_AWS_CONN_ID            | aws_default                     | Airflow AWS connection                |
    | PHMX_EMR_JOB_TIMEOUT_MINUTES    | 180                             | how long a task waits for its job run |
    """

    application_id: str
    execution_role_arn: str
    code_uri: str
    log_uri: str
    spark_submit_parameters: str = EMR_DELTA_PARAMETERS
    venv_archive: str | None = None
    aws_conn_id: str = "aws_default"
    job_timeout_minutes: int = 180

    REQUIRED: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("application_id", "PHMX_EMR_APPLICATION_ID", "emr_application_id"),
        ("execution_role_arn", "PHMX_EMR_EXECUTION_ROLE_ARN", "emr_execution_role_arn"),
        ("code_uri", "PHMX_EMR_CODE_URI", "emr_code_uri"),
        ("log_uri", "PHMX_EMR_LOG_URI", "emr_log_uri"),
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EmrServerlessConfig:
        """From the environment (or the mapping ``env``), through :mod:`phmx.settings`."""
        return cls.from_settings(settings_mod.load(env))

    @classmethod
    def from_settings(cls, cfg: settings_mod.Settings) -> EmrServerlessConfig:
        given = {attr: getattr(cfg, f"emr_{attr}") for attr, _, _ in cls.REQUIRED}
        missing = [(var, out) for attr, var, out in cls.REQUIRED if not given[attr]]
        if missing:
            names = ", ".join(var for var, _ in missing)
            outs = ", ".join(f"{var} = terraform output -raw {out}" for var, out in missing)
            raise ConfigError(f"PHMX_RUNNER=emr_serverless needs {names}", hint=f"set {outs}")
        values = {attr: str(v).strip() for attr, v in given.items()}
        for attr in ("code_uri", "log_uri"):
            if not storage.is_s3(values[attr]):
                var = next(v for a, v, _ in cls.REQUIRED if a == attr)
                raise ConfigError(f"{var} must be an s3:// URI", hint=f"use terraform output -raw emr_{attr}")
        archive = cfg.emr_venv_archive
        if archive is None:
            archive = values["code_uri"].rstrip("/") + "/" + VENV_ARCHIVE_NAME
        return cls(application_id=values["application_id"], execution_role_arn=values["execution_role_arn"],
                   code_uri=values["code_uri"], log_uri=values["log_uri"],
                   spark_submit_parameters=(cfg.emr_spark_submit_parameters or EMR_DELTA_PARAMETERS).strip(),
                   venv_archive=archive.strip() or None,
                   aws_conn_id=cfg.emr_aws_conn_id or "aws_default",
                   job_timeout_minutes=cfg.emr_job_timeout_minutes)

    @property
    def entry_point(self) -> str:
        """``<code uri>/submit.py``: where the deploy step uploads jobs/submit.py."""
        return self.code_uri.rstrip("/") + "/submit.py"

    def submit_parameters(self, job_env: Mapping[str, str]) -> str:
        """Delta confs, the packed environment, and the phmx settings for driver and executors.

        EMR splits sparkSubmitParameters on whitespace, so a value with a space is refused.
        """
        parts = [self.spark_submit_parameters]
        if self.venv_archive:
            parts += [f"--conf spark.archives={self.venv_archive}#environment",
                      "--conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=./environment/bin/python",
                      "--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python",
                      "--conf spark.executorEnv.PYSPARK_PYTHON=./environment/bin/python"]
        for key, value in job_env.items():
            if re.search(r"\s", value) or not value:
                raise ConfigError(f"{key} is empty or contains whitespace; EMR cannot pass it",
                                  hint=f"set {key} to a value without spaces")
            parts += [f"--conf spark.emr-serverless.driverEnv.{key}={value}",
                      f"--conf spark.executorEnv.{key}={value}"]
        return " ".join(parts)


# ---- the runners: one class each, chosen in one place --------------------------------------
class Runner(StrEnum):
    """The values of ``PHMX_RUNNER``."""

    INPROCESS = "inprocess"
    SPARK_SUBMIT = "spark_submit"
    EMR_SERVERLESS = "emr_serverless"


RUNNERS: tuple[str, ...] = tuple(r.value for r in Runner)


def run_period(params: Mapping[str, Any] | None, run_type: str | None, data_interval_start: Any) -> str:
    """The period a DAG run processes (the rule ``PERIOD_TEMPLATE`` renders for the cluster runners).

    A period in the trigger conf wins (a manual run or a re-run of one month). A scheduled or
    backfill run left at ``all`` takes the month its data interval starts in: with
    ``PHMX_SCHEDULE=@monthly`` the run for the interval [2025-03-01, 2025-04-01) processes 2025-03,
    so catch-up and ``airflow backfill create`` process month by month.
    """
    period = str((params or {}).get("period", "all"))
    if period == "all" and str(getattr(run_type, "value", run_type)) in INTERVAL_RUN_TYPES \
            and data_interval_start is not None:
        return f"{data_interval_start.year:04d}-{data_interval_start.month:02d}"
    return period


def run_inprocess(stage: str, **options: str) -> dict[str, Any]:
    """The in-process task body: run the stage on this worker's engine session; counts to XCom."""
    from airflow.sdk import get_current_context

    from jobs.submit import run_job

    ctx = get_current_context()
    dag_run = ctx.get("dag_run")
    period = run_period(ctx["params"], getattr(dag_run, "run_type", None), ctx.get("data_interval_start"))
    result = run_job(stage, period=period, run_id=ctx["run_id"], options=options)
    return {"stage": result.stage, "counts": result.counts}


def _inprocess_callable(stage: str, options: tuple[str, ...] = ()) -> Callable[..., dict[str, Any]]:
    """A task body named for the stage whose signature names only its ``options`` (or nothing).

    Airflow passes a callable every context variable its signature accepts; a ``**kwargs``
    body would receive the whole context as stage options. So the signature is explicit.
    """

    def run(**options: str) -> dict[str, Any]:
        return run_inprocess(stage, **options)

    params = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in options]
    run.__signature__ = inspect.Signature(params, return_annotation=dict)  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = f"run_{stage}"
    run.__doc__ = f"Run the {stage} stage in this Airflow worker (PHMX_RUNNER=inprocess)."
    return run


def _instance_args(stage: str, option: str) -> Callable[[Any], list[str]]:
    """The driver arguments of one mapped instance (period and run id travel in its environment)."""

    def args(value: Any) -> list[str]:
        return ["--stage", stage, "--option", f"{option}={value}"]

    return args


class TaskRunner(ABC):
    """How a stage becomes an Airflow task. :func:`task_runner` picks the class for ``PHMX_RUNNER``."""

    kind: ClassVar[Runner]

    def __init__(self, cfg: settings_mod.Settings) -> None:
        self.cfg = cfg

    @abstractmethod
    def task(self, stage: str, task_id: str, options: dict[str, str], task_kwargs: dict[str, Any]) -> Any:
        """One task running ``stage`` with ``options``."""

    @abstractmethod
    def mapped(self, stage: str, task_id: str, option: str, values: Any,
               task_kwargs: dict[str, Any]) -> Any:
        """``stage`` mapped over ``values``: one task instance per value of ``option``."""


class InProcessRunner(TaskRunner):
    """``@task`` calling jobs.entry inside the Airflow worker, on the embedded engine."""

    kind = Runner.INPROCESS

    def task(self, stage: str, task_id: str, options: dict[str, str], task_kwargs: dict[str, Any]) -> Any:
        from airflow.sdk import task

        return task(task_id=task_id, **task_kwargs)(_inprocess_callable(stage, tuple(options)))(**options)

    def mapped(self, stage: str, task_id: str, option: str, values: Any,
               task_kwargs: dict[str, Any]) -> Any:
        from airflow.sdk import task

        return task(task_id=task_id, **task_kwargs)(_inprocess_callable(stage, (option,))).expand(**{option: values})


class SparkSubmitRunner(TaskRunner):
    """``SparkSubmitOperator``: a classic Spark driver with delta-spark (``--packages``)."""

    kind = Runner.SPARK_SUBMIT

    def _kwargs(self, task_id: str) -> dict[str, Any]:
        sub = SparkSubmitConfig.from_settings(self.cfg)
        archive = sub.archive_kwargs()
        return {
            "task_id": task_id,
            "conn_id": sub.conn_id,
            "application": sub.application,
            "packages": sub.packages(self.cfg) or None,
            "jars": sub.jars or None,
            "driver_class_path": sub.class_path or None,
            "archives": archive.get("archives"),
            "conf": {**sub.conf(self.cfg), **archive.get("conf", {}),
                     **({"spark.executor.extraClassPath": sub.class_path} if sub.class_path else {})},
            "env_vars": {**job_environment(self.cfg), **sub.python_environment()},
            "name": f"phmx-{task_id}",
        }

    def task(self, stage: str, task_id: str, options: dict[str, str], task_kwargs: dict[str, Any]) -> Any:
        from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

        return SparkSubmitOperator(application_args=job_arguments(stage, options), **self._kwargs(task_id),
                                   **task_kwargs)

    def mapped(self, stage: str, task_id: str, option: str, values: Any,
               task_kwargs: dict[str, Any]) -> Any:
        from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

        kw = self._kwargs(task_id)
        kw["env_vars"] = {**kw["env_vars"], **RUN_ENV_TEMPLATES}
        return SparkSubmitOperator.partial(**kw, **task_kwargs).expand(
            application_args=_map(values, _instance_args(stage, option)))


class EmrServerlessRunner(TaskRunner):
    """``EmrServerlessStartJobOperator``: a job run on the EMR Serverless application."""

    kind = Runner.EMR_SERVERLESS

    def _kwargs(self, task_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The operator's arguments and the job driver (without its entry-point arguments)."""
        emr = EmrServerlessConfig.from_settings(self.cfg)
        local = {var: root for var, root in _shared_roots(self.cfg).items() if not storage.is_s3(root)}
        if local:
            raise ConfigError("PHMX_RUNNER=emr_serverless needs every data root and the keys dir on S3; local: "
                              + ", ".join(sorted(local)),
                              hint="set them from terraform output phmx_settings (PHMX_KEYS_DIR: an s3:// prefix "
                                   "only the pipeline roles can read)")
        waiter_delay = 30
        kw = {
            "task_id": task_id,
            "application_id": emr.application_id,
            "execution_role_arn": emr.execution_role_arn,
            "aws_conn_id": emr.aws_conn_id,
            "name": f"phmx-{task_id}-{PERIOD_TEMPLATE}",
            "configuration_overrides": {
                "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": emr.log_uri}},
            },
            "wait_for_completion": True,
            "waiter_delay": waiter_delay,
            "waiter_max_attempts": max(1, emr.job_timeout_minutes * 60 // waiter_delay),
        }
        driver = {"entryPoint": emr.entry_point,
                  "sparkSubmitParameters": emr.submit_parameters(job_environment(self.cfg))}
        return kw, driver

    def task(self, stage: str, task_id: str, options: dict[str, str], task_kwargs: dict[str, Any]) -> Any:
        from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator

        kw, driver = self._kwargs(task_id)
        driver["entryPointArguments"] = job_arguments(stage, options)
        return EmrServerlessStartJobOperator(job_driver={"sparkSubmit": driver}, **kw, **task_kwargs)

    def mapped(self, stage: str, task_id: str, option: str, values: Any,
               task_kwargs: dict[str, Any]) -> Any:
        from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator

        kw, driver = self._kwargs(task_id)
        kw["configuration_overrides"] = {**kw["configuration_overrides"], "applicationConfiguration": [{
            "classification": "spark-defaults",
            "properties": {f"spark.emr-serverless.driverEnv.{k}": v for k, v in RUN_ENV_TEMPLATES.items()},
        }]}
        args = _instance_args(stage, option)

        def instance_driver(value: Any) -> dict[str, Any]:
            return {"sparkSubmit": {**driver, "entryPointArguments": args(value)}}

        return EmrServerlessStartJobOperator.partial(**kw, **task_kwargs).expand(job_driver=_map(values, instance_driver))


_RUNNER_CLASSES: dict[Runner, type[TaskRunner]] = {cls.kind: cls for cls in (InProcessRunner, SparkSubmitRunner,
                                                                               EmrServerlessRunner)}


def runner_kind(cfg: settings_mod.Settings | None = None) -> Runner:
    """The configured runner (``PHMX_RUNNER``); an unknown name is a ConfigError listing the known ones."""
    name = (cfg or settings_mod.load()).runner.strip().lower() or Runner.INPROCESS.value
    try:
        return Runner(name)
    except ValueError:
        raise ConfigError(f"unknown PHMX_RUNNER {name!r}", hint="use one of " + ", ".join(RUNNERS)) from None


def runner_name(cfg: settings_mod.Settings | None = None) -> str:
    """The configured runner's name, checked against :data:`RUNNERS`."""
    return runner_kind(cfg).value


def task_runner(cfg: settings_mod.Settings | None = None) -> TaskRunner:
    """The one place a runner is chosen: the class for ``PHMX_RUNNER``."""
    cfg = cfg or settings_mod.load()
    return _RUNNER_CLASSES[runner_kind(cfg)](cfg)


def stage_task(stage: str, *, task_id: str | None = None, options: Mapping[str, str] | None = None,
               **task_kwargs: Any) -> Any:
    """One task running ``stage`` with the configured runner; call inside a DAG context.

    ``options`` are extra keyword arguments for the stage (``run_stage(..., **options)``; on a
    cluster, ``--option key=value``). ``task_kwargs`` go to the operator (e.g. ``pool``,
    ``max_active_tis_per_dag``). Returns what the DAG wires with ``>>``.
    """
    runner = task_runner()
    opts = dict(options or {})
    job_arguments(stage, opts)  # validates the option names when the DAG is parsed
    return runner.task(stage, task_id or stage, opts, task_kwargs)


def mapped_stage_task(stage: str, *, option: str, values: Any, task_id: str | None = None,
                      **task_kwargs: Any) -> Any:
    """``stage`` mapped over ``values`` (a list or an upstream XComArg): one task instance per value.

    Each instance runs the stage with ``option=value`` (e.g. ``recipient="lhj_alameda"``):
    in process as the stage's ``run(spark, ctx, recipient=value)``, on a cluster as
    ``--option recipient=value``. Airflow does not render templates inside values that come
    from XCom, so on a cluster the period and run id travel in the job's environment
    (``PHMX_JOB_PERIOD``, ``PHMX_JOB_RUN_ID``, rendered in the unmapped part) rather than as arguments.
    """
    runner = task_runner()
    job_arguments(stage, {option: "x"})  # validates the option name when the DAG is parsed
    return runner.mapped(stage, task_id or stage, option, values, task_kwargs)


def _map(values: Any, fn: Callable[[Any], Any]) -> Any:
    """A literal list maps eagerly; an upstream XComArg maps at run time (``XComArg.map``)."""
    if isinstance(values, (list, tuple)):
        return [fn(v) for v in values]
    return values.map(fn)
