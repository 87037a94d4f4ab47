"""Member-year populations: members of an age on an anchor date who had coverage in the span.

Shared by the dental, immunization and well-child families. Only members with some coverage
overlapping the enrollment span become units (a registry-only child is not in a plan's
population); those who do not meet the continuous-enrollment rule stay as rows with
in_denominator false and exclusion_reason ``not_continuously_enrolled``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.measures.enrollment import any_coverage, covered_with_gaps, longest_continuous_days
from jobs.measures.inputs import empty_labels

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.measures.config import MeasureSpec
    from jobs.measures.inputs import Inputs

NOT_ENROLLED = "not_continuously_enrolled"


def with_births(inputs: Inputs) -> DataFrame:
    from pyspark.sql import functions as F

    return inputs.members.select("member_id", "birth_date").where(F.col("birth_date").isNotNull())


def enrolled_units(units: DataFrame, inputs: Inputs, enrollment: dict, start_col: str, end_col: str) -> DataFrame:
    """Keep units with any coverage in the span; add ``enrolled`` per the spec's enrollment rule."""
    from pyspark.sql import functions as F

    units = any_coverage(units, inputs.islands, start_col, end_col)
    if "min_continuous_days" in enrollment:
        units = longest_continuous_days(units, inputs.islands, start_col, end_col, "_cont_days")
        return units.withColumn("enrolled", F.col("_cont_days") >= int(enrollment["min_continuous_days"])) \
            .drop("_cont_days")
    return covered_with_gaps(units, inputs.islands, start_col, end_col,
                             max_gaps=int(enrollment.get("max_gaps", 0)),
                             max_gap_days=int(enrollment.get("max_gap_days", 0)),
                             anchor_col="anchor_date" if enrollment.get("enrolled_on_anchor") else None)


def member_year_rows(units: DataFrame, spec: MeasureSpec, measure_id: str, met: str = "met",
                     date_col: str = "nth_date") -> DataFrame:
    """Shape units (member_id, unit_id, anchor_date, enrolled, ``met``, ``date_col``, ev_sources,
    ev_labels) into the common unit rows."""
    from pyspark.sql import functions as F

    in_den = F.col("enrolled")
    in_num = in_den & F.coalesce(F.col(met), F.lit(False))
    return units.select(
        F.lit(measure_id).alias("measure_id"), "member_id", "unit_id", "anchor_date",
        in_den.alias("in_denominator"), in_num.alias("in_numerator"),
        F.when(~in_den, F.lit(NOT_ENROLLED)).alias("exclusion_reason"),
        F.when(in_num, F.col(date_col)).alias("numerator_date"),
        F.when(in_num, F.col("ev_sources")).alias("numerator_source"),
        F.when(in_num, F.col("ev_labels")).otherwise(empty_labels()).alias("security_labels"),
        F.lit(spec.sensitivity).alias("measure_sensitivity"))
