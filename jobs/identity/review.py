"""Clerical review: possible matches wait in gold.review_queue; decisions are honoured later.

A pair lands in the queue when its probability is in the review band, or when it scored as a
link but a guard refused it (an edge guard such as different given names, or a cluster guard
such as two valid CINs). A reviewer's ``accept`` forces the two records into one member on
every later run; ``reject`` keeps them apart (a cannot-link constraint in clustering).
Decisions are keyed by the records' source keys, so they survive changes of member ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from phmx import lakehouse
from phmx.errors import ConfigError
from phmx.tables import LINK_PAIRS, MEMBER_XWALK, REVIEW_DECISIONS, REVIEW_QUEUE

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

DECISIONS = ("accept", "reject")


def pair_id_column(sl: Column, pl: Column, sr: Column, pr: Column) -> Column:
    """A stable id for an unordered pair of records (source keys, not member ids)."""
    from pyspark.sql import functions as F

    a = F.concat_ws("\u001f", sl, pl)
    b = F.concat_ws("\u001f", sr, pr)
    return F.substring(F.sha2(F.concat_ws("\u001e", F.least(a, b), F.greatest(a, b)), 256), 1, 20)


def decisions_for(spark: SparkSession, std: DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(accepted, rejected) reviewer decisions as rid pairs of records present in ``std``."""
    from pyspark.sql import functions as F

    dec = lakehouse.read(spark, REVIEW_DECISIONS)
    keys = std.select("rid", "source", "source_person_id")
    left = keys.select(F.col("rid").alias("rid_l"), F.col("source").alias("source_l"),
                       F.col("source_person_id").alias("source_person_id_l"))
    right = keys.select(F.col("rid").alias("rid_r"), F.col("source").alias("source_r"),
                        F.col("source_person_id").alias("source_person_id_r"))
    rows: pd.DataFrame = dec.join(left, ["source_l", "source_person_id_l"]).join(right, ["source_r", "source_person_id_r"]) \
        .select("rid_l", "rid_r", "decision").toPandas()
    acc = rows.loc[rows["decision"] == "accept", ["rid_l", "rid_r"]].reset_index(drop=True)
    rej = rows.loc[rows["decision"] == "reject", ["rid_l", "rid_r"]].reset_index(drop=True)
    return acc, rej


def open_items(spark: SparkSession) -> pd.DataFrame:
    """The open review items, highest probability first (for ``phmx identity review``), each
    with what a decision would change: ``if_accepted`` names the two members that would become
    one and their sizes (every record of both follows); a reject keeps them apart on every
    later run."""
    from pyspark.sql import functions as F

    q = lakehouse.read(spark, REVIEW_QUEUE).where(F.col("status") == "open")
    if lakehouse.exists(MEMBER_XWALK):
        xw = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
        sizes = xw.groupBy("member_id").agg(F.count(F.lit(1)).alias("records"))
        xw = xw.join(sizes, "member_id")
        for side in ("l", "r"):
            q = q.join(xw.select(F.col("source").alias(f"source_{side}"),
                                 F.col("source_person_id").alias(f"source_person_id_{side}"),
                                 F.col("member_id").alias(f"member_{side}"), F.col("records").alias(f"records_{side}")),
                       [f"source_{side}", f"source_person_id_{side}"], "left")
        q = q.withColumn("if_accepted", F.concat(
            F.lit("merge "), F.col("member_l"), F.lit(" ("), F.col("records_l").cast("string"), F.lit(" records) and "),
            F.col("member_r"), F.lit(" ("), F.col("records_r").cast("string"), F.lit(" records) into one member")))
    return q.orderBy(F.col("match_probability").desc(), F.col("pair_id")).toPandas()


def decide(spark: SparkSession, pair_id: str, decision: str, *, reviewer: str, note: str = "",
           at: datetime | None = None) -> None:
    """Record a reviewer's decision for a pair and mark its queue item decided.

    The pair is looked up in the review queue, then among the scored pairs (gold.link_pairs),
    so a reviewer can also reject a link that was made automatically (the next run splits it).
    """
    from pyspark.sql import functions as F

    if decision not in DECISIONS:
        raise ConfigError(f"decision must be one of {DECISIONS}")
    q = lakehouse.read(spark, REVIEW_QUEUE).where(F.col("pair_id") == F.lit(pair_id))
    item = q.limit(1).collect()
    if not item:
        lp = lakehouse.read(spark, LINK_PAIRS)
        item = lp.where(F.col("pair_id") == F.lit(pair_id)).limit(1).collect()
    if not item:
        raise ConfigError(f"no review item or scored pair with pair id {pair_id!r}",
                          hint="list them with `phmx identity review`")
    it = item[0]
    when = at or datetime.now(UTC)
    row = pd.DataFrame([{
        "pair_id": pair_id, "source_l": it["source_l"], "source_person_id_l": it["source_person_id_l"],
        "source_r": it["source_r"], "source_person_id_r": it["source_person_id_r"], "decision": decision,
        "reviewer": reviewer, "note": note, "decided_at": when}])
    lakehouse.merge(spark, spark.createDataFrame(row, REVIEW_DECISIONS.ddl), REVIEW_DECISIONS)
    decided = q.withColumn("status", F.lit("decided"))
    lakehouse.merge(spark, decided, REVIEW_QUEUE)
