"""The whole pipeline with every zone on S3: moto's server on 127.0.0.1, SSE-KMS with a moto key.

A small synthetic population is generated locally, its landing tree uploaded to
``s3://<bucket>/landing/``, and ``run_pipeline()`` runs with landing, lakehouse, outbox, publish
and ledger roots all ``s3://`` URIs. Nothing here configures the engine: reaching the endpoint is
phmx.engine's job (the fixture only sets the standard AWS variables).

Encryption is checked the way the Terraform deploys it: the lakehouse bucket has default SSE-KMS
with the PHI key (so Delta files written by the engine and by delta-rs are encrypted by S3),
while the landing/outbox/publish bucket here has no default, so the SSE-KMS header on receipts
and feeds must come from phmx.storage itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phmx import lakehouse, storage
from phmx.tables import SUBMISSIONS

MEMBERS = 200
PERIODS = ("2025-01", "2025-02")


@pytest.fixture
def kms_key(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A KMS key on the moto endpoint, named by ARN in PHMX_KMS_KEY_ID (as Terraform sets it)."""
    import boto3

    kms = boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-west-2")
    arn = kms.create_key(Description="phmx test PHI key")["KeyMetadata"]["Arn"]
    monkeypatch.setenv("PHMX_KMS_KEY_ID", arn)
    monkeypatch.delenv("PHMX_LEDGER_KMS_KEY_ID", raising=False)
    return arn


@pytest.fixture
def s3_zones(s3_bucket: str, kms_key: str, phmx_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
             ) -> dict[str, str]:
    """Synthetic landing files uploaded to S3, and every phmx root pointed at the bucket."""
    from phmx.synth import generate

    local = tmp_path / "synth"
    generate(local, members=MEMBERS, counties=["06001"], seed=11, start=PERIODS[0], months=len(PERIODS))
    landing_local = local / "landing"
    files = [p for p in sorted(landing_local.rglob("*")) if p.is_file()]
    assert files, "the generator wrote no landing files"
    s3 = storage.s3_client()
    lake_bucket, ledger_bucket = s3_bucket[:50] + "-lake", s3_bucket[:50] + "-ledger"
    for name in (lake_bucket, ledger_bucket):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key},
            "BucketKeyEnabled": True}]})
    roots = {
        "PHMX_LANDING_ROOT": f"s3://{s3_bucket}/landing",
        "PHMX_LAKEHOUSE_ROOT": f"s3://{lake_bucket}/lakehouse",
        "PHMX_OUTBOX_ROOT": f"s3://{s3_bucket}/outbox",
        "PHMX_PUBLISH_ROOT": f"s3://{s3_bucket}/publish",
        "PHMX_LEDGER_ROOT": f"s3://{ledger_bucket}/ledger",
    }
    for var, uri in roots.items():
        monkeypatch.setenv(var, uri)
    for p in files:
        storage.write_bytes(storage.join(roots["PHMX_LANDING_ROOT"], p.relative_to(landing_local).as_posix()),
                            p.read_bytes())
    return roots | {"bucket": s3_bucket, "lake_bucket": lake_bucket, "ledger_bucket": ledger_bucket,
                    "landed": str(len(files))}


def _head(uri: str) -> dict:
    bucket, key = storage.split_s3(uri)
    return storage.s3_client().head_object(Bucket=bucket, Key=key)


def _keys(root: str) -> list[str]:
    return [f.relpath for f in storage.list_files(root)]


@pytest.mark.slow
def test_pipeline_runs_with_every_zone_on_s3(spark, s3_zones, kms_key):
    from phmx.pipeline import run_pipeline

    results = {r.stage: r for r in run_pipeline(period="all", run_id="run-s3-e2e")}
    assert set(results) >= {"ingest", "conform", "identity", "consent", "publish"}
    ingest = results["ingest"].counts
    assert 0 < ingest["files"] <= int(s3_zones["landed"])
    assert ingest["rows_landed"] == ingest["rows_accepted"] + ingest["rows_quarantined"] > 0

    # bronze, silver and gold are Delta tables under the S3 lakehouse root, and nothing local
    lake = s3_zones["PHMX_LAKEHOUSE_ROOT"]
    for fqn in ("bronze.enrollment", "bronze.claims", "silver.person", "silver.encounter", "gold.member"):
        path = lakehouse.table_path(fqn)
        assert path.startswith(lake + "/"), fqn
        assert storage.exists(storage.join(path, "_delta_log", "00000000000000000000.json")), fqn
        assert lakehouse.read(spark, fqn).count() > 0, fqn
    assert lakehouse.read(spark, "gold.member").count() <= MEMBERS

    # conservation per file: the ledger of submissions, the receipts on S3 and bronze agree
    subs = lakehouse.read(spark, SUBMISSIONS).collect()
    assert subs and {s.period for s in subs} <= set(PERIODS)
    quarantine = lakehouse.read(spark, "bronze.quarantine")
    for s in subs:
        assert s.rows_landed == s.rows_accepted + s.rows_quarantined, s.source_file
        assert s.receipt_uri.startswith(s3_zones["PHMX_OUTBOX_ROOT"] + "/"), s.receipt_uri
        receipt = json.loads(storage.read_bytes(s.receipt_uri))
        assert (receipt["rows_landed"], receipt["rows_accepted"], receipt["rows_quarantined"]) == (
            s.rows_landed, s.rows_accepted, s.rows_quarantined)
        bad = quarantine.where(quarantine.submission_id == s.submission_id).select("row_number").distinct().count()
        assert bad == s.rows_quarantined, s.source_file
    assert sum(s.rows_landed for s in subs) == ingest["rows_landed"]

    # receipts and published feeds are on S3, each object SSE-KMS with the configured key
    receipts = [k for k in _keys(s3_zones["PHMX_OUTBOX_ROOT"]) if k.endswith(".json")]
    assert len(receipts) >= len(subs)
    published = _keys(s3_zones["PHMX_PUBLISH_ROOT"])
    manifests = [k for k in published if k.endswith("manifest.json")]
    assert manifests, "no feed was published"
    manifest = json.loads(storage.read_bytes(storage.join(s3_zones["PHMX_PUBLISH_ROOT"], manifests[0])))
    assert manifest["files"]
    for uri in ([storage.join(s3_zones["PHMX_OUTBOX_ROOT"], k) for k in receipts]
                + [storage.join(s3_zones["PHMX_PUBLISH_ROOT"], k) for k in published]):
        head = _head(uri)
        assert (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")) == ("aws:kms", kms_key), uri

    # the consent ledger and its disclosures are Delta tables on S3 too; every lakehouse object is
    # SSE-KMS with the PHI key (bucket default, as deployed)
    ledger_root = s3_zones["PHMX_LEDGER_ROOT"]
    assert lakehouse.table_path("audit.ledger") == ledger_root + "/audit/ledger"
    ledger_objects = [storage.join(ledger_root, k) for k in _keys(ledger_root)]
    assert any("/audit/ledger/_delta_log/" in u for u in ledger_objects)
    assert any("/audit/disclosure_member/_delta_log/" in u for u in ledger_objects)
    lake_objects = [storage.join(lake, k) for k in _keys(lake)]
    assert not any("/audit/" in u for u in lake_objects)  # the ledger lives in its own bucket
    for uri in lake_objects[::7]:
        head = _head(uri)
        assert (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")) == ("aws:kms", kms_key), uri


def test_ledger_goes_to_its_own_root(phmx_home, monkeypatch):
    from consent import ledger

    monkeypatch.setenv("PHMX_LAKEHOUSE_ROOT", "s3://phmx-dev-lakehouse-111122223333")
    monkeypatch.setenv("PHMX_LEDGER_ROOT", "s3://phmx-dev-ledger-111122223333/ledger")
    assert ledger.ledger_path().startswith("s3://phmx-dev-ledger-111122223333/ledger/")
