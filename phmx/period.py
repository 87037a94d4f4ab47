"""Reporting periods: the one type for every period label the hub reads or writes.

Why one type: a run's period, a landing folder, a measure's period column and a published cell's
period are all labels of the same calendar, and four hand-written parsers had started to disagree
(one accepted month 13, one had no quarters). Every label is parsed here, once, into a
:class:`Period`; the run's period is parsed when its :class:`phmx.context.RunContext` is made, so
a bad ``--period`` fails before any stage starts, with one message.

Labels:

* ``all``: every period in the data.
* ``YYYY``: a calendar year.
* ``YYYY-Qn``: a calendar quarter (published LHJ cells).
* ``YYYY-MM``: a month (a monthly run, a landing folder, published LHJ cells).
* ``R12-YYYY-MM``: the 12 months ending with that month (the measures' rolling period).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from phmx.errors import ConfigError


class PeriodKind(StrEnum):
    ALL = "all"
    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"
    ROLLING_12 = "rolling_12"


#: What a pipeline run may be asked for (``--period``); quarters are only published cells' labels.
RUN_KINDS: frozenset[PeriodKind] = frozenset(
    {PeriodKind.ALL, PeriodKind.YEAR, PeriodKind.MONTH, PeriodKind.ROLLING_12})
#: A published LHJ cell's period: a year, a quarter or a month.
CELL_KINDS: frozenset[PeriodKind] = frozenset({PeriodKind.YEAR, PeriodKind.QUARTER, PeriodKind.MONTH})
#: A landing folder names the month its file reports on.
LANDING_KINDS: frozenset[PeriodKind] = frozenset({PeriodKind.MONTH})
ALL_KINDS: frozenset[PeriodKind] = frozenset(PeriodKind)

_EXAMPLES = {PeriodKind.ALL: "all", PeriodKind.YEAR: "YYYY", PeriodKind.QUARTER: "YYYY-Qn",
             PeriodKind.MONTH: "YYYY-MM", PeriodKind.ROLLING_12: "R12-YYYY-MM"}
_PATTERNS: tuple[tuple[PeriodKind, re.Pattern[str]], ...] = (
    (PeriodKind.YEAR, re.compile(r"^(\d{4})$")),
    (PeriodKind.QUARTER, re.compile(r"^(\d{4})-Q(\d)$")),
    (PeriodKind.MONTH, re.compile(r"^(\d{4})-(\d{2})$")),
    (PeriodKind.ROLLING_12, re.compile(r"^R12-(\d{4})-(\d{2})$")),
)


class PeriodError(ConfigError):
    """A period label that is not one of the forms above (or not one this place accepts)."""


@dataclass(frozen=True)
class Period:
    """A parsed period label. ``number`` is the month (1-12; the last month of a rolling period)
    or the quarter (1-4); 0 for a year and for ``all``."""

    kind: PeriodKind
    year: int = 0
    number: int = 0

    # ---- parsing ----------------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str | Period | None, *, allowed: frozenset[PeriodKind] = ALL_KINDS,
              what: str = "period") -> Period:
        """The period ``text`` names; a :class:`PeriodError` naming the label and the forms allowed.

        ``None`` and ``""`` mean ``all`` (where ``all`` is allowed).
        """
        if isinstance(text, Period):
            found: Period | None = text
        else:
            found = cls.of((text or "all").strip())
        forms = " or ".join(_EXAMPLES[k] for k in PeriodKind if k in allowed)
        if found is None or found.kind not in allowed:
            raise PeriodError(f"{what} {str(text)!r} is not a valid period: expected {forms}",
                              hint="e.g. 2025, 2025-06" + (", R12-2025-06" if PeriodKind.ROLLING_12 in allowed
                                                           else "") + (" or all" if PeriodKind.ALL in allowed else ""))
        return found

    @classmethod
    def of(cls, label: str) -> Period | None:
        """The period a label names, or None when it is not a period label (no error)."""
        if label == "all":
            return cls(PeriodKind.ALL)
        for kind, pattern in _PATTERNS:
            m = pattern.match(label)
            if not m:
                continue
            year = int(m.group(1))
            number = int(m.group(2)) if m.lastindex and m.lastindex >= 2 else 0
            if kind in (PeriodKind.MONTH, PeriodKind.ROLLING_12) and not 1 <= number <= 12:
                return None
            if kind is PeriodKind.QUARTER and not 1 <= number <= 4:
                return None
            return cls(kind, year, number)
        return None

    @classmethod
    def month_of(cls, day: date) -> Period:
        return cls(PeriodKind.MONTH, day.year, day.month)

    # ---- what it is ------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        if self.kind is PeriodKind.ALL:
            return "all"
        if self.kind is PeriodKind.YEAR:
            return f"{self.year:04d}"
        if self.kind is PeriodKind.QUARTER:
            return f"{self.year:04d}-Q{self.number}"
        if self.kind is PeriodKind.MONTH:
            return f"{self.year:04d}-{self.number:02d}"
        return f"R12-{self.year:04d}-{self.number:02d}"

    def __str__(self) -> str:
        return self.label

    @property
    def is_all(self) -> bool:
        return self.kind is PeriodKind.ALL

    @property
    def start(self) -> date | None:
        """First day (None for ``all``)."""
        if self.kind is PeriodKind.YEAR:
            return date(self.year, 1, 1)
        if self.kind is PeriodKind.QUARTER:
            return date(self.year, 3 * self.number - 2, 1)
        if self.kind is PeriodKind.MONTH:
            return date(self.year, self.number, 1)
        if self.kind is PeriodKind.ROLLING_12:
            y, m = (self.year, self.number + 1) if self.number < 12 else (self.year + 1, 1)
            return date(y - 1, m, 1)
        return None

    @property
    def end(self) -> date | None:
        """Last day (None for ``all``)."""
        if self.kind is PeriodKind.YEAR:
            return date(self.year, 12, 31)
        if self.kind is PeriodKind.QUARTER:
            return _month_end(self.year, 3 * self.number)
        if self.kind in (PeriodKind.MONTH, PeriodKind.ROLLING_12):
            return _month_end(self.year, self.number)
        return None

    @property
    def year_period(self) -> Period:
        """The calendar year a year, quarter or month falls in (a rolling period: its last month's)."""
        if self.kind is PeriodKind.ALL:
            raise PeriodError("period 'all' has no calendar year")
        return Period(PeriodKind.YEAR, self.year)

    @property
    def quarter(self) -> Period | None:
        """The quarter a month falls in (None for any other kind)."""
        if self.kind is not PeriodKind.MONTH:
            return None
        return Period(PeriodKind.QUARTER, self.year, (self.number - 1) // 3 + 1)


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])
