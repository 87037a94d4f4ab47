"""Bulk enforcement: the rows of an outbound dataset that a recipient may receive (joins only).

:func:`permitted_rows` is what the publish stage calls for each outbound dataset (recipient,
purpose, disclosure time). Decisions in force at that time are pivoted to one row per member
(one 0/1 column per data class) and joined to the events; everything else is column
expressions. No Python runs per row.

Per row and per data class the row carries (by its ``security_labels``):

* the class is permitted: nothing happens;
* denied, and the policy says ``redact`` for it, the row carries none of the class's
  ``withhold_if_labels`` (i.e. it is not a record of a Part 2 / LPS program) and its codes
  explain the label: the class's codes are removed from the named columns (e.g. SUD diagnoses
  dropped from an otherwise permitted encounter) and the class's labels removed;
* denied otherwise: the row is withheld.

GENERAL must be permitted for a row to go at all. Members with no decision get nothing (deny by
default). ``permit_deidentified`` counts as permit only when the caller passes
``deidentified=True`` (output de-identified per 45 CFR 164.514(b), e.g. LHJ aggregates).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from consent import decision_engine, labels
from consent.disclosure_policy import Policy, load_policy
from phmx import lakehouse
from phmx.errors import ConsentError
from phmx.log import get_logger
from phmx.tables import CONSENT_DECISION

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = get_logger(__name__)


def decisions_for(spark: SparkSession, *, recipient: str, purpose: str, at: datetime,
                  decisions: DataFrame | None = None) -> DataFrame:
    """Decisions in force at ``at`` for one (recipient, purpose).

    From ``decisions`` if given (used as they are), else gold.consent_decision, where the consent
    stage must have decided the pair: enforcement never decides (ConsentError naming the pair).
    """
    from pyspark.sql import functions as F

    pair = (F.col("recipient") == recipient) & (F.col("purpose") == purpose)
    if decisions is None:
        stored = lakehouse.read(spark, CONSENT_DECISION) if lakehouse.exists(CONSENT_DECISION) else None
        if stored is None or stored.where(pair).limit(1).count() == 0:
            raise ConsentError(f"no consent decisions for recipient {recipient}, purpose {purpose} in "
                               f"{CONSENT_DECISION.fqn}", hint="run the consent stage, which decides every "
                               "outbound (recipient, purpose) the policy lists")
        decisions = stored
    return decision_engine.decision_at(decisions.where(pair), at)


def _ok(decision: Column, deidentified: bool) -> Column:
    from pyspark.sql import functions as F

    ok = decision == "permit"
    if deidentified:
        ok = ok | (decision == "permit_deidentified")
    return F.when(ok, 1).otherwise(0)


def permitted_rows(spark: SparkSession, events: DataFrame, *, recipient: str, purpose: str, at: datetime,
                   member_col: str = "member_id", deidentified: bool = False, policy: Policy | None = None,
                   decisions: DataFrame | None = None) -> DataFrame:
    """Rows of ``events`` that ``recipient`` may receive for ``purpose`` at ``at``, denied classes redacted.

    ``events`` needs ``member_col`` and ``security_labels``; code columns named by the policy's
    redaction rules (``diagnosis_codes``) are redacted when present. The result has the same
    columns as ``events``.
    """
    from pyspark.sql import functions as F

    policy = policy or load_policy()
    d = decisions_for(spark, recipient=recipient, purpose=purpose, at=at, decisions=decisions)
    names = sorted(policy.classes)
    wide = d.groupBy(F.col("member_id").alias("_consent_member")).agg(*[
        F.max(F.when(F.col("data_class") == c, _ok(F.col("decision"), deidentified)).otherwise(0)).alias(f"_ok_{c}")
        for c in names
    ])
    x = events.join(wide, events[member_col] == wide["_consent_member"], "left")
    present = set(events.columns)
    lab = F.col("security_labels")
    # Flags first, all from the row as it arrived (flat expressions: nested per-class rewrites of
    # the same columns blew up the engine's plan); then one rewrite per redacted column.
    keep = F.coalesce(F.col("_ok_GENERAL"), F.lit(0)) == 1
    drop_in: dict[str, list[tuple[str, object]]] = {}
    drop_labels: list[tuple[str, tuple[str, ...]]] = []
    for c in names:
        dc = policy.classes[c]
        if c == "GENERAL":
            continue
        denied = labels.class_expr(lab, c, policy) & (F.coalesce(F.col(f"_ok_{c}"), F.lit(0)) == 0)
        can_redact = dc.action == "redact" and dc.valueset is not None and all(col in present for col in dc.columns)
        if not can_redact:
            x = x.withColumn(f"_withhold_{c}", denied)
            keep = keep & ~F.col(f"_withhold_{c}")
            continue
        vs = policy.valueset(dc.valueset)  # type: ignore[arg-type]
        explained = F.lit(True)
        for col in dc.columns:
            explained = explained & labels.any_code_in(F.col(col), vs)
        redact = denied & explained
        if dc.withhold_if_labels:
            redact = redact & ~labels.has_labels(lab, any_of=dc.withhold_if_labels)
        x = x.withColumn(f"_redact_{c}", redact).withColumn(f"_withhold_{c}", denied & ~redact)
        keep = keep & ~F.col(f"_withhold_{c}")
        for col in dc.columns:
            drop_in.setdefault(col, []).append((c, vs))
        drop_labels.append((c, (*dc.any_labels, *dc.all_labels)))
    x = x.where(keep)
    for col, items in drop_in.items():
        x = x.withColumn(col, F.filter(F.col(col), _keep_code(items)))
    if drop_labels:
        gone = F.array().cast("array<string>")
        for c, labs in drop_labels:
            gone = F.concat(gone, F.when(F.col(f"_redact_{c}"), F.array(*[F.lit(v) for v in labs]))
                            .otherwise(F.array().cast("array<string>")))
        x = x.withColumn("security_labels", F.array_except(F.col("security_labels"), gone))
    return x.select(*events.columns)


def _keep_code(items: list[tuple[str, object]]):  # noqa: ANN202 - a one-argument lambda for F.filter
    """A lambda keeping a code unless a redacted class's value set holds it."""
    from pyspark.sql import functions as F

    def keep(code: Column) -> Column:
        hit = F.lit(False)
        for c, vs in items:
            hit = hit | (F.col(f"_redact_{c}") & labels.code_in(code, vs))  # type: ignore[arg-type]
        return ~hit

    return keep


def row_classes(labels_col: str | Column = "security_labels", policy: Policy | None = None) -> Column:
    """``array<string>`` of the policy data classes a row is in (GENERAL always)."""
    from pyspark.sql import functions as F

    policy = policy or load_policy()
    arr = F.array(*[F.when(labels.class_expr(labels_col, c, policy), F.lit(c)) for c in sorted(policy.classes)])
    return F.filter(arr, lambda v: v.isNotNull())


def disclosure_members(spark: SparkSession, permitted: DataFrame, *, recipient: str, purpose: str, at: datetime,
                       member_col: str = "member_id", policy: Policy | None = None,
                       decisions: DataFrame | None = None) -> DataFrame:
    """(member_id, data_class, rule_ids, consent_ids) of what ``permitted`` discloses: for the ledger.

    Pass the rows actually sent (after :func:`permitted_rows`), then hand the result to
    ``consent.ledger.record_disclosure(members_by_class=...)``.
    """
    from pyspark.sql import functions as F

    policy = policy or load_policy()
    d = decisions_for(spark, recipient=recipient, purpose=purpose, at=at, decisions=decisions)
    mc = permitted.select(F.col(member_col).alias("member_id"),
                          F.explode(row_classes("security_labels", policy)).alias("data_class")).distinct()
    return mc.join(d.select("member_id", "data_class", "rule_ids", "consent_ids"), ["member_id", "data_class"], "left")
