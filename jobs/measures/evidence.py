"""Follow-up evidence and admissions: the events that satisfy or exclude a follow-up measure.

Each evidence kind named in measures.yaml (``followup:``) is defined once here from the value
sets, and carries the labels of the row it came from. When several events fall on the earliest
qualifying date, the least sensitive one is chosen (``rank``: plan claim, then pharmacy, then
county MH, then county SUD), so a unit does not take on 42 CFR Part 2 labels when a general
claim met the numerator just as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from jobs.measures.config import MeasuresConfig
    from jobs.measures.inputs import Inputs

SOURCE_RANK = {"plan_claim": 0, "pharmacy": 1, "county_mh": 2, "county_sud": 3}


def any_dx(col: str, regex: str) -> Column:
    """True when any code in the array column matches the value set's regex.

    Matched on the comma-joined codes (see :func:`jobs.measures.config.prefix_regex`): a lambda
    (``exists``) in a filter fails on the embedded engine when pushed into a Delta scan.
    """
    from pyspark.sql import functions as F

    return F.coalesce(F.concat_ws(",", F.col(col)).rlike(regex), F.lit(False))


def any_code(col: str, codes: tuple[str, ...]) -> Column:
    """True when the array column holds any of the codes."""
    from pyspark.sql import functions as F

    wanted = F.array(*[F.lit(c) for c in codes])
    return F.coalesce(F.arrays_overlap(F.col(col), wanted), F.lit(False))


def ambulatory_claims(inputs: Inputs, cfg: MeasuresConfig) -> DataFrame:
    """Outpatient encounters in an ambulatory place of service (not inpatient, ED, SNF, ...)."""
    from pyspark.sql import functions as F

    non_amb = list(cfg.code_list("place_of_service", "non_ambulatory"))
    return inputs.encounters.where((F.col("setting") == "OP")
                                   & (F.col("pos").isNull() | ~F.col("pos").isin(non_amb)))


def _claim_condition(kind: str, cfg: MeasuresConfig) -> Column:
    from pyspark.sql import functions as F

    if kind == "claim_mental_health_dx":
        return any_dx("diagnosis_codes", cfg.icd_regex("mental_illness"))
    if kind == "claim_mental_health_service":
        return any_code("procedure_codes", cfg.code_list("procedure_codes", "mental_health_services"))
    if kind == "claim_sud_dx":
        return any_dx("diagnosis_codes", cfg.icd_regex("sud")) | any_dx("diagnosis_codes", cfg.icd_regex("drug_overdose"))
    if kind == "claim_sud_service":
        return any_code("procedure_codes", cfg.code_list("procedure_codes", "sud_services"))
    if kind == "claim_ambulatory":
        return F.lit(True)
    raise KeyError(kind)


def followup_evidence(inputs: Inputs, cfg: MeasuresConfig, kinds: list[str]) -> DataFrame:
    """(member_id, event_date, source, rank, security_labels) for every event of the given kinds."""
    from pyspark.sql import functions as F

    def shape(df: DataFrame, date_col: str, source: str) -> DataFrame:
        return df.select("member_id", F.col(date_col).alias("event_date"), F.lit(source).alias("source"),
                         F.lit(SOURCE_RANK[source]).alias("rank"), "security_labels")

    frames: list[DataFrame] = []
    claim_kinds = [k for k in kinds if k.startswith("claim_")]
    if claim_kinds:
        cond = _claim_condition(claim_kinds[0], cfg)
        for k in claim_kinds[1:]:
            cond = cond | _claim_condition(k, cfg)
        frames.append(shape(ambulatory_claims(inputs, cfg).where(cond), "service_date", "plan_claim"))
    if "county_mh" in kinds:
        modes = list(cfg.code_list("county_bh", "mh_followup_modes"))
        frames.append(shape(inputs.bh.where((F.col("program") == "MH") & F.col("mode").isin(modes)),
                            "service_date", "county_mh"))
    if "county_sud" in kinds:
        # CalOMS reports treatment episodes, not visits: the admission date is the dated contact.
        frames.append(shape(inputs.bh.where(F.col("program") == "SUD"), "service_date", "county_sud"))
    if "sud_pharmacotherapy" in kinds:
        ndcs = list(cfg.code_list("ndc", "sud_pharmacotherapy"))
        frames.append(shape(inputs.medications.where(F.col("ndc").isin(ndcs)), "fill_date", "pharmacy"))
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out.where(F.col("event_date").isNotNull())


def admissions(inputs: Inputs, cfg: MeasuresConfig, kinds: list[str]) -> DataFrame:
    """(member_id, adm_date, adm_key): inpatient admissions and county 24-hour services."""
    from pyspark.sql import functions as F

    frames = []
    if "inpatient" in kinds:
        ip = inputs.encounters.where(F.col("setting") == "IP")
        frames.append(ip.select("member_id", F.coalesce("admit_date", "service_date").alias("adm_date"),
                                F.col("unit_key").alias("adm_key")))
    if "county_24_hour" in kinds:
        modes = list(cfg.code_list("county_bh", "mh_24_hour_modes"))
        bh = inputs.bh.where((F.col("program") == "MH") & F.col("mode").isin(modes))
        frames.append(bh.select("member_id", F.col("service_date").alias("adm_date"),
                                F.lit("county_24h").alias("adm_key")))
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out.where(F.col("adm_date").isNotNull())


def _events(evidence: DataFrame, *, ranked: bool) -> DataFrame:
    return evidence.selectExpr("member_id AS _em", "event_date AS _ed", "source AS _es",
                               *(["rank AS _er"] if ranked else []), "security_labels AS _el")


def earliest_evidence(units: DataFrame, evidence: DataFrame, first_day: int, last_day: int) -> DataFrame:
    """Add ev_date, ev_source, ev_labels: the earliest evidence in [anchor + first_day, anchor + last_day]
    (least sensitive source on ties); nulls when there is none. ``units`` needs member_id, unit_id,
    anchor_date (one row per unit); ``evidence`` comes from :func:`followup_evidence`."""
    from pyspark.sql import functions as F

    from jobs.measures.enrollment import join_collapse

    on = ((F.col("member_id") == F.col("_em"))
          & (F.col("_ed") >= F.date_add(F.col("anchor_date"), first_day))
          & (F.col("_ed") <= F.date_add(F.col("anchor_date"), last_day)))
    best = join_collapse(units, _events(evidence, ranked=True), on, drop=["_em", "_er"],
                         order=[F.col("_ed").asc_nulls_last(), F.col("_er").asc_nulls_last()])
    return (best.withColumnRenamed("_ed", "ev_date").withColumnRenamed("_es", "ev_source")
            .withColumnRenamed("_el", "ev_labels"))


def dated_events_in_window(units: DataFrame, events: DataFrame, start_col: str, end_col: str,
                           needed: int) -> DataFrame:
    """Count each unit's events on distinct dates inside [start_col, end_col].

    ``events``: member_id, event_date, source, security_labels. Adds ``n_dates``, ``nth_date``
    (the date the ``needed``-th distinct date was reached, null if never), ``ev_sources`` (the
    sources of the events up to that date, joined with '+') and ``ev_labels`` (their labels).
    """
    from pyspark.sql import functions as F

    from jobs.measures.enrollment import join_collapse
    from jobs.measures.inputs import empty_labels

    on = (F.col("member_id") == F.col("_em")) & F.col("_ed").between(F.col(start_col), F.col(end_col))
    agg = join_collapse(units, _events(events, ranked=False), on, drop=["_em", "_ed", "_es", "_el"], aggs={
        "_ds": F.collect_set("_ed"),
        "_evs": F.collect_list(F.struct(F.col("_ed").alias("d"), F.col("_es").alias("s"), F.col("_el").alias("l"))),
    })
    agg = agg.withColumn("_ds", F.array_sort("_ds"))
    agg = agg.withColumn("n_dates", F.size("_ds")).withColumn(
        "nth_date", F.when(F.size("_ds") >= needed, F.element_at("_ds", needed)))
    counted = F.filter("_evs", lambda e: e["d"] <= F.col("nth_date"))
    return (agg.withColumn("ev_sources", F.when(F.col("nth_date").isNotNull(), F.concat_ws(
                "+", F.array_sort(F.array_distinct(F.transform(counted, lambda e: e["s"]))))))
            .withColumn("ev_labels", F.when(F.col("nth_date").isNotNull(), F.array_sort(F.array_distinct(
                F.flatten(F.transform(counted, lambda e: e["l"]))))).otherwise(empty_labels()))
            .drop("_ds", "_evs"))
