"""The consent stage's steps, in order.

1. registry: county forms (bronze.consent_forms) and landed FHIR Consent NDJSON -> silver.consent
2. decisions for every outbound (recipient, purpose) the policy lists -> gold.consent_decision
3. a decision_batch entry (and a signed checkpoint) in the ledger
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from consent import decision_engine, ledger, registry
from consent.disclosure_policy import Policy, load_policy
from phmx import lakehouse
from phmx.context import RunContext, StageResult
from phmx.log import get_logger
from phmx.tables import CONSENT_DECISION, SUBMISSIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = get_logger(__name__)


def recipients(spark: SparkSession) -> list[str]:
    """Recipients decided every run: plans that submit (mcp_*) plus PHMX_CONSENT_RECIPIENTS."""
    from pyspark.sql import functions as F

    subs = lakehouse.read(spark, SUBMISSIONS)
    rows = subs.where(F.col("submitter").startswith("mcp_")).select("submitter").distinct().collect()
    extra = [r.strip() for r in os.environ.get("PHMX_CONSENT_RECIPIENTS", "").split(",") if r.strip()]
    return sorted({r[0] for r in rows} | set(extra))


def outbound_pairs(policy: Policy, recips: list[str]) -> list[tuple[str, str]]:
    """(recipient, purpose) of every outbound dataset the policy lists for these recipients."""
    return sorted({(r, p) for r in recips for p in policy.outbound_purposes(r)})


def run(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Refresh the consent registry, compute decisions, write them and record the batch."""
    from pyspark.sql import functions as F

    policy = load_policy()
    reg = registry.refresh(spark)
    recips = recipients(spark)
    pairs = outbound_pairs(policy, recips)
    decisions = decision_engine.decide(spark, pairs=pairs, run_id=ctx.run_id, decided_at=ctx.started_at, policy=policy)
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
