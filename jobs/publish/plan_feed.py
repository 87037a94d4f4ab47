"""A plan's care-team feed: record-level FHIR Bulk Data NDJSON of its attributed members.

Steps (engine passes per plan; the driver only streams finished NDJSON lines):

1. **Attribution**: members with enrollment from this plan (``silver.coverage`` rows whose
   ``source`` is the plan) overlapping the period.
2. **Rows**: the member's own enrollment record and coverage from the plan; encounters (any plan's
   claims), county behavioral health services, dental services, immunizations (CAIR2 rows with
   ``protection_indicator = Y`` never leave at record level) and open care gaps
   (``gold.measure_event`` measurement-year rows: in the denominator, not in the numerator, not
   excluded; for a month or a year, only its own measurement year's). For a month (or a year):
   the records dated in it or received in it (a late claim, a registry's history), care gaps
   anchored in it, and every record of a member new to the plan
   in it (attributed now, not in the month before) or whose records this run's identity stage
   merged or split, so a plan run month by month receives what a
   package for ``all`` holds of its members while they are its members (docs/scaling.md section 9).
3. **Consent**: ``consent.enforce.permitted_rows`` for purpose TREAT to this plan: joins only;
   denied classes inside an otherwise permitted record are redacted (an SUD diagnosis dropped from
   a plan encounter), records of a program whose class is denied are withheld. The permitted
   rows are materialised in a per-plan work table.
4. **Resources**: built on the engine as JSON (:mod:`jobs.publish.fhir_sql`), ids as keyed
   pseudonyms for the plan (HMAC on the engine), sorted by id, streamed per resource type into
   the package's NDJSON files (:mod:`jobs.publish.ndjson_stream`: structural checks on every
   resource, fhir.resources validation on a deterministic sample), so memory does not grow with
   the plan's size.

The Patient carries no direct identifier: no name, no CIN (``silver.person``'s direct identifiers
are encrypted at rest and only the identity stage decrypts them). It is identified by the plan's
own member id (``source_person_id`` under the plan's identifier system) plus gender, birth date
and postal code: the plan already holds the member's demographics under that id, so sending them
again would exceed the minimum necessary (45 CFR 164.502(b); for treatment disclosures the hub
applies it as policy).

The tests build the same resources row by row in Python (tests/publish/fhir_oracle.py) and check
that the engine's equal them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobs.publish import consent_gate, fhir_sql, ndjson_stream, package
from jobs.publish.lhj_cube import Scope
from jobs.publish.package import HashingWriter, Package
from phmx import lakehouse
from phmx.log import get_logger
from phmx.period import PeriodKind
from phmx.recipients import sources_of
from phmx.tables import (
    BH_SERVICE,
    COVERAGE,
    DENTAL_SERVICE,
    ECM_POPULATION_FLAG,
    ENCOUNTER,
    IDENTITY_EVENTS,
    IMMUNIZATION,
    IMMUNIZATION_GIVEN,
    MEASURE_EVENT,
    MEMBER_RISK,
    MEMBER_XWALK,
    PERSON,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = get_logger(__name__)

FEED = "plan_bulk_fhir"
PURPOSE = "TREAT"
ROW_DDL = ("kind string, source string, record_id string, member_id string, d1 date, d2 date, code string,"
           " code2 string, code3 string, text1 string, text2 string, codes array<string>,"
           " diagnosis_codes array<string>, security_labels array<string>")
EVENT_KINDS = ("encounter", "bh", "dental", "immunization", "gap")


@dataclass(frozen=True)
class PlanRows:
    """The permitted rows (a frame over the per-plan work table, ROW_DDL), the members-by-class
    frame for the ledger, and how many attributed members have their Patient row."""

    frame: DataFrame
    members: DataFrame
    attributed: int

    def records(self) -> list[dict[str, Any]]:
        """The rows as Python dicts (small feeds and tests only: this collects them all)."""
        return self.frame.toArrow().to_pylist()


def _shape(df: DataFrame, **cols: Column | str | None) -> DataFrame:
    from pyspark.sql import functions as F

    out = []
    for part in ROW_DDL.split(","):
        name, ddl = part.split(None, 1) if part.strip() else ("", "")
        name = name.strip()
        ddl = ddl.strip().replace(";", ",")
        v = cols.get(name)
        c = F.lit(None) if v is None else (F.col(v) if isinstance(v, str) else v)
        out.append(c.cast(ddl).alias(name))
    return df.select(*out)


def _split_ddl() -> list[tuple[str, str]]:
    return [tuple(p.strip().split(None, 1)) for p in ROW_DDL.split(",")]  # type: ignore[misc]


def attributed_members(spark: SparkSession, recipient: str, scope: Scope) -> DataFrame:
    """(member_id) with enrollment from ``recipient`` overlapping the period."""

    cov = lakehouse.read(spark, COVERAGE).where(sources_of(recipient))
    pred = _overlap(scope)
    if pred is not None:
        cov = cov.where(pred)
    xw = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    return cov.join(xw, ["source", "source_person_id"]).select("member_id").distinct()


def _overlap(scope: Scope) -> Column | None:
    from pyspark.sql import functions as F

    p = scope.period
    if p.kind not in (PeriodKind.MONTH, PeriodKind.YEAR) or p.start is None or p.end is None:
        return None
    start, end = F.lit(p.start), F.lit(p.end)
    return (F.col("start_date").isNull() | (F.col("start_date") <= end)) & \
        (F.col("end_date").isNull() | (F.col("end_date") >= start))


def _in_period(scope: Scope, dated: Column | str = "d1", received: Column | str | None = None) -> Column | None:
    """Rows of the period: dated in it (``dated``) or, given ``received``, received in it (the
    silver row's lineage ``period``: the month of the submission its latest version came in).

    Why both: a month's package is what the hub learnt that month. A record dated before the
    month (a registry's history of immunizations, a claim for last month's visit sent late, a
    corrected claim) reaches silver in the month it is received; a filter on its date alone would
    never send it month by month, while a package for ``all`` would. With both, every record of
    a plan's members goes out in the month it arrives, and its latest version replaces the
    earlier one by resource id (docs/scaling.md, month by month).
    """
    from pyspark.sql import functions as F

    p = scope.period
    if p.kind not in (PeriodKind.MONTH, PeriodKind.YEAR):
        return None
    fmt = "yyyy-MM" if p.kind is PeriodKind.MONTH else "yyyy"
    when = F.date_format(dated, fmt) == p.label
    if received is not None:
        got = F.coalesce(F.col(received) if isinstance(received, str) else received, F.lit(""))
        when = when | (got == p.label if p.kind is PeriodKind.MONTH else got.startswith(p.label + "-"))
    return when


def _gap_year(scope: Scope) -> str | None:
    """The measurement year whose care gaps a package carries: its month's or year's own year
    (None for ``all`` and a rolling period: every year)."""
    p = scope.period
    return f"{p.year:04d}" if p.kind in (PeriodKind.MONTH, PeriodKind.YEAR) else None


def _previous(scope: Scope) -> Scope | None:
    """The period just before a month or a year (None for any other kind)."""
    from datetime import timedelta

    from phmx.period import Period

    p = scope.period
    if p.start is None or p.kind not in (PeriodKind.MONTH, PeriodKind.YEAR):
        return None
    before = p.start - timedelta(days=1)
    return Scope(Period.month_of(before) if p.kind is PeriodKind.MONTH else Period(PeriodKind.YEAR, before.year))


def newly_attributed(spark: SparkSession, recipient: str, scope: Scope, run_id: str | None = None) -> DataFrame | None:
    """(member_id) of the plan's members in the period whose history the plan has not had yet:
    attributed in the period but not in the one before (new to the plan), or whose records this
    run's identity stage merged or split (``gold.identity_events`` of ``run_id``: a registry's
    person linked to the plan's member this month brings records the plan never got).
    None for ``all`` (everything is sent)."""
    from pyspark.sql import functions as F

    prev = _previous(scope)
    if prev is None:
        return None
    now = attributed_members(spark, recipient, scope)
    new = now.join(attributed_members(spark, recipient, prev), "member_id", "left_anti")
    if run_id and lakehouse.exists(IDENTITY_EVENTS):
        ev = lakehouse.read(spark, IDENTITY_EVENTS).where(
            (F.col("run_id") == run_id) & F.col("event_type").isin("merge", "split"))
        changed = ev.select("member_id").unionByName(ev.select(F.col("other_member_id").alias("member_id")))
        new = new.unionByName(now.join(changed.where(F.col("member_id").isNotNull()).distinct(), "member_id"))
    return new.distinct()


def _records_of_period(df: DataFrame, scope: Scope, dated: Column | str, new: DataFrame | None,
                       received: str | None = "period") -> DataFrame:
    """``df`` (rows with a ``member_id``) kept to the records dated or received in the period, and
    every record of a member new to the plan in the period (``new``)."""
    from pyspark.sql import functions as F

    when = _in_period(scope, dated, received)
    if when is None:
        return df
    if new is None:
        return df.where(when)
    flagged = df.join(new.select("member_id", F.lit(True).alias("_new_member")), "member_id", "left")
    return flagged.where(when | F.col("_new_member").isNotNull()).drop("_new_member")


def candidate_rows(spark: SparkSession, recipient: str, scope: Scope, run_id: str | None = None) -> DataFrame:
    """Every row that could go to the plan (before consent), in one frame (ROW_DDL); ``run_id``:
    the run whose identity changes count as new history (:func:`newly_attributed`)."""
    from pyspark.sql import functions as F

    xw = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    labels = F.coalesce("security_labels", F.array().cast("array<string>"))
    enc = lakehouse.read(spark, ENCOUNTER).join(xw, ["source", "source_person_id"])
    bh = lakehouse.read(spark, BH_SERVICE).join(xw, ["source", "source_person_id"])
    den = lakehouse.read(spark, DENTAL_SERVICE).join(xw, ["source", "source_person_id"])
    imm = lakehouse.read(spark, IMMUNIZATION).where(IMMUNIZATION_GIVEN).where(
        (F.upper(F.coalesce("protection_indicator", F.lit("N"))) != "Y") & F.col("admin_date").isNotNull()) \
        .join(xw, ["source", "source_person_id"])
    new = newly_attributed(spark, recipient, scope, run_id)
    enc = _records_of_period(enc, scope, F.coalesce("admit_date", "service_date"), new)
    bh = _records_of_period(bh, scope, "service_date", new)
    den = _records_of_period(den, scope, "service_date", new)
    imm = _records_of_period(imm, scope, "admin_date", new)
    events = [
        _shape(enc, kind=F.lit("encounter"), source="source", record_id="encounter_id", member_id="member_id",
               d1=F.coalesce("admit_date", "service_date"), d2="discharge_date", code="setting",
               code2="place_of_service", codes="procedure_codes", diagnosis_codes="diagnosis_codes",
               security_labels=labels),
        _shape(bh, kind=F.lit("bh"), source="source", record_id="service_id", member_id="member_id",
               d1="service_date", d2="end_date", code="program", code2="mode_of_service", code3="service_function",
               diagnosis_codes="diagnosis_codes", security_labels=labels),
        _shape(den, kind=F.lit("dental"), source="source", record_id="service_id", member_id="member_id",
               d1="service_date", code="cdt_code", code2="tooth", security_labels=labels),
        _shape(imm, kind=F.lit("immunization"), source="source", record_id="immunization_id", member_id="member_id",
               d1="admin_date", code="cvx", code2="mvx", code3="lot", security_labels=labels),
    ]
    me_table = MEASURE_EVENT
    if lakehouse.exists(me_table):
        me = lakehouse.read(spark, me_table).where(
            F.col("period").rlike(r"^[0-9]{4}$") & F.coalesce(F.col("in_denominator"), F.lit(False)) & ~F.coalesce(F.col("in_numerator"), F.lit(False))
            & F.col("exclusion_reason").isNull())
        # A care gap is the hub's own finding, not a received record: by its anchor date, and only
        # of the package's measurement year (a month's or a year's own year; every year for all):
        # a closed year's open gap can no longer be closed by care given now, so it is not
        # actionable for the care team (docs/measures.md, "Care gaps in a plan's package").
        year = _gap_year(scope)
        if year is not None:
            me = me.where(F.col("period") == year)
        me = _records_of_period(me, scope, "anchor_date", new, received=None)
        events.append(_shape(me, kind=F.lit("gap"), source=F.lit("hub"),
                             record_id=F.concat_ws("|", "measure_id", "period", "unit_id"), member_id="member_id",
                             d1="anchor_date", code="measure_id", security_labels=labels))
    ev = events[0]
    for e in events[1:]:
        ev = ev.unionByName(e)
    # Only non-identifying demographics: silver.person's direct identifiers are never read here.
    person = (lakehouse.read(spark, PERSON).where(sources_of(recipient))
              .select("source", "source_person_id", "birth_date", "sex", "zip")
              .join(xw, ["source", "source_person_id"]))
    # One Patient per member: a plan can hold a member under several ids (its enrollment's member id and
    # a FHIR Patient's resource id, say), and two Patients with one id would be a broken bundle whose
    # line order changes from run to run. The record the plan enrolled the member under comes first.
    from pyspark.sql import Window

    enrolled = (lakehouse.read(spark, COVERAGE).where(sources_of(recipient))
                .select("source", "source_person_id").distinct().withColumn("_enrolled", F.lit(0)))
    first = Window.partitionBy("member_id").orderBy(F.coalesce(F.col("_enrolled"), F.lit(1)), "source",
                                                     "source_person_id")
    person = (person.join(enrolled, ["source", "source_person_id"], "left")
              .withColumn("_n", F.row_number().over(first)).where(F.col("_n") == 1).drop("_n", "_enrolled"))
    own = [
        _shape(person, kind=F.lit("patient"), source="source", record_id="source_person_id", member_id="member_id",
               d1="birth_date", code="sex", code3="zip", security_labels=F.array().cast("array<string>")),
    ]
    cov = lakehouse.read(spark, COVERAGE).where(sources_of(recipient))
    ov = _overlap(scope)
    if ov is not None:
        cov = cov.where(ov)
    own.append(_shape(cov.join(xw, ["source", "source_person_id"]), kind=F.lit("coverage"), source="source",
                      record_id=F.concat_ws("|", "source_person_id", "plan_id", F.col("start_date").cast("string")),
                      member_id="member_id",
                      d1="start_date", d2="end_date", code="plan_id", code2="aid_code", text1="source_person_id",
                      security_labels=F.array().cast("array<string>")))
    own += _risk_rows(spark, scope)
    rows = ev
    for o in own:
        rows = rows.unionByName(o)
    return rows.join(attributed_members(spark, recipient, scope), "member_id").select(
        *[n for n, _ in _split_ddl()])


def _risk_rows(spark: SparkSession, scope: Scope) -> list[DataFrame]:
    """Each member's risk tier for the latest rolling 12 months up to the scope's end (gold.member_risk
    ``R12-YYYY-MM``; kind ``risk``: tier, as_of, period, points, points per component) and the
    populations of focus the hub's data show for that period (gold.ecm_population_flag; kind
    ``pof``), each with its evidence's labels, so consent decides them like any row."""
    from pyspark.sql import functions as F

    if not lakehouse.exists(MEMBER_RISK):
        return []
    risk = lakehouse.read(spark, MEMBER_RISK).where(F.col("period").startswith("R12-"))
    end = scope.period.end
    if end is not None:
        risk = risk.where(F.col("period") <= f"R12-{end.year:04d}-{end.month:02d}")
    latest = risk.agg(F.max("period")).collect()[0][0]
    if latest is None:
        return []
    labels = F.coalesce("security_labels", F.array().cast("array<string>"))
    parts = F.array(*[F.concat(F.lit(f"{c.replace('_points', '')} points: "), F.col(c).cast("string"))
                      for c in ("utilization_points", "chronic_points", "behavioral_points", "social_points")])
    r = risk.where(F.col("period") == latest)
    out = [_shape(r, kind=F.lit("risk"), source=F.lit("hub"), record_id=F.concat_ws("|", "member_id", "period"),
                  member_id="member_id", d1="as_of",
                  code="risk_tier", text1="period", text2=F.col("points").cast("string"),
                  codes=F.filter(parts, lambda x: x.isNotNull()), security_labels=labels)]
    if lakehouse.exists(ECM_POPULATION_FLAG):
        f = lakehouse.read(spark, ECM_POPULATION_FLAG).where(F.col("period") == latest)
        out.append(_shape(f, kind=F.lit("pof"), source=F.lit("hub"),
                          record_id=F.concat_ws("|", "member_id", "period", "population"), member_id="member_id",
                          d1="as_of",
                          code="population", text1="period", text2="evidence", security_labels=labels))
    return out


def permitted(spark: SparkSession, recipient: str, scope: Scope, at: datetime, run_id: str | None = None) -> PlanRows:
    """The rows the plan may receive (materialised by the consent gate; nothing is collected)."""
    from pyspark.sql import functions as F

    rows = candidate_rows(spark, recipient, scope, run_id)
    ok, members = consent_gate.plan_permitted(spark, rows, recipient=recipient, at=at)
    attributed = ok.where(F.col("kind") == "patient").select("member_id").distinct().count()
    return PlanRows(ok, members, attributed)


def with_patient(rows: DataFrame) -> DataFrame:
    """Rows of members that have their Patient row (no resource without its Patient)."""
    from pyspark.sql import functions as F

    patients = rows.where(F.col("kind") == "patient").select("member_id").distinct()
    return rows.join(patients, "member_id", "left_semi")


def build(spark: SparkSession, *, recipient: str, period: str, run_id: str, rows: PlanRows, generated_at: datetime,
          root: str) -> tuple[Package, dict[str, int]]:
    """The plan's package: one NDJSON file per resource type streamed from the engine into a spool
    folder (``root`` is the publish root: the spool sits beside its staging area), the Part 2
    notice when any resource is Part 2 or SUD labelled, and the Bulk Data manifest facts."""
    from pyspark.sql import functions as F

    from privacy.keys import get_provider

    keyed = with_patient(rows.frame)
    measures = sorted(r[0] for r in keyed.where(F.col("kind") == "gap").select("code").distinct().collect() if r[0])
    frames = fhir_sql.resource_frames(keyed, recipient, get_provider(), measures)
    pkg = Package(recipient, FEED, period, run_id)
    pkg.spool = package.spool_dir(root, recipient)
    mode = ndjson_stream.validate_mode()
    output, counts, part2, checks = [], {}, 0, {}
    try:
        for t in fhir_sql.RESOURCE_TYPES:
            started = time.perf_counter()
            writer = HashingWriter(pkg.spool / f"{t}.ndjson")
            try:
                stats = ndjson_stream.write_ndjson(frames[t]().orderBy("id"), writer, t, mode=mode)
            except BaseException:
                writer.abort()
                raise
            pkg.add_spooled(f"{t}.ndjson", writer.close(), "application/fhir+ndjson")
            counts[t] = stats.count
            part2 += stats.part2
            checks[t] = {"resources": stats.count, "fhir_validated": stats.validated}
            output.append({"type": t, "url": f"{t}.ndjson", "count": stats.count})
            log.info("%s: %s %d resources in %.1f s (%d validated with fhir.resources in %.1f s)", recipient, t,
                     stats.count, time.perf_counter() - started, stats.validated, stats.validate_seconds)
    except BaseException:
        pkg.close()
        raise
    if part2:
        pkg.add("part2_notice.txt", fhir_sql.PART2_NOTICE, "text/plain; charset=utf-8")
    pkg.meta = {
        "purpose": PURPOSE, "legal_basis": "Treatment (45 CFR 164.506(c); Cal. Civil Code 56.10(c)); Part 2 and "
        "W&I 5328 records only as the member's consent or the policy permits (consent.enforce)",
        "fhir_bulk": {"transactionTime": generated_at.astimezone(UTC).isoformat(timespec="seconds"),
                      "requiresAccessToken": False, "output": output, "error": [], "fhirVersion": "4.0.1"},
        "content": {"attributed_members": rows.attributed, "resources": counts},
        "identifiers": "ids are HMAC-SHA256 pseudonyms keyed per recipient; the only source ids that appear "
                       "are the plan's own member ids and claim ids; no names and no Medi-Cal CIN",
        "validation": {"structural_checks": "every resource", "fhir_resources_R4B": mode,
                       "sample": {"first": ndjson_stream.FIRST, "every": ndjson_stream.EVERY} if mode == "sample"
                       else None, "by_type": checks},
        "part2_notice": "part2_notice.txt" if part2 else None,
    }
    return pkg, counts
