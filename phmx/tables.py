"""The contracts between stages: every table's name, layer and columns, in one module.

Stages read and write tables named here and nowhere else. docs/tables.md is generated from
this module (``python -m phmx.tables``). Column types are Spark SQL DDL types.

Layers:
* ``bronze``: as submitted (every feed column a string; dates normalised to ISO by intake),
  plus lineage. One table per feed (columns from the feed spec in mappings/feeds/) plus
  ``bronze.quarantine`` and ``bronze.submissions``.
* ``silver``: the canonical model, one row per source record, typed, with security labels.
* ``gold``: members (identity resolved), consent decisions, measures.
* ``audit``: the append-only ledger.
* ``work``: per-run intermediates inside the hub (never published), rewritten each run. The fixed
  ones are contracts here; per-run scratch tables (``work.<stage>_<run>_<name>``) hold whatever
  frame a stage materialises and are removed when the run ends.

Each contract is written once, as Spark SQL DDL text; everything else is derived from it: the
engine's schema (:attr:`Table.ddl`), the Arrow schema for writers that bypass the engine
(delta-rs, staged Parquet; :attr:`Table.arrow_schema`) and docs/tables.md.

Direct identifiers (``encrypted=`` on a contract) are stored as AES-256-GCM ciphertexts
(``privacy.crypto``), with a keyed ``pii_fingerprint`` per row; only the identity stage
decrypts them. See docs/encryption-at-rest.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

#: The DDL types a contract may use, and how each maps to Arrow (timestamps are UTC microseconds,
#: as the engine and delta-rs store them). ``array<T>`` of any of them is allowed too.
SCALAR_TYPES: tuple[str, ...] = ("string", "bigint", "int", "double", "boolean", "date", "timestamp")
_ARRAY = re.compile(r"^array<(.+)>$")


def check_type(ddl_type: str) -> str:
    """``ddl_type`` if a contract may use it, else a ValueError naming the allowed types."""
    inner = _ARRAY.match(ddl_type)
    if inner:
        check_type(inner.group(1))
    elif ddl_type not in SCALAR_TYPES:
        raise ValueError(f"unsupported column type {ddl_type!r}: use one of {', '.join(SCALAR_TYPES)} "
                         "or array<...> of one")
    return ddl_type


def arrow_type(ddl_type: str) -> pa.DataType:
    """The Arrow type of a contract's DDL type (the one mapping; see :data:`SCALAR_TYPES`)."""
    import pyarrow as pa

    inner = _ARRAY.match(ddl_type)
    if inner:
        return pa.list_(arrow_type(inner.group(1)))
    scalars: dict[str, pa.DataType] = {
        "string": pa.string(), "bigint": pa.int64(), "int": pa.int32(), "double": pa.float64(),
        "boolean": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"),
    }
    return scalars[check_type(ddl_type)]


@dataclass(frozen=True)
class Table:
    """A table contract: ``layer.name``, its columns (name -> DDL type) and merge keys."""

    layer: str
    name: str
    columns: tuple[tuple[str, str], ...]
    keys: tuple[str, ...] = ()
    doc: str = ""
    #: Columns stored encrypted at rest (direct identifiers; see privacy.crypto).
    encrypted: tuple[str, ...] = ()

    @property
    def fqn(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def ddl(self) -> str:
        return ", ".join(f"{c} {t}" for c, t in self.columns)

    @property
    def arrow_schema(self) -> pa.Schema:
        """The contract as an Arrow schema, for writers that bypass the engine (delta-rs, Parquet)."""
        import pyarrow as pa

        return pa.schema([pa.field(c, arrow_type(t)) for c, t in self.columns])


def _t(layer: str, name: str, cols: str, keys: str = "", doc: str = "", encrypted: str = "") -> Table:
    """A contract from ``"col type, col type"`` text (``;`` stands for a comma inside a type).

    ``encrypted``: space-separated columns stored encrypted at rest (the table then needs a
    ``pii_fingerprint string`` column). Private: contracts are defined in this module only.
    """
    parsed = []
    for part in cols.split(","):
        part = part.strip()
        if part:
            c, t = part.split(None, 1)
            t = t.replace(";", ",")
            try:
                check_type(t)
            except ValueError as exc:
                raise ValueError(f"{layer}.{name}.{c}: {exc}") from None
            parsed.append((c, t))
    enc = tuple(c for c in encrypted.split() if c)
    names = {c for c, _ in parsed}
    unknown = [c for c in enc if c not in names]
    if unknown:
        raise ValueError(f"{layer}.{name}: encrypted column(s) not in the contract: {unknown}")
    if enc and ("pii_fingerprint", "string") not in parsed:
        raise ValueError(f"{layer}.{name}: a table with encrypted columns needs pii_fingerprint string")
    return Table(layer, name, tuple(parsed), tuple(k for k in keys.split() if k), doc, enc)


# Lineage carried by every bronze row (after the feed's own columns).
LINEAGE = _t(
    "bronze",
    "_lineage",
    "submission_id string, submitter string, feed string, period string, source_file string,"
    "source_file_sha256 string, row_number bigint, ingested_at timestamp",
)

SUBMISSIONS = _t(
    "bronze",
    "submissions",
    "submission_id string, submitter string, feed string, period string, source_file string,"
    "source_file_sha256 string, received_at timestamp, status string, rows_landed bigint,"
    "rows_accepted bigint, rows_quarantined bigint, file_errors string, supersedes string,"
    "receipt_uri string, spec_version string",
    keys="submission_id",
    doc="One row per received file. status: accepted / accepted_with_errors / rejected / duplicate.",
)

QUARANTINE = _t(
    "bronze",
    "quarantine",
    "submission_id string, submitter string, feed string, period string, source_file string,"
    "row_number bigint, rule_id string, field string, message string, raw_record string,"
    "quarantined_at timestamp",
    keys="submission_id row_number rule_id field",
    doc="Rejected rows: one row per (row, rule). raw_record stays in the PHI zone, never in receipts.",
)

# ---- silver: the canonical model -------------------------------------------------------
_SILVER_LINEAGE = "submission_id string, period string, row_number bigint"
_LABELS = "security_labels array<string>, sensitivity string"

PERSON = _t(
    "silver",
    "person",
    "source string, source_person_id string, cin string, ssn string, county_client_number string,"
    "given_name string, middle_name string, family_name string, birth_date date, sex string,"
    "address_line string, address_history string, city string, state string, zip string, county_fips string,"
    "phone string, email string, race string, ethnicity string, language string, record_date date,"
    f"submission_id string, period string, row_number bigint, {_LABELS}, pii_fingerprint string",
    keys="source source_person_id",
    doc="A person as one source knows them. source = submitter id; source_person_id is local to it. "
        "address_history: every address line this source has sent for the person (all versions in "
        "bronze, newline-separated, sorted), so identity can tell a move from a different person. "
        "Direct identifiers are ciphertexts (only the identity stage decrypts); pii_fingerprint is a "
        "keyed HMAC of the row key and those identifiers (unchanged rows keep their ciphertexts).",
    encrypted="cin ssn county_client_number given_name middle_name family_name address_line address_history phone email",
)

COVERAGE = _t(
    "silver",
    "coverage",
    "source string, source_person_id string, plan_id string, aid_code string, start_date date,"
    f"end_date date, {_SILVER_LINEAGE}, coverage_type string, maintenance_type string",
    keys="source source_person_id plan_id coverage_type start_date",
    doc="Coverage spans, one per member, plan, coverage type (X12 HD03: HLT health, DEN dental, VIS vision; "
        "empty = health) and start. maintenance_type: the X12 INS03 of the record that last set the span "
        "(024 = terminated, 025 = reinstated).",
)

#: The rows of silver.coverage that are health (medical) coverage: what continuous enrollment means in measures.
COVERAGE_MEDICAL = "coverage_type IS NULL OR coverage_type NOT IN ('DEN', 'VIS')"

ENCOUNTER = _t(
    "silver",
    "encounter",
    "source string, encounter_id string, source_person_id string, setting string,"
    "service_date date, admit_date date, discharge_date date, place_of_service string,"
    "procedure_codes array<string>, diagnosis_codes array<string>, provider_id string,"
    f"plan_id string, {_SILVER_LINEAGE}, {_LABELS}, paid_amount double",
    keys="source encounter_id",
    doc="Medical encounters and claims. setting: ED, IP, OP, RX. paid_amount: what the plan paid for the claim "
        "(US dollars, the sum of its lines; null for encounters without one, e.g. those built from ADT visits).",
)

BH_SERVICE = _t(
    "silver",
    "bh_service",
    "source string, service_id string, source_person_id string, program string, record_type string,"
    "county_fips string, service_date date, end_date date, mode_of_service string,"
    "service_function string, units double, provider_id string, diagnosis_codes array<string>,"
    f"{_SILVER_LINEAGE}, {_LABELS}",
    keys="source service_id",
    doc="County behavioral health: program MH (CSI-like) or SUD (CalOMS-like).",
)

DENTAL_SERVICE = _t(
    "silver",
    "dental_service",
    "source string, service_id string, source_person_id string, service_date date, cdt_code string,"
    f"tooth string, provider_id string, {_SILVER_LINEAGE}, {_LABELS}",
    keys="source service_id",
)

IMMUNIZATION = _t(
    "silver",
    "immunization",
    "source string, immunization_id string, source_person_id string, admin_date date, cvx string,"
    "mvx string, lot string, protection_indicator string, provider_id string,"
    "completion_status string, action_code string, ndc string,"
    f"{_SILVER_LINEAGE}, {_LABELS}",
    keys="source immunization_id",
    doc="Vaccinations as the registry holds them, given or not: completion_status (HL7 table 0322) CP "
        "complete, RE refused, NA not administered, PA partially administered; action_code (table 0323) A "
        "add, U update, D deleted by the sender. Only rows matching IMMUNIZATION_GIVEN are doses given.",
)

#: The rows of silver.immunization that are doses given (Spark SQL): complete and not deleted. Refusals,
#: doses not or partly administered and deletions stay in silver with their status but count nowhere.
IMMUNIZATION_GIVEN = "coalesce(completion_status, 'CP') = 'CP' AND coalesce(action_code, 'A') <> 'D'"

ADT_EVENT = _t(
    "silver",
    "adt_event",
    "source string, event_id string, source_person_id string, visit_number string, event_type string,"
    "event_date date, patient_class string, admit_date date, discharge_date date, discharge_disposition string,"
    f"facility string, diagnosis_codes array<string>, {_SILVER_LINEAGE}, {_LABELS}",
    keys="source event_id",
    doc="Admission, discharge and registration events from hospitals' HL7 v2 ADT feeds: event_type A01 admit, "
        "A03 discharge, A04 register (outpatient/ED), A08 update; patient_class (PV1-2) I inpatient, E "
        "emergency, O outpatient. Each visit (visit_number) also becomes one silver.encounter (setting IP, ED or "
        "OP, admit and discharge dates from its latest events), which the transitional-care and follow-up "
        "measures read.",
)

# ECM data exchange (Enhanced Care Management): the plan's assignments and the ECM providers'
# returns. source = the submitter; source_person_id = the plan's member id (assignments) or the
# member's CIN (the providers' files), both linked to gold.member by identity like any person record.
_ECM = "plan_id string, provider_npi string"

ECM_ASSIGNMENT = _t(
    "silver",
    "ecm_assignment",
    "source string, assignment_id string, source_person_id string, plan_id string, provider_npi string,"
    "populations_of_focus array<string>, referral_date date, authorization_start date, authorization_end date,"
    f"end_reason string, {_SILVER_LINEAGE}, {_LABELS}",
    keys="source assignment_id",
    doc="A plan's ECM authorization and assignment of a member to an ECM provider (feed "
    "ecm_member_information, after DHCS's member information file): the provider by NPI, the populations of "
    "focus (value set ecm_population_of_focus), the authorization span [authorization_start, authorization_end] "
    "and why it ended (ecm_end_reason). assignment_id = member id|NPI|start.",
)

ECM_CARE_PLAN = _t(
    "silver",
    "ecm_care_plan",
    f"source string, source_person_id string, {_ECM}, status_date date, benefit_status string,"
    "enrollment_date date, assessment_date date, care_plan_date date, care_plan_review_date date,"
    "lead_care_manager_id string, lead_care_manager_start date, end_date date, end_reason string,"
    f"{_SILVER_LINEAGE}, {_LABELS}",
    keys="source source_person_id plan_id status_date",
    doc="The ECM provider's status of an assigned member on status_date (feed ecm_return_transmission, after "
    "DHCS's return transmission file): benefit status (PENDING, ENROLLED, DECLINED, UNREACHABLE, "
    "DISCONTINUED), enrollment, comprehensive assessment and care plan dates, lead care manager, end date "
    "and reason. Every status row is kept: a month reads the latest row on or before its last day.",
)

ECM_OUTREACH = _t(
    "silver",
    "ecm_outreach",
    f"source string, outreach_id string, source_person_id string, {_ECM}, attempt_date date, method string,"
    f"outcome string, {_SILVER_LINEAGE}, {_LABELS}",
    keys="source outreach_id",
    doc="One outreach attempt by an ECM provider (feed ecm_outreach): method (ecm_outreach_method) and "
    "outcome (ecm_outreach_outcome; CONTACT_* = successful). MAIL is kept but is not an attempt in the "
    "metrics (DHCS counts only communication the member can answer directly).",
)

ECM_SERVICE = _t(
    "silver",
    "ecm_service",
    f"source string, service_id string, source_person_id string, {_ECM}, service_date date, core_service string,"
    "contact_mode string, minutes int, lead_care_manager_id string, hcpcs string, hcpcs_modifier string,"
    f"{_SILVER_LINEAGE}, {_LABELS}",
    keys="source service_id",
    doc="One ECM service delivered (feed ecm_services), by core service (value set ecm_core_service: the "
    "seven DHCS core services).",
)

CS_REFERRAL = _t(
    "silver",
    "cs_referral",
    f"source string, referral_id string, source_person_id string, {_ECM}, cs_service string,"
    "cs_provider_id string, referral_date date, status string, accepted_date date, delivered_date date,"
    f"closed_date date, close_reason string, {_SILVER_LINEAGE}, {_LABELS}",
    keys="source referral_id",
    doc="A Community Supports referral by an ECM provider (feed cs_referrals) with its closed-loop milestones "
    "gathered from every status update: status is the furthest reached (MADE < ACCEPTED < DELIVERED/CLOSED); "
    "the loop is closed when status is DELIVERED or CLOSED. provider_npi is the referring ECM provider.",
)

MEDICATION = _t(
    "silver",
    "medication",
    "source string, rx_claim_id string, source_person_id string, fill_date date, ndc string,"
    f"days_supply int, quantity double, prescriber_id string, plan_id string, {_SILVER_LINEAGE}, {_LABELS}",
    keys="source rx_claim_id",
)

SOCIAL_OBSERVATION = _t(
    "silver",
    "social_observation",
    "source string, observation_id string, source_person_id string, category string,"
    "code_system string, code string, observation_date date,"
    f"{_SILVER_LINEAGE}, {_LABELS}",
    keys="source observation_id",
    doc="Social needs a submitter recorded about a person on a date (category homelessness: a "
    "CalOMS ZIP of 00000, a CSI periodic living arrangement of 07). Carries the submitter's "
    "labels: a CalOMS observation reveals SUD treatment, so it is a Part 2 record.",
)

# FHIR clinical resources. Codes keep their system: ``codings`` holds every coding the sender
# gave as a FHIR token ``<system>|<code>`` (SNOMED CT http://snomed.info/sct, ICD-10-CM
# http://hl7.org/fhir/sid/icd-10-cm, LOINC http://loinc.org, CPT http://www.ama-assn.org/go/cpt,
# NDC http://hl7.org/fhir/sid/ndc, RxNorm, CVX, ...); columns named for one system (``icd10_code``,
# ``loinc_code``, ``ndc``) are that system's code when the sender gave one, else null.
_CODINGS = "codings array<string>"

ENCOUNTER_CODING = _t(
    "silver",
    "encounter_coding",
    "source string, encounter_id string, source_person_id string, service_date date,"
    f"reason_codings array<string>, type_codings array<string>, {_SILVER_LINEAGE}, {_LABELS}",
    keys="source encounter_id",
    doc="Every coding of a FHIR Encounter's reasonCode and type, in any code system, as <system>|<code> "
    "tokens. silver.encounter keeps only ICD-10-CM diagnoses and CPT/HCPCS types; an encounter coded in "
    "SNOMED CT keeps its codes here instead of losing them. Same source and encounter_id as silver.encounter.",
)

CONDITION = _t(
    "silver",
    "condition",
    "source string, condition_id string, source_person_id string, encounter_id string,"
    f"clinical_status string, verification_status string, category string, {_CODINGS},"
    "icd10_code string, snomed_code string, diagnosis_codes array<string>, onset_date date,"
    f"abatement_date date, recorded_date date, {_SILVER_LINEAGE}, {_LABELS}",
    keys="source condition_id",
    doc="Problems and diagnoses (FHIR Condition). diagnosis_codes holds the ICD-10-CM code without the dot "
    "(what the security labels and measures read); SNOMED CT-only conditions keep their code in "
    "codings/snomed_code and carry no diagnosis-based label.",
)

OBSERVATION = _t(
    "silver",
    "observation",
    "source string, observation_id string, source_person_id string, encounter_id string, status string,"
    f"category string, {_CODINGS}, loinc_code string, effective_date date, value_num double,"
    "value_unit string, value_code string, value_text string,"
    "components array<string>,"
    f"{_SILVER_LINEAGE}, {_LABELS}",
    keys="source observation_id",
    doc="Vital signs, labs and screening scores (FHIR Observation): the value as a number with its UCUM "
    "unit, a coded value as a token, or text; blood pressure's systolic (LOINC 8480-6) and diastolic "
    "(8462-4) readings and other panel parts as components, each a JSON object {code (a token), value, unit, "
    "value_code}: from_json(c, 'struct<code:string,value:double,unit:string,value_code:string>'). E.g. BMI 39156-5, HbA1c "
    "4548-4, PHQ-2 55758-7, PHQ-9 44261-6.",
)

PROCEDURE = _t(
    "silver",
    "procedure",
    "source string, procedure_id string, source_person_id string, encounter_id string, status string,"
    f"{_CODINGS}, cpt_code string, snomed_code string, performed_date date, {_SILVER_LINEAGE}, {_LABELS}",
    keys="source procedure_id",
    doc="Procedures performed (FHIR Procedure), CPT/HCPCS or SNOMED CT coded.",
)

MEDICATION_EVENT = _t(
    "silver",
    "medication_event",
    "source string, medication_event_id string, source_person_id string, kind string, status string,"
    f"event_date date, {_CODINGS}, ndc string, rxnorm_code string, quantity double, days_supply int,"
    f"prescriber_id string, {_SILVER_LINEAGE}, {_LABELS}",
    keys="source medication_event_id",
    doc="Medications dispensed (kind dispense: FHIR MedicationDispense, event_date whenHandedOver) or "
    "prescribed (kind request: FHIR MedicationRequest, event_date authoredOn). medication_event_id is "
    "<ResourceType>/<id>. Dispenses with an NDC also reach silver.medication, which the measures read.",
)

# Consent records: written by the consent registry (consent/registry.py).
CONSENT = _t(
    "silver",
    "consent",
    "consent_id string, version int, source string, source_person_id string, grantor string,"
    "status string, period_start timestamp, period_end timestamp, recorded_at timestamp,"
    "provisions string, submission_id string, period string, row_number bigint,"
    "revoked_at timestamp, source_format string, policy string, content_sha256 string",
    keys="consent_id version",
    doc="Every version of every consent (history kept). status: active / inactive / rejected / "
    "entered-in-error. provisions: the normalised provision tree as JSON (a list of nodes with "
    "their path, effect and effective constraints). revoked_at: when a revocation took effect.",
)

# ---- gold --------------------------------------------------------------------------------
MEMBER_XWALK = _t(
    "gold",
    "member_xwalk",
    "source string, source_person_id string, member_id string, link_method string,"
    "link_probability double, run_id string, linked_at timestamp",
    keys="source source_person_id",
    doc="Which member each source person record belongs to. member_id is stable across runs.",
)

MEMBER = _t(
    "gold",
    "member",
    "member_id string, cin string, given_name string, family_name string, birth_date date,"
    "sex string, zip string, county_fips string, lhj string, race string, ethnicity string,"
    "source_count int, run_id string, pii_fingerprint string",
    keys="member_id",
    doc="The golden record per member (survivorship rules in jobs/identity). cin and the names are "
        "ciphertexts; stages other than identity use the other columns.",
    encrypted="cin given_name family_name",
)

# ---- identity (jobs/identity) -----------------------------------------------------------
LINK_PAIRS = _t(
    "gold",
    "link_pairs",
    "pair_id string, source_l string, source_person_id_l string, source_r string, source_person_id_r string,"
    "match_weight double, match_probability double, decision string, reason string, gamma string,"
    "blocking_rule string, run_id string, scored_at timestamp",
    keys="pair_id",
    doc="Scored candidate pairs at or above the review threshold. decision: linked (same member), "
        "review (probability in the review band), guard_refused (scored as a link, kept apart by a "
        "guard; reason names it). gamma: the comparison levels, comparison=level, comma-separated.",
)

REVIEW_QUEUE = _t(
    "gold",
    "review_queue",
    "pair_id string, source_l string, source_person_id_l string, source_r string,"
    "source_person_id_r string, match_weight double, match_probability double, gamma string,"
    "reason string, status string, run_id string, queued_at timestamp",
    keys="pair_id",
    doc="Possible matches for clerical review (probability in the review band, or a strong "
        "link refused by a guard). status: open / decided.",
)

REVIEW_DECISIONS = _t(
    "gold",
    "review_decisions",
    "pair_id string, source_l string, source_person_id_l string, source_r string,"
    "source_person_id_r string, decision string, reviewer string, note string,"
    "decided_at timestamp",
    keys="pair_id",
    doc="A reviewer's accept (same person) / reject (different people) per pair; later runs "
        "force-link accepted pairs and never link rejected pairs.",
)

IDENTITY_EVENTS = _t(
    "gold",
    "identity_events",
    "event_id string, event_type string, member_id string, other_member_id string,"
    "records bigint, run_id string, recorded_at timestamp",
    keys="event_id",
    doc="Member id changes: new (a member created), merge (other_member_id absorbed into "
        "member_id, the oldest id survives), split (records of member_id moved to a new "
        "other_member_id), retire (an id left without records).",
)

IDENTITY_RECORDS = _t(
    "gold",
    "identity_records",
    "source string, source_person_id string, rid bigint, fingerprint bigint, run_id string",
    keys="source source_person_id",
    doc="The identity stage's memory of the record versions it last linked (a 64-bit hash of the "
        "standardised identifying fields, computed after decryption), so incremental runs score "
        "only new and changed records.",
)

IDENTITY_INDEX = _t(
    "gold",
    "identity_index",
    "source string, source_person_id string, rid bigint, source_fp string, fingerprint bigint, digest string,"
    "bk array<string>, tf_keys array<string>, features string, run_id string, pii_fingerprint string",
    keys="source source_person_id",
    doc="The identity stage's encrypted index (jobs/identity/index.py), one row per linked source record: "
        "source_fp detects a changed silver.person row without decrypting it; bk holds each blocking "
        "rule's key and tf_keys each name's term-frequency key as keyed HMACs (in the settings' order) (equality only); features "
        "is the standardised feature row, encrypted. An incremental run decrypts only the rows its new "
        "records share a block or a member with.",
    encrypted="features",
)

CONSENT_DECISION = _t(
    "gold",
    "consent_decision",
    "member_id string, data_class string, purpose string, recipient string, decision string,"
    "rule_ids array<string>, consent_ids array<string>, valid_from timestamp, valid_to timestamp,"
    "policy_version string, run_id string, decided_at timestamp",
    keys="member_id data_class purpose recipient valid_from",
    doc="permit / deny / permit_deidentified per (member, data class, purpose, recipient) for the "
    "interval [valid_from, valid_to) (valid_to null = open); one row per interval, with the rules "
    "and consents behind it.",
)

LEDGER = _t(
    "audit",
    "ledger",
    "seq bigint, entry_type string, recorded_at timestamp, run_id string, payload string,"
    "prev_hash string, entry_hash string",
    keys="seq",
    doc="Append-only, hash-chained. Entries: decision_batch, disclosure, checkpoint.",
)

# ---- measures (jobs/measures) -------------------------------------------------------------
MEASURE_EVENT = _t(
    "gold",
    "measure_event",
    "measure_id string, period string, member_id string, unit_id string, anchor_date date,"
    "in_denominator boolean, in_numerator boolean, exclusion_reason string, numerator_date date,"
    "numerator_source string, age_on_anchor int, lhj string, age_band string, sex string,"
    "race_ethnicity string, plan_id string, security_labels array<string>, sensitivity string,"
    "run_id string",
    keys="measure_id period unit_id",
    doc="One row per measure denominator unit (an ED visit, a discharge, a member-year). "
        "period: 'YYYY' (measurement year) or 'R12-YYYY-MM' (12 months ending that month). "
        "Rows with in_denominator false carry the exclusion_reason. security_labels: the labels of "
        "the index event and of the evidence that met the numerator; sensitivity sud > mh > general "
        "(never below the measure's own). Stratifiers: lhj, age_band, sex, race_ethnicity, plan_id "
        "(on the anchor date, or 'none').",
)

MEMBER_RISK = _t(
    "gold",
    "member_risk",
    "member_id string, period string, as_of date, risk_tier string, points int,"
    "utilization_points int, chronic_points int, behavioral_points int, social_points int,"
    "ed_visits int, unplanned_admissions int, chronic_conditions array<string>, smi boolean,"
    "sud boolean, homeless boolean, ecm_homeless boolean, ecm_high_utilizer boolean,"
    "ecm_smi_sud boolean, plan_id string, lhj string, security_labels array<string>,"
    "sensitivity string, run_id string",
    keys="member_id period",
    doc="Risk tier (high / rising / low) from the transparent points model in "
        "mappings/measures/risk.yaml over the 12 months ending as_of, with every component and "
        "the ECM population-of-focus flags. security_labels: of the evidence behind the flags. "
        "period: R12-YYYY-MM for a monthly run or a run over all data (the 12 months ending that month, "
        "never year to date), YYYY for a yearly run; the R12 rows month after month are the tier history "
        "(gold.risk_transition).",
)

RISK_TRANSITION = _t(
    "gold",
    "risk_transition",
    "month string, horizon_months int, from_tier string, members bigint, to_high bigint, to_rising bigint,"
    "to_low bigint, left_tier bigint, share_left double, run_id string",
    keys="month horizon_months from_tier",
    doc="How members move between risk tiers: of the members in from_tier for the rolling 12 months ending "
    "month (gold.member_risk period R12-<month>) who have a tier horizon_months (1, 5, 12) later, how many "
    "are in each tier then, how many left from_tier and the share that left. Rebuilt from the whole tier "
    "history after every risk run.",
)

# ---- population indicators (jobs/indicators) ----------------------------------------------
MEMBER_MONTH = _t(
    "gold",
    "member_month",
    "member_id string, month date, lhj string, county string, zip string, age int, age_group string,"
    "age_band string, age_cut int, sex string, race_ethnicity string, language string, plan_count int,"
    "run_id string",
    keys="member_id month",
    doc="One row per member and calendar month with medical coverage on at least one day, from every "
    "plan's coverage spans merged per gold member (two plans covering one month count once). Where the "
    "member lived that month: the latest person record dated on or before the month's end (the earliest "
    "if none), so a move mid-year splits the member-months between LHJs. lhj: the city LHJ (Berkeley, "
    "Long Beach, Pasadena) for its ZIPs, else the county; zip 'unknown' when none. age: on the month's "
    "first day; age_group: the NCHS 2000 standard's 11 groups; age_cut: the catalogue's age cut the age "
    "falls in (mappings/indicators). plan_count: plans covering the member in the month.",
)

INDICATOR_DENOMINATOR = _t(
    "gold",
    "indicator_denominator",
    "period string, grain string, lhj string, zip string, age_band string, sex string, race_ethnicity string,"
    "language string, members bigint, member_months bigint, run_id string",
    keys="period lhj zip age_band sex race_ethnicity language",
    doc="Medi-Cal members and member-months by LHJ x ZIP x age band x sex x race/ethnicity x preferred "
    "language, per month ('YYYY-MM'), quarter ('YYYY-Qn') and year ('YYYY'); grain names which. members: "
    "distinct gold members with a member-month in the cell (one member who moved or changed age band in "
    "a quarter or year is in each cell they were in, so members do not add up across cells; "
    "member_months do). Internal (unsuppressed).",
)

INDICATOR_STRATA = _t(
    "gold",
    "indicator_strata",
    "indicator_id string, period string, lhj string, age_group string, stratifier string, stratum string,"
    "numerator bigint, denominator bigint, sensitivity string, run_id string",
    keys="indicator_id period lhj age_group stratifier stratum",
    doc="Each indicator's numerator and denominator by LHJ x NCHS age group, for the total (stratifier and "
    "stratum 'all') and by each stratifier on its own (age_band, sex, race_ethnicity, language, zip) "
    "(jobs/indicators, mappings/indicators/indicators.yaml). Prevalence: period 'YYYY', numerator members "
    "with the condition, denominator members enrolled at least the indicator's months that year "
    "(attributes of their last enrolled month). Utilization: numerator events, denominator member-months; "
    "the total by month ('YYYY-MM'), the stratifiers by year ('YYYY'). Only the indicator's ages count, "
    "and only rows with a denominator are written. The state, quarters and the total's year are sums of "
    "these rows (jobs.indicators.cells.strata_from_table). Internal (unsuppressed).",
)

INDICATOR_RATE = _t(
    "gold",
    "indicator_rate",
    "indicator_id string, period string, lhj string, stratifier string, stratum string, numerator bigint,"
    "denominator bigint, rate_type string, rate double, ci_low double, ci_high double, per int,"
    "state_rate double, state_ci_low double, state_ci_high double, age_groups_missing int, sensitivity string,"
    "run_id string",
    keys="indicator_id period lhj stratifier stratum rate_type",
    doc="Crude and age-adjusted (direct, 2000 U.S. standard population, NCHS 11 groups) rates per `per` "
    "(100 members or 1,000 member-months) with 95% gamma intervals (Fay-Feuer 1997), for every LHJ and the "
    "state (lhj = California) by period (months, quarters, the year), stratifier and stratum; the state's "
    "rate of the same type, period, stratifier and stratum beside each LHJ's. Age-adjusted rows are not "
    "given for the age_band stratifier. age_groups_missing: standard age groups the indicator covers that "
    "have no population in the cell. Internal (unsuppressed): the LHJ feed suppresses before publishing.",
)

# ---- ECM (jobs/ecm) -------------------------------------------------------------------------
ECM_MEMBER_MONTH = _t(
    "gold",
    "ecm_member_month",
    "member_id string, provider_npi string, plan_id string, month string, assignment_id string,"
    "populations_of_focus array<string>, authorization_start date, authorization_end date, enrollment_date date,"
    "end_date date, care_plan_date date, lead_care_manager_id string, engaged boolean, outreach_attempts int,"
    "successful_outreach int, services int, run_id string",
    keys="member_id provider_npi plan_id month",
    doc="One row per member, ECM provider, plan and month (YYYY-MM) in which the member was authorized for ECM "
    "with that provider: whether they were engaged (enrolled on or before the month's last day and not ended "
    "before its first), the month's counted outreach attempts (letters excluded), successful ones and ECM "
    "services. The members behind each line of gold.ecm_provider_month and of a payment statement.",
)

ECM_PROVIDER_MONTH = _t(
    "gold",
    "ecm_provider_month",
    "provider_npi string, plan_id string, month string, metric_id string, family string, numerator double,"
    "denominator double, value double, run_id string",
    keys="provider_npi plan_id month metric_id",
    doc="Every ECM metric of mappings/ecm/metrics.yaml per ECM provider (NPI), plan and month: numerator, "
    "denominator (null for counts) and value (numerator / denominator, null when the denominator is 0; the "
    "numerator for counts). metric_id <id>:<code> splits a metric by a value set's codes (outreach method, "
    "core service). Every provider, plan and month with an authorized member has every metric, zeros included.",
)

ECM_STATEMENT_LINE = _t(
    "gold",
    "ecm_statement_line",
    "contract_id string, plan_id string, provider_npi string, month string, line_id string, description string,"
    "quantity double, rate double, amount double, run_id string",
    keys="contract_id provider_npi month line_id",
    doc="A monthly ECM payment statement per value-based contract (mappings/ecm/contracts), provider NPI and "
    "month: line_id PMPM (engaged member-months x rate), OUTREACH (paid attempts x rate), QUALITY:<metric> "
    "(quantity: the metric's value; rate: the share of the PMPM amount earned), TOTAL. Reproducible from "
    "gold.ecm_member_month, gold.ecm_provider_month and the contract.",
)

ECM_STATEMENT_MEMBER = _t(
    "gold",
    "ecm_statement_member",
    "contract_id string, plan_id string, provider_npi string, month string, line_id string, member_id string,"
    "units double, amount double, run_id string",
    keys="contract_id provider_npi month line_id member_id",
    doc="The members behind each PMPM and OUTREACH statement line (units: member-months or paid attempts), for "
    "the paying plan only. Their amounts add up to the line's.",
)

ECM_POPULATION_FLAG = _t(
    "gold",
    "ecm_population_flag",
    "member_id string, period string, as_of date, population string, evidence string,"
    "security_labels array<string>, sensitivity string, run_id string",
    keys="member_id period population",
    doc="The ECM populations of focus the hub's data show for a member over the rolling 12 months ending as_of "
    "(period R12-YYYY-MM, as gold.member_risk): one row per member and population (codes of value set "
    "ecm_population_of_focus), rules and DHCS sources in mappings/ecm/populations.yaml. evidence: the inputs "
    "that showed it; security_labels: theirs (an SUD flag carries the Part 2 labels of its evidence).",
)

DISCLOSURE_MEMBER = _t(
    "audit",
    "disclosure_member",
    "seq bigint, member_id string, data_class string, rule_ids array<string>, consent_ids array<string>",
    keys="seq member_id data_class",
    doc="Which members' data of which class went out in the disclosure recorded at ledger entry "
    "seq. The ledger entry pins a SHA-256 digest of these rows, so they are tamper-evident too.",
)

# ---- publish (jobs/publish) --------------------------------------------------------------
FEED_LOG = _t(
    "gold",
    "feed_log",
    "recipient string, feed string, period string, version int, uri string, run_id string,"
    "published_at timestamp, files int, bytes bigint, manifest_sha256 string, key_id string,"
    "ledger_seq bigint, cells int, suppressed_cells int, members int, status string",
    keys="recipient feed period version",
    doc="One row per package delivered. status: published (a new version), or unchanged (the run's "
        "package equalled this version, already published: no new version, no disclosure).",
)

FEED_CELLS = _t(
    "work",
    "publish_cells",
    "run_id string, lhj string, measure_id string, period string, stratifier string, stratum string,"
    "numerator bigint, denominator bigint, sensitivity string, sensitive boolean",
    keys="run_id lhj measure_id period stratifier stratum",
    doc="Unsuppressed cell counts for every LHJ (and the state, lhj = California), written by the "
    "prepare step; suppressed per recipient when packaged. Internal.",
)

FEED_MEMBERS = _t(
    "work",
    "publish_members",
    "run_id string, recipient string, member_id string, data_class string, rule_ids array<string>,"
    "consent_ids array<string>",
    keys="run_id recipient member_id data_class",
    doc="Members counted in each LHJ feed, by data class, with the rules that permitted it (for "
    "the ledger's disclosure entry). Internal.",
)


FEED_SERVICE_COUNTS = _t(
    "work",
    "publish_service_counts",
    "run_id string, lhj string, month string, source_kind string, members bigint",
    keys="run_id lhj month source_kind",
    doc="Distinct members with a service, per LHJ, month and source kind (unsuppressed). Internal.",
)

FEED_DECISIONS = _t(
    "work",
    "publish_lhj_decisions",
    "member_id string, data_class string, purpose string, recipient string, decision string,"
    "rule_ids array<string>, consent_ids array<string>, valid_from timestamp, valid_to timestamp,"
    "policy_version string, run_id string, decided_at timestamp",
    keys="member_id data_class purpose recipient valid_from",
    doc="Each member's PUBHLTH decisions toward their own LHJ (recipient relabelled to the stand-in id), "
    "materialised once per run so the several LHJ frames reuse them. Internal.",
)


ALL: tuple[Table, ...] = (
    SUBMISSIONS,
    QUARANTINE,
    PERSON,
    COVERAGE,
    ENCOUNTER,
    ADT_EVENT,
    ECM_ASSIGNMENT,
    ECM_CARE_PLAN,
    ECM_OUTREACH,
    ECM_SERVICE,
    CS_REFERRAL,
    BH_SERVICE,
    DENTAL_SERVICE,
    IMMUNIZATION,
    MEDICATION,
    SOCIAL_OBSERVATION,
    ENCOUNTER_CODING,
    CONDITION,
    OBSERVATION,
    PROCEDURE,
    MEDICATION_EVENT,
    CONSENT,
    MEMBER_XWALK,
    MEMBER,
    LINK_PAIRS,
    REVIEW_QUEUE,
    REVIEW_DECISIONS,
    IDENTITY_EVENTS,
    IDENTITY_RECORDS,
    IDENTITY_INDEX,
    CONSENT_DECISION,
    MEASURE_EVENT,
    MEMBER_RISK,
    RISK_TRANSITION,
    MEMBER_MONTH,
    INDICATOR_DENOMINATOR,
    INDICATOR_STRATA,
    INDICATOR_RATE,
    ECM_MEMBER_MONTH,
    ECM_PROVIDER_MONTH,
    ECM_STATEMENT_LINE,
    ECM_STATEMENT_MEMBER,
    ECM_POPULATION_FLAG,
    LEDGER,
    DISCLOSURE_MEMBER,
    FEED_LOG,
    FEED_CELLS,
    FEED_MEMBERS,
    FEED_SERVICE_COUNTS,
    FEED_DECISIONS,
)

SILVER_EVENT_TABLES: tuple[Table, ...] = (ENCOUNTER, BH_SERVICE, DENTAL_SERVICE, IMMUNIZATION, MEDICATION)


def by_fqn(fqn: str) -> Table:
    for t in ALL:
        if t.fqn == fqn:
            return t
    raise KeyError(fqn)


def _note(t: Table, column: str) -> str:
    if column in t.encrypted:
        return "**encrypted at rest**"
    if column == "pii_fingerprint" and t.encrypted:
        return "keyed HMAC of the row key and its encrypted columns"
    return ""


def encrypted_columns() -> dict[str, tuple[str, ...]]:
    """``layer.name`` -> the columns stored encrypted at rest, for every contract that has some."""
    return {t.fqn: t.encrypted for t in ALL if t.encrypted}


def markdown() -> str:
    """The table contracts as Markdown (docs/tables.md)."""
    out = ["# Table contracts", "", "Audience: anyone writing a stage or reading the lakehouse.",
           "Generated from `phmx/tables.py` by `python -m phmx.tables`; do not edit by hand.", ""]
    out += ["Every bronze feed table carries its feed's columns (all strings) plus lineage: "
            + ", ".join(f"`{c}`" for c in LINEAGE.column_names) + ".", ""]
    out += ["Columns marked **encrypted at rest** hold AES-256-GCM ciphertexts (`enc1.<dek id>.<base64>`), "
            "not values: only the identity stage decrypts them (docs/encryption-at-rest.md). Every other "
            "column can be queried as usual.", ""]
    out += ["Layers: `bronze` as submitted, `silver` the canonical model, `gold` resolved members, consent "
            "decisions, measures and the feed log, `audit` the ledger, `work` per-run intermediates that "
            "never leave the hub. Besides the `work` tables below, stages write per-run scratch tables "
            "(`work.<stage>_<run>_<name>`) that hold whatever a step materialises and are removed with "
            "the run.", ""]
    out += ["Column types are Spark SQL types; writers that bypass the engine (delta-rs, staged Parquet) "
            "use the Arrow schema derived from the same definition (`Table.arrow_schema`):", "",
            "| type | Arrow |", "|---|---|"]
    out += [f"| {ty} | {arrow_type(ty)} |" for ty in SCALAR_TYPES]
    out += ["| array<T> | list<T> |", ""]
    out += ["Tables: " + ", ".join(f"[{t.fqn}](#{t.fqn.replace('.', '')})" for t in ALL) + ".", ""]
    for t in ALL:
        out += [f"## {t.fqn}", "", t.doc or "", "", f"Merge keys: {', '.join(t.keys) or '(append only)'}", ""]
        if t.encrypted:
            out += ["Encrypted at rest: " + ", ".join(f"`{c}`" for c in t.encrypted) + ".", ""]
        out += ["| column | type | note |", "|---|---|---|"]
        out += [f"| {c} | {ty} | {_note(t, c)} |" for c, ty in t.columns]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    sys.stdout.write(markdown() + "\n")
