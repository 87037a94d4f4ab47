"""Consent contracts: a richer ``silver.consent`` and the consent stage's own tables.

``phmx.tables.CONSENT`` is the integrator's contract; :data:`CONSENT` here is a superset (same
keys, same leading columns) that also records the revocation time, the source format and the
policy a consent was given under. The decision engine reads only these columns.
"""

from __future__ import annotations

from phmx import tables as core
from phmx.tables import Table

_LINEAGE = "submission_id string, period string, row_number bigint"


def _t(layer: str, name: str, cols: str, keys: str = "", doc: str = "") -> Table:
    return core._t(layer, name, cols, keys, doc)  # noqa: SLF001 - same parser as the core contracts


CONSENT = _t(
    "silver",
    "consent",
    "consent_id string, version int, source string, source_person_id string, grantor string,"
    "status string, period_start timestamp, period_end timestamp, recorded_at timestamp,"
    "provisions string, submission_id string, period string, row_number bigint,"
    "revoked_at timestamp, source_format string, policy string, content_sha256 string",
    keys="consent_id version",
    doc="Every version of every consent (history kept). status: active / inactive / rejected / "
    "entered-in-error. provisions: the normalised provision tree as JSON (a list of nodes with "
    "their path, effect and effective constraints). revoked_at: when a revocation took effect.",
)

CONSENT_DECISION = _t(
    "gold",
    "consent_decision",
    "member_id string, data_class string, purpose string, recipient string, decision string,"
    "rule_ids array<string>, consent_ids array<string>, valid_from timestamp, valid_to timestamp,"
    "policy_version string, run_id string, decided_at timestamp",
    keys="member_id data_class purpose recipient valid_from",
    doc="permit / deny / permit_deidentified per (member, data class, purpose, recipient) for the "
    "interval [valid_from, valid_to) (valid_to null = open). Same columns as phmx.tables; the key "
    "adds valid_from because a member has one row per interval.",
)

DISCLOSURE_MEMBER = _t(
    "audit",
    "disclosure_member",
    "seq bigint, member_id string, data_class string",
    keys="seq member_id data_class",
    doc="Which members' data of which class went out in the disclosure recorded at ledger entry "
    "seq. The ledger entry pins a SHA-256 digest of these rows, so they are tamper-evident too.",
)

ALL: tuple[Table, ...] = (CONSENT, CONSENT_DECISION, DISCLOSURE_MEMBER)
