"""Packages: signed manifests, offline verification, versions, all-or-nothing delivery (local and S3)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobs.publish import package
from jobs.publish.verify import PackageInvalid, verify_package
from phmx import settings, storage
from phmx.errors import PhmxError, StorageError
from privacy import signing


def _pkg(period: str = "2025-01", body: str = "a,b\n1,2\n") -> package.Package:
    p = package.Package("lhj_alameda", "lhj_measures", period, "run-1")
    p.add("measures.csv", body, "text/csv")
    p.add("sub/notes.txt", "synthetic", "text/plain")
    p.meta = {"purpose": "PUBHLTH"}
    return p


def _cli(argv: list[str]) -> tuple[int, str]:
    """The feeds commands through a tiny parser, printing errors the way phmx.cli does."""
    from jobs.publish.cli import register

    parser = argparse.ArgumentParser(prog="phmx")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0), ""
    except PhmxError as exc:
        return exc.exit_code, str(exc)


def test_deliver_verify_and_versions(keys_home, capsys):
    root = settings.load().publish_root
    d1 = package.deliver(_pkg(), root)
    d2 = package.deliver(_pkg(body="a,b\n3,4\n"), root)
    base = Path(root, "lhj_alameda", "lhj_measures", "2025-01")
    assert (d1.version, d2.version) == (1, 2) and (base / "v1" / "measures.csv").read_text() == "a,b\n1,2\n"
    assert json.loads((base / "latest").read_text())["version"] == "v2"
    v = verify_package(base)  # follows latest
    assert v.version == "v2" and v.files == 3 and v.fingerprint.startswith("SHA256:")
    signer = signing.get_signer(signing.PUBLISH)
    published = json.loads(Path(root, "_keys", f"{signer.key_id}.json").read_text())
    assert published["fingerprint"] == v.fingerprint
    code, _ = _cli(["feeds", "verify", str(base / "v1"), "--fingerprint", v.fingerprint])
    out = capsys.readouterr().out
    assert code == 0 and v.fingerprint in out and "signature valid" in out
    assert not any(Path(root, package.STAGING).rglob("*.csv"))


@pytest.mark.parametrize("tamper, names", [
    ("edit", "measures.csv"), ("extra", "extra.csv"), ("sig", "manifest.json"), ("missing", "notes.txt"),
    ("key", "publisher.pem"),
])
def test_verify_names_the_bad_file(keys_home, tamper, names):
    root = settings.load().publish_root
    d = package.deliver(_pkg(), root)
    folder = Path(d.uri)
    if tamper == "edit":
        (folder / "measures.csv").write_text("a,b\n1,3\n")
    elif tamper == "extra":
        (folder / "extra.csv").write_text("x\n")
    elif tamper == "sig":
        m = json.loads((folder / "manifest.json").read_text())
        m["recipient"] = "lhj_berkeley"
        (folder / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")
    elif tamper == "missing":
        (folder / "sub" / "notes.txt").unlink()
    elif tamper == "key":  # a package re-signed with someone else's key does not match the hub's fingerprint
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        other = Ed25519PrivateKey.generate()
        hub_fp = signing.fingerprint(signing.get_signer(signing.PUBLISH).public_key())
        (folder / "publisher.pem").write_bytes(signing.public_pem(other.public_key()))
        (folder / "manifest.sig").write_bytes(other.sign((folder / "manifest.json").read_bytes()))
        code, msg = _cli(["feeds", "verify", str(folder), "--fingerprint", hub_fp])
        assert code == 71 and "publisher.pem" in msg and "fingerprint" in msg
        return
    with pytest.raises(PackageInvalid) as exc:
        verify_package(folder)
    assert names in str(exc.value)
    code, msg = _cli(["feeds", "verify", str(folder)])
    assert code == PackageInvalid.exit_code == 71 and names in msg


def test_failure_while_writing_leaves_no_visible_package(keys_home, monkeypatch):
    root = settings.load().publish_root
    package.deliver(_pkg(), root)  # v1 exists and stays the latest
    real = storage.write_bytes
    calls = {"n": 0}

    def flaky(uri: str, data: bytes, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real(uri, data, **kw)

    monkeypatch.setattr(storage, "write_bytes", flaky)
    with pytest.raises(StorageError):
        package.deliver(_pkg(body="a,b\n9,9\n"), root)
    monkeypatch.setattr(storage, "write_bytes", real)
    base = Path(root, "lhj_alameda", "lhj_measures", "2025-01")
    assert sorted(p.name for p in base.iterdir()) == ["latest", "v1"]
    assert json.loads((base / "latest").read_text())["version"] == "v1"
    assert not any(p.is_file() for p in Path(root, package.STAGING).rglob("*"))
    verify_package(base)


def test_s3_delivery_presigned_versions_and_failed_promotion(keys_home, s3_bucket, monkeypatch):
    import urllib.request

    root = f"s3://{s3_bucket}/publish"
    d = package.deliver(_pkg(), root, now=datetime(2025, 2, 1, tzinfo=UTC))
    prefix = f"{root}/lhj_alameda/lhj_measures/2025-01"
    manifest = json.loads(storage.read_bytes(f"{prefix}/v1/manifest.json"))
    urls = manifest["delivery"]["presigned_urls"]
    assert set(urls) >= {"measures.csv", "manifest.json", "manifest.sig", "publisher.pem"}
    with urllib.request.urlopen(urls["measures.csv"], timeout=10) as r:  # noqa: S310 - moto on 127.0.0.1
        assert r.read() == b"a,b\n1,2\n"
    assert d.uri == f"{prefix}/v1"

    client = storage.s3_client()
    real_copy = client.copy_object
    calls = {"n": 0}

    def flaky_copy(**kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("network reset (simulated)")
        return real_copy(**kw)

    monkeypatch.setattr(client, "copy_object", flaky_copy)
    with pytest.raises(StorageError):
        package.deliver(_pkg(body="a,b\n5,5\n"), root)
    monkeypatch.setattr(client, "copy_object", real_copy)
    keys = sorted(f.relpath for f in storage.list_files(root))
    assert not any("/v2/" in k for k in keys) and not any(k.startswith(package.STAGING) for k in keys)
    assert json.loads(storage.read_bytes(f"{prefix}/latest"))["version"] == "v1"
    d3 = package.deliver(_pkg(body="a,b\n6,6\n"), root)
    assert d3.version == 2 and json.loads(storage.read_bytes(f"{prefix}/latest"))["version"] == "v2"
    assert storage.read_bytes(f"{prefix}/v1/measures.csv") == b"a,b\n1,2\n"  # the old version is kept
    from jobs.publish.summary import summarize_publish

    s = summarize_publish(root)
    assert len(s) == 1 and s[0]["version"] == "v2" and s[0]["versions"] == 2


def test_feeds_list_reads_the_feed_log(keys_home, capsys):
    from jobs.publish import feed_log

    d = package.deliver(_pkg(), settings.load().publish_root)
    feed_log.record(d, run_id="run-1", ledger_seq=7, cells=10, suppressed=2, members=30)
    code, _ = _cli(["feeds", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and rows[0]["recipient"] == "lhj_alameda" and rows[0]["ledger_seq"] == 7
    assert rows[0]["version"] == "v1"
    code, _ = _cli(["feeds", "--source", "folder", "--recipient", "mcp_sierra", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out) == []


def test_s3_delivery_uses_sse_kms_when_a_key_is_configured(keys_home, s3_bucket, monkeypatch):
    import boto3

    from privacy.keys import reset_provider_cache

    kms = boto3.client("kms", endpoint_url=storage.s3_client().meta.endpoint_url, region_name="us-west-2")
    key_id = kms.create_key(Description="phmx test")["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("PHMX_KMS_KEY_ID", key_id)
    reset_provider_cache()
    root = f"s3://{s3_bucket}/publish"
    d = package.deliver(_pkg(), root)
    bucket, key = storage.split_s3(f"{d.uri}/measures.csv")
    head = storage.s3_client().head_object(Bucket=bucket, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms" and key_id in head["SSEKMSKeyId"]
    manifest = json.loads(storage.read_bytes(f"{d.uri}/manifest.json"))
    assert manifest["delivery"]["sse"] == "aws:kms"


def _spooled_pkg(root: str, mib: int = 12) -> tuple[package.Package, str]:
    """A package with one big file written in 1 MiB pieces through the hashing spool writer."""
    import hashlib

    p = _pkg()
    p.spool = package.spool_dir(root, p.recipient)
    w = package.HashingWriter(p.spool / "big.ndjson")
    h = hashlib.sha256()
    for i in range(mib):
        piece = (f'{{"line":{i}}}\n' * ((1 << 20) // 11)).encode()
        w.write(piece)
        h.update(piece)
    p.add_spooled("big.ndjson", w.close(), "application/fhir+ndjson")
    return p, h.hexdigest()


def test_big_spooled_file_manifest_checksum_local(keys_home):
    root = settings.load().publish_root
    pkg, digest = _spooled_pkg(root)
    spool = pkg.spool
    d = package.deliver(pkg, root)
    folder = Path(d.uri)
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = next(f for f in manifest["files"] if f["name"] == "big.ndjson")
    assert entry["sha256"] == digest == package.sha256_file(folder / "big.ndjson") == d.files["big.ndjson"]
    assert entry["bytes"] == (folder / "big.ndjson").stat().st_size > 10 * 2**20
    assert verify_package(folder).files == 4
    assert spool is not None and not spool.exists()  # the spool folder goes once staged
    code, _ = _cli(["feeds", "verify", str(folder)])
    assert code == 0


def test_big_spooled_file_on_s3_is_uploaded_and_verifies(keys_home, s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setattr(package, "COPY_OBJECT_MAX", 2**20)  # promote the big file by a multipart copy
    root = f"s3://{s3_bucket}/publish"
    pkg, digest = _spooled_pkg(root, mib=9)
    d = package.deliver(pkg, root)
    manifest = json.loads(storage.read_bytes(f"{d.uri}/manifest.json"))
    entry = next(f for f in manifest["files"] if f["name"] == "big.ndjson")
    assert entry["sha256"] == digest
    local = tmp_path / "received"  # what a recipient does: download the folder, verify offline
    for f in storage.list_files(d.uri):
        target = local / f.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(storage.read_bytes(f.uri))
    assert verify_package(local).files == 4
    assert not pkg.spool.exists()  # type: ignore[union-attr]
