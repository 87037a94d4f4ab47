"""Consent for outbound feeds, in bulk: every LHJ in one pass, and each plan's care-team feed.

LHJ feeds (purpose PUBHLTH, de-identified aggregates): the policy decides them by rule, not by
consent: ``PART2-2.54-DEID-PUBLIC-HEALTH`` (42 CFR 2.54) and ``HIPAA-164.514-DEID-PUBLIC-HEALTH``
give ``permit_deidentified`` for every data class to recipients with the role
``public_health_authority`` (``lhj_*``), as mandatory rules. ``consent.enforce.permitted_rows``
counts that as a permit only when called with ``deidentified=True``, which the LHJ feed does
because it publishes only suppressed aggregates.

One pass for all 61 LHJs: each member's rows go to exactly one LHJ (``gold.member.lhj``), so the
decisions of each member *toward their own LHJ* are gathered into one frame under a single
stand-in recipient id and ``permitted_rows`` runs once:

* stored decisions (``gold.consent_decision``) for ``lhj_*`` recipients are used where the consent
  stage wrote them (it does for recipients listed in PHMX_CONSENT_RECIPIENTS);
* otherwise the engine decides now, once, for the stand-in id :data:`ANY_LHJ`. That is exact: the
  engine's answer depends on the recipient only through its roles (all ``lhj_*`` ids have the
  same) and through consents that name the recipient; LHJs named in any consent are decided
  separately under their own id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from jobs.publish.recipients import LHJ_PREFIX, lhj_names, recipient_id
from phmx import lakehouse
from phmx.log import get_logger
from phmx.tables import MEMBER

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from consent.disclosure_policy import Policy

log = get_logger(__name__)

PUBHLTH = "PUBHLTH"
TREAT = "TREAT"
ANY_LHJ = "lhj_any_jurisdiction"  # has the LHJ roles (pattern lhj_*), names no real LHJ


def member_recipients(spark: SparkSession) -> DataFrame:
    """(member_id, recipient): each member's LHJ recipient id, from gold.member.lhj."""
    from pyspark.sql import functions as F

    lhjs = spark.createDataFrame([(n, recipient_id(n)) for n in lhj_names()], "lhj string, recipient string")
    return (lakehouse.read(spark, MEMBER).select("member_id", "lhj").where(F.col("lhj").isNotNull())
            .join(F.broadcast(lhjs), "lhj").select("member_id", "recipient"))


def lhjs_named_in_consents(spark: SparkSession) -> list[str]:
    """LHJ recipient ids that some consent provision names explicitly (rare; decided one by one)."""
    from pyspark.sql import functions as F

    from consent.decision_engine import NODE_SCHEMA
    from phmx.tables import CONSENT

    if not lakehouse.exists(CONSENT):
        return []
    nodes = lakehouse.read(spark, CONSENT).select(F.explode(F.from_json("provisions", NODE_SCHEMA)).alias("n"))
    rows = (nodes.select(F.explode_outer("n.recipients").alias("r")).where(F.col("r").startswith(LHJ_PREFIX))
            .distinct().collect())
    return sorted(r[0] for r in rows)


def lhj_decisions(spark: SparkSession, *, policy: Policy | None = None, now: datetime | None = None) -> DataFrame:
    """Each member's decisions toward their own LHJ, relabelled as recipient :data:`ANY_LHJ`."""
    from pyspark.sql import functions as F

    from consent import decision_engine
    from phmx.tables import CONSENT_DECISION

    now = now or datetime.now(UTC)
    mr = member_recipients(spark)
    parts: list[DataFrame] = []
    stored_ids: list[str] = []
    if lakehouse.exists(CONSENT_DECISION):
        stored = lakehouse.read(spark, CONSENT_DECISION).where(
            (F.col("purpose") == PUBHLTH) & F.col("recipient").startswith(LHJ_PREFIX))
        stored_ids = sorted(r[0] for r in stored.select("recipient").distinct().collect())
        if stored_ids:
            parts.append(stored.join(mr, ["member_id", "recipient"]))
    named = [r for r in lhjs_named_in_consents(spark) if r not in stored_ids]
    rest = mr.where(~F.col("recipient").isin(*(stored_ids + named))) if stored_ids or named else mr
    generic = decision_engine.decide(spark, pairs=[(ANY_LHJ, PUBHLTH)], run_id="publish-on-demand", decided_at=now,
                            policy=policy)
    parts.append(generic.join(rest.select("member_id"), "member_id"))
    if named:
        own = decision_engine.decide(spark, pairs=[(r, PUBHLTH) for r in named], run_id="publish-on-demand",
                            decided_at=now, policy=policy)
        parts.append(own.join(mr, ["member_id", "recipient"]))
    cols = [c for c in CONSENT_DECISION.column_names]
    out = parts[0].select(*cols)
    for p in parts[1:]:
        out = out.unionByName(p.select(*cols))
    log.info("consent: LHJ decisions from %d stored recipients, %d named in consents, the rest by rule",
             len(stored_ids), len(named))
    return out.withColumn("recipient", F.lit(ANY_LHJ))


def lhj_permitted(spark: SparkSession, events: DataFrame, *, at: datetime, policy: Policy | None = None,
                  decisions: DataFrame | None = None) -> tuple[DataFrame, DataFrame]:
    """The rows every LHJ may count (one pass for all LHJs), and the decisions used.

    ``events`` needs ``member_id`` and ``security_labels``. Pass ``decisions`` (from
    :func:`lhj_decisions`, ideally materialised) to reuse them for several frames.
    """
    from consent import enforce

    if decisions is None:
        decisions = lhj_decisions(spark, policy=policy)
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
                                                         policy=policy), work_table("decisions", recipient))
    permitted = enforce.permitted_rows(spark, events, recipient=recipient, purpose=TREAT, at=at, policy=policy,
                                       decisions=decisions)
    permitted = materialize(spark, permitted, work_table("plan_rows", recipient))
    members = enforce.disclosure_members(spark, permitted, recipient=recipient, purpose=TREAT, at=at,
                                         policy=policy, decisions=decisions)
    members = materialize(spark, members, work_table("plan_members", recipient))
    return permitted, members
