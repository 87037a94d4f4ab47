"""The consent stage's steps, in order (kept apart from ``__init__`` so importing is cheap)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from consent import engine, ledger, registry
from consent.tables import CONSENT_DECISION
from phmx import lakehouse
from phmx.context import RunContext, StageResult
from phmx.log import get_logger
from phmx.tables import SUBMISSIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = get_logger(__name__)


def recipients(spark: SparkSession) -> list[str]:
    """Plans that submit to the hub (mcp_*): the recipients of record-level feeds."""
    from pyspark.sql import functions as F

    subs = lakehouse.read(spark, SUBMISSIONS)
    rows = subs.where(F.col("submitter").startswith("mcp_")).select("submitter").distinct().collect()
    return sorted({r[0] for r in rows})


def run_stage(spark: SparkSession, ctx: RunContext) -> StageResult:
    from pyspark.sql import functions as F

    n_consents = registry.refresh(spark)
    recips = recipients(spark)
    decisions = engine.decide(spark, recipients=recips, run_id=ctx.run_id, now=ctx.started_at)
    lakehouse.overwrite(decisions, CONSENT_DECISION)
    written = lakehouse.read(spark, CONSENT_DECISION)
    counts = {f"{r['decision']}": int(r["n"]) for r in
              written.groupBy("decision").agg(F.count("*").alias("n")).collect()}
    seq = ledger.record_decision_batch(run_id=ctx.run_id, policy_version=engine.POLICY_VERSION,
                                       decisions_version=lakehouse.version(CONSENT_DECISION), counts=counts)
    log.info("consent: %d consent versions, %s decisions, ledger seq %d", n_consents, counts, seq)
    return StageResult("consent", counts={"consent_versions": n_consents, **counts, "ledger_seq": seq,
                                          "recipients": len(recips)})
