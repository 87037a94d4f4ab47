"""FHIR Consent R4 (R4B models) and R5 into the registry, and through the stage end to end."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from consent_testdata import COUNTY, PLAN, write_members, write_submissions

from consent import fhir
from jobs.consent_decisions import run
from phmx import lakehouse
from phmx.context import RunContext
from phmx.errors import ConsentError
from phmx.tables import CONSENT_DECISION

R4 = {
    "resourceType": "Consent", "id": "r4a", "status": "active", "meta": {"versionId": "1"},
    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
    "patient": {"reference": "Patient/c1"}, "dateTime": "2024-01-01T00:00:00Z",
    "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "42CFRPart2"}]},
    "provision": {
        "type": "permit", "period": {"start": "2024-01-01T00:00:00Z"},
        "actor": [{"role": {"coding": [{"code": "IRCP"}]}, "reference": {"reference": f"Organization/{PLAN}"}}],
        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": c}
                    for c in ("TREAT", "HPAYMT", "HOPERAT")],
        "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "42CFRPart2"}],
        "provision": [{"purpose": [{"code": "HOPERAT"}]}],  # nested, no type: the opposite of its parent
    },
}
R5 = {
    "resourceType": "Consent", "id": "r5a", "status": "active", "subject": {"reference": "Patient/c2"},
    "date": "2024-02-01", "period": {"start": "2024-02-01"}, "decision": "deny",
    "grantor": [{"reference": "RelatedPerson/p1"}],
    "provision": [{
        "actor": [{"role": {"coding": [{"code": "IRCP"}]}, "reference": {"reference": f"Organization/{PLAN}"}}],
        "purpose": [{"code": "TREAT"}],
        "securityLabel": [{"code": "PSY"}],
    }],
}


def test_r4_nested_provision_negates_parent():
    row = fhir.normalise(R4, source=COUNTY, recorded_at=datetime(2024, 1, 2))
    nodes = json.loads(row["provisions"])
    assert row["source_format"] == "fhir_r4" and row["grantor"] == "self" and row["source_person_id"] == "c1"
    assert [(n["path"], n["effect"], n["purposes"], n["data_classes"], n["recipients"]) for n in nodes] == [
        ("0", "permit", ["HOPERAT", "HPAYMT", "TREAT"], ["SUD"], [PLAN]),
        ("0.0", "deny", ["HOPERAT"], ["SUD"], [PLAN]),  # inherits the parent's class and recipient
    ]


def test_r5_decision_and_exceptions():
    row = fhir.normalise(R5, source=COUNTY, recorded_at=datetime(2024, 2, 2))
    nodes = json.loads(row["provisions"])
    assert row["source_format"] == "fhir_r5" and row["grantor"] == "guardian"
    assert [(n["path"], n["effect"], n["data_classes"]) for n in nodes] == [("0", "deny", []), ("0.0", "permit", ["MH"])]


def test_invalid_resource_is_rejected_without_content():
    with pytest.raises(ConsentError) as err:
        fhir.normalise({"resourceType": "Consent", "id": "x", "status": "bogus-status", "patient": {"reference": "Patient/c9"}},
                       source=COUNTY, recorded_at=datetime(2024, 1, 1))
    assert "c9" not in str(err.value)


def test_stage_reads_landed_fhir(spark, phmx_home):
    write_members(spark, [("m1", "c1", date(1980, 1, 1)), ("m2", "c2", date(2016, 1, 1))])
    write_submissions(spark, [PLAN])
    d = Path(phmx_home, "landing", COUNTY, "consent_fhir", "2024-02")
    d.mkdir(parents=True)
    revoked = {**R4, "id": "r4b", "status": "inactive", "meta": {"versionId": "2", "lastUpdated": "2024-03-01T00:00:00Z"}}
    (d / "consents.ndjson").write_text("\n".join(json.dumps(x) for x in (R4, R5, {"resourceType": "Patient"})) + "\n")
    (d / "more.ndjson").write_text(json.dumps({**revoked, "id": "r4a"}) + "\n")
    result = run(spark, RunContext.new(run_id="rf", period="2024-02"))
    assert result.counts["fhir_rejected"] == 1
    dec = lakehouse.read(spark, CONSENT_DECISION)

    def at(member, cls, purpose, t):
        rows = [r for r in dec.where(f"member_id = '{member}' AND data_class = '{cls}' AND purpose = '{purpose}'").collect()
                if r.valid_from <= t and (r.valid_to is None or t < r.valid_to)]
        assert len(rows) == 1
        return rows[0].decision

    assert at("m1", "SUD", "TREAT", datetime(2024, 2, 1)) == "permit"
    assert at("m1", "SUD", "HOPERAT", datetime(2024, 2, 1)) == "deny"   # nested exception
    assert at("m1", "SUD", "TREAT", datetime(2024, 3, 2)) == "deny"     # version 2 revoked it
    assert at("m2", "MH", "HOPERAT", datetime(2024, 6, 1)) == "deny"    # guardian of a child under 12, deny base
    assert datetime.now(UTC)  # the run used the wall clock only for decided_at


def test_consents_submitted_through_intake_reach_the_decisions(spark, phmx_home):
    """The documented feed: R4 Consents land in fhir_consent, intake validates them into bronze
    (with a receipt), and the registry reads bronze, so the revocation in a later line counts."""
    from jobs import ingest

    write_members(spark, [("m1", "c1", date(1980, 1, 1))])
    write_submissions(spark, [PLAN])
    d = Path(phmx_home, "landing", COUNTY, "fhir_consent", "2024-02")
    d.mkdir(parents=True)
    revoked = {**R4, "status": "inactive", "dateTime": "2024-03-01T00:00:00Z",
               "meta": {"versionId": "2", "lastUpdated": "2024-03-01T00:00:00Z"}}
    (d / "consents.ndjson").write_text(json.dumps(R4) + "\n" + json.dumps(revoked) + "\n")
    ingest.run(spark, RunContext.new(run_id="ri", period="2024-02"))
    assert lakehouse.read(spark, "bronze.fhir_consent").count() == 2
    result = run(spark, RunContext.new(run_id="rc", period="2024-02"))
    assert result.counts["fhir_rejected"] == 0
    versions = lakehouse.read(spark, "silver.consent").where(f"consent_id = '{COUNTY}:r4a'").orderBy("version").collect()
    dec = lakehouse.read(spark, CONSENT_DECISION).where(
        "member_id = 'm1' AND data_class = 'SUD' AND purpose = 'TREAT'").collect()

    def at(t: datetime) -> str:
        (row,) = [r for r in dec if r.valid_from <= t and (r.valid_to is None or t < r.valid_to)]
        return row.decision

    assert at(datetime(2024, 2, 1)) == "permit"
    assert at(datetime(2024, 3, 2)) == "deny"  # version 2 (inactive) revoked it
    assert [(v.version, v.status) for v in versions] == [(1, "active"), (2, "inactive")]
    assert all(v.row_number in (1, 2) and not v.submission_id.startswith("fhir-") for v in versions)  # intake lineage


def test_county_fhir_consents_name_the_program_id_space():
    """A county's CalOMS and CSI client ids are separate spaces (as conform and the forms name
    them): a Part 2 consent points at <county>:sud, a mental-health one at <county>:mh."""
    from consent.registry import person_space

    sud = fhir.normalise(R4, source=COUNTY, recorded_at=datetime(2024, 1, 2))
    mh = fhir.normalise(R5, source=COUNTY, recorded_at=datetime(2024, 1, 2))
    plan = fhir.normalise(R4, source=PLAN, recorded_at=datetime(2024, 1, 2))
    assert person_space(sud)["source"] == f"{COUNTY}:sud"
    assert person_space(mh)["source"] == f"{COUNTY}:mh"
    assert person_space(plan)["source"] == PLAN
    assert person_space(person_space(sud))["source"] == f"{COUNTY}:sud"  # idempotent
