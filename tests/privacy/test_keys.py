"""Key providers: local files and AWS KMS (moto server), wrap/unwrap, HKDF, rotation, secrecy."""

from __future__ import annotations

import logging
import pickle
import stat

import pytest

from phmx import settings as settings_mod
from phmx.errors import PrivacyError
from privacy import keys


@pytest.fixture
def local(phmx_home):
    keys.reset_provider_cache()
    yield keys.get_provider()
    keys.reset_provider_cache()


def test_local_provider_creates_versioned_0600_keys(local, phmx_home):
    assert local.current_version() == 1
    key_file = phmx_home / "keys" / "master-v1.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((phmx_home / "keys").stat().st_mode) == 0o700
    assert isinstance(local, keys.KeyProvider)


def test_wrap_roundtrip_and_purpose_binding(local):
    blob = local.wrap(b"data-key-bytes", purpose="column-dek")
    assert b"data-key-bytes" not in blob
    assert local.unwrap(blob, purpose="column-dek") == b"data-key-bytes"
    with pytest.raises(PrivacyError, match="failed authentication"):
        local.unwrap(blob, purpose="signing")


def test_tampered_blob_is_rejected_without_content(local):
    blob = bytearray(local.wrap(b"s3cr3t-value", purpose="p"))
    blob[-3] ^= 0x01
    with pytest.raises(PrivacyError) as err:
        local.unwrap(bytes(blob), purpose="p")
    assert "s3cr3t" not in str(err.value)


def test_rotation_keeps_old_versions_working(local):
    old_blob = local.wrap(b"old", purpose="p")
    old_derived = local.derive("pseudonym:recipient-a")
    assert local.rotate() == 2
    assert local.current_version() == 2
    assert local.unwrap(old_blob, purpose="p") == b"old"
    assert local.derive("pseudonym:recipient-a", version=1) == old_derived
    assert local.derive("pseudonym:recipient-a") != old_derived
    assert keys.LocalKeyProvider.blob_version(local.wrap(b"new", purpose="p")) == 2
    assert local.versions() == [1, 2]


def test_derive_is_stable_across_processes_and_labels_differ(local, phmx_home):
    a = local.derive("label-a")
    fresh = keys.LocalKeyProvider(phmx_home / "keys")
    assert fresh.derive("label-a") == a
    assert fresh.derive("label-b") != a
    assert len(fresh.derive("label-a", length=64)) == 64


def test_keys_never_in_repr_pickle_or_logs(local, caplog, phmx_home):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("phmx").propagate = True
    try:
        local.rotate()
        secret = local.derive("x")
        blob = local.wrap(b"topsecretpayload", purpose="p")
        local.unwrap(blob, purpose="p")
        with pytest.raises(PrivacyError):
            local.unwrap(blob[:-1] + b"\x00", purpose="p")
    finally:
        logging.getLogger("phmx").propagate = False
    raw_master = (phmx_home / "keys" / "master-v1.key").read_bytes().strip()
    text = caplog.text + repr(local) + str(local)
    for needle in (raw_master.decode(), secret.hex(), "topsecretpayload"):
        assert needle not in text
    assert raw_master not in pickle.dumps(local)
    assert secret not in pickle.dumps(local)


def test_local_provider_refuses_s3_dir():
    with pytest.raises(Exception, match="local PHMX_KEYS_DIR"):
        keys.LocalKeyProvider("s3://bucket/keys")


@pytest.fixture
def kms_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    yield f"http://{host}:{port}"
    server.stop()


def test_kms_provider_envelope_and_rotation(kms_server, phmx_home, monkeypatch, caplog):
    import boto3

    kms = boto3.client("kms", endpoint_url=kms_server, region_name="us-west-2")
    key_id = kms.create_key(Description="phmx test")["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("PHMX_KMS_KEY_ID", key_id)
    keys.reset_provider_cache()
    prov = keys.get_provider(settings_mod.load())
    assert isinstance(prov, keys.KmsKeyProvider)
    assert prov.current_version() == 1
    stored = (phmx_home / "keys" / "kms-master-v1.json").read_text()
    assert "ciphertext_blob" in stored
    blob = prov.wrap(b"dek", purpose="column")
    derived = prov.derive("pseudonym:r1")
    # a fresh process (no cache) unwraps the data key through KMS Decrypt
    fresh = keys.KmsKeyProvider(key_id, str(phmx_home / "keys"))
    assert fresh.unwrap(blob, purpose="column") == b"dek"
    assert fresh.derive("pseudonym:r1") == derived
    assert fresh.rotate() == 2
    assert fresh.unwrap(blob, purpose="column") == b"dek"
    assert fresh.derive("pseudonym:r1") != derived
    assert fresh.rewrap_versions() == 2
    again = keys.KmsKeyProvider(key_id, str(phmx_home / "keys"))
    assert again.derive("pseudonym:r1", version=1) == derived
    assert derived not in pickle.dumps(again)
    # a local provider cannot open a KMS blob (and says why, without content)
    local = keys.LocalKeyProvider(phmx_home / "localkeys")
    with pytest.raises(PrivacyError, match="another key provider"):
        local.unwrap(blob, purpose="column")
    keys.reset_provider_cache()


def test_kms_provider_on_s3_keys_root(kms_server, monkeypatch):
    import boto3

    from phmx import storage

    storage.reset_client()
    boto3.client("s3", endpoint_url=kms_server, region_name="us-west-2").create_bucket(
        Bucket="keys-bucket", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    key_id = boto3.client("kms", endpoint_url=kms_server, region_name="us-west-2").create_key()["KeyMetadata"]["KeyId"]
    prov = keys.KmsKeyProvider(key_id, "s3://keys-bucket/phmx/keys")
    blob = prov.wrap(b"abc", purpose="p")
    assert storage.exists("s3://keys-bucket/phmx/keys/kms-master-v1.json")
    assert keys.KmsKeyProvider(key_id, "s3://keys-bucket/phmx/keys").unwrap(blob, purpose="p") == b"abc"
    storage.reset_client()
