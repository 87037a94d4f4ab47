"""The ingest stage: landing -> bronze, with validation, quarantine, receipts and a submissions ledger.

Entry point for the DAG: :func:`run` (in :mod:`jobs.ingest.stage`). Reads landed files; writes
``bronze.<feed>``, ``bronze.quarantine`` and ``bronze.submissions`` and a receipt per file.
"""

from __future__ import annotations

from jobs.ingest.stage import run

__all__ = ["run"]
