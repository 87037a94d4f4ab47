"""Which measurement period a run computes, from the run context's period string.

* ``YYYY``: the calendar measurement year (HEDIS / Core Set / DQA default).
* ``R12-YYYY-MM``: a rolling period, the 12 months ending with month YYYY-MM.
* ``YYYY-MM`` (a monthly pipeline run): the measurement year YYYY, refreshed as its months
  arrive (year to date; the rates firm up as follow-up windows close).
* ``all``: the calendar year of the latest event in silver.encounter (the current measurement
  year), or the run's start year when there are no encounters.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from phmx.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

_YEAR = re.compile(r"^(\d{4})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_ROLLING = re.compile(r"^R12-(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class MeasurePeriod:
    """A measurement period: its label (the ``period`` column) and first and last days."""

    label: str
    start: date
    end: date

    def index_end(self, followup_days: int) -> date:
        """Last index date whose follow-up window still ends inside the period (HEDIS: Dec 1)."""
        return self.end - timedelta(days=followup_days)


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def parse(period: str) -> MeasurePeriod | None:
    """The period a string names, or None for ``all`` (which needs the data to decide)."""
    p = (period or "all").strip()
    if p == "all":
        return None
    if m := _YEAR.match(p):
        y = int(m.group(1))
        return MeasurePeriod(p, date(y, 1, 1), date(y, 12, 31))
    if m := _ROLLING.match(p):
        y, mo = int(m.group(1)), int(m.group(2))
        if not 1 <= mo <= 12:
            raise ConfigError(f"period {p!r}: month must be 01-12")
        end = _month_end(y, mo)
        start_y, start_m = (y, mo + 1) if mo < 12 else (y + 1, 1)
        return MeasurePeriod(p, date(start_y - 1, start_m, 1), end)
    if m := _MONTH.match(p):
        y, mo = int(m.group(1)), int(m.group(2))
        if not 1 <= mo <= 12:
            raise ConfigError(f"period {p!r}: month must be 01-12")
        return MeasurePeriod(str(y), date(y, 1, 1), date(y, 12, 31))
    raise ConfigError(f"period {p!r}: expected YYYY, YYYY-MM, R12-YYYY-MM or all",
                      hint="e.g. --period 2025 or --period R12-2025-06")


def resolve(spark: SparkSession, period: str, *, fallback_year: int) -> MeasurePeriod:
    """Resolve a period string; ``all`` looks up the year of the latest encounter."""
    parsed = parse(period)
    if parsed is not None:
        return parsed
    from pyspark.sql import functions as F

    from phmx import lakehouse
    from phmx.tables import ENCOUNTER

    latest = lakehouse.read(spark, ENCOUNTER).agg(F.max("service_date")).collect()[0][0]
    year = latest.year if latest else fallback_year
    return MeasurePeriod(str(year), date(year, 1, 1), date(year, 12, 31))
