"""The frames ECM metrics aggregate, built once per run from the ECM silver tables.

Every record is resolved to its member through gold.member_xwalk (the plan's assignment names the
member by the plan's member id, the providers' files by CIN; identity has linked both to one
member_id). A provider's events count for an authorization only inside its span
[authorization_start, authorization_end]: outreach before the plan authorized the member, or
services after the authorization ended, are kept in silver but are not ECM for the plan.

* ``assignment``: one row per authorization (member, provider NPI, plan, start) with the provider's
  latest status for that member and plan (the return transmission row with the latest status date:
  enrollment, care plan, lead care manager, end) and the first counted outreach attempt.
* ``member_month``: one row per authorization and month it overlaps, engaged or not, with the month's
  counted outreach attempts, successful ones and services.
* ``outreach``, ``service``, ``referral``: events inside their authorization's span, with ``month``.
* the clinical side (jobs/ecm/outcomes.py): utilisation, cost and quality columns on ``member_month``,
  and the ``discharge`` and ``screen`` event frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from jobs.ecm import outcomes
from phmx import lakehouse
from phmx.period import Period, PeriodKind
from phmx.tables import CS_REFERRAL, ECM_ASSIGNMENT, ECM_CARE_PLAN, ECM_OUTREACH, ECM_SERVICE, MEMBER_XWALK

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: One authorization, as every frame names it.
KEY = ("member_id", "provider_npi", "plan_id", "authorization_start")
#: What an outreach attempt must be to count (DHCS: communication the member can answer directly).
COUNTED_ATTEMPT = "method <> 'MAIL'"
SUCCESSFUL = "outcome LIKE 'CONTACT%'"


@dataclass
class Frames:
    assignment: DataFrame
    member_month: DataFrame
    outreach: DataFrame
    service: DataFrame
    referral: DataFrame
    discharge: DataFrame
    screen: DataFrame
    months: list[tuple[str, date, date]]
    unlinked: int

    def get(self, name: str) -> DataFrame:
        frame: DataFrame = getattr(self, name)
        return frame


def month_list(first: date, last: date) -> list[tuple[str, date, date]]:
    """``(YYYY-MM, first day, last day)`` for every month from ``first``'s to ``last``'s."""
    out = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        out.append((f"{y:04d}-{m:02d}", date(y, m, 1), nxt - timedelta(days=1)))
        y, m = nxt.year, nxt.month
    return out


def _resolve(df: DataFrame, xwalk: DataFrame) -> DataFrame:
    return df.join(xwalk, ["source", "source_person_id"], "inner").drop("source_person_id")


def _in_span(col: str) -> Column:
    from pyspark.sql import functions as F

    d = F.col(col)
    return (d >= F.col("authorization_start")) & (F.col("authorization_end").isNull() | (d <= F.col("authorization_end")))


def _span_events(events: DataFrame, assignments: DataFrame, date_col: str, event_key: list[str]) -> DataFrame:
    """Events of a member with a provider and plan, inside one of that provider's authorizations for them.

    An event inside two overlapping authorizations of the same provider and plan counts once, for the
    later one (the latest ``authorization_start``), so which one it is never depends on the engine.
    (A semi-join to each event's latest start, not ``dropDuplicates``: the engine's keep-any-row
    costs ten times as much on a 150,000-row frame.)
    """
    from pyspark.sql import functions as F

    a = assignments.select(*KEY, "authorization_end")
    inside = events.join(a, ["member_id", "provider_npi", "plan_id"], "inner").where(_in_span(date_col))
    latest = inside.groupBy(*event_key).agg(F.max("authorization_start").alias("authorization_start"))
    return (inside.join(latest, [*event_key, "authorization_start"], "left_semi")
            .withColumn("month", F.date_format(date_col, "yyyy-MM")))


def period_months(spark: SparkSession, period: str, assignments: DataFrame,
                  events: list[tuple[DataFrame, str]]) -> list[tuple[str, date, date]]:
    """The months a run computes: the period's (a month, quarter, year or rolling 12 months), or for
    ``all`` every month from the first authorization to the latest date in the ECM data."""
    from pyspark.sql import functions as F

    p = Period.parse(period)
    if p.kind is not PeriodKind.ALL:
        assert p.start is not None and p.end is not None
        return month_list(p.start, p.end)
    first = assignments.agg(F.min("authorization_start")).collect()[0][0]
    if first is None:
        return []
    last = first
    for df, col in events:
        v = df.agg(F.max(col)).collect()[0][0]
        if v is not None and v > last:
            last = v
    return month_list(first, last)


def build(spark: SparkSession, period: str, scratch: lakehouse.Scratch) -> Frames:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    xwalk = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    raw_asg = lakehouse.read(spark, ECM_ASSIGNMENT)
    asg = scratch.put(_resolve(raw_asg, xwalk).select(
        *KEY, "assignment_id", "populations_of_focus", "authorization_end", "end_reason"), "assignment_raw")
    unlinked = raw_asg.count() - asg.count()

    w = Window.partitionBy("member_id", "provider_npi", "plan_id").orderBy(
        F.col("status_date").desc(), F.col("period").desc(), F.col("row_number").desc())
    status = (_resolve(lakehouse.read(spark, ECM_CARE_PLAN), xwalk).withColumn("_rn", F.row_number().over(w))
              .where("_rn = 1").select("member_id", "provider_npi", "plan_id", "benefit_status", "enrollment_date",
                                       "end_date", "care_plan_date", "lead_care_manager_id"))
    outreach = scratch.put(_span_events(_resolve(lakehouse.read(spark, ECM_OUTREACH), xwalk), asg, "attempt_date",
                                        ["source", "outreach_id"]), "outreach")
    service = scratch.put(_span_events(_resolve(lakehouse.read(spark, ECM_SERVICE), xwalk), asg, "service_date",
                                       ["source", "service_id"]), "service")
    referral = scratch.put(_span_events(_resolve(lakehouse.read(spark, CS_REFERRAL), xwalk), asg, "referral_date",
                                        ["source", "referral_id"]), "referral")

    first_attempt = (outreach.where(COUNTED_ATTEMPT).groupBy(*KEY)
                     .agg(F.min("attempt_date").alias("first_outreach_date")))
    assignment = scratch.put(asg.join(status, ["member_id", "provider_npi", "plan_id"], "left")
                             .join(first_attempt, list(KEY), "left"), "assignment")

    months = period_months(spark, period, asg, [(lakehouse.read(spark, ECM_CARE_PLAN), "status_date"),
                                                (outreach, "attempt_date"), (service, "service_date"),
                                                (referral, "referral_date")])
    cal = spark.createDataFrame([(m, f, last) for m, f, last in months] or [("", date(1900, 1, 1), date(1900, 1, 1))],
                                "month string, month_first date, month_last date").where("month <> ''")
    per_month_out = (outreach.where(COUNTED_ATTEMPT).groupBy(*KEY, "month").agg(
        F.count("*").alias("outreach_attempts"),
        F.sum(F.expr(f"CASE WHEN {SUCCESSFUL} THEN 1 ELSE 0 END")).alias("successful_outreach")))
    per_month_svc = service.groupBy(*KEY, "month").agg(F.count("*").alias("services"))
    mm = (assignment.crossJoin(cal)
          .where((F.col("authorization_start") <= F.col("month_last"))
                 & (F.col("authorization_end").isNull() | (F.col("authorization_end") >= F.col("month_first"))))
          .withColumn("engaged", F.coalesce(
              (F.col("enrollment_date") <= F.col("month_last"))
              & (F.col("end_date").isNull() | (F.col("end_date") >= F.col("month_first"))), F.lit(False)))
          .join(per_month_out, [*KEY, "month"], "left").join(per_month_svc, [*KEY, "month"], "left")
          .withColumn("outreach_attempts", F.coalesce("outreach_attempts", F.lit(0)).cast("int"))
          .withColumn("successful_outreach", F.coalesce("successful_outreach", F.lit(0)).cast("int"))
          .withColumn("services", F.coalesce("services", F.lit(0)).cast("int")))
    clin = outcomes.build(spark, scratch.put(mm, "member_month_base"), assignment, service, scratch)
    member_month = scratch.put(clin.member_month, "member_month")
    discharge = scratch.put(clin.discharge, "discharge")
    screen = scratch.put(clin.screen, "screen")
    return Frames(assignment, member_month, outreach, service, referral, discharge, screen, months, unlinked)
