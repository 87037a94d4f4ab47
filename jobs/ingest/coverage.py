"""``within_coverage``: is a claim's service date inside a coverage span of that member and plan?

A cross-file check (claims against the enrollment the hub already holds), so it cannot run
while a file is parsed: ``jobs.ingest.run`` runs it on the engine right after the batch's
bronze rows are written, as one anti-join per feed, and adds the rows that fall outside every
span to the receipt as warnings (rule ``service_within_coverage``; the rows stay loaded,
because late or retroactive enrollment is common and the enrollment may simply not be in yet).
The match is on the same submitter (member ids are local to a plan), member id and plan id,
with ``coverage_start <= service date <= coverage_end`` (an open end means still covered).
``phmx validate`` runs offline without the lakehouse and skips this check (it says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.ingest.receipts import group_findings, rule_summary
from jobs.ingest.rules import how_to_fix
from phmx import lakehouse
from phmx.feedspec import FeedSpec, RuleSpec
from phmx.log import get_logger

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.ingest.process import FileOutcome

log = get_logger(__name__)

SKIPPED_NOTE = "service_within_coverage not checked: the hub holds no {table} rows yet"


def coverage_rules(spec: FeedSpec) -> list[RuleSpec]:
    return [r for r in spec.rules if r.check == "within_coverage"]


def coverage_tables(specs: dict[str, FeedSpec]) -> set[str]:
    """Bronze tables other feeds are checked against (their files are written first)."""
    return {str(r.params["against"]["table"]) for s in specs.values() for r in coverage_rules(s)}


def check_within_coverage(spark: SparkSession, outcomes: list[FileOutcome], specs: dict[str, FeedSpec]) -> None:
    """Add ``within_coverage`` warnings to the receipts of accepted files (rows already in bronze).

    One anti-join per bronze table and rule for the whole batch (the batch's submissions
    filtered together), not one per file: on a JVM engine each join is a handful of Spark jobs
    and Delta file listings, and a month brings dozens of files per feed.
    """
    from pyspark.sql import functions as F

    # Files of one bronze table checked by the same rule (same fields, same spans) share a join.
    groups: dict[tuple[str, str, str], tuple[RuleSpec, list[FileOutcome]]] = {}
    for o in outcomes:
        spec = o.spec
        r = o.receipt
        if spec is None or r.status not in ("accepted", "accepted_with_errors") or not r.rows_accepted:
            continue
        for rule in coverage_rules(spec):
            target = f"bronze.{rule.params['against']['table']}"
            if not lakehouse.exists(target):
                note = SKIPPED_NOTE.format(table=rule.params["against"]["table"])
                if note not in r.notes:
                    r.notes.append(note)
                continue
            key = (spec.bronze_table, rule.id, repr((rule.fields, rule.params["against"])))
            groups.setdefault(key, (rule, []))[1].append(o)
    for (table, _, _), (rule, group) in groups.items():
        against = rule.params["against"]
        member, plan, service = rule.fields
        e_member, e_plan, e_start, e_end = against["fields"]
        claims = (lakehouse.read(spark, f"bronze.{table}")
                  .where(F.col("submission_id").isin([o.receipt.submission_id for o in group]))
                  .select("submission_id", "row_number", "submitter", F.col(member).alias("_m"),
                          F.col(plan).alias("_p"), F.col(service).alias("_d")))
        spans = lakehouse.read(spark, f"bronze.{against['table']}").select(
            F.col("submitter").alias("_es"), F.col(e_member).alias("_em"), F.col(e_plan).alias("_ep"),
            F.col(e_start).alias("_s"), F.col(e_end).alias("_e"))
        cond = ((claims["submitter"] == spans["_es"]) & (claims["_m"] == spans["_em"])
                & (claims["_p"] == spans["_ep"]) & (spans["_s"] <= claims["_d"])
                & (spans["_e"].isNull() | (spans["_e"] >= claims["_d"])))
        outside: dict[str, list[int]] = {}
        for x in claims.join(spans, cond, "left_anti").select("submission_id", "row_number").collect():
            outside.setdefault(x.submission_id, []).append(int(x.row_number))
        for o in group:
            rows = sorted(outside.get(o.receipt.submission_id, []))
            if rows:
                _warn(o, rule, rows)


def _warn(o: FileOutcome, rule: RuleSpec, rows: list[int]) -> None:
    """The rows outside coverage as warnings on the file's receipt (the rows stay loaded)."""
    spec, r = o.spec, o.receipt
    assert spec is not None  # noqa: S101 - only accepted files with a spec are checked
    service = rule.fields[2]
    msg = rule.message or f"{service} is outside every coverage span of the member and plan"
    o.warning_findings.extend((row, rule.id, "", msg, "") for row in rows)
    fixes = {rule.id: how_to_fix("service_within_coverage", spec.how_to_fix), **spec.how_to_fix}
    r.warnings = group_findings(o.warning_findings, fixes)
    r.rule_summary = rule_summary(o.quarantine, o.warning_findings, r.rows_landed)
    log.info("submission %s: %d row(s) outside coverage", r.submission_id, len(rows))
