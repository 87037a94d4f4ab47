"""Encryption at rest of direct identifiers in silver and gold, column by column.

Envelope scheme:

* Each table has data encryption keys (DEKs): 32 random bytes, stored only wrapped by the key
  provider (``provider.wrap(dek, purpose="dek/<table>")``) in
  ``<keys dir>/datakeys/<table>/dek-<id>.json``. Rotating the master key re-wraps DEKs
  (:func:`rewrap_data_keys`) without touching the data; rotating a DEK (:func:`rotate_data_key`)
  makes new writes use a new DEK while old ciphertexts keep naming theirs.
* A value is encrypted with AES-256-GCM under a per-batch subkey
  ``HKDF(DEK, salt=random 16 bytes)``; within a batch the 96-bit nonce is a counter (unique per
  subkey by construction, and cheaper than drawing one per value). A fresh random subkey per
  batch keeps every key far below NIST SP 800-38D's limits, however much one DEK encrypts.
  The nonce is stored in the ciphertext, so the reader does not depend on how it was chosen.
* The associated data is ``phmx/col/v1|<table>|<column>|<dek id>``: a ciphertext copied to
  another table or column, or altered in any bit, fails authentication.

Ciphertext (a string, so table contracts keep their ``string`` types):
``enc1.<dek id>.<base64url(salt16 | nonce12 | ciphertext | tag16)>``. Nulls stay null.

Deterministic lookups without decrypting: :func:`blind_index` adds ``<column>_bidx``, a keyed
HMAC of the normalised value (key ``blind-index/<purpose>/<column>``), on which the identity
stage can block and join. See docs/privacy.md for why a blind index rather than AES-SIV.

Tables written by the pipeline (:data:`DIRECT_IDENTIFIERS`) go through :func:`encrypt_for_write`
and are read back through :func:`decrypt_for_read`. Random nonces make every encryption of a
value different, so a re-run would rewrite every ciphertext; instead each row carries
``pii_fingerprint``, ``<dek id>.HMAC(HKDF(DEK), row key + plaintext identifiers)``, and a writer
reuses the stored ciphertexts of a row whose fingerprint is unchanged. A re-run on the same
input leaves the table's content identical, and a row whose identifiers changed (or that was
written under an older DEK) is encrypted afresh. docs/encryption-at-rest.md has the whole design.

Where the DEK is unwrapped (``PHMX_DEK_UNWRAP``; unset, the engine route decides, see
:func:`unwrap_mode`): ``driver`` binds the plaintext DEK into the UDF closure, fine when the UDF
runs on this machine (the embedded engine, a local JVM); ``executor``
binds only the wrapped DEK and the provider's configuration (providers pickle without key
material), and each executor's Python worker unwraps it once through the provider (KMS Decrypt
under the executor's role), so no plaintext key travels in a task.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import threading
from collections.abc import Sequence
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
from phmx.tables import encrypted_columns
from privacy.hmac_engine import Hmac, Method, hmac_hex_column
from privacy.keys import hkdf

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from privacy.keys import KeyProvider

log = get_logger("phmx.privacy.crypto")

PREFIX = "enc1"
_SALT_LEN = 16
_NONCE_LEN = 12
_TAG_LEN = 16
_TABLE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
_DEK_RE = re.compile(r"^dek-(\d+)\.json$")

#: Direct identifiers encrypted at rest in silver and gold (table -> columns), from the
#: contracts in phmx/tables.py (``encrypted=``).
DIRECT_IDENTIFIERS: dict[str, tuple[str, ...]] = encrypted_columns()

#: The keyed fingerprint column every table in :data:`DIRECT_IDENTIFIERS` carries.
FINGERPRINT_COLUMN = "pii_fingerprint"
#: ``driver`` (plaintext DEK in the UDF closure) or ``executor`` (wrapped DEK; workers unwrap).
UNWRAP_MODES = ("driver", "executor")


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
                storage.s3_client().put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*",
                                               **storage.encryption_args(uri))
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

    def wrapped(self, dek_id: int) -> bytes:
        """DEK ``dek_id`` as stored: wrapped by the provider (safe to ship to executors)."""
        uri = self._uri(dek_id)
        if not storage.exists(uri):
            raise PrivacyError(f"data key {dek_id} of {self.table} not found")
        return base64.b64decode(json.loads(storage.read_bytes(uri))["wrapped"])

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


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64d(text: str) -> bytes:
    # binascii on bytes directly: base64.urlsafe_b64decode's wrappers were 40% of decryption time.
    return binascii.a2b_base64((text + "=" * (-len(text) % 4)).encode("ascii").translate(_FROM_URLSAFE))


def encrypt_values(values: list[str | None], dek: bytes, dek_id: int, *, table: str, column: str) -> list[str | None]:
    """Encrypt a batch: one fresh random subkey per batch, a counter nonce per value under it."""
    salt = os.urandom(_SALT_LEN)
    aead = _subkey(dek, salt)
    aad = _aad(table, column, dek_id)
    head = f"{PREFIX}.{dek_id}."
    out: list[str | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        nonce = i.to_bytes(_NONCE_LEN, "big")
        out.append(head + _b64e(salt + nonce + aead.encrypt(nonce, v.encode("utf-8"), aad)))
    return out


def decrypt_values(values: list[str | None], ring_lookup: Any, *, table: str, column: str) -> list[str | None]:
    """Decrypt a batch; ``ring_lookup(dek_id) -> bytes``. Raises PrivacyError naming table/column only."""
    cache: dict[tuple[int, bytes], AESGCM] = {}
    aads: dict[int, bytes] = {}
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
        aad = aads.get(dek_id)
        if aad is None:
            aad = aads[dek_id] = _aad(table, column, dek_id)
        try:
            out.append(aead.decrypt(nonce, ct, aad).decode("utf-8"))
        except InvalidTag:
            raise PrivacyError(
                f"ciphertext in {where} failed authentication (altered, or moved from another table/column)"
            ) from None
    return out


def is_ciphertext(value: str | None) -> bool:
    return bool(value) and value.startswith(PREFIX + ".")  # type: ignore[union-attr]


# ---- engine ---------------------------------------------------------------------------------

_EXECUTOR_DEKS: dict[tuple[str, str], bytes] = {}
_EXECUTOR_LOCK = threading.Lock()


def unwrap_mode() -> str:
    """Where DEKs are unwrapped: ``PHMX_DEK_UNWRAP`` = ``driver`` or ``executor``.

    Unset, the engine decides (:func:`phmx.engine.default_dek_unwrap`): ``driver`` only where
    the UDF runs on this machine (embedded Sail, a local classic session, a Spark Connect server
    on loopback), ``executor`` for every remote engine. ``driver`` towards a remote Spark Connect
    server over plain ``sc://`` is refused: the plaintext DEK would cross the network in the clear.
    """
    from phmx import engine
    from phmx import settings as settings_mod

    mode = (settings_mod.load().dek_unwrap or "").strip().lower() or engine.default_dek_unwrap()
    if mode not in UNWRAP_MODES:
        raise ConfigError(f"PHMX_DEK_UNWRAP={mode!r} is not one of {', '.join(UNWRAP_MODES)}",
                          hint="driver for the embedded engine, executor for spark_submit / EMR")
    if mode == "driver":
        engine.refuse_plaintext_keys_in_transit()
    return mode


class DekSource:
    """What a UDF closure carries to reach a table's DEKs: the plaintext DEKs (``driver`` mode)
    or only their wrapped blobs and the key provider (``executor`` mode).

    In ``executor`` mode the provider is pickled by configuration (no key material, see
    ``privacy.keys``) and each worker process unwraps a DEK once, on first use, and keeps it
    in memory for the life of the process. ``repr`` never shows keys or blobs.
    """

    def __init__(self, table: str, *, plain: dict[int, bytes] | None = None,
                 wrapped: dict[int, bytes] | None = None, provider: Any = None) -> None:
        self.table = table
        self._plain = plain
        self._wrapped = wrapped
        self._provider = provider

    @classmethod
    def for_ring(cls, ring: DataKeyRing, ids: Sequence[int], mode: str | None = None) -> DekSource:
        mode = mode or unwrap_mode()
        if mode == "executor":
            return cls(ring.table, wrapped={i: ring.wrapped(i) for i in ids}, provider=ring.provider)
        return cls(ring.table, plain={i: ring.dek(i) for i in ids})

    @property
    def mode(self) -> str:
        return "driver" if self._plain is not None else "executor"

    def __repr__(self) -> str:
        return f"<DekSource table={self.table!r} mode={self.mode}>"

    __str__ = __repr__

    def __call__(self, dek_id: int) -> bytes:
        if self._plain is not None:
            try:
                return self._plain[dek_id]
            except KeyError:
                raise PrivacyError(f"data key {dek_id} of {self.table} not found") from None
        blob = (self._wrapped or {}).get(dek_id)
        if blob is None:
            raise PrivacyError(f"data key {dek_id} of {self.table} not found")
        cache_key = (self.table, hashlib.sha256(blob).hexdigest())
        with _EXECUTOR_LOCK:
            dek = _EXECUTOR_DEKS.get(cache_key)
            if dek is None:
                dek = _EXECUTOR_DEKS[cache_key] = self._provider.unwrap(blob, purpose=f"dek/{self.table}")
        return dek


def _clean(values: pd.Series) -> list[str | None]:
    return [None if v is None or v != v else str(v) for v in values.tolist()]


def _encrypt_udf(source: DekSource, dek_id: int, *, table: str, column: str) -> Any:
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")  # type: ignore[call-overload]
    def phmx_encrypt(values: pd.Series) -> pd.Series:
        return pd.Series(encrypt_values(_clean(values), source(dek_id), dek_id, table=table, column=column),
                         dtype="object")

    return phmx_encrypt


def _decrypt_udf(source: DekSource, *, table: str, column: str) -> Any:
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")  # type: ignore[call-overload]
    def phmx_decrypt(values: pd.Series) -> pd.Series:
        return pd.Series(decrypt_values(_clean(values), source, table=table, column=column), dtype="object")

    return phmx_decrypt


def encrypt_columns(df: DataFrame, columns: list[str] | tuple[str, ...], provider: KeyProvider, *,
                    table: str) -> DataFrame:
    """Replace each of ``columns`` with its AES-256-GCM ciphertext bound to ``table``/column.

    A vectorised UDF per column with the table's current DEK (see :class:`DekSource` for how it
    reaches the UDF). Other columns are untouched, so the table stays queryable on
    non-identifying columns.
    """
    _check_table(table)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"encrypt_columns: columns not in the frame: {', '.join(missing)}")
    ring = DataKeyRing.for_table(table, provider)
    dek_id = ring.current_id()
    source = DekSource.for_ring(ring, [dek_id])
    return df.withColumns({c: _encrypt_udf(source, dek_id, table=table, column=c)(df[c].cast("string"))
                           for c in columns})


def decrypt_columns(df: DataFrame, columns: list[str] | tuple[str, ...], provider: KeyProvider, *,
                    table: str) -> DataFrame:
    """Reverse :func:`encrypt_columns` with any of the table's DEKs.

    A tampered or misplaced ciphertext makes the action fail with
    ``PrivacyError: ciphertext in <table>.<column> failed authentication`` (no value); run the
    action inside :func:`decryption_errors` to get that PrivacyError rather than the engine's.
    """
    _check_table(table)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"decrypt_columns: columns not in the frame: {', '.join(missing)}")
    ring = DataKeyRing.for_table(table, provider)
    source = DekSource.for_ring(ring, ring.ids())
    return df.withColumns({c: _decrypt_udf(source, table=table, column=c)(df[c]) for c in columns})


# ---- tables written by the pipeline: fingerprint, ciphertext reuse, reading back ------------

#: The fingerprint's message: the row's values as a compact JSON array. One encoder made once:
#: ``json.dumps`` with options builds a new encoder per call, which was half the cost of a
#: fingerprint (the bytes are the same).
_ROW_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _fingerprint_udf(source: DekSource, dek_id: int, *, table: str) -> Any:
    from pyspark.sql.functions import pandas_udf

    label = f"phmx/row-fingerprint/v1|{table}"
    head = f"{dek_id}."

    @pandas_udf("string")  # type: ignore[call-overload]
    def phmx_fingerprint(*columns: pd.Series) -> pd.Series:
        mac = Hmac(hkdf(source(dek_id), label))
        rows = zip(*[_clean(c) for c in columns], strict=True)
        out = [head + mac.hexdigest(_ROW_JSON(r).encode("utf-8"))[:40] for r in rows]
        return pd.Series(out, dtype="object")

    return phmx_fingerprint


def encrypt_for_write(df: DataFrame, table: str, provider: KeyProvider, *, keys: Sequence[str],
                      previous: DataFrame | None = None) -> DataFrame:
    """Encrypt ``table``'s direct identifiers in ``df`` and set its ``pii_fingerprint``.

    ``pii_fingerprint`` is ``<dek id>.`` + HMAC-SHA256 (key: HKDF of the table's current DEK)
    over the row's ``keys`` and the plaintext of its direct identifiers. With ``previous`` (the
    table as stored), a row whose fingerprint equals the stored one keeps the stored
    ciphertexts, so writing the same content again changes nothing; any other row is
    encrypted afresh under the current DEK (a DEK rotation re-encrypts on the next write).
    """
    from pyspark.sql import functions as F

    _check_table(table)
    cols = DIRECT_IDENTIFIERS.get(table)
    if not cols:
        raise ConfigError(f"{table} has no columns encrypted at rest", hint="see phmx/tables.py")
    missing = [c for c in (*keys, *cols) if c not in df.columns]
    if missing:
        raise ConfigError(f"encrypt_for_write: columns not in the frame: {', '.join(missing)}")
    ring = DataKeyRing.for_table(table, provider)
    dek_id = ring.current_id()
    source = DekSource.for_ring(ring, [dek_id])
    base = [c for c in df.columns if c != FINGERPRINT_COLUMN]
    fp = _fingerprint_udf(source, dek_id, table=table)(*[df[c].cast("string") for c in (*keys, *cols)])
    out = df.select(*base, fp.alias(FINGERPRINT_COLUMN))

    def encrypt(c: str) -> Column:
        return _encrypt_udf(source, dek_id, table=table, column=c)(F.col(c).cast("string"))

    if previous is None or FINGERPRINT_COLUMN not in previous.columns:
        return out.withColumns({c: encrypt(c) for c in cols})
    prev = previous.select(*[F.col(k).alias(f"_prev_key_{k}") for k in keys],
                           F.col(FINGERPRINT_COLUMN).alias("_prev_fp"),
                           *[F.col(c).alias(f"_prev_{c}") for c in cols])
    on = None
    for k in keys:
        cond = out[k] == prev[f"_prev_key_{k}"]
        on = cond if on is None else on & cond
    joined = out.join(prev, on, "left")
    same = F.coalesce(F.col("_prev_fp") == F.col(FINGERPRINT_COLUMN), F.lit(False))
    joined = joined.withColumns({c: F.when(same, F.col(f"_prev_{c}")).otherwise(encrypt(c)) for c in cols})
    return joined.select(*base, FINGERPRINT_COLUMN)


def decrypt_for_read(df: DataFrame, table: str, provider: KeyProvider) -> DataFrame:
    """``df`` (rows of ``table``) with its encrypted columns that are present decrypted."""
    cols = [c for c in DIRECT_IDENTIFIERS.get(table, ()) if c in df.columns]
    return decrypt_columns(df, cols, provider, table=table) if cols else df


def read_decrypted(spark: SparkSession, table: str, provider: KeyProvider | None = None) -> DataFrame:
    """Read a lakehouse table with its direct identifiers decrypted (the identity stage only)."""
    from phmx import lakehouse
    from privacy.keys import get_provider

    return decrypt_for_read(lakehouse.read(spark, table), table, provider or get_provider())


_ENGINE_MESSAGE = re.compile(
    r"(ciphertext in [a-z0-9_.]+ failed authentication[^\n]*?\)"
    r"|value in [a-z0-9_.]+ is not a phmx ciphertext"
    r"|data key \d+ of [a-z0-9_.]+ not found)")


def privacy_error_from(exc: BaseException) -> PrivacyError | None:
    """The PrivacyError a decryption UDF raised inside the engine, rebuilt on this side.

    The engine wraps it in its own exception (with a Python traceback); only the message this
    module wrote (which names the table and column, never a value) is kept.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:  # the engine error may be wrapped (EngineError)
        seen.add(id(cur))
        if isinstance(cur, PrivacyError):
            return cur
        m = _ENGINE_MESSAGE.search(str(cur))
        if m:
            return PrivacyError(m.group(0), hint="restore the table from a clean version "
                                "(phmx.lakehouse.restore) or re-run conform from bronze")
        cur = cur.__cause__ or cur.__context__
    return None


class decryption_errors:  # noqa: N801 - used as a context manager, reads as a phrase
    """``with decryption_errors(): ...``: a failed decryption in the engine surfaces as PrivacyError."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, PrivacyError):
            return
        err = privacy_error_from(exc)
        if err is not None:
            raise err from None


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
