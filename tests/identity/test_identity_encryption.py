"""The identity stage on encrypted silver.person: the same members as on plaintext, gold.member
encrypted with the survivorship values inside, and a tampered ciphertext stops the run."""

from __future__ import annotations

import pandas as pd
import pytest

import jobs.identity as identity
from jobs.identity import golden, stage
from phmx import lakehouse, tables
from phmx.context import RunContext
from phmx.errors import PrivacyError
from phmx.synth import identity_records
from privacy.crypto import is_ciphertext, read_decrypted


@pytest.fixture(scope="module")
def small_population() -> tuple[pd.DataFrame, pd.DataFrame]:
    return identity_records.generate(120, seed=5)


def _partition(spark) -> set[frozenset[tuple[str, str]]]:
    xw = lakehouse.read(spark, tables.MEMBER_XWALK).toPandas()
    return {frozenset(zip(g["source"], g["source_person_id"], strict=True)) for _, g in xw.groupby("member_id")}


def test_same_members_as_plaintext_and_gold_member_holds_the_survivors(
        spark, phmx_home, tmp_path, small_population, write_person, monkeypatch):
    person, _ = small_population
    monkeypatch.setenv("PHMX_IDENTITY_MODE", "full")
    # Survivorship output, as computed in the engine before encryption.
    survivors: list[pd.DataFrame] = []
    real_build = golden.build

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        out = real_build(*args, **kwargs)
        survivors.append(out.select("member_id", "cin", "given_name", "family_name").toPandas())
        return out

    monkeypatch.setattr(golden, "build", spy)
    write_person(person)
    identity.run(spark, RunContext.new(run_id="enc"))
    encrypted_partition = _partition(spark)
    stored = lakehouse.read(spark, tables.MEMBER).collect()
    assert stored and all(is_ciphertext(m.given_name) for m in stored if m.given_name is not None)
    decrypted = read_decrypted(spark, "gold.member").select("member_id", "cin", "given_name", "family_name") \
        .toPandas().sort_values("member_id").reset_index(drop=True)
    expected = survivors[-1].sort_values("member_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(decrypted, expected, check_dtype=False)

    # The same records linked from plaintext (the stage's reader bypassed) in another lakehouse.
    monkeypatch.setenv("PHMX_HOME", str(tmp_path / "plain"))
    monkeypatch.setattr(stage, "read_person", lambda spark_, ctx, settings: identity_records.to_spark(spark_, person))
    identity.run(spark, RunContext.new(run_id="plain"))
    assert _partition(spark) == encrypted_partition


def test_a_tampered_ciphertext_stops_the_run_naming_only_the_column(spark, phmx_home, small_population,
                                                                    write_person, monkeypatch):
    person, _ = small_population
    write_person(person.head(40))
    rows = lakehouse.read(spark, tables.PERSON).toPandas()
    i = rows["family_name"].first_valid_index()
    victim = rows.loc[i, "family_name"]
    pos = len(victim) - 10  # a character inside the authenticated ciphertext
    rows.loc[i, "family_name"] = victim[:pos] + ("A" if victim[pos] != "A" else "B") + victim[pos + 1:]
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(rows, tables.PERSON.ddl), tables.PERSON),
                        tables.PERSON)
    monkeypatch.setenv("PHMX_IDENTITY_MODE", "full")
    with pytest.raises(PrivacyError) as err:
        identity.run(spark, RunContext.new(run_id="tampered"))
    message = str(err.value)
    assert "silver.person.family_name" in message and "failed authentication" in message
    assert victim not in message and person.loc[person["family_name"].notna(), "family_name"].iloc[0] not in message
    assert not lakehouse.exists(tables.MEMBER)  # nothing was written from the tampered table
    assert not any(p.name != "identity_tf" for p in (phmx_home / "lakehouse" / "work").glob("identity_*"))
