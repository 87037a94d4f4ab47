"""Ed25519 signing keys, one per purpose: the ledger's checkpoints and the feeds' manifests.

One mechanism, two keys. A separate key per purpose keeps a feed signature from ever standing in
for a ledger checkpoint (each message is also domain-separated by its caller) and lets either be
rotated alone. For each :class:`Purpose`:

* the private key never rests in the clear: its 32 raw bytes are wrapped by the hub's key provider
  (``privacy.keys.get_provider()``: a local key file in the embedded default, an AWS KMS envelope
  in production) under the purpose's provider label and stored as
  ``$PHMX_KEYS_DIR/<folder>/<key_id>.wrapped``, with ``current.json`` naming the key in use;
* the public key is published as ``<key_id>.pem`` (and ``<key_id>.json`` with its fingerprint)
  where the verifier looks: next to the ledger (``<ledger root>/audit/ledger_keys/``) for the
  ledger, under ``<publish root>/_keys/`` for feeds. Old public keys stay after a rotation, so old
  signatures keep verifying.

``key_id`` is ``ed25519-`` + the first 16 hex digits of SHA-256 over the raw public key; the
fingerprint (what a recipient compares out of band) is the whole SHA-256, in groups of four.
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
from phmx.errors import PrivacyError
from phmx.log import get_logger

log = get_logger(__name__)

_CURRENT = "current.json"
_lock = threading.Lock()


@dataclass(frozen=True)
class Purpose:
    """What a key signs: its name, the key provider's wrapping label and its key folder."""

    name: str
    provider_label: str
    folder: str

    def public_root(self, s: settings_mod.Settings) -> str:
        """Where verifiers find this purpose's public keys."""
        if self.name == "ledger":
            return storage.join(s.ledger_root, "audit", "ledger_keys")
        return storage.join(s.publish_root, "_keys")


LEDGER = Purpose("ledger", "phmx/ledger/ed25519-signing", "ledger-signing")
PUBLISH = Purpose("publish", "phmx/publish/ed25519-signing", "publish-signing")


# ---- public keys -------------------------------------------------------------------------------
def raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public_key: Ed25519PublicKey) -> str:
    return "ed25519-" + hashlib.sha256(raw_public(public_key)).hexdigest()[:16]


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:`` + hex SHA-256 of the raw public key, in groups of four for reading aloud."""
    h = hashlib.sha256(raw_public(public_key)).hexdigest()
    return "SHA256:" + ":".join(h[i:i + 4] for i in range(0, len(h), 4))


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_pem(pem: bytes) -> Ed25519PublicKey:
    """Parse a PEM public key; PrivacyError if it is not a valid Ed25519 key."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise PrivacyError("the public key is not a valid PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise PrivacyError("the public key is not an Ed25519 key")
    return key


def verify(public_key: Ed25519PublicKey, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` (raw 64 bytes) is ``public_key``'s signature of ``message``."""
    try:
        public_key.verify(signature, message)
        return True
    except InvalidSignature:
        return False


def verify_b64(public_key: Ed25519PublicKey, message: bytes, signature_b64: str) -> bool:
    """:func:`verify` for a base64 signature (as ledger checkpoints carry it)."""
    try:
        return verify(public_key, message, base64.b64decode(signature_b64, validate=True))
    except ValueError:
        return False


@dataclass(frozen=True)
class Publisher:
    """The public facts about a signing key (safe to hand to worker processes and reports)."""

    key_id: str
    fingerprint: str


@dataclass(frozen=True)
class Signer:
    """A loaded signing key; the private key stays in this object only."""

    key_id: str
    _private: Ed25519PrivateKey

    def sign(self, message: bytes) -> bytes:
        """The raw 64-byte signature (a feed's ``manifest.sig``)."""
        return self._private.sign(message)

    def sign_b64(self, message: bytes) -> str:
        """The signature in base64 (a ledger checkpoint's ``signature``)."""
        return base64.b64encode(self.sign(message)).decode("ascii")

    def public_key(self) -> Ed25519PublicKey:
        return self._private.public_key()

    def publisher(self) -> Publisher:
        return Publisher(self.key_id, fingerprint(self.public_key()))

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id!r})"


# ---- keys by purpose ---------------------------------------------------------------------------
def _private_dir(purpose: Purpose, s: settings_mod.Settings) -> str:
    return storage.join(s.keys_dir, purpose.folder)


def get_signer(purpose: Purpose, settings: settings_mod.Settings | None = None, *, create: bool = True) -> Signer:
    """The purpose's current signing key, created (and its public key published) on first use."""
    from privacy.keys import get_provider

    s = settings or settings_mod.load()
    provider = get_provider(s)
    folder = _private_dir(purpose, s)
    pointer = storage.join(folder, _CURRENT)
    with _lock:
        if storage.exists(pointer):
            key_id = json.loads(storage.read_bytes(pointer))["key_id"]
            blob = storage.read_bytes(storage.join(folder, f"{key_id}.wrapped"))
            private = Ed25519PrivateKey.from_private_bytes(provider.unwrap(blob, purpose=purpose.provider_label))
            if key_id_of(private.public_key()) != key_id:
                raise PrivacyError(f"the wrapped {purpose.name} signing key does not match its key id", hint=pointer)
        elif not create:
            raise PrivacyError(f"no {purpose.name} signing key exists yet")
        else:
            private = Ed25519PrivateKey.generate()
            key_id = key_id_of(private.public_key())
            raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                        serialization.NoEncryption())
            storage.write_bytes(storage.join(folder, f"{key_id}.wrapped"),
                                provider.wrap(raw, purpose=purpose.provider_label))
            storage.write_bytes(pointer, json.dumps({"key_id": key_id}).encode())
            log.info("created %s signing key %s", purpose.name, key_id)
        export_public_key(purpose, private.public_key(), s)
        return Signer(key_id, private)


def rotate(purpose: Purpose, settings: settings_mod.Settings | None = None) -> Signer:
    """Make a new signing key current. Old public keys stay published, so old signatures verify."""
    s = settings or settings_mod.load()
    pointer = storage.join(_private_dir(purpose, s), _CURRENT)
    if storage.exists(pointer):
        old = json.loads(storage.read_bytes(pointer))["key_id"]
        storage.write_bytes(storage.join(_private_dir(purpose, s), f"retired-{old}.json"), storage.read_bytes(pointer))
        storage.delete(pointer)
    return get_signer(purpose, s)


def export_public_key(purpose: Purpose, public_key: Ed25519PublicKey,
                      settings: settings_mod.Settings | None = None) -> str:
    """Publish ``<key_id>.pem`` and ``<key_id>.json`` (fingerprint) for verifiers (idempotent);
    return the PEM's location."""
    s = settings or settings_mod.load()
    root = purpose.public_root(s)
    kid = key_id_of(public_key)
    uri = storage.join(root, f"{kid}.pem")
    pem = public_pem(public_key)
    if not storage.exists(uri) or storage.read_bytes(uri) != pem:
        storage.write_bytes(uri, pem, content_type="application/x-pem-file")
    meta = storage.join(root, f"{kid}.json")
    if not storage.exists(meta):
        storage.write_text(meta, json.dumps({"key_id": kid, "alg": "Ed25519", "purpose": purpose.name,
                                             "fingerprint": fingerprint(public_key)}, indent=2),
                           content_type="application/json")
    return uri


def public_keys_root(purpose: Purpose, settings: settings_mod.Settings | None = None) -> str:
    return purpose.public_root(settings or settings_mod.load())


def load_public_keys(purpose: Purpose, paths: list[str] | None = None,
                     settings: settings_mod.Settings | None = None) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id: from the given PEM files, else every one the purpose published."""
    if paths:
        uris = list(paths)
    else:
        root = public_keys_root(purpose, settings)
        uris = [f.uri for f in storage.list_files(root) if f.relpath.endswith(".pem")] if _dir_exists(root) else []
    keys = {}
    for uri in uris:
        key = load_public_pem(storage.read_bytes(uri))
        keys[key_id_of(key)] = key
    return keys


def _dir_exists(root: str) -> bool:
    if storage.is_s3(root):
        return True
    from pathlib import Path

    return Path(root).is_dir()
