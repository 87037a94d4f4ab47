"""The default delimited layouts each submitter sends: a contract with the ingest feed specs.

Header rows are exactly these lowercase names, in this order. Empty string means missing.
Do not rename a field here without changing the matching spec in mappings/.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    feed: str
    fields: tuple[str, ...]
    delimiter: str
    suffix: str
    submitter_kind: str  # plan, county, dental, registry


def _f(text: str) -> tuple[str, ...]:
    return tuple(text.split())


LAYOUTS: dict[str, Layout] = {
    lay.feed: lay
    for lay in (
        Layout("enrollment", _f("""member_local_id cin ssn given_name middle_name family_name birth_date sex
            address_line city state zip county_fips phone email language race ethnicity plan_id aid_code
            coverage_start coverage_end maintenance_type"""), "|", ".txt", "plan"),
        Layout("claims", _f("""claim_id claim_line member_local_id cin claim_type service_from service_to admit_date
            discharge_date place_of_service revenue_code cpt_hcpcs dx1 dx2 dx3 dx4 provider_npi plan_id
            paid_amount"""),
               ",", ".csv", "plan"),
        Layout("pharmacy", _f("""rx_claim_id member_local_id cin fill_date ndc days_supply quantity prescriber_npi
            plan_id"""), ",", ".csv", "plan"),
        Layout("mh_csi", _f("""record_type county_code client_number cin ssn given_name family_name birth_date sex
            race ethnicity zip service_date mode_of_service service_function units_of_service units_of_time
            diagnosis living_arrangement employment education"""), ",", ".csv", "county"),
        Layout("sud_caloms", _f("""record_type provider_id client_id cin ssn given_name family_name birth_date sex
            race ethnicity zip admission_date discharge_date primary_drug_code service_type discharge_status
            diagnosis"""), ",", ".csv", "county"),
        Layout("consent_forms", _f("""consent_form_id client_id program signed_at grantor purposes recipients
            data_classes expires_on revoked_at status"""), ",", ".csv", "county"),
        Layout("dental_claims", _f("""claim_id claim_line member_local_id cin given_name family_name birth_date sex
            zip service_date cdt_code tooth provider_npi"""), ",", ".csv", "dental"),
        Layout("immunizations", _f("""vaccination_id registry_patient_id given_name middle_name family_name
            birth_date sex mother_maiden_name address_line city zip phone race ethnicity admin_date cvx mvx
            lot_number route site vfc_eligibility protection_indicator publicity_code provider_id cin"""),
               ",", ".csv", "registry"),
    )
}

FEEDS: tuple[str, ...] = tuple(LAYOUTS)

# Which column of each feed carries the submitter's own person id (for the ground truth map).
PERSON_ID_FIELD = {
    "enrollment": "member_local_id", "claims": "member_local_id", "pharmacy": "member_local_id",
    "mh_csi": "client_number", "sud_caloms": "client_id", "consent_forms": "client_id",
    "dental_claims": "member_local_id", "immunizations": "registry_patient_id",
}
