"""The ECM stage: the plans' assignments and providers' returns -> provider-month metrics.

Writes gold.ecm_member_month (the members behind every line), gold.ecm_provider_month (every
metric of mappings/ecm/metrics.yaml) and the payment statements of every contract in
mappings/ecm/contracts (gold.ecm_statement_line, gold.ecm_statement_member) for the run's months,
replacing exactly those months' rows,
so rerunning a period is idempotent and never touches another month. With no ECM data it writes
nothing and says so in its counts.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from jobs.ecm import config as config_mod
from jobs.ecm import populations, statements
from jobs.ecm.contracts import Contract, load_all
from jobs.ecm.frames import build
from jobs.ecm.provider_month import provider_month
from phmx import lakehouse
from phmx.context import RunContext, StageResult
from phmx.log import get_logger
from phmx.tables import ECM_ASSIGNMENT, ECM_MEMBER_MONTH, ECM_PROVIDER_MONTH

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = get_logger(__name__)

STAGE = "ecm"


def run(spark: SparkSession, ctx: RunContext, *, cfg: config_mod.MetricsConfig | None = None,
        contracts: list[Contract] | None = None) -> StageResult:
    from pyspark.sql import functions as F

    cfg = cfg or config_mod.load()
    if not lakehouse.exists(ECM_ASSIGNMENT):
        return StageResult(STAGE, {"assignments": 0, "months": 0}, {"note": "no ECM assignments received"})
    t0 = time.perf_counter()
    scratch = lakehouse.Scratch(spark, "ecm")
    try:
        frames = build(spark, str(ctx.period), scratch)
        if not frames.months:
            return StageResult(STAGE, {"assignments": 0, "months": 0}, {"note": "no ECM assignments linked"})
        months = [m for m, _, _ in frames.months]
        where = "month IN (" + ", ".join(lakehouse.sql_literal(m) for m in months) + ")"
        mm = frames.member_month.select(*[c for c in ECM_MEMBER_MONTH.column_names if c != "run_id"]).withColumn(
            "run_id", F.lit(ctx.run_id))
        lakehouse.overwrite(lakehouse.conform_to(mm, ECM_MEMBER_MONTH), ECM_MEMBER_MONTH, replace_where=where)
        lakehouse.overwrite(provider_month(spark, frames, cfg, ctx.run_id), ECM_PROVIDER_MONTH, replace_where=where)
        lines = statements.write(spark, load_all() if contracts is None else contracts, months, ctx.run_id)
        flagged = populations.write(spark, ctx.run_id)
        written = lakehouse.read(spark, ECM_PROVIDER_MONTH).where(where)
        cells = written.select("provider_npi", "plan_id", "month").distinct().count()
        sums = written.agg(
            F.sum(F.when(F.col("metric_id") == "engaged_members", F.col("numerator"))).alias("engaged"),
            F.sum(F.when(F.col("metric_id") == "tcoc_pmpm_comparison_before", F.col("denominator"))).alias("compared"),
        ).collect()[0]
        engaged, compared = int(sums.engaged or 0), int(sums.compared or 0)
        if engaged and not compared:
            # the comparison group is matched on each member's tier as of the month before enrollment: a run
            # whose gold.member_risk has only its latest rolling month (a single run over all data) has none
            log.warning("ecm: no engaged member has a baseline risk tier, so the comparison-group metrics are empty; "
                        "compute the rolling tiers of the months before (phmx measures risk-history --from --to)")
        counts: dict[str, int | float | str] = {
            "months": len(months), "provider_plan_months": cells, "metrics": len(cfg.metrics),
            "engaged_member_months": engaged, "engaged_member_months_compared": compared,
            "assignments_unlinked": frames.unlinked, "statement_lines": lines, "population_flags": flagged}
        log.info("ecm metrics written for %d months (%d provider-plan-months)", len(months), cells)
        return StageResult(STAGE, counts, {"first_month": months[0], "last_month": months[-1],
                                           "metrics_version": cfg.version,
                                           "seconds": round(time.perf_counter() - t0, 2)})
    finally:
        scratch.drop()
