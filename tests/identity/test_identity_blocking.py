"""Blocking: a rule's own block-size cap, and the oversized-key counts it reports."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from jobs.identity import blocking, config


def _std(spark):  # noqa: ANN001, ANN202 - a SparkSession in, a DataFrame out
    # Eight records share family Soundex and ZIP (a common name in one ZIP); two of them also
    # share the birth year. Two more share a rare family name in the same ZIP.
    rows = [{"rid": i, "fn_sdx": "G620", "zip5": "90011", "birth_year": "1990" if i < 2 else str(1950 + i)}
            for i in range(8)]
    rows += [{"rid": 100 + i, "fn_sdx": "Z200", "zip5": "90011", "birth_year": str(1960 + i)} for i in range(2)]
    return spark.createDataFrame(pd.DataFrame(rows))


def _settings(rules: tuple[config.BlockingRule, ...]) -> config.IdentitySettings:
    return replace(config.load(), rules=rules, max_block_size=60)


def test_a_rule_with_its_own_cap_keeps_only_small_blocks(spark) -> None:
    rules = (config.BlockingRule("family_zip_year", ("fn_sdx", "zip5", "birth_year")),
             config.BlockingRule("family_zip", ("fn_sdx", "zip5"), max_block_size=6))
    pairs, stats = blocking.candidate_pairs(_std(spark), _settings(rules), with_stats=True)
    got = {(r["rid_l"], r["rid_r"]): (r["rule"], r["rules"]) for r in pairs.collect()}
    # The common name's block of 8 is over the rule's cap: only the pair the year rule finds;
    # the rare name's block of 2 is under it.
    assert got == {(0, 1): (0, 1), (100, 101): (1, 2)}
    assert stats is not None and stats.skipped_keys == {"family_zip_year": 0, "family_zip": 1}


def test_without_a_cap_of_its_own_the_settings_cap_applies(spark) -> None:
    rules = (config.BlockingRule("family_zip", ("fn_sdx", "zip5")),)
    pairs, stats = blocking.candidate_pairs(_std(spark), _settings(rules), with_stats=True)
    assert pairs.count() == 8 * 7 // 2 + 1
    assert stats is not None and stats.skipped_keys == {"family_zip": 0}


def test_the_cap_is_read_from_the_settings_file() -> None:
    s = config.load()
    capped = {r.name: r.max_block_size for r in s.rules if r.max_block_size}
    assert capped == {"family_zip": 6, "names_without_zip": 6}


def test_incremental_pairs_are_the_full_pairs_that_have_a_new_record(spark) -> None:
    from pyspark.sql import functions as F

    rules = (config.BlockingRule("family_zip_year", ("fn_sdx", "zip5", "birth_year")),
             config.BlockingRule("family_zip", ("fn_sdx", "zip5"), max_block_size=9))
    std = _std(spark).withColumn("is_new", F.col("rid").isin(1, 101))
    full, _ = blocking.candidate_pairs(std, _settings(rules))
    incremental, _ = blocking.candidate_pairs(std, _settings(rules), new_col="is_new")
    want = {tuple(r) for r in full.collect() if r["rid_l"] in (1, 101) or r["rid_r"] in (1, 101)}
    got = {tuple(r) for r in incremental.collect()}
    assert got == want and len(got) == 8


def test_long_input_gives_the_pairs_and_counts_of_the_per_rule_joins(spark) -> None:
    """The incremental run's blocks come as one row per record and rule (its keyed key): one
    self-join on (rule, key) gives the per-rule joins' pairs, first rules, bit masks and skipped
    keys, caps of the rules' own and the settings' included."""
    from pyspark.sql import functions as F

    rules = (config.BlockingRule("family_zip_year", ("fn_sdx", "zip5", "birth_year")),
             config.BlockingRule("family_zip", ("fn_sdx", "zip5"), max_block_size=6),
             config.BlockingRule("zip", ("zip5",)))
    std = _std(spark).withColumn("is_new", F.col("rid").isin(1, 101))
    wide, want_stats = blocking.candidate_pairs(std, _settings(rules), new_col="is_new", with_stats=True)
    # Each rule's key as one value, as the index keys them (one column per rule).
    keyed = std.select("rid", "is_new", *[F.concat_ws("|", *r.keys).alias(f"k{i}") for i, r in enumerate(rules)])
    long = keyed.select("rid", "is_new", F.posexplode(F.array(*[f"k{i}" for i in range(len(rules))]))
                        .alias("rule", "key"))
    one_key = tuple(replace(r, keys=(f"k{i}",)) for i, r in enumerate(rules))
    got, got_stats = blocking.candidate_pairs(long, _settings(one_key), new_col="is_new", with_stats=True, long=True)
    want = {tuple(r) for r in wide.collect()}
    assert {tuple(r) for r in got.collect()} == want and len(want) == 17
    assert want_stats is not None and got_stats is not None
    assert got_stats.skipped_keys == want_stats.skipped_keys == {"family_zip_year": 0, "family_zip": 1, "zip": 0}


def test_family_house_number_and_city_find_a_pair_no_other_rule_finds(spark) -> None:
    # A replaced given name, no birth date on one side and a mistyped ZIP: only the family name,
    # the house number and the city are left to block on (FEBRL 4 has two such true pairs).
    from jobs.identity import standardise

    df = spark.createDataFrame(
        [("s", "1", "Joshua", "Cosentino", "1955-05-19", "54 Wentworth Ave Stoney Creek", "Santa Rosa", "95405"),
         ("s", "2", "Zachary", "Cosentino", None, "54 Wentworth Avenue Stoneyq Creek", "Santa Rosa", "95450")],
        "source string, source_person_id string, given_name string, family_name string, birth_date string, "
        "address_line string, city string, zip string")
    s = config.load()
    std = standardise.standardise(df.withColumn("birth_date", df["birth_date"].cast("date")), s)
    a, b = std.collect()
    # Which rules' keys the two records share (every key non-null and equal):
    agree = [r.name for r in s.rules if all(a[k] is not None and a[k] == b[k] for k in r.keys)]
    assert agree == ["family_house_city"]
    only = replace(s, rules=tuple(r for r in s.rules if r.name == "family_house_city"))
    assert blocking.candidate_pairs(std, only)[0].count() == 1


def test_comparing_in_slices_gives_the_vectors_of_one_pass(spark, phmx_home, population) -> None:
    """``compare_chunk_pairs`` only bounds memory (and costs a pass over the records per slice):
    the comparison vectors are the same in any number of slices."""
    from jobs.identity import linkage
    from jobs.identity.model import Model, start_m
    from jobs.identity.stage import stage_settings
    from phmx import lakehouse
    from phmx.synth import identity_records

    person, _ = population
    settings = stage_settings()
    model = Model(m=start_m(settings), u=start_m(settings), prior=0.01)
    scratch = lakehouse.Scratch(spark, "identity_slices_test")
    try:
        std = linkage.prepare(identity_records.to_spark(spark, person), scratch, settings)
        pairs = blocking.candidate_pairs(std, settings, with_stats=True)
        pairs = (scratch.put(pairs[0], "pairs"), pairs[1])

        def vectors(chunk: int) -> pd.DataFrame:
            s = replace(settings, compare_chunk_pairs=chunk)
            g = linkage.score(spark, std, s, scratch, model=model, pairs=pairs).gammas.toPandas()
            return g.sort_values(["rid_l", "rid_r"]).reset_index(drop=True)

        one = vectors(10_000_000)
        assert len(one) > 100
        pd.testing.assert_frame_equal(one, vectors(max(1, len(one) // 3)))
    finally:
        scratch.drop()
