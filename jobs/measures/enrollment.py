"""Continuous enrollment checks and the plan on a date, over merged coverage islands.

Three rules the public specifications use:

* no gap (HEDIS FUM/FUA/FUH: the index date through 30 days after): one island covers the span;
* at most N gaps totalling at most D days, optionally enrolled on the anchor date (HEDIS CIS,
  W30, WCV: one gap of up to 45 days);
* at least N continuous days inside the span (DQA: 180 continuous days in the reporting year).

Why every function is "left join, then collapse to one row per unit": Spark Connect sends a plan
as a tree, so a frame used twice (compute a flag on distinct spans, join it back) is computed
twice, and a chain of such steps doubles the work at every step. Each step here reads its input
once (:func:`join_collapse`), and no step asks the engine for a frame's columns (a schema round
trip whose cost grows with the plan). Units are identified by (member_id, unit_id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

KEY = ("member_id", "unit_id")


def join_collapse(units: DataFrame, other: DataFrame, on: Column, *, drop: list[str],
                  aggs: dict[str, Column] | None = None, order: list[Column] | None = None,
                  key: tuple[str, ...] = KEY) -> DataFrame:
    """Left join ``units`` to ``other`` and keep one row per unit, with ``aggs`` (plain aggregate
    expressions over the unit's matches, e.g. ``F.count(...)``; compare after) added and ``drop`` (the other side's columns) removed.
    With ``order``, the row kept is the first match in that order (its columns can be read
    before they are dropped: pass ``drop`` without them).

    Windows, not group-by: on the embedded engine a group-by that carries the unit's columns
    with first() was ten times slower than a window with row_number(), and joining an aggregate
    back would read the units twice.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(*key)
    wo = w.orderBy(*(order or [F.col(key[0])]))
    joined = units.join(other, on, "left")
    extra = [c.over(w).alias(n) for n, c in (aggs or {}).items()]
    out = joined.select("*", *extra, F.row_number().over(wo).alias("_rn"))
    return out.where(F.col("_rn") == 1).drop("_rn", *drop)


def _islands(islands: DataFrame) -> DataFrame:
    return islands.selectExpr("member_id AS _im", "island_start AS _is", "island_end AS _ie")


def covered_without_gap(units: DataFrame, islands: DataFrame, start_col: str, end_col: str,
                        out: str = "enrolled") -> DataFrame:
    """Add boolean ``out``: one coverage island spans [start_col, end_col] with no gap.

    Islands are disjoint, so at most one matches: no collapse needed.
    """
    from pyspark.sql import functions as F

    isl = _islands(islands)
    cond = (F.col("member_id") == F.col("_im")) & (F.col("_is") <= F.col(start_col)) & (F.col("_ie") >= F.col(end_col))
    return (units.join(isl, cond, "left").withColumn(out, F.col("_im").isNotNull())
            .drop("_im", "_is", "_ie"))


_ISLAND_COLS = ["_im", "_is", "_ie"]


def _overlapping(start_col: str, end_col: str) -> Column:
    from pyspark.sql import functions as F

    return ((F.col("member_id") == F.col("_im")) & (F.col("_is") <= F.col(end_col))
            & (F.col("_ie") >= F.col(start_col)))


def covered_with_gaps(units: DataFrame, islands: DataFrame, start_col: str, end_col: str, *,
                      max_gaps: int, max_gap_days: int, anchor_col: str | None = None,
                      out: str = "enrolled") -> DataFrame:
    """Add boolean ``out``: over [start, end] at most ``max_gaps`` gaps of at most ``max_gap_days``
    days in total (HEDIS: one gap of up to 45 days), and covered on ``anchor_col`` if given."""
    from pyspark.sql import functions as F

    a, b = F.col(start_col), F.col(end_col)
    s, e = F.col("_is"), F.col("_ie")
    on_anchor = F.col(anchor_col).between(s, e) if anchor_col else F.lit(True)
    agg = join_collapse(units, _islands(islands), _overlapping(start_col, end_col), drop=_ISLAND_COLS, aggs={
        "_k": F.count("_im"),
        "_covered": F.sum(F.datediff(F.least(e, b), F.greatest(s, a)) + 1),
        "_min_s": F.min(s), "_max_e": F.max(e),
        "_on_anchor": F.max(F.when(F.col("_im").isNotNull(), on_anchor.cast("int"))),
    })
    gaps = (F.col("_k") - 1 + F.when(F.col("_min_s") > F.col(start_col), 1).otherwise(0)
            + F.when(F.col("_max_e") < F.col(end_col), 1).otherwise(0))
    gap_days = F.datediff(F.col(end_col), F.col(start_col)) + 1 - F.col("_covered")
    ok = (F.col("_k") >= 1) & (gaps <= max_gaps) & (gap_days <= max_gap_days) & (F.col("_on_anchor") == 1)
    return agg.withColumn(out, F.coalesce(ok, F.lit(False))).drop("_k", "_covered", "_min_s", "_max_e", "_on_anchor")


def longest_continuous_days(units: DataFrame, islands: DataFrame, start_col: str, end_col: str,
                            out: str = "continuous_days") -> DataFrame:
    """Add ``out``: the longest run of continuous coverage inside [start, end] (0 if none)."""
    from pyspark.sql import functions as F

    a, b = F.col(start_col), F.col(end_col)
    s, e = F.col("_is"), F.col("_ie")
    agg = join_collapse(units, _islands(islands), _overlapping(start_col, end_col), drop=_ISLAND_COLS,
                        aggs={out: F.max(F.datediff(F.least(e, b), F.greatest(s, a)) + 1)})
    return agg.withColumn(out, F.coalesce(F.col(out), F.lit(0)))


def any_coverage(units: DataFrame, islands: DataFrame, start_col: str, end_col: str) -> DataFrame:
    """Keep only units whose member had some coverage overlapping [start, end] (the measure's population)."""
    from pyspark.sql import functions as F

    isl = _islands(islands)
    return units.join(isl, (F.col("member_id") == F.col("_im")) & (F.col("_is") <= F.col(end_col))
                      & (F.col("_ie") >= F.col(start_col)), "left_semi")


def plan_on(units: DataFrame, coverage: DataFrame, date_col: str, out: str = "plan_id",
            key: tuple[str, ...] = KEY) -> DataFrame:
    """Add ``out``: the plan covering the member on ``date_col`` ('none' if none; the latest
    starting coverage row wins when two overlap). ``key`` identifies a row of ``units``."""
    from pyspark.sql import functions as F

    cov = coverage.selectExpr("member_id AS _cm", "plan_id AS _cp", "start_date AS _cs", "end_date AS _ce")
    on = (F.col("member_id") == F.col("_cm")) & F.col(date_col).between(F.col("_cs"), F.col("_ce"))
    picked = join_collapse(units, cov, on, drop=["_cm", "_cs", "_ce"], key=key,
                           order=[F.col("_cs").desc_nulls_last(), F.col("_cp").desc_nulls_last()])
    return picked.withColumn(out, F.coalesce(F.col("_cp"), F.lit("none"))).drop("_cp")
