"""Standard maintenance semantics reach silver: X12 834 INS03 and HL7 VXU RXA-20/RXA-21.

Files from the conformance corpus (tests/conformance/) land over several periods, as a plan and a
registry send them; silver must hold what the last word on each record says.
"""

from __future__ import annotations

from pathlib import Path

from jobs import conform, ingest
from phmx import lakehouse
from phmx.context import RunContext
from phmx.tables import COVERAGE_MEDICAL, IMMUNIZATION_GIVEN

CORPUS = Path(__file__).resolve().parents[1] / "conformance"
PLAN = "mcp_test"

# A 001 change of SUB0001's address, without DMG, N1*74-free, in a later period.
CHANGE_001 = """ISA*00*          *00*          *ZZ*PHMXTESTPLAN   *ZZ*PHMXHUB        *250301*0930*^*00501*000000104*0*T*:~
GS*BE*PHMXTESTPLAN*PHMXHUB*20250301*0930*9004*X*005010X220A1~
ST*834*0001*005010X220A1~
BGN*00*OURS-104*20250301*0930****4~
N1*P5*TEST SPONSOR*FI*000000000~
N1*IN*TEST HEALTH PLAN*XV*PLAN001~
INS*Y*18*001*AI*A***AC~
REF*0F*SUB0001~
REF*23*91000001A~
NM1*IL*1*TESTMEMBER*ALPHA~
N3*9 NEW ROAD~
N4*OAKLAND*CA*94607**CY*06001~
SE*11*0001~
GE*1*9004~
IEA*1*000000104~
"""


def _run(spark) -> dict:
    ingest.run(spark, RunContext.new())
    return conform.run(spark, RunContext.new()).counts


def test_834_maintenance_applies_in_order_across_periods(spark, phmx_home, land, monkeypatch):
    x12 = CORPUS / "x12_834"
    land(PLAN, "enrollment_834", "2025-01", "add.x12", (x12 / "ours_maintenance_025_001_multi_hd.x12").read_bytes())
    _run(spark)
    cov = {(r.source_person_id, r.coverage_type): r for r in lakehouse.read(spark, "silver.coverage").collect()}
    assert set(cov) == {("SUB0001", "HLT"), ("SUB0001", "DEN"), ("SUB0001", "VIS"), ("SUB0001-91000002B", "HLT"),
                        ("SUB0002", "HLT")}  # three HD loops stay three coverages; the dependent is its own member
    assert all(r.end_date is None for r in cov.values())
    assert str(cov[("SUB0002", "HLT")].start_date) == "2024-01-01" and cov[("SUB0002", "HLT")].maintenance_type == "025"

    land(PLAN, "enrollment_834", "2025-02", "term.x12", (x12 / "ours_024_terminate.x12").read_bytes())
    land(PLAN, "enrollment_834", "2025-03", "change.x12", CHANGE_001)
    # Two new submissions, none replaced: the plan's members they name are conformed by key.
    counts = _run(spark)
    assert counts["enrollment->person:sources_by_key"] == 1
    assert counts["enrollment->coverage:sources_by_key"] == 0  # its columns use windows: conformed whole
    cov = {(r.source_person_id, r.coverage_type): r for r in lakehouse.read(spark, "silver.coverage").collect()}
    hlt = cov[("SUB0001", "HLT")]
    # the 024 without DTP*348 ended the span the 021 opened; the 001 without dates kept that end
    assert (str(hlt.start_date), str(hlt.end_date)) == ("2025-01-01", "2025-01-31")
    assert cov[("SUB0001", "DEN")].end_date is None and cov[("SUB0001", "VIS")].end_date is None
    assert len(cov) == 5
    medical = {r.coverage_type for r in lakehouse.read(spark, "silver.coverage").where(COVERAGE_MEDICAL).collect()}
    assert medical == {"HLT"}
    people = {r.source_person_id: r for r in lakehouse.read(spark, "silver.person").collect()}
    # SUB0003's 001 change came without DMG for a member never added: no person; SUB0001's took the new address
    # and kept the birth date and sex its 021 gave.
    assert set(people) == {"SUB0001", "SUB0001-91000002B"}
    p = people["SUB0001"]
    assert (p.city, p.state, p.zip, p.county_fips, str(p.birth_date), p.sex) == (
        "OAKLAND", "CA", "94607", "06001", "1980-01-01", "F")
    # Conformed by key as conformed whole: forcing every source again changes no row.
    versions = {t: lakehouse.version(t) for t in ("silver.person", "silver.coverage")}
    monkeypatch.setenv("PHMX_CONFORM_FULL", "1")
    counts = conform.run(spark, RunContext.new()).counts
    assert counts["person:rows_written"] == 0 and counts["coverage:rows_written"] == 0
    assert {t: lakehouse.version(t) for t in versions} == versions


def test_vxu_refusals_and_deletions_stay_in_silver_but_are_not_given_doses(spark, phmx_home, land):
    land("cair2", "immunizations_vxu", "2025-01", "s.hl7", (CORPUS / "hl7v2_vxu" / "ours_status_ndc.hl7").read_bytes())
    _run(spark)
    imm = lakehouse.read(spark, "silver.immunization")
    rows = {r.immunization_id: r for r in imm.collect()}
    assert {k: (r.completion_status, r.action_code, r.cvx) for k, r in rows.items()} == {
        "OURS-V1": ("CP", "D", "20"),   # the later deletion is the last word on OURS-V1
        "OURS-V2": ("RE", "A", "94"), "OURS-V3": ("NA", "A", "998"), "OURS-V4": ("PA", "A", "10"),
        "OURS-V5": ("CP", "A", "48"), "OURS-V6": ("CP", "A", "116"),
    }
    assert {r.source_person_id for r in rows.values()} == {"MR:TESTCLINIC:OURS-1001"}
    assert sorted(r.immunization_id for r in imm.where(IMMUNIZATION_GIVEN).collect()) == ["OURS-V5", "OURS-V6"]


def test_adt_events_become_one_encounter_per_visit(spark, phmx_home, land):
    adt = CORPUS / "hl7v2_adt"
    land("hosp_test", "adt", "2025-01", "a.hl7", (adt / "ours_stay_a04_a01_a08_a03.hl7").read_bytes())
    land("hosp_test", "adt", "2025-02", "b.hl7", (adt / "ours_mllp_a03_without_discharge.hl7").read_bytes())
    _run(spark)
    events = {r.event_id: r for r in lakehouse.read(spark, "silver.adt_event").collect()}
    assert sorted(events) == ["OURS-ADT-1", "OURS-ADT-2", "OURS-ADT-3", "OURS-ADT-4", "OURS-ADT-5", "OURS-ADT-8"]
    assert events["OURS-ADT-4"].diagnosis_codes == ["F329"] and str(events["OURS-ADT-4"].discharge_date) == "2025-01-14"
    assert {"MH"} <= set(events["OURS-ADT-4"].security_labels)  # a depression diagnosis labels the event
    enc = {r.encounter_id: r for r in lakehouse.read(spark, "silver.encounter").collect()}
    assert set(enc) == {"ADT-V900", "ADT-V901", "ADT-V903"}
    stay = enc["ADT-V900"]
    assert (stay.setting, str(stay.admit_date), str(stay.discharge_date), stay.diagnosis_codes) == (
        "IP", "2025-01-10", "2025-01-14", ["F329"])
    assert stay.source_person_id == "MR:TESTHOSP:OURS-H100" and "MH" in stay.security_labels
    assert (enc["ADT-V901"].setting, enc["ADT-V901"].discharge_date) == ("OP", None)
    assert (enc["ADT-V903"].setting, enc["ADT-V903"].discharge_date) == ("IP", None)  # admitted, not yet discharged
