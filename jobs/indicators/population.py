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
from typing import TYPE_CHECKING

from jobs.identity.geo import add_lhj, county_name_column
from jobs.measures.strata import age_at, age_band, race_ethnicity, sex_category
from phmx import lakehouse
from phmx.tables import INDICATOR_DENOMINATOR, MEMBER_MONTH, MEMBER_XWALK, PERSON

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import Column, DataFrame, SparkSession

    from jobs.indicators.catalogue import Catalogue, StandardPopulation
    from jobs.measures.config import MeasuresConfig
    from jobs.measures.inputs import Inputs

    #: writes a frame once and returns it read back (lakehouse.Scratch.put_parquet)
    Put = Callable[[DataFrame, str], DataFrame]

UNKNOWN = "unknown"
ATTRS = ("lhj", "zip", "age_band", "sex", "race_ethnicity", "language")


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


#: separates the parts of a record's tie-break key (below every character a ZIP, FIPS code or LHJ
#: name holds, so comparing two keys compares their parts in order)
_SEP = "\x01"


def _linked_person(spark: SparkSession) -> DataFrame:
    """silver.person records with their gold member: member_id, record_date, county_fips, language, zip5."""
    from pyspark.sql import functions as F

    xwalk = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    person = lakehouse.read(spark, PERSON).select(
        "source", "source_person_id", "record_date", "county_fips", "language",
        F.substring(F.regexp_replace(F.col("zip"), "[^0-9]", ""), 1, 5).alias("zip5"))
    return person.join(xwalk, ["source", "source_person_id"], "inner").drop("source", "source_person_id")


def language_names(spark: SparkSession, cat: Catalogue) -> DataFrame:
    """(_code, _language): every code the catalogue knows (an ISO 639 code or an alias of one) and
    the published name it stands for. A tag is reduced to its language first (``es-MX`` -> ``es``),
    an alias to its ISO 639 code; a code not listed is ``Other``, an empty value ``Unknown``."""
    lang = cat.languages
    codes = sorted(set(lang.aliases) | set(lang.names))
    return spark.createDataFrame([(c, lang.names.get(lang.aliases.get(c, c), "Other")) for c in codes],
                                 "_code string, _language string")


def member_language(spark: SparkSession, linked: DataFrame, cat: Catalogue) -> DataFrame:
    """(member_id, language): the published language of each member's latest non-empty language
    (ties of one date broken on the value itself, so every engine picks the same one).

    One string minimum per member: the key is (empty?, the date inverted, the value) written so
    that text order is that order; a sort of every record per member cost more. The name comes
    from a join with the catalogue's codes (:func:`language_names`): a literal map in the
    expression, the obvious form, is built again by the engine for every row."""
    from pyspark.sql import functions as F

    empty = F.col("language").isNull() | (F.trim("language") == "")
    inverted = F.coalesce(F.lpad((F.lit(99999999) - F.date_format("record_date", "yyyyMMdd").cast("int"))
                                 .cast("string"), 8, "0"), F.lit("~~~~~~~~"))
    key = F.concat(F.when(empty, F.lit("1")).otherwise(F.lit("0")), inverted, F.coalesce("language", F.lit("")))
    raw = linked.groupBy("member_id").agg(F.min(key).alias("_k")).select(
        "member_id", F.substring("_k", 10, 1 << 20).alias("_raw"))
    code = F.lower(F.trim(F.split(F.col("_raw"), "[-_]").getItem(0)))
    named = raw.join(F.broadcast(language_names(spark, cat)), code == F.col("_code"), "left")
    return named.select("member_id", F.when(F.col("_raw").isNull() | (F.trim("_raw") == ""), F.lit("Unknown"))
                        .otherwise(F.coalesce("_language", F.lit("Other"))).alias("language"))


def residence_records(spark: SparkSession, linked: DataFrame | None = None) -> DataFrame:
    """Each member's dated person records with a ZIP or county: member_id, record_date, zip5,
    county_fips, rec_lhj (city or county), county_name."""
    from pyspark.sql import functions as F

    linked = _linked_person(spark) if linked is None else linked
    linked = linked.withColumn("zip5", F.when(F.length("zip5") == 5, F.col("zip5")))
    geo = linked.where(F.col("zip5").isNotNull() | F.col("county_fips").isNotNull())
    geo = add_lhj(spark, geo, zip_col="zip5", fips_col="county_fips", out="rec_lhj")
    return geo.select("member_id", "record_date", "zip5", "county_fips", "rec_lhj",
                      county_name_column(F.col("county_fips")).alias("county_name"))


def residence_by_month(records: DataFrame, start: date, end: date, put: Put | None = None) -> DataFrame:
    """(member_id, month, zip5, county_fips, rec_lhj, county_name) for every month of [start, end]
    of every member with a record: the latest record dated on or before the month's last day, else
    the member's earliest record. Between records of one date: one with a county, then one with a
    ZIP, then the lowest values (so every engine picks the same one). Records whose ZIP and county
    name no LHJ count only for a member with no other record; undated ones only for a member with
    no dated one.

    Why not a window over member x month x record (the obvious form): that sorts every member-month
    once per record, and at a million members it was most of the stage's time and memory. Here each
    member's records become intervals of months ([its month, the next record's month)), and the
    intervals are expanded to months: one row per member and month, joined by key. ``put`` writes
    the records' picks (one per member and date) once for the three reads below (the engine
    computes a frame again for every read)."""
    from pyspark.sql import functions as F

    lo = F.lit(date(start.year, start.month, 1)).cast("date")
    hi = F.lit(date(end.year, end.month, 1)).cast("date")
    tier = F.col("rec_lhj").isNull().cast("int") * 2 + F.col("record_date").isNull().cast("int")
    r = records.withColumn("_tier", tier)
    r = r.join(r.groupBy("member_id").agg(F.min("_tier").alias("_tier")), ["member_id", "_tier"], "inner")

    def flag(c: str) -> Column:
        return F.when(F.col(c).isNull(), F.lit("1")).otherwise(F.lit("0"))

    key = F.concat_ws(_SEP, flag("county_fips"), flag("zip5"), F.coalesce("county_fips", F.lit("")),
                      F.coalesce("zip5", F.lit("")), flag("rec_lhj"), F.coalesce("rec_lhj", F.lit("")),
                      flag("county_name"), F.coalesce("county_name", F.lit("")))
    parts = F.split(F.col("_k"), _SEP)

    def part(flag_at: int, value_at: int) -> Column:
        return F.when(parts.getItem(flag_at) == "1", F.lit(None).cast("string")).otherwise(parts.getItem(value_at))

    # the pick of each member and date, its values read back from the key
    values = ["county_fips", "zip5", "rec_lhj", "county_name"]
    per_date = r.groupBy("member_id", "record_date").agg(F.min(key).alias("_k")).select(
        "member_id", "record_date", *[part(f, v).alias(c) for c, (f, v) in
                                      zip(values, [(0, 2), (1, 3), (4, 5), (6, 7)], strict=True)])
    if put is not None:
        per_date = put(per_date, "residence_picks")
    dated = per_date.where(F.col("record_date").isNotNull())
    undated = per_date.where(F.col("record_date").isNull()).select(
        "member_id", *values, lo.alias("_from"), hi.alias("_to"))
    # the latest record of each month a member has records in, and the month of the next such record
    latest = dated.groupBy("member_id", F.trunc("record_date", "month").alias("_eff")).agg(
        F.max("record_date").alias("record_date")).join(dated, ["member_id", "record_date"], "inner")
    effs = latest.select("member_id", "_eff")
    later = effs.join(effs.select(F.col("member_id").alias("_m2"), F.col("_eff").alias("_e2")),
                      (F.col("member_id") == F.col("_m2")) & (F.col("_e2") > F.col("_eff")), "inner") \
        .groupBy("member_id", "_eff").agg(F.min("_e2").alias("_next"))
    spans = latest.join(later, ["member_id", "_eff"], "left").select(
        "member_id", *values, F.greatest("_eff", lo).alias("_from"),
        F.least(F.coalesce(F.add_months("_next", -1), hi), hi).alias("_to"))
    # the months before a member's first record: that (earliest) record
    first = dated.groupBy("member_id").agg(F.min("record_date").alias("record_date")) \
        .join(dated, ["member_id", "record_date"], "inner").select(
            "member_id", *values, lo.alias("_from"),
            F.least(F.add_months(F.trunc("record_date", "month"), -1), hi).alias("_to"))
    intervals = spans.unionByName(first).unionByName(undated).where(F.col("_from") <= F.col("_to"))
    return intervals.select(
        "member_id", F.explode(F.sequence("_from", "_to", F.expr("interval 1 month"))).alias("month"), *values)


def months(inputs: Inputs, start: date, end: date) -> DataFrame:
    """(member_id, month, plan_count): every calendar month of [start, end] with medical coverage on
    at least one day, one row per member however many plans or spans cover it.

    From the coverage rows expanded to their months, not from the merged islands: a month is
    covered when any row covers a day of it, which is the islands' months, without the window
    that merges them. A row ending before it starts (a sender's error the coverage feed lets
    through) covers no month, but its plan counts in plan_count for a month others cover when it
    starts and ends in that month (as a row overlapping the month would). Plans are counted in
    two group-bys (member x month x plan, then member x month), not with a distinct count, which
    the engine runs with a hash set per group."""
    from pyspark.sql import functions as F

    lo, hi = F.lit(start).cast("date"), F.lit(end).cast("date")
    cov = inputs.coverage.where((F.col("start_date") <= hi) & (F.col("end_date") >= lo))
    first = F.trunc(F.greatest("start_date", lo), "month")
    last = F.trunc(F.least("end_date", hi), "month")
    rows = cov.where(last >= first).select(
        "member_id", "plan_id", (F.col("end_date") >= F.col("start_date")).cast("int").alias("_valid"),
        F.explode(F.sequence(first, last, F.expr("interval 1 month"))).alias("month"))
    per_plan = rows.groupBy("member_id", "month", "plan_id").agg(F.max("_valid").alias("_valid"))
    return per_plan.groupBy("member_id", "month").agg(
        F.count("plan_id").alias("plan_count"), F.max("_valid").alias("_covered")) \
        .where(F.col("_covered") == 1).drop("_covered")


def member_months(spark: SparkSession, inputs: Inputs, cat: Catalogue, std: StandardPopulation,
                  mcfg: MeasuresConfig, start: date, end: date, run_id: str, put: Put | None = None
                  ) -> DataFrame:
    """gold.member_month rows for [start, end] (lazy but for the residence picks ``put`` writes). What belongs to the member (sex, race and
    ethnicity, language) is worked out once per member, what belongs to the month (residence,
    age) once per member-month."""
    from pyspark.sql import functions as F

    mm = months(inputs, start, end)
    linked = _linked_person(spark)
    where = residence_by_month(residence_records(spark, linked), start, end, put)
    # race/ethnicity worked out once per distinct (race, ethnicity) pair and joined back: the rule's
    # code lookup is a literal map the engine builds again for every row it is applied to
    pairs = inputs.members.select(F.col("race").alias("_race"), F.col("ethnicity").alias("_eth")).distinct()
    pairs = pairs.select("_race", "_eth", race_ethnicity(mcfg.race, F.col("_race"), F.col("_eth")).alias("race_ethnicity"))
    members = inputs.members.join(
        F.broadcast(pairs), F.col("race").eqNullSafe(F.col("_race")) & F.col("ethnicity").eqNullSafe(F.col("_eth")),
        "left").select("member_id", "birth_date", sex_category(F.col("sex")).alias("sex"), "race_ethnicity",
                       F.col("lhj").alias("gold_lhj"))
    df = mm.join(where, ["member_id", "month"], "left").join(members, "member_id", "left") \
        .join(member_language(spark, linked, cat), "member_id", "left")
    age = F.greatest(age_at("birth_date", "month"), F.lit(0))
    return df.select(
        "member_id", "month",
        F.coalesce("rec_lhj", "gold_lhj", F.lit("Unknown")).alias("lhj"),
        F.coalesce("county_name", F.lit("Unknown")).alias("county"),
        F.coalesce("zip5", F.lit(UNKNOWN)).alias("zip"),
        age.alias("age"),
        F.coalesce(age_group_column(std, age), F.lit(UNKNOWN)).alias("age_group"),
        F.coalesce(age_band(age), F.lit(UNKNOWN)).alias("age_band"),
        F.coalesce(age_cut_column(cat.age_cuts(), age), F.lit(0)).alias("age_cut"),
        F.coalesce("sex", F.lit("U")).alias("sex"),
        F.coalesce("race_ethnicity", race_ethnicity(mcfg.race, F.lit(None).cast("string"),
                                                    F.lit(None).cast("string"))).alias("race_ethnicity"),
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
    quarter and year.

    Members are counted in two group-bys (cell x member, then cell) and not with a countDistinct:
    the engine holds a hash set per group for a distinct count, and over cells this fine (nearly
    one per member-month) that cost 20x the two steps and grew faster than the population."""
    from pyspark.sql import functions as F

    # a month: one row per member (gold.member_month's key), so members are the rows
    out = mm.groupBy(period_label("month").alias("period"), *ATTRS).agg(
        F.count(F.lit(1)).alias("members"), F.count(F.lit(1)).alias("member_months")).withColumn("grain", F.lit("month"))
    for grain in ("quarter", "year"):
        per_member = mm.groupBy(period_label(grain).alias("period"), *ATTRS, "member_id").agg(
            F.count(F.lit(1)).alias("_mm"))
        g = per_member.groupBy("period", *ATTRS).agg(
            F.count(F.lit(1)).alias("members"), F.sum("_mm").alias("member_months")) \
            .withColumn("grain", F.lit(grain))
        out = out.unionByName(g)
    return out.withColumn("run_id", F.lit(run_id)).select(
        *[F.col(c).cast(t).alias(c) for c, t in INDICATOR_DENOMINATOR.columns])
