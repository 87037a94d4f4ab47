"""Inputs every measure group reads, written once per run to the lakehouse ``work`` layer.

Why: the embedded engine has no cache, so the member-linked events, the coverage islands, the
ED visits and the inpatient stays would otherwise be recomputed by every measure group (a
crosswalk join, window functions). They are written as Delta tables named
``work.measures_<run>_<name>`` and read back; :meth:`Scratch.drop` removes them when the run
ends (also on failure). The run id is in the name so two runs never share a scratch table.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from phmx import lakehouse, storage
from phmx.log import get_logger

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)


class Scratch:
    """Write a frame once, read it back as a Delta table; drop them all at the end."""

    def __init__(self, spark: SparkSession, run_id: str) -> None:
        self.spark = spark
        tag = re.sub(r"[^a-z0-9]+", "_", run_id.lower()).strip("_")[:40] or "run"
        self.prefix = f"work.measures_{tag}"
        self.tables: list[str] = []

    def put(self, df: DataFrame, name: str) -> DataFrame:
        table = f"{self.prefix}_{name}"
        lakehouse.overwrite(df, table)
        self.tables.append(table)
        return lakehouse.read(self.spark, table)

    def drop(self) -> None:
        for table in self.tables:
            try:
                storage.delete_prefix(lakehouse.table_path(table))
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the run's outcome
                log.warning("could not remove scratch table %s: %s", table, type(exc).__name__)
        self.tables.clear()
