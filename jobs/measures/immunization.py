"""Childhood Immunization Status, Combination 10 (CIS-10), from immunization registry records.

Unit: a child who turns 2 during the period (anchor: the 2nd birthday). Enrollment: the 12
months before the 2nd birthday with at most one gap of up to 45 days, enrolled on the birthday.
Numerator: every antigen of the combination, counting doses on different dates on or before the
2nd birthday, each CVX code counting toward every antigen it contains (cvx_antigens.yaml), with
the age rules (not before 42 days; flu not before 180 days; MMR, VZV, HepA on or after the 1st
birthday) and the rotavirus 2-dose / 3-dose / mixed rule. numerator_date: the day the last
antigen was completed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.measures.member_years import enrolled_units, member_year_rows, with_births

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from jobs.measures.config import Antigen, MeasuresConfig, MeasureSpec
    from jobs.measures.inputs import Inputs
    from jobs.measures.measurement_period import MeasurePeriod

RV2, RV3, RV_ALL = "RV#2", "RV#3", "RV#all"


def antigen_map(spark: SparkSession, antigens: list[Antigen]) -> DataFrame:
    """(cvx, key, min_age_days, from_first_birthday) rows; rotavirus split into its dose families."""
    rows = []
    for a in antigens:
        if a.rotavirus:
            rows += [(c, RV2, a.min_age_days, False) for c in a.two_dose_cvx]
            rows += [(c, RV3, a.min_age_days, False) for c in a.three_dose_cvx]
        else:
            rows += [(c, a.name, a.min_age_days, a.from_first_birthday) for c in a.cvx]
    return spark.createDataFrame(rows, "cvx string, key string, min_age_days int, from_first_birthday boolean")


def _nth(ds: Column, n: int) -> Column:
    from pyspark.sql import functions as F

    return F.when(F.size(ds) >= n, F.element_at(ds, n))


def immunization(inputs: Inputs, cfg: MeasuresConfig, spec: MeasureSpec, period: MeasurePeriod) -> DataFrame:
    from pyspark.sql import functions as F

    (measure_id, months), = spec.thresholds.items()
    antigens = [cfg.antigens[n] for n in cfg.combinations[spec.get("combination")]]
    enrollment = spec.get("enrollment") or {}
    base = with_births(inputs).select(
        "member_id", F.col("member_id").alias("unit_id"), "birth_date",
        F.add_months("birth_date", int(months)).alias("anchor_date"))
    base = base.where(F.col("anchor_date").between(F.lit(period.start), F.lit(period.end)))
    kids = base.withColumn("enr_start", F.add_months("anchor_date", -int(enrollment.get("months_before_anchor", 12))))
    kids = enrolled_units(kids, inputs, enrollment, "enr_start", "anchor_date")

    spark = inputs.members.sparkSession
    amap = antigen_map(spark, antigens)
    # doses join the cheap base population (not the enrolled frame) so that frame is read once
    doses = (inputs.immunizations.join(base.select("member_id", "birth_date", "anchor_date"), "member_id", "inner")
             .join(amap, "cvx", "inner")
             .where((F.col("admin_date") >= F.col("birth_date")) & (F.col("admin_date") <= F.col("anchor_date"))
                    & (F.datediff("admin_date", "birth_date") >= F.col("min_age_days"))
                    & (~F.col("from_first_birthday") | (F.col("admin_date") >= F.add_months("birth_date", 12)))))
    doses = doses.select("member_id", "key", "admin_date", "security_labels")
    rv_all = doses.where(F.col("key").isin(RV2, RV3)).withColumn("key", F.lit(RV_ALL))
    per_key = doses.unionByName(rv_all).groupBy("member_id", "key").agg(
        F.array_sort(F.collect_set("admin_date")).alias("ds"),
        F.array_distinct(F.flatten(F.collect_list("security_labels"))).alias("labels"))
    keys = [a.name for a in antigens if not a.rotavirus] + ([RV2, RV3, RV_ALL] if any(a.rotavirus for a in antigens) else [])
    wide = per_key.groupBy("member_id").agg(
        *[F.first(F.when(F.col("key") == k, F.col("ds")), ignorenulls=True).alias(f"ds_{i}") for i, k in enumerate(keys)],
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("labels")))).alias("ev_labels"))
    empty = F.array().cast("array<date>")
    col = {k: F.coalesce(F.col(f"ds_{i}"), empty) for i, k in enumerate(keys)}
    met_parts, date_parts = [], []
    for a in antigens:
        if a.rotavirus:
            n2, n3 = F.size(col[RV2]), F.size(col[RV3])
            met_parts.append((n2 >= 2) | (n3 >= 3) | ((n2 >= 1) & (n3 >= 2)))
            date_parts.append(F.least(_nth(col[RV2], 2), _nth(col[RV3], 3),
                                      F.when((n2 >= 1) & (n3 >= 2), _nth(col[RV_ALL], 3))))
        else:
            met_parts.append(F.size(col[a.name]) >= a.doses)
            date_parts.append(_nth(col[a.name], a.doses))
    met = met_parts[0]
    for m in met_parts[1:]:
        met = met & m
    wide = wide.select("member_id", met.alias("met"), F.greatest(*date_parts).alias("nth_date"),
                       F.lit("registry").alias("ev_sources"), "ev_labels")
    kids = kids.join(wide, "member_id", "left").withColumn(
        "ev_labels", F.coalesce(F.col("ev_labels"), F.array().cast("array<string>")))
    return member_year_rows(kids, spec, measure_id)
