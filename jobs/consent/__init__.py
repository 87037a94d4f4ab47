"""The consent stage: registry -> decisions (gold.consent_decision) -> ledger.

``run(spark, ctx)`` is what the Airflow DAG calls; ``python -m jobs.consent`` runs it by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phmx.context import RunContext, StageResult

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

STAGE = "consent"


def run(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Refresh the consent registry, compute decisions, write them and record the batch."""
    from jobs.consent.stage import run_stage

    return run_stage(spark, ctx)


__all__ = ["STAGE", "run"]
