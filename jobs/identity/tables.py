"""The identity stage's table contracts, re-exported from :mod:`phmx.tables` (where they live).

Kept so existing imports (``from jobs.identity.tables import LINK_PAIRS``) keep working.
"""

from __future__ import annotations

from phmx.tables import IDENTITY_EVENTS, IDENTITY_RECORDS, LINK_PAIRS, REVIEW_DECISIONS, REVIEW_QUEUE, Table

ALL: tuple[Table, ...] = (LINK_PAIRS, REVIEW_QUEUE, REVIEW_DECISIONS, IDENTITY_EVENTS, IDENTITY_RECORDS)

__all__ = ["ALL", "IDENTITY_EVENTS", "IDENTITY_RECORDS", "LINK_PAIRS", "REVIEW_DECISIONS", "REVIEW_QUEUE"]
