"""Landing zones and outbox as S3 prefixes (moto's server on 127.0.0.1), SSE-KMS on every hub write."""

from __future__ import annotations

import json

import boto3

from jobs import ingest
from phmx import lakehouse, storage
from phmx.context import RunContext
from tests.ingest.conftest import synth_rows
from tests.ingest.test_format_x12_834 import x12
from tests.ingest.test_ingest_delimited import HEADER, enrollment_row


def test_landing_and_outbox_on_s3_with_kms(spark, phmx_home, moto_endpoint, s3_bucket, synth_root, monkeypatch):
    kms = boto3.client("kms", endpoint_url=moto_endpoint, region_name="us-west-2")
    key_id = kms.create_key(Description="phmx test")["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("PHMX_LANDING_ROOT", f"s3://{s3_bucket}/landing")
    monkeypatch.setenv("PHMX_OUTBOX_ROOT", f"s3://{s3_bucket}/outbox")
    monkeypatch.setenv("PHMX_KMS_KEY_ID", key_id)
    s3 = storage.s3_client()
    # A submitter's prefix per landing zone: landing/<submitter>/<feed>/<period>/<file>.
    s3.put_object(Bucket=s3_bucket, Key="landing/mcp_bluecoast/enrollment/2025-01/e.txt",
                  Body=(HEADER + "\n" + enrollment_row(1) + "\n" + enrollment_row(2, cin="bad") + "\n").encode())
    rows = synth_rows(synth_root, "mcp_bluecoast", "enrollment")[:5]
    s3.put_object(Bucket=s3_bucket, Key="landing/mcp_bluecoast/enrollment_834/2025-01/e.x12", Body=x12(rows).encode())
    s3.put_object(Bucket=s3_bucket, Key="landing/mcp_bluecoast/enrollment_834/2025-02/bad.x12", Body=b"not x12")

    result = ingest.run(spark, RunContext.new())
    assert result.counts["files"] == 3 and result.counts["rejected_files"] == 1

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="outbox/")["Contents"])
    jsons = [k for k in keys if k.endswith(".json")]
    assert len(jsons) == 3 and len([k for k in keys if k.endswith(".html")]) == 3
    assert all(k.startswith("outbox/mcp_bluecoast/receipts/") for k in keys)
    by_status = {}
    for k in jsons:
        head = s3.head_object(Bucket=s3_bucket, Key=k)
        assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]
        doc = json.loads(s3.get_object(Bucket=s3_bucket, Key=k)["Body"].read())
        by_status[doc["feed"] + ":" + doc["period"]] = doc
    assert by_status["enrollment:2025-01"]["status"] == "accepted_with_errors"
    assert by_status["enrollment:2025-01"]["errors"][0]["rows"] == [3]
    assert by_status["enrollment_834:2025-01"]["status"] == "accepted"
    assert by_status["enrollment_834:2025-02"]["file_errors"][0]["rule_id"] == "x12_isa"
    assert lakehouse.read(spark, "bronze.enrollment").count() == 1 + 5
    # The rejected file is kept in the hub's quarantine area (the lakehouse), not the outbox.
    sid = by_status["enrollment_834:2025-02"]["submission_id"]
    assert (phmx_home / "lakehouse" / "_quarantine_files" / sid / "bad.x12").read_bytes() == b"not x12"
    # Rerunning reads S3 again and changes nothing.
    again = ingest.run(spark, RunContext.new())
    assert again.counts["files"] == 0 and again.counts["skipped_already_ingested"] == 3
