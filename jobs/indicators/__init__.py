"""The population indicators stage: denominators, prevalence and utilization indicators, crude and
age-adjusted rates for the LHJ community health assessment.

Entry point for the DAG: :func:`run` (in :mod:`jobs.indicators.stage`); ``python -m
jobs.indicators`` runs it by hand. Reads silver and gold (through the measures stage's inputs);
writes gold.member_month, gold.indicator_denominator, gold.indicator_strata and gold.indicator_rate
(contracts in :mod:`phmx.tables`). Definitions: mappings/indicators/, docs/measures.md.
"""

from __future__ import annotations

from jobs.indicators.stage import run

__all__ = ["run"]
