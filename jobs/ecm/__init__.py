"""The ECM stage: Enhanced Care Management metrics per ECM provider, plan and month.

Entry point for the DAG: :func:`run` (in :mod:`jobs.ecm.stage`); ``python -m jobs.ecm`` runs it
by hand. Reads the ECM silver tables (the plans' assignments and the providers' returns) and
gold.member_xwalk; writes gold.ecm_member_month and gold.ecm_provider_month (contracts in
:mod:`phmx.tables`). Metric definitions: mappings/ecm/metrics.yaml; guide: docs/ecm-guide.md.
"""

from __future__ import annotations

from jobs.ecm.stage import run

__all__ = ["run"]
