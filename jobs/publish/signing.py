"""The Ed25519 key that signs feed manifests, wrapped by the hub's key provider.

Same custody as the ledger's key (:mod:`consent.signing`), a different key: the 32 private bytes
are wrapped by ``privacy.keys.get_provider()`` (a local key file in the embedded default, an AWS
KMS envelope in production) under the purpose ``phmx/publish/ed25519-signing`` and stored as
``$PHMX_KEYS_DIR/publish-signing/<key_id>.wrapped``. A separate key keeps a feed signature from
ever standing in for a ledger checkpoint and lets either be rotated alone.

The public key goes into every package (``publisher.pem``) and is published by the hub at
``<publish root>/_keys/<key_id>.pem``; its fingerprint (SHA-256 of the raw 32-byte key) is what
an LHJ compares out of band.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from phmx import settings as settings_mod
from phmx import storage
from phmx.errors import PrivacyError
from phmx.log import get_logger

log = get_logger(__name__)

PURPOSE = "phmx/publish/ed25519-signing"
_CURRENT = "current.json"
_lock = threading.Lock()


def raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:`` + hex SHA-256 of the raw public key, in groups of four for reading aloud."""
    h = hashlib.sha256(raw_public(public_key)).hexdigest()
    return "SHA256:" + ":".join(h[i:i + 4] for i in range(0, len(h), 4))


def key_id_of(public_key: Ed25519PublicKey) -> str:
    return "ed25519-" + hashlib.sha256(raw_public(public_key)).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_pem(pem: bytes) -> Ed25519PublicKey:
    """Parse a PEM public key; PrivacyError if it is not an Ed25519 key."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise PrivacyError("the publisher key is not a valid PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise PrivacyError("the publisher key is not an Ed25519 key")
    return key


def verify(public_key: Ed25519PublicKey, message: bytes, signature: bytes) -> bool:
    try:
        public_key.verify(signature, message)
        return True
    except InvalidSignature:
        return False


@dataclass(frozen=True)
class Publisher:
    """The public facts about the signing key (safe to hand to worker processes and reports)."""

    key_id: str
    fingerprint: str


@dataclass(frozen=True)
class Signer:
    """A loaded signing key; ``sign`` returns the raw 64-byte signature."""

    key_id: str
    _private: Ed25519PrivateKey

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def public_key(self) -> Ed25519PublicKey:
        return self._private.public_key()

    def publisher(self) -> Publisher:
        return Publisher(self.key_id, fingerprint(self.public_key()))

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"


def _dir(s: settings_mod.Settings) -> str:
    return storage.join(s.keys_dir, "publish-signing")


def public_keys_root(s: settings_mod.Settings | None = None) -> str:
    s = s or settings_mod.load()
    return storage.join(s.publish_root, "_keys")


def get_signer(settings: settings_mod.Settings | None = None) -> Signer:
    """The current publish signing key, created (and its public key published) on first use."""
    from privacy.keys import get_provider

    s = settings or settings_mod.load()
    provider = get_provider(s)
    pointer = storage.join(_dir(s), _CURRENT)
    with _lock:
        if storage.exists(pointer):
            key_id = json.loads(storage.read_bytes(pointer))["key_id"]
            blob = storage.read_bytes(storage.join(_dir(s), f"{key_id}.wrapped"))
            private = Ed25519PrivateKey.from_private_bytes(provider.unwrap(blob, purpose=PURPOSE))
            if key_id_of(private.public_key()) != key_id:
                raise PrivacyError("the wrapped publish signing key does not match its key id", hint=pointer)
        else:
            private = Ed25519PrivateKey.generate()
            key_id = key_id_of(private.public_key())
            raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
            storage.write_bytes(storage.join(_dir(s), f"{key_id}.wrapped"), provider.wrap(raw, purpose=PURPOSE))
            storage.write_bytes(pointer, json.dumps({"key_id": key_id}).encode())
            log.info("created publish signing key %s", key_id)
        _publish_public(private.public_key(), s)
        return Signer(key_id, private)


def _publish_public(public_key: Ed25519PublicKey, s: settings_mod.Settings) -> None:
    """``<publish root>/_keys/<key_id>.pem`` and ``.json`` (fingerprint): what the hub publishes."""
    root = public_keys_root(s)
    kid = key_id_of(public_key)
    pem_uri = storage.join(root, f"{kid}.pem")
    if not storage.exists(pem_uri):
        storage.write_bytes(pem_uri, public_pem(public_key), content_type="application/x-pem-file")
        storage.write_text(storage.join(root, f"{kid}.json"),
                           json.dumps({"key_id": kid, "alg": "Ed25519", "fingerprint": fingerprint(public_key)},
                                      indent=2), content_type="application/json")
