"""FHIR R4 as the standard allows it: references, code systems, dates, optional elements, exclusions.

Each test feeds resources shaped like what EHRs and generators send (the shapes of the public
corpus in tests/conformance/) and asserts what intake keeps, quarantines and says on the receipt.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from jobs.ingest.formats.fhir_ndjson import Ctx, compile_path, fhir_date
from jobs.ingest.landing import LandedFile
from jobs.ingest.process import process_file
from jobs.ingest.specs import load_specs
from tests.ingest.helpers import accepted_rows, assert_conserved, run_file

NPI = "http://hl7.org/fhir/sid/us-npi"


def ndjson(*resources: dict) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in resources) + b"\n"


def encounter(eid: str, **kw: object) -> dict:
    res = {"resourceType": "Encounter", "id": eid, "status": "finished",
           "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
           "subject": {"reference": "Patient/p1"}, "period": {"start": "2025-01-10T09:00:00-08:00"}}
    res.update(kw)
    return res


def patient(pid: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Lozano", "given": ["Ines"]}],
            "gender": "female", "birthDate": "2019-05-02"}


def immunization(iid: str, patient_ref: str, **kw: object) -> dict:
    res = {"resourceType": "Immunization", "id": iid, "status": "completed",
           "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "08"}]},
           "patient": {"reference": patient_ref}, "occurrenceDateTime": "2025-01-15T10:04:00-08:00"}
    res.update(kw)
    return res


@pytest.mark.parametrize(("value", "kind", "expected"), [
    ("2025-01-10", "date", ("2025-01-10", None)),
    ("2025-01-10T23:30:00-08:00", "date", ("2025-01-10", None)),  # the local date, not the UTC one
    ("2025-01-10T23:30:00-08:00", "timestamp", ("2025-01-11T07:30:00", None)),  # the offset applied
    ("2025-01-10T23:30:00.123Z", "timestamp", ("2025-01-10T23:30:00", None)),
    ("2025-01-10", "timestamp", ("2025-01-10T00:00:00", None)),  # a date-only dateTime is midnight
    ("2025-01", "date", (None, "year or month precision only")),
    ("2025", "timestamp", (None, "year or month precision only")),
    ("10/01/2025", "date", ("10/01/2025", None)),  # not FHIR: left for the field check to report
])
def test_fhir_dates(value, kind, expected):
    assert fhir_date(value, kind) == expected


def test_encounter_period_may_have_only_an_end_and_offsets_keep_the_local_date():
    only_end = encounter("e2", period={"end": "2025-01-12"})
    none = encounter("e3")
    del none["period"]
    out = run_file(ndjson(encounter("e1"), only_end, none), "fhir_encounter", "mcp_bluecoast")
    rows = {r["encounter_id"]: r for r in accepted_rows(out)}
    assert rows["e1"]["period_start"] == "2025-01-10"
    assert rows["e2"]["period_start"] is None and rows["e2"]["period_end"] == "2025-01-12"
    (err,) = out.receipt.errors
    assert (err["rule_id"], err["rows"]) == ("period_required", [3])
    assert_conserved(out)


def test_partial_dates_are_quarantined_naming_the_element():
    out = run_file(ndjson(encounter("e1", period={"start": "2025-01"})), "fhir_encounter", "mcp_bluecoast")
    (err,) = out.receipt.errors
    assert err["rule_id"] == "fhir_date_precision" and "Encounter.period.start" in err["message"]


def test_snomed_reasons_and_types_are_kept_with_their_system_and_conditional_practitioners_read():
    synthea_like = encounter(
        "e1", type=[{"coding": [{"system": "http://snomed.info/sct", "code": "185349003"}]}],
        reasonCode=[{"coding": [{"system": "http://snomed.info/sct", "code": "72892002"}]},
                    {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "F329"},
                                {"system": "http://snomed.info/sct", "code": "35489007"}]}],
        participant=[{"individual": {"reference": f"Practitioner?identifier={NPI}|9999967793"}}])
    (row,) = accepted_rows(run_file(ndjson(synthea_like), "fhir_encounter", "mcp_bluecoast"))
    assert json.loads(row["reason_codings"]) == ["http://snomed.info/sct|72892002",
                                                 "http://hl7.org/fhir/sid/icd-10-cm|F329",
                                                 "http://snomed.info/sct|35489007"]
    assert json.loads(row["type_codings"]) == ["http://snomed.info/sct|185349003"]
    assert (row["dx1"], row["dx2"]) == (None, "F329")  # ICD-10-CM where sent, by position
    assert row["provider_npi"] == "9999967793"


def test_immunization_resolves_a_patient_of_the_same_submission():
    data = ndjson(immunization("i1", "Patient/p1"), immunization("i2", "urn:uuid:p1"),
                  immunization("i3", "Patient/elsewhere"))
    lf = LandedFile("i.ndjson", "mcp_bluecoast/fhir_immunization/2025-01/i.ndjson", "mcp_bluecoast",
                    "fhir_immunization", "2025-01", "i.ndjson", len(data), True)
    out = process_file(lf, data, load_specs(), received_at=datetime(2025, 2, 1, tzinfo=UTC),
                       companions={"Patient.ndjson": ndjson(patient("p1"), patient("p2"))})
    rows = accepted_rows(out)
    assert [(r["vaccination_id"], r["registry_patient_id"], r["family_name"], r["birth_date"]) for r in rows] == [
        ("i1", "p1", "Lozano", "2019-05-02"), ("i2", "p1", "Lozano", "2019-05-02")]
    (err,) = out.receipt.errors
    assert err["rule_id"] == "fhir_unresolved_reference" and err["rows"] == [3]
    assert "Immunization.patient" in err["message"] and "elsewhere" not in json.dumps(out.receipt.errors)
    assert_conserved(out)


def test_immunization_status_is_kept_as_vxu_keeps_rxa20_and_rxa21():
    contained = {"contained": [dict(patient("p"), identifier=[{"system": "urn:phmx:cair2-patient-id", "value": "R1"}])]}
    refused = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "PATOBJ"}]}
    data = ndjson(immunization("i1", "#p", **contained), immunization("i2", "#p", status="not-done", **contained),
                  immunization("i3", "#p", status="not-done", statusReason=refused, **contained),
                  immunization("i4", "#p", status="entered-in-error", **contained))
    rows = accepted_rows(run_file(data, "fhir_immunization", "cair2"))
    assert [(r["vaccination_id"], r["completion_status"], r["action_code"]) for r in rows] == [
        ("i1", "CP", "A"), ("i2", "NA", "A"), ("i3", "RE", "A"), ("i4", "CP", "D")]


def test_receipt_names_the_element_to_send():
    no_birth = dict(patient("p"))
    del no_birth["birthDate"]
    out = run_file(ndjson(immunization("i1", "#p", contained=[no_birth])), "fhir_immunization", "cair2")
    fixes = {e["field"]: e["how_to_fix"] for e in out.receipt.errors}
    assert "Fill in Immunization.patient -> the referenced resource's birthDate" in fixes["birth_date"]
    res = immunization("i2", "#p", contained=[patient("p")])
    del res["occurrenceDateTime"]  # occurrence[x] is 1..1 in FHIR: the model's own sentence names it
    (err,) = run_file(ndjson(res), "fhir_immunization", "cair2").receipt.errors
    assert err["rule_id"] == "fhir_invalid" and "occurrence" in err["message"]


def test_duplicate_key_never_fires_on_rows_whose_key_is_incomplete():
    cov = {"resourceType": "Coverage", "status": "active", "beneficiary": {"reference": "Patient/p1"},
           "payor": [{"reference": "Organization/o1"}]}
    data = ndjson(dict(cov, id="c1"), dict(cov, id="c2"))  # neither has a plan class nor a start
    out = run_file(data, "fhir_coverage", "mcp_bluecoast")
    assert {e["rule_id"] for e in out.receipt.errors} == {"required"}


def test_observation_values_components_and_screening_scores():
    bp = {"resourceType": "Observation", "id": "bp", "status": "final",
          "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
          "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2025-01-10",
          "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                         "valueQuantity": {"value": 128, "unit": "mmHg", "code": "mm[Hg]"}},
                        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                         "valueQuantity": {"value": 81.5, "unit": "mmHg", "code": "mm[Hg]"}}]}
    phq9 = {"resourceType": "Observation", "id": "phq9", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "44261-6"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2025-01-10", "valueInteger": 14}
    a1c = {"resourceType": "Observation", "id": "a1c", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]}, "subject": {"reference": "Patient/p1"},
           "effectivePeriod": {"start": "2025-01-10T08:00:00Z"}, "valueQuantity": {"value": 0.000065, "unit": "%"}}
    rows = {r["observation_id"]: r for r in accepted_rows(run_file(ndjson(bp, phq9, a1c), "fhir_observation",
                                                                   "mcp_bluecoast"))}
    assert [json.loads(c) for c in json.loads(rows["bp"]["components"])] == [
        {"code": "http://loinc.org|8480-6", "value": 128, "unit": "mm[Hg]", "value_code": None},
        {"code": "http://loinc.org|8462-4", "value": 81.5, "unit": "mm[Hg]", "value_code": None}]
    assert (rows["phq9"]["loinc_code"], rows["phq9"]["value_num"]) == ("44261-6", "14")
    assert (rows["a1c"]["value_num"], rows["a1c"]["effective_date"]) == ("0.000065", "2025-01-10")


def test_path_alternatives_and_reference_ids():
    get = compile_path("subject.@ref_id(Patient) || subject.identifier.value")
    res = {"subject": {"reference": "https://ehr.example/fhir/Patient/42/_history/3"}}
    assert get(res, Ctx(res, {})) == ["42"]
    res = {"subject": {"reference": "Group/7", "identifier": {"value": "G"}}}
    assert get(res, Ctx(res, {})) == ["G"]
