"""Consent contracts, as defined in the one contracts module (phmx/tables.py).

The consent stage reads and writes ``silver.consent``, ``gold.consent_decision``,
``audit.ledger`` and ``audit.disclosure_member``; they are re-exported here for its modules.
"""

from __future__ import annotations

from phmx.tables import CONSENT, CONSENT_DECISION, DISCLOSURE_MEMBER, Table

ALL: tuple[Table, ...] = (CONSENT, CONSENT_DECISION, DISCLOSURE_MEMBER)
