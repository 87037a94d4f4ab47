"""The consent stage's steps, in order.

1. registry: county forms (bronze.consent_forms) and landed FHIR Consent NDJSON -> silver.consent
2. decisions for every recipient publish serves (:mod:`phmx.recipients`), for every outbound
   purpose the policy lists for it -> gold.consent_decision:

   * plans (and any recipient in PHMX_CONSENT_RECIPIENTS): every member;
   * ECM providers: each member toward the ECM providers a plan assigned them to
     (:func:`phmx.recipients.ecm_assignments`), the only members whose records their package holds.
     Decided the same way as the LHJs below, under the stand-in :data:`ANY_ECM` (every ``ecm_*``
     id has the same roles), with providers named in a consent decided under their own id;
   * LHJs: each member toward their own LHJ (``gold.member.lhj``), the only LHJ whose feed counts
     them. One engine pass decides them all under a stand-in LHJ id (:data:`ANY_LHJ`) and the rows
     are stored under each member's own LHJ id. That is exact: the engine's answer depends on the
     recipient only through its roles (every ``lhj_*`` id has the same) and through consents that
     name the recipient; LHJs named in a consent are decided under their own id, and an LHJ
     listed in PHMX_CONSENT_RECIPIENTS is decided for every member.
3. a decision_batch entry (and a signed checkpoint) in the ledger

Publish reads only gold.consent_decision and fails, naming the recipient, where it finds no
decisions: it never decides itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from consent import decision_engine, ledger, registry
from consent.disclosure_policy import Policy, load_policy
from phmx import lakehouse, settings
from phmx.context import RunContext, StageResult
from phmx.log import get_logger
from phmx.recipients import (
    ECM_PREFIX,
    LHJ_PREFIX,
    PLAN_PREFIX,
    ecm_assignments,
    is_ecm_provider,
    is_lhj,
    member_recipients,
    plan_recipients,
)
from phmx.tables import CONSENT, CONSENT_DECISION, COVERAGE, SUBMISSIONS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)

ANY_LHJ = "lhj_any_jurisdiction"  # has the LHJ roles (pattern lhj_*), names no real LHJ
ANY_ECM = "ecm_any_provider"  # has the ECM provider roles (pattern ecm_*), names no real provider


def recipients(spark: SparkSession) -> list[str]:
    """Recipients decided for every member each run: the plans publish serves
    (:func:`phmx.recipients.plan_recipients`), plans that submit (mcp_*), and
    PHMX_CONSENT_RECIPIENTS."""
    from pyspark.sql import functions as F

    plans = set(plan_recipients(spark)) if lakehouse.exists(COVERAGE) else set()
    if lakehouse.exists(SUBMISSIONS):
        rows = (lakehouse.read(spark, SUBMISSIONS).where(F.col("submitter").startswith(PLAN_PREFIX))
                .select("submitter").distinct().collect())
        plans |= {r[0] for r in rows}
    return sorted(plans | set(settings.load().consent_recipients))


def outbound_pairs(policy: Policy, recips: list[str]) -> list[tuple[str, str]]:
    """(recipient, purpose) of every outbound dataset the policy lists for these recipients."""
    return sorted({(r, p) for r in recips for p in policy.outbound_purposes(r)})


def named_in_consents(spark: SparkSession, prefix: str = LHJ_PREFIX) -> list[str]:
    """Recipient ids starting with ``prefix`` that some consent provision names explicitly (rare;
    decided one by one)."""
    from pyspark.sql import functions as F

    if not lakehouse.exists(CONSENT):
        return []
    nodes = lakehouse.read(spark, CONSENT).select(
        F.explode(F.from_json("provisions", decision_engine.NODE_SCHEMA)).alias("n"))
    rows = (nodes.select(F.explode_outer("n.recipients").alias("r")).where(F.col("r").startswith(prefix))
            .distinct().collect())
    return sorted(r[0] for r in rows)


def lhjs_named_in_consents(spark: SparkSession) -> list[str]:
    """LHJ recipient ids that some consent provision names explicitly."""
    return named_in_consents(spark, LHJ_PREFIX)


def per_member_decisions(spark: SparkSession, *, stand_in: str, prefix: str, pairs: DataFrame, policy: Policy,
                         run_id: str, decided_at: datetime, decided_in_full: list[str]) -> DataFrame | None:
    """Decisions for ``pairs`` (member_id, recipient) only, stored under each pair's recipient id
    (None when the policy lists no purpose for the stand-in). One engine pass under ``stand_in``
    (same roles as every ``prefix*`` id, named in no consent), plus one for the recipients some
    consent names; ``decided_in_full``: ids already decided for every member (left out here)."""
    from pyspark.sql import functions as F

    purposes = policy.outbound_purposes(stand_in)
    if not purposes:
        return None
    named = [r for r in named_in_consents(spark, prefix) if r not in decided_in_full]
    skip = decided_in_full + named
    rest = pairs.where(~F.col("recipient").isin(*skip)) if skip else pairs
    generic = decision_engine.decide(spark, pairs=[(stand_in, p) for p in purposes], run_id=run_id,
                                     decided_at=decided_at, policy=policy)
    cols = CONSENT_DECISION.column_names
    out = generic.drop("recipient").join(rest, "member_id").select(*cols)
    if named:
        own = decision_engine.decide(spark, pairs=[(r, p) for r in named for p in purposes], run_id=run_id,
                                     decided_at=decided_at, policy=policy)
        out = out.unionByName(own.join(pairs, ["member_id", "recipient"]).select(*cols))
    log.info("consent: %s decisions per member toward their own recipients (%d named in consents, %d decided in "
             "full)", prefix.rstrip("_"), len(named), len(decided_in_full))
    return out


def lhj_decisions(spark: SparkSession, *, policy: Policy, run_id: str, decided_at: datetime,
                  decided_in_full: list[str]) -> DataFrame | None:
    """Each member's decisions toward their own LHJ, stored under that LHJ's recipient id (None when
    the policy lists no LHJ purpose). ``decided_in_full``: LHJ ids already decided for every member."""
    return per_member_decisions(spark, stand_in=ANY_LHJ, prefix=LHJ_PREFIX, pairs=member_recipients(spark),
                                policy=policy, run_id=run_id, decided_at=decided_at, decided_in_full=decided_in_full)


def ecm_decisions(spark: SparkSession, *, policy: Policy, run_id: str, decided_at: datetime,
                  decided_in_full: list[str]) -> DataFrame | None:
    """Each member's decisions toward every ECM provider a plan assigned them to (ended
    assignments included: the feed decides which are current), under that provider's id."""
    pairs = ecm_assignments(spark).select("member_id", "recipient").distinct()
    return per_member_decisions(spark, stand_in=ANY_ECM, prefix=ECM_PREFIX, pairs=pairs, policy=policy,
                                run_id=run_id, decided_at=decided_at, decided_in_full=decided_in_full)


def run(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Refresh the consent registry, compute decisions, write them and record the batch."""
    from pyspark.sql import functions as F

    policy = load_policy()
    reg = registry.refresh(spark)
    recips = recipients(spark)
    pairs = outbound_pairs(policy, recips)
    decisions = decision_engine.decide(spark, pairs=pairs, run_id=ctx.run_id, decided_at=ctx.started_at, policy=policy)
    lhj = lhj_decisions(spark, policy=policy, run_id=ctx.run_id, decided_at=ctx.started_at,
                        decided_in_full=sorted({r for r, _ in pairs if is_lhj(r)}))
    if lhj is not None:
        decisions = decisions.select(*CONSENT_DECISION.column_names).unionByName(lhj)
    ecm = ecm_decisions(spark, policy=policy, run_id=ctx.run_id, decided_at=ctx.started_at,
                        decided_in_full=sorted({r for r, _ in pairs if is_ecm_provider(r)}))
    if ecm is not None:
        decisions = decisions.select(*CONSENT_DECISION.column_names).unionByName(ecm)
    lakehouse.overwrite(decisions, CONSENT_DECISION)
    decision_engine.cleanup_scratch()
    written = lakehouse.read(spark, CONSENT_DECISION)
    now = decision_engine.decision_at(written, ctx.started_at)
    by_rule = [[r[0], r[1], r[2], int(r[3])] for r in
               now.select(F.explode("rule_ids").alias("rule_id"), "recipient", "decision")
               .groupBy("rule_id", "recipient", "decision").count().collect()]
    by_cp = [[r[0], r[1], r[2], int(r[3])] for r in
             now.groupBy("data_class", "purpose", "decision").count().collect()]
    counts: dict[str, int] = {}
    for _, _, d, n in by_cp:
        counts[d] = counts.get(d, 0) + n
    counts["decision_rows"] = int(written.count())
    seq = ledger.record_decision_batch(run_id=ctx.run_id, policy_version=policy.version,
                                       decisions_version=lakehouse.version(CONSENT_DECISION), counts=counts,
                                       breakdown={"by_rule_recipient": by_rule, "by_class_purpose": by_cp},
                                       decided_at=ctx.started_at)
    log.info("consent: %d consent versions, %d recipients, ledger seq %d", reg["consent_versions"], len(recips), seq)
    return StageResult("consent", counts={**reg, **counts, "recipients": len(recips), "pairs": len(pairs),
                                          "ledger_seq": seq}, details={"policy_version": policy.version})
