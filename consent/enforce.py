"""Bulk enforcement: the rows of an outbound dataset that a recipient may receive (joins only)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from consent.tables import CONSENT_DECISION
from phmx import lakehouse

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

SUD_LABELS = ("SUD", "ETH", "ETHUD", "OPIOIDUD", "42CFRPart2")
MH_LABELS = ("MH", "PSY", "BH")


def _has_any(labels: Column, codes: tuple[str, ...]) -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(F.arrays_overlap(labels, F.array(*[F.lit(c) for c in codes])), F.lit(False))


def permitted_rows(spark: SparkSession, events: DataFrame, *, recipient: str, purpose: str, at: datetime,
                   member_col: str = "member_id") -> DataFrame:
    """Rows of ``events`` that ``recipient`` may receive for ``purpose`` at time ``at``.

    A row passes when every data class it carries is permitted for its member by the decision in
    force at ``at``. Members without decisions get nothing (deny by default).
    """
    from pyspark.sql import functions as F

    ts = F.lit(at.replace(tzinfo=None) if at.tzinfo else at).cast("timestamp")
    d = lakehouse.read(spark, CONSENT_DECISION).where(
        (F.col("recipient") == recipient) & (F.col("purpose") == purpose)
        & (F.col("valid_from") <= ts) & (F.col("valid_to").isNull() | (ts < F.col("valid_to")))
    )
    ok = d.groupBy("member_id").agg(*[
        F.max(F.when((F.col("data_class") == c) & (F.col("decision") == "permit"), 1).otherwise(0)).alias(f"_ok_{c}")
        for c in ("SUD", "MH", "GENERAL")
    ])
    joined = events.join(ok.withColumnRenamed("member_id", "_m"), F.col(member_col) == F.col("_m"), "inner")
    labels = F.coalesce(F.col("security_labels"), F.array().cast("array<string>"))
    sud, mh = _has_any(labels, SUD_LABELS), _has_any(labels, MH_LABELS)
    keep = ((~sud) | (F.col("_ok_SUD") == 1)) & ((~mh) | (F.col("_ok_MH") == 1)) & (F.col("_ok_GENERAL") == 1)
    return joined.where(keep).select(*events.columns)
