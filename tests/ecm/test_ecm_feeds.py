"""ECM data exchange feeds: the plan's assignments and the providers' returns, through intake and conform.

Hand-built files (every value made up) for one plan (mcp_bluecoast) and one ECM provider
(ecm_harbor): every row lands in silver or is quarantined with the rule that refused it.
"""

from __future__ import annotations

import datetime as dt
import json

from testkit import csv_rows

from jobs import conform, ingest
from phmx import lakehouse
from phmx.context import RunContext
from phmx.feedspec import get_spec

NPI = "1234567893"
MIF = get_spec("ecm_member_information").field_names
RTF = get_spec("ecm_return_transmission").field_names
OTF = get_spec("ecm_outreach").field_names
SVC = get_spec("ecm_services").field_names
CSR = get_spec("cs_referrals").field_names
WHO = {"cin": "91234567A", "given_name": "Ana", "family_name": "Rivera", "birth_date": "1970-03-04"}
WHO2 = {"cin": "97654321B", "given_name": "Ben", "family_name": "Okafor", "birth_date": "1982-11-30"}
PROV = {"plan_id": "BC", "ecm_provider_npi": NPI}


def _receipt(home, submitter: str, feed: str) -> dict:
    (p,) = [p for p in sorted((home / "outbox" / submitter).rglob("*.json")) if f"/{feed}/" in str(p) or feed in p.name]
    return json.loads(p.read_text())


def test_assignment_and_returns_reach_silver(spark, phmx_home, land):
    land("mcp_bluecoast", "ecm_member_information", "2025-03", "mif.csv", csv_rows(MIF, [
        {"member_local_id": "BC1", **WHO, "sex": "F", "plan_id": "BC", "ecm_provider_npi": NPI,
         "population_of_focus_1": "HOMELESS_ADULT", "population_of_focus_2": "SMH_SUD",
         "referral_date": "2025-01-20", "authorization_start": "2025-02-01"},
        {"member_local_id": "BC2", **WHO2, "sex": "M", "plan_id": "BC", "ecm_provider_npi": NPI,
         "population_of_focus_1": "AVOIDABLE_UTILIZATION", "authorization_start": "2025-01-10",
         "authorization_end": "2025-02-28", "end_reason": "UNREACHABLE"},
        # refused: population of focus not a code, end before start
        {"member_local_id": "BC3", **WHO2, "plan_id": "BC", "ecm_provider_npi": NPI,
         "population_of_focus_1": "HOMELESS", "authorization_start": "2025-02-01",
         "authorization_end": "2025-01-01"},
    ]))
    land("ecm_harbor", "ecm_return_transmission", "2025-03", "rtf.csv", csv_rows(RTF, [
        {**WHO, **PROV, "status_date": "2025-02-28", "benefit_status": "PENDING"},
        {**WHO, **PROV, "status_date": "2025-03-31", "benefit_status": "ENROLLED", "enrollment_date": "2025-02-12",
         "assessment_date": "2025-03-01", "care_plan_date": "2025-03-20", "lead_care_manager_id": "LCM07",
         "lead_care_manager_start": "2025-02-12"},
        {**WHO2, **PROV, "status_date": "2025-03-31", "benefit_status": "DISCONTINUED",
         "enrollment_date": "2025-01-20"},  # refused: DISCONTINUED needs end_date and end_reason
    ]))
    land("ecm_harbor", "ecm_outreach", "2025-03", "otf.csv", csv_rows(OTF, [
        {"outreach_id": "O1", **WHO, **PROV, "attempt_date": "2025-02-03", "method": "PHONE", "outcome": "NO_CONTACT"},
        {"outreach_id": "O2", **WHO, **PROV, "attempt_date": "2025-02-10", "method": "IN_PERSON",
         "outcome": "CONTACT_ENROLLED"},
        {"outreach_id": "O3", **WHO, **PROV, "attempt_date": "2025-02-11", "method": "PIGEON", "outcome": "NO_CONTACT"},
    ]))
    land("ecm_harbor", "ecm_services", "2025-03", "svc.csv", csv_rows(SVC, [
        {"service_id": "S1", **WHO, **PROV, "service_date": "2025-03-01", "core_service": "ASSESSMENT_CARE_PLAN",
         "contact_mode": "IN_PERSON", "minutes": "90", "lead_care_manager_id": "LCM07", "hcpcs": "G9008",
         "hcpcs_modifier": "U1"},
        {"service_id": "S2", **WHO, **PROV, "service_date": "2025-03-05", "core_service": "COMMUNITY_REFERRAL",
         "contact_mode": "PHONE", "minutes": "20"},
    ]))
    land("ecm_harbor", "cs_referrals", "2025-03", "csr-1.csv", csv_rows(CSR, [
        {"referral_id": "R1", **WHO, **PROV, "cs_service": "HOUSING_NAVIGATION", "referral_date": "2025-03-05",
         "status": "MADE"},
        {"referral_id": "R1", **WHO, **PROV, "cs_service": "HOUSING_NAVIGATION", "referral_date": "2025-03-05",
         "status": "ACCEPTED", "accepted_date": "2025-03-09"},
        {"referral_id": "R2", **WHO, **PROV, "cs_service": "MEDICALLY_TAILORED_MEALS", "referral_date": "2025-03-06",
         "status": "CLOSED"},  # refused: CLOSED needs closed_date and close_reason
    ]))
    ingest.run(spark, RunContext.new())
    # the delivery of R1 arrives next month: its milestones join the earlier ones
    land("ecm_harbor", "cs_referrals", "2025-04", "csr-2.csv", csv_rows(CSR, [
        {"referral_id": "R1", **WHO, **PROV, "cs_service": "HOUSING_NAVIGATION", "referral_date": "2025-03-05",
         "status": "DELIVERED", "delivered_date": "2025-04-02"},
    ]))
    ingest.run(spark, RunContext.new())
    result = conform.run(spark, RunContext.new())

    assert result.counts["ecm_member_information->ecm_assignment"] == 2
    asg = {r.source_person_id: r for r in lakehouse.read(spark, "silver.ecm_assignment").collect()}
    assert set(asg) == {"BC1", "BC2"}
    assert asg["BC1"].populations_of_focus == ["HOMELESS_ADULT", "SMH_SUD"]
    assert asg["BC1"].authorization_start == dt.date(2025, 2, 1) and asg["BC1"].authorization_end is None
    assert asg["BC1"].provider_npi == NPI and asg["BC1"].plan_id == "BC"
    assert asg["BC2"].end_reason == "UNREACHABLE" and asg["BC2"].authorization_end == dt.date(2025, 2, 28)

    plans = sorted(lakehouse.read(spark, "silver.ecm_care_plan").collect(), key=lambda r: r.status_date)
    assert [(r.source, r.source_person_id, r.benefit_status) for r in plans] == [
        ("ecm_harbor:ecm_return_transmission", "91234567A", "PENDING"),
        ("ecm_harbor:ecm_return_transmission", "91234567A", "ENROLLED")]
    assert plans[1].enrollment_date == dt.date(2025, 2, 12) and plans[1].care_plan_date == dt.date(2025, 3, 20)
    assert plans[1].lead_care_manager_id == "LCM07"

    out = {r.outreach_id: r for r in lakehouse.read(spark, "silver.ecm_outreach").collect()}
    assert set(out) == {"O1", "O2"} and out["O2"].method == "IN_PERSON" and out["O2"].outcome == "CONTACT_ENROLLED"
    svc = {r.service_id: r for r in lakehouse.read(spark, "silver.ecm_service").collect()}
    assert svc["S1"].minutes == 90 and svc["S1"].core_service == "ASSESSMENT_CARE_PLAN"
    assert svc["S2"].hcpcs is None

    (ref,) = lakehouse.read(spark, "silver.cs_referral").collect()
    assert (ref.referral_id, ref.status, ref.cs_service) == ("R1", "DELIVERED", "HOUSING_NAVIGATION")
    assert ref.referral_date == dt.date(2025, 3, 5) and ref.accepted_date == dt.date(2025, 3, 9)
    assert ref.delivered_date == dt.date(2025, 4, 2) and ref.closed_date is None

    # every ECM feed keeps its own person records (source <submitter>:<feed>), so identity can link each
    # file's records whatever else has arrived, and no feed's refresh replaces another's people
    people = {(r.source, r.source_person_id) for r in lakehouse.read(spark, "silver.person").collect()}
    assert {("mcp_bluecoast:ecm_member_information", "BC1"), ("mcp_bluecoast:ecm_member_information", "BC2")} <= people
    assert {(f"ecm_harbor:{feed}", "91234567A") for feed in
            ("ecm_return_transmission", "ecm_outreach", "ecm_services", "cs_referrals")} <= people

    # nothing lost: each refused row is in quarantine with the rule that refused it, and no PHI in receipts
    q = {(r.feed, r.row_number, r.rule_id, r.field) for r in lakehouse.read(spark, "bronze.quarantine").collect()}
    assert ("ecm_member_information", 4, "code_set", "population_of_focus_1") in q
    assert ("ecm_member_information", 4, "authorization_dates", "") in q
    assert ("ecm_return_transmission", 4, "required", "end_date") in q
    assert ("ecm_return_transmission", 4, "required", "end_reason") in q
    assert ("ecm_outreach", 4, "code_set", "method") in q
    assert ("cs_referrals", 4, "required", "close_reason") in q
    receipts = "".join(p.read_text() for p in (phmx_home / "outbox").rglob("*.json"))
    for phi in ("91234567A", "97654321B", "Rivera", "Okafor", "1970-03-04"):
        assert phi not in receipts
