"""A plan's care-team feed: record-level FHIR Bulk Data NDJSON of its attributed members.

Steps (one engine pass per plan, then Python on the permitted rows):

1. **Attribution**: members with enrollment from this plan (``silver.coverage`` rows whose
   ``source`` is the plan) overlapping the period.
2. **Rows**: the member's own enrollment record and coverage from the plan; encounters (any plan's
   claims), county behavioral health services, dental services, immunizations (CAIR2 rows with
   ``protection_indicator = Y`` never leave at record level) and open care gaps
   (``gold.measure_event`` measurement-year rows: in the denominator, not in the numerator, not
   excluded), in the period.
3. **Consent**: ``consent.enforce.permitted_rows`` for purpose TREAT to this plan: joins only;
   denied classes inside an otherwise permitted record are redacted (an SUD diagnosis dropped from
   a plan encounter), records of a program whose class is denied are withheld.
4. **Resources**: pseudonymous ids (HMAC per recipient); identifiers only where the plan has the
   right (its own member id and claim ids, the CIN); every resource validated (R4B).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobs.publish import consent_gate, fhir_bulk, tables
from jobs.publish.cells import Scope
from jobs.publish.package import Package
from phmx import lakehouse
from phmx.log import get_logger
from phmx.tables import BH_SERVICE, COVERAGE, DENTAL_SERVICE, ENCOUNTER, IMMUNIZATION, MEMBER_XWALK, PERSON

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
    """The permitted rows (pandas records) and the members-by-class frame for the ledger."""

    rows: list[dict[str, Any]]
    members: DataFrame
    attributed: int


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
    from pyspark.sql import functions as F

    cov = lakehouse.read(spark, COVERAGE).where(F.col("source") == recipient)
    pred = _overlap(scope)
    if pred is not None:
        cov = cov.where(pred)
    xw = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    return cov.join(xw, ["source", "source_person_id"]).select("member_id").distinct()


def _overlap(scope: Scope) -> Column | None:
    from pyspark.sql import functions as F

    p = scope.period
    if len(p) == 7:
        start = F.to_date(F.lit(f"{p}-01"))
        end = F.last_day(start)
    elif len(p) == 4 and p.isdigit():
        start, end = F.to_date(F.lit(f"{p}-01-01")), F.to_date(F.lit(f"{p}-12-31"))
    else:
        return None
    return (F.col("start_date").isNull() | (F.col("start_date") <= end)) & \
        (F.col("end_date").isNull() | (F.col("end_date") >= start))


def _in_period(scope: Scope) -> Column | None:
    from pyspark.sql import functions as F

    p = scope.period
    if len(p) == 7:
        return F.date_format("d1", "yyyy-MM") == p
    if len(p) == 4 and p.isdigit():
        return F.date_format("d1", "yyyy") == p
    return None


def candidate_rows(spark: SparkSession, recipient: str, scope: Scope) -> DataFrame:
    """Every row that could go to the plan (before consent), in one frame (ROW_DDL)."""
    from pyspark.sql import functions as F

    xw = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    labels = F.coalesce("security_labels", F.array().cast("array<string>"))
    enc = lakehouse.read(spark, ENCOUNTER).join(xw, ["source", "source_person_id"])
    bh = lakehouse.read(spark, BH_SERVICE).join(xw, ["source", "source_person_id"])
    den = lakehouse.read(spark, DENTAL_SERVICE).join(xw, ["source", "source_person_id"])
    imm = lakehouse.read(spark, IMMUNIZATION).where(
        (F.upper(F.coalesce("protection_indicator", F.lit("N"))) != "Y") & F.col("admin_date").isNotNull()) \
        .join(xw, ["source", "source_person_id"])
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
    me_table = tables.measure_event_table()
    if lakehouse.exists(me_table):
        me = lakehouse.read(spark, me_table).where(
            F.col("period").rlike(r"^[0-9]{4}$") & F.coalesce(F.col("in_denominator"), F.lit(False)) & ~F.coalesce(F.col("in_numerator"), F.lit(False))
            & F.col("exclusion_reason").isNull())
        events.append(_shape(me, kind=F.lit("gap"), source=F.lit("hub"),
                             record_id=F.concat_ws("|", "measure_id", "period", "unit_id"), member_id="member_id",
                             d1="anchor_date", code="measure_id", security_labels=labels))
    ev = events[0]
    for e in events[1:]:
        ev = ev.unionByName(e)
    when = _in_period(scope)
    if when is not None:
        ev = ev.where(when)
    person = lakehouse.read(spark, PERSON).where(F.col("source") == recipient).join(xw, ["source", "source_person_id"])
    own = [
        _shape(person, kind=F.lit("patient"), source="source", record_id="source_person_id", member_id="member_id",
               d1="birth_date", code="sex", code2="cin", code3="zip", text1="given_name", text2="family_name",
               security_labels=F.array().cast("array<string>")),
    ]
    cov = lakehouse.read(spark, COVERAGE).where(F.col("source") == recipient)
    ov = _overlap(scope)
    if ov is not None:
        cov = cov.where(ov)
    own.append(_shape(cov.join(xw, ["source", "source_person_id"]), kind=F.lit("coverage"), source="source",
                      record_id=F.concat_ws("|", "plan_id", F.col("start_date").cast("string")), member_id="member_id",
                      d1="start_date", d2="end_date", code="plan_id", code2="aid_code", text1="source_person_id",
                      security_labels=F.array().cast("array<string>")))
    rows = ev.unionByName(own[0]).unionByName(own[1])
    return rows.join(attributed_members(spark, recipient, scope), "member_id").select(
        *[n for n, _ in _split_ddl()])


def permitted(spark: SparkSession, recipient: str, scope: Scope, at: datetime) -> PlanRows:
    rows = candidate_rows(spark, recipient, scope)
    ok, members = consent_gate.plan_permitted(spark, rows, recipient=recipient, at=at)
    tbl = ok.toArrow()
    recs = tbl.to_pylist()
    attributed = len({r["member_id"] for r in recs if r["kind"] == "patient"})
    return PlanRows(recs, members, attributed)


def resources(rows: list[dict[str, Any]], recipient: str) -> dict[str, list[dict[str, Any]]]:
    """FHIR resources by type, with pseudonymous ids for this recipient."""
    from privacy.keys import get_provider
    from privacy.pseudonyms import pseudonym_values

    provider = get_provider()
    members = sorted({r["member_id"] for r in rows if r["kind"] == "patient"})
    pids = dict(zip(members, pseudonym_values(members, recipient, provider), strict=True))
    rows = [r for r in rows if r["member_id"] in pids]  # no resource without its Patient
    keys = [f"{r['kind']}|{r['source']}|{r['record_id']}" for r in rows]
    rids = dict(zip(keys, pseudonym_values(keys, recipient, provider), strict=True))
    dx_keys = sorted({(r["member_id"], str(c)) for r in rows if r["kind"] in ("encounter", "bh")
                      for c in (r.get("diagnosis_codes") or []) if c})
    cond_ids = dict(zip(dx_keys, pseudonym_values([f"condition|{m}|{c}" for m, c in dx_keys], recipient, provider),
                        strict=True))
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in fhir_bulk.RESOURCE_TYPES}
    for r, k in zip(rows, keys, strict=True):
        pid, rid, kind = pids[r["member_id"]], rids[k], r["kind"]
        if kind == "patient":
            out["Patient"].append(fhir_bulk.patient(pid, r, recipient))
        elif kind == "coverage":
            out["Coverage"].append(fhir_bulk.coverage(rid, pid, r, recipient))
        elif kind in ("encounter", "bh", "dental"):
            out["Encounter"].append(fhir_bulk.encounter(rid, pid, r, recipient))
        elif kind == "immunization":
            out["Immunization"].append(fhir_bulk.immunization(rid, pid, r))
        elif kind == "gap":
            out["Flag"].append(fhir_bulk.flag(rid, pid, r))
    out["Condition"] = fhir_bulk.conditions(rows, pids, cond_ids)
    for t in out:
        out[t].sort(key=lambda res: res["id"])
    return out


def build(*, recipient: str, period: str, run_id: str, rows: PlanRows, generated_at: datetime) -> tuple[Package, dict[str, int]]:
    res = resources(rows.rows, recipient)
    for items in res.values():
        fhir_bulk.validate(items)
    pkg = Package(recipient, FEED, period, run_id)
    output = []
    for t in fhir_bulk.RESOURCE_TYPES:
        pkg.add(f"{t}.ndjson", fhir_bulk.ndjson(res[t]), "application/fhir+ndjson")
        output.append({"type": t, "url": f"{t}.ndjson", "count": len(res[t])})
    part2 = any(c.get("code") in ("42CFRPart2", "SUD") for items in res.values() for r in items
                for c in r.get("meta", {}).get("security", []))
    if part2:
        pkg.add("part2_notice.txt", fhir_bulk.PART2_NOTICE, "text/plain; charset=utf-8")
    counts = {t: len(v) for t, v in res.items()}
    pkg.meta = {
        "purpose": PURPOSE, "legal_basis": "Treatment (45 CFR 164.506(c); Cal. Civil Code 56.10(c)); Part 2 and "
        "W&I 5328 records only as the member's consent or the policy permits (consent.enforce)",
        "fhir_bulk": {"transactionTime": generated_at.astimezone(UTC).isoformat(timespec="seconds"),
                      "requiresAccessToken": False, "output": output, "error": [], "fhirVersion": "4.0.1"},
        "content": {"attributed_members": rows.attributed, "resources": counts},
        "identifiers": "ids are HMAC-SHA256 pseudonyms keyed per recipient; only the plan's own member and claim "
                       "ids and the Medi-Cal CIN appear as identifiers",
        "part2_notice": "part2_notice.txt" if part2 else None,
    }
    return pkg, counts
