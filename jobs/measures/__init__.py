"""The PHM measures stage: follow-up, dental, immunization and well-child measures, risk tiers.

``run(spark, ctx)`` is what the pipeline and the Airflow DAG call; ``python -m jobs.measures``
runs it by hand. Reads silver events and gold members; writes gold.measure_event and
gold.member_risk (contracts in :mod:`jobs.measures.tables`). Definitions: docs/measures.md;
value sets and parameters: mappings/measures/.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phmx.context import RunContext, StageResult

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

STAGE = "measures"


def run(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Compute every configured measure and the member risk tiers for the run's period."""
    from jobs.measures.stage import run_stage

    return run_stage(spark, ctx)


__all__ = ["STAGE", "run"]
