"""Follow-up measures: after an ED visit (FUM, FUA) and after an inpatient discharge (FUH, TRC).

One unit per index event (an ED visit date, an inpatient stay), one row per rate (7 and 30
days). The order of the HEDIS steps is kept: find index events (diagnosis, age on the index
date, index date no later than 30 days before the period ends, so every window closes inside
it); mark those without continuous enrollment; exclude ED visits followed by an admission
(FUM/FUA) or discharges followed by a readmission or transfer (FUH/TRC); for ED visits keep
only the first eligible visit in each 31-day period (a greedy chain: a visit counts if it is at
least 31 days after the last visit that counted); then look for the earliest follow-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.measures.enrollment import covered_without_gap, join_collapse
from jobs.measures.evidence import admissions, any_dx, earliest_evidence, followup_evidence
from jobs.measures.inputs import ed_visits, empty_labels, inpatient_stays
from jobs.measures.strata import age_at

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from jobs.measures.config import MeasuresConfig, MeasureSpec
    from jobs.measures.inputs import Inputs
    from jobs.measures.measurement_period import MeasurePeriod

NOT_ENROLLED = "not_continuously_enrolled"
ADMITTED = "inpatient_within_30d"
REPEAT = "repeat_visit_31d"
READMITTED = "readmission_30d"


def index_condition(spec: MeasureSpec, cfg: MeasuresConfig) -> Column:
    """The index event's diagnosis rule: a principal diagnosis in one set, or any diagnosis in another."""
    from pyspark.sql import functions as F

    principal = spec.get("index_principal") or []
    anyof = spec.get("index_any") or []
    if not principal and not anyof:
        return F.lit(True)
    cond = F.lit(False)
    for vs in principal:
        cond = cond | any_dx("principal_dx", cfg.icd_regex(vs))
    for vs in anyof:
        cond = cond | any_dx("all_dx", cfg.icd_regex(vs))
    return cond


def _eligible_by_age(units: DataFrame, inputs: Inputs, min_age: int) -> DataFrame:
    from pyspark.sql import functions as F

    m = inputs.members.select("member_id", "birth_date").where(F.col("birth_date").isNotNull())
    return (units.join(m, "member_id", "inner")
            .where((F.col("birth_date") <= F.col("anchor_date"))
                   & (age_at("birth_date", "anchor_date") >= min_age))
            .drop("birth_date"))


def _flag_admitted(units: DataFrame, adm: DataFrame, first: int, last: int, out: str,
                   skip_own_admit: bool = False) -> DataFrame:
    """Add boolean ``out``: an admission dated anchor + first .. anchor + last (for a stay, another
    admission than its own)."""
    from pyspark.sql import functions as F

    a = adm.selectExpr("member_id AS _am", "adm_date AS _ad")
    on = ((F.col("member_id") == F.col("_am"))
          & (F.col("_ad") >= F.date_add(F.col("anchor_date"), first))
          & (F.col("_ad") <= F.date_add(F.col("anchor_date"), last)))
    if skip_own_admit:
        on = on & (F.col("_ad") != F.col("admit_date"))
    flagged = join_collapse(units, a, on, drop=["_am", "_ad"], aggs={"_n_adm": F.count("_am")})
    return flagged.withColumn(out, F.col("_n_adm") > 0).drop("_n_adm")


def first_in_chain(units: DataFrame, days: int, out: str = "first_in_chain") -> DataFrame:
    """Add boolean ``out``: the unit is kept by the greedy one-per-``days`` chain over each member's
    eligible dates (rows with ``eligible`` false neither count nor block). A window, not a
    group-and-join-back, so the input is read once."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("member_id")
    dated = units.withColumn("_ds", F.array_sort(F.collect_set(F.when(F.col("eligible"), F.col("anchor_date"))).over(w)))
    chain = F.expr(
        "aggregate(_ds, named_struct('last', CAST(NULL AS DATE), 'kept', CAST(array() AS ARRAY<DATE>)), "
        f"(acc, x) -> CASE WHEN acc.last IS NULL OR datediff(x, acc.last) >= {int(days)} "
        "THEN named_struct('last', x, 'kept', concat(acc.kept, array(x))) ELSE acc END, acc -> acc.kept)")
    return dated.withColumn(out, F.col("eligible") & F.array_contains(chain, F.col("anchor_date"))).drop("_ds")


def _rate_rows(units: DataFrame, spec: MeasureSpec, first_day: int) -> DataFrame:
    """One row per rate (e.g. 7 and 30 days) from units with ev_date/ev_source/ev_labels.

    The rates are exploded from one array rather than unioned, so the units are computed once.
    """
    from pyspark.sql import functions as F

    rates = F.array(*[F.struct(F.lit(mid).alias("mid"), F.lit(int(days)).alias("days"))
                      for mid, days in spec.thresholds.items()])
    df = units.select("*", F.explode(rates).alias("_rate"))
    met = F.col("in_denominator") & F.col("ev_date").isNotNull() & \
        (F.col("ev_date") <= F.date_add(F.col("anchor_date"), F.col("_rate.days"))) & \
        (F.col("ev_date") >= F.date_add(F.col("anchor_date"), first_day))
    met = F.coalesce(met, F.lit(False))
    return df.select(
        F.col("_rate.mid").alias("measure_id"), "member_id", "unit_id", "anchor_date", "in_denominator",
        met.alias("in_numerator"), "exclusion_reason",
        F.when(met, F.col("ev_date")).alias("numerator_date"),
        F.when(met, F.col("ev_source")).alias("numerator_source"),
        F.array_union(F.col("security_labels"),
                      F.when(met, F.coalesce(F.col("ev_labels"), empty_labels())).otherwise(empty_labels()))
        .alias("security_labels"),
        F.lit(spec.sensitivity).alias("measure_sensitivity"))


def ed_followup(inputs: Inputs, cfg: MeasuresConfig, spec: MeasureSpec, period: MeasurePeriod) -> DataFrame:
    """FUM / FUA: one unit per eligible ED visit date."""
    from pyspark.sql import functions as F

    window_days = max(int(d) for d in spec.thresholds.values())
    first_day = int(spec.get("followup_first_day", 0))
    after = int((spec.get("enrollment") or {}).get("after_days", window_days))
    visits = (ed_visits(inputs).where(index_condition(spec, cfg))
              .where(F.col("anchor_date").between(F.lit(period.start), F.lit(period.index_end(window_days)))))
    visits = _eligible_by_age(visits, inputs, int(spec.get("min_age", 0)))
    visits = visits.select("member_id", "unit_id", "anchor_date", "security_labels",
                           F.date_add("anchor_date", after).alias("enroll_end"))
    visits = covered_without_gap(visits, inputs.islands, "anchor_date", "enroll_end")
    adm = admissions(inputs, cfg, list(spec.get("admissions") or ["inpatient"]))
    visits = _flag_admitted(visits, adm, 0, int(spec.get("exclude_admission_days", 30)), "admitted")
    visits = visits.withColumn("eligible", F.col("enrolled") & ~F.col("admitted"))
    visits = first_in_chain(visits, int(spec.get("one_visit_per_days", 31)))
    visits = visits.withColumn(
        "exclusion_reason",
        F.when(~F.col("enrolled"), F.lit(NOT_ENROLLED)).when(F.col("admitted"), F.lit(ADMITTED))
        .when(~F.col("first_in_chain"), F.lit(REPEAT)))
    visits = visits.withColumn("in_denominator", F.col("exclusion_reason").isNull())
    ev = followup_evidence(inputs, cfg, list(spec.get("followup")))
    visits = earliest_evidence(visits, ev, first_day, window_days)
    return _rate_rows(visits, spec, first_day)


def discharge_followup(inputs: Inputs, cfg: MeasuresConfig, spec: MeasureSpec, period: MeasurePeriod) -> DataFrame:
    """FUH / TRC: one unit per inpatient stay, anchored on its discharge date."""
    from pyspark.sql import functions as F

    window_days = max(int(d) for d in spec.thresholds.values())
    first_day = int(spec.get("followup_first_day", 1))
    after = int((spec.get("enrollment") or {}).get("after_days", window_days))
    stays = (inpatient_stays(inputs).where(index_condition(spec, cfg))
             .where(F.col("anchor_date").between(F.lit(period.start), F.lit(period.index_end(window_days)))))
    stays = _eligible_by_age(stays, inputs, int(spec.get("min_age", 0)))
    stays = stays.select("member_id", "unit_id", "admit_date", "anchor_date", "security_labels",
                         F.date_add("anchor_date", after).alias("enroll_end"))
    stays = covered_without_gap(stays, inputs.islands, "anchor_date", "enroll_end")
    adm = admissions(inputs, cfg, list(spec.get("admissions") or ["inpatient"]))
    stays = _flag_admitted(stays, adm, 0, int(spec.get("readmission_days", 30)), "readmitted", skip_own_admit=True)
    stays = stays.withColumn(
        "exclusion_reason",
        F.when(~F.col("enrolled"), F.lit(NOT_ENROLLED)).when(F.col("readmitted"), F.lit(READMITTED)))
    stays = stays.withColumn("in_denominator", F.col("exclusion_reason").isNull())
    ev = followup_evidence(inputs, cfg, list(spec.get("followup")))
    stays = earliest_evidence(stays, ev, first_day, window_days)
    return _rate_rows(stays, spec, first_day)
