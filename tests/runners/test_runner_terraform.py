"""The EMR runner's settings line up with what the Terraform example environment outputs.

Evaluated offline with the infra tests' HCL evaluator (no provider, no AWS): the settings MWAA
gets (output ``phmx_settings``) plus the ``emr_*`` outputs must configure the runner, and the
runner's default Delta parameters must be the module's ``spark_submit_parameters`` exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from phmx import runners

INFRA_TESTS = Path(__file__).resolve().parents[1] / "infra"
if str(INFRA_TESTS) not in sys.path:
    sys.path.insert(0, str(INFRA_TESTS))


@pytest.fixture(scope="module")
def tf_env():
    from tf_eval import load_env
    from tf_layout import ENV_DIR

    return load_env(ENV_DIR, ENV_DIR / "dev.tfvars")


def test_terraform_outputs_configure_the_emr_runner(tf_env):
    settings = tf_env.output("phmx_settings")
    assert settings["PHMX_RUNNER"] == "emr_serverless"
    env = {**settings, "PHMX_EMR_CODE_URI": tf_env.output("emr_code_uri"),
           "PHMX_EMR_LOG_URI": tf_env.output("emr_log_uri")}
    cfg = runners.EmrServerlessConfig.from_env(env)
    assert cfg.application_id == tf_env.output("emr_application_id")
    assert cfg.execution_role_arn == tf_env.output("emr_execution_role_arn")
    assert cfg.entry_point == tf_env.output("emr_code_uri").rstrip("/") + "/submit.py"
    assert cfg.log_uri == tf_env.output("emr_log_uri")
    # the Delta switch the runner sends by default is the module's output, word for word
    assert cfg.spark_submit_parameters == tf_env.output("emr_spark_submit_parameters") == runners.EMR_DELTA_PARAMETERS
    assert cfg.venv_archive == tf_env.output("emr_code_uri").rstrip("/") + "/phmx-venv.tar.gz"
    for name in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                 "PHMX_LEDGER_ROOT"):
        assert settings[name].startswith("s3://")  # the EMR runner refuses local roots


def test_phmx_settings_alone_configure_the_emr_runner(tf_env):
    settings = tf_env.output("phmx_settings")
    runners.EmrServerlessConfig.from_env(settings)
    assert settings["PHMX_KEYS_DIR"].startswith("s3://")  # shared by every job run (see runners._shared_roots)


def test_missing_and_malformed_emr_settings_name_the_variable():
    from phmx.errors import ConfigError

    full = {"PHMX_EMR_APPLICATION_ID": "00fapp", "PHMX_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::1:role/r",
            "PHMX_EMR_CODE_URI": "s3://art/jobs/", "PHMX_EMR_LOG_URI": "s3://art/emr-logs/"}
    with pytest.raises(ConfigError, match="PHMX_EMR_LOG_URI") as exc:
        runners.EmrServerlessConfig.from_env({k: v for k, v in full.items() if k != "PHMX_EMR_LOG_URI"})
    assert exc.value.exit_code == 10 and "terraform output -raw emr_log_uri" in str(exc.value)
    with pytest.raises(ConfigError, match="PHMX_EMR_CODE_URI must be an s3:// URI"):
        runners.EmrServerlessConfig.from_env({**full, "PHMX_EMR_CODE_URI": "/opt/jobs"})
    with pytest.raises(ConfigError, match="whole number"):
        runners.EmrServerlessConfig.from_env({**full, "PHMX_EMR_JOB_TIMEOUT_MINUTES": "soon"})
    cfg = runners.EmrServerlessConfig.from_env(full)
    with pytest.raises(ConfigError, match="PHMX_LAKEHOUSE_ROOT is empty or contains whitespace"):
        cfg.submit_parameters({"PHMX_LAKEHOUSE_ROOT": "s3://a b"})


def test_delta_package_names_the_spark_line_delta_spark_itself_would_add():
    """Same artifact as delta-spark's configure_spark_with_delta_pip for the installed pyspark,
    at the Delta version the project resolves with Maven (jvm/pom.xml, phmx.jvm).

    A fresh builder only records its options until ``getOrCreate``, which is never called here.
    """
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    from phmx import jvm

    built = configure_spark_with_delta_pip(SparkSession.Builder())
    theirs = built._options["spark.jars.packages"].split(",")[0]
    assert theirs.rsplit(":", 1)[0] == runners.delta_package().rsplit(":", 1)[0]
    assert runners.delta_package() == jvm.DELTA_PACKAGE
