"""Who was a Medi-Cal member where, month by month: gold.member_month and its denominators.

Why from merged coverage islands: two plans (or a plan and a county) covering the same month
must count once, so member-months come from each gold member's coverage merged across plans
(:func:`jobs.measures.inputs.coverage_islands`), not from coverage rows.
Why residence per month: a member who moves from one LHJ to another mid-year belongs to the
first LHJ's denominator for the months before the move and to the second's after. Residence
comes from the dated person records every submitter sends (silver.person ``record_date``, the
submission month); each month takes the latest record dated on or before its last day, or the
earliest record when none is that old (the member's first record is the best guess for the
months before it). The golden record's LHJ is the fallback when no record has a ZIP or county.
"""

from __future__ import annotations

from datetime import date
from itertools import chain
from typing import TYPE_CHECKING

from jobs.identity.geo import add_lhj, county_name_column
from jobs.measures.strata import age_at, age_band, race_ethnicity, sex_category
from phmx import lakehouse
from phmx.tables import INDICATOR_DENOMINATOR, MEMBER_MONTH, MEMBER_XWALK, PERSON

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from jobs.indicators.catalogue import Catalogue, StandardPopulation
    from jobs.measures.config import MeasuresConfig
    from jobs.measures.inputs import Inputs

UNKNOWN = "unknown"
ATTRS = ("lhj", "zip", "age_band", "sex", "race_ethnicity", "language")


def language_column(cat: Catalogue, raw: Column) -> Column:
    """ISO 639 code or BCP 47 tag -> the published language name, ``Other`` or ``Unknown``."""
    from pyspark.sql import functions as F

    lang = cat.languages
    code = F.lower(F.trim(F.split(raw, "[-_]").getItem(0)))
    alias = F.create_map(*chain.from_iterable((F.lit(k), F.lit(v)) for k, v in lang.aliases.items()))
    iso = F.coalesce(F.element_at(alias, code), code)
    names = F.create_map(*chain.from_iterable((F.lit(k), F.lit(v)) for k, v in lang.names.items()))
    return (F.when(raw.isNull() | (F.trim(raw) == ""), F.lit("Unknown"))
            .otherwise(F.coalesce(F.element_at(names, iso), F.lit("Other"))))


def age_group_column(std: StandardPopulation, age: Column) -> Column:
    from pyspark.sql import functions as F

    expr = F.lit(None).cast("string")
    for g in reversed(std.groups):
        cond = age >= g.low if g.high is None else age.between(g.low, g.high)
        expr = F.when(cond, F.lit(g.label)).otherwise(expr)
    return expr


def age_cut_column(cuts: tuple[int, ...], age: Column) -> Column:
    """The largest cut at or below ``age`` (see Catalogue.age_cuts)."""
    from pyspark.sql import functions as F

    expr = F.lit(cuts[0])
    for c in cuts[1:]:
        expr = F.when(age >= c, F.lit(c)).otherwise(expr)
    return expr


def residence_records(spark: SparkSession, cat: Catalogue) -> DataFrame:
    """Each member's dated person records with a ZIP or county: member_id, record_date, zip5,
    county_fips, lhj (city or county), language (the member's latest non-empty one)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    xwalk = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    person = lakehouse.read(spark, PERSON).select(
        "source", "source_person_id", "record_date", "county_fips", "language",
        F.substring(F.regexp_replace(F.col("zip"), "[^0-9]", ""), 1, 5).alias("zip5"))
    linked = person.join(xwalk, ["source", "source_person_id"], "inner")
    # Ties (two records of one date) broken on the value itself, so every engine picks the same one.
    wl = Window.partitionBy("member_id").orderBy(
        F.when(F.col("language").isNull() | (F.trim("language") == ""), 1).otherwise(0),
        F.col("record_date").desc_nulls_last(), F.col("language").asc_nulls_last())
    linked = linked.withColumn("lang_pick", F.first("language").over(wl))
    linked = linked.withColumn("zip5", F.when(F.length("zip5") == 5, F.col("zip5")))
    geo = linked.where(F.col("zip5").isNotNull() | F.col("county_fips").isNotNull())
    geo = add_lhj(spark, geo, zip_col="zip5", fips_col="county_fips", out="rec_lhj")
    lang = linked.groupBy("member_id").agg(F.first("lang_pick").alias("raw_language"))
    return geo.select("member_id", "record_date", "zip5", "county_fips", "rec_lhj").join(lang, "member_id", "full") \
        .select("member_id", "record_date", "zip5", "county_fips", "rec_lhj",
                language_column(cat, F.col("raw_language")).alias("language"))


def months(inputs: Inputs, start: date, end: date) -> DataFrame:
    """(member_id, month, plan_count): every calendar month of [start, end] with medical coverage on
    at least one day, one row per member however many plans or spans cover it."""
    from pyspark.sql import functions as F

    lo, hi = F.lit(start).cast("date"), F.lit(end).cast("date")
    isl = inputs.islands.where((F.col("island_start") <= hi) & (F.col("island_end") >= lo))
    first = F.trunc(F.greatest("island_start", lo), "month")
    last = F.trunc(F.least("island_end", hi), "month")
    # a span ending before it starts (a sender's error the coverage feed lets through) covers no month
    mm = isl.where(F.col("island_end") >= F.col("island_start")).select(
        "member_id", F.explode(F.sequence(first, last, F.expr("interval 1 month"))).alias("month")).distinct()
    cov = inputs.coverage.where((F.col("start_date") <= hi) & (F.col("end_date") >= lo)).select(
        F.col("member_id").alias("_cm"), "plan_id", "start_date", "end_date")
    plans = mm.join(cov, (F.col("member_id") == F.col("_cm")) & (F.col("start_date") <= F.last_day("month"))
                    & (F.col("end_date") >= F.col("month")), "left") \
        .groupBy("member_id", "month").agg(F.countDistinct("plan_id").alias("plan_count"))
    return plans


def member_months(spark: SparkSession, inputs: Inputs, cat: Catalogue, std: StandardPopulation,
                  mcfg: MeasuresConfig, start: date, end: date, run_id: str) -> DataFrame:
    """gold.member_month rows for [start, end] (lazy)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    mm = months(inputs, start, end)
    res = residence_records(spark, cat).withColumnRenamed("member_id", "_rm")
    month_end = F.last_day("month")
    before = F.col("record_date") <= month_end
    # Records as near the month end as each other (same date, two sources): the one with a county,
    # then with a ZIP, then the lowest values. Without this the pick is the engine's row order, and
    # Sail and JVM Spark placed the same member in different counties.
    w = Window.partitionBy("member_id", "month").orderBy(
        F.when(F.col("rec_lhj").isNull(), 2).when(before, 0).otherwise(1),
        F.abs(F.datediff(F.col("record_date"), month_end)).asc_nulls_last(),
        F.col("county_fips").isNull(), F.col("zip5").isNull(),
        F.col("county_fips").asc_nulls_last(), F.col("zip5").asc_nulls_last(), F.col("rec_lhj").asc_nulls_last())
    picked = mm.join(res, F.col("member_id") == F.col("_rm"), "left") \
        .withColumn("_rn", F.row_number().over(w)).where(F.col("_rn") == 1).drop("_rn", "_rm")
    members = inputs.members.select("member_id", "birth_date", "sex", "race", "ethnicity",
                                    F.col("lhj").alias("gold_lhj"))
    df = picked.join(members, "member_id", "left")
    age = F.greatest(age_at("birth_date", "month"), F.lit(0))
    return df.select(
        "member_id", "month",
        F.coalesce("rec_lhj", "gold_lhj", F.lit("Unknown")).alias("lhj"),
        F.coalesce(county_name_column(F.col("county_fips")), F.lit("Unknown")).alias("county"),
        F.coalesce("zip5", F.lit(UNKNOWN)).alias("zip"),
        age.alias("age"),
        F.coalesce(age_group_column(std, age), F.lit(UNKNOWN)).alias("age_group"),
        F.coalesce(age_band(age), F.lit(UNKNOWN)).alias("age_band"),
        F.coalesce(age_cut_column(cat.age_cuts(), age), F.lit(0)).alias("age_cut"),
        sex_category(F.col("sex")).alias("sex"),
        race_ethnicity(mcfg.race, F.col("race"), F.col("ethnicity")).alias("race_ethnicity"),
        F.coalesce("language", F.lit("Unknown")).alias("language"),
        F.col("plan_count").cast("int").alias("plan_count"),
        F.lit(run_id).alias("run_id"),
    ).select(*[F.col(c).cast(t).alias(c) for c, t in MEMBER_MONTH.columns])


def period_label(grain: str) -> Column:
    from pyspark.sql import functions as F

    y = F.year("month").cast("string")
    if grain == "month":
        return F.date_format("month", "yyyy-MM")
    if grain == "quarter":
        return F.concat(y, F.lit("-Q"), F.quarter("month").cast("string"))
    return y


def denominators(mm: DataFrame, run_id: str) -> DataFrame:
    """gold.indicator_denominator from member-months: members and member-months per cell, per month,
    quarter and year."""
    from pyspark.sql import functions as F

    out = None
    for grain in ("month", "quarter", "year"):
        g = mm.withColumn("period", period_label(grain)).groupBy("period", *ATTRS).agg(
            F.countDistinct("member_id").alias("members"), F.count(F.lit(1)).alias("member_months")) \
            .withColumn("grain", F.lit(grain))
        out = g if out is None else out.unionByName(g)
    assert out is not None
    return out.withColumn("run_id", F.lit(run_id)).select(
        *[F.col(c).cast(t).alias(c) for c, t in INDICATOR_DENOMINATOR.columns])
