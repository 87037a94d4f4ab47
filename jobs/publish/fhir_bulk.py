"""Record-level FHIR R4 resources (validated with fhir.resources R4B) for a plan's care teams.

Builds Patient, Coverage, Encounter, Immunization, Condition and Flag (open care gaps) from the
rows the consent engine permitted, as FHIR Bulk Data NDJSON (one file per resource type). Every
``id`` is a keyed pseudonym for the recipient (:mod:`privacy.pseudonyms`); the only source ids
that appear are the plan's own (its member id and claim ids). The Patient has no name and no
CIN (minimum necessary: the plan holds the member's demographics under its own member id).
Security labels travel as ``meta.security`` (v3-ActCode plus a v3-Confidentiality level).

These Python builders are the reference: the plan feed builds the same resources on the engine
(:mod:`jobs.publish.fhir_sql`) and the tests compare the two.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from jobs.publish.catalog import describe
from jobs.publish.fhir_measure import HUB, MEASURE_CS

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CVX = "http://hl7.org/fhir/sid/cvx"
CPT = "http://www.ama-assn.org/go/cpt"
CDT = "http://www.ada.org/cdt"
CIN_SYSTEM = f"{HUB}/sid/medi-cal-cin"
RESTRICTED_LABELS = {"SUD", "ETH", "ETHUD", "OPIOIDUD", "42CFRPart2", "PSY", "MH", "BH", "PSYTHPN", "HIV", "STD",
                     "SDV"}
ENCOUNTER_CLASS = {"ED": ("EMER", "emergency"), "IP": ("IMP", "inpatient encounter"),
                   "OP": ("AMB", "ambulatory"), "RX": ("AMB", "ambulatory")}
GENDER = {"M": "male", "F": "female", "U": "unknown", "X": "other"}
RESOURCE_TYPES = ("Patient", "Coverage", "Encounter", "Immunization", "Condition", "Flag")
PART2_NOTICE = (
    "Notice under 42 CFR 2.32. This record, which has been disclosed to you, is protected by federal "
    "confidentiality rules (42 CFR part 2). These rules prohibit you from using or disclosing this record, or "
    "testimony that describes the information contained in it, in any civil, criminal, administrative or "
    "legislative proceedings by any federal, state or local authority against the patient, unless authorized "
    "by the patient's consent or a court order under 42 CFR 2.64 or 2.65. Any other use or disclosure of this "
    "record is permitted only as 42 CFR part 2 allows (a recipient under a treatment, payment and health care "
    "operations consent may redisclose as the HIPAA Privacy Rule permits, 42 CFR 2.33(b)). A general "
    "authorization for the release of medical or other information is NOT sufficient for this purpose.\n"
)


def _d(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    s = str(v)
    return s[:10] if s and s != "NaT" else None


def security(labels: list[str] | None) -> dict[str, Any]:
    labs = sorted(set(labels or []))
    coding = [{"system": ACT_CODE, "code": lab} for lab in labs]
    level = "R" if RESTRICTED_LABELS.intersection(labs) else "N"
    coding.append({"system": CONFIDENTIALITY, "code": level})
    return {"security": coding}


def _ref(pid: str) -> dict[str, str]:
    return {"reference": f"Patient/{pid}"}


def patient(pid: str, row: dict[str, Any], recipient: str) -> dict[str, Any]:
    """Pseudonym, the plan's own member id, gender, birth date, postal code; no name, no CIN."""
    ident = [{"system": f"{HUB}/sid/pseudonym/{recipient}", "value": pid}]
    if row.get("record_id"):
        ident.append({"system": f"{HUB}/sid/{recipient}/member-id", "value": str(row["record_id"])})
    res: dict[str, Any] = {"resourceType": "Patient", "id": pid, "meta": security(row.get("security_labels")),
                           "identifier": ident}
    if row.get("code"):
        res["gender"] = GENDER.get(str(row["code"]).upper(), "unknown")
    if _d(row.get("d1")):
        res["birthDate"] = _d(row.get("d1"))
    if row.get("code3"):
        res["address"] = [{"postalCode": str(row["code3"]), "state": "CA"}]
    return res


def coverage(rid: str, pid: str, row: dict[str, Any], recipient: str) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Coverage", "id": rid, "meta": security(row.get("security_labels")), "status": "active",
        "beneficiary": _ref(pid), "payor": [{"display": recipient}],
        "class": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                        "code": "plan"}]}, "value": str(row.get("code") or recipient)}],
    }
    if row.get("text1"):
        res["subscriberId"] = str(row["text1"])
    period = {k: v for k, v in (("start", _d(row.get("d1"))), ("end", _d(row.get("d2")))) if v}
    if period:
        res["period"] = period
    return res


def encounter(rid: str, pid: str, row: dict[str, Any], recipient: str) -> dict[str, Any]:
    kind = row["kind"]
    if kind == "encounter":
        cls = ENCOUNTER_CLASS.get(str(row.get("code") or "OP"), ("AMB", "ambulatory"))
        types = [{"coding": [{"system": f"{HUB}/CodeSystem/encounter-setting", "code": str(row.get("code") or "OP")}]}]
        types += [{"coding": [{"system": CPT, "code": str(c)}]} for c in (row.get("codes") or [])]
    elif kind == "bh":
        cls = ("AMB", "ambulatory")
        types = [{"coding": [{"system": f"{HUB}/CodeSystem/bh-program", "code": str(row.get("code") or "MH")}]}]
    else:  # dental
        cls = ("AMB", "ambulatory")
        types = [{"coding": [{"system": CDT, "code": str(row.get("code"))}]}] if row.get("code") else []
    res: dict[str, Any] = {"resourceType": "Encounter", "id": rid, "meta": security(row.get("security_labels")),
                           "status": "finished", "class": {"system": ACT_CODE, "code": cls[0], "display": cls[1]},
                           "subject": _ref(pid)}
    if types:
        res["type"] = types
    if kind == "encounter" and row.get("source") == recipient and row.get("record_id"):
        res["identifier"] = [{"system": f"{HUB}/sid/{recipient}/claim", "value": str(row["record_id"])}]
    period = {k: v for k, v in (("start", _d(row.get("d1"))), ("end", _d(row.get("d2")))) if v}
    if period:
        res["period"] = period
    dx = [c for c in (row.get("diagnosis_codes") or []) if c]
    if dx:
        res["reasonCode"] = [{"coding": [{"system": ICD10CM, "code": str(c)}]} for c in dx]
    return res


def immunization(rid: str, pid: str, row: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Immunization", "id": rid, "meta": security(row.get("security_labels")),
                           "status": "completed", "vaccineCode": {"coding": [{"system": CVX, "code": str(row.get("code"))}]},
                           "patient": _ref(pid), "occurrenceDateTime": _d(row.get("d1"))}
    if row.get("code3"):
        res["lotNumber"] = str(row["code3"])
    if row.get("code2"):
        res["manufacturer"] = {"display": f"MVX {row['code2']}"}
    return res


def flag(rid: str, pid: str, row: dict[str, Any]) -> dict[str, Any]:
    measure = str(row.get("code"))
    name, _ = describe(measure)
    res: dict[str, Any] = {
        "resourceType": "Flag", "id": rid, "meta": security(row.get("security_labels")), "status": "active",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "clinical"}]}],
        "code": {"coding": [{"system": MEASURE_CS, "code": measure, "display": name}], "text": f"Care gap: {name}"},
        "subject": _ref(pid),
    }
    if _d(row.get("d1")):
        res["period"] = {"start": _d(row.get("d1"))}
    return res


def conditions(rows: list[dict[str, Any]], pids: dict[str, str], cond_ids: dict[tuple[str, str], str]) -> list[dict[str, Any]]:
    """One Condition per (member, diagnosis code) from the permitted (already redacted) encounters."""
    from consent.labels import CODE_VALUESETS
    from consent.policy import load_valueset

    sets = [load_valueset(n) for n in CODE_VALUESETS]
    first: dict[tuple[str, str], str | None] = {}
    program: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows:
        if r["kind"] not in ("encounter", "bh"):
            continue
        for c in r.get("diagnosis_codes") or []:
            if not c:
                continue
            key = (r["member_id"], str(c))
            d = _d(r.get("d1"))
            if key not in first or (d and (first[key] is None or d < first[key])):  # type: ignore[operator]
                first[key] = d
            program[key].update(x for x in (r.get("security_labels") or []) if x in ("42CFRPart2", "PSY"))
    out = []
    for (member, code), when in sorted(first.items()):
        labels = {vs.label for vs in sets if vs.contains(code)} | program[(member, code)]
        res: dict[str, Any] = {
            "resourceType": "Condition", "id": cond_ids[(member, code)], "meta": security(sorted(labels)),
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                      "code": "encounter-diagnosis"}]}],
            "code": {"coding": [{"system": ICD10CM, "code": code}]}, "subject": _ref(pids[member]),
        }
        if when:
            res["recordedDate"] = when
        out.append(res)
    return out


def validate(resources: list[dict[str, Any]]) -> None:
    """Validate every resource with its fhir.resources R4B model (raises on the first invalid one)."""
    from fhir.resources.R4B import get_fhir_model_class

    models: dict[str, Any] = {}
    for r in resources:
        t = r["resourceType"]
        if t not in models:
            models[t] = get_fhir_model_class(t)
        models[t].model_validate(r)


def ndjson(resources: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in resources).encode("utf-8")
