"""gold.member_risk: a transparent points model, risk tiers and ECM population-of-focus flags.

Every point comes from a line in mappings/measures/risk.yaml; docs/measures.md lists them. The
lookback is the 12 months ending on the period's last day (``as_of``). Evidence:

* utilization: ED visits (distinct dates) and unplanned inpatient stays (principal diagnosis
  not in the planned-admission value set: maternity, newborn, chemotherapy/aftercare, donors);
* chronic conditions: categories of diagnoses on any claim or county record;
* behavioral health: SMI and other mental illness diagnoses; SUD diagnoses, county SUD (CalOMS)
  treatment, or SUD pharmacotherapy;
* social needs: homelessness (Z59.0x, or CalOMS ZIP 00000 / CSI living arrangement 07, see
  silver.social_observation, jobs.measures.inputs.homeless_records) and other Z55-Z65 codes.

Each row carries the security labels of the evidence behind its behavioral-health and
homelessness flags, so a risk row that reveals SUD treatment is treated like the SUD record.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from jobs.measures.enrollment import plan_on
from jobs.measures.evidence import any_dx
from jobs.measures.inputs import empty_labels, inpatient_stays, labels_of
from jobs.measures.strata import sensitivity_of, shape
from phmx.tables import MEMBER_RISK

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.measures.config import MeasuresConfig
    from jobs.measures.inputs import Inputs
    from jobs.measures.measurement_period import MeasurePeriod

FLAGS = ("smi", "sud", "mi", "homeless", "other_social")


def _lookback_start(period: MeasurePeriod, months: int):  # noqa: ANN202 - a date
    end = period.end
    y, m = end.year, end.month - months
    while m <= 0:
        m += 12
        y -= 1
    import calendar

    day = min(end.day, calendar.monthrange(y, m)[1])
    return end.replace(year=y, month=m, day=day) + timedelta(days=1)


def _dx_flags(df: DataFrame, cfg: MeasuresConfig, date_col: str) -> DataFrame:
    """Per row: the diagnosis flags, chronic categories and (for sensitive flags) the row's labels."""
    from pyspark.sql import functions as F

    dx = "diagnosis_codes"
    smi = any_dx(dx, cfg.icd_regex("smi"))
    sud = any_dx(dx, cfg.icd_regex("sud"))
    mi = any_dx(dx, cfg.icd_regex("mental_illness"))
    homeless = any_dx(dx, cfg.icd_regex("homelessness"))
    other = any_dx(dx, cfg.icd_regex("other_social_needs"))
    # filter(is not null), never array_compact: Sail's array_compact reads other rows' values (docs/ARCHITECTURE.md).
    chronic = F.filter(F.array(*[F.when(any_dx(dx, rx), F.lit(cat)) for cat, rx in cfg.chronic.items()]),
                       lambda c: c.isNotNull())
    sensitive = smi | sud | mi
    return df.select("member_id", F.col(date_col).alias("event_date"), smi.alias("smi"), sud.alias("sud"),
                     mi.alias("mi"), homeless.alias("homeless"), other.alias("other_social"),
                     chronic.alias("chronic"),
                     F.when(sensitive, labels_of()).otherwise(empty_labels()).alias("security_labels"))


def _flag_rows(df: DataFrame, date_col: str, labels, **flags: bool) -> DataFrame:  # noqa: ANN001
    from pyspark.sql import functions as F

    return df.select("member_id", F.col(date_col).alias("event_date"),
                     *[F.lit(bool(flags.get(f, False))).alias(f) for f in FLAGS],
                     F.array().cast("array<string>").alias("chronic"), labels.alias("security_labels"))


def member_risk(inputs: Inputs, cfg: MeasuresConfig, period: MeasurePeriod, run_id: str) -> DataFrame:
    from pyspark.sql import functions as F

    risk = cfg.risk
    as_of = period.end
    start = _lookback_start(period, int(risk.get("lookback_months", 12)))
    in_lb = F.col("event_date").between(F.lit(start), F.lit(as_of))

    enc = inputs.encounters
    ed = (enc.where(F.col("setting") == "ED").select("member_id", F.col("service_date").alias("event_date"))
          .where(in_lb).groupBy("member_id").agg(F.countDistinct("event_date").alias("ed_visits")))
    stays = inpatient_stays(inputs).withColumnRenamed("admit_date", "event_date").where(in_lb)
    planned = any_dx("principal_dx", cfg.icd_regex("planned_admission"))
    unplanned = (stays.where(~planned).groupBy("member_id")
                 .agg(F.countDistinct("event_date").alias("unplanned_admissions")))

    ndcs = list(cfg.code_list("ndc", "sud_pharmacotherapy"))
    frames = [
        _dx_flags(enc, cfg, "service_date"),
        _dx_flags(inputs.bh, cfg, "service_date"),
        _flag_rows(inputs.bh.where(F.col("program") == "SUD"), "service_date", labels_of(), sud=True),
        _flag_rows(inputs.medications.where(F.col("ndc").isin(ndcs)), "fill_date",
                   F.array_union(labels_of(), F.array(F.lit("SUD"))), sud=True),
    ]
    if inputs.homeless_records is not None:
        frames.append(_flag_rows(inputs.homeless_records, "event_date", labels_of(), homeless=True))
    rows = frames[0]
    for f in frames[1:]:
        rows = rows.unionByName(f)
    flags = rows.where(in_lb).groupBy("member_id").agg(
        *[F.max(F.col(f).cast("int")).alias(f) for f in FLAGS],
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("chronic")))).alias("chronic_conditions"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_list("security_labels")))).alias("security_labels"))

    m = inputs.members.select("member_id", "lhj")
    df = (m.join(ed, "member_id", "left").join(unplanned, "member_id", "left").join(flags, "member_id", "left"))
    z = F.lit(0)
    df = df.select(
        "member_id", "lhj",
        F.coalesce("ed_visits", z).cast("int").alias("ed_visits"),
        F.coalesce("unplanned_admissions", z).cast("int").alias("unplanned_admissions"),
        *[(F.coalesce(F.col(f), z) == 1).alias(f) for f in FLAGS],
        F.coalesce("chronic_conditions", F.array().cast("array<string>")).alias("chronic_conditions"),
        F.coalesce("security_labels", empty_labels()).alias("security_labels"))

    comps = risk["components"]

    def pts(comp: str, key: str) -> int:
        return int(comps[comp]["points"].get(key, 0))

    def capped(comp: str, expr):  # noqa: ANN001, ANN202
        return F.least(F.lit(int(comps[comp]["cap"])), expr).cast("int")

    b = lambda c: F.col(c).cast("int")  # noqa: E731
    util = capped("utilization", F.col("ed_visits") * pts("utilization", "ed_visit")
                  + F.col("unplanned_admissions") * pts("utilization", "unplanned_admission"))
    chronic = capped("chronic_conditions", F.size("chronic_conditions") * pts("chronic_conditions", "per_condition"))
    bh = capped("behavioral_health", b("smi") * pts("behavioral_health", "smi")
                + b("sud") * pts("behavioral_health", "sud")
                + (F.col("mi") & ~F.col("smi")).cast("int") * pts("behavioral_health", "other_mental_illness"))
    social = capped("social_needs", b("homeless") * pts("social_needs", "homelessness")
                    + b("other_social") * pts("social_needs", "other_social_need"))
    df = df.select("*", util.alias("utilization_points"), chronic.alias("chronic_points"),
                   bh.alias("behavioral_points"), social.alias("social_points"))
    total = F.col("utilization_points") + F.col("chronic_points") + F.col("behavioral_points") + F.col("social_points")
    tiers = risk["tiers"]
    hu = risk["ecm"]["high_utilizer"]
    df = df.select(
        "*", total.cast("int").alias("points"),
        F.when(total >= int(tiers["high"]), "high").when(total >= int(tiers["rising"]), "rising")
        .otherwise("low").alias("risk_tier"),
        F.col("homeless").alias("ecm_homeless"),
        ((F.col("ed_visits") >= int(hu["ed_visits"]))
         | (F.col("unplanned_admissions") >= int(hu["unplanned_admissions"]))).alias("ecm_high_utilizer"),
        (F.col("smi") | F.col("sud")).alias("ecm_smi_sud"),
        F.lit(as_of).alias("as_of"))
    df = plan_on(df, inputs.coverage, "as_of", key=("member_id",))
    df = df.select("*", F.lit(period.label).alias("period"), F.coalesce("lhj", F.lit("Unknown")).alias("lhj_cat"),
                   sensitivity_of(F.col("security_labels"), F.lit("general")).alias("sensitivity"),
                   F.lit(run_id).alias("run_id")).drop("lhj").withColumnRenamed("lhj_cat", "lhj")
    return shape(df, MEMBER_RISK)
