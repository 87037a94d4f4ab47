"""ECM packages: per ECM provider (its assigned members) and per plan (oversight of its providers).

Each is a feed like every other (``<recipient>/ecm/<period>/v<N>``): built here, then staged,
signed, recorded in the ledger, promoted and logged in gold.feed_log by the publish stage
(:func:`jobs.publish.stage.publish_ecm`), so a re-run is a new version and a crashed one is caught
up like any other delivery.

**Who is in it.** An ECM provider (``ecm_*``) receives the members a plan authorized to one of its
NPIs (:func:`phmx.recipients.ecm_assignments`) whose authorization is current on the package's
date (``as_of``: the last day of the latest ECM month of the run's period): never a member
assigned to another provider, never one whose authorization ended. A plan receives the members of
its own authorizations (``plan_id`` in the ids of its member information files), across its
providers.

**Consent.** Member rows are a disclosure for treatment (purpose TREAT; the ECM provider is a
treating provider of its assigned members, the plan coordinates their care): every row carries
security labels and goes through :func:`consent.enforce.permitted_rows` with the decisions the
consent stage stored for that recipient (:mod:`jobs.consent_decisions.stage`). So 42 CFR Part 2
SUD content (a risk row built partly from SUD evidence, an SUD population of focus, a care gap of
an SUD measure) reaches the recipient only with a consent of the member's that covers it; county
mental health content follows W&I 5328 as the policy has it (permitted between treating
professionals); general content follows HIPAA's treatment permission. Withheld rows leave no
marker. The roster row itself (who is assigned, by the plan's own member id) is general data the
plan sent.

**Files.** ``members`` (roster: plan member id, birth date, sex, authorization, status,
enrollment, care plan, lead care manager), ``risk`` (the latest rolling-12-month tier with its
period, points by component and the ED visits and unplanned admissions behind it), ``populations``
(populations of focus: the plan's authorization and the ones the hub's data show), ``care_gaps`` (open measure denominators), each as CSV and Parquet,
plus the aggregate provider-month metrics, statement lines and the dashboard
(:mod:`jobs.ecm.ecm_package`). No name and no CIN: as the plan feed, the member is named by the
plan's own member id, which the provider already holds from the plan's assignment file.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.publish import consent_gate, ecm_fhir
from jobs.publish.fhir_sql import PART2_NOTICE
from jobs.publish.package import Package
from phmx import lakehouse
from phmx.errors import ConfigError
from phmx.log import get_logger
from phmx.recipients import ecm_assignments, ecm_provider_npis, is_ecm_provider, is_plan
from phmx.tables import (
    ECM_ASSIGNMENT,
    ECM_MEMBER_MONTH,
    ECM_POPULATION_FLAG,
    MEASURE_EVENT,
    MEMBER,
    MEMBER_RISK,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from phmx.period import Period

log = get_logger(__name__)

FEED = "ecm"
PURPOSE = consent_gate.TREAT
TABLES = ("members", "risk", "populations", "care_gaps")
ROSTER_COLUMNS = ("plan_id", "plan_member_id", "provider_npi", "birth_date", "sex", "populations_of_focus",
                  "authorization_start", "authorization_end", "enrollment_date", "end_date", "care_plan_date",
                  "lead_care_manager_id")
RISK_COLUMNS = ("plan_id", "plan_member_id", "provider_npi", "period", "as_of", "risk_tier", "points",
                "utilization_points", "chronic_points", "behavioral_points", "social_points", "ed_visits",
                "unplanned_admissions")
POPULATION_COLUMNS = ("plan_id", "plan_member_id", "provider_npi", "population", "basis")
GAP_COLUMNS = ("plan_id", "plan_member_id", "provider_npi", "measure_id", "period", "anchor_date")
#: Plan-assigned populations of focus whose name says mental health or SUD: labelled so that
#: consent decides them (the SUD part with the risk row's SUD evidence, see :func:`_populations`).
SENSITIVE_POPULATIONS = {"SMH_SUD": ["MH"]}


@dataclass
class EcmRows:
    """A recipient's permitted member rows per table (pandas, ready to write), the ledger's
    members-by-class frame and the roster's size."""

    tables: dict[str, Any]
    members: DataFrame
    roster: int
    as_of: date | None


def recipients(spark: SparkSession) -> list[str]:
    """Every ECM package recipient: the ECM providers, then the plans that assign members to ECM."""
    from pyspark.sql import functions as F

    if not lakehouse.exists(ECM_MEMBER_MONTH):
        return []
    plans = sorted({r[0] for r in lakehouse.read(spark, ECM_ASSIGNMENT).select(
        F.split("source", ":").getItem(0)).distinct().collect() if r[0] and is_plan(r[0])})
    return [*ecm_provider_npis(spark), *plans]


def as_of(spark: SparkSession, period: Period) -> tuple[str, date] | None:
    """(YYYY-MM, last day) of the latest month of gold.ecm_member_month inside ``period``."""
    from pyspark.sql import functions as F

    mm = lakehouse.read(spark, ECM_MEMBER_MONTH)
    if period.end is not None:
        mm = mm.where(F.col("month") <= f"{period.end.year:04d}-{period.end.month:02d}")
    if period.start is not None:
        mm = mm.where(F.col("month") >= f"{period.start.year:04d}-{period.start.month:02d}")
    month = mm.agg(F.max("month")).collect()[0][0]
    if month is None:
        return None
    y, m = int(month[:4]), int(month[5:7])
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return str(month), date.fromordinal(nxt.toordinal() - 1)


def _current(spark: SparkSession, recipient: str, month: str, day: date) -> DataFrame:
    """One roster row per (member, provider NPI, plan) authorization of ``recipient`` current on ``day``."""
    from pyspark.sql import functions as F

    mm = lakehouse.read(spark, ECM_MEMBER_MONTH).where(F.col("month") == month).where(
        (F.col("authorization_start") <= F.lit(day))
        & (F.col("authorization_end").isNull() | (F.col("authorization_end") >= F.lit(day))))
    if is_ecm_provider(recipient):
        mine = (ecm_assignments(spark).where(F.col("recipient") == recipient)
                .select("member_id", "provider_npi", "plan_id", "authorization_start").distinct())
        mm = mm.join(mine, ["member_id", "provider_npi", "plan_id", "authorization_start"], "left_semi")
    elif is_plan(recipient):
        plans = [r[0] for r in lakehouse.read(spark, ECM_ASSIGNMENT)
                 .where(F.split("source", ":").getItem(0) == recipient).select("plan_id").distinct().collect()]
        mm = mm.where(F.col("plan_id").isin(plans)) if plans else mm.limit(0)
    else:
        raise ConfigError(f"not an ECM package recipient: {recipient!r}",
                          hint="an ECM provider (ecm_*) or a plan (mcp_*)")
    member = lakehouse.read(spark, MEMBER).select("member_id", "birth_date", "sex")
    return (mm.withColumn("plan_member_id", F.split("assignment_id", r"\|").getItem(0))
            .join(member, "member_id", "left")
            .select("member_id", *ROSTER_COLUMNS, F.array().cast("array<string>").alias("security_labels")))


def _none(keys: DataFrame, table: Any, columns: list[str]) -> DataFrame:
    """No rows, with the roster's keys and ``columns`` typed as in ``table`` (a table not written yet)."""
    from pyspark.sql import functions as F

    types = dict(table.columns)
    extra = [F.lit(None).cast(types[c]).alias(c) for c in columns if c not in keys.columns]
    return keys.limit(0).select("member_id", *[c for c in columns if c in keys.columns], *extra)


def _risk(spark: SparkSession, roster: DataFrame, month: str) -> DataFrame:
    """The roster's tier for the rolling 12 months ending ``month`` (or the latest one before it)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = roster.select("member_id", "plan_id", "plan_member_id", "provider_npi")
    if not lakehouse.exists(MEMBER_RISK):
        return _none(keys, MEMBER_RISK, [*RISK_COLUMNS, "security_labels", "homeless", "ecm_homeless",
                                         "ecm_high_utilizer", "smi", "sud", "ecm_smi_sud"])
    w = Window.partitionBy("member_id").orderBy(F.col("period").desc())
    # the roster's members first: the window then sorts a provider's few hundred rows, not the population's
    risk = (lakehouse.read(spark, MEMBER_RISK).where(F.col("period").startswith("R12-"))
            .where(F.col("period") <= f"R12-{month}").join(keys.select("member_id").distinct(), "member_id",
                                                           "left_semi")
            .withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("plan_id", "_rn"))
    return keys.join(risk, "member_id").select("member_id", *RISK_COLUMNS, "security_labels",
                                                "homeless", "ecm_homeless", "ecm_high_utilizer", "smi", "sud",
                                                "ecm_smi_sud")


def _populations(spark: SparkSession, roster: DataFrame, risk: DataFrame, month: str) -> DataFrame:
    """Populations of focus, one row each: the plan's authorization (basis ``plan``) and what the
    hub's data show (basis ``hub``: gold.ecm_population_flag for the latest rolling period up to
    ``month``, or the risk row's flags before that table exists), each with its evidence's labels."""
    from pyspark.sql import functions as F

    keys = ["member_id", "plan_id", "plan_member_id", "provider_npi"]
    sud_of = risk.select("member_id", F.filter("security_labels", lambda x: x.isin(
        "SUD", "ETH", "ETHUD", "OPIOIDUD", "42CFRPart2")).alias("_sud"))
    plan = (roster.select(*keys, F.explode("populations_of_focus").alias("population"))
            .join(sud_of, "member_id", "left"))
    sens = F.lit(None).cast("array<string>")
    for code, labs in SENSITIVE_POPULATIONS.items():
        sens = F.when(F.col("population") == code, F.concat(F.array(*[F.lit(v) for v in labs]),
                                                            F.coalesce("_sud", F.array().cast("array<string>")))
                      ).otherwise(sens)
    plan = plan.select(*keys, "population", F.lit("plan").alias("basis"),
                       F.coalesce(sens, F.array().cast("array<string>")).alias("security_labels"))
    if lakehouse.exists(ECM_POPULATION_FLAG):
        flagged = lakehouse.read(spark, ECM_POPULATION_FLAG).where(F.col("period") <= f"R12-{month}")
        latest_period = flagged.agg(F.max("period")).collect()[0][0]
        hub = (flagged.where(F.col("period") == latest_period).join(roster.select(*keys), "member_id")
               .select(*keys, "population", F.lit("hub").alias("basis"), "security_labels"))
        return plan.unionByName(hub)
    latest = risk.select(*keys, F.explode(F.array(
        F.when(F.col("ecm_homeless"), F.lit("HOMELESS_ADULT")),
        F.when(F.col("ecm_high_utilizer"), F.lit("AVOIDABLE_UTILIZATION")),
        F.when(F.col("ecm_smi_sud"), F.lit("SMH_SUD")))).alias("population"), "security_labels"
        ).where(F.col("population").isNotNull()).select(*keys, "population", F.lit("hub").alias("basis"),
                                                          "security_labels")
    return plan.unionByName(latest)


def _gaps(spark: SparkSession, roster: DataFrame, day: date) -> DataFrame:
    """Open care gaps: measure denominators not met and not excluded, for the measurement year of
    ``day`` and the rolling 12 months ending its month."""
    from pyspark.sql import functions as F

    keys = roster.select("member_id", "plan_id", "plan_member_id", "provider_npi")
    if not lakehouse.exists(MEASURE_EVENT):
        return _none(keys, MEASURE_EVENT, [*GAP_COLUMNS, "security_labels"])
    periods = [f"{day.year:04d}", f"R12-{day.year:04d}-{day.month:02d}"]
    ev = (lakehouse.read(spark, MEASURE_EVENT).where(F.col("period").isin(periods))
          .where(F.col("in_denominator") & ~F.coalesce(F.col("in_numerator"), F.lit(False))
                 & F.col("exclusion_reason").isNull())
          .select("member_id", "measure_id", "period", "anchor_date", "security_labels"))
    return keys.join(ev, "member_id").select("member_id", *GAP_COLUMNS, "security_labels")


def permitted(spark: SparkSession, recipient: str, period: Period, at: Any) -> EcmRows:
    """The recipient's member rows per table after consent (and the ledger's member list)."""
    from pyspark.sql import functions as F

    from consent import enforce

    found = as_of(spark, period)
    empty = spark.createDataFrame([], "member_id string, data_class string, rule_ids array<string>, "
                                      "consent_ids array<string>")
    if found is None:
        return EcmRows({}, empty, 0, None)
    month, day = found
    # the roster is a few hundred rows: read once and sent back as a local frame, so the queries below
    # do not each recompute it from the member-months and the crosswalk
    current = _current(spark, recipient, month, day)
    roster_pdf = current.toPandas()
    if not len(roster_pdf):
        return EcmRows({}, empty, 0, day)
    roster = spark.createDataFrame(roster_pdf, schema=current.schema)
    decisions = consent_gate.recipient_decisions(spark, recipient, PURPOSE)
    risk = _risk(spark, roster, month)
    frames = {"members": roster, "risk": risk.select("member_id", *RISK_COLUMNS, "security_labels"),
              "populations": _populations(spark, roster, risk, month), "care_gaps": _gaps(spark, roster, day)}
    tables: dict[str, Any] = {}
    members = None
    for name, df in frames.items():
        ok = enforce.permitted_rows(spark, df, recipient=recipient, purpose=PURPOSE, at=at, decisions=decisions)
        pdf: Any = ok.toPandas()
        tables[name] = pdf
        sent = spark.createDataFrame(pdf[["member_id", "security_labels"]]) if len(pdf) else None
        if sent is not None:
            mc = enforce.disclosure_members(spark, sent, recipient=recipient, purpose=PURPOSE, at=at,
                                            decisions=decisions)
            members = mc if members is None else members.unionByName(mc)
    members = (members if members is not None else empty).groupBy("member_id", "data_class").agg(
        F.first("rule_ids").alias("rule_ids"), F.first("consent_ids").alias("consent_ids"))
    return EcmRows(tables, members, int(len(tables["members"])), day)


def _files(name: str, pdf: Any, columns: tuple[str, ...]) -> dict[str, tuple[bytes, str]]:
    """CSV and Parquet of a member table, sorted, without the hub's member id or labels."""
    cols = [c for c in columns if c in pdf.columns]
    out = pdf[cols].copy()
    lists = {c for c in cols if len(out) and out[c].map(lambda v: hasattr(v, "__len__") and not isinstance(v, str)).any()}
    # every scalar column sorts, after the keys a reader looks by: rows equal on the keys (a population of
    # focus both assigned and seen in the data) would otherwise keep the engine's order, and the same rows
    # in another order make a package that is not the published one (jobs/publish/package.unchanged_since)
    keys = [c for c in ("plan_id", "plan_member_id", "provider_npi", "population", "measure_id", "period") if c in cols]
    sort = keys + [c for c in cols if c not in keys and c not in lists]
    out = out.sort_values(sort, kind="stable").reset_index(drop=True) if sort and len(out) else out
    csv_df = out.copy()  # arrays as ';'-joined text in the CSV, kept as lists in Parquet
    for c in csv_df.columns:
        if c in lists:
            csv_df[c] = csv_df[c].map(lambda v: ";".join(str(x) for x in v) if v is not None else "")
    buf = io.BytesIO()
    out.to_parquet(buf, index=False)
    return {f"{name}.csv": (csv_df.to_csv(index=False).encode("utf-8"), "text/csv"),
            f"{name}.parquet": (buf.getvalue(), "application/vnd.apache.parquet")}


COLUMNS = {"members": ROSTER_COLUMNS, "risk": RISK_COLUMNS, "populations": POPULATION_COLUMNS,
           "care_gaps": GAP_COLUMNS}
MEDIA = {".csv": "text/csv", ".parquet": "application/vnd.apache.parquet", ".html": "text/html"}


def build(spark: SparkSession, *, recipient: str, period: str, run_id: str, rows: EcmRows) -> Package:
    """The package: member tables (as permitted), the aggregate metrics, statements and dashboard."""
    import pandas as pd

    from jobs.ecm.ecm_package import write_package

    pkg = Package(recipient, FEED, period, run_id)
    for name in TABLES:  # every table, empty ones included, so a package always has the same files
        pdf = rows.tables.get(name)
        if pdf is None:
            pdf = pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS[name]})
        for fname, (data, media) in _files(name, pdf, COLUMNS[name]).items():
            pkg.add(fname, data, media)
    metric_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="phmx-ecm-") as tmp:
        try:
            write_package(spark, recipient, Path(tmp))
        except ConfigError:
            log.info("ecm package %s: no provider-month rows yet (member tables only)", recipient)
        for p in sorted(Path(tmp).iterdir()):
            if p.name != "manifest.json":
                pkg.add(p.name, p.read_bytes(), MEDIA.get(p.suffix, "application/octet-stream"))
        if (Path(tmp) / "provider_month.parquet").exists():
            metric_rows = pd.read_parquet(Path(tmp) / "provider_month.parquet").to_dict("records")
    resources = fhir_resources(recipient, rows, metric_rows)
    for rtype, items in resources.items():
        pkg.add(f"{rtype}.ndjson", ecm_fhir.ndjson(items), "application/fhir+ndjson")
    if any(ecm_fhir.part2(list(r["security_labels"] if r["security_labels"] is not None else [])) for name in ("risk", "populations", "care_gaps")
           for r in _records(rows.tables.get(name))):
        pkg.add("part2_notice.txt", PART2_NOTICE, "text/plain; charset=utf-8")
    counts = {name: int(len(pdf)) for name, pdf in rows.tables.items()}
    pkg.meta = {"content": {"kind": "ecm", "purpose": PURPOSE, "as_of": rows.as_of.isoformat() if rows.as_of else None,
                            "attributed_members": rows.roster, "rows": counts,
                            "resources": {k: len(v) for k, v in resources.items()}}}
    return pkg


def _records(pdf: Any) -> list[dict[str, Any]]:
    return [] if pdf is None or not len(pdf) else list(pdf.to_dict("records"))


def fhir_resources(recipient: str, rows: EcmRows, metric_rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """RiskAssessment per permitted risk row, Flag per permitted population of focus, MeasureReport
    per provider NPI, plan and month of the package's metrics (:mod:`jobs.publish.ecm_fhir`)."""
    from jobs.ecm import config as metrics_config
    from jobs.ecm.populations import population_displays

    displays = population_displays()
    titles = {m.id: m.title for m in metrics_config.load().metrics}
    return {"RiskAssessment": [ecm_fhir.risk_assessment(r, recipient) for r in _records(rows.tables.get("risk"))],
            "Flag": [ecm_fhir.flag(r, recipient, displays) for r in _records(rows.tables.get("populations"))],
            "MeasureReport": ecm_fhir.measure_reports(metric_rows, recipient, titles)}
