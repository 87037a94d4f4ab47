"""Risk that stays fresh: rolling 12-month tiers every month, their history and how members move.

gold.member_risk keeps one row per member and period; a monthly run writes the period
``R12-YYYY-MM`` (the 12 months ending with that month, never year to date), so month after month
the table is the tier history. :func:`backfill` computes the history for a range of months at once
(inputs loaded once). :func:`transitions` turns the history into gold.risk_transition: for every
month and tier, how many members in that tier were still there 1, 5 and 12 months later, and the
share that had left (DHCS's PHM observation: about 30% leave the highest tier within a month, 50%
within five months, 80% within a year).

Only members with a tier in both months count (a member who left Medi-Cal is not a transition).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.measures.measurement_period import MeasurePeriod
from phmx import lakehouse
from phmx.period import Period, PeriodKind
from phmx.tables import MEMBER_RISK, RISK_TRANSITION

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from jobs.measures.config import MeasuresConfig

HORIZONS = (1, 5, 12)
TIERS = ("high", "rising", "low")


def rolling(month: Period) -> MeasurePeriod:
    """The rolling 12 months ending with ``month`` (a MONTH or ROLLING_12 period)."""
    r = Period(PeriodKind.ROLLING_12, month.year, month.number)
    assert r.start is not None and r.end is not None
    return MeasurePeriod(r.label, r.start, r.end)


def months_between(first: str, last: str) -> list[Period]:
    """Every month from ``first`` to ``last`` (YYYY-MM, inclusive)."""
    a = Period.parse(first, allowed=frozenset({PeriodKind.MONTH}), what="first month")
    b = Period.parse(last, allowed=frozenset({PeriodKind.MONTH}), what="last month")
    out = []
    y, m = a.year, a.number or 1
    while (y, m) <= (b.year, b.number or 1):
        out.append(Period(PeriodKind.MONTH, y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def transitions(spark: SparkSession, run_id: str) -> DataFrame:
    """gold.risk_transition from every rolling period in gold.member_risk (the whole table, rewritten)."""
    from pyspark.sql import functions as F

    hist = (lakehouse.read(spark, MEMBER_RISK).where(F.col("period").startswith("R12-"))
            .select("member_id", F.substring("period", 5, 7).alias("month"), "risk_tier")
            .withColumn("idx", F.expr("CAST(substring(month, 1, 4) AS int) * 12 + CAST(substring(month, 6, 2) AS int)")))
    horizons = spark.createDataFrame([(h,) for h in HORIZONS], "horizon_months int")
    later = hist.select("member_id", F.col("idx").alias("idx_later"), F.col("risk_tier").alias("tier_later"))
    pairs = (hist.crossJoin(horizons).withColumn("idx_later", F.col("idx") + F.col("horizon_months"))
             .join(later, ["member_id", "idx_later"], "inner"))
    agg = pairs.groupBy("month", "horizon_months", F.col("risk_tier").alias("from_tier")).agg(
        F.count("*").alias("members"),
        *[F.sum(F.when(F.col("tier_later") == t, 1).otherwise(0)).cast("bigint").alias(f"to_{t}") for t in TIERS])
    stayed = F.expr("CASE from_tier WHEN 'high' THEN to_high WHEN 'rising' THEN to_rising ELSE to_low END")
    out = agg.select("*", (F.col("members") - stayed).cast("bigint").alias("left_tier"))
    out = out.withColumn("share_left", F.round(F.col("left_tier") / F.col("members"), 6)).withColumn(
        "run_id", F.lit(run_id))
    return lakehouse.conform_to(out, RISK_TRANSITION)


def write_transitions(spark: SparkSession, run_id: str) -> None:
    lakehouse.overwrite(transitions(spark, run_id), RISK_TRANSITION)


def backfill(spark: SparkSession, months: list[Period], run_id: str, cfg: MeasuresConfig | None = None) -> dict[str, int]:
    """gold.member_risk for the rolling 12 months ending with each of ``months`` (inputs loaded once), then
    gold.risk_transition. Returns members per month."""
    from jobs.measures import config as config_mod
    from jobs.measures.inputs import load
    from jobs.measures.risk import member_risk

    cfg = cfg or config_mod.default()
    scratch = lakehouse.Scratch(spark, "measures")
    counts: dict[str, int] = {}
    try:
        inputs = load(spark, scratch)
        for month in months:
            period = rolling(month)
            lakehouse.overwrite(member_risk(inputs, cfg, period, run_id), MEMBER_RISK,
                                replace_where=f"period = {lakehouse.sql_literal(period.label)}")
            counts[period.label] = lakehouse.read(spark, MEMBER_RISK).where(
                f"period = {lakehouse.sql_literal(period.label)}").count()
    finally:
        scratch.drop()
    write_transitions(spark, run_id)
    counts["transitions"] = lakehouse.read(spark, RISK_TRANSITION).count()
    return counts
