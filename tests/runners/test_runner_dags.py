"""The DAGs render under each PHMX_RUNNER: same structure, the runner's operator, the right arguments.

One subprocess parses the real DAG folder (and a small mapped DAG written here) once per runner
configuration with Airflow's own DagBag, renders every templated field with a fixed run context,
and prints what each task is. Parse-time mistakes (missing EMR settings, local roots on EMR, an
unknown runner) must surface as DAG import errors that name the setting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jobs import STAGES
from phmx import runners

REPO = Path(__file__).resolve().parents[2]

RENDER = textwrap.dedent(r'''
    import json, os, sys
    from airflow.dag_processing.dagbag import DagBag

    CTX = {"params": {"period": "2025-03"}, "run_id": "manual__r1"}
    FIELDS = ("application", "application_args", "packages", "conf", "env_vars", "_conn_id", "name",
              "application_id", "execution_role_arn", "job_driver", "configuration_overrides", "aws_conn_id",
              "waiter_delay", "waiter_max_attempts", "wait_for_completion", "max_active_tis_per_dag")

    def describe(task):
        mapped = type(task).__name__.endswith("MappedOperator")
        cls = task.operator_class if mapped else type(task)
        info = {"cls": getattr(cls, "__name__", str(cls)), "mapped": mapped,
                "downstream": sorted(task.downstream_task_ids)}
        if mapped:
            values = dict(task.partial_kwargs)
            info["expand"] = {}
            expand = getattr(task, "op_kwargs_expand_input", None) or task.expand_input
            for key, value in expand.value.items():
                if hasattr(value, "callables"):  # XComArg.map(f): apply f to a sample value
                    out = "lhj_sample"
                    for f in value.callables:
                        out = f(out)
                    info["expand"][key] = {"xcom_sample": out}
                else:
                    info["expand"][key] = value
        else:
            values = {f: getattr(task, f) for f in FIELDS if hasattr(task, f)}
        info["fields"] = {k: task.render_template(v, CTX) for k, v in values.items() if k in FIELDS}
        if hasattr(task, "python_callable"):
            info["callable"] = task.python_callable.__name__
        return info

    out = {}
    for case in json.loads(sys.argv[1]):
        env_before = dict(os.environ)
        os.environ.update(case["env"])
        for k in case.get("unset", []):
            os.environ.pop(k, None)
        dags, errors = {}, {}
        for folder in case["folders"]:
            bag = DagBag(dag_folder=folder)
            errors.update({os.path.basename(k): str(v) for k, v in bag.import_errors.items()})
            for dag_id, dag in bag.dags.items():
                dags[dag_id] = {t.task_id: describe(t) for t in dag.tasks}
        out[case["name"]] = {"dags": dags, "errors": errors}
        os.environ.clear()
        os.environ.update(env_before)
    print("RESULT " + json.dumps(out, default=str))
''')

MAPPED_DAG = textwrap.dedent('''
    """A test DAG: one stage mapped over a literal list and over an upstream task's XCom."""
    import pendulum
    from airflow.sdk import dag, task

    from phmx.runners import mapped_stage_task, stage_task


    @dag(dag_id="runner_mapped", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
         params={"period": "all"})
    def runner_mapped():
        @task
        def recipients():
            return ["lhj_alameda", "lhj_berkeley"]

        first = stage_task("consent")
        fanned = mapped_stage_task("publish", option="recipient", values=recipients(), max_active_tis_per_dag=1)
        literal = mapped_stage_task("publish", option="recipient", values=["lhj_alameda"], task_id="publish_literal")
        first >> [fanned, literal]


    runner_mapped()
''')

S3_ROOTS = {
    "PHMX_LANDING_ROOT": "s3://phmx-dev-landing-111122223333",
    "PHMX_LAKEHOUSE_ROOT": "s3://phmx-dev-lakehouse-111122223333",
    "PHMX_OUTBOX_ROOT": "s3://phmx-dev-outbox-111122223333",
    "PHMX_PUBLISH_ROOT": "s3://phmx-dev-publish-111122223333",
    "PHMX_LEDGER_ROOT": "s3://phmx-dev-ledger-111122223333/ledger",
    "PHMX_KMS_KEY_ID": "arn:aws:kms:us-west-2:111122223333:key/0000-test",
    "PHMX_KEYS_DIR": "s3://phmx-dev-lakehouse-111122223333/_keys",
}
EMR = {
    "PHMX_EMR_APPLICATION_ID": "00fexampleapp",
    "PHMX_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::111122223333:role/phmx-dev-pipeline-spark",
    "PHMX_EMR_CODE_URI": "s3://phmx-dev-artifacts-111122223333/jobs/",
    "PHMX_EMR_LOG_URI": "s3://phmx-dev-artifacts-111122223333/emr-logs/",
}
EMR_VARS = [*EMR, "PHMX_EMR_VENV_ARCHIVE", "PHMX_EMR_SPARK_SUBMIT_PARAMETERS", "PHMX_EMR_JOB_TIMEOUT_MINUTES"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("runner_dags")
    mapped = tmp / "mapped_dags"
    mapped.mkdir()
    (mapped / "runner_mapped.py").write_text(MAPPED_DAG)
    folders = [str(REPO / "dags"), str(mapped)]
    local_home = str(tmp / "var")
    cases = [
        {"name": "inprocess", "env": {"PHMX_RUNNER": "inprocess", "PHMX_HOME": local_home}, "folders": folders},
        {"name": "spark_submit", "env": {"PHMX_RUNNER": "spark_submit", "PHMX_HOME": local_home, **S3_ROOTS},
         "folders": folders},
        {"name": "spark_submit_local", "env": {"PHMX_RUNNER": "spark_submit", "PHMX_HOME": local_home,
                                                "PHMX_SPARK_CONN_ID": "spark_cluster"},
         "unset": list(S3_ROOTS), "folders": folders[:1]},
        {"name": "emr_serverless", "env": {"PHMX_RUNNER": "emr_serverless", "PHMX_HOME": local_home, **S3_ROOTS, **EMR},
         "folders": folders},
        {"name": "emr_custom_image", "env": {"PHMX_RUNNER": "emr_serverless", "PHMX_HOME": local_home, **S3_ROOTS,
                                              **EMR, "PHMX_EMR_VENV_ARCHIVE": "", "PHMX_EMR_JOB_TIMEOUT_MINUTES": "60"},
         "folders": folders[:1]},
        {"name": "emr_missing", "env": {"PHMX_RUNNER": "emr_serverless", "PHMX_HOME": local_home, **S3_ROOTS},
         "unset": EMR_VARS, "folders": folders[:1]},
        {"name": "emr_local_roots", "env": {"PHMX_RUNNER": "emr_serverless", "PHMX_HOME": local_home, **EMR},
         "unset": list(S3_ROOTS), "folders": folders[:1]},
        {"name": "unknown", "env": {"PHMX_RUNNER": "kubernetes", "PHMX_HOME": local_home}, "folders": folders[:1]},
    ]
    from phmx.airflow_env import airflow_env

    os.environ["AIRFLOW_HOME"] = str(tmp / "airflow")
    try:
        env = airflow_env()
    finally:
        os.environ.pop("AIRFLOW_HOME", None)
    for k in [*S3_ROOTS, *EMR_VARS, "PHMX_RUNNER", "PHMX_SPARK_CONN_ID"]:
        env.pop(k, None)
    proc = subprocess.run([sys.executable, "-c", RENDER, json.dumps(cases)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


RUNNER_CLASSES = {"spark_submit": "SparkSubmitOperator", "emr_serverless": "EmrServerlessStartJobOperator"}


def _exchange(rendered: dict, case: str) -> dict:
    assert rendered[case]["errors"] == {}, rendered[case]["errors"]
    return rendered[case]["dags"]["phm_exchange"]


def _structure(tasks: dict) -> dict:
    return {tid: (t["downstream"], t["mapped"]) for tid, t in tasks.items()}


def _stage_of(t: dict) -> str:
    """The stage a runner-made task runs (from its callable, or its driver's --stage)."""
    if "callable" in t:
        return t["callable"].removeprefix("run_")
    f = t["fields"]
    if t["mapped"]:
        args = next(iter(t["expand"].values()))["xcom_sample"]
        args = args["sparkSubmit"]["entryPointArguments"] if isinstance(args, dict) else args
    else:
        args = f["application_args"] if "application_args" in f else f["job_driver"]["sparkSubmit"]["entryPointArguments"]
    return args[args.index("--stage") + 1]


def _runner_tasks(tasks: dict, runner: str) -> dict:
    """The tasks the runner factory made (not the DAG's own small helper tasks)."""
    cls = RUNNER_CLASSES.get(runner)
    if cls is None:
        return {tid: t for tid, t in tasks.items() if t.get("callable", "").startswith("run_")}
    return {tid: t for tid, t in tasks.items() if t["cls"] == cls}


def _unmapped_args(stage: str, args: list[str]) -> list[str]:
    head = ["--stage", stage, "--period", "2025-03", "--run-id", "manual__r1"]
    assert args[:6] == head, args
    rest = args[6:]
    assert len(rest) % 2 == 0 and all(rest[i] == "--option" and "=" in rest[i + 1] for i in range(0, len(rest), 2))
    return rest


def test_every_runner_renders_the_same_dag_structure(rendered):
    shapes = {case: _structure(_exchange(rendered, case)) for case in ("inprocess", "spark_submit", "emr_serverless")}
    assert shapes["inprocess"] == shapes["spark_submit"] == shapes["emr_serverless"]
    for case in shapes:
        tasks = _exchange(rendered, case)
        staged = {_stage_of(t) for t in _runner_tasks(tasks, case).values()}
        assert staged == set(STAGES), case  # every stage runs through the configured runner
        for stage in STAGES:
            if stage in tasks:  # the straight part of the line: each stage task feeds the next
                nxt = STAGES[STAGES.index(stage) + 1] if stage != STAGES[-1] else None
                if nxt in tasks:
                    assert tasks[stage]["downstream"] == [nxt]


def test_inprocess_runner_keeps_python_tasks_calling_the_stage(rendered):
    tasks = _runner_tasks(_exchange(rendered, "inprocess"), "inprocess")
    assert {"ingest", "conform", "identity"} <= set(tasks)
    for tid, t in tasks.items():
        assert t["cls"] == "_PythonDecoratedOperator", tid
        assert t["callable"] == f"run_{_stage_of(t)}"


def test_spark_submit_runner_submits_the_driver_with_delta(rendered):
    tasks = _runner_tasks(_exchange(rendered, "spark_submit"), "spark_submit")
    assert {"ingest", "conform", "identity"} <= set(tasks)
    for t in tasks.values():
        f = t["fields"]
        stage = _stage_of(t)
        if not t["mapped"]:
            _unmapped_args(stage, f["application_args"])
            assert f["_conn_id"] == "spark_default"
        assert f["application"] == str(REPO / "jobs" / "submit.py")
        packages = f["packages"].split(",")
        assert packages[0] == runners.delta_package() and packages[0].startswith("io.delta:delta-spark_")
        assert runners.HADOOP_AWS_PACKAGE in packages  # the roots are on S3
        assert f["conf"]["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
        assert f["conf"]["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        assert f["conf"]["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
        assert f["conf"]["spark.hadoop.fs.s3a.encryption.algorithm"] == "SSE-KMS"
        assert f["conf"]["spark.hadoop.fs.s3a.encryption.key"] == S3_ROOTS["PHMX_KMS_KEY_ID"]
        env = f["env_vars"]
        assert env["PHMX_ENGINE"] == "classic" and "PHMX_RUNNER" not in env
        for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_LEDGER_ROOT", "PHMX_KMS_KEY_ID"):
            assert env[var] == S3_ROOTS[var]
    assert tasks["ingest"]["fields"]["application_args"] == ["--stage", "ingest", "--period", "2025-03",
                                                             "--run-id", "manual__r1"]


def test_spark_submit_on_local_roots_needs_no_s3_packages(rendered):
    tasks = _exchange(rendered, "spark_submit_local")
    f = tasks["ingest"]["fields"]
    assert f["_conn_id"] == "spark_cluster"
    assert f["packages"] == runners.delta_package()
    assert not any(k.startswith("spark.hadoop.fs.s3") for k in f["conf"])
    assert f["env_vars"]["PHMX_LAKEHOUSE_ROOT"].endswith("/var/lakehouse")


def test_emr_serverless_runner_starts_job_runs_on_the_application(rendered):
    tasks = _runner_tasks(_exchange(rendered, "emr_serverless"), "emr_serverless")
    assert {"ingest", "conform", "identity"} <= set(tasks)
    for tid, t in tasks.items():
        f = t["fields"]
        assert f["application_id"] == EMR["PHMX_EMR_APPLICATION_ID"]
        assert f["execution_role_arn"] == EMR["PHMX_EMR_EXECUTION_ROLE_ARN"]
        assert f["name"] == f"phmx-{tid}-2025-03"
        assert f["wait_for_completion"] is True and f["waiter_delay"] * f["waiter_max_attempts"] == 180 * 60
        assert f["configuration_overrides"]["monitoringConfiguration"] == {
            "s3MonitoringConfiguration": {"logUri": EMR["PHMX_EMR_LOG_URI"]}}
        if t["mapped"]:
            driver = next(iter(t["expand"].values()))["xcom_sample"]["sparkSubmit"]
        else:
            driver = f["job_driver"]["sparkSubmit"]
            _unmapped_args(_stage_of(t), driver["entryPointArguments"])
        assert driver["entryPoint"] == "s3://phmx-dev-artifacts-111122223333/jobs/submit.py"
        params = driver["sparkSubmitParameters"]
        assert params.startswith(runners.EMR_DELTA_PARAMETERS + " ")
        assert "--conf spark.archives=s3://phmx-dev-artifacts-111122223333/jobs/phmx-venv.tar.gz#environment" in params
        assert "--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=./environment/bin/python" in params
        assert "--conf spark.emr-serverless.driverEnv.PHMX_ENGINE=classic" in params
        for var in ("PHMX_LAKEHOUSE_ROOT", "PHMX_LEDGER_ROOT", "PHMX_PUBLISH_ROOT", "PHMX_KMS_KEY_ID"):
            assert f"--conf spark.emr-serverless.driverEnv.{var}={S3_ROOTS[var]}" in params
            assert f"--conf spark.executorEnv.{var}={S3_ROOTS[var]}" in params
        assert "PHMX_RUNNER" not in params and "PHMX_EMR_" not in params
    assert tasks["ingest"]["fields"]["job_driver"]["sparkSubmit"]["entryPointArguments"] == [
        "--stage", "ingest", "--period", "2025-03", "--run-id", "manual__r1"]


def test_emr_with_a_custom_image_sends_no_archive(rendered):
    t = _exchange(rendered, "emr_custom_image")["identity"]
    params = t["fields"]["job_driver"]["sparkSubmit"]["sparkSubmitParameters"]
    assert "spark.archives" not in params and "PYSPARK_PYTHON" not in params
    assert t["fields"]["waiter_delay"] * t["fields"]["waiter_max_attempts"] == 60 * 60


@pytest.mark.parametrize(("case", "needles"), [
    ("emr_missing", ["PHMX_RUNNER=emr_serverless needs", "PHMX_EMR_APPLICATION_ID", "PHMX_EMR_CODE_URI",
                     "terraform output -raw emr_log_uri"]),
    ("emr_local_roots", ["every data root and the keys dir on S3", "PHMX_LAKEHOUSE_ROOT", "PHMX_LEDGER_ROOT",
                         "PHMX_KEYS_DIR"]),
    ("unknown", ["unknown PHMX_RUNNER 'kubernetes'", "inprocess, spark_submit, emr_serverless"]),
])
def test_configuration_mistakes_are_dag_import_errors_that_say_how_to_fix(rendered, case, needles):
    errors = rendered[case]["errors"]
    assert list(errors) == ["phm_exchange.py"]
    for needle in needles:
        assert needle in errors["phm_exchange.py"]


def test_mapped_stage_under_each_runner(rendered):
    inproc = rendered["inprocess"]["dags"]["runner_mapped"]
    assert inproc["publish"]["mapped"] and inproc["publish"]["cls"] == "_PythonDecoratedOperator"
    assert inproc["publish"]["fields"]["max_active_tis_per_dag"] == 1
    assert inproc["publish_literal"]["expand"] == {"recipient": ["lhj_alameda"]}

    spark = rendered["spark_submit"]["dags"]["runner_mapped"]
    p = spark["publish"]
    assert p["cls"] == "SparkSubmitOperator" and p["mapped"]
    assert p["expand"]["application_args"] == {"xcom_sample": ["--stage", "publish", "--option",
                                                                "recipient=lhj_sample"]}
    # XCom values are not templated by Airflow: period and run id travel in the (rendered) environment.
    assert p["fields"]["env_vars"]["PHMX_JOB_PERIOD"] == "2025-03"
    assert p["fields"]["env_vars"]["PHMX_JOB_RUN_ID"] == "manual__r1"
    assert p["fields"]["max_active_tis_per_dag"] == 1
    assert spark["publish_literal"]["expand"]["application_args"] == [
        ["--stage", "publish", "--option", "recipient=lhj_alameda"]]
    assert spark["consent"]["downstream"] == ["publish", "publish_literal"]

    emr = rendered["emr_serverless"]["dags"]["runner_mapped"]["publish"]
    assert emr["cls"] == "EmrServerlessStartJobOperator" and emr["mapped"]
    driver = emr["expand"]["job_driver"]["xcom_sample"]["sparkSubmit"]
    assert driver["entryPoint"].endswith("/jobs/submit.py")
    assert driver["entryPointArguments"] == ["--stage", "publish", "--option", "recipient=lhj_sample"]
    props = emr["fields"]["configuration_overrides"]["applicationConfiguration"][0]["properties"]
    assert props == {"spark.emr-serverless.driverEnv.PHMX_JOB_PERIOD": "2025-03",
                     "spark.emr-serverless.driverEnv.PHMX_JOB_RUN_ID": "manual__r1"}
