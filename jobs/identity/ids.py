"""Persistent member ids: clusters of this run -> member ids that survive across runs.

Rules (all on the engine, as joins and window functions):

* A record keeps its member id when its cluster keeps that id.
* Each old id goes to the cluster that holds most of its records (ties: the cluster whose
  smallest record key sorts first). A cluster that wins several old ids keeps the oldest (first
  minted; ties by id) and the others are logged as ``merge`` events into it.
* A cluster that holds records of an old id but did not win it logs a ``split`` event (from the
  old id to the cluster's id). A cluster with no id gets a new one, logged as ``new``.
* An old id that no cluster holds any more (its records were withdrawn) is logged as ``retire``.
* New ids are ``M`` + 16 hex digits of SHA-256 of the cluster's smallest record key, so a
  re-run of the same data gives the same ids; a clash with any id ever issued is re-salted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from phmx.tables import IDENTITY_EVENTS

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyspark.sql import DataFrame


@dataclass
class Assignment:
    """``records``: rid, source, source_person_id, cluster, member_id; ``events``: new rows for
    gold.identity_events."""

    records: DataFrame
    events: DataFrame


def _key():  # noqa: ANN202 - a Column
    from pyspark.sql import functions as F

    return F.concat_ws("\u001f", F.col("source"), F.col("source_person_id"))


def mint(key_col, salt: int = 0):  # noqa: ANN001, ANN201 - Columns
    """A new member id from a record key (deterministic)."""
    from pyspark.sql import functions as F

    material = key_col if salt == 0 else F.concat(key_col, F.lit(f"#{salt}"))
    return F.concat(F.lit("M"), F.substring(F.sha2(material, 256), 1, 16))


def assign(clusters: DataFrame, old_xwalk: DataFrame, events: DataFrame, *, run_id: str,
           at: datetime, put: Callable[[DataFrame, str], DataFrame], issued: DataFrame | None = None) -> Assignment:
    """Give every cluster a member id, reusing old ids by the rules above.

    ``clusters``: rid, source, source_person_id, cluster. ``old_xwalk``: the previous
    gold.member_xwalk. ``events``: the previous gold.identity_events (for the ids' ages).

    An incremental run passes only the records of the members it re-linked (``clusters``) and
    those members' rows of the previous crosswalk (``old_xwalk``): every old id those records
    held is then wholly inside, so the rules give what they give over every record, and the
    untouched members keep their ids without being looked at. ``issued`` (``member_id``): every
    id ever issued, when ``old_xwalk`` is only a part (a new id must clash with none of them).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    old = old_xwalk.select("source", "source_person_id", F.col("member_id").alias("old_id"))
    rec = put(clusters.join(old, ["source", "source_person_id"], "left").withColumn("_key", _key()), "ids_rec")
    born = events.where(F.col("event_type") == "new").groupBy("member_id") \
        .agg(F.min("recorded_at").alias("born")).withColumnRenamed("member_id", "old_id")
    claims = rec.where(F.col("old_id").isNotNull()).groupBy("cluster", "old_id") \
        .agg(F.count(F.lit(1)).alias("n"), F.min("_key").alias("k"))
    by_id = Window.partitionBy("old_id").orderBy(F.col("n").desc(), F.col("k").asc())
    claims = claims.withColumn("id_rank", F.row_number().over(by_id)).join(born, "old_id", "left") \
        .withColumn("born", F.coalesce(F.col("born"), F.lit("1970-01-01 00:00:00").cast("timestamp")))
    claims = put(claims, "ids_claims")
    winners = claims.where(F.col("id_rank") == 1)
    by_cluster = Window.partitionBy("cluster").orderBy(F.col("born").asc(), F.col("old_id").asc())
    winners = put(winners.withColumn("age_rank", F.row_number().over(by_cluster)), "ids_winners")
    kept = winners.where(F.col("age_rank") == 1).select("cluster", F.col("old_id").alias("kept_id"))

    cluster_keys = rec.groupBy("cluster").agg(F.min("_key").alias("ckey"), F.count(F.lit(1)).alias("size"))
    cl = cluster_keys.join(kept, "cluster", "left")
    known = (issued if issued is not None else old_xwalk).select("member_id").union(events.select("member_id")) \
        .union(events.where(F.col("other_member_id").isNotNull()).select(F.col("other_member_id").alias("member_id"))) \
        .distinct()
    cand = put(cl.where(F.col("kept_id").isNull()).withColumn("new_id", mint(F.col("ckey"))), "ids_new")
    for salt in (1, 2, 3):
        clash = cand.join(known, cand["new_id"] == known["member_id"], "left_semi").select("cluster")
        if clash.count() == 0:
            break
        resalted = cand.join(clash, "cluster", "left_semi").withColumn("new_id", mint(F.col("ckey"), salt))
        cand = put(cand.join(clash, "cluster", "left_anti").unionByName(resalted), f"ids_new_{salt}")
    cl = put(cl.join(cand.select("cluster", "new_id"), "cluster", "left")
             .withColumn("member_id", F.coalesce(F.col("kept_id"), F.col("new_id"))), "ids_clusters")
    records = rec.join(cl.select("cluster", "member_id"), "cluster").select(
        "rid", "source", "source_person_id", "cluster", "member_id")

    ts = F.lit(at).cast("timestamp")
    new_ev = cl.where(F.col("new_id").isNotNull()).select(
        F.lit("new").alias("event_type"), F.col("new_id").alias("member_id"),
        F.lit(None).cast("string").alias("other_member_id"), F.col("size").cast("bigint").alias("records"))
    merge_ev = winners.where(F.col("age_rank") > 1).join(cl.select("cluster", "member_id"), "cluster").select(
        F.lit("merge").alias("event_type"), "member_id", F.col("old_id").alias("other_member_id"),
        F.col("n").cast("bigint").alias("records"))
    split_ev = claims.where(F.col("id_rank") > 1).join(cl.select("cluster", "member_id"), "cluster") \
        .where(F.col("member_id") != F.col("old_id")).select(
            F.lit("split").alias("event_type"), F.col("old_id").alias("member_id"),
            F.col("member_id").alias("other_member_id"), F.col("n").cast("bigint").alias("records"))
    still = claims.select("old_id").distinct()
    retire_ev = old_xwalk.select(F.col("member_id").alias("old_id")).distinct() \
        .join(still, "old_id", "left_anti").select(
            F.lit("retire").alias("event_type"), F.col("old_id").alias("member_id"),
            F.lit(None).cast("string").alias("other_member_id"), F.lit(0).cast("bigint").alias("records"))
    ev = new_ev.unionByName(merge_ev).unionByName(split_ev).unionByName(retire_ev)
    ev = ev.select(
        F.substring(F.sha2(F.concat_ws("|", F.lit(run_id), "event_type", "member_id",
                                       F.coalesce("other_member_id", F.lit(""))), 256), 1, 24).alias("event_id"),
        "event_type", "member_id", "other_member_id", "records", F.lit(run_id).alias("run_id"),
        ts.alias("recorded_at"))
    return Assignment(records=records, events=ev.select(*IDENTITY_EVENTS.column_names))
