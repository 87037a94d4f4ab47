"""The publish stage's per-run work tables: how they are named and written.

The contracts of ``gold.feed_log`` and the fixed ``work.publish_*`` tables are in
:mod:`phmx.tables`. Here: :func:`work_table` names a per-run intermediate (optionally one per
recipient) and :func:`materialize` writes a frame there and reads it back. They stay inside the
hub (PHI zone, under ``<lakehouse>/work/``), are rewritten each run and never published.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def work_table(name: str, recipient: str | None = None) -> str:
    """``work.publish_<name>[_<recipient>]``: a per-run scratch table (one per recipient where the
    recipients' tasks may run at the same time, so they never write the same Delta table)."""
    import re

    suffix = "_" + re.sub(r"[^a-z0-9_]", "_", recipient.lower()) if recipient else ""
    return f"work.publish_{name}{suffix}"


def materialize(spark: SparkSession, df: DataFrame, name: str) -> DataFrame:
    """Write ``df`` to a fresh work table and return it read back: later queries start from stored
    rows instead of re-planning (and re-running) the consent joins behind ``df``
    (:func:`phmx.lakehouse.put_work_table`; removed at the end of the publish run)."""
    from phmx import lakehouse

    return lakehouse.put_work_table(spark, df, name)
