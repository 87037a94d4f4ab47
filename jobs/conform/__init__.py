"""The conform stage: bronze -> silver canonical tables, driven by each feed spec's ``targets:``.

Entry point for the DAG: :func:`run` (in :mod:`jobs.conform.stage`). Reads ``bronze.<feed>``;
writes the silver tables of :mod:`phmx.tables`.
"""

from __future__ import annotations

from jobs.conform.stage import run

__all__ = ["run"]
