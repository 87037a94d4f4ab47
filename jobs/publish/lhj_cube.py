"""The LHJ measure cells for every jurisdiction at once: a base cube on the engine, rollups in pandas.

One engine pass groups the permitted measure units by (lhj, measure, month, age band, sex,
race/ethnicity, plan): a few thousand rows per LHJ whatever the population. Everything after
that is small: month -> quarter -> year, one-way and two-way stratifiers, the statewide rows
(``lhj = California``, used for the county-vs-state comparison), and zero-filling so every LHJ
has the same rows for a measure and the strata of each stratifier partition the total exactly.

Cell rows (the feed contract's first columns): ``lhj, measure_id, period, stratifier, stratum,
numerator, denominator`` plus ``sensitivity`` (general / mh / sud: the highest of the measure's
rows) and ``sensitive`` (not general: DDG 5.6.2 always-suppress topics).
Periods: ``2025`` (year), ``2025-Q1`` (quarter), ``2025-01`` (month). Years carry every
stratifier; quarters and months the total only (the trend), except in a one-month run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd

from phmx import sensitivity
from phmx.period import CELL_KINDS, RUN_KINDS, Period, PeriodKind
from phmx.recipients import STATE

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ALL = "all"
UNKNOWN = "unknown"
# stratifier name -> column of gold.measure_event
ONE_WAY: tuple[tuple[str, str], ...] = (
    ("age_band", "age_band"), ("sex", "sex"), ("race_ethnicity", "race_ethnicity"), ("plan", "plan_id"),
)
TWO_WAY: tuple[tuple[str, str], ...] = (("age_band", "sex"),)
GRAINS = ("year", "quarter", "month")
# Grains published with every stratifier; finer grains (quarters, months) carry the total only:
# the trend per measure. Quarter or month x stratum cells would be almost all suppressed, and the
# complementary suppression across them and the year made the privacy audit slow and sometimes
# unable to protect a table (benchmarks/feeds.py); a one-month run stratifies its month.
STRATIFIED_GRAINS = ("year",)
DIMS = [name for name, _ in ONE_WAY]
CELL_COLUMNS = ["lhj", "measure_id", "period", "stratifier", "stratum", "numerator", "denominator", "sensitivity",
                "sensitive"]


@dataclass(frozen=True)
class Scope:
    """Which periods a run publishes: a month (that month only), a year (its months, quarters and
    the year) or ``all`` (every month, quarter and year in the data; a rolling period too)."""

    period: Period

    def __post_init__(self) -> None:
        if not isinstance(self.period, Period):
            object.__setattr__(self, "period", Period.parse(self.period, allowed=RUN_KINDS, what="run period"))

    @property
    def grains(self) -> tuple[str, ...]:
        return ("month",) if self.period.kind is PeriodKind.MONTH else GRAINS

    def predicate(self, month_col: str = "month") -> str | None:
        if self.period.kind is PeriodKind.MONTH:
            return f"{month_col} = '{self.period.label}'"
        if self.period.kind is PeriodKind.YEAR:
            return f"substring({month_col}, 1, 4) = '{self.period.label}'"
        return None


@lru_cache(maxsize=4096)
def grain_of(period: str) -> str:
    """``year``, ``quarter`` or ``month``: the grain of a published cell's period label."""
    return str(Period.parse(period, allowed=CELL_KINDS, what="cell period").kind)


def base_cube(permitted: DataFrame, scope: Scope) -> DataFrame:
    """The engine step: counted units grouped by LHJ, measure, month and every stratifier column.

    Only measurement-year rows (``period`` = ``YYYY``) are counted: the measures stage also writes
    rolling 12-month periods (``R12-YYYY-MM``) whose units overlap, which would double count. A
    unit counts in the denominator when ``in_denominator`` and not excluded; in the numerator when
    it also has ``in_numerator``. Months, quarters and years come from the unit's anchor date.
    """
    from pyspark.sql import functions as F

    counted = permitted.where(F.col("period").rlike(r"^[0-9]{4}$")
                              & F.coalesce(F.col("in_denominator"), F.lit(False))
                              & F.col("exclusion_reason").isNull() & F.col("anchor_date").isNotNull()
                              & F.col("lhj").isNotNull())
    sel = [F.col("lhj"), F.col("measure_id"), F.date_format("anchor_date", "yyyy-MM").alias("month")]
    sel += [F.coalesce(F.nullif(F.trim(F.col(col).cast("string")), F.lit("")), F.lit(UNKNOWN)).alias(name)
            for name, col in ONE_WAY]
    sel += [F.when(F.coalesce(F.col("in_numerator"), F.lit(False)), 1).otherwise(0).alias("_num"),
            sensitivity.rank_of("sensitivity").alias("_sens")]
    x = counted.select(*sel)
    pred = scope.predicate()
    if pred:
        x = x.where(pred)
    return x.groupBy("lhj", "measure_id", "month", *DIMS).agg(
        F.count(F.lit(1)).alias("denominator"), F.sum("_num").alias("numerator"), F.max("_sens").alias("sensitive"))


def _period_columns(base: pd.DataFrame) -> pd.DataFrame:
    m = base["month"].astype(str)
    q = ((m.str.slice(5, 7).astype(int) - 1) // 3 + 1).astype(str)
    return base.assign(year=m.str.slice(0, 4), quarter=m.str.slice(0, 4) + "-Q" + q)


def _stratifiers() -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = [(ALL, [])]
    out += [(name, [name]) for name, _ in ONE_WAY]
    out += [(f"{a}*{b}", [a, b]) for a, b in TWO_WAY]
    return out


def rollup(base: pd.DataFrame, scope: Scope, *, with_state: bool = True) -> pd.DataFrame:
    """Every (lhj, measure, period, stratifier, stratum) cell, zero-filled, in a stable order."""
    if base.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in CELL_COLUMNS})
    base = base.copy()
    base["numerator"] = base["numerator"].astype("int64")
    base["denominator"] = base["denominator"].astype("int64")
    sens = base.groupby("measure_id")["sensitive"].max().astype(int).map(sensitivity.BY_RANK)
    if with_state:
        state = base.groupby(["measure_id", "month", *DIMS], as_index=False)[["numerator", "denominator"]].sum()
        state.insert(0, "lhj", STATE)
        base = pd.concat([base.drop(columns=["sensitive"]), state], ignore_index=True)
    base = _period_columns(base)
    parts = []
    for grain in scope.grains:
        strats = _stratifiers() if grain in STRATIFIED_GRAINS or len(scope.grains) == 1 else _stratifiers()[:1]
        for strat, dims in strats:
            g = base.groupby(["lhj", "measure_id", grain, *dims], as_index=False)[["numerator", "denominator"]].sum()
            g = g.rename(columns={grain: "period"})
            g["stratifier"] = strat
            g["stratum"] = ALL if not dims else g[dims].astype(str).agg("*".join, axis=1)
            parts.append(g[["lhj", "measure_id", "period", "stratifier", "stratum", "numerator", "denominator"]])
    cells = pd.concat(parts, ignore_index=True)
    cells = _zero_fill(cells)
    cells["sensitivity"] = cells["measure_id"].map(sens).fillna("general")
    cells["sensitive"] = cells["sensitivity"] != "general"
    return ordered(cells)


def _zero_fill(cells: pd.DataFrame) -> pd.DataFrame:
    """Every LHJ gets every (period, stratifier, stratum) seen statewide for a measure (0 where none)."""
    out = []
    lhjs = sorted(cells["lhj"].unique())
    for measure, g in cells.groupby("measure_id", sort=True):
        keys = g[["period", "stratifier", "stratum"]].drop_duplicates()
        full = keys.merge(pd.DataFrame({"lhj": lhjs}), how="cross")
        full["measure_id"] = measure
        m = full.merge(g, on=["lhj", "measure_id", "period", "stratifier", "stratum"], how="left")
        m[["numerator", "denominator"]] = m[["numerator", "denominator"]].fillna(0).astype("int64")
        out.append(m)
    return pd.concat(out, ignore_index=True)


def ordered(cells: pd.DataFrame) -> pd.DataFrame:
    strat_rank = {s: i for i, (s, _) in enumerate(_stratifiers())}
    grain_rank = {g: i for i, g in enumerate(GRAINS)}
    c = cells.assign(
        _g=cells["period"].map(lambda p: grain_rank[grain_of(p)]),
        _s=cells["stratifier"].map(strat_rank).fillna(99),
        _u=(cells["stratum"].str.contains(UNKNOWN)).astype(int),
    )
    c = c.sort_values(["lhj", "measure_id", "_g", "period", "_s", "_u", "stratum"], kind="mergesort")
    return c.drop(columns=["_g", "_s", "_u"]).reset_index(drop=True)[CELL_COLUMNS]
