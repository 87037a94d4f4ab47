"""The golden record per member (gold.member) by survivorship rules from the settings.

Per field, one rule:

* ``trusted``: the value from the most trusted source (``survivorship.source_trust``, patterns
  on the submitter id, most trusted first), then the most recent record, then the smallest key;
* ``recent``: the value from the most recent record (then trust);
* ``frequent``: the value most records agree on (then trust, then recency).

Identifiers and dates come from the standardised features (a golden CIN is always a valid
CIN); names, race and ethnicity are as submitted (trimmed). When no record of a member carries
a county code, the county is the one most records with the member's ZIP carry.
"""

from __future__ import annotations

from fnmatch import fnmatch
from typing import TYPE_CHECKING

from jobs.identity import geo
from jobs.identity.config import IdentitySettings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: gold.member field -> (input column, standardised?)
FIELDS = {
    "cin": "cin", "given_name": "given_name_raw", "family_name": "family_name_raw",
    "birth_date": "birth_date", "sex": "sex", "zip": "zip5", "county_fips": "county_fips",
    "race": "race", "ethnicity": "ethnicity",
}


def trust_rank(sources: list[str], settings: IdentitySettings) -> dict[str, int]:
    """Rank of each source (0 = most trusted) from the fnmatch patterns."""
    out = {}
    for s in sources:
        rank = len(settings.source_trust)
        for i, pat in enumerate(settings.source_trust):
            if fnmatch(s, pat):
                rank = i
                break
        out[s] = rank
    return out


def _trust_col(ranks: dict[str, int], default: int) -> Column:
    from pyspark.sql import functions as F

    expr = None
    for s, r in sorted(ranks.items()):
        expr = F.when(F.col("source") == s, F.lit(r)) if expr is None else expr.when(F.col("source") == s, F.lit(r))
    return (expr.otherwise(F.lit(default)) if expr is not None else F.lit(default)).cast("int")


def _sort_key(*parts: Column) -> Column:
    """One string that sorts like the tuple of non-negative integers (and a final string key):
    the engine's min_by is several times faster on a string than on a struct."""
    from pyspark.sql import functions as F

    *nums, last = parts
    return F.concat(*[F.lpad(p.cast("string"), 10, "0") for p in nums], F.lit("|"), last)


def zip_counties(records: DataFrame) -> DataFrame:
    """``zip5, _zip_county``: per ZIP, the county most records with that ZIP carry (ties: the
    smallest code). ``records``: zip5, county_fips."""
    from pyspark.sql import functions as F

    zc = records.where(F.col("zip5").isNotNull() & F.col("county_fips").isNotNull()) \
        .groupBy("zip5", "county_fips").agg(F.count(F.lit(1)).alias("_n"))
    return zc.groupBy("zip5").agg(F.min_by("county_fips", F.struct(-F.col("_n"), F.col("county_fips")))
                                  .alias("_zip_county"))


def build(spark: SparkSession, records: DataFrame, settings: IdentitySettings, run_id: str,
          zip_county: DataFrame | None = None) -> DataFrame:
    """gold.member rows from ``records`` (member_id, source, source_person_id, record_date, the
    standardised features and the raw fields in :data:`FIELDS`). ``zip_county``
    (:func:`zip_counties` over every record) when ``records`` are only some members' (an
    incremental run): the county fallback counts every record, as a full run's does."""
    from pyspark.sql import functions as F

    sources = [r["source"] for r in records.select("source").distinct().collect()]
    ranks = trust_rank(sources, settings)
    recs = records.withColumn("_trust", _trust_col(ranks, len(settings.source_trust))) \
        .withColumn("_age", F.coalesce(F.datediff(F.lit("2999-12-31").cast("date"), F.col("record_date")),
                                       F.lit(10_000_000))) \
        .withColumn("_key", F.concat_ws("\u001f", "source", "source_person_id"))
    # trusted / recent fields: one aggregation (min_by ignores rows whose order key is null).
    single = []
    frequent = []
    for field, col in FIELDS.items():
        rule = settings.survivorship.get(field, "trusted")
        if rule == "frequent":
            frequent.append((field, col))
            continue
        order = _sort_key(F.col("_trust"), F.col("_age"), F.col("_key")) if rule == "trusted" \
            else _sort_key(F.col("_age"), F.col("_trust"), F.col("_key"))
        single.append(F.min_by(F.col(col), F.when(F.col(col).isNotNull(), order)).alias(field))
    members = recs.groupBy("member_id").agg(*single)
    # Its own aggregation: mixed with others, a distinct count made the engine slow and
    # memory-hungry (7 s and 2 GB more at 190k records).
    sources_per = recs.select("member_id", "source").distinct().groupBy("member_id") \
        .agg(F.count(F.lit(1)).cast("int").alias("source_count"))
    members = members.join(sources_per, "member_id")
    for field, col in frequent:
        per = recs.where(F.col(col).isNotNull()).groupBy("member_id", col).agg(
            F.count(F.lit(1)).alias("_n"), F.min("_trust").alias("_t"), F.min("_age").alias("_a"),
            F.min("_key").alias("_k"))
        order = _sort_key(F.lit(10_000_000) - F.col("_n"), F.col("_t"), F.col("_a"), F.col("_k"))
        picked = per.groupBy("member_id").agg(F.min_by(F.col(col), order).alias(field))
        members = members.join(picked, "member_id", "left")
    # County from the ZIP when no record of the member gave one: the county most records
    # with that ZIP carry.
    if zip_county is None:
        zip_county = zip_counties(records)
    members = members.join(zip_county, members["zip"] == zip_county["zip5"], "left") \
        .withColumn("county_fips", F.coalesce(F.col("county_fips"), F.col("_zip_county"))) \
        .drop("zip5", "_zip_county")
    members = members.withColumn("run_id", F.lit(run_id))
    return geo.add_lhj(spark, members)
