"""The identity stage: which source person records are the same member (a master person index).

Entry point for the DAG: :func:`run`. Reads ``silver.person``; writes ``gold.member_xwalk``,
``gold.member`` and the identity tables in :mod:`phmx.tables`.
"""

from __future__ import annotations

from jobs.identity.stage import run

__all__ = ["run"]
