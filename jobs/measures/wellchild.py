"""Well-child visits: W30 (first 30 months of life) and WCV (ages 3-21, once a year).

A well-care visit is an outpatient encounter with a well-care CPT/HCPCS code (99381-99385,
99391-99395, 99461, G0438, G0439, S0302) or a well-care diagnosis (Z00.0x, Z00.1x, Z00.2, Z00.3,
Z02.5, Z76.1, Z76.2); visits count on distinct dates.

W30-15: children who turn 15 months during the period; 6+ visits from birth to the 15-month
birthday; enrolled from 31 days of age to 15 months (one gap up to 45 days).
W30-30: children who turn 30 months during the period; 2+ visits after the 15-month birthday
through the 30-month birthday; enrolled from 15 months + 1 day to 30 months.
WCV: ages 3-21 on the period's last day; 1+ visit in the period; enrolled over the period.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.measures.evidence import any_code, any_dx, dated_events_in_window
from jobs.measures.member_years import enrolled_units, member_year_rows, with_births
from jobs.measures.strata import age_at

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.measures.config import MeasuresConfig, MeasureSpec
    from jobs.measures.inputs import Inputs
    from jobs.measures.measurement_period import MeasurePeriod


def well_visits(inputs: Inputs, cfg: MeasuresConfig) -> DataFrame:
    from pyspark.sql import functions as F

    cond = any_code("procedure_codes", cfg.code_list("procedure_codes", "well_care")) | \
        any_dx("diagnosis_codes", cfg.icd_regex("well_care"))
    return inputs.encounters.where((F.col("setting") == "OP") & cond).select(
        "member_id", F.col("service_date").alias("event_date"), F.lit("plan_claim").alias("source"),
        "security_labels").where(F.col("event_date").isNotNull())


def well_child(inputs: Inputs, cfg: MeasuresConfig, spec: MeasureSpec, period: MeasurePeriod) -> DataFrame:
    """W30-15 and W30-30 (rates in measures.yaml carry the month offsets and visit counts)."""
    from pyspark.sql import functions as F

    visits = well_visits(inputs, cfg)
    enrollment = spec.get("enrollment") or {}
    frames = []
    for measure_id, r in spec.windows.items():
        base = F.add_months("birth_date", r.window_from_months)
        kids = with_births(inputs).select(
            "member_id", F.col("member_id").alias("unit_id"), "birth_date",
            F.add_months("birth_date", r.anchor_months).alias("anchor_date"),
            F.date_add(base, r.window_from_days).alias("w_start"),
            F.date_add(base, r.enrollment_from_days).alias("enr_start"))
        kids = kids.where(F.col("anchor_date").between(F.lit(period.start), F.lit(period.end)))
        kids = enrolled_units(kids, inputs, enrollment, "enr_start", "anchor_date")
        kids = dated_events_in_window(kids, visits, "w_start", "anchor_date", r.min_visits)
        kids = kids.withColumn("met", F.col("n_dates") >= r.min_visits)
        frames.append(member_year_rows(kids, spec, measure_id))
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out


def well_care_year(inputs: Inputs, cfg: MeasuresConfig, spec: MeasureSpec, period: MeasurePeriod) -> DataFrame:
    """WCV: a well-care visit during the period for members 3-21 on its last day."""
    from pyspark.sql import functions as F

    (measure_id, needed), = spec.thresholds.items()
    kids = with_births(inputs).select(
        "member_id", F.col("member_id").alias("unit_id"), "birth_date",
        F.lit(period.start).alias("p_start"), F.lit(period.end).alias("anchor_date"))
    kids = kids.where(age_at("birth_date", "anchor_date").between(int(spec.get("min_age", 3)),
                                                                  int(spec.get("max_age", 21))))
    kids = enrolled_units(kids, inputs, spec.get("enrollment") or {}, "p_start", "anchor_date")
    kids = dated_events_in_window(kids, well_visits(inputs, cfg), "p_start", "anchor_date", int(needed))
    kids = kids.withColumn("met", F.col("n_dates") >= int(needed))
    return member_year_rows(kids, spec, measure_id)
