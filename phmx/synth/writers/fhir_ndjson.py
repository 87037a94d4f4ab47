"""Delimited feed rows as FHIR R4 NDJSON (bulk-data style: one resource type per file).

Five writers, one per FHIR intake feed:

* enrollment -> ``fhir_patient``: one Patient per member (identifiers: the plan's member id,
  the Medi-Cal CIN with type MA, the SSN; US Core race and ethnicity extensions; the county
  FIPS code in ``address.district``);
* enrollment -> ``fhir_coverage``: one Coverage per coverage span (class ``plan`` = plan id,
  class ``subplan`` = aid code, beneficiary ``Patient/<member id>``);
* claims -> ``fhir_encounter``: one Encounter per claim (class EMER/IMP/AMB from place of
  service and admission, diagnoses as reasonCode, the first CPT/HCPCS as type);
* immunizations -> ``fhir_immunization``: one Immunization per vaccination with the patient
  as a contained Patient (so each line carries what the CSV row carries);
* consent_forms -> ``fhir_consent``: one Consent per form version (scope patient-privacy,
  category LOINC 59284-0, a permit provision with period, recipients, purposes and labels).

Every resource validates against fhir.resources' R4B models; the intake specs
``mappings/feeds/fhir_*.yaml`` read these exact paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import orjson

from phmx.synth.writers import register_writer

CIN_SYSTEM = "urn:phmx:medi-cal-cin"
MEMBER_SYSTEM = "urn:phmx:member-id"
REGISTRY_SYSTEM = "urn:phmx:cair2-patient-id"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETHNICITY_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
OMB = "urn:oid:2.16.840.1.113883.6.238"
PROTECTION_URL = "urn:phmx:cair2-protection-indicator"
PUBLICITY_URL = "urn:phmx:cair2-publicity-code"
MAIDEN_URL = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"
GENDER = {"M": "male", "F": "female", "X": "other", "U": "unknown"}


def iso(value: str | None) -> str | None:
    """CCYY-MM-DD from CCYYMMDD or CCYY-MM-DD (None when empty)."""
    v = (value or "").strip()
    if not v:
        return None
    if len(v) == 8 and v.isdigit():
        return f"{v[:4]}-{v[4:6]}-{v[6:]}"
    return v


def _v(row: dict[str, str], key: str) -> str | None:
    return (row.get(key) or "").strip() or None


def _prune(obj: Any) -> Any:  # noqa: ANN401 - JSON
    """Drop empty values (FHIR forbids empty strings, lists and objects)."""
    if isinstance(obj, dict):
        pruned = {k: _prune(v) for k, v in obj.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
    if isinstance(obj, list):
        items = [_prune(v) for v in obj]
        return [v for v in items if v not in (None, "", [], {})]
    return obj


def _ident(system: str, value: str | None, type_code: str | None = None) -> dict[str, Any] | None:
    if not value:
        return None
    ident: dict[str, Any] = {"system": system, "value": value}
    if type_code:
        ident["type"] = {"coding": [{"system": V2_0203, "code": type_code}]}
    return ident


def _race_ext(url: str, code: str | None) -> dict[str, Any] | None:
    if not code:
        return None
    return {"url": url, "extension": [{"url": "ombCategory", "valueCoding": {"system": OMB, "code": code}},
                                      {"url": "text", "valueString": code}]}


def patient(row: dict[str, str], *, pid: str, id_system: str, id_key: str) -> dict[str, Any]:
    """A Patient from a row carrying demographics (enrollment or immunization rows)."""
    ssn = (_v(row, "ssn") or "").replace("-", "") or None
    return _prune({
        "resourceType": "Patient", "id": pid,
        "identifier": [_ident(id_system, _v(row, id_key)), _ident(CIN_SYSTEM, _v(row, "cin"), "MA"),
                       _ident("http://hl7.org/fhir/sid/us-ssn", ssn, "SS")],
        "extension": [_race_ext(RACE_URL, _v(row, "race")), _race_ext(ETHNICITY_URL, _v(row, "ethnicity")),
                      {"url": MAIDEN_URL, "valueString": _v(row, "mother_maiden_name")}
                      if _v(row, "mother_maiden_name") else None],
        "name": [{"use": "official", "family": _v(row, "family_name"),
                  "given": [g for g in (_v(row, "given_name"), _v(row, "middle_name")) if g]}],
        "gender": GENDER.get(_v(row, "sex") or ""),
        "birthDate": iso(row.get("birth_date")),
        "address": [{"line": [_v(row, "address_line")], "city": _v(row, "city"), "state": _v(row, "state"),
                     "postalCode": _v(row, "zip"), "district": _v(row, "county_fips")}],
        "telecom": [{"system": "phone", "value": _v(row, "phone")} if _v(row, "phone") else None,
                    {"system": "email", "value": _v(row, "email")} if _v(row, "email") else None],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": _v(row, "language")}]}}]
        if _v(row, "language") else [],
    })


def patients(rows: Iterable[dict[str, str]]) -> Iterator[dict[str, Any]]:
    seen: set[str] = set()
    for row in rows:
        mid = _v(row, "member_local_id")
        if not mid or mid in seen:
            continue
        seen.add(mid)
        yield patient(row, pid=mid, id_system=MEMBER_SYSTEM, id_key="member_local_id")


def coverages(rows: Iterable[dict[str, str]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        mid, plan, start = _v(row, "member_local_id"), _v(row, "plan_id"), iso(row.get("coverage_start"))
        yield _prune({
            "resourceType": "Coverage", "id": f"{mid}-{plan}-{(start or '').replace('-', '')}",
            "status": "active", "subscriberId": mid,
            "beneficiary": {"reference": f"Patient/{mid}"},
            "payor": [{"identifier": {"system": "urn:phmx:plan-id", "value": plan}}],
            "class": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                            "code": "plan"}]}, "value": plan},
                      {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                            "code": "subplan"}]}, "value": _v(row, "aid_code")}
                      if _v(row, "aid_code") else None],
            "period": {"start": start, "end": iso(row.get("coverage_end"))},
        })


def _encounter_class(lines: list[dict[str, str]]) -> str:
    if any(_v(r, "place_of_service") == "23" or (_v(r, "revenue_code") or "").startswith("045") for r in lines):
        return "EMER"
    if any(_v(r, "claim_type") == "I" and _v(r, "admit_date") for r in lines):
        return "IMP"
    return "AMB"


def encounters(rows: Iterable[dict[str, str]]) -> Iterator[dict[str, Any]]:
    """One Encounter per claim (its lines follow each other in the claims file)."""
    batch: list[dict[str, str]] = []

    def build(lines: list[dict[str, str]]) -> dict[str, Any]:
        first = lines[0]
        cls = _encounter_class(lines)
        start = iso(first.get("admit_date")) if cls == "IMP" else iso(first.get("service_from"))
        end = iso(first.get("discharge_date")) if cls == "IMP" else iso(first.get("service_to"))
        dx = [d for k in ("dx1", "dx2", "dx3", "dx4") if (d := _v(first, k))]
        cpts = sorted({c for r in lines if (c := _v(r, "cpt_hcpcs"))})
        return _prune({
            "resourceType": "Encounter", "id": _v(first, "claim_id"), "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
            "type": [{"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": c}]} for c in cpts[:1]],
            "subject": {"reference": f"Patient/{_v(first, 'member_local_id')}"},
            "participant": [{"individual": {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi",
                                                           "value": _v(first, "provider_npi")}}}]
            if _v(first, "provider_npi") else [],
            "period": {"start": start, "end": end},
            "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": d.strip()}]} for d in dx],
            "serviceProvider": {"identifier": {"system": "urn:phmx:plan-id", "value": _v(first, "plan_id")}},
        })

    for row in rows:
        if batch and row.get("claim_id") != batch[0].get("claim_id"):
            yield build(batch)
            batch = []
        batch.append(row)
    if batch:
        yield build(batch)


def immunizations(rows: Iterable[dict[str, str]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        pat = patient(row, pid="p", id_system=REGISTRY_SYSTEM, id_key="registry_patient_id")
        ext = [{"url": PROTECTION_URL, "valueCode": _v(row, "protection_indicator")}
               if _v(row, "protection_indicator") else None,
               {"url": PUBLICITY_URL, "valueCode": _v(row, "publicity_code")} if _v(row, "publicity_code") else None]
        pat["extension"] = [*pat.get("extension", []), *[e for e in ext if e]]
        yield _prune({
            "resourceType": "Immunization", "id": _v(row, "vaccination_id"), "status": "completed",
            "contained": [pat], "patient": {"reference": "#p"},
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": _v(row, "cvx")}]},
            "occurrenceDateTime": iso(row.get("admin_date")),
            "lotNumber": _v(row, "lot_number"),
            "manufacturer": {"identifier": {"system": "http://hl7.org/fhir/sid/mvx", "value": _v(row, "mvx")}}
            if _v(row, "mvx") else None,
            "route": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0162", "code": _v(row, "route")}]}
            if _v(row, "route") else None,
            "site": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0163", "code": _v(row, "site")}]}
            if _v(row, "site") else None,
            "performer": [{"actor": {"identifier": {"value": _v(row, "provider_id")}}}] if _v(row, "provider_id") else [],
            "programEligibility": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0064",
                                                "code": _v(row, "vfc_eligibility")}]}]
            if _v(row, "vfc_eligibility") else [],
        })


CONSENT_STATUS = {"active": "active", "revoked": "inactive", "entered_in_error": "entered-in-error"}


def fhir_datetime(value: str | None) -> str | None:
    """A FHIR dateTime: a time needs a zone; county forms give local times without one (read as UTC,
    the same way the consent registry reads them)."""
    v = (value or "").strip()
    if "T" in v and not (v.endswith("Z") or "+" in v[10:] or "-" in v[10:]):
        return v + "Z"
    return v or None


def consents(rows: Iterable[dict[str, str]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        program = (_v(row, "program") or "").upper()
        classes = [c for c in (_v(row, "data_classes") or "").split("|") if c]
        purposes = [p for p in (_v(row, "purposes") or "").split("|") if p]
        recipients = [r for r in (_v(row, "recipients") or "").split("|") if r]
        yield _prune({
            "resourceType": "Consent", "id": _v(row, "consent_form_id"),
            "status": CONSENT_STATUS.get((_v(row, "status") or "").lower(), "proposed"),
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{_v(row, 'client_id')}"},
            "dateTime": fhir_datetime(row.get("signed_at")),
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                       "code": "42CFRPart2" if program == "SUD" else "OPTIN"}]},
            "extension": [{"url": "urn:phmx:consent-grantor", "valueCode": _v(row, "grantor")}]
            if _v(row, "grantor") else [],
            "provision": {
                "type": "permit",
                "period": {"start": fhir_datetime(row.get("signed_at")), "end": iso(row.get("expires_on"))},
                "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                "code": "IRCP"}]}, "reference": {"identifier": {"value": r}}}
                          for r in recipients],
                "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": p}
                            for p in purposes],
                "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": c}
                                  for c in classes],
            },
        })


def make_writer(resources: Callable[[Iterable[dict[str, str]]], Iterator[dict[str, Any]]]):  # noqa: ANN201
    """A synth Writer writing one compact JSON resource per line; returns the resources written."""

    def write(rows: Iterable[dict[str, str]], fh: BinaryIO) -> int:
        n = 0
        for res in resources(rows):
            fh.write(orjson.dumps(res) + b"\n")
            n += 1
        return n

    write.__name__ = f"write_{resources.__name__}_ndjson"
    return write


register_writer("enrollment", "fhir_patient", make_writer(patients), file_suffix=".ndjson", feed_name="fhir_patient")
register_writer("enrollment", "fhir_coverage", make_writer(coverages), file_suffix=".ndjson",
                feed_name="fhir_coverage")
register_writer("claims", "fhir_encounter", make_writer(encounters), file_suffix=".ndjson", feed_name="fhir_encounter")
register_writer("immunizations", "fhir_immunization", make_writer(immunizations), file_suffix=".ndjson",
                feed_name="fhir_immunization")
register_writer("consent_forms", "fhir_consent", make_writer(consents), file_suffix=".ndjson", feed_name="fhir_consent")
