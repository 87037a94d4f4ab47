"""The PHM measures stage: follow-up, dental, immunization and well-child measures, risk tiers.

Entry point for the DAG: :func:`run` (in :mod:`jobs.measures.stage`); ``python -m
jobs.measures`` runs it by hand. Reads silver events and gold members; writes gold.measure_event
and gold.member_risk (contracts in :mod:`phmx.tables`). Definitions: docs/measures.md; value sets
and parameters: mappings/measures/.
"""

from __future__ import annotations

from jobs.measures.stage import run

__all__ = ["run"]
