"""The LHJ measure feed as a system of cells and additive relations.

Both small-cell suppression (privacy.suppression) and the attacker audit (privacy.attack) need
the same picture of a feed: which published numbers are sums of which others. One row per cell:
``lhj, measure_id, period, stratifier, stratum, numerator, denominator, rate, ci_low, ci_high,
annotation``. Relations found from the shape alone:

* for each (lhj, measure_id, period) and each one-way stratifier: the ``all``/``all`` total row
  equals the sum of that stratifier's strata (the strata partition the total exactly);
* for each two-way stratifier ``a*b`` (strata ``x*y``): the one-way row ``(a, x)`` equals the sum
  over y, ``(b, y)`` the sum over x, and the total the sum of all its cells;

and from the spec, when given:

* ``geography_total``: an ``lhj`` value (e.g. ``California``) whose rows are the sums of the
  other LHJs' rows with the same measure, period, stratifier and stratum;
* ``rollups``: a stratum that is the sum of strata of another stratifier (age 65+ = 65-74 +
  75-84 + 85+), within each (lhj, measure_id, period);
* ``period_rollups``: a period that is the sum of others (year = quarters), for the columns named
  (events add up over time; member counts usually do not);
* ``shared_denominators``: ``{measure: population}``, the denominator of a measure's row is the
  same count as the denominator of the population's row with the same lhj, period, stratifier and
  stratum (one population count published once and used by several measures). An equality is a
  relation with one child, so the suppression hides the two together and the attacker's LP
  knows they are one number.
* ``partitions``: ``{population: (measure, ...)}``, the numerators of those measures' rows add up
  to the denominator of the population's row with the same lhj, period, stratifier and stratum
  (risk tiers partition the members): a table with its margin.

Each relation holds for the numerator and for the denominator separately (unless limited), and
every row has numerator <= denominator (the attacker's LP models it as an implied count
``denominator - numerator >= 0``, itself a count to protect: privacy.attack).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from phmx.errors import SpecError
from phmx.period import Period, PeriodKind

KEY = ("lhj", "measure_id", "period")
VALUE_COLUMNS = ("numerator", "denominator")
DERIVED_COLUMNS = ("rate", "ci_low", "ci_high")
FEED_COLUMNS = (*KEY, "stratifier", "stratum", *VALUE_COLUMNS, *DERIVED_COLUMNS, "annotation")
ALL = "all"


@dataclass(frozen=True)
class Relation:
    """``cells[parent] == sum(cells[c] for c in children)`` for one value column."""

    parent: int
    children: tuple[int, ...]
    kind: str  # stratifier / two-way / geography / rollup / period


@dataclass(frozen=True)
class Rollup:
    """Stratum ``parent`` of ``parent_stratifier`` = sum of ``children`` of ``child_stratifier``."""

    parent_stratifier: str
    parent_stratum: str
    child_stratifier: str
    children: tuple[str, ...]


@dataclass
class CellSystem:
    """Cells are numbered ``row * 2 + column`` (column 0 numerator, 1 denominator)."""

    n_rows: int
    relations: list[Relation] = field(default_factory=list)

    @staticmethod
    def cell(row: int, column: str) -> int:
        return row * 2 + VALUE_COLUMNS.index(column)

    @staticmethod
    def row_of(cell: int) -> int:
        return cell // 2

    @staticmethod
    def column_of(cell: int) -> str:
        return VALUE_COLUMNS[cell % 2]

    def relations_of(self) -> dict[int, list[int]]:
        """For each cell, the indexes of the relations it takes part in."""
        out: dict[int, list[int]] = defaultdict(list)
        for i, r in enumerate(self.relations):
            out[r.parent].append(i)
            for c in r.children:
                out[c].append(i)
        return out


def check_feed(table: pd.DataFrame) -> None:
    """The feed contract's columns must be present (extra columns are kept)."""
    missing = [c for c in (*KEY, "stratifier", "stratum", *VALUE_COLUMNS) if c not in table.columns]
    if missing:
        raise SpecError(f"measure feed lacks column(s): {', '.join(missing)}",
                        hint="one row per cell: " + ", ".join(FEED_COLUMNS))


def build_system(table: pd.DataFrame, *, geography_total: str | None = None,
                 rollups: tuple[Rollup, ...] = (), period_rollups: dict[str, tuple[str, ...]] | None = None,
                 period_rollup_columns: tuple[str, ...] = ("numerator",),
                 shared_denominators: dict[str, str] | None = None,
                 partitions: dict[str, tuple[str, ...]] | None = None) -> CellSystem:
    """Find every additive relation among the rows of ``table`` (positional row numbers)."""
    check_feed(table)
    sysm = CellSystem(len(table))
    strat = table["stratifier"].astype(str).tolist()
    strata = table["stratum"].astype(str).tolist()
    keys = list(zip(*(table[k].astype(str).tolist() for k in KEY), strict=True))
    index: dict[tuple[str, ...], int] = {}
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        full = (*k, strat[i], strata[i])
        if full in index:
            raise SpecError(f"measure feed has two rows for {k[1]} / {k[2]} / {strat[i]} = {strata[i]} "
                            f"in one LHJ", hint="one row per cell")
        index[full] = i
        groups[k].append(i)

    def add(parent: int | None, children: list[int], kind: str, columns: tuple[str, ...] = VALUE_COLUMNS) -> None:
        if parent is None or not children:
            return
        for col in columns:
            sysm.relations.append(Relation(CellSystem.cell(parent, col),
                                           tuple(CellSystem.cell(c, col) for c in children), kind))

    for k, rows in groups.items():
        total = index.get((*k, ALL, ALL))
        by_strat: dict[str, list[int]] = defaultdict(list)
        for i in rows:
            if strat[i] != ALL:
                by_strat[strat[i]].append(i)
        for s, members in by_strat.items():
            if "*" not in s:
                add(total, members, "stratifier")
                continue
            parts = s.split("*")
            add(total, members, "two-way")
            for pos, dim in enumerate(parts):
                by_value: dict[str, list[int]] = defaultdict(list)
                for i in members:
                    vals = strata[i].split("*")
                    if len(vals) != len(parts):
                        raise SpecError(f"stratum {strata[i]!r} does not match stratifier {s!r}")
                    by_value[vals[pos]].append(i)
                for val, cells in by_value.items():
                    add(index.get((*k, dim, val)), cells, "two-way")
        for ru in rollups:
            parent = index.get((*k, ru.parent_stratifier, ru.parent_stratum))
            kids = [index[c] for c in ((*k, ru.child_stratifier, s) for s in ru.children) if c in index]
            if parent is not None and len(kids) == len(ru.children):
                add(parent, kids, "rollup")
    if geography_total:
        by_cell: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for (lhj, m, p, s, st), i in index.items():
            if lhj != geography_total:
                by_cell[(m, p, s, st)].append(i)
        for (m, p, s, st), kids in by_cell.items():
            add(index.get((geography_total, m, p, s, st)), kids, "geography")
    for parent_period, child_periods in (period_rollups or {}).items():
        for (lhj, m, p, s, st), i in index.items():
            if p != parent_period:
                continue
            found = [index.get((lhj, m, cp, s, st)) for cp in child_periods]
            present = [x for x in found if x is not None]
            if len(present) == len(found):
                add(i, present, "period", period_rollup_columns)
    if shared_denominators:
        for (lhj, m, p, s, st), i in index.items():
            population = shared_denominators.get(m)
            if population is None or population == m:
                continue
            pop_row = index.get((lhj, population, p, s, st))
            if pop_row is None:
                raise SpecError(f"measure {m} shares the denominator of {population}, which has no row for "
                                f"{p} / {s} = {st} in one LHJ", hint="publish the population row of every cell")
            add(pop_row, [i], "shared", ("denominator",))
    for population, tiers in (partitions or {}).items():
        for (lhj, m, p, s, st), i in index.items():
            if m != population:
                continue
            # a part without a row has no unit in the cell: it is 0, and the others still add up
            kids = [k for k in (index.get((lhj, part, p, s, st)) for part in tiers) if k is not None]
            if kids:
                sysm.relations.append(Relation(CellSystem.cell(i, "denominator"),
                                               tuple(CellSystem.cell(x, "numerator") for x in kids), "partition"))
    return sysm


def values(table: pd.DataFrame) -> list[float | None]:
    """Cell values (None when not published), in cell order."""
    out: list[float | None] = []
    num = pd.to_numeric(table["numerator"], errors="coerce").tolist()
    den = pd.to_numeric(table["denominator"], errors="coerce").tolist()
    for n, d in zip(num, den, strict=True):
        out.append(None if pd.isna(n) else float(n))
        out.append(None if pd.isna(d) else float(d))
    return out


def describe_cell(table: pd.DataFrame, cell: int) -> dict[str, Any]:
    """Where a cell is, for reports (no values)."""
    row = table.iloc[CellSystem.row_of(cell)]
    return {"row": int(CellSystem.row_of(cell)), "column": CellSystem.column_of(cell),
            **{k: str(row[k]) for k in (*KEY, "stratifier", "stratum")}}


def infer_period_rollups(table: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """Period roll-ups an attacker reads off the labels alone: a year (``2025``) is the sum of its
    quarters (``2025-Q1``..) and a quarter the sum of its months (``2025-01``..), where those
    periods are published (units are assigned to one period by their anchor date, so both
    numerators and denominators add up). What the recipient-side audit assumes when no spec is
    given: the attacker knows the calendar."""
    periods = sorted({str(p) for p in table["period"].dropna()})
    present = set(periods)
    out: dict[str, list[str]] = defaultdict(list)
    for p in periods:
        parsed = Period.of(p)
        if parsed is None:
            continue
        parent = parsed.year_period if parsed.kind is PeriodKind.QUARTER else parsed.quarter
        if parent is not None and parent.label in present:
            out[parent.label].append(p)
    return {k: tuple(v) for k, v in out.items()}
