"""The decision engine: permit / deny per (member, data class, purpose, recipient) over time.

Everything member-level runs on the engine as joins, windows and aggregations (no Python per
member). Steps:

1. **Consent intervals.** Each version of a consent is in force from its own start (the first
   version: ``period_start``; a later version: its ``recorded_at``, or ``revoked_at`` for a
   revocation) until the next version starts, clipped to ``[period_start, period_end)`` and to
   ``revoked_at``. Only ``active`` versions grant anything. A consent whose newest version is
   ``entered-in-error`` is ignored entirely. Revocation ends a consent at its timestamp and
   never earlier (not retroactive); expiry ends it at ``period_end``.
2. **Provisions.** Each interval's provision nodes (``silver.consent.provisions``) are exploded
   and matched with the grid of (class, purpose, recipient) the run decides: an empty constraint
   matches anything, except that classes marked ``explicit_consent`` must be named by a permit.
   Recipients match by id or by ``role:<role>``.
3. **Timeline.** A member's breakpoints are every interval edge plus the 12th and 18th
   birthdays (age bands decide whose consent counts: ``grantors`` in the policy). Between two
   breakpoints nothing changes, so each (member, class, purpose, recipient, segment) is decided
   once: the most specific eligible provision wins (specificity = 10 x constrained fields +
   depth), deny before permit at equal specificity; mandatory rules of the policy decide
   regardless of consent; with no eligible provision the baseline (law without consent) decides.
4. **Coalesce.** Adjacent segments with the same outcome are merged into one row with
   ``[valid_from, valid_to)`` (``valid_to`` null = open), so a disclosure at time T uses the
   decision in force at T.

Members without any matching provision get the baseline for every (class, purpose, recipient)
with one open interval: one cross join, no timeline work.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from consent.disclosure_policy import Policy, load_policy
from phmx import lakehouse, storage
from phmx import settings as settings_mod
from phmx.tables import CONSENT, CONSENT_DECISION, MEMBER, MEMBER_XWALK

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

OPEN_START = datetime(1900, 1, 1)
NODE_SCHEMA = (
    "array<struct<path:string,parent:string,depth:int,effect:string,purposes:array<string>,"
    "recipients:array<string>,data_classes:array<string>,period_start:string,period_end:string>>"
)
_GRID_DDL = (
    "data_class string, purpose string, recipient string, roles array<string>, base_effect string,"
    "base_rules array<string>, mandatory boolean, annotations array<string>, explicit boolean,"
    "minor_controlled boolean, permit_rule string, deny_rule string"
)
_COMBO = ["member_id", "data_class", "purpose", "recipient"]


@dataclass(frozen=True)
class Inputs:
    """What the engine reads: consents (all versions), the crosswalk and member birth dates."""

    consents: DataFrame
    xwalk: DataFrame
    members: DataFrame

    @classmethod
    def from_lakehouse(cls, spark: SparkSession) -> Inputs:
        from pyspark.sql import functions as F

        consents = lakehouse.read(spark, CONSENT) if lakehouse.exists(CONSENT) else spark.createDataFrame([], CONSENT.ddl)
        xwalk = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
        gm = lakehouse.read(spark, MEMBER).select("member_id", "birth_date")
        ids = xwalk.select("member_id").union(gm.select("member_id")).distinct()
        members = ids.join(gm.groupBy("member_id").agg(F.min("birth_date").alias("birth_date")), "member_id", "left")
        return cls(consents, xwalk, members)


def _ts(dt: datetime) -> Column:
    from pyspark.sql import functions as F

    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return F.lit(dt).cast("timestamp")


def consent_intervals(consents: DataFrame) -> DataFrame:
    """One row per consent version with the interval it grants: [grant_start, grant_end).

    Also carries ``revoked_from`` / ``expired_from`` for the newest version, used only to explain
    denials (rule ids CONSENT-REVOKED / CONSENT-EXPIRED).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_id = Window.partitionBy("consent_id").orderBy("version")
    newest = Window.partitionBy("consent_id").orderBy(F.desc("version"))
    c = consents.withColumn("_rank_newest", F.row_number().over(newest))
    eie = c.where((F.col("_rank_newest") == 1) & (F.col("status") == "entered-in-error")).select("consent_id")
    c = c.join(eie, "consent_id", "left_anti")
    start = F.when(F.col("version") == F.min("version").over(Window.partitionBy("consent_id")), F.col("period_start")) \
        .when(F.col("revoked_at").isNotNull() & (F.col("status") != "active"), F.col("revoked_at")) \
        .otherwise(F.col("recorded_at"))
    c = c.withColumn("_vstart", start)
    c = c.withColumn("_vend", F.lead("_vstart").over(by_id))
    g_start = F.greatest(F.col("_vstart"), F.col("period_start"))
    g_end = F.least(F.col("_vend"), F.col("period_end"), F.col("revoked_at"))  # least() skips nulls
    c = c.withColumn("grant_start", F.coalesce(g_start, F.col("period_start"), F.col("_vstart"))) \
        .withColumn("grant_end", g_end)
    # Revoked/expired markers come from the newest version only (what the consent is now).
    last = F.col("_rank_newest") == 1
    c = c.withColumn("revoked_from", F.when(last & F.col("revoked_at").isNotNull(), F.col("revoked_at"))) \
        .withColumn("expired_from", F.when(last & F.col("period_end").isNotNull(), F.col("period_end")))
    return c


def provision_nodes(consents: DataFrame, xwalk: DataFrame) -> DataFrame:
    """Exploded provision nodes with member, interval and kind (grant / revoked / expired)."""
    from pyspark.sql import functions as F

    iv = consent_intervals(consents)
    nodes = iv.select(
        "consent_id", "version", "source", "source_person_id", "grantor", "status",
        "grant_start", "grant_end", "revoked_from", "expired_from",
        F.explode(F.from_json("provisions", NODE_SCHEMA)).alias("n"),
    ).join(xwalk, ["source", "source_person_id"])
    n_start = F.to_timestamp(F.col("n.period_start"))
    n_end = F.to_timestamp(F.col("n.period_end"))
    base = nodes.select(
        "member_id", "consent_id", "version", F.lower("grantor").alias("grantor"), "status",
        F.col("n.path").alias("path"), F.coalesce(F.col("n.depth"), F.lit(0)).alias("depth"),
        F.lower(F.col("n.effect")).alias("effect"),
        F.coalesce(F.col("n.purposes"), F.array().cast("array<string>")).alias("purposes"),
        F.coalesce(F.col("n.recipients"), F.array().cast("array<string>")).alias("recipients"),
        F.coalesce(F.col("n.data_classes"), F.array().cast("array<string>")).alias("classes"),
        F.greatest(F.col("grant_start"), F.coalesce(n_start, F.col("grant_start"))).alias("start"),
        F.least(F.col("grant_end"), n_end).alias("end"),
        "revoked_from", "expired_from",
    )
    grants = base.where((F.col("status") == "active") & F.col("start").isNotNull()
                        & (F.col("end").isNull() | (F.col("start") < F.col("end")))) \
        .withColumn("kind", F.lit("grant"))
    # Explanations: a permit that is no longer in force because it was revoked or expired.
    revoked = base.where(F.col("revoked_from").isNotNull() & (F.col("effect") == "permit")) \
        .withColumn("start", F.col("revoked_from")).withColumn("end", F.lit(None).cast("timestamp")) \
        .withColumn("kind", F.lit("revoked"))
    expired = base.where(F.col("expired_from").isNotNull() & F.col("revoked_from").isNull()
                         & (F.col("effect") == "permit") & (F.col("status") == "active")) \
        .withColumn("start", F.col("expired_from")).withColumn("end", F.lit(None).cast("timestamp")) \
        .withColumn("kind", F.lit("expired"))
    cols = ["member_id", "consent_id", "grantor", "path", "depth", "effect", "purposes", "recipients",
            "classes", "start", "end", "kind"]
    return grants.select(*cols).unionByName(revoked.select(*cols)).unionByName(expired.select(*cols))


def _match_grid(nodes: DataFrame, grid: DataFrame, policy: Policy) -> DataFrame:
    """Nodes x grid rows they apply to (purpose, class and recipient constraints)."""
    from pyspark.sql import functions as F

    all_purposes = F.array(*[F.lit(p) for p in policy.purposes])
    implicit = [c for c, dc in sorted(policy.classes.items()) if not dc.explicit_consent]
    every = sorted(policy.classes)
    # An empty class list means "all data": for a permit, all classes not needing explicit consent;
    # for a deny, every class (a deny of everything also covers notes).
    any_cls = F.when(F.col("effect") == "deny", F.array(*[F.lit(c) for c in every])) \
        .otherwise(F.array(*[F.lit(c) for c in implicit]))
    x = nodes.withColumn("purpose", F.explode(F.when(F.size("purposes") == 0, all_purposes).otherwise(F.col("purposes")))) \
        .withColumn("data_class", F.explode(F.when(F.size("classes") == 0, any_cls).otherwise(F.col("classes"))))
    m = x.join(F.broadcast(grid), ["data_class", "purpose"])
    rec_ok = (F.size("recipients") == 0) | F.array_contains("recipients", F.col("recipient")) \
        | F.coalesce(F.arrays_overlap("recipients", "roles"), F.lit(False))
    return m.where(rec_ok)


def _band(ts: Column, bday_minor: Column, bday_major: Column) -> Column:
    from pyspark.sql import functions as F

    return F.when(bday_minor.isNull(), F.lit("adult")) \
        .when(ts < bday_minor, F.lit("under_minor_age")) \
        .when(ts < bday_major, F.lit("minor")).otherwise(F.lit("adult"))


def _eligible(policy: Policy) -> Column:
    """Whether a node's grantor may consent for this class at this age band (policy.grantors)."""
    from pyspark.sql import functions as F

    cond = F.lit(False)
    for mc in (True, False):
        for band in ("under_minor_age", "minor", "adult"):
            allowed = policy.eligible_grantors(mc, band)
            cond = cond | ((F.col("minor_controlled") == F.lit(mc)) & (F.col("band") == band)
                           & F.col("grantor").isin(*allowed))
    return cond


_open_scratch: list[lakehouse.Scratch] = []


def _scratch(spark: SparkSession) -> lakehouse.Scratch:
    """A scratch area (:class:`phmx.lakehouse.Scratch`, area ``consent``) for results read several
    times in the plan: without it the engine recomputes them for every use (measured: 3-5x
    slower). The decisions read from it lazily, so it stays until :func:`cleanup_scratch`."""
    scratch = lakehouse.Scratch(spark, "consent")
    _open_scratch.append(scratch)
    return scratch


def cleanup_scratch() -> None:
    """Remove the engine's intermediate files (call after the decisions have been written)."""
    while _open_scratch:
        _open_scratch.pop().drop()
    legacy = storage.join(settings_mod.load().lakehouse_root, "_scratch", "consent")
    if storage.is_s3(legacy) or Path(legacy).exists():
        storage.delete_prefix(legacy)  # where earlier versions kept it


def decide(spark: SparkSession, *, pairs: list[tuple[str, str]], run_id: str, decided_at: datetime,
           policy: Policy | None = None, inputs: Inputs | None = None) -> DataFrame:
    """Decisions for every member x data class x (recipient, purpose) pair, in CONSENT_DECISION shape."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    policy = policy or load_policy()
    inputs = inputs or Inputs.from_lakehouse(spark)
    grid = spark.createDataFrame(policy.grid(pairs), _GRID_DDL)
    grid = F.broadcast(grid)
    empty = F.array().cast("array<string>")

    # -- 2. provisions matched to the grid, per member
    scratch = _scratch(spark)
    matched = scratch.put_parquet(_match_grid(provision_nodes(inputs.consents, inputs.xwalk), grid, policy), "matched")
    members = inputs.members.select(
        "member_id",
        F.to_timestamp(F.add_months(F.col("birth_date"), 12 * policy.minor_age)).alias("bday_minor"),
        F.to_timestamp(F.add_months(F.col("birth_date"), 12 * policy.majority_age)).alias("bday_major"),
    )
    touched = matched.select(*_COMBO).distinct()

    # -- 3. timeline segments of members with matching provisions
    first = matched.groupBy("member_id").agg(F.min("start").alias("first_start"))
    bdays = first.join(members, "member_id") \
        .select("member_id", "first_start", F.explode(F.array("bday_minor", "bday_major")).alias("t")) \
        .where(F.col("t") > F.col("first_start")).select("member_id", "t")  # earlier ones change nothing
    edges = matched.select("member_id", F.col("start").alias("t")) \
        .union(matched.select("member_id", F.col("end").alias("t"))) \
        .union(bdays) \
        .union(first.select("member_id", _ts(OPEN_START).alias("t"))) \
        .where(F.col("t").isNotNull() & (F.col("t") >= _ts(OPEN_START))).distinct()
    w_t = Window.partitionBy("member_id").orderBy("t")
    segs = edges.withColumn("seg_end", F.lead("t").over(w_t)).withColumnRenamed("t", "seg_start")
    combos = touched.join(segs, "member_id").join(members, "member_id", "left") \
        .withColumn("band", _band(F.col("seg_start"), F.col("bday_minor"), F.col("bday_major")))
    combos = combos.join(grid, ["data_class", "purpose", "recipient"])
    live = matched.select(*_COMBO, "consent_id", "grantor", "depth", "effect", "purposes", "recipients",
                          "classes", "start", "end", "kind")
    cover = (F.col("l.start") <= F.col("c.seg_start")) & (F.col("l.end").isNull() | (F.col("c.seg_start") < F.col("l.end")))
    on = [F.col(f"c.{k}") == F.col(f"l.{k}") for k in _COMBO] + [cover]
    j = combos.alias("c").join(live.alias("l"), on, "left").select(
        "c.*", "l.consent_id", "l.grantor", "l.depth", "l.effect", "l.purposes", "l.recipients", "l.classes", "l.kind")
    j = j.withColumn("eligible", F.col("kind") == "grant") \
        .withColumn("eligible", F.col("eligible") & _eligible(policy))
    spec = (F.when(F.size("purposes") > 0, 1).otherwise(0) + F.when(F.size("classes") > 0, 1).otherwise(0)
            + F.when(F.size("recipients") > 0, 1).otherwise(0)) * 10 + F.col("depth")
    j = j.withColumn("key", F.when(F.col("eligible"), spec * 2 + F.when(F.col("effect") == "deny", 1).otherwise(0)))
    seg_keys = [*_COMBO, "seg_start"]
    j = j.withColumn("top", F.max("key").over(Window.partitionBy(*seg_keys)))
    is_top = F.col("eligible") & (F.col("key") == F.col("top"))
    agg = j.groupBy(*seg_keys, "seg_end", "base_effect", "base_rules", "mandatory", "annotations",
                    "permit_rule", "deny_rule").agg(
        F.max("top").alias("top"),
        F.array_sort(F.collect_set(F.when(is_top, F.col("consent_id")))).alias("winners"),
        F.max(F.when(F.col("kind") == "grant", F.lit(1)).otherwise(0)).alias("any_grant"),
        F.max(F.when((F.col("kind") == "grant") & ~F.col("eligible"), 1).otherwise(0)).alias("excluded"),
        F.array_sort(F.collect_set(F.when((F.col("kind") == "grant") & ~F.col("eligible"), F.col("consent_id")))).alias("excluded_ids"),
        F.array_sort(F.collect_set(F.when(F.col("kind") == "revoked", F.col("consent_id")))).alias("revoked_ids"),
        F.array_sort(F.collect_set(F.when(F.col("kind") == "expired", F.col("consent_id")))).alias("expired_ids"),
    )
    consent_effect = F.when(F.col("top") % 2 == 1, F.lit("deny")).otherwise(F.lit("permit"))
    by_consent = F.col("top").isNotNull() & ~F.col("mandatory")
    decision = F.when(by_consent, consent_effect).otherwise(F.col("base_effect"))
    explain = F.concat(
        F.when(F.col("excluded") == 1, F.array(F.lit(policy.grantor_rule))).otherwise(empty),
        F.when(F.size("revoked_ids") > 0, F.array(F.lit(policy.consent_revoked))).otherwise(empty),
        F.when(F.size("expired_ids") > 0, F.array(F.lit(policy.consent_expired))).otherwise(empty),
    )
    rules = F.when(by_consent & (consent_effect == "deny"), F.array(F.col("deny_rule"))) \
        .when(by_consent, F.array(F.col("permit_rule"))) \
        .otherwise(F.concat(F.col("base_rules"), explain))
    rules = F.array_sort(F.array_distinct(F.concat(
        rules, F.when(decision == "permit", F.col("annotations")).otherwise(empty))))
    cids = F.when(by_consent, F.col("winners")).otherwise(
        F.array_sort(F.array_distinct(F.concat("excluded_ids", "revoked_ids", "expired_ids"))))
    seg_dec = agg.select(*seg_keys, "seg_end", decision.alias("decision"), rules.alias("rule_ids"),
                         cids.alias("consent_ids"))

    # -- 4. coalesce adjacent segments with the same outcome. A run starts where the outcome differs
    # from the previous segment's; it ends where the next run starts (the last segment of every
    # timeline is open-ended, so the last run is too). Windows and a filter only: a GROUP BY on a
    # derived island key lost that key on the embedded engine (its optimiser pruned it).
    seg_dec = scratch.put_parquet(seg_dec.withColumn("_k", F.concat_ws("\x1f", *_COMBO)), "segments")
    w_c = Window.partitionBy("_k").orderBy("seg_start")
    outcome = F.concat_ws("|", F.col("decision"), F.array_join("rule_ids", ","), F.array_join("consent_ids", ","))
    starts = seg_dec.withColumn("_outcome", outcome) \
        .withColumn("_prev", F.lag("_outcome").over(w_c)) \
        .where(F.col("_prev").isNull() | (F.col("_prev") != F.col("_outcome")))
    timeline = starts.withColumn("valid_to", F.lead("seg_start").over(w_c)) \
        .withColumnRenamed("seg_start", "valid_from")

    # -- members and combos no provision touches: the baseline, open interval
    base = grid.select(
        "data_class", "purpose", "recipient", F.col("base_effect").alias("decision"),
        F.array_sort(F.concat("base_rules", F.when(F.col("base_effect") == "permit", F.col("annotations"))
                              .otherwise(empty))).alias("rule_ids"))
    # Members no provision touches (most of them) take the baseline for everything: a cross join
    # with no anti join over the big side; touched members take it for their untouched combos.
    touched_members = touched.select("member_id").distinct()
    untouched = inputs.members.select("member_id").join(touched_members, "member_id", "left_anti")
    plain = untouched.crossJoin(base).unionByName(
        touched_members.crossJoin(base).join(touched, _COMBO, "left_anti")) \
        .withColumn("consent_ids", empty) \
        .withColumn("valid_from", _ts(OPEN_START)).withColumn("valid_to", F.lit(None).cast("timestamp"))
    cols = [*_COMBO, "decision", "rule_ids", "consent_ids", "valid_from", "valid_to"]
    out = timeline.select(*cols).unionByName(plain.select(*cols)) \
        .withColumn("policy_version", F.lit(policy.version)).withColumn("run_id", F.lit(run_id)) \
        .withColumn("decided_at", _ts(decided_at))
    return lakehouse.conform_to(out, CONSENT_DECISION)


def decision_at(decisions: DataFrame, at: datetime) -> DataFrame:
    """The decisions in force at ``at`` (valid_from <= at < valid_to, open end)."""
    from pyspark.sql import functions as F

    t = _ts(at)
    return decisions.where((F.col("valid_from") <= t) & (F.col("valid_to").isNull() | (t < F.col("valid_to"))))
