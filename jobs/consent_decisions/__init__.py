"""The consent stage: registry -> decisions (gold.consent_decision) -> ledger.

Entry point for the DAG: :func:`run` (in :mod:`jobs.consent_decisions.stage`); ``python -m
jobs.consent_decisions`` runs it by hand. The package is not named ``consent`` so that it never
shadows the consent library (:mod:`consent`) it uses.
"""

from __future__ import annotations

from jobs.consent_decisions.stage import run

__all__ = ["run"]
