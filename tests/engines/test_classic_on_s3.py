"""The classic JVM route with every zone on S3: moto's server on 127.0.0.1 through S3A, SSE-KMS on.

A small synthetic population is uploaded to ``s3://<bucket>/landing/``; the whole pipeline runs on
classic JVM Spark (``PHMX_ENGINE=classic``, local[2]) in a fresh process whose landing, lakehouse,
outbox, publish and ledger roots are ``s3://`` URIs. Nothing here configures S3A: the session gets
its endpoint, path-style access and SSE-KMS keys from the project's settings
(``phmx.jvm.object_store_conf``); the test only sets the standard AWS variables and the keys.

No bucket has default encryption, so every object's SSE-KMS header comes from the writer itself
(S3A for the engine's Delta files, phmx.storage and delta-rs for the rest), and the ledger bucket
gets the audit key, not the PHI key (S3A's per-bucket setting). The same population run on the
embedded engine with local folders gives the reference: the gold tables and the published
measures and FHIR resources read back from S3 must equal it (tests/engines/same_results.py).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from jvm_kit import requires_jvm, run_script
from same_results import assert_same_outputs

from phmx import storage

pytestmark = [requires_jvm, pytest.mark.slow]

MEMBERS = 60
PERIOD = "2025-01"
RUN = textwrap.dedent("""
    import json
    from phmx.engine import get_spark
    from phmx.pipeline import run_pipeline

    spark = get_spark()
    results = run_pipeline(period="all", run_id="run-s3-jvm")
    print("ENGINE " + type(spark).__module__)
    print("COUNTS " + json.dumps({r.stage: r.counts for r in results}, default=str))
""")


def _counts(stdout: str) -> dict:
    line = next(x for x in stdout.splitlines() if x.startswith("COUNTS "))
    return {stage: {k: v for k, v in c.items() if k != "seconds"} for stage, c in json.loads(line[7:]).items()}


def _download(root: str, dest: Path) -> int:
    """Copy every object under an s3:// root into ``dest`` (Delta logs hold relative paths)."""
    n = 0
    for f in storage.list_files(root):
        target = dest / f.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(storage.read_bytes(storage.join(root, f.relpath)))
        n += 1
    return n


def test_pipeline_on_classic_jvm_spark_with_every_zone_on_s3(moto_endpoint, s3_bucket, tmp_path, monkeypatch):
    import boto3

    from phmx.synth import generate

    kms = boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-west-2")
    phi_key = kms.create_key(Description="phmx test PHI key")["KeyMetadata"]["Arn"]
    audit_key = kms.create_key(Description="phmx test audit key")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("PHMX_KMS_KEY_ID", phi_key)  # the upload below is SSE-KMS too
    s3 = storage.s3_client()
    lake_bucket, ledger_bucket = s3_bucket[:50] + "-lake", s3_bucket[:50] + "-ledger"
    for name in (lake_bucket, ledger_bucket):  # no default encryption: the writers must ask for it
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    roots = {"PHMX_LANDING_ROOT": f"s3://{s3_bucket}/landing", "PHMX_LAKEHOUSE_ROOT": f"s3://{lake_bucket}/lakehouse",
             "PHMX_OUTBOX_ROOT": f"s3://{s3_bucket}/outbox", "PHMX_PUBLISH_ROOT": f"s3://{s3_bucket}/publish",
             "PHMX_LEDGER_ROOT": f"s3://{ledger_bucket}/ledger"}

    src = tmp_path / "source"
    generate(src, members=MEMBERS, counties=["06001"], seed=5, start=PERIOD, months=1)
    files = [p for p in sorted((src / "landing").rglob("*")) if p.is_file()]
    for p in files:
        storage.write_bytes(storage.join(roots["PHMX_LANDING_ROOT"], p.relative_to(src / "landing").as_posix()),
                            p.read_bytes())
    keys = tmp_path / "keys"  # one keys folder: pseudonyms and fingerprints comparable across the runs

    # the reference: the embedded engine on local folders
    ref = tmp_path / "sail"
    shutil.copytree(src / "landing", ref / "landing")
    sail = run_script(RUN, engine="sail", home=ref, env={"PHMX_KEYS_DIR": str(keys), "PHMX_KMS_KEY_ID": phi_key})

    jvm_home = tmp_path / "jvm"
    jvm_home.mkdir()
    env = {**roots, "PHMX_KEYS_DIR": str(keys), "PHMX_KMS_KEY_ID": phi_key, "PHMX_LEDGER_KMS_KEY_ID": audit_key}
    classic = run_script(RUN, engine="classic", home=jvm_home, env=env, timeout=1800)
    assert "ENGINE pyspark.sql.session" in classic.stdout  # a classic JVM session, not Spark Connect
    assert _counts(classic.stdout) == _counts(sail.stdout)
    assert not (jvm_home / "lakehouse").exists() and not (jvm_home / "publish").exists()  # nothing local

    # every zone's objects are on S3, each SSE-KMS with its zone's key, none without
    objects = {}
    for var, root in roots.items():
        key = audit_key if var == "PHMX_LEDGER_ROOT" else phi_key
        found = [storage.join(root, f.relpath) for f in storage.list_files(root)]
        assert found, var
        objects.update(dict.fromkeys(found, key))
    for uri, key in objects.items():
        bucket, k = storage.split_s3(uri)
        head = s3.head_object(Bucket=bucket, Key=k)
        assert (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")) == ("aws:kms", key), uri

    # the tables are Delta on S3, written by the JVM
    lake = roots["PHMX_LAKEHOUSE_ROOT"]
    logs = {u.rsplit("/_delta_log/", 1)[0] for u in objects if "/_delta_log/" in u}
    for fqn in ("bronze/enrollment", "bronze/claims", "silver/person", "gold/member", "gold/member_month"):
        assert f"{lake}/{fqn}" in logs, fqn
    assert f"{roots['PHMX_LEDGER_ROOT']}/audit/ledger" in logs
    commit = storage.read_bytes(f"{lake}/gold/member/_delta_log/00000000000000000000.json").decode()
    assert "Apache-Spark" in commit

    # the gold tables and the published feeds equal the embedded engine's on local folders
    got = tmp_path / "from-s3"
    assert _download(lake + "/gold", got / "lakehouse" / "gold") > 0
    assert _download(roots["PHMX_PUBLISH_ROOT"], got / "publish") > 0
    # a package delivered to S3 has a larger manifest by design: its `delivery` block (the location,
    # SSE and presigned URLs for the recipient); the files' own hashes are compared with the files
    assert_same_outputs(ref, got, set_aside={"feed_log": ["bytes"]}, label=" on S3")
