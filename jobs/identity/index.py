"""The encrypted identity index (``gold.identity_index``): what an incremental run needs of the
records it does not re-read.

An incremental run must find the existing records a new one shares a block with, and compare
their standardised features, without decrypting and standardising the whole of
``silver.person`` again. Kept in the clear, those features would be the one table holding
names, birth dates and numbers unencrypted; so each row keeps:

* ``source_fp``: a 64-bit hash of silver.person's keyed ``pii_fingerprint`` (made by conform
  over the row's direct identifiers) and of the row's plaintext person fields linkage reads
  (birth date, sex, ZIP, county, ...), then ``:`` and a hash of the fields only survivorship
  reads (record date, race, ethnicity). A changed or new source row is found by comparing it,
  **without decrypting anything**; a row whose second half alone changed is not re-linked, its
  member's golden record is rebuilt.
* ``bk``: per blocking rule (in the settings' order), ``HMAC-SHA256(K_rule, the rule's key values)`` (128 bits, hex),
  ``K_rule`` derived by the key provider (``blind-index/identity/<rule>``, as
  :func:`privacy.crypto.blind_index`). Blocking needs only equality, so it runs on these.
* ``tf_keys``: per term-frequency feature (in the settings' order) (given and family name), an HMAC of the value: a
  name's frequency is the count of equal keys, so the frequencies of every record are known
  without decrypting one.
* ``features``: the standardised feature row (JSON), AES-256-GCM encrypted under the index's
  own data key (:func:`privacy.crypto.encrypt_for_write`; associated data names the table and
  column). Only the rows of the blocks and members a run's new records touch are decrypted.
* ``digest``: a digest of the identity settings, nickname and address tables and key version
  the row was made under; a row made under others is treated as changed (standardised again).

The stage writes the index last, after the crosswalk, every row it writes tagged with the run
id, and then records both tables' Delta versions (:func:`record_written`); an incremental run
reads the index as it stood before its own run id (a re-run after a crash computes what the
first attempt would have) and uses it only when both tables stand where the last finished run
left them, else it runs in full (which rewrites the index). A full run rewrites the index; an
incremental run merges the rows of its new and changed records and deletes those of withdrawn
ones, the other rows (and their ciphertexts and run ids) untouched.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING

from jobs.identity import config
from phmx import lakehouse, tables
from privacy.crypto import FINGERPRINT_COLUMN, decrypt_for_read, encrypt_for_write
from privacy.hmac_engine import hmac_hex_column

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from privacy.keys import KeyProvider

INDEX = tables.IDENTITY_INDEX

#: std columns that are not features (kept in their own index columns or recomputed).
NOT_FEATURES = ("rid", "source", "source_person_id", "fingerprint")
HEX_CHARS = 32  # 128 bits: no two different keys of one rule collide in practice


def _f():  # noqa: ANN202 - the functions module, imported lazily
    from pyspark.sql import functions as F

    return F


def hmac_method() -> str:
    """``native`` (an engine expression) on the embedded engine, where no plan is shown or
    logged; the pandas UDF elsewhere (see :mod:`privacy.hmac_engine`)."""
    from phmx import settings as settings_mod

    return "native" if settings_mod.load().engine == "sail" else "udf"


def settings_digest(settings: config.IdentitySettings, provider: KeyProvider) -> str:
    """What standardisation and blocking keys depend on: settings, nickname and address tables,
    the blocking keys' master key version. Not the settings file's path: the same settings read
    from another install (a ``make dist`` bundle's site-packages, a moved checkout) would make
    every row look changed."""
    h = hashlib.sha256()
    h.update(repr(dataclasses.replace(settings, source_file="")).encode())
    h.update(repr(sorted(config.nicknames().items())).encode())
    h.update(repr(config.address_abbreviations()).encode())
    h.update(str(provider.current_version()).encode())
    return h.hexdigest()[:16]


#: silver.person fields that only survivorship reads, not standardisation or linkage: a change
#: to them alone (a roster re-sent with a new month's record date) rebuilds the member's golden
#: record without re-linking the record.
GOLDEN_ONLY = ("record_date", "race", "ethnicity")


def source_fp(person: DataFrame, fields: tuple[str, ...]) -> Column:
    """A changed-row detector over silver.person without decrypting it, ``<link>:<golden>``:
    a hash of its keyed ``pii_fingerprint`` (direct identifiers) and the plaintext ``fields``
    linkage reads, and a hash of the plaintext fields only survivorship reads
    (:data:`GOLDEN_ONLY`)."""
    F = _f()
    plain = [c for c in fields if c in person.columns and c not in tables.PERSON.encrypted]

    def digest(cols: list[str]) -> Column:
        return F.xxhash64(*[F.coalesce(F.col(c).cast("string"), F.lit("\u0000")) for c in cols]).cast("string")

    # The record key leads the second hash: over columns that are all null the embedded engine
    # folds the hash to one value, which it then cannot concatenate with a column (a panic).
    golden = ["source_person_id", *[c for c in plain if c in GOLDEN_ONLY]]
    return F.concat(digest([FINGERPRINT_COLUMN, *[c for c in plain if c not in GOLDEN_ONLY]]), F.lit(":"),
                    digest(golden))


def link_part(fp: Column) -> Column:
    """The linkage half of a :func:`source_fp` (a value written before the split is all of it,
    so it differs and the record is standardised once more)."""
    return _f().substring_index(fp, ":", 1)


def rule_key(keys: tuple[str, ...]) -> Column:
    """The values of a rule's keys as one unambiguous string (each length-prefixed); null when
    any is null (the rule then does not block the record, as on the plain keys)."""
    F = _f()
    parts = [F.concat(F.length(F.col(k).cast("string")).cast("string"), F.lit(":"), F.col(k).cast("string"))
             for k in keys]
    present = F.lit(True)
    for k in keys:
        present = present & F.col(k).isNotNull()
    return F.when(present, F.concat_ws("\u001f", *parts))


def tf_columns(settings: config.IdentitySettings) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.tf_column for c in settings.comparisons if c.tf))


def feature_columns(std: DataFrame) -> list[str]:
    """The standardised columns the index keeps (encrypted): what linkage reads. The fields only
    survivorship reads (:data:`GOLDEN_ONLY`) are left out: a run reads them from silver.person,
    and a re-sent record whose record date alone moved keeps its index row's ciphertext."""
    return [c for c in std.columns
            if c not in NOT_FEATURES and c not in GOLDEN_ONLY and not c.startswith("tf_") and c != "is_new"]


def rows(std: DataFrame, fps: DataFrame, settings: config.IdentitySettings, provider: KeyProvider, *,
         digest: str, run_id: str, previous: DataFrame | None = None) -> DataFrame:
    """Index rows (encrypted) for the standardised records ``std``; ``fps`` gives each record's
    ``source_fp`` by (source, source_person_id). ``previous``: the stored index, whose
    ciphertexts an unchanged row keeps."""
    F = _f()
    method = hmac_method()
    v = provider.current_version()
    bk = []
    for rule in settings.rules:
        key = provider.derive(f"blind-index/identity/{rule.name}", version=v)
        bk += [hmac_hex_column(rule_key(rule.keys), key, hex_chars=HEX_CHARS, method=method)]  # type: ignore[arg-type]
    tfk = []
    for c in tf_columns(settings):
        key = provider.derive(f"blind-index/identity/tf/{c}", version=v)
        tfk += [hmac_hex_column(F.col(c), key, hex_chars=HEX_CHARS, method=method)]  # type: ignore[arg-type]
    feats = feature_columns(std)
    out = std.join(fps.select("source", "source_person_id", "source_fp"), ["source", "source_person_id"], "left") \
        .select(
            "source", "source_person_id", "rid", "source_fp", "fingerprint", F.lit(digest).alias("digest"),
            F.array(*bk).cast("array<string>").alias("bk"), F.array(*tfk).cast("array<string>").alias("tf_keys"),
            F.to_json(F.struct(*feats)).alias("features"), F.lit(run_id).alias("run_id"))
    prev = previous if previous is not None and FINGERPRINT_COLUMN in previous.columns else None
    return encrypt_for_write(out, INDEX.fqn, provider, keys=INDEX.keys, previous=prev)


def key_columns(settings: config.IdentitySettings) -> list[Column]:
    """One column per blocking rule, ``bk_<i>``: the rule's keyed key from the ``bk`` array."""
    F = _f()
    return [F.get(F.col("bk"), i).alias(f"bk_{i}") for i in range(len(settings.rules))]


def keyed_settings(settings: config.IdentitySettings) -> config.IdentitySettings:
    """``settings`` whose rules block on the ``bk_<i>`` columns (:func:`key_columns`)."""
    import dataclasses

    return dataclasses.replace(settings, rules=tuple(dataclasses.replace(r, keys=(f"bk_{i}",))
                                                     for i, r in enumerate(settings.rules)))


def blocking_frame(index: DataFrame, settings: config.IdentitySettings) -> tuple[DataFrame, config.IdentitySettings]:
    """The index as blocking input: ``rid``, one column per rule (its keyed key) and ``is_new``
    when the frame has it; and settings whose rules block on those columns. Equal HMACs are
    equal keys, so the pairs are exactly those the plain keys give."""
    extra = ["is_new"] if "is_new" in index.columns else []
    return index.select("rid", *key_columns(settings), *extra), keyed_settings(settings)


def term_frequencies(index: DataFrame, settings: config.IdentitySettings) -> DataFrame:
    """``rid, tf_<col>...`` for every record of ``index``: the share of records with the same
    value (as :func:`jobs.identity.standardise.add_term_frequencies`, on the keyed values)."""
    F = _f()
    out = index.select("rid", "tf_keys")
    for i, c in enumerate(tf_columns(settings)):
        k = F.get(F.col("tf_keys"), i)
        counts = index.where(k.isNotNull()).groupBy(k.alias(f"_k_{c}")).agg(F.count(F.lit(1)).alias("_n"))
        total = counts.agg(F.sum("_n").alias("_total"))
        freq = counts.crossJoin(total).select(F.col(f"_k_{c}"), (F.col("_n") / F.col("_total")).alias(f"tf_{c}"))
        out = out.join(freq, F.get(out["tf_keys"], i) == freq[f"_k_{c}"], "left").drop(f"_k_{c}")
    return out.drop("tf_keys")


def features(index: DataFrame, std_schema: str, provider: KeyProvider) -> DataFrame:
    """Decrypt the ``features`` of the index rows given and unpack them: ``rid, source,
    source_person_id, fingerprint`` and the standardised features (``std_schema``: their DDL)."""
    F = _f()
    dec = decrypt_for_read(index.select("rid", "source", "source_person_id", "fingerprint", "features"), INDEX.fqn,
                           provider)
    return dec.select("rid", "source", "source_person_id", "fingerprint",
                      F.from_json(F.col("features"), std_schema).alias("_f")).select(
        "rid", "source", "source_person_id", "fingerprint", "_f.*")


def feature_schema(std: DataFrame) -> str:
    """DDL of the feature columns of ``std`` (what :func:`features` unpacks)."""
    fields = {f.name: f.dataType.simpleString() for f in std.schema.fields}
    return ", ".join(f"{c} {fields[c]}" for c in feature_columns(std))


def _state_uri() -> str:
    from phmx import settings as settings_mod
    from phmx import storage

    return storage.join(settings_mod.load().lakehouse_root, "gold", "_identity_model", "index_state.json")


def record_written(run_id: str) -> None:
    """Note, after a run's last write, the Delta versions of the crosswalk and the index it left:
    the next incremental run uses the index only when both tables still stand at these versions
    (before its own run id), i.e. nothing wrote one without the other since."""
    import json

    from phmx import storage

    state = {"run_id": run_id, "member_xwalk": lakehouse.version(tables.MEMBER_XWALK),
             "identity_index": lakehouse.version(INDEX)}
    storage.write_text(_state_uri(), json.dumps(state), content_type="application/json")


def usable(spark, run_id: str) -> bool:  # noqa: ANN001 - a SparkSession
    """An index exists and was written by the same finished run as the crosswalk this run starts
    from: both tables, as they stood before this run's id, are at the versions the last finished
    run recorded (:func:`record_written`). A run killed between its writes and followed by a run
    under another id, or tables written by anything else, make the next run a full one."""
    import json

    from phmx import storage

    if not (lakehouse.exists(INDEX) and lakehouse.exists(tables.MEMBER_XWALK) and storage.exists(_state_uri())):
        return False
    from jobs.identity.stage import version_before_run

    state = json.loads(storage.read_bytes(_state_uri()).decode("utf-8"))
    return (state.get("member_xwalk") == version_before_run(spark, tables.MEMBER_XWALK, run_id)
            and state.get("identity_index") == version_before_run(spark, INDEX, run_id))
