"""Consent for outbound feeds, in bulk, from the consent stage's decisions only.

Publish never decides consent: it reads ``gold.consent_decision``, which the consent stage wrote
for every recipient publish serves (:mod:`jobs.consent_decisions.stage`), and applies it with the
consent library's joins (:mod:`consent.enforce`). Where a recipient has no stored decisions (the
consent stage has not run since it appeared, or decided for other recipients), publish fails with
a :class:`~phmx.errors.ConsentError` naming the recipient and what is missing.

LHJ feeds (purpose PUBHLTH, de-identified aggregates): the policy decides them by rule, not by
consent: ``PART2-2.54-DEID-PUBLIC-HEALTH`` (42 CFR 2.54) and ``HIPAA-164.514-DEID-PUBLIC-HEALTH``
give ``permit_deidentified`` for every data class to recipients with the role
``public_health_authority`` (``lhj_*``), as mandatory rules. ``consent.enforce.permitted_rows``
counts that as a permit only when called with ``deidentified=True``, which the LHJ feed does
because it publishes only suppressed aggregates.

One pass for all 61 LHJs: each member's rows go to exactly one LHJ (``gold.member.lhj``) and the
consent stage stores each member's decisions toward that LHJ, so they are gathered into one frame
under a single stand-in recipient id (:data:`ANY_LHJ`) and ``permitted_rows`` runs once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phmx import lakehouse
from phmx.errors import ConsentError
from phmx.log import get_logger
from phmx.recipients import LHJ_PREFIX, member_recipients
from phmx.tables import CONSENT_DECISION

if TYPE_CHECKING:
    from datetime import datetime

    from pyspark.sql import DataFrame, SparkSession

    from consent.disclosure_policy import Policy

log = get_logger(__name__)

PUBHLTH = "PUBHLTH"
TREAT = "TREAT"
ANY_LHJ = "lhj_any_jurisdiction"  # the stand-in id the LHJ decisions are gathered under
HINT = "run the consent stage (it decides for every recipient publish serves), then publish again"


def _stored(spark: SparkSession) -> DataFrame:
    if not lakehouse.exists(CONSENT_DECISION):
        raise ConsentError(f"no consent decisions: {CONSENT_DECISION.fqn} does not exist", hint=HINT)
    return lakehouse.read(spark, CONSENT_DECISION)


def lhj_decisions(spark: SparkSession) -> DataFrame:
    """Each member's stored PUBHLTH decisions toward their own LHJ, relabelled as :data:`ANY_LHJ`.

    ConsentError naming the LHJs (and how many of their members) the consent stage has not decided
    for."""
    from pyspark.sql import functions as F

    mr = member_recipients(spark)
    stored = _stored(spark).where((F.col("purpose") == PUBHLTH) & F.col("recipient").startswith(LHJ_PREFIX))
    own = stored.join(mr, ["member_id", "recipient"])
    missing = (mr.join(own.select("member_id", "recipient").distinct(), ["member_id", "recipient"], "left_anti")
               .groupBy("recipient").count().orderBy("recipient").collect())
    if missing:
        named = ", ".join(f"{r[0]} ({r[1]} member(s))" for r in missing)
        raise ConsentError(f"no {PUBHLTH} consent decisions in {CONSENT_DECISION.fqn} for {named}", hint=HINT)
    log.info("consent: LHJ decisions read from %s", CONSENT_DECISION.fqn)
    return own.select(*CONSENT_DECISION.column_names).withColumn("recipient", F.lit(ANY_LHJ))


def plan_decisions(spark: SparkSession, recipient: str) -> DataFrame:
    """A plan's stored TREAT decisions; ConsentError naming the plan when there are none."""
    from pyspark.sql import functions as F

    mine = _stored(spark).where((F.col("recipient") == recipient) & (F.col("purpose") == TREAT))
    if mine.limit(1).count() == 0:
        raise ConsentError(f"no {TREAT} consent decisions in {CONSENT_DECISION.fqn} for {recipient}", hint=HINT)
    return mine


def recipient_decisions(spark: SparkSession, recipient: str, purpose: str = TREAT) -> DataFrame:
    """A recipient's stored decisions for ``purpose`` (an ECM provider's: its assigned members only);
    ConsentError naming the recipient when there are none."""
    from pyspark.sql import functions as F

    mine = _stored(spark).where((F.col("recipient") == recipient) & (F.col("purpose") == purpose))
    if mine.limit(1).count() == 0:
        raise ConsentError(f"no {purpose} consent decisions in {CONSENT_DECISION.fqn} for {recipient}", hint=HINT)
    return mine


def lhj_permitted(spark: SparkSession, events: DataFrame, *, at: datetime, policy: Policy | None = None,
                  decisions: DataFrame | None = None) -> tuple[DataFrame, DataFrame]:
    """The rows every LHJ may count (one pass for all LHJs), and the decisions used.

    ``events`` needs ``member_id`` and ``security_labels``. Pass ``decisions`` (from
    :func:`lhj_decisions`, ideally materialised) to reuse them for several frames.
    """
    from consent import enforce

    if decisions is None:
        decisions = lhj_decisions(spark)
    permitted = enforce.permitted_rows(spark, events, recipient=ANY_LHJ, purpose=PUBHLTH, at=at,
                                       deidentified=True, policy=policy, decisions=decisions)
    return permitted, decisions


def lhj_disclosure_members(spark: SparkSession, counted: DataFrame, *, at: datetime, decisions: DataFrame,
                           policy: Policy | None = None) -> DataFrame:
    """(recipient, member_id, data_class, rule_ids, consent_ids) of the rows counted, for the ledger."""
    from consent import enforce

    members = enforce.disclosure_members(spark, counted, recipient=ANY_LHJ, purpose=PUBHLTH, at=at,
                                         policy=policy, decisions=decisions)
    members = members.join(member_recipients(spark), "member_id")
    return members.select("recipient", "member_id", "data_class", "rule_ids", "consent_ids")


def plan_permitted(spark: SparkSession, events: DataFrame, *, recipient: str, at: datetime,
                   policy: Policy | None = None) -> tuple[DataFrame, DataFrame]:
    """(rows a plan's care team may receive for TREAT, denied classes redacted; members by class).

    Decisions and permitted rows are materialised in per-recipient work tables, so the rows, the
    ledger's member list and the rule ids each read stored rows.
    """
    from consent import enforce
    from jobs.publish.work_tables import materialize, work_table

    decisions = materialize(spark, enforce.decisions_for(spark, recipient=recipient, purpose=TREAT, at=at,
                                                         decisions=plan_decisions(spark, recipient)),
                            work_table("decisions", recipient))
    permitted = enforce.permitted_rows(spark, events, recipient=recipient, purpose=TREAT, at=at, policy=policy,
                                       decisions=decisions)
    permitted = materialize(spark, permitted, work_table("plan_rows", recipient))
    members = enforce.disclosure_members(spark, permitted, recipient=recipient, purpose=TREAT, at=at,
                                         policy=policy, decisions=decisions)
    members = materialize(spark, members, work_table("plan_members", recipient))
    return permitted, members
