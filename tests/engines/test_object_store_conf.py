"""S3A settings of every JVM session come from the project's settings, in one place
(``phmx.jvm.object_store_conf``): the classic session, the Spark Connect server script and the
spark-submit runner all pass the same endpoint, credentials provider and SSE-KMS keys."""

from __future__ import annotations

from phmx import jvm, runners, settings

PHI = "arn:aws:kms:us-west-2:111122223333:key/phi"
AUDIT = "arn:aws:kms:us-west-2:111122223333:key/audit"
ROOTS = {"PHMX_LANDING_ROOT": "s3://hub-landing/in", "PHMX_LAKEHOUSE_ROOT": "s3://hub-lake/lakehouse",
         "PHMX_OUTBOX_ROOT": "s3://hub-landing/outbox", "PHMX_PUBLISH_ROOT": "s3://hub-landing/publish",
         "PHMX_LEDGER_ROOT": "s3://hub-ledger/ledger", "PHMX_KEYS_DIR": "/tmp/keys"}


def _cfg(**extra: str) -> settings.Settings:
    return settings.load({**ROOTS, "PHMX_KMS_KEY_ID": PHI, **extra})


def test_endpoint_path_style_and_keys_from_the_settings(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    conf = jvm.object_store_conf(_cfg(PHMX_LEDGER_KMS_KEY_ID=AUDIT))
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "us-west-2"
    assert (conf["spark.hadoop.fs.s3a.encryption.algorithm"], conf["spark.hadoop.fs.s3a.encryption.key"]) == (
        "SSE-KMS", PHI)
    # the ledger's bucket takes only the audit key: S3A's per-bucket setting
    assert conf["spark.hadoop.fs.s3a.bucket.hub-ledger.encryption.algorithm"] == "SSE-KMS"
    assert conf["spark.hadoop.fs.s3a.bucket.hub-ledger.encryption.key"] == AUDIT
    assert "spark.hadoop.fs.s3a.aws.credentials.provider" not in conf  # S3A's default chain (EMR, EC2 roles)


def test_a_ledger_in_the_lakehouse_bucket_or_under_the_same_key_gets_no_bucket_override(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    same_bucket = jvm.object_store_conf(_cfg(PHMX_LEDGER_ROOT="s3://hub-lake/ledger", PHMX_LEDGER_KMS_KEY_ID=AUDIT))
    same_key = jvm.object_store_conf(_cfg())
    for conf in (same_bucket, same_key):
        assert not [k for k in conf if ".bucket." in k]
        assert "spark.hadoop.fs.s3a.endpoint" not in conf  # real S3: the SDK's regional endpoint


def test_credentials_provider_setting(monkeypatch):
    provider = "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider"
    conf = jvm.object_store_conf(_cfg(PHMX_S3A_CREDENTIALS_PROVIDER=provider))
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"] == provider


def test_spark_submit_runner_passes_the_same_s3a_settings(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    cfg = _cfg(PHMX_LEDGER_KMS_KEY_ID=AUDIT)
    conf = runners.SparkSubmitConfig(jars="/jars/delta.jar").conf(cfg)
    assert jvm.object_store_conf(cfg).items() <= conf.items()
    assert conf["spark.driver.memory"] == cfg.spark_driver_memory  # not spark-submit's 1g


def test_every_writer_uses_the_ledger_zones_audit_key(monkeypatch):
    from phmx import storage

    for var, value in {**ROOTS, "PHMX_KMS_KEY_ID": PHI, "PHMX_LEDGER_KMS_KEY_ID": AUDIT}.items():
        monkeypatch.setenv(var, value)
    ledger_obj, lake_obj = "s3://hub-ledger/ledger/audit/ledger_keys/k.pem", "s3://hub-lake/lakehouse/gold/x/a.parquet"
    assert storage.encryption_args(ledger_obj) == {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": AUDIT}
    assert storage.encryption_args(lake_obj)["SSEKMSKeyId"] == PHI
    assert storage.encryption_args()["SSEKMSKeyId"] == PHI
    assert storage.encryption_args("s3://hub-ledger/ledger-other/x")["SSEKMSKeyId"] == PHI  # a prefix, not the root
    assert storage.delta_storage_options("s3://hub-ledger/ledger/audit/ledger")["AWS_SSE_KMS_KEY_ID"] == AUDIT
    assert jvm.object_store_conf()["spark.hadoop.fs.s3a.bucket.hub-ledger.encryption.key"] == AUDIT
