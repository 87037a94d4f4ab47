"""The stage's inputs: every silver event joined to its member, plus coverage and demographics.

Why compute on gold members: a member's ED visit may come from one plan and the follow-up from
the county or another plan; only after identity resolution do both count for the same person.
Every event is joined to ``member_id`` through gold.member_xwalk (source, source_person_id);
events whose source person is not in the crosswalk are left out (identity has not seen them).

Claims of one visit arrive as several encounters (an institutional and a professional claim of
the same ED visit): :func:`ed_visits` and :func:`inpatient_stays` collapse them into one unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from phmx import lakehouse
from phmx.log import get_logger
from phmx.tables import (
    BH_SERVICE,
    COVERAGE,
    COVERAGE_MEDICAL,
    DENTAL_SERVICE,
    ENCOUNTER,
    IMMUNIZATION,
    IMMUNIZATION_GIVEN,
    MEDICATION,
    MEMBER,
    MEMBER_XWALK,
    SOCIAL_OBSERVATION,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from phmx.lakehouse import Scratch

log = get_logger(__name__)

OPEN_END = "9999-12-31"


def empty_labels() -> Column:
    from pyspark.sql import functions as F

    return F.array().cast("array<string>")


def labels_of(col: str = "security_labels") -> Column:
    from pyspark.sql import functions as F

    return F.coalesce(F.col(col), empty_labels())


def union_labels(col: str = "security_labels") -> Column:
    """Aggregate: the sorted, distinct union of a label column over a group."""
    from pyspark.sql import functions as F

    return F.array_sort(F.array_distinct(F.flatten(F.collect_list(labels_of(col)))))


@dataclass
class Inputs:
    """DataFrames the measure families read (lazy; nothing is computed until written)."""

    members: DataFrame      # member_id, birth_date, sex, race, ethnicity, lhj
    encounters: DataFrame   # member_id, unit_key, setting, service_date, admit_date, discharge_date, pos, ...
    bh: DataFrame           # member_id, program, service_date, end_date, mode, function, dx, labels
    dental: DataFrame       # member_id, service_date, cdt_code, labels
    immunizations: DataFrame  # member_id, admin_date, cvx, labels
    medications: DataFrame  # member_id, fill_date, ndc, labels
    coverage: DataFrame     # member_id, plan_id, start_date, end_date (open end = 9999-12-31)
    islands: DataFrame      # member_id, island_start, island_end: merged continuous coverage
    homeless_records: DataFrame | None  # member_id, event_date, security_labels
    ed: DataFrame | None = None      # ed_visits(), once materialised
    stays: DataFrame | None = None   # inpatient_stays(), once materialised


def _link(df: DataFrame, xwalk: DataFrame) -> DataFrame:
    return df.join(xwalk, ["source", "source_person_id"], "inner")


def load(spark: SparkSession, scratch: Scratch | None = None) -> Inputs:
    """Read silver and gold and link every row to its member; with ``scratch``, materialise the
    linked frames (and the ED visits and stays) once for all measure groups."""
    from pyspark.sql import functions as F

    xwalk = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    members = lakehouse.read(spark, MEMBER).select("member_id", "birth_date", "sex", "race", "ethnicity", "lhj")
    no_codes = F.array().cast("array<string>")
    enc = _link(lakehouse.read(spark, ENCOUNTER), xwalk).select(
        "member_id",
        F.concat_ws(":", "source", "encounter_id").alias("unit_key"),
        "setting", "service_date", "admit_date", "discharge_date",
        F.col("place_of_service").alias("pos"),
        F.coalesce("procedure_codes", no_codes).alias("procedure_codes"),
        F.coalesce("diagnosis_codes", no_codes).alias("diagnosis_codes"),
        # get(), not element_at(): an encounter coded only in SNOMED CT (a FHIR Encounter from an EHR)
        # has no ICD-10-CM code; its principal diagnosis is null and it meets no diagnosis criterion.
        F.get(F.coalesce("diagnosis_codes", no_codes), 0).alias("principal_dx"),
        labels_of().alias("security_labels"),
    )
    bh = _link(lakehouse.read(spark, BH_SERVICE), xwalk).select(
        "member_id", "program", "record_type", "service_date", "end_date",
        F.col("mode_of_service").alias("mode"), F.col("service_function").alias("function"),
        F.coalesce("diagnosis_codes", no_codes).alias("diagnosis_codes"),
        labels_of().alias("security_labels"),
    )
    dental = _link(lakehouse.read(spark, DENTAL_SERVICE), xwalk).select(
        "member_id", "service_date", "cdt_code", labels_of().alias("security_labels"))
    imm = _link(lakehouse.read(spark, IMMUNIZATION).where(IMMUNIZATION_GIVEN), xwalk).select(
        "member_id", "admin_date", F.trim("cvx").alias("cvx"), labels_of().alias("security_labels"))
    meds = _link(lakehouse.read(spark, MEDICATION), xwalk).select(
        "member_id", "fill_date", "ndc", labels_of().alias("security_labels"))
    coverage = _link(lakehouse.read(spark, COVERAGE).where(COVERAGE_MEDICAL), xwalk).where(
        F.col("start_date").isNotNull()).select(
        "member_id", "plan_id", "start_date",
        F.coalesce("end_date", F.lit(OPEN_END).cast("date")).alias("end_date"))
    inputs = Inputs(members, enc, bh, dental, imm, meds, coverage, coverage_islands(coverage),
                    homeless_records(spark, xwalk))
    return materialise(inputs, scratch) if scratch is not None else inputs


def materialise(inputs: Inputs, scratch: Scratch) -> Inputs:
    """Write every shared input once (see phmx.lakehouse.Scratch) and read them back."""
    put = scratch.put
    out = Inputs(
        members=put(inputs.members, "members"), encounters=put(inputs.encounters, "encounters"),
        bh=put(inputs.bh, "bh"), dental=put(inputs.dental, "dental"),
        immunizations=put(inputs.immunizations, "immunizations"), medications=put(inputs.medications, "medications"),
        coverage=put(inputs.coverage, "coverage"), islands=put(inputs.islands, "islands"),
        homeless_records=put(inputs.homeless_records, "homeless") if inputs.homeless_records is not None else None)
    out.ed = put(ed_visits(out), "ed_visits")
    out.stays = put(inpatient_stays(out), "stays")
    return out


def coverage_islands(coverage: DataFrame) -> DataFrame:
    """Merge each member's coverage rows (any plan, any source) into disjoint continuous spans.

    Rows that overlap or touch (the next starts the day after one ends) join one island, so a
    plan switch without a day's gap is continuous enrollment in Medi-Cal managed care.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("member_id").orderBy("start_date", "end_date")
    prev_end = F.max("end_date").over(w.rowsBetween(Window.unboundedPreceding, -1))
    starts = coverage.select("member_id", "start_date", "end_date").withColumn(
        "new_island", F.when(prev_end.isNull() | (F.col("start_date") > F.date_add(prev_end, 1)), 1).otherwise(0))
    numbered = starts.withColumn("island", F.sum("new_island").over(w.rowsBetween(Window.unboundedPreceding, 0)))
    return numbered.groupBy("member_id", "island").agg(
        F.min("start_date").alias("island_start"), F.max("end_date").alias("island_end")).drop("island")


def ed_visits(inputs: Inputs) -> DataFrame:
    """One row per member and ED date: every ED claim of that day (facility and professional) merged.

    unit_id is the smallest ``source:encounter_id`` of the day's claims (stable across reruns).
    """
    from pyspark.sql import functions as F

    if inputs.ed is not None:
        return inputs.ed
    return (inputs.encounters.where(F.col("setting") == "ED")
            .groupBy("member_id", F.col("service_date").alias("anchor_date"))
            .agg(F.min("unit_key").alias("unit_id"),
                 F.collect_set("principal_dx").alias("principal_dx"),
                 F.array_distinct(F.flatten(F.collect_list("diagnosis_codes"))).alias("all_dx"),
                 union_labels().alias("security_labels"))
            .where(F.col("anchor_date").isNotNull()))


def inpatient_stays(inputs: Inputs) -> DataFrame:
    """One row per member and admission date: the stay's claims merged, discharge = latest."""
    from pyspark.sql import functions as F

    if inputs.stays is not None:
        return inputs.stays
    ip = inputs.encounters.where(F.col("setting") == "IP").withColumn(
        "admit", F.coalesce("admit_date", "service_date"))
    return (ip.groupBy("member_id", "admit")
            .agg(F.min("unit_key").alias("unit_id"),
                 F.max(F.coalesce("discharge_date", "admit")).alias("anchor_date"),
                 F.collect_set("principal_dx").alias("principal_dx"),
                 F.array_distinct(F.flatten(F.collect_list("diagnosis_codes"))).alias("all_dx"),
                 union_labels().alias("security_labels"))
            .withColumnRenamed("admit", "admit_date")
            .where(F.col("admit_date").isNotNull()))


def homeless_records(spark: SparkSession, xwalk: DataFrame) -> DataFrame | None:
    """Homelessness a submitter recorded (silver.social_observation, category homelessness:
    CalOMS ZIP 00000, CSI periodic living arrangement 07), linked to members, with the row's
    own security labels (a CalOMS observation is a Part 2 record). None when the table is absent.
    """
    from pyspark.sql import functions as F

    if not lakehouse.exists(SOCIAL_OBSERVATION):
        return None
    obs = lakehouse.read(spark, SOCIAL_OBSERVATION).where(
        (F.col("category") == "homelessness") & F.col("observation_date").isNotNull())
    return _link(obs, xwalk).select(F.col("member_id"), F.col("observation_date").alias("event_date"),
                                    F.coalesce("security_labels", F.array().cast("array<string>"))
                                    .alias("security_labels"))
