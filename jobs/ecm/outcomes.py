"""The clinical, utilisation, cost and quality side of the ECM metrics: what happened to ECM members'
health and to what they cost, read from the hub's clinical tables.

Every input is a silver (or gold) table other stages already fill, resolved to the member through
gold.member_xwalk like the ECM feeds:

* silver.encounter (claims, FHIR Encounters and ADT visits): ED visits, inpatient admissions,
  outpatient visits, diagnoses and the plan's paid amounts (claims only);
* silver.adt_event: inpatient discharges (A03 with patient class I), as hospitals report them;
* silver.observation: blood pressure (LOINC 8480-6 systolic, 8462-4 diastolic, as components of a
  panel or on their own), HbA1c (4548-4, 17856-6, 4549-2) and depression screening scores (PHQ-2
  55758-7, PHQ-9 44261-6 or its panel 44249-1);
* silver.condition and silver.adt_event diagnoses (hypertension, diabetes);
* silver.bh_service (county mental health services: a follow-up of a positive screen);
* gold.member_month (covered member-months) and gold.member_risk (the rolling 12-month tiers),
  for total cost of care and its comparison group.

It adds columns to the ``member_month`` frame and builds two event frames (``discharge``,
``screen``); mappings/ecm/metrics.yaml aggregates them, and docs/ecm-guide.md gives each definition
with its source and simplifications. Windows are the 12 months ending the month's last day
(``R12`` like the risk tiers), diagnoses the 24 months ending it.

Definitions the metrics rely on (one place):

* ED visit: a member's distinct day with an ED encounter (any source; a claim and an ADT visit for
  the same day are one visit). Admission: a member's distinct admit day of an inpatient encounter.
* Paid: the sum of silver.encounter.paid_amount by service month. Pharmacy is not included: in
  Medi-Cal it is carved out of the plans (Medi-Cal Rx), so it is not in the plans' cost of care.
* Index month: an ECM member's enrollment month; for the comparison group, the month itself (a
  non-ECM member is indexed at every month they are covered, as if they had enrolled then). The
  "before" window is the 12 months before the index month, for both groups; "after" is the month.
* Comparison group: the plan's members never authorized for ECM, covered in the month, by their
  risk tier over the 12 months ending the month before the index month. ECM members are matched on
  the tier over the 12 months ending the month before their enrollment (their baseline, before ECM
  could change it); the comparison PMPM is weighted by the ECM members' tier mix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from phmx import lakehouse
from phmx.tables import (
    ADT_EVENT,
    BH_SERVICE,
    CONDITION,
    ECM_ASSIGNMENT,
    ENCOUNTER,
    MEMBER_MONTH,
    MEMBER_RISK,
    MEMBER_XWALK,
    OBSERVATION,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from phmx.tables import Table

#: LOINC codes read (FHIR token system http://loinc.org).
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"
HBA1C = ("4548-4", "17856-6", "4549-2")
PHQ9 = ("44261-6", "44249-1")
PHQ2 = ("55758-7",)
#: Positive screen thresholds (PHQ-9 total >= 10; PHQ-2 total >= 3), as HEDIS DSF and the instruments' authors use.
PHQ9_POSITIVE, PHQ2_POSITIVE = 10.0, 3.0
#: ICD-10-CM prefixes (no dot): essential hypertension (HEDIS CBP's value set is I10); diabetes type 1, 2 and
#: other specified (HEDIS Diabetes value set, without the medication route); depression (follow-up diagnoses).
HYPERTENSION = ("I10",)
DIABETES = ("E10", "E11", "E13")
DEPRESSION = ("F32", "F33", "F341")
#: Days after a discharge a follow-up counts (1..7) and after a positive screen (0..30, HEDIS DSF).
FOLLOW_UP_DAYS, SCREEN_FOLLOW_UP_DAYS = 7, 30
#: The ECM core service that is a follow-up after discharge (DHCS: comprehensive transitional care).
TRANSITIONAL = "TRANSITIONAL_CARE"
KEY = ("member_id", "provider_npi", "plan_id", "authorization_start")


@dataclass
class Clinical:
    member_month: DataFrame
    discharge: DataFrame
    screen: DataFrame


def _loinc(codes: tuple[str, ...] | str) -> str:
    codes = (codes,) if isinstance(codes, str) else codes
    return ", ".join(f"'{c}'" for c in codes)


def _prefix(col: str, prefixes: tuple[str, ...]) -> str:
    return " OR ".join(f"{col} LIKE '{p}%'" for p in prefixes)


def _resolved(spark: SparkSession, table: Table, members: DataFrame) -> DataFrame:
    """A table's rows of the given members (source records linked by identity), every contract column present."""
    xwalk = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    df = lakehouse.conform_to(lakehouse.read(spark, table), table)
    return df.join(xwalk, ["source", "source_person_id"], "inner").drop("source_person_id").join(
        members, "member_id", "left_semi")


def _month(col: str | Column) -> Column:
    from pyspark.sql import functions as F

    return F.date_format(col, "yyyy-MM")


def _readings(obs: DataFrame) -> DataFrame:
    """One row per observation value: (member_id, effective_date, loinc, value), components included."""
    from pyspark.sql import functions as F

    comp = (obs.select("member_id", "effective_date", F.explode("components").alias("c"))
            .select("member_id", "effective_date",
                    F.from_json("c", "struct<code:string,value:double,unit:string,value_code:string>").alias("c"))
            .where(F.col("c.code").startswith("http://loinc.org|"))
            .select("member_id", "effective_date", F.substring_index("c.code", "|", -1).alias("loinc"),
                    F.col("c.value").alias("value")))
    own = obs.select("member_id", "effective_date", F.col("loinc_code").alias("loinc"), F.col("value_num").alias("value"))
    return own.unionByName(comp).where("value IS NOT NULL AND effective_date IS NOT NULL AND loinc IS NOT NULL")


def _latest_in_window(events: DataFrame, cells: DataFrame, value: str, months: int = 12) -> DataFrame:
    """For each (member_id, month) cell, ``value`` (a SQL expression over the events) of the latest event
    dated in the ``months`` months ending the month's last day; null when there is none."""
    from pyspark.sql import functions as F

    j = cells.join(events, "member_id").where(
        (F.col("event_date") <= F.col("month_last"))
        & (F.col("event_date") >= F.add_months(F.col("month_first"), -(months - 1))))
    return j.groupBy("member_id", "month").agg(F.max_by(F.expr(value), F.col("event_date")).alias("v"))


def build(spark: SparkSession, member_month: DataFrame, assignment: DataFrame, service: DataFrame,
          scratch: lakehouse.Scratch) -> Clinical:
    from pyspark.sql import functions as F

    ecm_ids = assignment.select("member_id").distinct()
    enc = scratch.put(_resolved(spark, ENCOUNTER, ecm_ids).select(
        "member_id", "setting", "service_date", "admit_date", "discharge_date", "diagnosis_codes", "paid_amount"),
        "clin_encounter")
    cells = member_month.select("member_id", "month", "month_first", "month_last").distinct()

    # utilisation: distinct days
    ed = (enc.where("setting = 'ED' AND service_date IS NOT NULL").select("member_id", F.col("service_date").alias("d"))
          .distinct().groupBy("member_id", _month("d").alias("month")).agg(F.count("*").alias("ed_visits")))
    ip = (enc.where("setting = 'IP'").select("member_id", F.coalesce("admit_date", "service_date").alias("d"))
          .where("d IS NOT NULL").distinct().groupBy("member_id", _month("d").alias("month"))
          .agg(F.count("*").alias("admissions")))

    # diagnoses (24 months): encounters, conditions, ADT events
    dx = enc.select("member_id", F.col("service_date").alias("event_date"), F.explode("diagnosis_codes").alias("code"))
    cond = _resolved(spark, CONDITION, ecm_ids).select(
        "member_id", F.coalesce("onset_date", "recorded_date").alias("event_date"),
        F.explode("diagnosis_codes").alias("code"))
    adt = _resolved(spark, ADT_EVENT, ecm_ids)
    adt_dx = adt.select("member_id", F.coalesce("event_date", "discharge_date", "admit_date").alias("event_date"),
                        F.explode("diagnosis_codes").alias("code"))
    dx = scratch.put(dx.unionByName(cond).unionByName(adt_dx).where("event_date IS NOT NULL").select(
        "member_id", "event_date",
        F.expr(_prefix("code", HYPERTENSION)).alias("htn"), F.expr(_prefix("code", DIABETES)).alias("dm"))
        .where("htn OR dm"), "clin_dx")
    diag = (cells.join(dx, "member_id").where(
        (F.col("event_date") <= F.col("month_last")) & (F.col("event_date") >= F.add_months(F.col("month_first"), -23)))
        .groupBy("member_id", "month").agg(F.max("htn").alias("hypertensive"), F.max("dm").alias("diabetic")))

    # observations: blood pressure (the day's lowest systolic and diastolic), HbA1c (the day's lowest), screens
    obs = _readings(_resolved(spark, OBSERVATION, ecm_ids).where(
        "status IS NULL OR status IN ('final', 'amended', 'corrected')"))
    obs = scratch.put(obs, "clin_obs")
    bp = (obs.where(f"loinc IN ({_loinc((SYSTOLIC, DIASTOLIC))})").groupBy("member_id", F.col("effective_date").alias("event_date"))
          .agg(F.min(F.when(F.col("loinc") == SYSTOLIC, F.col("value"))).alias("sys"),
               F.min(F.when(F.col("loinc") == DIASTOLIC, F.col("value"))).alias("dia"))
          .where("sys IS NOT NULL AND dia IS NOT NULL"))
    bp_last = _latest_in_window(bp, cells, "sys < 140 AND dia < 90").withColumnRenamed("v", "bp_controlled")
    a1c = (obs.where(f"loinc IN ({_loinc(HBA1C)})").groupBy("member_id", F.col("effective_date").alias("event_date"))
           .agg(F.min("value").alias("a1c")))
    a1c_last = _latest_in_window(a1c, cells, "a1c").withColumnRenamed("v", "hba1c_last")
    screens = (obs.where(f"loinc IN ({_loinc(PHQ9 + PHQ2)})")
               .select("member_id", F.col("effective_date").alias("event_date"),
                       F.expr(f"CASE WHEN loinc IN ({_loinc(PHQ9)}) THEN value >= {PHQ9_POSITIVE} "
                              f"ELSE value >= {PHQ2_POSITIVE} END").alias("positive")))
    screened = (cells.join(screens, "member_id").where(
        (F.col("event_date") <= F.col("month_last")) & (F.col("event_date") >= F.add_months(F.col("month_first"), -11)))
        .groupBy("member_id", "month").agg(F.lit(True).alias("screened")))

    cost = _costs(spark, assignment, member_month, scratch)

    mm = (member_month.join(ed, ["member_id", "month"], "left").join(ip, ["member_id", "month"], "left")
          .join(diag, ["member_id", "month"], "left").join(bp_last, ["member_id", "month"], "left")
          .join(a1c_last, ["member_id", "month"], "left").join(screened, ["member_id", "month"], "left")
          .join(cost, [*KEY, "month"], "left")
          .withColumn("ed_visits", F.coalesce("ed_visits", F.lit(0)).cast("int"))
          .withColumn("admissions", F.coalesce("admissions", F.lit(0)).cast("int"))
          .withColumn("hypertensive", F.coalesce("hypertensive", F.lit(False)))
          .withColumn("diabetic", F.coalesce("diabetic", F.lit(False)))
          .withColumn("bp_controlled", F.coalesce("bp_controlled", F.lit(False)))
          .withColumn("hba1c_poor", F.coalesce(F.col("hba1c_last") > 9.0, F.lit(True)))
          .withColumn("screened", F.coalesce("screened", F.lit(False)))
          .withColumn("covered", F.coalesce("covered", F.lit(False))))

    # 7-day follow-up after an inpatient discharge inside the authorization span
    asg = assignment.select(*KEY, "authorization_end")
    disch = (adt.where("event_type = 'A03' AND patient_class = 'I'")
             .groupBy("member_id", "source", "visit_number")
             .agg(F.max(F.coalesce("discharge_date", "event_date")).alias("discharge_date"))
             .join(asg, "member_id").where(_in_span("discharge_date")))
    op = enc.where("setting = 'OP' AND service_date IS NOT NULL").select("member_id", F.col("service_date").alias("fu"))
    tc = service.where(F.col("core_service") == TRANSITIONAL).select(*KEY, F.col("service_date").alias("fu"))
    cols = [*KEY, "source", "visit_number", "discharge_date"]
    in_window = F.col("fu").between(F.date_add("discharge_date", 1), F.date_add("discharge_date", FOLLOW_UP_DAYS))
    hits = (disch.join(op, "member_id").where(in_window).select(*cols)
            .unionByName(disch.join(tc, list(KEY)).where(in_window).select(*cols))
            .distinct().withColumn("followed_up", F.lit(True)))
    discharge = (disch.select(*cols).join(hits, cols, "left")
                 .withColumn("followed_up", F.coalesce("followed_up", F.lit(False)))
                 .withColumn("month", _month("discharge_date")))

    # positive depression screens inside the span, and a follow-up within 30 days
    pos = (screens.where("positive").select("member_id", F.col("event_date").alias("screen_date")).distinct()
           .join(asg, "member_id").where(_in_span("screen_date")))
    dep_dx = (enc.where("setting = 'OP'").select("member_id", F.col("service_date").alias("fu"),
                                                F.explode("diagnosis_codes").alias("code"))
              .where(_prefix("code", DEPRESSION)).select("member_id", "fu"))
    mh = _resolved(spark, BH_SERVICE, ecm_ids).where("program = 'MH'").select("member_id", F.col("service_date").alias("fu"))
    fu = dep_dx.unionByName(mh).where("fu IS NOT NULL").distinct()
    scols = [*KEY, "screen_date"]
    hit = (pos.join(fu, "member_id").where(F.col("fu").between(
        F.col("screen_date"), F.date_add("screen_date", SCREEN_FOLLOW_UP_DAYS)))
        .select(*scols).distinct().withColumn("followed_up", F.lit(True)))
    screen = (pos.select(*scols).join(hit, scols, "left")
              .withColumn("followed_up", F.coalesce("followed_up", F.lit(False)))
              .withColumn("month", _month("screen_date")))
    return Clinical(mm, discharge, screen)


def _in_span(col: str) -> Column:
    from pyspark.sql import functions as F

    d = F.col(col)
    return (d >= F.col("authorization_start")) & (F.col("authorization_end").isNull() | (d <= F.col("authorization_end")))


def _costs(spark: SparkSession, assignment: DataFrame, member_month: DataFrame,
           scratch: lakehouse.Scratch) -> DataFrame:
    """Per ECM authorization and month: paid and covered in the month, paid and covered months in the
    12 months before enrollment, the baseline tier, and the tier-matched comparison PMPMs (after, before)."""
    from pyspark.sql import functions as F

    months = [r.month for r in member_month.select("month").distinct().collect()]
    if not months:
        return member_month.select(*KEY, "month").limit(0)
    first, last = min(months), max(months)
    # the 12 months before the first index month: the run's first month, or an earlier enrollment month
    earliest = assignment.agg(F.min("enrollment_date")).collect()[0][0]
    if earliest is not None and f"{earliest:%Y-%m}" < first:
        first_index = f"{earliest:%Y-%m}"
    else:
        first_index = first
    xwalk = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    # months as counts (year * 12 + month): formatting dates as text costs more than the rest of the
    # read on the population's tens of millions of member-months
    lo = _month_index(first_index) - 12
    hi = _month_index(last)
    enc = lakehouse.read(spark, ENCOUNTER).select("source", "source_person_id", "service_date", "paid_amount").where(
        "paid_amount IS NOT NULL AND service_date IS NOT NULL")
    paid = scratch.put(
        enc.join(xwalk, ["source", "source_person_id"]).groupBy("member_id", _midx("service_date").alias("midx"))
        .agg(F.sum("paid_amount").alias("paid")).where(F.col("midx").between(lo, hi)), "clin_paid")
    # covered member-months (keys unique) the costs reach: the 12 before the first index month up to the last
    cov = (lakehouse.read(spark, MEMBER_MONTH).select("member_id", _midx("month").alias("midx"))
           .where(F.col("midx").between(lo, hi)))
    # gold.member_risk's rolling tiers, by the month their 12 months end
    risk = lakehouse.read(spark, MEMBER_RISK).where("period LIKE 'R12-%'").select(
        "member_id", F.expr("cast(substring(period, 5, 4) AS int) * 12 + cast(substring(period, 10, 2) AS int)")
        .alias("risk_midx"), "risk_tier", F.col("plan_id").alias("risk_plan"))

    # ECM members (a few percent of the population): their covered months with what was paid in them
    cov_ecm = scratch.put(
        cov.join(assignment.select("member_id").distinct(), "member_id", "left_semi")
        .join(paid, ["member_id", "midx"], "left").withColumn("paid", F.coalesce("paid", F.lit(0.0))),
        "clin_cov_ecm")
    cmp = _comparison(spark, cov, paid, risk, xwalk, lo, hi, _month_index(first))
    enrolled = (assignment.select(*KEY, "enrollment_date").where("enrollment_date IS NOT NULL")
                .withColumn("midx", _midx("enrollment_date")))
    # paid and covered months in the 12 months before the enrollment month (whether or not the member was
    # covered in the enrollment month itself)
    before = (enrolled.join(cov_ecm.select("member_id", F.col("midx").alias("m"), "paid"), "member_id")
              .where((F.col("m") >= F.col("midx") - 12) & (F.col("m") < F.col("midx")))
              .groupBy(*KEY).agg(F.sum("paid").alias("before_paid"), F.count("*").alias("before_months")))
    base = (enrolled.withColumn("risk_midx", F.col("midx") - 1)
            .join(risk.select("member_id", "risk_midx", "risk_tier"), ["member_id", "risk_midx"], "left")
            .join(before, list(KEY), "left")
            .select(*KEY, "risk_tier", "before_paid", "before_months"))
    return (member_month.select(*KEY, "month").join(base, list(KEY), "left")
            .join(cov_ecm.select("member_id", _month_text("midx").alias("month"), "paid", F.lit(True).alias("covered")),
                  ["member_id", "month"], "left")
            .join(cmp, ["plan_id", "risk_tier", "month"], "left")
            .select(*KEY, "month", "risk_tier", "paid", "covered", "before_paid", "before_months", "cmp_pmpm",
                    "cmp_before_pmpm"))


def _midx(col: str) -> Column:
    """A date's month as a count (year * 12 + month)."""
    from pyspark.sql import functions as F

    return F.year(col) * 12 + F.month(col)


def _month_text(col: str) -> Column:
    """A month count as ``YYYY-MM``."""
    from pyspark.sql import functions as F

    return F.expr(f"concat(cast(cast(floor(({col} - 1) / 12) AS int) AS string), '-', "
                  f"lpad(cast(({col} - 1) % 12 + 1 AS string), 2, '0'))")


def _month_index(month: str) -> int:
    """``YYYY-MM`` as a month count (year * 12 + month), the index the cost windows are in."""
    return int(month[:4]) * 12 + int(month[5:7])


def _comparison(spark: SparkSession, cov: DataFrame, paid: DataFrame, risk: DataFrame, xwalk: DataFrame,
                lo: int, hi: int, first: int) -> DataFrame:
    """The comparison group's PMPMs per (plan, tier, month) for the months from ``first`` on: after (paid
    in the month / covered members) and before (paid / covered months in each member's 12 months before).

    The group is nearly the whole population (24 million covered member-months at a million members), and
    only its sums per plan, tier and month are needed. So nothing is windowed or joined per member-month:
    each member becomes one row with a column per month (covered, paid, plan and tier as of the month
    before), the 12-month sums are those columns added, and the rows are summed into groups.
    """
    from pyspark.sql import functions as F

    ever_ecm = lakehouse.read(spark, ECM_ASSIGNMENT).select("source", "source_person_id").join(
        xwalk, ["source", "source_person_id"]).select("member_id").distinct()
    span = hi - lo + 1
    ks = range(span)
    k = F.col("midx") - F.lit(lo)
    covered = (cov.join(ever_ecm, "member_id", "left_anti").groupBy("member_id")
               .agg(*[F.max(F.when(k == i, F.lit(1))).alias(f"c{i}") for i in ks]))
    spent = (paid.groupBy("member_id")
             .agg(*[F.sum(F.when(k == i, F.col("paid"))).alias(f"p{i}") for i in ks]))
    index = range(first - lo, span)  # the comparison's months, as column numbers
    tiers = (risk.withColumnRenamed("risk_midx", "midx").where(F.col("midx").between(first - 1, hi - 1))
             .withColumn("pt", F.concat_ws("|", "risk_plan", "risk_tier")).groupBy("member_id")
             .agg(*[F.max(F.when(k == i - 1, F.col("pt"))).alias(f"t{i}") for i in index]))
    wide = covered.join(tiers, "member_id").join(spent, "member_id", "left")

    def cov_(i: int) -> Column:
        return F.coalesce(F.col(f"c{i}"), F.lit(0))

    def paid_(i: int) -> Column:  # paid counts in covered months only
        return F.when(F.col(f"c{i}") == 1, F.coalesce(F.col(f"p{i}"), F.lit(0.0))).otherwise(F.lit(0.0))

    cells = []
    for i in index:
        before = [j for j in range(i - 12, i) if j >= 0]
        before_paid = sum((paid_(j) for j in before[1:]), paid_(before[0])) if before else F.lit(0.0)
        before_months = sum((cov_(j) for j in before[1:]), cov_(before[0])) if before else F.lit(0)
        y, m = divmod(i + lo - 1, 12)
        cells.append(F.struct(F.lit(f"{y:04d}-{m + 1:02d}").alias("month"), F.col(f"t{i}").alias("pt"), cov_(i).alias("covered"),
                              paid_(i).alias("paid"), before_paid.alias("before_paid"),
                              before_months.alias("before_months")))
    rows = wide.select(F.explode(F.array(*cells)).alias("r")).select("r.*").where("covered = 1 AND pt IS NOT NULL")
    return (rows.groupBy("pt", "month")
            .agg(F.sum("paid").alias("paid"), F.count("*").alias("n"), F.sum("before_paid").alias("before_paid"),
                 F.sum("before_months").alias("before_months"))
            .select(F.split("pt", "[|]").getItem(0).alias("plan_id"), F.split("pt", "[|]").getItem(1).alias("risk_tier"),
                    "month", (F.col("paid") / F.col("n")).alias("cmp_pmpm"),
                    F.when(F.col("before_months") > 0, F.col("before_paid") / F.col("before_months"))
                    .alias("cmp_before_pmpm")))
