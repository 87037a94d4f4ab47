"""Encryption at rest of direct identifiers in silver and gold, column by column.

Envelope scheme:

* Each table has data encryption keys (DEKs): 32 random bytes, stored only wrapped by the key
  provider (``provider.wrap(dek, purpose="dek/<table>")``) in
  ``<keys dir>/datakeys/<table>/dek-<id>.json``. Rotating the master key re-wraps DEKs
  (:func:`rewrap_data_keys`) without touching the data; rotating a DEK (:func:`rotate_data_key`)
  makes new writes use a new DEK while old ciphertexts keep naming theirs.
* A value is encrypted with AES-256-GCM under a per-batch subkey
  ``HKDF(DEK, salt=random 16 bytes)`` and a random 96-bit nonce, so a single DEK can encrypt far
  more than the 2^32 values NIST SP 800-38D allows per key with random nonces.
* The associated data is ``phmx/col/v1|<table>|<column>|<dek id>``: a ciphertext copied to
  another table or column, or altered in any bit, fails authentication.

Ciphertext (a string, so table contracts keep their ``string`` types):
``enc1.<dek id>.<base64url(salt16 | nonce12 | ciphertext | tag16)>``. Nulls stay null.

Deterministic lookups without decrypting: :func:`blind_index` adds ``<column>_bidx``, a keyed
HMAC of the normalised value (key ``blind-index/<purpose>/<column>``), on which the identity
stage can block and join. See docs/privacy.md for why a blind index rather than AES-SIV.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from phmx import storage
from phmx.errors import ConfigError, PrivacyError
from phmx.log import get_logger
from privacy.hmac_engine import Method, hmac_hex_column

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from privacy.keys import KeyProvider

log = get_logger("phmx.privacy.crypto")

PREFIX = "enc1"
_SALT_LEN = 16
_NONCE_LEN = 12
_TAG_LEN = 16
_TABLE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
_DEK_RE = re.compile(r"^dek-(\d+)\.json$")

#: Direct identifiers encrypted at rest in silver and gold (table -> columns).
DIRECT_IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "silver.person": ("cin", "ssn", "county_client_number", "given_name", "middle_name", "family_name",
                      "address_line", "phone", "email"),
    "gold.member": ("cin", "given_name", "family_name"),
}


def _check_table(table: str) -> str:
    if not table or not _TABLE_RE.match(table):
        raise ConfigError(f"table name {table!r} is not valid for column encryption",
                          hint="use layer.name, e.g. silver.person")
    return table


def _keys_root(provider: KeyProvider) -> str:
    root = getattr(provider, "keys_dir", None) or getattr(provider, "keys_root", None)
    if root is None:
        from phmx import settings as settings_mod

        root = settings_mod.load().keys_dir
    return str(root)


def _aad(table: str, column: str, dek_id: int) -> bytes:
    return f"phmx/col/v1|{table}|{column}|{dek_id}".encode()


def _subkey(dek: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"phmx/col/batch").derive(dek))


@dataclass
class DataKeyRing:
    """The DEKs of one table: load, create (atomically, first writer wins) and unwrap them."""

    table: str
    provider: Any
    root: str

    def __post_init__(self) -> None:
        _check_table(self.table)
        self._lock = threading.RLock()
        self._plain: dict[int, bytes] = {}

    @classmethod
    def for_table(cls, table: str, provider: KeyProvider) -> DataKeyRing:
        return cls(table, provider, storage.join(_keys_root(provider), "datakeys", table))

    def __repr__(self) -> str:
        return f"<DataKeyRing table={self.table!r}>"

    def _uri(self, dek_id: int) -> str:
        return storage.join(self.root, f"dek-{dek_id}.json")

    def ids(self) -> list[int]:
        found = []
        for f in storage.list_files(self.root):
            m = _DEK_RE.match(f.relpath)
            if m:
                found.append(int(m.group(1)))
        return sorted(found)

    def current_id(self) -> int:
        with self._lock:
            ids = self.ids()
            if not ids:
                self._create(1)
                ids = self.ids()
            return max(ids)

    def _purpose(self) -> str:
        return f"dek/{self.table}"

    def _record(self, dek_id: int, dek: bytes) -> bytes:
        wrapped = self.provider.wrap(dek, purpose=self._purpose())
        return json.dumps({
            "format": 1, "table": self.table, "dek_id": dek_id,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "provider": getattr(self.provider, "name", "custom"),
            "wrapped": base64.b64encode(wrapped).decode("ascii"),
        }, sort_keys=True).encode()

    def _create(self, dek_id: int) -> bool:
        """Write DEK ``dek_id`` unless it exists (exclusive create); True when this call made it."""
        dek = os.urandom(32)
        body = self._record(dek_id, dek)
        uri = self._uri(dek_id)
        if storage.is_s3(uri):
            bucket, key = storage.split_s3(uri)
            try:
                storage.s3_client().put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            except Exception as exc:  # noqa: BLE001 - a precondition failure means someone else won
                if "PreconditionFailed" in type(exc).__name__ or "PreconditionFailed" in str(exc):
                    return False
                raise PrivacyError(f"cannot store data key {dek_id} of {self.table}: {type(exc).__name__}") from None
        else:
            Path(self.root).mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(uri, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
        self._plain[dek_id] = dek
        log.info("created data key %d for %s", dek_id, self.table)
        return True

    def rotate(self) -> int:
        """Add a DEK and make it current (new writes use it; old ciphertexts still decrypt)."""
        with self._lock:
            new = self.current_id() + 1
            while not self._create(new):
                new += 1
            return new

    def dek(self, dek_id: int) -> bytes:
        with self._lock:
            if dek_id not in self._plain:
                uri = self._uri(dek_id)
                if not storage.exists(uri):
                    raise PrivacyError(f"data key {dek_id} of {self.table} not found")
                record = json.loads(storage.read_bytes(uri))
                self._plain[dek_id] = self.provider.unwrap(base64.b64decode(record["wrapped"]),
                                                           purpose=self._purpose())
            return self._plain[dek_id]

    def rewrap(self) -> int:
        """Re-wrap every DEK under the provider's current master version (after a master rotation)."""
        count = 0
        for dek_id in self.ids():
            storage.write_bytes(self._uri(dek_id), self._record(dek_id, self.dek(dek_id)),
                                content_type="application/json")
            if not storage.is_s3(self.root):
                os.chmod(self._uri(dek_id), 0o600)
            count += 1
        return count


def rotate_data_key(table: str, provider: KeyProvider) -> int:
    """Make a new DEK current for ``table``; returns its id."""
    return DataKeyRing.for_table(table, provider).rotate()


def rewrap_data_keys(provider: KeyProvider) -> int:
    """Re-wrap the DEKs of every table under the current master key version; returns how many."""
    root = storage.join(_keys_root(provider), "datakeys")
    tables = sorted({f.relpath.split("/", 1)[0] for f in storage.list_files(root) if "/" in f.relpath})
    return sum(DataKeyRing(t, provider, storage.join(root, t)).rewrap() for t in tables)


# ---- value-level functions (run inside the UDFs, and usable from Python) -------------------

def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encrypt_values(values: list[str | None], dek: bytes, dek_id: int, *, table: str, column: str) -> list[str | None]:
    """Encrypt a batch (one fresh subkey per batch; random nonce per value)."""
    salt = os.urandom(_SALT_LEN)
    aead = _subkey(dek, salt)
    aad = _aad(table, column, dek_id)
    head = f"{PREFIX}.{dek_id}."
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        nonce = os.urandom(_NONCE_LEN)
        out.append(head + _b64e(salt + nonce + aead.encrypt(nonce, v.encode("utf-8"), aad)))
    return out


def decrypt_values(values: list[str | None], ring_lookup: Any, *, table: str, column: str) -> list[str | None]:
    """Decrypt a batch; ``ring_lookup(dek_id) -> bytes``. Raises PrivacyError naming table/column only."""
    cache: dict[tuple[int, bytes], AESGCM] = {}
    out: list[str | None] = []
    where = f"{table}.{column}"
    for v in values:
        if v is None:
            out.append(None)
            continue
        try:
            prefix, id_text, body = v.split(".", 2)
            dek_id = int(id_text)
            raw = _b64d(body)
        except (ValueError, AttributeError):
            raise PrivacyError(f"value in {where} is not a phmx ciphertext") from None
        if prefix != PREFIX or len(raw) < _SALT_LEN + _NONCE_LEN + _TAG_LEN:
            raise PrivacyError(f"value in {where} is not a phmx ciphertext")
        salt, nonce, ct = raw[:_SALT_LEN], raw[_SALT_LEN:_SALT_LEN + _NONCE_LEN], raw[_SALT_LEN + _NONCE_LEN:]
        aead = cache.get((dek_id, salt))
        if aead is None:
            aead = cache[(dek_id, salt)] = _subkey(ring_lookup(dek_id), salt)
        try:
            out.append(aead.decrypt(nonce, ct, _aad(table, column, dek_id)).decode("utf-8"))
        except InvalidTag:
            raise PrivacyError(
                f"ciphertext in {where} failed authentication (altered, or moved from another table/column)"
            ) from None
    return out


def is_ciphertext(value: str | None) -> bool:
    return bool(value) and value.startswith(PREFIX + ".")  # type: ignore[union-attr]


# ---- engine ---------------------------------------------------------------------------------

def encrypt_columns(df: DataFrame, columns: list[str] | tuple[str, ...], provider: KeyProvider, *,
                    table: str) -> DataFrame:
    """Replace each of ``columns`` with its AES-256-GCM ciphertext bound to ``table``/column.

    A vectorised UDF per column; the current DEK is unwrapped once here and bound into the UDF.
    Other columns are untouched, so the table stays queryable on non-identifying columns.
    """
    from pyspark.sql.functions import pandas_udf

    _check_table(table)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"encrypt_columns: columns not in the frame: {', '.join(missing)}")
    ring = DataKeyRing.for_table(table, provider)
    dek_id = ring.current_id()
    dek = ring.dek(dek_id)

    def make(column: str):  # noqa: ANN202
        @pandas_udf("string")  # type: ignore[call-overload]
        def phmx_encrypt(values: pd.Series) -> pd.Series:
            vals = [None if v is None or v != v else v for v in values.tolist()]
            return pd.Series(encrypt_values(vals, dek, dek_id, table=table, column=column), dtype="object")

        return phmx_encrypt

    return df.withColumns({c: make(c)(df[c].cast("string")) for c in columns})


def decrypt_columns(df: DataFrame, columns: list[str] | tuple[str, ...], provider: KeyProvider, *,
                    table: str) -> DataFrame:
    """Reverse :func:`encrypt_columns`. Every DEK of the table is unwrapped here and bound in.

    A tampered or misplaced ciphertext makes the action fail with
    ``PrivacyError: ciphertext in <table>.<column> failed authentication`` (no value).
    """
    from pyspark.sql.functions import pandas_udf

    _check_table(table)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"decrypt_columns: columns not in the frame: {', '.join(missing)}")
    ring = DataKeyRing.for_table(table, provider)
    deks = {i: ring.dek(i) for i in ring.ids()}

    def lookup(dek_id: int) -> bytes:
        try:
            return deks[dek_id]
        except KeyError:
            raise PrivacyError(f"data key {dek_id} of {table} not found") from None

    def make(column: str):  # noqa: ANN202
        @pandas_udf("string")  # type: ignore[call-overload]
        def phmx_decrypt(values: pd.Series) -> pd.Series:
            vals = [None if v is None or v != v else v for v in values.tolist()]
            return pd.Series(decrypt_values(vals, lookup, table=table, column=column), dtype="object")

        return phmx_decrypt

    return df.withColumns({c: make(c)(df[c]) for c in columns})


def normalise_for_index(col: Any) -> Any:
    """Upper-case, trim and collapse inner whitespace: what the identity stage compares on."""
    from pyspark.sql import functions as F

    return F.regexp_replace(F.upper(F.trim(col.cast("string"))), r"\s+", " ")


def blind_index(df: DataFrame, columns: list[str] | tuple[str, ...], provider: KeyProvider, *,
                purpose: str = "identity", normalise: bool = True, suffix: str = "_bidx",
                method: Method = "udf", version: int | None = None) -> DataFrame:
    """Add ``<column><suffix>``: a keyed, deterministic index of each column for blocking/joins.

    Computed from the plaintext (before :func:`encrypt_columns`); equal normalised values give
    equal indexes, nothing else is revealed to someone without the key. Low-entropy columns
    (sex, birth year) should only be indexed in combination (concatenate them first).
    """
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"blind_index: columns not in the frame: {', '.join(missing)}")
    v = provider.current_version() if version is None else version
    out = {}
    for c in columns:
        key = provider.derive(f"blind-index/{purpose}/{c}", version=v)
        src = normalise_for_index(df[c]) if normalise else df[c]
        out[c + suffix] = hmac_hex_column(src, key, prefix=f"v{v}.", hex_chars=40, method=method)
    return df.withColumns(out)
