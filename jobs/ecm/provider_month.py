"""gold.ecm_provider_month: every metric of mappings/ecm/metrics.yaml per provider NPI, plan and month.

The grid is every (provider, plan, month) with an authorized member; every metric gets a row for
every cell of the grid (and every code of its ``by`` value set), zeros included, so a provider's
month with no outreach reads 0, not nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.ecm.config import Metric, MetricsConfig
from phmx import lakehouse
from phmx.tables import ECM_PROVIDER_MONTH

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from jobs.ecm.frames import Frames

CELL = ["provider_npi", "plan_id", "month"]


def _aggregate(frames: Frames, m: Metric, split: bool) -> DataFrame:
    from pyspark.sql import functions as F

    df = frames.get(m.frame)
    if m.where:
        df = df.where(F.expr(m.where))
    if m.month:
        df = df.withColumn("month", F.date_format(F.expr(m.month), "yyyy-MM"))
    keys = CELL + (["code"] if split and m.by else [])
    if split and m.by:
        df = df.withColumn("code", F.col(m.by.column))
    aggs = [F.expr(m.numerator).cast("double").alias("numerator")]
    if m.denominator:
        aggs.append(F.expr(m.denominator).cast("double").alias("denominator"))
    return df.groupBy(*keys).agg(*aggs)


def _rows(spark: SparkSession, frames: Frames, grid: DataFrame, m: Metric, numerators: dict[str, DataFrame],
          split: bool) -> DataFrame:
    from pyspark.sql import functions as F

    assert m.by is not None or not split
    cells = grid
    mid = F.lit(m.id)
    if split and m.by:
        codes = spark.createDataFrame([(c,) for c in m.by.codes], "code string")
        cells = grid.crossJoin(codes)
        mid = F.concat(F.lit(m.id + ":"), F.col("code"))
    agg = _aggregate(frames, m, split)
    df = cells.join(agg, [c for c in cells.columns], "left").withColumn(
        "numerator", F.coalesce("numerator", F.lit(0.0)))
    if m.denominator:
        df = df.withColumn("denominator", F.coalesce("denominator", F.lit(0.0)))
    elif m.denominator_metric:
        den = numerators[m.denominator_metric].withColumnRenamed("numerator", "denominator")
        df = df.join(den, CELL, "left").withColumn("denominator", F.coalesce("denominator", F.lit(0.0)))
    else:
        df = df.withColumn("denominator", F.lit(None).cast("double"))
    value = F.when(F.col("denominator").isNull(), F.col("numerator")).when(
        F.col("denominator") > 0, F.round(F.col("numerator") / F.col("denominator") * F.lit(m.scale), 6))
    return df.select(*CELL, mid.alias("metric_id"), F.lit(m.family).alias("family"), "numerator", "denominator",
                     value.alias("value"))


def provider_month(spark: SparkSession, frames: Frames, cfg: MetricsConfig, run_id: str) -> DataFrame:
    """All metrics, long form (one row per provider, plan, month and metric id)."""
    from pyspark.sql import functions as F

    grid = frames.member_month.select(*CELL).distinct()
    numerators: dict[str, DataFrame] = {}
    parts = []
    for m in cfg.metrics:
        total = _rows(spark, frames, grid, m, numerators, split=False)
        numerators[m.id] = total.select(*CELL, "numerator")
        parts.append(total)
        if m.by:
            parts.append(_rows(spark, frames, grid, m, numerators, split=True))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return lakehouse.conform_to(out.withColumn("run_id", F.lit(run_id)), ECM_PROVIDER_MONTH)
