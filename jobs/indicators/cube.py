"""The indicators' finest cells (gold.indicator_cube): prevalence per member-year, utilization per
member-month, each as numerator and denominator by LHJ, ZIP, age group, sex, race/ethnicity and
language.

Why one pass per kind: Spark Connect sends each query as a plan, and a frame read twice is
computed twice. Every diagnosis rule of every prevalence indicator is one pair of aggregate
columns over one frame of claim-days (plan encounters and county services), grouped once per
member; the utilization events of every indicator are one union joined once to the
member-months. Definitions are in mappings/indicators/indicators.yaml; what they mean for a
reader is in docs/measures.md ("Population indicators").
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
from phmx.tables import INDICATOR_CUBE, MEMBER_XWALK, OBSERVATION

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from jobs.measures.inputs import Inputs

CELL = ("lhj", "zip", "age_group", "age_band", "sex", "race_ethnicity", "language")
BMI_LOINC = "39156-5"


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
               year_end: date) -> DataFrame | None:
    """Prevalence cells for the year (None when the catalogue has no prevalence indicator)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    inds = [i for i in cat.indicators.values() if i.kind == "prevalence"]
    if not inds:
        return None
    # the member-year: months enrolled, and the attributes of the last enrolled month
    w = Window.partitionBy("member_id").orderBy(F.col("month").desc())
    year = mm.where(F.col("month").between(F.lit(year_start), F.lit(year_end)))
    # months enrolled: a count over the member's whole partition (explicit frame), beside the ordered row_number
    full = Window.partitionBy("member_id").rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    my = year.select("*", F.count(F.lit(1)).over(full).alias("months"),
                     F.row_number().over(w).alias("_rn")).where(F.col("_rn") == 1).drop("_rn")

    earliest = min(lookback_start(year_end, e.lookback_months) for i in inds for e in i.evidence)
    aggs: dict[str, Column] = {}
    dental_aggs: dict[str, Column] = {}
    social_aggs: dict[str, Column] = {}
    risk_tiers = False
    for ind in inds:
        for n, ev in enumerate(ind.evidence):
            key = f"{ind.id}_{n}"
            since = F.lit(lookback_start(year_end, ev.lookback_months)).cast("date")
            if isinstance(ev, DiagnosisEvidence):
                match = (F.col("day") >= since) & F.col("dx").rlike(cat.regex(ev.value_set))
                aggs[f"{key}_ip"] = F.countDistinct(F.when(match & (F.col("kind") == "ip"), F.col("day")))
                aggs[f"{key}_ot"] = F.countDistinct(F.when(match & (F.col("kind") == "other"), F.col("day")))
            elif isinstance(ev, CountyServiceEvidence):
                aggs[f"{key}_cs"] = F.countDistinct(F.when((F.col("day") >= since) & (F.col("program") == ev.program),
                                                           F.col("day")))
            elif isinstance(ev, DentalEvidence):
                dental_aggs[f"{key}_dv"] = F.countDistinct(F.when(F.col("service_date") >= since, F.col("service_date")))
            elif isinstance(ev, SocialEvidence):
                social_aggs[f"{key}_so"] = F.count(F.when(F.col("event_date") >= since, F.lit(1)))
            elif isinstance(ev, RiskTierEvidence):
                risk_tiers = True
    df = my
    if aggs:
        days = _claim_days(inputs, earliest, year_end)
        df = df.join(days.groupBy("member_id").agg(*[c.alias(k) for k, c in aggs.items()]), "member_id", "left")
    if dental_aggs:
        dent = inputs.dental.where(F.col("service_date").between(F.lit(earliest), F.lit(year_end)))
        df = df.join(dent.groupBy("member_id").agg(*[c.alias(k) for k, c in dental_aggs.items()]), "member_id", "left")
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
    # one row per member and indicator: stack (an array of structs met a nullability mismatch on the engine)
    pairs = ", ".join(f"{lakehouse.sql_literal(i.id)}, {lakehouse.sql_literal(i.sensitivity)}, _num_{i.id}, _den_{i.id}"
                      for i in inds)
    units = df.select(*CELL, *flags).selectExpr(
        *CELL, f"stack({len(inds)}, {pairs}) AS (indicator_id, sensitivity, num, den)").where(F.col("den") == 1)
    return units.groupBy("indicator_id", "sensitivity", *CELL).agg(
        F.sum("num").alias("numerator"), F.sum("den").alias("denominator")) \
        .withColumn("period", F.lit(str(year_start.year)))


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
                end: date) -> DataFrame | None:
    """Utilization cells by month: events in enrolled months over member-months."""
    from pyspark.sql import functions as F

    inds = [i for i in cat.indicators.values() if i.kind == "utilization"]
    events = _events(spark, inputs, cat, start, end)
    if not inds or events is None:
        return None
    spec = spark.createDataFrame(
        [(i.id, i.sensitivity, (i.ages or (0, None))[0], (i.ages or (0, None))[1]) for i in inds],
        "indicator_id string, sensitivity string, age_lo int, age_hi int")
    cells = mm.groupBy("month", "age_cut", *CELL).agg(F.count(F.lit(1)).alias("denominator"))
    dens = cells.crossJoin(F.broadcast(spec)).where(
        (F.col("age_cut") >= F.col("age_lo")) & (F.col("age_hi").isNull() | (F.col("age_cut") <= F.col("age_hi"))))
    ev = events.withColumn("month", F.trunc("event_date", "month"))
    per_mm = mm.select("member_id", "month", "age_cut", *CELL).join(ev, ["member_id", "month"], "inner")
    nums = per_mm.groupBy("indicator_id", "month", "age_cut", *CELL).agg(F.count(F.lit(1)).alias("numerator"))
    out = dens.join(nums, ["indicator_id", "month", "age_cut", *CELL], "left")
    return out.groupBy("indicator_id", "sensitivity", F.date_format("month", "yyyy-MM").alias("period"), *CELL).agg(
        F.sum(F.coalesce("numerator", F.lit(0))).alias("numerator"), F.sum("denominator").alias("denominator"))


def cube(spark: SparkSession, inputs: Inputs, mm: DataFrame, cat: Catalogue, year_start: date, year_end: date,
         run_id: str) -> DataFrame:
    from pyspark.sql import functions as F

    parts = [p for p in (prevalence(spark, inputs, mm, cat, year_start, year_end),
                         utilization(spark, inputs, mm, cat, year_start, year_end)) if p is not None]
    if not parts:
        raise ValueError("the indicator catalogue has no indicators")
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.withColumn("run_id", F.lit(run_id)).select(
        *[F.col(c).cast(t).alias(c) for c, t in INDICATOR_CUBE.columns])

