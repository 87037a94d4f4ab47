"""Table contracts owned by the identity stage, to be folded into ``phmx/tables.py``.

``gold.member_xwalk`` and ``gold.member`` are already in ``phmx.tables``; the tables here are
new: scored candidate pairs, the clerical review queue, reviewers' decisions and the merge /
split event log. They use the same :class:`phmx.tables.Table` type so the lakehouse helpers work.
"""

from __future__ import annotations

from phmx.tables import Table
from phmx.tables import define_table as _t

LINK_PAIRS = _t(
    "gold",
    "link_pairs",
    "pair_id string, source_l string, source_person_id_l string, source_r string, source_person_id_r string,"
    "match_weight double, match_probability double, decision string, reason string, gamma string,"
    "blocking_rule string, run_id string, scored_at timestamp",
    keys="pair_id",
    doc="Scored candidate pairs at or above the review threshold. decision: linked (same member), "
        "review (probability in the review band), guard_refused (scored as a link, kept apart by a "
        "guard; reason names it). gamma: the comparison levels, comparison=level, comma-separated.",
)

REVIEW_QUEUE = _t(
    "gold",
    "review_queue",
    "pair_id string, source_l string, source_person_id_l string, source_r string,"
    "source_person_id_r string, match_weight double, match_probability double, gamma string,"
    "reason string, status string, run_id string, queued_at timestamp",
    keys="pair_id",
    doc="Possible matches for clerical review (probability in the review band, or a strong "
        "link refused by a guard). status: open / decided.",
)

REVIEW_DECISIONS = _t(
    "gold",
    "review_decisions",
    "pair_id string, source_l string, source_person_id_l string, source_r string,"
    "source_person_id_r string, decision string, reviewer string, note string,"
    "decided_at timestamp",
    keys="pair_id",
    doc="A reviewer's accept (same person) / reject (different people) per pair; later runs "
        "force-link accepted pairs and never link rejected pairs.",
)

IDENTITY_EVENTS = _t(
    "gold",
    "identity_events",
    "event_id string, event_type string, member_id string, other_member_id string,"
    "records bigint, run_id string, recorded_at timestamp",
    keys="event_id",
    doc="Member id changes: new (a member created), merge (other_member_id absorbed into "
        "member_id, the oldest id survives), split (records of member_id moved to a new "
        "other_member_id), retire (an id left without records).",
)

ALL: tuple[Table, ...] = (LINK_PAIRS, REVIEW_QUEUE, REVIEW_DECISIONS, IDENTITY_EVENTS)

IDENTITY_RECORDS = _t(
    "gold",
    "identity_records",
    "source string, source_person_id string, rid bigint, fingerprint bigint, run_id string",
    keys="source source_person_id",
    doc="The identity stage's memory of the record versions it last linked (a hash of the "
        "standardised identifying fields), so incremental runs score only new and changed records.",
)

ALL = (*ALL, IDENTITY_RECORDS)
