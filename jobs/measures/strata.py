"""Age on a date, the LHJ feed's stratifiers, sensitivity, and the final gold.measure_event shape.

Age bands (documented in docs/measures.md): 0-5, 6-11, 12-17, 18-20, 21-44, 45-64, 65+. They
nest the HEDIS reporting strata (FUM/FUH: 6-17, 18-64, 65+) and the Medi-Cal child/adult line at
21 (EPSDT, DQA "under 21"), so any of those can be rebuilt by adding bands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jobs.measures.enrollment import plan_on
from phmx.tables import MEASURE_EVENT

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from jobs.measures.config import MeasuresConfig
    from jobs.measures.inputs import Inputs
    from jobs.measures.measurement_period import MeasurePeriod
    from phmx.tables import Table

AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-5", 0, 5), ("6-11", 6, 11), ("12-17", 12, 17), ("18-20", 18, 20),
    ("21-44", 21, 44), ("45-64", 45, 64), ("65+", 65, None),
)


def age_at(birth: Column | str, on: Column | str) -> Column:
    """Completed years on a date: a birthday on that date counts (age goes up that day).

    A 29 February birthday is reached on 1 March in common years.
    """
    from pyspark.sql import functions as F

    b = F.col(birth) if isinstance(birth, str) else birth
    d = F.col(on) if isinstance(on, str) else on
    not_yet = (F.month(d) * 100 + F.dayofmonth(d)) < (F.month(b) * 100 + F.dayofmonth(b))
    return (F.year(d) - F.year(b) - F.when(not_yet, 1).otherwise(0)).cast("int")


def age_band(age: Column) -> Column:
    from pyspark.sql import functions as F

    expr = F.lit(None).cast("string")
    for label, lo, hi in reversed(AGE_BANDS):
        cond = age >= lo if hi is None else age.between(lo, hi)
        expr = F.when(cond, F.lit(label)).otherwise(expr)
    return expr


def race_ethnicity(race_cfg: dict[str, Any], race: Column, ethnicity: Column) -> Column:
    """One combined category from the member's race and ethnicity (rules in race_ethnicity.yaml).

    Codes are looked up in a literal map (fast on the engine; a CASE over long lists inside a
    lambda cost seconds per thousand rows). A race field holding more than one code (separated
    by , ~ ^ or |) is multiracial.
    """
    from itertools import chain

    from pyspark.sql import functions as F

    hisp = [str(v).upper() for k in ("cdc", "county") for v in race_cfg["hispanic"].get(k, [])]
    unknown = {str(v).upper() for v in race_cfg.get("unknown_values", [])}
    cats = race_cfg["categories"]
    code_to_label = {str(code).upper(): cats[group] for group, codes in race_cfg["race_groups"].items()
                     for code in codes if str(code).upper() not in unknown}
    lookup = F.create_map(*chain.from_iterable((F.lit(k), F.lit(v)) for k, v in code_to_label.items()))
    r = F.upper(F.trim(race))
    multi = r.rlike("[,~^|]")
    by_race = (F.when(multi, F.lit(cats["Other"]))
               .otherwise(F.coalesce(F.element_at(lookup, r), F.lit(cats["Unknown"]))))
    eth = F.upper(F.trim(ethnicity))
    return F.when(eth.isin(hisp), F.lit(cats["Hispanic"])).otherwise(F.coalesce(by_race, F.lit(cats["Unknown"])))


def sex_category(sex: Column) -> Column:
    from pyspark.sql import functions as F

    s = F.upper(F.trim(sex))
    return F.when(s.isin("F", "M"), s).otherwise(F.lit("U"))


def sensitivity_of(labels: Column, floor: Column) -> Column:
    """sud > mh > general (:mod:`phmx.sensitivity`), from the labels, never below the measure's own."""
    from pyspark.sql import functions as F

    from phmx.sensitivity import RANK, level_of, rank_of

    from_labels = (F.when(F.array_contains(labels, "SUD") | F.array_contains(labels, "42CFRPart2")
                          | F.array_contains(labels, "ETH"), RANK["sud"])
                   .when(F.array_contains(labels, "MH") | F.array_contains(labels, "PSY"), RANK["mh"])
                   .otherwise(RANK["general"]))
    return level_of(F.greatest(from_labels, rank_of(floor)))


def finalize(units: DataFrame, inputs: Inputs, cfg: MeasuresConfig, period: MeasurePeriod, run_id: str,
             unit_labels: list[str] | tuple[str, ...] = ()) -> DataFrame:
    """Add stratifiers, plan, sensitivity, period and run id; shape to gold.measure_event.

    ``units`` has: measure_id, member_id, unit_id, anchor_date, in_denominator, in_numerator,
    exclusion_reason, numerator_date, numerator_source, security_labels, measure_sensitivity.
    ``unit_labels`` are added to every unit's labels (what the measure itself reveals).
    """
    from pyspark.sql import functions as F

    if unit_labels:
        units = units.withColumn("security_labels", F.array_union(
            F.col("security_labels"), F.array(*[F.lit(str(x)) for x in unit_labels])))

    members = inputs.members.select("member_id", "birth_date", "sex", "race", "ethnicity", "lhj")
    df = units.join(members, "member_id", "left")
    df = plan_on(df, inputs.coverage, "anchor_date", key=("measure_id", "member_id", "unit_id"))
    age = age_at("birth_date", "anchor_date")
    df = df.select(
        "*",
        age.alias("age_on_anchor"),
        age_band(age).alias("age_band"),
        sex_category(F.col("sex")).alias("sex_cat"),
        race_ethnicity(cfg.race, F.col("race"), F.col("ethnicity")).alias("race_ethnicity"),
        F.coalesce(F.col("lhj"), F.lit("Unknown")).alias("lhj_cat"),
        F.array_sort(F.array_distinct(F.col("security_labels"))).alias("labels_sorted"),
    )
    df = df.select(
        "measure_id", F.lit(period.label).alias("period"), "member_id", "unit_id", "anchor_date",
        "in_denominator", "in_numerator", "exclusion_reason", "numerator_date", "numerator_source",
        "age_on_anchor", F.col("lhj_cat").alias("lhj"), "age_band", F.col("sex_cat").alias("sex"),
        "race_ethnicity", "plan_id", F.col("labels_sorted").alias("security_labels"),
        sensitivity_of(F.col("labels_sorted"), F.col("measure_sensitivity")).alias("sensitivity"),
        F.lit(run_id).alias("run_id"),
    )
    return shape(df, MEASURE_EVENT)


def shape(df: DataFrame, table: Table) -> DataFrame:
    """Select and cast to the contract's columns (like lakehouse.conform_to, without asking the
    engine for the frame's columns: every column of the contract is known to be there)."""
    from pyspark.sql import functions as F

    return df.select(*[F.col(c).cast(t).alias(c) for c, t in table.columns])
