"""The indicators' numerators and denominators by stratum (gold.indicator_strata): prevalence per
member-year, utilization per member-month, summed by LHJ x age group for the total and for each
stratifier on its own.

Why straight to the strata, not through the finest cells (LHJ x ZIP x age group x sex x race x
language x month): those cells are nearly one per member-month (2.5M rows for 37k members, so
60M at a million), and every table published or audited is a margin of one stratifier. Each
member (prevalence) or member-month (utilization) is one wide row of 0/1 and count columns, one
pair per indicator; the row is stacked once per stratifier and summed, and only the small sums
are turned long (one row per indicator).

Why one pass per kind: Spark Connect sends each query as a plan, and a frame read twice is
computed twice. Every diagnosis rule of every prevalence indicator is one pair of columns over one
frame of claim-days (plan encounters and county services), summed once per member; the
utilization events of every indicator are one frame joined once to the member-months.
Definitions are in mappings/indicators/indicators.yaml; what they mean for a reader is in
docs/measures.md ("Population indicators").
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from jobs.indicators.catalogue import (
    BmiEvidence,
    Catalogue,
    CountyServiceEvidence,
    DentalEvidence,
    DiagnosisEvidence,
    Indicator,
    RiskTierEvidence,
    SocialEvidence,
)
from jobs.measures.inputs import ed_visits, inpatient_stays
from jobs.measures.strata import age_at
from phmx import lakehouse
from phmx.tables import INDICATOR_STRATA, MEMBER_XWALK, OBSERVATION

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from jobs.indicators.population import Put
    from jobs.measures.inputs import Inputs

CELL = ("lhj", "zip", "age_group", "age_band", "sex", "race_ethnicity", "language")
BMI_LOINC = "39156-5"
#: the stratifiers published one at a time beside the total (jobs.indicators.cells.STRATIFIERS)
STRATIFIERS = ("age_band", "sex", "race_ethnicity", "language", "zip")


def stacked_sums(rows: DataFrame, total_period: str, year_period: str, sums: list[str]) -> DataFrame:
    """``sums`` summed by (period, lhj, age_group, stratifier, stratum): each row counted once in
    the total (stratifier and stratum 'all', period ``total_period``) and once under each of
    :data:`STRATIFIERS` (period ``year_period``); both are SQL expressions over ``rows``. A row
    whose key is null is left out of that grouping (as a group-by in pandas does).

    One group-by per stratifier, unioned: on the embedded engine that was 2.5x faster than one
    group-by over the rows stacked six times (``stack``). ``rows`` is read once per group-by, so
    pass a frame that is cheap to read (written once: see ``put`` in :func:`cube`)."""
    from pyspark.sql import functions as F

    out = None
    for stratifier, stratum, period in [("all", "'all'", total_period),
                                        *[(s, s, year_period) for s in STRATIFIERS]]:
        part = rows.select(F.expr(period).alias("period"), "lhj", "age_group", F.lit(stratifier).alias("stratifier"),
                           F.expr(stratum).alias("stratum"), *sums)
        keys = ["period", "lhj", "age_group", "stratifier", "stratum"]
        part = part.where(F.greatest(*[F.col(k).isNull() for k in keys]) == F.lit(False)).groupBy(*keys).agg(
            *[F.sum(c).alias(c) for c in sums])
        out = part if out is None else out.unionByName(part)
    assert out is not None
    return out


def long_by_indicator(wide: DataFrame, inds: list[Indicator]) -> DataFrame:
    """The wide sums (``_num_<id>``, ``_den_<id>`` per indicator) as one row per indicator and
    stratum with a denominator: indicator_id, sensitivity, period, lhj, age_group, stratifier,
    stratum, numerator, denominator."""
    from pyspark.sql import functions as F

    pairs = ", ".join(f"{lakehouse.sql_literal(i.id)}, {lakehouse.sql_literal(i.sensitivity)}, _num_{i.id}, _den_{i.id}"
                      for i in inds)
    keys = ["period", "lhj", "age_group", "stratifier", "stratum"]
    return wide.selectExpr(*keys, f"stack({len(inds)}, {pairs}) AS (indicator_id, sensitivity, numerator, denominator)") \
        .where(F.col("denominator") > 0)


def lookback_start(year_end: date, months: int) -> date:
    """The first day of the ``months`` calendar months ending with ``year_end``'s month."""
    y, m = year_end.year, year_end.month - months + 1
    while m <= 0:
        y, m = y - 1, m + 12
    return date(y, m, 1)


def in_ages(ind: Indicator, cut: Column) -> Column:
    """The member-month's or member-year's age cut lies inside the indicator's ages."""
    from pyspark.sql import functions as F

    if ind.ages is None:
        return F.lit(True)
    lo, hi = ind.ages
    return (cut >= lo) & (F.lit(True) if hi is None else cut <= hi)


def _claim_days(inputs: Inputs, start: date, end: date) -> DataFrame:
    """member_id, day, kind (ip / other), program (county services), dx (comma-joined codes)."""
    from pyspark.sql import functions as F

    lo, hi = F.lit(start).cast("date"), F.lit(end).cast("date")
    enc = inputs.encounters.select(
        "member_id",
        F.when(F.col("setting") == "IP", F.coalesce("admit_date", "service_date")).otherwise(
            F.col("service_date")).alias("day"),
        F.when(F.col("setting") == "IP", F.lit("ip")).otherwise(F.lit("other")).alias("kind"),
        F.lit(None).cast("string").alias("program"),
        F.concat_ws(",", "diagnosis_codes").alias("dx"))
    bh = inputs.bh.select("member_id", F.col("service_date").alias("day"), F.lit("other").alias("kind"),
                          F.col("program"), F.concat_ws(",", "diagnosis_codes").alias("dx"))
    return enc.unionByName(bh).where(F.col("day").between(lo, hi))


def _vs_column(value_set: str) -> str:
    """The column of a claim-day frame that says whether its diagnoses meet ``value_set``."""
    return "_vs_" + "".join(c if c.isalnum() else "_" for c in value_set)


def _days_per_member(rows: DataFrame, day: str, conds: dict[str, Column]) -> DataFrame:
    """member_id and, per condition, the number of distinct days (``day``) with a row meeting it."""
    from pyspark.sql import functions as F

    flagged = rows.where(F.col(day).isNotNull()).groupBy("member_id", day).agg(
        *[F.max(c.cast("int")).alias(k) for k, c in conds.items()])
    return flagged.groupBy("member_id").agg(*[F.sum(k).alias(k) for k in conds])


def _bmi(spark: SparkSession, start: date, end: date) -> DataFrame | None:
    """member_id, the latest BMI value in [start, end] (None when there is no observation table)."""
    from pyspark.sql import functions as F

    if not lakehouse.exists(OBSERVATION):
        return None
    xwalk = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    obs = lakehouse.read(spark, OBSERVATION).where(
        (F.col("loinc_code") == BMI_LOINC) & F.col("value_num").isNotNull()
        & F.col("effective_date").between(F.lit(start).cast("date"), F.lit(end).cast("date"))
        & (F.coalesce(F.col("status"), F.lit("final")).isin("final", "amended", "corrected", "preliminary")))
    linked = obs.join(xwalk, ["source", "source_person_id"], "inner")
    return linked.groupBy("member_id").agg(
        F.max_by("value_num", F.struct("effective_date", "observation_id")).alias("bmi"))


def _risk_tier(spark: SparkSession, year_end: date) -> DataFrame | None:
    """(member_id, _risk_tier): the tier over the rolling 12 months ending with the latest month of
    the year gold.member_risk has (``R12-YYYY-MM``, at most ``year_end``'s month); None when the
    year has no rolling tier at all (the indicator then has no cells: no data, not zeros).

    A member without a tier for that month counts in the denominator and not in the numerator, so
    the indicator shares the published denominator of every other prevalence indicator (a
    denominator of its own would publish, by subtraction, the few members without a tier)."""
    from pyspark.sql import functions as F

    from phmx.tables import MEMBER_RISK

    risk = lakehouse.read(spark, MEMBER_RISK).where(
        F.col("period").between(f"R12-{year_end.year:04d}-01", f"R12-{year_end.year:04d}-{year_end.month:02d}"))
    period = risk.agg(F.max("period")).collect()[0][0]
    if period is None:
        return None
    return risk.where(F.col("period") == F.lit(period)).select("member_id", F.col("risk_tier").alias("_risk_tier"))


def prevalence(spark: SparkSession, inputs: Inputs, mm: DataFrame, cat: Catalogue, year_start: date,
               year_end: date, put: Put | None = None) -> DataFrame | None:
    """Prevalence cells for the year (None when the catalogue has no prevalence indicator)."""
    from pyspark.sql import functions as F

    inds = [i for i in cat.indicators.values() if i.kind == "prevalence"]
    if not inds:
        return None
    # the member-year: months enrolled, and the attributes of the last enrolled month (a group-by and
    # a join by key: cheaper on the engine than windows over each member's months)
    year = mm.where(F.col("month").between(F.lit(year_start), F.lit(year_end)))
    last = year.groupBy("member_id").agg(F.count(F.lit(1)).alias("months"), F.max("month").alias("month"))
    my = year.join(last, ["member_id", "month"], "inner")

    earliest = min(lookback_start(year_end, e.lookback_months) for i in inds for e in i.evidence)
    aggs: dict[str, Column] = {}
    dental_aggs: dict[str, Column] = {}
    social_aggs: dict[str, Column] = {}
    risk_tiers = False
    value_sets: set[str] = set()
    for ind in inds:
        for n, ev in enumerate(ind.evidence):
            key = f"{ind.id}_{n}"
            since = F.lit(lookback_start(year_end, ev.lookback_months)).cast("date")
            # days with a matching claim: flagged per member and day, then the days summed per member
            # (a distinct count per member holds a hash set per member and column on the engine)
            if isinstance(ev, DiagnosisEvidence):
                value_sets.add(ev.value_set)
                match = (F.col("day") >= since) & F.col(_vs_column(ev.value_set))
                aggs[f"{key}_ip"] = match & (F.col("kind") == "ip")
                aggs[f"{key}_ot"] = match & (F.col("kind") == "other")
            elif isinstance(ev, CountyServiceEvidence):
                aggs[f"{key}_cs"] = (F.col("day") >= since) & (F.col("program") == ev.program)
            elif isinstance(ev, DentalEvidence):
                dental_aggs[f"{key}_dv"] = F.col("service_date") >= since
            elif isinstance(ev, SocialEvidence):
                social_aggs[f"{key}_so"] = F.count(F.when(F.col("event_date") >= since, F.lit(1)))
            elif isinstance(ev, RiskTierEvidence):
                risk_tiers = True
    df = my
    if aggs:
        days = _claim_days(inputs, earliest, year_end)
        if value_sets:
            # each value set's regex once per distinct diagnosis list, not once per claim and evidence
            # (codes repeat across claims; the matches were most of the prevalence's time)
            lists = days.select("dx").distinct().select(
                "dx", *[F.col("dx").rlike(cat.regex(v)).alias(_vs_column(v)) for v in sorted(value_sets)])
            days = days.join(lists, "dx", "inner")
        df = df.join(_days_per_member(days, "day", aggs), "member_id", "left")
    if dental_aggs:
        dent = inputs.dental.where(F.col("service_date").between(F.lit(earliest), F.lit(year_end)))
        df = df.join(_days_per_member(dent, "service_date", dental_aggs), "member_id", "left")
    if social_aggs and inputs.homeless_records is not None:
        soc = inputs.homeless_records.where(F.col("event_date").between(F.lit(earliest), F.lit(year_end)))
        df = df.join(soc.groupBy("member_id").agg(*[c.alias(k) for k, c in social_aggs.items()]), "member_id", "left")
    tiers = _risk_tier(spark, year_end) if risk_tiers else None
    if tiers is not None:
        df = df.join(tiers, "member_id", "left")
    has_bmi = any(isinstance(e, BmiEvidence) for i in inds for e in i.evidence)
    bmi = _bmi(spark, earliest, year_end) if has_bmi else None
    if bmi is not None:
        df = df.join(bmi, "member_id", "left")

    def col(name: str) -> Column:
        return F.coalesce(F.col(name), F.lit(0)) if name in aggs or name in dental_aggs or \
            (name in social_aggs and inputs.homeless_records is not None) else F.lit(0)

    flags: list[Column] = []
    for ind in inds:
        met: Column = F.lit(False)
        den: Column = (F.col("months") >= cat.enrolled_months(ind)) & in_ages(ind, F.col("age_cut"))
        for n, ev in enumerate(ind.evidence):
            key = f"{ind.id}_{n}"
            if isinstance(ev, DiagnosisEvidence):
                met = met | (col(f"{key}_ip") >= ev.inpatient_claims) | (col(f"{key}_ot") >= ev.other_claims)
            elif isinstance(ev, CountyServiceEvidence):
                met = met | (col(f"{key}_cs") >= ev.services)
            elif isinstance(ev, DentalEvidence):
                met = met | (col(f"{key}_dv") >= 1)
            elif isinstance(ev, SocialEvidence):
                met = met | (col(f"{key}_so") >= 1)
            elif isinstance(ev, RiskTierEvidence):
                if tiers is None:
                    den = F.lit(False)
                else:
                    tiered = [t for t in ev.tiers if t != "none"]
                    if tiered:
                        met = met | F.coalesce(F.col("_risk_tier").isin(*tiered), F.lit(False))
                    if "none" in ev.tiers:
                        met = met | F.col("_risk_tier").isNull()
            elif isinstance(ev, BmiEvidence):
                value = F.col("bmi") if bmi is not None else F.lit(None).cast("double")
                den = den & value.isNotNull()
                met = met | (F.coalesce(value, F.lit(0.0)) >= ev.at_least)
        flags += [F.coalesce((met & den).cast("int"), F.lit(0)).alias(f"_num_{ind.id}"),
                  F.coalesce(den.cast("int"), F.lit(0)).alias(f"_den_{ind.id}")]
    # one wide row per member, summed by stratum, then one row per indicator (stack: an array of
    # structs met a nullability mismatch on the engine)
    sums = [c for i in inds for c in (f"_num_{i.id}", f"_den_{i.id}")]
    year_label = lakehouse.sql_literal(str(year_start.year))
    wide = df.select(*CELL, *flags)
    if put is not None:
        wide = put(wide, "prevalence_members")
    return long_by_indicator(stacked_sums(wide, year_label, year_label, sums), inds)


def _events(spark: SparkSession, inputs: Inputs, cat: Catalogue, start: date, end: date) -> DataFrame | None:
    """indicator_id, member_id, event_date for every utilization indicator (component ages applied)."""
    from pyspark.sql import functions as F

    lo, hi = F.lit(start).cast("date"), F.lit(end).cast("date")
    births = inputs.members.select(F.col("member_id").alias("_bm"), "birth_date")
    out = None
    for ind in cat.indicators.values():
        if ind.events is None:
            continue
        ev = ind.events
        if ev.kind == "ed_visit":
            df = ed_visits(inputs).select("member_id", F.col("anchor_date").alias("event_date"))
        elif ev.kind == "inpatient_admission":
            stays = inpatient_stays(inputs)
            df = stays.select("member_id", F.col("admit_date").alias("event_date"),
                              F.concat_ws(",", "principal_dx").alias("pdx"))
            if ev.principal_dx:
                df = df.join(births, F.col("member_id") == F.col("_bm"), "left")
                age = age_at("birth_date", "event_date")
                cond: Column = F.lit(False)
                for g in ev.principal_dx:
                    c = F.col("pdx").rlike(cat.regex(g.value_set))
                    if g.ages is not None:
                        c = c & (age >= g.ages[0])
                        if g.ages[1] is not None:
                            c = c & (age <= g.ages[1])
                    cond = cond | c
                df = df.where(cond)
            df = df.select("member_id", "event_date")
        elif ev.kind == "visit":
            codes = cat.procedure_codes[ev.procedure_codes or ""].codes
            rx = "(^|,)(" + "|".join(codes) + ")(,|$)"
            df = inputs.encounters.where((F.col("setting") == "OP")
                                         & F.concat_ws(",", "procedure_codes").rlike(rx)) \
                .select("member_id", F.col("service_date").alias("event_date"))
        elif ev.kind == "dental_visit":
            df = inputs.dental.select("member_id", F.col("service_date").alias("event_date"))
        else:  # county_service
            df = inputs.bh.where(F.col("program") == F.lit(ev.program)) \
                .select("member_id", F.col("service_date").alias("event_date"))
        df = df.where(F.col("event_date").between(lo, hi)).distinct() \
            .select(F.lit(ind.id).alias("indicator_id"), "member_id", "event_date")
        out = df if out is None else out.unionByName(df)
    return out


def utilization(spark: SparkSession, inputs: Inputs, mm: DataFrame, cat: Catalogue, start: date,
                end: date, put: Put | None = None) -> DataFrame | None:
    """Utilization by stratum: events in enrolled months (numerator) over member-months
    (denominator), the indicator's ages only; the total by month, the stratifiers by year."""
    from pyspark.sql import functions as F

    inds = [i for i in cat.indicators.values() if i.kind == "utilization"]
    events = _events(spark, inputs, cat, start, end)
    if not inds or events is None:
        return None
    # events per member-month, one column per indicator
    per_mm = events.groupBy("member_id", F.trunc("event_date", "month").alias("month")).agg(
        *[F.sum(F.when(F.col("indicator_id") == i.id, 1).otherwise(0)).alias(f"_ev_{i.id}") for i in inds])
    rows = mm.select("member_id", "month", "age_cut", *CELL).join(per_mm, ["member_id", "month"], "left")
    flags: list[Column] = []
    for ind in inds:
        inside = in_ages(ind, F.col("age_cut"))
        flags += [F.when(inside, F.coalesce(F.col(f"_ev_{ind.id}"), F.lit(0))).otherwise(F.lit(0))
                  .cast("long").alias(f"_num_{ind.id}"),
                  F.when(inside, F.lit(1)).otherwise(F.lit(0)).cast("long").alias(f"_den_{ind.id}")]
    sums = [c for i in inds for c in (f"_num_{i.id}", f"_den_{i.id}")]
    wide = rows.select(*CELL, F.date_format("month", "yyyy-MM").alias("_month"),
                       F.year("month").cast("string").alias("_year"), *flags)
    if put is not None:
        wide = put(wide, "utilization_member_months")
    return long_by_indicator(stacked_sums(wide, "_month", "_year", sums), inds)


def cube(spark: SparkSession, inputs: Inputs, mm: DataFrame, cat: Catalogue, year_start: date, year_end: date,
         run_id: str, put: Put | None = None) -> DataFrame:
    """gold.indicator_strata rows of the year (lazy, but for the wide rows ``put`` writes once
    so that each stratifier's group-by reads them rather than computing them again)."""
    from pyspark.sql import functions as F

    parts = [p for p in (prevalence(spark, inputs, mm, cat, year_start, year_end, put),
                         utilization(spark, inputs, mm, cat, year_start, year_end, put)) if p is not None]
    if not parts:
        raise ValueError("the indicator catalogue has no indicators")
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.withColumn("run_id", F.lit(run_id)).select(
        *[F.col(c).cast(t).alias(c) for c, t in INDICATOR_STRATA.columns])

