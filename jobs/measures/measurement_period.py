"""Which measurement period a run computes, from the run's period (:class:`phmx.period.Period`).

* ``YYYY``: the calendar measurement year (HEDIS / Core Set / DQA default).
* ``R12-YYYY-MM``: a rolling period, the 12 months ending with month YYYY-MM.
* ``YYYY-MM`` (a monthly pipeline run): the measurement year YYYY, refreshed as its months
  arrive (year to date; the rates firm up as follow-up windows close).
* ``all``: the calendar year of the latest event in silver.encounter (the current measurement
  year), or the run's start year when there are no encounters.
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
