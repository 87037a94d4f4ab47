"""Settings: every location and switch phmx reads, from environment variables, in one place.

One typed object, :class:`Settings` (pydantic-settings), read from the environment by
:func:`load` at each use (so tests may change the environment between calls). No other module
reads a ``PHMX_*`` variable itself. The embedded default keeps everything under ``./var`` (or
``$PHMX_HOME``). Any root may be an ``s3://bucket/prefix`` URI instead of a directory; the same
code path serves both. A value that does not parse is a :class:`~phmx.errors.ConfigError` naming
the variable.

The table below is :func:`env_table` (``python -m phmx.settings`` prints it); the same table is
section 6 of docs/operator-guide.md, and tests/core/test_settings_table.py keeps both in step
with the fields.

| variable | default | meaning |
|---|---|---|
| `PHMX_HOME` | `./var` | base of the local defaults below |
| `PHMX_LANDING_ROOT` | `$PHMX_HOME/landing` | submitted files: `<submitter>/<feed>/<YYYY-MM>/<file>` |
| `PHMX_LAKEHOUSE_ROOT` | `$PHMX_HOME/lakehouse` | Delta tables: `<layer>/<table>` |
| `PHMX_OUTBOX_ROOT` | `$PHMX_HOME/outbox` | receipts: `<submitter>/...` |
| `PHMX_PUBLISH_ROOT` | `$PHMX_HOME/publish` | feeds: `<recipient>/<feed>/<period>/` |
| `PHMX_LEDGER_ROOT` | `$PHMX_LAKEHOUSE_ROOT` | the consent ledger's bucket/prefix (see the note below) |
| `PHMX_KEYS_DIR` | `$PHMX_HOME/keys` | wrapped master keys and signing keys |
| `PHMX_KMS_KEY_ID` | unset | PHI key ARN: SSE-KMS on writes, envelope encryption (section 4) |
| `PHMX_LEDGER_KMS_KEY_ID` | `$PHMX_KMS_KEY_ID` | audit key ARN for ledger writes |
| `PHMX_ENGINE` | `sail` (`connect` when `SPARK_REMOTE` is set) | `sail` embedded, `connect` a Spark Connect server, `classic` a JVM session with delta-spark (jars from `make jvm`, see [scaling](scaling.md)) |
| `PHMX_JVM_JARS` | `<project>/.jvm/jars` | classic and the Spark Connect server script: folder of the jars `make jvm` resolved (Delta, hadoop-aws, AWS SDK) |
| `PHMX_SPARK_MASTER` | `local[2]` | classic started from Python (not under spark-submit): the Spark master |
| `PHMX_SPARK_DRIVER_MEMORY` | `4g` | classic, the local Spark Connect server and spark-submit jobs: `spark.driver.memory` |
| `PHMX_SPARK_JAVA_OPTIONS` | unset | classic, the local Spark Connect server and spark-submit jobs: the driver's and executors' extra JVM options, e.g. `-XX:TieredStopAtLevel=1` for many short jobs on small data (see [scaling](scaling.md)) |
| `PHMX_SPARK_CODEGEN` | unset (off on a `local` master) | classic, the local Spark Connect server and spark-submit drivers: `off` runs queries interpreted (cheaper for the many small queries of small periods), `on` generates code (large data); unset, off on a `local` master and on elsewhere (see [scaling](scaling.md)) |
| `PHMX_SPARK_LOG_LEVEL` | `WARN` | classic and the local Spark Connect server: the JVM's log level |
| `PHMX_S3A_CREDENTIALS_PROVIDER` | unset (S3A's default chain) | classic, spark-submit and the Spark Connect server script: `fs.s3a.aws.credentials.provider` |
| `SPARK_REMOTE` | unset | `sc://host:port` of a Spark Connect server |
| `PHMX_SHUFFLE_PARTITIONS` | `4` | `spark.sql.shuffle.partitions` (section 7) |
| `PHMX_LOG_LEVEL` | `INFO` | log level of phmx's loggers |
| `PHMX_RUNNER` | `inprocess` | `inprocess`, `spark_submit` or `emr_serverless` (section 3) |
| `PHMX_TASK_RETRIES` | `1` | retries of every DAG task |
| `PHMX_SCHEDULE` | unset (runs are triggered) | the exchange DAG's schedule, e.g. `@monthly`: a scheduled or backfill run processes the month of its data interval (section 3) |
| `PHMX_CATCHUP` | `0` | with `PHMX_SCHEDULE`: run every missed interval since 2025-01 when the DAG is unpaused |
| `PHMX_CONFORM_FULL` | `0` | conform every source again, not only those with new submissions (a silver table restored or written since the last conform is detected without it) |
| `PHMX_PUBLISH_PARALLEL` | `4` | publish tasks running at once (the ledger's lease serialises their appends, local or S3) |
| `PHMX_LEASE_SECONDS` | `120` | the ledger writer's lease; renewed every third of it while held; an expired or dead holder is taken over |
| `PHMX_FAULT` | unset | tests only: crash at a named commit boundary (`phmx/faults.py`); never set in production |
| `PHMX_FAULT_TRACE` | unset | tests only: a file every commit boundary reached is appended to (`phmx/faults.py`) |
| `PHMX_DEK_UNWRAP` | `driver` on this machine (Sail, a `local` classic master, a loopback `sc://`), `executor` on every remote engine and in cluster job environments | where data keys of encrypted columns are unwrapped: `driver` (the key stays on this machine) or `executor` (each worker unwraps through the key provider, no plaintext key in task closures); `driver` towards a remote `sc://` without `;use_ssl=true` is refused; see [encryption at rest](encryption-at-rest.md) |
| `PHMX_FHIR_BASE_URL` | `https://phmx.calaim.example/fhir` (a reserved example domain) | canonical base of the hub's FHIR identifiers, code systems and extensions in every feed; set it to your published base before the first publish |
| `PHMX_FHIR_VALIDATE` | `sample` | plan feeds: `sample` validates a deterministic sample of each resource type with fhir.resources (structural checks on all), `all` every resource, `none` structural checks only |
| `PHMX_PUBLISH_WORKERS` | cores, up to 4 | in-process publish: processes building LHJ packages (1 = none) |
| `PHMX_INGEST_WORKERS` | cores, up to 4 | ingest: processes parsing and validating landed files while the stage writes bronze (1 = none; used when a run's new files hold at least 200 MB) |
| `PHMX_SPARK_CONN_ID` | `spark_default` | spark_submit: Airflow connection of the cluster |
| `PHMX_DELTA_PACKAGE` | `io.delta:delta-spark_4.2_2.13:4.4.0` (`phmx.jvm`, the same as `jvm/pom.xml`) | spark_submit: delta-spark Maven coordinate |
| `PHMX_SPARK_APPLICATION` | `jobs/submit.py` of the installed package | spark_submit: driver script path |
| `PHMX_SPARK_JARS` | unset (`--packages` from Maven) | spark_submit: `make-jvm` puts the jars `make jvm` resolved on the driver's and executors' class path where they lie (a local master, or nodes holding the same folder), or a comma-separated list of jars shipped with `--jars`; then nothing is resolved when the driver starts |
| `PHMX_SPARK_PYTHON` | unset (the Airflow worker's environment) | spark_submit: the Python of the driver and its workers, e.g. `bin/python` of the `make dist` environment unpacked; the job then gets no `PYTHONPATH` from the Airflow worker |
| `PHMX_SPARK_ARCHIVE` | unset | spark_submit on YARN or Kubernetes: the `make dist` environment (`phmx-venv.tar.gz`, local or a URI the cluster reads), shipped with `--archives ...#environment`; the driver and executors run `./environment/bin/python` |
| `PHMX_EMR_APPLICATION_ID` | required for EMR | Terraform output `emr_application_id` |
| `PHMX_EMR_EXECUTION_ROLE_ARN` | required for EMR | Terraform output `emr_execution_role_arn` |
| `PHMX_EMR_CODE_URI` | required for EMR | Terraform output `emr_code_uri` (holds `submit.py`) |
| `PHMX_EMR_LOG_URI` | required for EMR | Terraform output `emr_log_uri` |
| `PHMX_EMR_SPARK_SUBMIT_PARAMETERS` | the Delta switch of `emr_spark_submit_parameters` | replaces it; start from that output and append your `--conf`s |
| `PHMX_EMR_VENV_ARCHIVE` | `<code uri>/phmx-venv.tar.gz` | packed environment; empty for a custom image |
| `PHMX_EMR_AWS_CONN_ID` | `aws_default` | Airflow AWS connection that starts job runs |
| `PHMX_EMR_JOB_TIMEOUT_MINUTES` | `180` | how long a task waits for its job run |
| `PHMX_JOB_PERIOD` | unset | set by the runners for mapped tasks; the driver's default for `--period` |
| `PHMX_JOB_RUN_ID` | unset | set by the runners for mapped tasks; the driver's default for `--run-id` |
| `PHMX_RISK_HISTORY_MONTHS` | `1` | measures at period `all`: write the rolling 12-month risk tiers of this many months, ending with the latest encounter's month (the tier history a monthly run builds one month at a time; the ECM comparison group is matched on it) |
| `PHMX_MEASURE_RUNOUT_MONTHS` | `3` | measures and indicators: a monthly run in the first this many months of a year recomputes the year before too (its claims run-out; `0` = never), so late claims count in their year and a rebuild gives the same rows |
| `PHMX_IDENTITY_MODE` | `full` | identity: `full` (default: the same clusters as a rebuild), `auto` or `incremental` (faster, may cluster differently, see scaling guide) |
| `PHMX_CONSENT_RECIPIENTS` | unset | extra recipients (comma-separated) the consent stage decides for every member every run (it always decides for every plan and LHJ publish serves) |
| `PHMX_DEMO_HOME` | `var/demo` | where `make demo` puts its data |
| `AIRFLOW_HOME` | `$PHMX_HOME/airflow` | the embedded Airflow's home (SQLite metadata, logs) |
| `PHMX_PORTAL_HOST` | `127.0.0.1` | `phmx serve`: bind address (another needs `PHMX_PORTAL_TLS=1`) |
| `PHMX_PORTAL_PORT` | `8470` | `phmx serve`: port |
| `PHMX_PORTAL_ORGS` | `$PHMX_HOME/portal/organisations.yaml` | the portal's organisations, their kinds and hub ids (see [portal guide](portal-guide.md)) |
| `PHMX_PORTAL_USERS` | `$PHMX_HOME/portal/users.yaml` | the portal's accounts and API tokens (hashes only; `phmx portal add-user`) |
| `PHMX_PORTAL_SECRET_FILE` | `$PHMX_KEYS_DIR/portal-session.key` | the portal's session-signing secret (made once, 0600) |
| `PHMX_PORTAL_TLS` | `0` | `1` when the portal is reached over HTTPS (directly or behind a TLS proxy): Secure cookies and HSTS |
| `PHMX_PORTAL_MAX_UPLOAD_MB` | `512` | the portal's largest upload |
| `PHMX_PORTAL_OIDC_ISSUER` | unset | the identity provider's OpenID Connect issuer URL; set, the sign-in page offers single sign-on (see [portal guide](portal-guide.md)) |
| `PHMX_PORTAL_OIDC_CLIENT_ID` | unset | the portal's client id at the identity provider |
| `PHMX_PORTAL_OIDC_CLIENT_SECRET_FILE` | `$PHMX_KEYS_DIR/portal-oidc-client.secret` | file holding the portal's client secret (0600) |
| `PHMX_PORTAL_OIDC_SCOPES` | `openid email profile` | scopes the portal asks for (space-separated; `openid` is always sent) |
| `PHMX_PORTAL_OIDC_MAPPING` | `$PHMX_HOME/portal/oidc.yaml` | which ID token claims put a person in which organisation (rules as data) |
| `PHMX_PORTAL_AIRFLOW_URL` | `http://127.0.0.1:8080` | the operators' pages: Airflow's API server (runs, stages, triggering a run) |
| `PHMX_PORTAL_AIRFLOW_USER` | `admin` | the Airflow account the portal calls the REST API as |
| `PHMX_PORTAL_AIRFLOW_PASSWORD_FILE` | `$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated` | that account's password: the file's text, or its entry in a JSON {user: password} file |
| `PHMX_PORTAL_OIDC_REDIRECT_URL` | `<the portal's URL>/auth/oidc/callback` | the callback URL registered at the identity provider (set it behind a proxy) |
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from phmx.errors import ConfigError

# The data roots that default under PHMX_HOME: field -> leaf folder.
_HOME_ROOTS = {"landing_root": "landing", "lakehouse_root": "lakehouse", "outbox_root": "outbox",
               "publish_root": "publish", "keys_dir": "keys"}


def _var(env: str, default: Any, shown: str, meaning: str) -> Any:  # noqa: ANN401 - a pydantic Field
    """A field read from environment variable ``env``; ``shown`` and ``meaning`` fill the table."""
    return Field(default, validation_alias=env, description=meaning, json_schema_extra={"shown_default": shown})


class Settings(BaseSettings):
    """Resolved locations and switches. Build with :func:`load`; tests use :meth:`with_home`."""

    # Empty variables count as unset (the validator below drops them), except PHMX_EMR_VENV_ARCHIVE.
    model_config = SettingsConfigDict(frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True,
                                      case_sensitive=True)

    home: str = _var("PHMX_HOME", "", "`./var`", "base of the local defaults below")
    landing_root: str = _var("PHMX_LANDING_ROOT", "", "`$PHMX_HOME/landing`",
                             "submitted files: `<submitter>/<feed>/<YYYY-MM>/<file>`")
    lakehouse_root: str = _var("PHMX_LAKEHOUSE_ROOT", "", "`$PHMX_HOME/lakehouse`", "Delta tables: `<layer>/<table>`")
    outbox_root: str = _var("PHMX_OUTBOX_ROOT", "", "`$PHMX_HOME/outbox`", "receipts: `<submitter>/...`")
    publish_root: str = _var("PHMX_PUBLISH_ROOT", "", "`$PHMX_HOME/publish`",
                             "feeds: `<recipient>/<feed>/<period>/`")
    ledger_root: str = _var("PHMX_LEDGER_ROOT", "", "`$PHMX_LAKEHOUSE_ROOT`",
                            "the consent ledger's bucket/prefix (see the note below)")
    keys_dir: str = _var("PHMX_KEYS_DIR", "", "`$PHMX_HOME/keys`", "wrapped master keys and signing keys")
    kms_key_id: str | None = _var("PHMX_KMS_KEY_ID", None, "unset",
                                  "PHI key ARN: SSE-KMS on writes, envelope encryption (section 4)")
    ledger_kms_key_id: str | None = _var("PHMX_LEDGER_KMS_KEY_ID", None, "`$PHMX_KMS_KEY_ID`",
                                         "audit key ARN for ledger writes")
    engine: str = _var("PHMX_ENGINE", "", "`sail` (`connect` when `SPARK_REMOTE` is set)",
                       "`sail` embedded, `connect` a Spark Connect server, `classic` a JVM session with delta-spark "
                       "(jars from `make jvm`, see [scaling](scaling.md))")
    jvm_jars: str | None = _var("PHMX_JVM_JARS", None, "`<project>/.jvm/jars`",
                                "classic and the Spark Connect server script: folder of the jars `make jvm` resolved "
                                "(Delta, hadoop-aws, AWS SDK)")
    spark_master: str | None = _var("PHMX_SPARK_MASTER", None, "`local[2]`",
                                    "classic started from Python (not under spark-submit): the Spark master")
    spark_driver_memory: str = _var("PHMX_SPARK_DRIVER_MEMORY", "4g", "`4g`",
                                    "classic, the local Spark Connect server and spark-submit jobs: `spark.driver.memory`")
    spark_java_options: str | None = _var(
        "PHMX_SPARK_JAVA_OPTIONS", None, "unset",
        "classic, the local Spark Connect server and spark-submit jobs: the driver's and executors' extra JVM "
        "options, e.g. `-XX:TieredStopAtLevel=1` for many short jobs on small data (see [scaling](scaling.md))")
    spark_codegen: Literal["on", "off"] | None = _var(
        "PHMX_SPARK_CODEGEN", None, "unset (off on a `local` master)",
        "classic, the local Spark Connect server and spark-submit drivers: `off` runs queries interpreted "
        "(cheaper for the many small queries of small periods), `on` generates code (large data); unset, "
        "off on a `local` master and on elsewhere (see [scaling](scaling.md))")
    spark_log_level: str = _var("PHMX_SPARK_LOG_LEVEL", "WARN", "`WARN`",
                                "classic and the local Spark Connect server: the JVM's log level")
    s3a_credentials_provider: str | None = _var(
        "PHMX_S3A_CREDENTIALS_PROVIDER", None, "unset (S3A's default chain)",
        "classic, spark-submit and the Spark Connect server script: `fs.s3a.aws.credentials.provider`")
    spark_remote: str | None = _var("SPARK_REMOTE", None, "unset", "`sc://host:port` of a Spark Connect server")
    shuffle_partitions: int = _var("PHMX_SHUFFLE_PARTITIONS", 4, "`4`", "`spark.sql.shuffle.partitions` (section 7)")
    log_level: str | None = _var("PHMX_LOG_LEVEL", None, "`INFO`", "log level of phmx's loggers")
    runner: str = _var("PHMX_RUNNER", "inprocess", "`inprocess`",
                       "`inprocess`, `spark_submit` or `emr_serverless` (section 3)")
    task_retries: int = _var("PHMX_TASK_RETRIES", 1, "`1`", "retries of every DAG task")
    schedule: str | None = _var("PHMX_SCHEDULE", None, "unset (runs are triggered)",
                                "the exchange DAG's schedule, e.g. `@monthly`: a scheduled or backfill run "
                                "processes the month of its data interval (section 3)")
    catchup: bool = _var("PHMX_CATCHUP", False, "`0`",
                         "with `PHMX_SCHEDULE`: run every missed interval since 2025-01 when the DAG is unpaused")
    conform_full: bool = _var("PHMX_CONFORM_FULL", False, "`0`",
                              "conform every source again, not only those with new submissions (a silver table "
                              "restored or written since the last conform is detected without it)")
    publish_parallel: int = _var("PHMX_PUBLISH_PARALLEL", 4, "`4`",
                                 "publish tasks running at once (the ledger's lease serialises their appends, "
                                 "local or S3)")
    lease_seconds: float = _var("PHMX_LEASE_SECONDS", 120.0, "`120`",
                                "the ledger writer's lease; renewed every third of it while held; an expired or "
                                "dead holder is taken over")
    fault: str | None = _var("PHMX_FAULT", None, "unset",
                             "tests only: crash at a named commit boundary (`phmx/faults.py`); never set in production")
    fault_trace: str | None = _var("PHMX_FAULT_TRACE", None, "unset",
                                   "tests only: a file every commit boundary reached is appended to (`phmx/faults.py`)")
    dek_unwrap: str | None = _var(
        "PHMX_DEK_UNWRAP", None,
        "`driver` on this machine (Sail, a `local` classic master, a loopback `sc://`), `executor` on every remote "
        "engine and in cluster job environments",
        "where data keys of encrypted columns are unwrapped: `driver` (the key stays on this machine) or `executor` "
        "(each worker unwraps through the key provider, no plaintext key in task closures); `driver` towards a "
        "remote `sc://` without `;use_ssl=true` is refused; see [encryption at rest](encryption-at-rest.md)")
    fhir_base_url: str = _var(
        "PHMX_FHIR_BASE_URL", "https://phmx.calaim.example/fhir",
        "`https://phmx.calaim.example/fhir` (a reserved example domain)",
        "canonical base of the hub's FHIR identifiers, code systems and extensions in every feed; set it to your "
        "published base before the first publish")
    fhir_validate: str = _var(
        "PHMX_FHIR_VALIDATE", "sample", "`sample`",
        "plan feeds: `sample` validates a deterministic sample of each resource type with fhir.resources "
        "(structural checks on all), `all` every resource, `none` structural checks only")
    publish_workers: int = _var("PHMX_PUBLISH_WORKERS", 0, "cores, up to 4",
                                "in-process publish: processes building LHJ packages (1 = none)")
    ingest_workers: int = _var("PHMX_INGEST_WORKERS", 0, "cores, up to 4",
                               "ingest: processes parsing and validating landed files while the stage writes bronze "
                               "(1 = none; used when a run's new files hold at least 200 MB)")
    spark_conn_id: str = _var("PHMX_SPARK_CONN_ID", "spark_default", "`spark_default`",
                              "spark_submit: Airflow connection of the cluster")
    delta_package: str | None = _var("PHMX_DELTA_PACKAGE", None,
                                     "`io.delta:delta-spark_4.2_2.13:4.4.0` (`phmx.jvm`, the same as `jvm/pom.xml`)",
                                     "spark_submit: delta-spark Maven coordinate")
    spark_application: str | None = _var("PHMX_SPARK_APPLICATION", None, "`jobs/submit.py` of the installed package",
                                         "spark_submit: driver script path")
    spark_jars: str | None = _var("PHMX_SPARK_JARS", None, "unset (`--packages` from Maven)",
                                  "spark_submit: `make-jvm` puts the jars `make jvm` resolved on the driver's and "
                                  "executors' class path where they lie (a local master, or nodes holding the same "
                                  "folder), or a comma-separated list of jars shipped with `--jars`; then nothing is "
                                  "resolved when the driver starts")
    spark_python: str | None = _var("PHMX_SPARK_PYTHON", None, "unset (the Airflow worker's environment)",
                                    "spark_submit: the Python of the driver and its workers, e.g. `bin/python` of "
                                    "the `make dist` environment unpacked; the job then gets no `PYTHONPATH` from "
                                    "the Airflow worker")
    spark_archive: str | None = _var("PHMX_SPARK_ARCHIVE", None, "unset",
                                     "spark_submit on YARN or Kubernetes: the `make dist` environment "
                                     "(`phmx-venv.tar.gz`, local or a URI the cluster reads), shipped with "
                                     "`--archives ...#environment`; the driver and executors run "
                                     "`./environment/bin/python`")
    emr_application_id: str | None = _var("PHMX_EMR_APPLICATION_ID", None, "required for EMR",
                                          "Terraform output `emr_application_id`")
    emr_execution_role_arn: str | None = _var("PHMX_EMR_EXECUTION_ROLE_ARN", None, "required for EMR",
                                              "Terraform output `emr_execution_role_arn`")
    emr_code_uri: str | None = _var("PHMX_EMR_CODE_URI", None, "required for EMR",
                                    "Terraform output `emr_code_uri` (holds `submit.py`)")
    emr_log_uri: str | None = _var("PHMX_EMR_LOG_URI", None, "required for EMR", "Terraform output `emr_log_uri`")
    emr_spark_submit_parameters: str | None = _var(
        "PHMX_EMR_SPARK_SUBMIT_PARAMETERS", None, "the Delta switch of `emr_spark_submit_parameters`",
        "replaces it; start from that output and append your `--conf`s")
    # Kept when empty: an empty archive means "a custom image, no archive".
    emr_venv_archive: str | None = _var("PHMX_EMR_VENV_ARCHIVE", None, "`<code uri>/phmx-venv.tar.gz`",
                                        "packed environment; empty for a custom image")
    emr_aws_conn_id: str = _var("PHMX_EMR_AWS_CONN_ID", "aws_default", "`aws_default`",
                                "Airflow AWS connection that starts job runs")
    emr_job_timeout_minutes: int = _var("PHMX_EMR_JOB_TIMEOUT_MINUTES", 180, "`180`",
                                        "how long a task waits for its job run")
    job_period: str | None = _var("PHMX_JOB_PERIOD", None, "unset",
                                  "set by the runners for mapped tasks; the driver's default for `--period`")
    job_run_id: str | None = _var("PHMX_JOB_RUN_ID", None, "unset",
                                  "set by the runners for mapped tasks; the driver's default for `--run-id`")
    risk_history_months: int = _var(
        "PHMX_RISK_HISTORY_MONTHS", 1, "`1`",
        "measures at period `all`: write the rolling 12-month risk tiers of this many months, ending with the "
        "latest encounter's month (the tier history a monthly run builds one month at a time; the ECM "
        "comparison group is matched on it)")
    measure_runout_months: int = _var(
        "PHMX_MEASURE_RUNOUT_MONTHS", 3, "`3`",
        "measures and indicators: a monthly run in the first this many months of a year recomputes the year "
        "before too (its claims run-out; `0` = never), so late claims count in their year and a rebuild gives "
        "the same rows")
    identity_mode: str = _var("PHMX_IDENTITY_MODE", "full", "`full`",
                              "identity: `full` (default: the same clusters as a rebuild), `auto` or `incremental` (faster, may cluster differently, see scaling guide)")
    consent_recipients: Annotated[tuple[str, ...], NoDecode] = _var(
        "PHMX_CONSENT_RECIPIENTS", (), "unset",
        "extra recipients (comma-separated) the consent stage decides for every member every run (it always "
        "decides for every plan and LHJ publish serves)")
    demo_home: str = _var("PHMX_DEMO_HOME", "var/demo", "`var/demo`", "where `make demo` puts its data")
    airflow_home: str | None = _var("AIRFLOW_HOME", None, "`$PHMX_HOME/airflow`",
                             "the embedded Airflow's home (SQLite metadata, logs)")
    portal_host: str = _var("PHMX_PORTAL_HOST", "127.0.0.1", "`127.0.0.1`",
                            "`phmx serve`: bind address (another needs `PHMX_PORTAL_TLS=1`)")
    portal_port: int = _var("PHMX_PORTAL_PORT", 8470, "`8470`", "`phmx serve`: port")
    portal_orgs: str | None = _var("PHMX_PORTAL_ORGS", None, "`$PHMX_HOME/portal/organisations.yaml`",
                                   "the portal's organisations, their kinds and hub ids (see [portal guide](portal-guide.md))")
    portal_users: str | None = _var("PHMX_PORTAL_USERS", None, "`$PHMX_HOME/portal/users.yaml`",
                                    "the portal's accounts and API tokens (hashes only; `phmx portal add-user`)")
    portal_secret_file: str | None = _var("PHMX_PORTAL_SECRET_FILE", None, "`$PHMX_KEYS_DIR/portal-session.key`",
                                          "the portal's session-signing secret (made once, 0600)")
    portal_tls: bool = _var("PHMX_PORTAL_TLS", False, "`0`",
                            "`1` when the portal is reached over HTTPS (directly or behind a TLS proxy): Secure "
                            "cookies and HSTS")
    portal_max_upload_mb: float = _var("PHMX_PORTAL_MAX_UPLOAD_MB", 512, "`512`", "the portal's largest upload")
    portal_oidc_issuer: str | None = _var("PHMX_PORTAL_OIDC_ISSUER", None, "unset",
                                          "the identity provider's OpenID Connect issuer URL; set, the sign-in page "
                                          "offers single sign-on (see [portal guide](portal-guide.md))")
    portal_oidc_client_id: str | None = _var("PHMX_PORTAL_OIDC_CLIENT_ID", None, "unset",
                                             "the portal's client id at the identity provider")
    portal_oidc_client_secret_file: str | None = _var(
        "PHMX_PORTAL_OIDC_CLIENT_SECRET_FILE", None, "`$PHMX_KEYS_DIR/portal-oidc-client.secret`",
        "file holding the portal's client secret (0600)")
    portal_oidc_scopes: str = _var("PHMX_PORTAL_OIDC_SCOPES", "openid email profile", "`openid email profile`",
                                   "scopes the portal asks for (space-separated; `openid` is always sent)")
    portal_oidc_mapping: str | None = _var("PHMX_PORTAL_OIDC_MAPPING", None, "`$PHMX_HOME/portal/oidc.yaml`",
                                           "which ID token claims put a person in which organisation (rules as data)")
    portal_airflow_url: str = _var("PHMX_PORTAL_AIRFLOW_URL", "http://127.0.0.1:8080", "`http://127.0.0.1:8080`",
                                   "the operators' pages: Airflow's API server (runs, stages, triggering a run)")
    portal_airflow_user: str = _var("PHMX_PORTAL_AIRFLOW_USER", "admin", "`admin`",
                                    "the Airflow account the portal calls the REST API as")
    portal_airflow_password_file: str | None = _var(
        "PHMX_PORTAL_AIRFLOW_PASSWORD_FILE", None, "`$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated`",
        "that account's password: the file's text, or its entry in a JSON {user: password} file")
    portal_oidc_redirect_url: str | None = _var(
        "PHMX_PORTAL_OIDC_REDIRECT_URL", None, "`<the portal's URL>/auth/oidc/callback`",
        "the callback URL registered at the identity provider (set it behind a proxy)")
    # Stage options for one run (tests, one-off runs); not read from the environment.
    extra: Mapping[str, Any] = Field(default_factory=dict, exclude=True)

    @field_validator("consent_recipients", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(r.strip() for r in value.split(",") if r.strip())
        return value

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:  # noqa: ANN401 - pydantic's raw input
        """Fill the roots left unset from PHMX_HOME (and the ledger's from the lakehouse's)."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields

        def get(name: str) -> Any:  # noqa: ANN401
            alias = fields[name].validation_alias
            value = data.get(name, data.get(alias) if isinstance(alias, str) else None)
            return value if value not in (None, "") else None

        keep_empty = ("emr_venv_archive", fields["emr_venv_archive"].validation_alias)
        out = {k: v for k, v in data.items() if v != "" or k in keep_empty}
        raw_home = get("home") or str(Path("var").resolve())
        home = raw_home if "://" in raw_home else str(Path(raw_home).resolve())
        out["home"] = home
        for name, leaf in _HOME_ROOTS.items():
            value = get(name)
            out[name] = str(value).rstrip("/") if value else str(Path(raw_home, leaf).resolve())
        out["ledger_root"] = str(get("ledger_root") or out["lakehouse_root"]).rstrip("/")
        remote = get("spark_remote")
        out["engine"] = get("engine") or ("connect" if remote else "sail")
        out["ledger_kms_key_id"] = get("ledger_kms_key_id") or get("kms_key_id")
        for name in ("home", "landing_root", "lakehouse_root", "outbox_root", "publish_root", "keys_dir",
                     "ledger_root", "engine", "ledger_kms_key_id"):
            alias = fields[name].validation_alias
            if isinstance(alias, str):
                out.pop(alias, None)
        return out

    def with_home(self, home: str | os.PathLike[str]) -> Settings:
        """The same settings with every default root moved under ``home``."""
        h = str(Path(home).resolve())
        return self.model_copy(update={
            "home": h, **{name: str(Path(h, leaf)) for name, leaf in _HOME_ROOTS.items()},
            "ledger_root": str(Path(h, "lakehouse")),
        })

    def as_env(self) -> dict[str, str]:
        """Environment variables that reproduce these settings in a child process (a DAG run)."""
        env = {
            "PHMX_HOME": self.home,
            "PHMX_LANDING_ROOT": self.landing_root,
            "PHMX_LAKEHOUSE_ROOT": self.lakehouse_root,
            "PHMX_OUTBOX_ROOT": self.outbox_root,
            "PHMX_PUBLISH_ROOT": self.publish_root,
            "PHMX_KEYS_DIR": self.keys_dir,
            "PHMX_LEDGER_ROOT": self.ledger_root,
            "PHMX_RUNNER": self.runner,
            "PHMX_ENGINE": self.engine,
            "PHMX_SHUFFLE_PARTITIONS": str(self.shuffle_partitions),
        }
        if self.kms_key_id:
            env["PHMX_KMS_KEY_ID"] = self.kms_key_id
        if self.ledger_kms_key_id:
            env["PHMX_LEDGER_KMS_KEY_ID"] = self.ledger_kms_key_id
        if self.spark_remote:
            env["SPARK_REMOTE"] = self.spark_remote
        return env


def env_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field (``kms_key_id`` -> ``PHMX_KMS_KEY_ID``)."""
    alias = Settings.model_fields[field].validation_alias
    if not isinstance(alias, str):
        raise KeyError(f"{field} is not read from the environment")
    return alias


def _config_error(exc: ValidationError) -> ConfigError:
    """The first problem of a failed load, naming the variable (never echoing a secret's value)."""
    err = exc.errors()[0]
    var = str(err["loc"][0]) if err["loc"] else "settings"
    if var in Settings.model_fields:
        var = env_name(var)
    kind = err["type"]
    if kind.startswith("int_"):
        return ConfigError(f"{var} must be a whole number", hint=f"set {var} to an integer, or unset it")
    return ConfigError(f"{var}: {err['msg']}", hint=f"fix or unset {var}")


class _FromMapping(Settings):
    """Settings from an explicit mapping only (``load(env)``), never from ``os.environ``."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


_ENV_NAMES = tuple(f.validation_alias for f in Settings.model_fields.values() if isinstance(f.validation_alias, str))


@lru_cache(maxsize=64)
def _from_environment(snapshot: tuple[str | None, ...], cwd: str) -> Settings:
    # The arguments only key the cache: Settings() reads the same environment (and cwd) itself.
    return Settings()


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment (called at each use, so tests may change it).

    Building the model costs milliseconds and callers ask at every use, so one instance is kept
    per distinct set of values of the variables above (and working directory, which relative
    roots resolve against); a changed variable gives a fresh read. ``env`` reads from that
    mapping instead of ``os.environ`` (a job environment, a test).
    """
    try:
        if env is None:
            return _from_environment(tuple(os.environ.get(n) for n in _ENV_NAMES), os.getcwd())
        given: dict[str, Any] = {k: v for k, v in env.items() if k in _ENV_NAMES}
        return _FromMapping(**given)
    except ValidationError as exc:
        raise _config_error(exc) from None


def env_table() -> str:
    """The Markdown table of every variable (docstring above, docs/operator-guide.md section 6)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in Settings.model_fields.values():
        if not isinstance(field.validation_alias, str):
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        rows.append(f"| `{field.validation_alias}` | {extra.get('shown_default')} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(env_table() + "\n")


@dataclass(frozen=True)
class PortalSettings:
    """What ``phmx serve`` needs, resolved from :class:`Settings` (defaults under the hub's home and keys)."""

    host: str
    port: int
    orgs_file: str
    users_file: str
    secret_file: str
    tls: bool
    max_upload_bytes: int
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret_file: str = ""
    oidc_scopes: str = "openid email profile"
    oidc_mapping_file: str = ""
    oidc_redirect_url: str | None = None
    airflow_url: str = "http://127.0.0.1:8080"
    airflow_user: str = "admin"
    airflow_password_file: str = ""


def load_portal(base: Settings | None = None) -> PortalSettings:
    """The portal's settings (variables ``PHMX_PORTAL_*`` in the table above)."""
    s = base or load()
    return PortalSettings(
        host=s.portal_host, port=s.portal_port,
        orgs_file=s.portal_orgs or str(Path(s.home, "portal", "organisations.yaml")),
        users_file=s.portal_users or str(Path(s.home, "portal", "users.yaml")),
        secret_file=s.portal_secret_file or str(Path(s.keys_dir, "portal-session.key")),
        tls=s.portal_tls, max_upload_bytes=int(s.portal_max_upload_mb * 2**20),
        oidc_issuer=s.portal_oidc_issuer, oidc_client_id=s.portal_oidc_client_id,
        oidc_client_secret_file=s.portal_oidc_client_secret_file or str(Path(s.keys_dir, "portal-oidc-client.secret")),
        oidc_scopes=s.portal_oidc_scopes,
        oidc_mapping_file=s.portal_oidc_mapping or str(Path(s.home, "portal", "oidc.yaml")),
        oidc_redirect_url=s.portal_oidc_redirect_url,
        airflow_url=s.portal_airflow_url, airflow_user=s.portal_airflow_user,
        airflow_password_file=s.portal_airflow_password_file or str(
            Path(s.airflow_home or Path(s.home, "airflow"), "simple_auth_manager_passwords.json.generated")),
    )
