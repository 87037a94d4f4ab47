"""Comparison levels evaluated cheaply give what their plain definition gives."""

from __future__ import annotations

import pandas as pd

from jobs.identity import comparisons
from jobs.identity.config import Comparison, Level


def test_disjoint_splits_only_multi_valued_sides_and_answers_as_the_split_does(spark) -> None:
    from pyspark.sql import functions as F

    comp = Comparison(name="location", column="zip5",
                      levels=(Level(kind="disjoint", column="addr_hist", label="elsewhere"), Level(kind="else", label="else")))
    values = ["1 A ST", "2 B ST", "1 A ST|3 C ST", "2 B ST|4 D ST", "", None]
    sides = spark.createDataFrame(pd.DataFrame([{"l_addr_hist": a, "r_addr_hist": b} for a in values for b in values]))
    plain = F.coalesce(F.col("l_addr_hist").isNotNull() & F.col("r_addr_hist").isNotNull()
                       & ~F.arrays_overlap(F.split(F.col("l_addr_hist"), "\\|"), F.split(F.col("r_addr_hist"), "\\|")),
                       F.lit(False))
    got = sides.select("l_addr_hist", "r_addr_hist", comparisons.level_condition(comp, comp.levels[0]).alias("cheap"),
                       plain.alias("plain")).toPandas()
    assert len(got) == 36 and (got["cheap"] == got["plain"]).all()
    # Two homes with nothing in common are disjoint; one shared address is not.
    row = got.set_index(["l_addr_hist", "r_addr_hist"])
    assert bool(row.loc[("1 A ST", "2 B ST"), "cheap"]) and not bool(row.loc[("1 A ST|3 C ST", "1 A ST"), "cheap"])
