"""Column encryption at rest: round trip, authenticated, bound to table and column, rotation."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from phmx.errors import PrivacyError
from privacy import crypto
from privacy.crypto import blind_index, decrypt_columns, encrypt_columns

ROWS = [("91234567A", "Ana", "Fresno", 1), ("91234567A", "Luis", "Kern", 2), (None, "Mai", "Kern", 3)]


@pytest.fixture
def person(spark):
    return spark.createDataFrame(ROWS, "cin string, given_name string, county string, n int")


def _rows(df):
    return [tuple(r) for r in df.orderBy("n").collect()]


def test_round_trip_and_queryable(person, provider):
    enc = encrypt_columns(person, ["cin", "given_name"], provider, table="silver.person")
    stored = _rows(enc)
    assert all(crypto.is_ciphertext(r[0]) for r in stored if r[0])
    assert stored[2][0] is None
    assert stored[0][0] != stored[1][0]  # same plaintext, different ciphertexts (random nonce)
    assert not any("Ana" in str(r) or "91234567A" in str(r) for r in stored)
    # non-identifying columns still filter and group on the engine
    assert enc.filter(F.col("county") == "Kern").count() == 2
    dec = decrypt_columns(enc, ["cin", "given_name"], provider, table="silver.person")
    assert _rows(dec) == ROWS


def _engine_error(df) -> str:
    with pytest.raises(Exception) as err:  # noqa: PT011 - the engine wraps our PrivacyError
        df.collect()
    return str(err.value)


def test_tampering_is_detected_without_the_value(person, provider):
    enc = encrypt_columns(person, ["cin"], provider, table="silver.person")
    body = F.col("cin")
    flipped = F.concat(F.substring(body, 1, 12), F.translate(F.substring(body, 13, 1), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", "BCDEFGHIJKLMNOPQRSTUVWXYZAbcdefghijklmnopqrstuvwxyza1234567890_-"), F.expr("substring(cin, 14)"))
    bad = enc.withColumn("cin", F.when(F.col("n") == 1, flipped).otherwise(F.col("cin")))
    msg = _engine_error(decrypt_columns(bad, ["cin"], provider, table="silver.person"))
    assert "PrivacyError" in msg and "silver.person.cin" in msg and "failed authentication" in msg
    assert "91234567A" not in msg


def test_ciphertext_bound_to_table_and_column(person, provider):
    enc = encrypt_columns(person, ["cin"], provider, table="silver.person")
    moved = enc.withColumn("given_name", F.col("cin"))
    msg = _engine_error(decrypt_columns(moved.filter("n = 1"), ["given_name"], provider, table="silver.person"))
    assert "silver.person.given_name" in msg
    msg = _engine_error(decrypt_columns(enc.filter("n = 1"), ["cin"], provider, table="gold.member"))
    assert "data key" in msg or "failed authentication" in msg


def test_python_level_errors_name_only_the_location(provider):
    ring = crypto.DataKeyRing.for_table("silver.person", provider)
    dek_id = ring.current_id()
    ct = crypto.encrypt_values(["secret-value"], ring.dek(dek_id), dek_id, table="silver.person", column="ssn")[0]
    with pytest.raises(PrivacyError) as err:
        crypto.decrypt_values([ct[:-2] + ("A" if ct[-2] != "A" else "B") + ct[-1]], ring.dek,
                              table="silver.person", column="ssn")
    assert "silver.person.ssn" in str(err.value) and "secret" not in str(err.value)
    with pytest.raises(PrivacyError, match="not a phmx ciphertext"):
        crypto.decrypt_values(["plain text"], ring.dek, table="silver.person", column="ssn")


def test_data_key_and_master_rotation(person, provider):
    enc_old = encrypt_columns(person, ["cin"], provider, table="silver.person")
    old_rows = _rows(enc_old)
    assert crypto.rotate_data_key("silver.person", provider) == 2
    provider.rotate()
    assert crypto.rewrap_data_keys(provider) == 2
    enc_new = encrypt_columns(person, ["cin"], provider, table="silver.person")
    assert _rows(enc_new)[0][0].startswith("enc1.2.")
    both = enc_old.unionByName(enc_new.withColumn("n", F.col("n") + 10))
    dec = _rows(decrypt_columns(both, ["cin"], provider, table="silver.person"))
    assert [r[0] for r in dec] == [r[0] for r in ROWS] * 2
    assert old_rows[0][0].startswith("enc1.1.")


def test_blind_index_is_deterministic_and_normalised(spark, provider):
    df = spark.createDataFrame([("  maria  lopez", 1), ("MARIA LOPEZ", 2), ("Maria Lopes", 3)], "name string, n int")
    idx = [r["name_bidx"] for r in blind_index(df, ["name"], provider).orderBy("n").collect()]
    assert idx[0] == idx[1] != idx[2]
    native = [r["name_bidx"] for r in blind_index(df, ["name"], provider, method="native").orderBy("n").collect()]
    assert native == idx
    other = [r["name_bidx"] for r in blind_index(df, ["name"], provider, purpose="other").orderBy("n").collect()]
    assert other[0] != idx[0]


def test_direct_identifier_columns_exist_in_contracts():
    from phmx import tables

    for fqn, cols in crypto.DIRECT_IDENTIFIERS.items():
        assert set(cols) <= set(tables.by_fqn(fqn).column_names)


def test_executor_mode_ships_no_plaintext_key(person, provider, monkeypatch):
    """PHMX_DEK_UNWRAP=executor: the UDF closure carries the wrapped DEK and the provider's
    configuration only; the worker unwraps it, and the round trip is the same."""
    from pyspark import cloudpickle

    ring = crypto.DataKeyRing.for_table("silver.person", provider)
    dek = ring.dek(ring.current_id())
    source = crypto.DekSource.for_ring(ring, [ring.current_id()], mode="executor")
    shipped = cloudpickle.dumps(crypto._encrypt_udf(source, ring.current_id(), table="silver.person", column="cin").func)
    assert dek not in shipped and ring.wrapped(ring.current_id()) in shipped
    driver = crypto.DekSource.for_ring(ring, [ring.current_id()], mode="driver")
    assert dek in cloudpickle.dumps(driver)  # the default mode: the key is in the closure (in-process engine)
    for obj in (source, driver, ring, provider):
        assert dek.hex() not in repr(obj) and repr(dek) not in repr(obj)
    monkeypatch.setenv("PHMX_DEK_UNWRAP", "executor")
    crypto._EXECUTOR_DEKS.clear()
    enc = encrypt_columns(person, ["cin", "given_name"], provider, table="silver.person")
    assert _rows(decrypt_columns(enc, ["cin", "given_name"], provider, table="silver.person")) == ROWS
    monkeypatch.setenv("PHMX_DEK_UNWRAP", "nowhere")
    with pytest.raises(crypto.ConfigError, match="PHMX_DEK_UNWRAP"):
        crypto.unwrap_mode()


def test_fingerprint_reuses_ciphertexts_of_unchanged_rows_only(spark, provider):
    schema = "source string, source_person_id string, cin string, given_name string, family_name string, n int"
    first = spark.createDataFrame([("a", "1", "91234567A", "Ana", "Ruiz", 1), ("a", "2", None, "Mai", "Vo", 2)], schema)
    full = ("cin", "given_name", "family_name")
    enc1 = crypto.encrypt_for_write(first, "gold.member", provider, keys=("source", "source_person_id"))
    stored = spark.createDataFrame(enc1.orderBy("n").toPandas())
    again = crypto.encrypt_for_write(first, "gold.member", provider, keys=("source", "source_person_id"),
                                     previous=stored)
    assert _rows(again) == _rows(stored)  # same content: same ciphertexts and fingerprints
    changed = first.withColumn("given_name", F.when(F.col("n") == 2, F.lit("May")).otherwise(F.col("given_name")))
    enc2 = _rows(crypto.encrypt_for_write(changed, "gold.member", provider, keys=("source", "source_person_id"),
                                          previous=stored))
    old = _rows(stored)
    assert enc2[0] == old[0] and enc2[1][-1] != old[1][-1] and enc2[1][3] != old[1][3]
    assert all(crypto.is_ciphertext(v) for r in enc2 for v in r[2:5] if v is not None)
    assert _rows(crypto.decrypt_for_read(spark.createDataFrame(enc2, stored.schema), "gold.member", provider)) == \
        [(*r[:5], r[5], fp) for r, fp in zip(_rows(changed), [x[-1] for x in enc2], strict=True)]
    assert full == crypto.DIRECT_IDENTIFIERS["gold.member"]


def test_fingerprint_is_the_keyed_hash_of_the_rows_json(spark, provider):
    """The stored fingerprints of every table hash this exact message: a change to its bytes
    would make every stored row look changed (re-encrypted on the next write)."""
    import json

    from privacy.hmac_engine import Hmac
    from privacy.keys import hkdf

    schema = "source string, source_person_id string, cin string, given_name string, family_name string"
    rows = [("a", "1", None, "Zoë \"Ana\"", "Ruiz\\Vo"), ("a", "2", "91234567A", "Mai", "漢字")]
    enc = crypto.encrypt_for_write(spark.createDataFrame(rows, schema), "gold.member", provider,
                                   keys=("source", "source_person_id"))
    got = {r["source_person_id"]: r[crypto.FINGERPRINT_COLUMN] for r in enc.collect()}
    ring = crypto.DataKeyRing.for_table("gold.member", provider)
    dek_id = ring.current_id()
    mac = Hmac(hkdf(ring.dek(dek_id), "phmx/row-fingerprint/v1|gold.member"))
    for r in rows:
        message = json.dumps(list(r), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        assert got[r[1]] == f"{dek_id}." + mac.hexdigest(message)[:40]
