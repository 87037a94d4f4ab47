"""The once-for-every-LHJ step: consent, counting and rollups for all 61 jurisdictions at once.

Reads ``gold.measure_event`` (the measures stage) and every silver event (service counts), gates
both through the consent engine in one pass for all LHJs (:mod:`jobs.publish.consent_gate`),
aggregates on the engine once, and keeps the results in work tables (``work.publish_cells``,
``work.publish_service_counts``, ``work.publish_members``) plus a small JSON summary, so each
recipient's packaging (an Airflow mapped task, or a loop in-process) only filters its own rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from jobs.publish import consent_gate, ecm_feed, lhj_cube, work_tables
from jobs.publish.events import member_events
from phmx import lakehouse, storage
from phmx.log import get_logger
from phmx.recipients import STATE, lhj_by_recipient, plan_recipients, recipient_id
from phmx.tables import FEED_CELLS, FEED_DECISIONS, FEED_MEMBERS, FEED_SERVICE_COUNTS, MEASURE_EVENT

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from phmx.context import RunContext

log = get_logger(__name__)

CI_METHOD = "wilson"
MEASURE_COLUMNS = ("member_id", "measure_id", "period", "anchor_date", "in_denominator", "in_numerator", "exclusion_reason",
                   "lhj", "age_band", "sex", "race_ethnicity", "plan_id", "security_labels", "sensitivity")


@dataclass
class Prepared:
    """What every LHJ's packaging needs, for one run."""

    run_id: str
    period: str
    ci_method: str
    recipients: list[str]
    rules: dict[str, list[str]] = field(default_factory=dict)
    consents: dict[str, list[str]] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    plans: list[str] = field(default_factory=list)
    ecm: list[str] = field(default_factory=list)  # ECM package recipients: ECM providers, then plans
    cells: pd.DataFrame | None = None
    services: pd.DataFrame | None = None

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "period": self.period, "ci_method": self.ci_method,
                "recipients": self.recipients, "plans": self.plans, "rules": self.rules,
                "consents": self.consents, "members": self.members, "ecm": self.ecm}

    @property
    def all_recipients(self) -> list[str]:
        """Every recipient of this run: the LHJs with members, the plans, then the ECM providers
        (a plan's ECM package is published with its plan feed)."""
        return self.recipients + self.plans + [r for r in self.ecm if r not in self.plans]


# De-duplicating on the engine: ``groupBy`` over string keys with ``count``/``min`` aggregates is
# 15-40 times faster on the embedded engine than ``dropDuplicates`` or ``first`` (which keep every
# other column, arrays included): at 1,000,000 members the disclosure member list took 28 s with
# them and about 3 s without. Arrays are carried as joined strings and split back.
SEP = "\u001f"  # unit separator: never inside a label, rule id or consent id


def labels_key(col: str) -> Column:
    """A string standing for an array column's value (null stays null)."""
    from pyspark.sql import functions as F

    return F.array_join(col, SEP)


def from_key(col: str) -> Column:
    """The array back from :func:`labels_key` (an empty string is the empty array)."""
    from pyspark.sql import functions as F

    return (F.when(F.col(col).isNull(), F.lit(None).cast("array<string>"))
            .when(F.col(col) == "", F.array().cast("array<string>")).otherwise(F.split(col, SEP)))


def distinct_label_sets(df: DataFrame) -> DataFrame:
    """Distinct (member_id, security_labels) rows."""
    from pyspark.sql import functions as F

    return (df.select("member_id", labels_key("security_labels").alias("_k")).groupBy("member_id", "_k")
            .agg(F.count("*").alias("_n")).select("member_id", from_key("_k").alias("security_labels")))


def one_per_class(members: DataFrame) -> DataFrame:
    """One (recipient, member_id, data_class) row, with its rule and consent ids."""
    from pyspark.sql import functions as F

    return (members.groupBy("recipient", "member_id", "data_class")
            .agg(F.min(labels_key("rule_ids")).alias("_r"), F.min(labels_key("consent_ids")).alias("_c"))
            .select("recipient", "member_id", "data_class", from_key("_r").alias("rule_ids"),
                    from_key("_c").alias("consent_ids")))


def work_uri(run_id: str, *parts: str) -> str:
    """A file in the run's publish work folder (the prepare step's outputs for the mapped tasks)."""
    from phmx import settings

    return storage.join(settings.load().lakehouse_root, "work", "publish", run_id, *parts)


def summary_uri(run_id: str) -> str:
    return work_uri(run_id, "prepared.json")


def _measure_frame(spark: SparkSession) -> DataFrame | None:
    from pyspark.sql import functions as F

    t = MEASURE_EVENT
    if not lakehouse.exists(t):
        log.info("gold.measure_event does not exist yet: LHJ feeds carry service counts only")
        return None
    me = lakehouse.read(spark, t)
    cols = [F.col(c) if c in me.columns else F.lit(None).alias(c) for c in MEASURE_COLUMNS]
    return me.select(*cols).withColumn("security_labels", F.coalesce("security_labels", F.array().cast("array<string>")))


def prepare(spark: SparkSession, ctx: RunContext) -> Prepared:
    """Gate, count and roll up for every LHJ; write the work tables; return the in-memory result.

    Consent is planned once per frame and materialised (:func:`jobs.publish.work_tables.materialize`):
    the decisions, the permitted measure units and the permitted service rows are each written
    once, and the counts and the ledger's member list read the stored rows.
    """
    from pyspark.sql import functions as F

    scope = lhj_cube.Scope(ctx.period)
    at = ctx.started_at
    decisions = work_tables.materialize(spark, lakehouse.conform_to(consent_gate.lhj_decisions(spark),
                                                               FEED_DECISIONS), FEED_DECISIONS.fqn)
    gated: list[DataFrame] = []
    me = _measure_frame(spark)
    base = pd.DataFrame()
    if me is not None:
        ok, _ = consent_gate.lhj_permitted(spark, me, at=at, decisions=decisions)
        ok = work_tables.materialize(spark, ok, work_tables.work_table("measure_rows"))
        base = lhj_cube.base_cube(ok, scope).toPandas()
        gated.append(ok.select("member_id", "security_labels"))
    cell_table = lhj_cube.rollup(base, scope)

    # Service counts: distinct members per LHJ, month and kind, over the rows the gate permits.
    # The gate's answer for a row here depends only on (member, labels): there is no code column
    # to redact. So each distinct (member, label set) pair is gated once (about a ninth of the
    # events at 100,000 members) and the answer joined back to the events. The events are stored
    # first (a plain write): the engine plans the gate over stored rows in a fraction of the time
    # it takes over the union-join of every silver table, and de-duplicating the events before
    # the gate (the earlier way) cost the engine more than counting them all (20 s at 100,000).
    month = F.date_format("event_date", "yyyy-MM")
    ev = (member_events(spark).where(F.col("lhj").isNotNull() & F.col("event_date").isNotNull())
          .select("member_id", "lhj", month.alias("month"), "source_kind", "security_labels",
                  labels_key("security_labels").alias("_labels_key")))
    pred = scope.predicate()
    if pred:
        ev = ev.where(pred)
    ev = work_tables.materialize(spark, ev, work_tables.work_table("service_events"))
    pairs = (ev.groupBy("member_id", "_labels_key").agg(F.count("*").alias("_n"))
             .select("member_id", from_key("_labels_key").alias("security_labels"), "_labels_key"))
    ok_pairs, _ = consent_gate.lhj_permitted(spark, pairs, at=at, decisions=decisions)
    ok_pairs = work_tables.materialize(spark, ok_pairs, work_tables.work_table("service_pairs"))
    services: pd.DataFrame = (ev.join(ok_pairs.select("member_id", "_labels_key"), ["member_id", "_labels_key"])
                .groupBy("lhj", "month", "source_kind").agg(F.countDistinct("member_id").alias("members"))
                .toPandas())
    gated.append(ok_pairs.select("member_id", "security_labels"))

    counted = gated[0]
    for g in gated[1:]:
        counted = counted.unionByName(g)
    counted = distinct_label_sets(counted)
    members = consent_gate.lhj_disclosure_members(spark, counted, at=at, decisions=decisions)
    members = one_per_class(members).withColumn("run_id", F.lit(ctx.run_id))
    written = work_tables.materialize(spark, lakehouse.conform_to(members, FEED_MEMBERS), FEED_MEMBERS.fqn)

    ct = cell_table.assign(run_id=ctx.run_id)
    st = services.assign(run_id=ctx.run_id)
    work_tables.materialize(spark, spark.createDataFrame(ct[FEED_CELLS.column_names] if len(ct) else [],
                                                    FEED_CELLS.ddl), FEED_CELLS.fqn)
    work_tables.materialize(spark, spark.createDataFrame(st[FEED_SERVICE_COUNTS.column_names] if len(st) else [],
                                                    FEED_SERVICE_COUNTS.ddl), FEED_SERVICE_COUNTS.fqn)

    stats = (written.groupBy("recipient").agg(
        F.countDistinct("member_id").alias("members"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list(F.coalesce("rule_ids", F.array().cast("array<string>"))))))
        .alias("rules"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list(F.coalesce("consent_ids", F.array().cast("array<string>"))))))
        .alias("consents")).collect())
    lhjs = set(cell_table["lhj"]) if len(cell_table) else set()
    lhjs |= set(services["lhj"]) if len(services) else set()
    lhjs.discard(STATE)
    # Members with no California LHJ (an address in another state, none at all: measures file them under
    # "Unknown") count in the statewide rows but make no LHJ package: there is no such recipient.
    known = lhj_by_recipient()
    unplaced = sorted(x for x in lhjs if x and recipient_id(x) not in known)
    if unplaced:
        log.info("no LHJ package for %d group(s) of members without a California LHJ", len(unplaced))
    prepared = Prepared(ctx.run_id, ctx.period.label, CI_METHOD,
                        sorted(recipient_id(x) for x in lhjs if x and recipient_id(x) in known),
                        rules={r["recipient"]: list(r["rules"]) for r in stats},
                        consents={r["recipient"]: list(r["consents"]) for r in stats},
                        members={r["recipient"]: int(r["members"]) for r in stats},
                        plans=plan_recipients(spark), ecm=ecm_feed.recipients(spark), cells=cell_table,
                        services=services)
    storage.write_text(summary_uri(ctx.run_id), json.dumps(prepared.summary(), indent=1, sort_keys=True),
                       content_type="application/json")
    log.info("prepared %d LHJ feeds: %d cells, %d service-count rows", len(prepared.recipients), len(cell_table),
             len(services))
    return prepared


def read_summary(run_id: str) -> Prepared:
    """The prepared summary of ``run_id`` from storage (no engine needed: Airflow tasks read it)."""
    from phmx.errors import ConfigError

    uri = summary_uri(run_id)
    if not storage.exists(uri):
        raise ConfigError(f"no prepared publish for run {run_id}", hint="run the publish prepare step first")
    doc = json.loads(storage.read_bytes(uri))
    return Prepared(doc["run_id"], doc["period"], doc["ci_method"], list(doc["recipients"]), doc["rules"],
                    doc["consents"], doc["members"], list(doc.get("plans", [])), list(doc.get("ecm", [])))


def load(spark: SparkSession, run_id: str) -> Prepared:
    """The prepared summary of ``run_id`` (cells and counts are read per recipient when needed)."""
    del spark  # the frames are read lazily by lhj_frames
    return read_summary(run_id)


def lhj_frames(spark: SparkSession, prepared: Prepared, lhj: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(this LHJ's cells, the state cells, this LHJ's service counts), from memory or the work work_tables."""
    from pyspark.sql import functions as F

    if prepared.cells is not None and prepared.services is not None:
        c, s = prepared.cells, prepared.services
        mine = c[c["lhj"] == lhj] if len(c) else c
        state = c[c["lhj"] == STATE] if len(c) else c
        mine_svc = s[s["lhj"] == lhj] if len(s) else s
        return mine.reset_index(drop=True), state.reset_index(drop=True), mine_svc.reset_index(drop=True)
    run = F.col("run_id") == prepared.run_id
    cells: pd.DataFrame = lakehouse.read(spark, FEED_CELLS).where(run & F.col("lhj").isin(lhj, STATE)) \
        .drop("run_id").toPandas()
    svc: pd.DataFrame = lakehouse.read(spark, FEED_SERVICE_COUNTS).where(run & (F.col("lhj") == lhj)) \
        .drop("run_id").toPandas()
    cells = lhj_cube.ordered(cells) if len(cells) else cells
    mine = cells[cells["lhj"] == lhj].reset_index(drop=True) if len(cells) else cells
    state = cells[cells["lhj"] == STATE].reset_index(drop=True) if len(cells) else cells
    return mine, state, svc.sort_values(["month", "source_kind"]).reset_index(drop=True) if len(svc) else svc


def disclosure_members(spark: SparkSession, run_id: str, recipient: str) -> DataFrame:
    from pyspark.sql import functions as F

    return (lakehouse.read(spark, FEED_MEMBERS)
            .where((F.col("run_id") == run_id) & (F.col("recipient") == recipient))
            .select("member_id", "data_class", "rule_ids", "consent_ids"))
