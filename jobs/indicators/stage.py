"""The indicators stage: population denominators and indicators for the LHJ community health assessment.

Reads silver events, coverage and person records and gold members (through the measures stage's
inputs, :func:`jobs.measures.inputs.load`); writes, for the run's measurement year (and any
earlier year the run recomputes: :func:`jobs.measures.measurement_period.run_years`):

* gold.member_month: one row per member and covered month, where the member lived that month;
* gold.indicator_denominator: members and member-months per cell, per month, quarter and year;
* gold.indicator_strata: each indicator's numerator and denominator by LHJ x age group, for the
  total and each stratifier;
* gold.indicator_rate: crude and age-adjusted rates with 95% gamma intervals, LHJ and state.

Each table's rows of the year are replaced (``replaceWhere``), so rerunning a year is idempotent
and never touches another year: the year-over-year change reads the previous year's strata.
Definitions: mappings/indicators/ and docs/measures.md ("Population indicators").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from jobs.indicators import catalogue as catalogue_mod
from jobs.indicators.cells import rates_of_strata, strata_from_table
from jobs.indicators.cube import cube
from jobs.indicators.population import denominators, member_months
from jobs.measures import config as measures_config
from jobs.measures.inputs import load
from jobs.measures.measurement_period import run_years
from phmx import lakehouse
from phmx.context import RunContext, StageResult
from phmx.log import get_logger
from phmx.tables import INDICATOR_DENOMINATOR, INDICATOR_RATE, INDICATOR_STRATA, MEMBER_MONTH

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.indicators.catalogue import Catalogue, StandardPopulation
    from jobs.measures.inputs import Inputs
    from jobs.measures.measurement_period import MeasurePeriod

log = get_logger(__name__)

STAGE = "indicators"


def run(spark: SparkSession, ctx: RunContext, *, catalogue: tuple[Catalogue, StandardPopulation] | None = None
        ) -> StageResult:
    """Compute and write the measurement year's denominators, indicator cells and rates."""
    scratch = lakehouse.Scratch(spark, "indicators")
    try:
        return _run(spark, ctx, scratch, catalogue)
    finally:
        scratch.drop()


def _materialised(inputs: Inputs, scratch: lakehouse.Scratch) -> Inputs:
    """The measures' inputs the indicators read, each written once as Parquet and read back (the
    engine computes a frame again for every read). Not written: immunizations, medications and the
    coverage islands, which no indicator reads, and the ED visits and stays, read once each with
    two of their columns (the engine then leaves out the aggregates nobody reads: 0.1 s against
    1.7 s written whole at 112k members). jobs.measures.inputs.materialise writes every input,
    for the measure families."""
    from dataclasses import replace

    put = scratch.put_parquet
    return replace(inputs, members=put(inputs.members, "members"), encounters=put(inputs.encounters, "encounters"),
                   bh=put(inputs.bh, "bh"), dental=put(inputs.dental, "dental"),
                   coverage=put(inputs.coverage, "coverage"),
                   homeless_records=put(inputs.homeless_records, "homeless")
                   if inputs.homeless_records is not None else None)


def _run(spark: SparkSession, ctx: RunContext, scratch: lakehouse.Scratch,
         catalogue: tuple[Catalogue, StandardPopulation] | None) -> StageResult:
    cat, std = catalogue or catalogue_mod.default()
    # Oldest first, the run's own year last: a year's rates read the year before's strata (the
    # year-over-year change), and a rebuild or a run-out month recomputes earlier years
    # (jobs.measures.measurement_period.run_years).
    periods = run_years(spark, ctx.period, fallback_year=ctx.started_at.year)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    inputs = _materialised(load(spark), scratch)
    seconds["inputs"] = round(time.perf_counter() - t, 2)
    counts: dict[str, int | float | str] = {}
    for period in periods:
        counts = _year(spark, ctx, inputs, cat, std, period, scratch, seconds)
    counts["periods"] = ",".join(p.label for p in periods)
    return StageResult(STAGE, counts, {"seconds": seconds, "catalogue_version": cat.version,
                                       "standard_population": std.version})


def _year(spark: SparkSession, ctx: RunContext, inputs: Inputs, cat: Catalogue, std: StandardPopulation,
          period: MeasurePeriod, scratch: lakehouse.Scratch, seconds: dict[str, float]) -> dict[str, int | float | str]:
    """One measurement year's member months, denominators, strata and rates (each table's rows of the
    year replaced); its counts. ``seconds`` accumulates over the years a run computes."""
    from pyspark.sql import functions as F

    def took(step: str, since: float) -> None:
        seconds[step] = round(seconds.get(step, 0.0) + time.perf_counter() - since, 2)

    year = str(period.start.year)
    t = time.perf_counter()
    mm = member_months(spark, inputs, cat, std, measures_config.default(), period.start, period.end, ctx.run_id,
                       scratch.put_parquet)
    lakehouse.overwrite(mm, MEMBER_MONTH, replace_where=f"year(month) = {int(year)}")
    mm = lakehouse.read(spark, MEMBER_MONTH).where(F.year("month") == int(year))
    took("member_months", t)

    t = time.perf_counter()
    lakehouse.overwrite(denominators(mm, ctx.run_id), INDICATOR_DENOMINATOR,
                        replace_where=f"substring(period, 1, 4) = {lakehouse.sql_literal(year)}")
    took("denominators", t)

    t = time.perf_counter()
    strata = cube(spark, inputs, mm, cat, period.start, period.end, ctx.run_id, scratch.put_parquet)
    lakehouse.overwrite(strata, INDICATOR_STRATA,
                        replace_where=f"substring(period, 1, 4) = {lakehouse.sql_literal(year)}")
    took("strata", t)

    t = time.perf_counter()
    long = strata_from_table(lakehouse.read(spark, INDICATOR_STRATA).where(F.substring("period", 1, 4) == year))
    out = rates_of_strata(long, cat, std).assign(run_id=ctx.run_id)
    rate_df = spark.createDataFrame(out[INDICATOR_RATE.column_names].astype(object).where(out.notna(), None),
                                    INDICATOR_RATE.ddl)
    lakehouse.overwrite(rate_df, INDICATOR_RATE,
                        replace_where=f"substring(period, 1, 4) = {lakehouse.sql_literal(year)}")
    took("rates", t)

    totals = mm.groupBy("member_id").agg(F.count(F.lit(1)).alias("_n")).agg(
        F.count(F.lit(1)).alias("members"), F.sum("_n").alias("mm")).collect()[0]
    counts: dict[str, int | float | str] = {
        "period": year, "members": int(totals["members"] or 0), "member_months": int(totals["mm"] or 0),
        "strata_rows": len(long), "rate_rows": len(out)}
    log.info("indicators for %s: %s members, %s member-months", year, counts["members"], counts["member_months"])
    return counts
