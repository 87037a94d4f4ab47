"""The operator page for Terraform names every phmx setting and only outputs that exist."""

from __future__ import annotations

import re

from tf_eval import load_env
from tf_layout import ENV_DIR, REPO

DOC = REPO / "docs" / "operator-guide-terraform.md"


def test_operator_page_starts_with_title_and_audience():
    lines = DOC.read_text().splitlines()
    assert lines[0] == "# Deploying with Terraform"
    assert next(line for line in lines[1:] if line.strip()).startswith("Audience:")


def test_operator_page_maps_every_setting_to_an_existing_output():
    text = DOC.read_text()
    env = load_env(ENV_DIR, ENV_DIR / "dev.tfvars")
    settings = env.output("phmx_settings")
    for name in settings:
        assert f"`{name}`" in text, f"{name} is not documented"
    mentioned = set(re.findall(r"`([a-z][a-z0-9_]+)`", text))
    outputs = set(env.outputs)
    assert {"phi_kms_key_arn", "audit_kms_key_arn", "emr_application_id", "emr_execution_role_arn",
            "emr_spark_submit_parameters", "emr_log_uri", "emr_code_uri", "bucket_names",
            "submitter_role_arns", "recipient_role_arns"} <= mentioned & outputs
    # example values in the table are the ones the dev tfvars produce
    for name in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                 "PHMX_LEDGER_ROOT", "PHMX_RUNNER", "PHMX_EMR_EXECUTION_ROLE_ARN"):
        assert f"`{settings[name]}`" in text, f"example value of {name} is stale"
    assert env.child("emr").output("spark_submit_parameters").split(" --conf ")[0].replace("--conf ", "") in text
