"""The test oracle for the plan feed's FHIR resources: the same resources built in Python, row by row.

Production builds them on the engine (:mod:`jobs.publish.fhir_sql`); the tests build them here
from the same rows and compare the two documents, so a change to either that the other does not
share fails a test. What the resources hold (as production must build them):


Builds Patient, Coverage, Encounter, Immunization, Condition and Flag (open care gaps) from the
rows the consent engine permitted, as FHIR Bulk Data NDJSON (one file per resource type). Every
``id`` is a keyed pseudonym for the recipient (:mod:`privacy.pseudonyms`); the only source ids
that appear are the plan's own (its member id and claim ids). The Patient has no name and no
CIN (minimum necessary: the plan holds the member's demographics under its own member id).
Security labels travel as ``meta.security`` (v3-ActCode plus a v3-Confidentiality level).

"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from jobs.publish.catalog import describe
from jobs.publish.fhir_measure import HUB, MEASURE_CS
from jobs.publish.fhir_sql import (
    ACT_CODE,
    CDT,
    CONFIDENTIALITY,
    CPT,
    CVX,
    ENCOUNTER_CLASS,
    GENDER,
    ICD10CM,
    POPULATION_CS,
    RESOURCE_TYPES,
    RESTRICTED_LABELS,
    RISK_METHOD_CS,
    TIER_CS,
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
    from consent.disclosure_policy import load_valueset
    from consent.labels import CODE_VALUESETS

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


def risk_assessment(rid: str, pid: str, row: dict[str, Any]) -> dict[str, Any]:
    end = date.fromisoformat(str(_d(row.get("d1"))))
    start = date(end.year - 1 + (end.month == 12), end.month % 12 + 1, 1)  # the 12 whole months ending as_of
    res: dict[str, Any] = {
        "resourceType": "RiskAssessment", "id": rid, "meta": security(row.get("security_labels")), "status": "final",
        "method": {"coding": [{"system": RISK_METHOD_CS, "code": "phmx-points"}],
                   "text": f"rolling 12 months, period {row.get('text1')}"},
        "subject": _ref(pid), "occurrencePeriod": {"start": start.isoformat(), "end": end.isoformat()},
    }
    if row.get("codes"):
        res["basis"] = [{"display": c} for c in row["codes"]]
    res["prediction"] = [{"qualitativeRisk": {"coding": [{"system": TIER_CS, "code": row.get("code")}]}}]
    if row.get("text2") is not None:
        res["note"] = [{"text": f"total points {row.get('text2')}"}]
    return res


def population_flag(rid: str, pid: str, row: dict[str, Any]) -> dict[str, Any]:
    code = str(row.get("code"))
    return {"resourceType": "Flag", "id": rid, "meta": security(row.get("security_labels")), "status": "active",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category",
                                      "code": "admin"}]}],
            "code": {"coding": [{"system": POPULATION_CS, "code": code}], "text": f"ECM population of focus: {code}"},
            "subject": _ref(pid)}


def ndjson(resources: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in resources).encode("utf-8")


def resources(rows: list[dict[str, Any]], recipient: str) -> dict[str, list[dict[str, Any]]]:
    """FHIR resources by type, with pseudonymous ids for this recipient, from the plan feed's rows
    as Python dicts (what :func:`jobs.publish.plan_feed.build` streams from the engine)."""
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
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in RESOURCE_TYPES}
    for r, k in zip(rows, keys, strict=True):
        pid, rid, kind = pids[r["member_id"]], rids[k], r["kind"]
        if kind == "patient":
            out["Patient"].append(patient(pid, r, recipient))
        elif kind == "coverage":
            out["Coverage"].append(coverage(rid, pid, r, recipient))
        elif kind in ("encounter", "bh", "dental"):
            out["Encounter"].append(encounter(rid, pid, r, recipient))
        elif kind == "immunization":
            out["Immunization"].append(immunization(rid, pid, r))
        elif kind == "gap":
            out["Flag"].append(flag(rid, pid, r))
        elif kind == "pof":
            out["Flag"].append(population_flag(rid, pid, r))
        elif kind == "risk":
            out["RiskAssessment"].append(risk_assessment(rid, pid, r))
    out["Condition"] = conditions(rows, pids, cond_ids)
    for t in out:
        out[t].sort(key=lambda res: res["id"])
    return out
