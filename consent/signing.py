"""Ed25519 keys that sign ledger checkpoints.

The private key never rests in the clear: its 32 raw bytes are wrapped by the hub's key provider
(``privacy.keys.get_provider()``: a local key file in the embedded default, an AWS KMS envelope in
production; same interface) and stored as ``$PHMX_KEYS_DIR/ledger-signing/<key_id>.wrapped``.
The public key is exported next to the ledger (``<lakehouse>/audit/ledger_keys/<key_id>.pem``) so
an auditor verifies with the public key alone. ``key_id`` is ``ed25519-`` + the first 16 hex
digits of SHA-256 over the raw public key, so a checkpoint names the key that signed it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from phmx import settings as settings_mod
from phmx import storage
from phmx.errors import LedgerError
from phmx.log import get_logger

log = get_logger(__name__)

PURPOSE = "phmx/ledger/ed25519-signing"
_CURRENT = "current.json"
_lock = threading.Lock()


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    """Parse a PEM public key; raise LedgerError if it is not Ed25519."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise LedgerError("the ledger public key is not an Ed25519 key")
    return key


def public_keys_dir(settings: settings_mod.Settings | None = None) -> str:
    s = settings or settings_mod.load()
    return storage.join(s.ledger_root, "audit", "ledger_keys")


def _private_dir(settings: settings_mod.Settings) -> str:
    return storage.join(settings.keys_dir, "ledger-signing")


@dataclass(frozen=True)
class Signer:
    """A loaded signing key. ``sign`` returns base64; the private key stays in this object only."""

    key_id: str
    _private: Ed25519PrivateKey

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._private.sign(message)).decode("ascii")

    def public_key(self) -> Ed25519PublicKey:
        return self._private.public_key()

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"


def verify_signature(public_key: Ed25519PublicKey, message: bytes, signature_b64: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), message)
        return True
    except (InvalidSignature, ValueError):
        return False


def get_signer(settings: settings_mod.Settings | None = None, *, create: bool = True) -> Signer:
    """The current ledger signing key, created (and its public key exported) on first use."""
    from privacy.keys import get_provider

    s = settings or settings_mod.load()
    provider = get_provider(s)
    pointer = storage.join(_private_dir(s), _CURRENT)
    with _lock:
        if storage.exists(pointer):
            key_id = json.loads(storage.read_bytes(pointer))["key_id"]
            blob = storage.read_bytes(storage.join(_private_dir(s), f"{key_id}.wrapped"))
            private = Ed25519PrivateKey.from_private_bytes(provider.unwrap(blob, purpose=PURPOSE))
            if key_id_of(private.public_key()) != key_id:
                raise LedgerError("the wrapped ledger signing key does not match its key id", hint=pointer)
        elif not create:
            raise LedgerError("no ledger signing key exists yet")
        else:
            private = Ed25519PrivateKey.generate()
            key_id = key_id_of(private.public_key())
            raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
            storage.write_bytes(storage.join(_private_dir(s), f"{key_id}.wrapped"),
                                provider.wrap(raw, purpose=PURPOSE))
            storage.write_bytes(pointer, json.dumps({"key_id": key_id}).encode())
            log.info("created ledger signing key %s", key_id)
        export_public_key(private.public_key(), s)
        return Signer(key_id, private)


def rotate(settings: settings_mod.Settings | None = None) -> Signer:
    """Make a new signing key current. Old public keys stay exported, so old checkpoints verify."""
    s = settings or settings_mod.load()
    pointer = storage.join(_private_dir(s), _CURRENT)
    if storage.exists(pointer):
        old = json.loads(storage.read_bytes(pointer))["key_id"]
        storage.write_bytes(storage.join(_private_dir(s), f"retired-{old}.json"), storage.read_bytes(pointer))
        if storage.is_s3(pointer):
            bucket, key = storage.split_s3(pointer)
            storage.s3_client().delete_object(Bucket=bucket, Key=key)
        else:
            import os

            os.remove(pointer)
    return get_signer(s)


def export_public_key(public_key: Ed25519PublicKey, settings: settings_mod.Settings | None = None) -> str:
    """Write ``<key_id>.pem`` next to the ledger (idempotent) and return its location."""
    uri = storage.join(public_keys_dir(settings), f"{key_id_of(public_key)}.pem")
    pem = public_pem(public_key)
    if not storage.exists(uri) or storage.read_bytes(uri) != pem:
        storage.write_bytes(uri, pem, content_type="application/x-pem-file")
    return uri


def load_public_keys(paths: list[str] | None = None, settings: settings_mod.Settings | None = None
                     ) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id: from the given PEM files, else every one exported next to the ledger."""
    if paths:
        uris = list(paths)
    else:
        root = public_keys_dir(settings)
        uris = [f.uri for f in storage.list_files(root) if f.relpath.endswith(".pem")] if _dir_exists(root) else []
    keys = {}
    for uri in uris:
        key = load_public_key(storage.read_bytes(uri))
        keys[key_id_of(key)] = key
    return keys


def _dir_exists(root: str) -> bool:
    if storage.is_s3(root):
        return True
    from pathlib import Path

    return Path(root).is_dir()
