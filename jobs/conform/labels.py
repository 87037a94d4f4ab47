"""Security labels per row: the feed's own labels plus diagnosis-code rules from mappings/.

Labels travel with rows from silver into gold and decide consent (consent/) and suppression
(privacy/). ``sensitivity`` is the coarse class used in summaries: sud > mh > general.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

LABELS_FILE = Path(__file__).resolve().parents[2] / "mappings" / "security_labels.yaml"


@lru_cache(maxsize=1)
def label_rules() -> tuple[tuple[str, str], ...]:
    doc = yaml.safe_load(LABELS_FILE.read_text(encoding="utf-8"))
    return tuple((str(r["label"]), str(r["pattern"])) for r in doc["rules"])


def with_labels(df: DataFrame, feed_labels: tuple[str, ...] | list[str]) -> DataFrame:
    """Add ``security_labels`` (sorted, distinct) and ``sensitivity`` columns.

    Diagnosis rules run over ``diagnosis_codes`` joined into one string, so they use only
    built-in functions the embedded engine serves (no lambdas, no Python UDFs).
    """
    from pyspark.sql import functions as F

    parts = [F.array(*[F.lit(x) for x in feed_labels]) if feed_labels else F.array().cast("array<string>")]
    if "diagnosis_codes" in df.columns:
        joined = F.concat(F.lit(","), F.concat_ws(",", F.coalesce(F.col("diagnosis_codes"),
                                                                   F.array().cast("array<string>"))))
        for label, pattern in label_rules():
            rx = "," + pattern.lstrip("^")
            parts.append(F.when(joined.rlike(rx), F.array(F.lit(label))).otherwise(F.array().cast("array<string>")))
    labels = F.array_sort(F.array_distinct(F.flatten(F.array(*parts))))
    df = df.withColumn("security_labels", labels)
    return df.withColumn(
        "sensitivity",
        F.when(F.array_contains("security_labels", "SUD") | F.array_contains("security_labels", "42CFRPart2"),
               F.lit("sud"))
        .when(F.array_contains("security_labels", "MH"), F.lit("mh"))
        .otherwise(F.lit("general")),
    )
