"""Consent decisions (first cut): SUD needs an active explicit consent; the rest permits TREAT.

Superseded by the policy-driven engine; kept small so the pipeline runs end to end.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from consent.tables import CONSENT, CONSENT_DECISION
from phmx import lakehouse
from phmx.tables import MEMBER_XWALK

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PURPOSES = ("TREAT", "ETREAT", "HPAYMT", "HOPERAT", "PUBHLTH", "HRESCH")
CLASSES = ("SUD", "MH", "GENERAL")
POLICY_VERSION = "0.1"
OPEN_START = datetime(1900, 1, 1, tzinfo=UTC)


def latest_versions(consents: DataFrame) -> DataFrame:
    """The newest version of each consent; consents whose newest version is entered in error drop out."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("consent_id").orderBy(F.desc("version"))
    return consents.withColumn("_r", F.row_number().over(w)).where("_r = 1").drop("_r")


def decide(spark: SparkSession, *, recipients: list[str], run_id: str, now: datetime) -> DataFrame:
    """Decisions for every member x class x purpose x recipient, as joins on the engine."""
    from pyspark.sql import functions as F

    xwalk = lakehouse.read(spark, MEMBER_XWALK)
    members = xwalk.select("member_id").distinct()
    axes = spark.createDataFrame(
        [(c, p, r) for c in CLASSES for p in PURPOSES for r in recipients],
        "data_class string, purpose string, recipient string",
    )
    grid = members.crossJoin(axes)
    consents = latest_versions(lakehouse.read(spark, CONSENT))
    node_schema = ("array<struct<path:string,effect:string,purposes:array<string>,recipients:array<string>,"
                   "data_classes:array<string>>>")
    ts = F.lit(now.replace(tzinfo=None)).cast("timestamp")
    active = consents.where(
        (F.col("status") == "active") & (F.col("period_start") <= ts)
        & (F.col("period_end").isNull() | (ts < F.col("period_end")))
        & (F.col("revoked_at").isNull() | (ts < F.col("revoked_at")))
    )
    nodes = active.select("consent_id", "source", "source_person_id",
                          F.explode(F.from_json("provisions", node_schema)).alias("n"))
    nodes = nodes.join(xwalk.select("source", "source_person_id", "member_id"), ["source", "source_person_id"])
    permits = (
        nodes.where(F.col("n.effect") == "permit")
        .select("member_id", "consent_id", F.explode("n.purposes").alias("purpose"),
                F.col("n.recipients").alias("recips"), F.col("n.data_classes").alias("classes"))
        .join(axes.where("data_class = 'SUD'"), on="purpose")
        .where(F.array_contains("classes", F.col("data_class"))
               & (F.array_contains("recips", F.col("recipient")) | F.array_contains("recips", F.lit("role:treating"))))
        .groupBy("member_id", "data_class", "purpose", "recipient")
        .agg(F.array_sort(F.collect_set("consent_id")).alias("consent_ids"))
    )
    d = grid.join(permits, ["member_id", "data_class", "purpose", "recipient"], "left")
    is_sud = F.col("data_class") == "SUD"
    decision = F.when(is_sud & F.col("consent_ids").isNotNull(), "permit").when(is_sud, "deny") \
        .when(F.col("purpose") == "TREAT", "permit").otherwise("deny")
    rule = F.when(is_sud & F.col("consent_ids").isNotNull(), "PART2-CONSENT").when(is_sud, "PART2-NO-CONSENT") \
        .when(F.col("purpose") == "TREAT", "HIPAA-TPO-TREAT").otherwise("DEFAULT-DENY")
    out = d.select(
        "member_id", "data_class", "purpose", "recipient",
        decision.alias("decision"), F.array(rule).alias("rule_ids"),
        F.coalesce(F.col("consent_ids"), F.array().cast("array<string>")).alias("consent_ids"),
        F.lit(OPEN_START.replace(tzinfo=None)).cast("timestamp").alias("valid_from"),
        F.lit(None).cast("timestamp").alias("valid_to"),
        F.lit(POLICY_VERSION).alias("policy_version"), F.lit(run_id).alias("run_id"),
        ts.alias("decided_at"),
    )
    return lakehouse.conform_to(out, CONSENT_DECISION)
