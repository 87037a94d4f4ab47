"""Rates that shape the synthetic population: identity noise, life events, clinical events.

Why one dataclass per concern: tests and benchmarks change a rate and check its effect, and
docs/synthetic-data.md documents exactly these fields. Every probability is per person (or per
person and source) unless its comment says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NoiseRates:
    """How each source's copy of a person differs from the truth."""

    # identifiers
    plan_cin_present: float = 0.97  # plans carry the CIN on enrollment, claims and pharmacy
    plan_cin_typo: float = 0.01  # of those present: one digit substituted or transposed
    plan_ssn_full: float = 0.10  # plans rarely hold the SSN ...
    plan_ssn_last4: float = 0.15  # ... or only its last four digits (sent as 5 X's + 4 digits)
    county_cin_present: float = 0.55  # county BH records with a CIN
    county_ssn_present: float = 0.60
    county_ssn_invalid: float = 0.06  # of present: 000/666/9xx area, 00 group, all same digits
    county_ssn_relative: float = 0.03  # of present: a household member's SSN
    dental_cin_present: float = 0.50
    registry_cin_present: float = 0.08
    # names
    name_typo: float = 0.03  # per name field per source: insert/delete/transpose/substitute/OCR
    nickname: float = 0.08  # county, dental and registry record a nickname (plans: a tenth of it)
    accent_kept: float = 0.5  # Unicode sources keep Spanish accents (José) where MEDS folds them
    compound_part_dropped: float = 0.35  # a source keeps one part of a two-part family name
    hyphen_changed: float = 0.3  # "Garcia-Lopez" vs "Garcia Lopez"
    middle_missing: float = 0.4  # a source does not record the middle name
    given_family_swapped: float = 0.01  # given and family names entered in each other's field
    name_change_lag: float = 0.4  # after a marriage the source keeps the former family name
    # birth date and sex
    dob_day_month_swapped: float = 0.01  # when both <= 12 and different
    dob_typo: float = 0.01  # a digit of the day or the year off by one
    sex_unknown: float = 0.005
    # contact
    address_stale: float = 0.35  # after a move the source keeps the old address
    address_typo: float = 0.03
    phone_missing: float = 0.2
    # duplicates inside one source
    county_duplicate_client: float = 0.02  # a second client number in the same county
    registry_duplicate_patient: float = 0.02


@dataclass(frozen=True)
class PopulationRates:
    """Households, life events and enrollment patterns."""

    child_share_target: float = 0.40  # under 21, as in Medi-Cal
    twin_rate: float = 0.03  # families whose children include a twin pair
    junior_rate: float = 0.08  # sons given their father's given name (same household, same name)
    lookalike_rate: float = 0.004  # unrelated people sharing given name, family name and birth date
    birth_rate: float = 0.012  # per person-year, babies born during the window
    move_within_county: float = 0.08
    move_between_counties: float = 0.03  # only when more than one county is generated
    name_change: float = 0.02  # adult women 18-45 who change family name during the window
    phone_change: float = 0.10
    homeless_base: float = 0.015  # adults; much higher with SMI or SUD
    never_enrolled: float = 0.06  # in the population (county BH, registry) but in no plan
    enrollment_gap: float = 0.08  # one gap of 1-3 months
    plan_switch: float = 0.05
    late_start: float = 0.05  # first enrolled during the window
    early_end: float = 0.04  # disenrolled during the window
    sierra_share: float = 0.45  # the rest go to mcp_bluecoast


@dataclass(frozen=True)
class ClinicalRates:
    """Event rates per person-year (scaled to the window length)."""

    ed_mh_smi: float = 0.35
    ed_mh_mild: float = 0.08
    ed_mh_other: float = 0.004
    ed_sud: float = 0.35
    ed_sud_other: float = 0.002
    ip_mh_smi: float = 0.15
    ip_general_chronic: float = 0.10
    ip_general_other: float = 0.015
    ed_general: float = 0.20
    followup_7: float = 0.40  # share of index events followed up within 7 days
    followup_30: float = 0.25  # within 8-30 days; the rest get none
    ip_followup_30: float = 0.70  # general inpatient stays with ambulatory follow-up within 30 days
    sud_in_treatment: float = 0.6  # SUD persons with a county CalOMS episode
    mild_mh_county: float = 0.3  # mild/moderate MH persons also seen by the county
    consent_sud: float = 0.5
    consent_mh: float = 0.2
    consent_revoked: float = 0.06
    consent_error: float = 0.01
    dental_child_use: float = 0.55
    dental_adult_use: float = 0.25
    imm_adherent: float = 0.65  # children on schedule; partial 0.2, sparse 0.1, none the rest
    imm_partial: float = 0.20
    imm_sparse: float = 0.10
    imm_protection_y: float = 0.03  # CAIR sharing lock set
    flu_shot: float = 0.30
    imm_history_years: int = 3  # the first month's registry file back-loads doses this far back


@dataclass(frozen=True)
class SynthConfig:
    noise: NoiseRates = field(default_factory=NoiseRates)
    population: PopulationRates = field(default_factory=PopulationRates)
    clinical: ClinicalRates = field(default_factory=ClinicalRates)
    chunk_size: int = 10_000
