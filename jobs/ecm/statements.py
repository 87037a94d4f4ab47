"""Monthly ECM payment statements: each contract's lines per provider and month, from the tables only.

A statement is reproducible from gold.ecm_member_month (who was engaged, counted and successful
outreach per member and month), gold.ecm_provider_month (the quality metrics) and the contract
(mappings/ecm/contracts): nothing else is read, so rerunning a month gives the same amounts.

Lines per (contract, provider NPI, month): ``PMPM`` (engaged members x rate), ``OUTREACH`` (paid
attempts x rate: per member and month, the counted or successful attempts up to the cap, only in
months the member was not yet engaged when the contract says so), ``QUALITY:<metric>`` (the share of
the month's PMPM amount of the highest tier the metric's value meets, when its denominator reaches
the minimum) and ``TOTAL``. gold.ecm_statement_member holds the members behind the PMPM and
OUTREACH lines, for the plan only (never another provider); quality lines rest on the metric's
numerator and denominator in gold.ecm_provider_month.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phmx import lakehouse
from phmx.tables import ECM_MEMBER_MONTH, ECM_PROVIDER_MONTH, ECM_STATEMENT_LINE, ECM_STATEMENT_MEMBER

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from jobs.ecm.contracts import Contract

CELL = ["provider_npi", "month"]


def _money(c: Column) -> Column:
    from pyspark.sql import functions as F

    return F.round(c.cast("double"), 2)


def statement(spark: SparkSession, contract: Contract, months: list[str], run_id: str) -> tuple[DataFrame, DataFrame]:
    """(lines, members) of ``contract`` for ``months`` (those it pays), as gold.ecm_statement_* rows."""
    from pyspark.sql import functions as F

    paid = [m for m in months if contract.pays(m)]
    if not paid:
        return (spark.createDataFrame([], ECM_STATEMENT_LINE.ddl), spark.createDataFrame([], ECM_STATEMENT_MEMBER.ddl))
    mm = lakehouse.read(spark, ECM_MEMBER_MONTH).where((F.col("plan_id") == contract.plan_id) & F.col("month").isin(paid))
    pm = lakehouse.read(spark, ECM_PROVIDER_MONTH).where(
        (F.col("plan_id") == contract.plan_id) & F.col("month").isin(paid))
    if not isinstance(contract.providers, str):
        mm = mm.where(F.col("provider_npi").isin(list(contract.providers)))
        pm = pm.where(F.col("provider_npi").isin(list(contract.providers)))
    per_member = mm.groupBy("provider_npi", "month", "member_id").agg(
        F.max(F.col("engaged").cast("int")).alias("engaged"), F.sum("outreach_attempts").alias("attempts"),
        F.sum("successful_outreach").alias("successful"))
    grid = pm.select(*CELL).distinct()

    details = []
    rate = float(contract.pmpm.rate)
    details.append(per_member.where("engaged = 1").select(
        *CELL, F.lit("PMPM").alias("line_id"), "member_id", F.lit(1.0).alias("units"), F.lit(rate).alias("rate")))
    o = contract.outreach
    if o is not None:
        basis = F.col("attempts") if o.basis == "attempt" else F.col("successful")
        eligible = per_member.where("engaged = 0") if o.before_enrollment_only else per_member
        details.append(eligible.select(*CELL, F.lit("OUTREACH").alias("line_id"), "member_id",
                                       F.least(basis, F.lit(o.cap_per_member_month)).cast("double").alias("units"),
                                       F.lit(float(o.rate)).alias("rate")).where("units > 0"))
    members = details[0]
    for d in details[1:]:
        members = members.unionByName(d)
    members = members.withColumn("amount", _money(F.col("units") * F.col("rate")))

    base_lines = [("PMPM", rate, f"engaged member-months x {rate:.2f}")]
    if o is not None:
        base_lines.append(("OUTREACH", float(o.rate), f"{'attempts' if o.basis == 'attempt' else 'successful attempts'}"
                           f" (at most {o.cap_per_member_month} per member-month"
                           f"{', before enrollment' if o.before_enrollment_only else ''}) x {o.rate:.2f}"))
    lines_def = spark.createDataFrame(base_lines, "line_id string, rate double, description string")
    sums = members.groupBy(*CELL, "line_id").agg(F.sum("units").alias("quantity"), F.sum("amount").alias("amount"))
    lines = (grid.crossJoin(lines_def).join(sums, [*CELL, "line_id"], "left")
             .select(*CELL, "line_id", "description", F.coalesce("quantity", F.lit(0.0)).alias("quantity"), "rate",
                     _money(F.coalesce("amount", F.lit(0.0))).alias("amount")))
    pmpm_amount = lines.where("line_id = 'PMPM'").select(*CELL, F.col("amount").alias("pmpm_amount"))
    for q in contract.quality:
        share: Column = F.lit(0.0)
        for t in reversed(q.tiers):  # highest tier wins: built innermost-last
            reached = F.col("value") <= t.max_value if t.max_value is not None else F.col("value") >= F.lit(t.min_value)
            share = F.when(reached, F.lit(float(t.share_of_pmpm))).otherwise(share)
        met = F.col("value").isNotNull() & (F.coalesce("denominator", F.lit(0.0)) >= q.min_denominator)
        tiers = "; ".join((f"<= {t.max_value:g}" if t.max_value is not None else f">= {t.min_value:g}")
                          + f": {t.share_of_pmpm:.0%}" for t in q.tiers)
        ql = (grid.join(pm.where(F.col("metric_id") == q.metric).select(*CELL, "value", "denominator"), CELL, "left")
              .join(pmpm_amount, CELL, "left")
              .withColumn("share", F.when(met, share).otherwise(F.lit(0.0)))
              .select(*CELL, F.lit(f"QUALITY:{q.metric}").alias("line_id"),
                      F.lit(f"{q.metric} bonus, share of the PMPM amount ({tiers})").alias("description"),
                      F.coalesce("value", F.lit(0.0)).alias("quantity"), F.col("share").alias("rate"),
                      _money(F.col("share") * F.coalesce("pmpm_amount", F.lit(0.0))).alias("amount")))
        lines = lines.unionByName(ql)
    total = lines.groupBy(*CELL).agg(_money(F.sum("amount")).alias("amount")).select(
        *CELL, F.lit("TOTAL").alias("line_id"), F.lit("total due for the month").alias("description"),
        F.lit(None).cast("double").alias("quantity"), F.lit(None).cast("double").alias("rate"), "amount")
    lines = lines.unionByName(total)
    tag = [F.lit(contract.contract_id).alias("contract_id"), F.lit(contract.plan_id).alias("plan_id")]
    out_lines = lines.select(*tag, "*", F.lit(run_id).alias("run_id"))
    out_members = members.select(*tag, *CELL, "line_id", "member_id", "units", "amount", F.lit(run_id).alias("run_id"))
    return (lakehouse.conform_to(out_lines, ECM_STATEMENT_LINE), lakehouse.conform_to(out_members, ECM_STATEMENT_MEMBER))


def write(spark: SparkSession, contracts: list[Contract], months: list[str], run_id: str) -> int:
    """Write every contract's statements for ``months`` (replacing those months' rows); lines written."""
    if not months:
        return 0
    where = "month IN (" + ", ".join(lakehouse.sql_literal(m) for m in months) + ")"
    lines_all: DataFrame | None = None
    members_all: DataFrame | None = None
    for c in contracts:
        lines, members = statement(spark, c, months, run_id)
        lines_all = lines if lines_all is None else lines_all.unionByName(lines)
        members_all = members if members_all is None else members_all.unionByName(members)
    if lines_all is None or members_all is None:
        lines_all = spark.createDataFrame([], ECM_STATEMENT_LINE.ddl)
        members_all = spark.createDataFrame([], ECM_STATEMENT_MEMBER.ddl)
    lakehouse.overwrite(lines_all, ECM_STATEMENT_LINE, replace_where=where)
    lakehouse.overwrite(members_all, ECM_STATEMENT_MEMBER, replace_where=where)
    return lakehouse.read(spark, ECM_STATEMENT_LINE).where(where).count()
