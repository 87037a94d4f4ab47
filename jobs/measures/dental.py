"""DQA children's dental measures: Oral Evaluation (OEV-CH) and Topical Fluoride (TFL-CH).

Unit: a member-year. Age on the last day of the period (DQA: "as of the last day of the
reporting year"); enrollment: at least 180 continuous days inside the period (DQA). Numerator:
OEV-CH one comprehensive or periodic oral evaluation (D0120, D0145, D0150) as a dental service;
TFL-CH two topical fluoride applications on different dates, as dental (D1206, D1208) or oral
health services (CPT 99188 on a medical claim).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.measures.evidence import any_code, dated_events_in_window
from jobs.measures.member_years import enrolled_units, member_year_rows, with_births
from jobs.measures.strata import age_at

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.measures.config import MeasuresConfig, MeasureSpec
    from jobs.measures.inputs import Inputs
    from jobs.measures.measurement_period import MeasurePeriod


def dental_events(inputs: Inputs, cfg: MeasuresConfig, spec: MeasureSpec) -> DataFrame:
    """(member_id, event_date, source, security_labels): the CDT codes, plus medical oral health procedures."""
    from pyspark.sql import functions as F

    cdt = list(cfg.code_list("cdt", spec.get("codes")))
    out = inputs.dental.where(F.upper(F.trim("cdt_code")).isin(cdt)).select(
        "member_id", F.col("service_date").alias("event_date"), F.lit("dental").alias("source"), "security_labels")
    ohp = spec.get("oral_health_procedures")
    if ohp:
        codes = cfg.code_list("procedure_codes", ohp)
        med = inputs.encounters.where(any_code("procedure_codes", codes)).select(
            "member_id", F.col("service_date").alias("event_date"), F.lit("plan_claim").alias("source"),
            "security_labels")
        out = out.unionByName(med)
    return out.where(F.col("event_date").isNotNull())


def dental(inputs: Inputs, cfg: MeasuresConfig, spec: MeasureSpec, period: MeasurePeriod) -> DataFrame:
    from pyspark.sql import functions as F

    (measure_id, needed), = spec.thresholds.items()
    kids = with_births(inputs).select(
        "member_id", F.col("member_id").alias("unit_id"), "birth_date",
        F.lit(period.start).alias("p_start"), F.lit(period.end).alias("anchor_date"))
    age = age_at("birth_date", "anchor_date")
    kids = kids.where((F.col("birth_date") <= F.col("anchor_date"))
                      & age.between(int(spec.get("min_age", 0)), int(spec.get("max_age", 20))))
    kids = enrolled_units(kids, inputs, spec.get("enrollment") or {}, "p_start", "anchor_date")
    kids = dated_events_in_window(kids, dental_events(inputs, cfg, spec), "p_start", "anchor_date", int(needed))
    kids = kids.withColumn("met", F.col("n_dates") >= int(needed))
    return member_year_rows(kids, spec, measure_id)
