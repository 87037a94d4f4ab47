"""Table-driven policy matrix: one row per rule and per edge, all decided in one engine run.

Each case gets its own synthetic member and consents; the engine decides every case at once
(joins on the engine), then each case reads the decision in force at its own time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from consent import decision_engine
from consent.disclosure_policy import load_policy

T = datetime(2025, 6, 1, 12, 0, 0)
COUNTY = "county_06001_bh"
A, B, LHJ, RES = "mcp_alpha", "mcp_beta", "lhj_alameda", "research_uc"
ADULT = date(1980, 3, 1)


def node(effect="permit", purposes=(), recipients=(), classes=(), path="0", depth=0, start=None, end=None):
    return {"path": path, "parent": None, "depth": depth, "effect": effect, "purposes": list(purposes),
            "recipients": list(recipients), "data_classes": list(classes), "period_start": start, "period_end": end}


TPO = ("TREAT", "HPAYMT", "HOPERAT")
SUD_TPO_A = [node(purposes=TPO, recipients=(A,), classes=("SUD",))]


@dataclass
class C:
    """One consent version."""

    id: str
    nodes: list[dict]
    version: int = 1
    status: str = "active"
    start: datetime = datetime(2024, 1, 1)
    end: datetime | None = None
    recorded: datetime = datetime(2024, 1, 2)
    revoked: datetime | None = None
    grantor: str = "self"


@dataclass
class Case:
    name: str
    data_class: str
    purpose: str
    recipient: str
    expect: str
    rules: tuple[str, ...] = ()
    consents: list[C] = field(default_factory=list)
    expect_consents: tuple[str, ...] | None = None
    birth: date = ADULT
    at: datetime = T


CASES = [
    Case("general_tpo_without_consent", "GENERAL", "TREAT", A, "permit", ("HIPAA-164.506-TPO",)),
    Case("general_research_denied_by_default", "GENERAL", "HRESCH", RES, "deny", ("DEFAULT-DENY",)),
    Case("sud_without_consent", "SUD", "TREAT", A, "deny", ("PART2-2.31-CONSENT-REQUIRED",), expect_consents=()),
    Case("sud_single_tpo_consent_payment", "SUD", "HPAYMT", A, "permit",
         ("PART2-2.31-WRITTEN-CONSENT", "PART2-2.32-NOTICE", "PART2-2.33B-TPO-REDISCLOSURE"),
         [C("k1", SUD_TPO_A)], ("k1",)),
    Case("sud_consent_names_other_recipient", "SUD", "TREAT", B, "deny", ("PART2-2.31-CONSENT-REQUIRED",),
         [C("k1", SUD_TPO_A)]),
    Case("sud_consent_all_treating_role", "SUD", "TREAT", B, "permit", ("PART2-2.31-WRITTEN-CONSENT",),
         [C("k1", [node(purposes=TPO, recipients=("role:treating",), classes=("SUD",))])], ("k1",)),
    Case("sud_purpose_not_covered", "SUD", "HRESCH", A, "deny", ("PART2-2.31-CONSENT-REQUIRED",), [C("k1", SUD_TPO_A)]),
    Case("revoked_one_second_before", "SUD", "TREAT", A, "deny", ("CONSENT-REVOKED", "PART2-2.31-CONSENT-REQUIRED"),
         [C("k1", SUD_TPO_A), C("k1", SUD_TPO_A, version=2, status="inactive", recorded=datetime(2025, 7, 1),
                                revoked=T - timedelta(seconds=1))], ("k1",)),
    Case("revoked_one_second_after", "SUD", "TREAT", A, "permit", ("PART2-2.31-WRITTEN-CONSENT",),
         [C("k1", SUD_TPO_A), C("k1", SUD_TPO_A, version=2, status="inactive", recorded=datetime(2025, 7, 1),
                                revoked=T + timedelta(seconds=1))], ("k1",)),
    Case("expired_consent", "SUD", "TREAT", A, "deny", ("CONSENT-EXPIRED", "PART2-2.31-CONSENT-REQUIRED"),
         [C("k1", SUD_TPO_A, end=datetime(2025, 1, 1))], ("k1",)),
    Case("consent_signed_after_disclosure", "SUD", "TREAT", A, "deny", ("PART2-2.31-CONSENT-REQUIRED",),
         [C("k1", SUD_TPO_A, start=T + timedelta(days=1), recorded=T + timedelta(days=1))]),
    Case("entered_in_error_ignored", "SUD", "TREAT", A, "deny", ("PART2-2.31-CONSENT-REQUIRED",),
         [C("k1", SUD_TPO_A), C("k1", SUD_TPO_A, version=2, status="entered-in-error", recorded=datetime(2024, 3, 1))], ()),
    Case("minor_self_consent", "SUD", "TREAT", A, "permit", ("PART2-2.31-WRITTEN-CONSENT",),
         [C("k1", SUD_TPO_A, grantor="minor_self")], ("k1",), birth=date(2010, 1, 1)),
    Case("guardian_consent_for_minor_who_consented_alone", "SUD", "TREAT", A, "deny",
         ("CA-MINOR-SELF-CONSENT", "PART2-2.31-CONSENT-REQUIRED"), [C("k1", SUD_TPO_A, grantor="guardian")], ("k1",),
         birth=date(2010, 1, 1)),
    Case("guardian_consent_for_child_under_12", "SUD", "TREAT", A, "permit", ("PART2-2.31-WRITTEN-CONSENT",),
         [C("k1", SUD_TPO_A, grantor="guardian")], ("k1",), birth=date(2016, 1, 1)),
    Case("guardian_consent_general_class_for_minor", "HIV", "HPAYMT", A, "permit", ("HIPAA-164.508-AUTHORIZATION",),
         [C("k1", [node(purposes=("HPAYMT",), recipients=(A,), classes=("HIV",))], grantor="guardian")], ("k1",),
         birth=date(2010, 1, 1)),
    Case("nested_deny_inside_permit_denies", "SUD", "HOPERAT", A, "deny", ("CONSENT-DIRECTIVE-DENY",),
         [C("k1", [node(purposes=TPO, recipients=(A,), classes=("SUD",)),
                   node("deny", TPO and ("HOPERAT",), (A,), ("SUD",), path="0.0", depth=1)])], ("k1",)),
    Case("nested_deny_inside_permit_parent_still_permits", "SUD", "TREAT", A, "permit", ("PART2-2.31-WRITTEN-CONSENT",),
         [C("k1", [node(purposes=TPO, recipients=(A,), classes=("SUD",)),
                   node("deny", ("HOPERAT",), (A,), ("SUD",), path="0.0", depth=1)])], ("k1",)),
    Case("deny_over_permit_same_specificity", "SUD", "TREAT", A, "deny", ("CONSENT-DIRECTIVE-DENY",),
         [C("k1", SUD_TPO_A), C("k2", [node("deny", TPO, (A,), ("SUD",))])], ("k2",)),
    Case("most_specific_permit_beats_broad_deny", "SUD", "TREAT", A, "permit", ("PART2-2.31-WRITTEN-CONSENT",),
         [C("k1", SUD_TPO_A), C("k2", [node("deny")])], ("k1",)),
    Case("broad_deny_opts_out_of_general", "GENERAL", "TREAT", A, "deny", ("CONSENT-DIRECTIVE-DENY",),
         [C("k2", [node("deny")])], ("k2",)),
    Case("counseling_notes_need_own_consent", "SUDCN", "TREAT", A, "deny", ("PART2-2.31-CONSENT-REQUIRED",),
         [C("k1", [node(purposes=TPO, recipients=(A,))])]),
    Case("counseling_notes_with_own_consent", "SUDCN", "TREAT", A, "permit", ("PART2-2.31B-COUNSELING-NOTES",),
         [C("k1", [node(purposes=("TREAT",), recipients=(A,), classes=("SUDCN",))])], ("k1",)),
    Case("medical_emergency", "SUD", "ETREAT", A, "permit", ("PART2-2.51-MEDICAL-EMERGENCY",)),
    Case("no_proceedings_even_with_consent", "SUD", "HLEGAL", A, "deny", ("PART2-2.12D-NO-PROCEEDINGS",),
         [C("k1", [node(recipients=(A,), classes=("SUD",))])]),
    Case("deidentified_to_public_health_no_consent", "SUD", "PUBHLTH", LHJ, "permit_deidentified",
         ("PART2-2.54-DEID-PUBLIC-HEALTH",), [C("k2", [node("deny")])]),
    Case("mh_between_treating_professionals", "MH", "TREAT", A, "permit", ("WIC5328-A-TREATING-PROFESSIONALS",)),
    Case("mh_claims", "MH", "HPAYMT", A, "permit", ("WIC5328-CLAIMS",)),
    Case("mh_operations_need_consent", "MH", "HOPERAT", A, "deny", ("WIC5328-CONSENT-REQUIRED",)),
    Case("mh_operations_with_authorization", "MH", "HOPERAT", A, "permit", ("WIC5328-AUTHORIZATION",),
         [C("k1", [node(purposes=("HOPERAT",), recipients=(A,), classes=("MH",))])], ("k1",)),
    Case("hiv_to_treating", "HIV", "TREAT", A, "permit", ("CA-HSC-120985-HIV-CARE",)),
    Case("hiv_payment_needs_consent", "HIV", "HPAYMT", A, "deny", ("DEFAULT-DENY",)),
    Case("psychotherapy_notes", "PSYTHPN", "TREAT", A, "deny", ("HIPAA-164.508-PSYTHPN",)),
    Case("amended_consent_before_amendment", "SUD", "HPAYMT", A, "deny", ("PART2-2.31-CONSENT-REQUIRED",),
         [C("k1", [node(purposes=("TREAT",), recipients=(A,), classes=("SUD",))]),
          C("k1", SUD_TPO_A, version=2, recorded=T + timedelta(days=2))]),
    Case("amended_consent_after_amendment", "SUD", "HPAYMT", A, "permit", ("PART2-2.31-WRITTEN-CONSENT",),
         [C("k1", [node(purposes=("TREAT",), recipients=(A,), classes=("SUD",))]),
          C("k1", SUD_TPO_A, version=2, recorded=T - timedelta(days=2))], ("k1",)),
    Case("provision_period_limits_permit", "SUD", "TREAT", A, "deny", ("PART2-2.31-CONSENT-REQUIRED",),
         [C("k1", [node(purposes=TPO, recipients=(A,), classes=("SUD",), end="2025-01-01T00:00:00")])]),
]
PAIRS = sorted({(A, p) for p in load_policy().purposes} | {(B, p) for p in load_policy().purposes}
               | {(LHJ, "PUBHLTH"), (RES, "HRESCH")})


@pytest.fixture(scope="module")
def decided(spark):
    consent_rows, xw, members = [], [], []
    for i, case in enumerate(CASES):
        sp, mid = f"c{i}", f"m{i}"
        xw.append((COUNTY, sp, mid))
        members.append((mid, case.birth))
        for c in case.consents:
            consent_rows.append((f"{i}:{c.id}", c.version, COUNTY, sp, c.grantor, c.status, c.start, c.end,
                                 c.recorded, json.dumps(c.nodes), c.revoked))
    consents = spark.createDataFrame(
        consent_rows, "consent_id string, version int, source string, source_person_id string, grantor string,"
        "status string, period_start timestamp, period_end timestamp, recorded_at timestamp, provisions string,"
        "revoked_at timestamp")
    inputs = decision_engine.Inputs(consents, spark.createDataFrame(xw, "source string, source_person_id string, member_id string"),
                           spark.createDataFrame(members, "member_id string, birth_date date"))
    out = decision_engine.decide(spark, pairs=PAIRS, run_id="matrix", decided_at=datetime(2025, 7, 1, tzinfo=UTC), inputs=inputs)
    return [r.asDict() for r in out.collect()]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_policy_matrix(decided, case):
    i = CASES.index(case)
    rows = [r for r in decided if r["member_id"] == f"m{i}" and r["data_class"] == case.data_class
            and r["purpose"] == case.purpose and r["recipient"] == case.recipient
            and r["valid_from"] <= case.at and (r["valid_to"] is None or case.at < r["valid_to"])]
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["decision"] == case.expect, row
    for rule in case.rules:
        assert rule in row["rule_ids"], row
    if case.expect_consents is not None:
        assert sorted(row["consent_ids"]) == sorted(f"{i}:{k}" for k in case.expect_consents), row


def test_timeline_is_gapless_and_coalesced(decided):
    """Every (member, class, purpose, recipient) covers all time once: no gaps, no overlaps."""
    by: dict[tuple, list] = {}
    for r in decided:
        by.setdefault((r["member_id"], r["data_class"], r["purpose"], r["recipient"]), []).append(r)
    assert len(by) == len(CASES) * len(load_policy().classes) * len(PAIRS)
    for rows in by.values():
        rows.sort(key=lambda r: r["valid_from"])
        assert rows[0]["valid_from"] == decision_engine.OPEN_START
        assert rows[-1]["valid_to"] is None
        for a, b in zip(rows, rows[1:], strict=False):
            assert a["valid_to"] == b["valid_from"]
            assert (a["decision"], a["rule_ids"], a["consent_ids"]) != (b["decision"], b["rule_ids"], b["consent_ids"])


def test_minor_turning_eighteen_changes_whose_consent_counts(decided):
    """The guardian's consent for a 15-year-old does not count until the member is an adult."""
    i = [c.name for c in CASES].index("guardian_consent_for_minor_who_consented_alone")
    rows = sorted((r for r in decided if r["member_id"] == f"m{i}" and r["data_class"] == "SUD"
                   and r["purpose"] == "TREAT" and r["recipient"] == A), key=lambda r: r["valid_from"])
    at_18 = datetime(2028, 1, 1)
    assert [r["decision"] for r in rows if r["valid_from"] >= at_18][:1] == ["permit"]


