"""Which measurement period a run computes, from the run's period (:class:`phmx.period.Period`).

* ``YYYY``: the calendar measurement year (HEDIS / Core Set / DQA default).
* ``R12-YYYY-MM``: a rolling period, the 12 months ending with month YYYY-MM.
* ``YYYY-MM`` (a monthly pipeline run): the measurement year YYYY, refreshed as its months
  arrive (year to date; the rates firm up as follow-up windows close).
* ``all``: the calendar year of the latest event in silver.encounter (the current measurement
  year), or the run's start year when there are no encounters.

Which measurement years a stage run computes (:func:`run_years`, measures and indicators) is the
month-by-month contract (docs/scaling.md section 9, "Which measurement years a run computes"): a
monthly run computes its month's year and, in the first ``PHMX_MEASURE_RUNOUT_MONTHS`` months of
a year, the year before (its claims run-out: late claims and rosters of December arrive in
January); a run at ``all`` computes every year the hub has received submissions for, so a rebuild
holds the same years, computed on the same data, as a hub run month by month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from phmx.period import RUN_KINDS, Period, PeriodKind

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class MeasurePeriod:
    """A measurement period: its label (the ``period`` column) and first and last days."""

    label: str
    start: date
    end: date

    def index_end(self, followup_days: int) -> date:
        """Last index date whose follow-up window still ends inside the period (HEDIS: Dec 1)."""
        return self.end - timedelta(days=followup_days)


def _year(year: int) -> MeasurePeriod:
    return MeasurePeriod(str(year), date(year, 1, 1), date(year, 12, 31))


def parse(period: str | Period) -> MeasurePeriod | None:
    """The measurement period a run period names, or None for ``all`` (which needs the data).

    Text is parsed as a run period (:meth:`phmx.period.Period.parse`; its error names the label
    and the forms allowed)."""
    p = Period.parse(period, allowed=RUN_KINDS, what="period")
    if p.kind is PeriodKind.ALL:
        return None
    if p.kind is PeriodKind.MONTH:  # a monthly run refreshes its measurement year
        p = p.year_period
    assert p.start is not None and p.end is not None  # every kind but all has dates
    return MeasurePeriod(p.label, p.start, p.end)


def received_years(spark: SparkSession) -> list[int]:
    """The calendar years of the months the hub has accepted submissions for (bronze.submissions'
    landing periods, ``YYYY-MM``), ascending; empty when nothing was landed (a hand-built silver)."""
    from pyspark.sql import functions as F

    from phmx import lakehouse
    from phmx.tables import SUBMISSIONS

    if not lakehouse.exists(SUBMISSIONS):
        return []
    rows = (lakehouse.read(spark, SUBMISSIONS)
            .where(F.col("status").isin("accepted", "accepted_with_errors") & F.col("period").rlike(r"^[0-9]{4}-"))
            .select(F.substring("period", 1, 4).alias("y")).distinct().collect())
    return sorted(int(r["y"]) for r in rows)


def run_years(spark: SparkSession, period: str | Period, *, fallback_year: int,
              runout_months: int | None = None) -> list[MeasurePeriod]:
    """The measurement periods a run computes, oldest first; the last is the run's own.

    * a month ``YYYY-MM``: year YYYY (to date) and, when the month is one of the first
      ``runout_months`` (``PHMX_MEASURE_RUNOUT_MONTHS``) of its year and the hub received
      submissions for the year before, that year too: its claims run-out, so late claims, corrected
      rosters and follow-ups of December count in the year they belong to, and the year's rows
      equal a rebuild's made on the same data;
    * ``all``: every year the hub received submissions for (:func:`received_years`) and the year
      of the latest encounter (:func:`resolve`), so a rebuild computes every year a hub run month
      by month has computed, on the same data; with no submissions, that year only;
    * a year or a rolling period: that period only.
    """
    own = resolve(spark, period, fallback_year=fallback_year)
    p = Period.parse(period, allowed=RUN_KINDS, what="period")
    if p.kind is PeriodKind.MONTH:
        if runout_months is None:
            from phmx import settings

            runout_months = settings.load().measure_runout_months
        if p.number <= runout_months and p.year - 1 in received_years(spark):
            return [_year(p.year - 1), own]
        return [own]
    if p.kind is PeriodKind.ALL:
        return [_year(y) for y in sorted(set(received_years(spark)) | {own.start.year})]
    return [own]


def resolve(spark: SparkSession, period: str | Period, *, fallback_year: int) -> MeasurePeriod:
    """Resolve a period; ``all`` looks up the year of the latest encounter."""
    parsed = parse(period)
    if parsed is not None:
        return parsed
    from pyspark.sql import functions as F

    from phmx import lakehouse
    from phmx.tables import ENCOUNTER

    latest = lakehouse.read(spark, ENCOUNTER).agg(F.max("service_date")).collect()[0][0]
    return _year(latest.year if latest else fallback_year)
