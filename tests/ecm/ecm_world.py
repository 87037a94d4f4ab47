"""A hand-built ECM world (every value made up): one plan, one ECM provider, two members, four months.

Member A is authorized on 2025-01-10, reached on the second counted attempt and enrolled on
2025-01-25; a care plan on 2025-03-15 (inside 90 days); services in February and March; one
Community Supports referral delivered in March, another still open in April. Member B is
authorized on 2025-02-01, reached once without deciding, declines on 2025-03-05 (the plan ends the
authorization that day); an attempt after that does not count. The expected metrics are in
EXPECTED, worked out by hand from the definitions in mappings/ecm/metrics.yaml.
"""

from __future__ import annotations

from testkit import csv_rows

from phmx.feedspec import get_spec

NPI = "1234567893"
PLAN = "BC"
A = {"cin": "91234567A", "given_name": "Ana", "family_name": "Rivera", "birth_date": "1970-03-04"}
B = {"cin": "97654321B", "given_name": "Ben", "family_name": "Okafor", "birth_date": "1982-11-30"}
P = {"plan_id": PLAN, "ecm_provider_npi": NPI}


def _f(feed: str) -> list[str]:
    return get_spec(feed).field_names


def land_world(land) -> None:  # noqa: ANN001 - the conftest fixture
    land("mcp_bluecoast", "ecm_member_information", "2025-03", "mif.csv", csv_rows(_f("ecm_member_information"), [
        {"member_local_id": "BC1", **A, "plan_id": PLAN, "ecm_provider_npi": NPI,
         "population_of_focus_1": "HOMELESS_ADULT", "authorization_start": "2025-01-10"},
        {"member_local_id": "BC2", **B, "plan_id": PLAN, "ecm_provider_npi": NPI,
         "population_of_focus_1": "AVOIDABLE_UTILIZATION", "authorization_start": "2025-02-01",
         "authorization_end": "2025-03-05", "end_reason": "DECLINED"},
    ]))
    land("ecm_harbor", "ecm_outreach", "2025-03", "otf.csv", csv_rows(_f("ecm_outreach"), [
        {"outreach_id": "O0", **A, **P, "attempt_date": "2025-01-05", "method": "PHONE", "outcome": "NO_CONTACT"},
        {"outreach_id": "O1", **A, **P, "attempt_date": "2025-01-12", "method": "PHONE", "outcome": "NO_CONTACT"},
        {"outreach_id": "O2", **A, **P, "attempt_date": "2025-01-20", "method": "MAIL", "outcome": "NO_CONTACT"},
        {"outreach_id": "O3", **A, **P, "attempt_date": "2025-01-25", "method": "IN_PERSON",
         "outcome": "CONTACT_ENROLLED"},
        {"outreach_id": "O4", **B, **P, "attempt_date": "2025-02-02", "method": "PHONE", "outcome": "NO_CONTACT"},
        {"outreach_id": "O5", **B, **P, "attempt_date": "2025-02-10", "method": "TEXT", "outcome": "CONTACT_FOLLOW_UP"},
        {"outreach_id": "O6", **B, **P, "attempt_date": "2025-03-05", "method": "PHONE", "outcome": "CONTACT_DECLINED"},
        {"outreach_id": "O7", **B, **P, "attempt_date": "2025-03-20", "method": "PHONE", "outcome": "NO_CONTACT"},
    ]))
    enrolled = {"enrollment_date": "2025-01-25", "lead_care_manager_id": "L1", "lead_care_manager_start": "2025-01-25"}
    land("ecm_harbor", "ecm_return_transmission", "2025-04", "rtf.csv", csv_rows(_f("ecm_return_transmission"), [
        {**A, **P, "status_date": "2025-01-15", "benefit_status": "PENDING"},
        {**A, **P, "status_date": "2025-01-31", "benefit_status": "ENROLLED", **enrolled},
        {**A, **P, "status_date": "2025-04-30", "benefit_status": "ENROLLED", **enrolled,
         "assessment_date": "2025-02-20", "care_plan_date": "2025-03-15"},
        {**B, **P, "status_date": "2025-02-28", "benefit_status": "PENDING"},
        {**B, **P, "status_date": "2025-03-31", "benefit_status": "DECLINED", "end_reason": "DECLINED"},
    ]))
    land("ecm_harbor", "ecm_services", "2025-03", "svc.csv", csv_rows(_f("ecm_services"), [
        {"service_id": "S1", **A, **P, "service_date": "2025-02-10", "core_service": "ASSESSMENT_CARE_PLAN"},
        {"service_id": "S2", **A, **P, "service_date": "2025-03-15", "core_service": "CARE_COORDINATION"},
        {"service_id": "S3", **A, **P, "service_date": "2025-03-20", "core_service": "CARE_COORDINATION"},
    ]))
    land("ecm_harbor", "cs_referrals", "2025-04", "csr.csv", csv_rows(_f("cs_referrals"), [
        {"referral_id": "R1", **A, **P, "cs_service": "HOUSING_NAVIGATION", "referral_date": "2025-03-01",
         "status": "MADE"},
        {"referral_id": "R1", **A, **P, "cs_service": "HOUSING_NAVIGATION", "referral_date": "2025-03-01",
         "status": "DELIVERED", "delivered_date": "2025-03-25"},
        {"referral_id": "R2", **A, **P, "cs_service": "MEDICALLY_TAILORED_MEALS", "referral_date": "2025-04-02",
         "status": "MADE"},
    ]))


#: (month, metric id) -> (numerator, denominator, value); every other metric of the grid is 0 (or 0/0).
EXPECTED: dict[tuple[str, str], tuple[float, float | None, float | None]] = {
    ("2025-01", "authorized_members"): (1, None, 1), ("2025-02", "authorized_members"): (2, None, 2),
    ("2025-03", "authorized_members"): (2, None, 2), ("2025-04", "authorized_members"): (1, None, 1),
    **{(m, "engaged_members"): (1, None, 1) for m in ("2025-01", "2025-02", "2025-03", "2025-04")},
    ("2025-01", "outreach_attempts"): (2, None, 2), ("2025-02", "outreach_attempts"): (2, None, 2),
    ("2025-03", "outreach_attempts"): (1, None, 1),
    ("2025-01", "outreach_attempts:PHONE"): (1, None, 1), ("2025-01", "outreach_attempts:IN_PERSON"): (1, None, 1),
    ("2025-02", "outreach_attempts:PHONE"): (1, None, 1), ("2025-02", "outreach_attempts:TEXT"): (1, None, 1),
    ("2025-03", "outreach_attempts:PHONE"): (1, None, 1),
    ("2025-01", "successful_outreach"): (1, None, 1), ("2025-02", "successful_outreach"): (1, None, 1),
    ("2025-03", "successful_outreach"): (1, None, 1),
    ("2025-01", "successful_outreach:IN_PERSON"): (1, None, 1), ("2025-02", "successful_outreach:TEXT"): (1, None, 1),
    ("2025-03", "successful_outreach:PHONE"): (1, None, 1),
    ("2025-01", "days_to_first_outreach"): (2, 1, 2.0), ("2025-02", "days_to_first_outreach"): (1, 1, 1.0),
    ("2025-01", "days_to_enrollment"): (15, 1, 15.0),
    ("2025-04", "care_plan_within_90_days"): (1, 1, 1.0),
    **{(m, "caseload_per_lead_care_manager"): (1, 1, 1.0) for m in ("2025-01", "2025-02", "2025-03", "2025-04")},
    ("2025-02", "services_per_engaged_member"): (1, 1, 1.0), ("2025-03", "services_per_engaged_member"): (2, 1, 2.0),
    ("2025-02", "services_per_engaged_member:ASSESSMENT_CARE_PLAN"): (1, 1, 1.0),
    ("2025-03", "services_per_engaged_member:CARE_COORDINATION"): (2, 1, 2.0),
    ("2025-03", "cs_closed_loop_rate"): (1, 1, 1.0), ("2025-04", "cs_closed_loop_rate"): (0, 1, 0.0),
}
