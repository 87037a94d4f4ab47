"""Key providers: where every secret the hub uses comes from, versioned for rotation.

Two implementations behind one small protocol:

* :class:`LocalKeyProvider` (embedded default): master keys are 32 random bytes in
  ``$PHMX_KEYS_DIR/master-v<N>.key`` (directory 0700, files 0600), created on first use.
* :class:`KmsKeyProvider` (when ``PHMX_KMS_KEY_ID`` is set): each version's master secret is an
  AWS KMS data key (``GenerateDataKey``); only its KMS-wrapped blob is stored
  (``$PHMX_KEYS_DIR/kms-master-v<N>.json``, local or ``s3://``), the plaintext is unwrapped with
  ``Decrypt`` once and cached in memory for the life of the process.

Both derive every working key with HKDF-SHA256 from the master secret of a given version, so
rotation (``rotate()``) adds a version and everything written under an older version still
decrypts/unwraps. ``wrap`` is AES-256-GCM under a key derived for the *purpose*; the blob header
carries the format, the provider kind and the key version, and the header plus purpose are the
associated data, so a blob cannot be replayed under another purpose or version.

Secrets never appear in ``repr``/``str``, log lines or exception messages: errors name the
purpose, the version and the file, never key material or plaintext.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from phmx import storage
from phmx.errors import ConfigError, PrivacyError
from phmx.log import get_logger

if TYPE_CHECKING:
    from phmx.settings import Settings

log = get_logger("phmx.privacy.keys")

__all__ = [
    "KeyProvider",
    "KmsKeyProvider",
    "LocalKeyProvider",
    "get_provider",
    "hkdf",
    "reset_provider_cache",
]

# Blob header: magic(4) | format(1) | kind(1) | version(4, big endian) | nonce(12) | ciphertext+tag
_MAGIC = b"PHXK"
_FORMAT = 1
_HEADER = struct.Struct(">4sBBI")
_NONCE_LEN = 12
_KIND = {"local": 1, "kms": 2}
_SALT = b"phmx/hkdf/v1"
_MASTER_RE = re.compile(r"^master-v(\d+)\.key$")
_KMS_RE = re.compile(r"^kms-master-v(\d+)\.json$")


def hkdf(secret: bytes, label: str, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) with the hub's fixed salt and ``label`` as the info string."""
    if not label:
        raise ConfigError("a key derivation label must not be empty")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=label.encode("utf-8")).derive(secret)


@runtime_checkable
class KeyProvider(Protocol):
    """Where keys come from. Implementations keep secrets out of repr, logs and exceptions."""

    name: str

    def wrap(self, plaintext: bytes, *, purpose: str) -> bytes:
        """Envelope-encrypt a small secret (a data key, a signing key) for ``purpose``."""
        ...

    def unwrap(self, blob: bytes, *, purpose: str) -> bytes:
        """Reverse :meth:`wrap`; raises PrivacyError if the blob was altered or the purpose differs."""
        ...

    def derive(self, label: str, *, version: int | None = None, length: int = 32) -> bytes:
        """HKDF from the current (or the given) master key version."""
        ...

    def current_version(self) -> int:
        """The master key version new material is written under."""
        ...


class _BaseProvider:
    """Shared wrap/unwrap/derive on top of ``_master(version)``; subclasses supply the masters."""

    name = "base"
    _kind = 0

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._masters_cache: dict[int, bytes] = {}

    # --- subclass hooks -------------------------------------------------------------------
    def _load_master(self, version: int) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def _versions(self) -> list[int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _create_version(self, version: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- versions -------------------------------------------------------------------------
    def current_version(self) -> int:
        with self._lock:
            versions = self._versions()
            if not versions:
                self._create_version(1)
                versions = self._versions() or [1]
            return max(versions)

    def versions(self) -> list[int]:
        """Every master key version present (old ones are kept so old blobs still open)."""
        self.current_version()
        return sorted(self._versions())

    def rotate(self) -> int:
        """Add a new master key version and make it current; returns the new version."""
        with self._lock:
            new = self.current_version() + 1
            self._create_version(new)
            log.info("key provider %s rotated to version %d", self.name, new)
            return new

    def _master(self, version: int) -> bytes:
        with self._lock:
            key = self._masters_cache.get(version)
            if key is None:
                key = self._load_master(version)
                self._masters_cache[version] = key
            return key

    # --- operations -----------------------------------------------------------------------
    def derive(self, label: str, *, version: int | None = None, length: int = 32) -> bytes:
        v = self.current_version() if version is None else int(version)
        return hkdf(self._master(v), label, length)

    def wrap(self, plaintext: bytes, *, purpose: str) -> bytes:
        version = self.current_version()
        header = _HEADER.pack(_MAGIC, _FORMAT, self._kind, version)
        nonce = os.urandom(_NONCE_LEN)
        key = self.derive(f"wrap:{purpose}", version=version)
        ct = AESGCM(key).encrypt(nonce, bytes(plaintext), header + purpose.encode("utf-8"))
        return header + nonce + ct

    def unwrap(self, blob: bytes, *, purpose: str) -> bytes:
        blob = bytes(blob)
        if len(blob) < _HEADER.size + _NONCE_LEN + 16:
            raise PrivacyError(f"wrapped secret for purpose {purpose!r} is truncated")
        magic, fmt, kind, version = _HEADER.unpack_from(blob)
        if magic != _MAGIC or fmt != _FORMAT:
            raise PrivacyError(f"wrapped secret for purpose {purpose!r} has an unknown format")
        if kind != self._kind:
            raise PrivacyError(
                f"wrapped secret for purpose {purpose!r} was made by another key provider kind",
                hint="configure the provider that wrapped it (PHMX_KMS_KEY_ID or the local keys dir)",
            )
        header = blob[: _HEADER.size]
        nonce = blob[_HEADER.size : _HEADER.size + _NONCE_LEN]
        try:
            key = self.derive(f"wrap:{purpose}", version=version)
            return AESGCM(key).decrypt(nonce, blob[_HEADER.size + _NONCE_LEN :], header + purpose.encode("utf-8"))
        except InvalidTag:
            raise PrivacyError(
                f"wrapped secret for purpose {purpose!r} (key version {version}) failed authentication"
            ) from None

    @staticmethod
    def blob_version(blob: bytes) -> int:
        """The master key version a wrapped blob was made under (from its header)."""
        return int(_HEADER.unpack_from(bytes(blob))[3])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling (e.g. into a UDF closure) must never serialise key material: rebuild from config.
        return (self._rebuild, self._rebuild_args())

    def _rebuild_args(self) -> tuple[Any, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def _rebuild(cls, *args: Any) -> _BaseProvider:
        return cls(*args)


class LocalKeyProvider(_BaseProvider):
    """Master keys as files in a local directory (0700), one file per version (0600)."""

    name = "local"
    _kind = _KIND["local"]

    def __init__(self, keys_dir: str | os.PathLike[str]) -> None:
        super().__init__()
        if storage.is_s3(str(keys_dir)):
            raise ConfigError(
                "the local key provider needs a local PHMX_KEYS_DIR",
                hint="set PHMX_KMS_KEY_ID to use AWS KMS, or point PHMX_KEYS_DIR at a local directory",
            )
        self.keys_dir = Path(keys_dir)

    def _rebuild_args(self) -> tuple[Any, ...]:
        return (str(self.keys_dir),)

    def _path(self, version: int) -> Path:
        return self.keys_dir / f"master-v{version}.key"

    def _versions(self) -> list[int]:
        if not self.keys_dir.is_dir():
            return []
        return [int(m.group(1)) for p in self.keys_dir.iterdir() if (m := _MASTER_RE.match(p.name))]

    def _create_version(self, version: int) -> None:
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.keys_dir, 0o700)
        path = self._path(version)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # another process created it first; use theirs
        try:
            os.write(fd, base64.b64encode(os.urandom(32)) + b"\n")
        finally:
            os.close(fd)
        log.info("created local master key version %d in %s", version, self.keys_dir)

    def _load_master(self, version: int) -> bytes:
        path = self._path(version)
        try:
            mode = path.stat().st_mode & 0o777
            raw = path.read_bytes().strip()
        except FileNotFoundError:
            raise PrivacyError(f"master key version {version} not found in {self.keys_dir}") from None
        if mode & 0o077:
            log.warning("key file %s is readable by others (mode %o); tightening to 0600", path.name, mode)
            os.chmod(path, 0o600)
        try:
            key = base64.b64decode(raw, validate=True)
        except ValueError:
            raise PrivacyError(f"master key file {path.name} is not valid") from None
        if len(key) != 32:
            raise PrivacyError(f"master key file {path.name} is not valid")
        return key


class KmsKeyProvider(_BaseProvider):
    """AWS KMS envelope: each master version is a KMS data key, stored only in wrapped form.

    ``GenerateDataKey`` makes a version; ``Decrypt`` opens it (once per process, then cached in
    memory); ``Encrypt`` re-wraps an existing secret under the current CMK (:meth:`rewrap_versions`
    after a CMK change). The encryption context binds each wrapped data key to phmx and its
    version, so CloudTrail shows which version a process opened.
    """

    name = "kms"
    _kind = _KIND["kms"]

    def __init__(self, key_id: str, keys_root: str, *, client: Any = None, region: str | None = None,
                 endpoint_url: str | None = None) -> None:
        super().__init__()
        self.key_id = key_id
        self.keys_root = str(keys_root)
        self._region = region
        self._endpoint = endpoint_url
        self._client = client

    def _rebuild_args(self) -> tuple[Any, ...]:
        return (self.key_id, self.keys_root, None, self._region, self._endpoint)

    @classmethod
    def _rebuild(cls, *args: Any) -> _BaseProvider:
        key_id, root, _client, region, endpoint = args
        return cls(key_id, root, region=region, endpoint_url=endpoint)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client(
                "kms",
                endpoint_url=self._endpoint
                or os.environ.get("AWS_ENDPOINT_URL_KMS")
                or os.environ.get("AWS_ENDPOINT_URL"),
                region_name=self._region or os.environ.get("AWS_REGION")
                or os.environ.get("AWS_DEFAULT_REGION") or "us-west-2",
            )
        return self._client

    def _uri(self, version: int) -> str:
        return storage.join(self.keys_root, f"kms-master-v{version}.json")

    @staticmethod
    def _context(version: int) -> dict[str, str]:
        return {"phmx:purpose": "master", "phmx:version": str(version)}

    def _versions(self) -> list[int]:
        found = []
        for f in storage.list_files(self.keys_root):
            m = _KMS_RE.match(f.relpath.rsplit("/", 1)[-1])
            if m and "/" not in f.relpath:
                found.append(int(m.group(1)))
        return found

    def _create_version(self, version: int) -> None:
        uri = self._uri(version)
        if storage.exists(uri):
            return
        try:
            resp = self.client.generate_data_key(
                KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=self._context(version)
            )
        except Exception as exc:  # noqa: BLE001 - re-raised without request details
            raise PrivacyError(f"KMS GenerateDataKey failed for version {version}: {type(exc).__name__}") from None
        record = {
            "format": 1,
            "version": version,
            "key_id": resp.get("KeyId", self.key_id),
            "ciphertext_blob": base64.b64encode(resp["CiphertextBlob"]).decode("ascii"),
        }
        if not storage.is_s3(self.keys_root):
            Path(self.keys_root).mkdir(parents=True, exist_ok=True)
        storage.write_text(uri, json.dumps(record, sort_keys=True), content_type="application/json")
        if not storage.is_s3(uri):
            os.chmod(uri, 0o600)
        with self._lock:
            # keep the plaintext we were just given: saves a Decrypt round trip
            self._masters_cache[version] = resp["Plaintext"]
        log.info("created KMS-wrapped master key version %d", version)

    def _load_master(self, version: int) -> bytes:
        uri = self._uri(version)
        if not storage.exists(uri):
            raise PrivacyError(f"KMS master key version {version} not found under the keys root")
        record = json.loads(storage.read_bytes(uri))
        try:
            resp = self.client.decrypt(
                CiphertextBlob=base64.b64decode(record["ciphertext_blob"]),
                EncryptionContext=self._context(version),
                KeyId=record.get("key_id", self.key_id),
            )
        except Exception as exc:  # noqa: BLE001
            raise PrivacyError(f"KMS Decrypt failed for master key version {version}: {type(exc).__name__}") from None
        return resp["Plaintext"]

    def rewrap_versions(self) -> int:
        """Re-wrap every stored version under the configured CMK (after moving to a new CMK)."""
        count = 0
        for v in self.versions():
            plaintext = self._master(v)
            try:
                resp = self.client.encrypt(KeyId=self.key_id, Plaintext=plaintext,
                                           EncryptionContext=self._context(v))
            except Exception as exc:  # noqa: BLE001
                raise PrivacyError(f"KMS Encrypt failed for master key version {v}: {type(exc).__name__}") from None
            record = {"format": 1, "version": v, "key_id": resp.get("KeyId", self.key_id),
                      "ciphertext_blob": base64.b64encode(resp["CiphertextBlob"]).decode("ascii")}
            storage.write_text(self._uri(v), json.dumps(record, sort_keys=True), content_type="application/json")
            count += 1
        return count


_CACHE: dict[tuple[str, str], _BaseProvider] = {}
_CACHE_LOCK = threading.Lock()


def get_provider(settings: Settings | None = None) -> LocalKeyProvider | KmsKeyProvider:
    """The configured provider: AWS KMS when ``PHMX_KMS_KEY_ID`` is set, else the local key dir.

    Providers are cached per (kind, location) for the process so data keys are unwrapped once.
    """
    if settings is None:
        from phmx import settings as settings_mod

        settings = settings_mod.load()
    with _CACHE_LOCK:
        if settings.kms_key_id:
            cache_key = ("kms", f"{settings.kms_key_id}|{settings.keys_dir}")
            prov = _CACHE.get(cache_key)
            if prov is None:
                prov = KmsKeyProvider(settings.kms_key_id, settings.keys_dir)
                _CACHE[cache_key] = prov
        else:
            cache_key = ("local", str(Path(settings.keys_dir).resolve()))
            prov = _CACHE.get(cache_key)
            if prov is None:
                prov = LocalKeyProvider(settings.keys_dir)
                _CACHE[cache_key] = prov
    return prov  # type: ignore[return-value]


def reset_provider_cache() -> None:
    """Forget cached providers (tests that switch PHMX_HOME or endpoints call this)."""
    with _CACHE_LOCK:
        _CACHE.clear()
