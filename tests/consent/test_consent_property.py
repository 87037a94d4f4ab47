"""Property: no SUD-labelled row (or SUD code) is ever published without a permitting consent in
force at disclosure time, whatever the consents, revocations, ages, labels and times.

The oracle is independent of the engine: a plain Python check that some consent of the member,
current at T (newest version not entered in error, the version in force at T active, not revoked
or expired at T), from a grantor who may consent at the member's age, has a permit provision
covering SUD, the purpose and the recipient. Purposes and recipients exclude the two rules that
need no consent (medical emergency, de-identified public health), which have their own tests.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import decision_engine, enforce
from consent.disclosure_policy import load_policy
from consent.labels import label_expr

COUNTY = "county_06001_bh"
RECIPIENTS = ["mcp_alpha", "mcp_beta", "research_uc"]
PURPOSES = ["TREAT", "HPAYMT", "HOPERAT", "HRESCH"]
BASE = datetime(2024, 1, 1)
SUD_CODES = ("F1120", "F1010")
LABEL_SETS = [[], ["SUD"], ["SUD", "ETH", "42CFRPart2"], ["MH", "PSY"]]
CODES = ["F11.20", "F10.10", "F17.210", "F32.9", "I10"]

node_st = st.fixed_dictionaries({
    "effect": st.sampled_from(["permit", "permit", "deny"]),
    "purposes": st.lists(st.sampled_from(PURPOSES), max_size=2, unique=True),
    "recipients": st.lists(st.sampled_from(["mcp_alpha", "mcp_beta", "role:treating"]), max_size=2, unique=True),
    "data_classes": st.lists(st.sampled_from(["SUD", "MH", "GENERAL"]), max_size=2, unique=True),
})
consent_st = st.fixed_dictionaries({
    "member": st.integers(0, 3),
    "grantor": st.sampled_from(["self", "guardian", "minor_self"]),
    "start_days": st.integers(0, 400),
    "end_days": st.one_of(st.none(), st.integers(1, 400)),
    "revoke_days": st.one_of(st.none(), st.integers(0, 400)),
    "eie": st.booleans(),
    "nodes": st.lists(node_st, min_size=1, max_size=2),
})
scenario_st = st.fixed_dictionaries({
    "births": st.lists(st.sampled_from([date(1970, 5, 5), date(2010, 3, 3), date(2016, 2, 2)]), min_size=4, max_size=4),
    "consents": st.lists(consent_st, max_size=6),
    "events": st.lists(st.tuples(st.integers(0, 3), st.sampled_from(range(len(LABEL_SETS))),
                                 st.lists(st.sampled_from(CODES), max_size=3)), min_size=1, max_size=10),
    "at_days": st.integers(0, 500),
    "recipient": st.sampled_from(RECIPIENTS),
    "purpose": st.sampled_from(PURPOSES),
})


def _versions(i: int, c: dict) -> list[tuple]:
    start = BASE + timedelta(days=c["start_days"])
    end = start + timedelta(days=c["end_days"]) if c["end_days"] else None
    nodes = [{"path": str(k), "parent": None, "depth": 0, "period_start": None, "period_end": None, **n}
             for k, n in enumerate(c["nodes"])]
    sp = f"c{c['member']}"
    rows = [(f"k{i}", 1, COUNTY, sp, c["grantor"], "active", start, end, start, json.dumps(nodes), None)]
    if c["revoke_days"] is not None:
        rv = start + timedelta(days=c["revoke_days"])
        rows.append((f"k{i}", 2, COUNTY, sp, c["grantor"], "inactive", start, end, rv, json.dumps(nodes), rv))
    if c["eie"]:
        rows.append((f"k{i}", len(rows) + 1, COUNTY, sp, c["grantor"], "entered-in-error", start, end,
                     start + timedelta(days=500), json.dumps(nodes), None))
    return rows


def _band(birth: date, at: datetime) -> str:
    age = at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))
    return "under_minor_age" if age < 12 else "minor" if age < 18 else "adult"


def oracle_permits(scn: dict, member: int, at: datetime) -> bool:
    """Some eligible consent in force at ``at`` permits SUD for this purpose and recipient."""
    pol = load_policy()
    allowed = pol.eligible_grantors(True, _band(scn["births"][member], at))
    roles = {"role:" + r for r in pol.roles_for(scn["recipient"])}
    for c in scn["consents"]:
        if c["member"] != member or c["eie"] or c["grantor"] not in allowed:
            continue
        start = BASE + timedelta(days=c["start_days"])
        end = start + timedelta(days=c["end_days"]) if c["end_days"] else None
        if at < start or (end and at >= end):
            continue
        if c["revoke_days"] is not None and at >= start + timedelta(days=c["revoke_days"]):
            continue
        for n in c["nodes"]:
            if n["effect"] != "permit":
                continue
            if n["data_classes"] and "SUD" not in n["data_classes"]:
                continue
            if n["purposes"] and scn["purpose"] not in n["purposes"]:
                continue
            if n["recipients"] and scn["recipient"] not in n["recipients"] and not roles & set(n["recipients"]):
                continue
            return True
    return False


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(scn=scenario_st)
def test_no_sud_row_leaves_without_a_permitting_consent(spark, scn):
    from pyspark.sql import functions as F

    consents = [v for i, c in enumerate(scn["consents"]) for v in _versions(i, c)]
    cdf = spark.createDataFrame(
        consents, "consent_id string, version int, source string, source_person_id string, grantor string,"
        "status string, period_start timestamp, period_end timestamp, recorded_at timestamp, provisions string,"
        "revoked_at timestamp")
    inputs = decision_engine.Inputs(
        cdf, spark.createDataFrame([(COUNTY, f"c{m}", f"m{m}") for m in range(4)],
                                   "source string, source_person_id string, member_id string"),
        spark.createDataFrame([(f"m{m}", b) for m, b in enumerate(scn["births"])], "member_id string, birth_date date"))
    at = BASE + timedelta(days=scn["at_days"], seconds=1)
    decisions = decision_engine.decide(spark, pairs=[(scn["recipient"], scn["purpose"])], run_id="p", decided_at=at,
                              inputs=inputs)
    decisions = spark.createDataFrame(decisions.collect(), decisions.schema)
    ev = spark.createDataFrame([(f"e{i}", f"m{m}", codes, LABEL_SETS[ls]) for i, (m, ls, codes) in enumerate(scn["events"])],
                               "event_id string, member_id string, diagnosis_codes array<string>, feed array<string>")
    ev = ev.withColumn("security_labels", F.array_distinct(F.concat(label_expr("diagnosis_codes", []), "feed"))).drop("feed")
    out = enforce.permitted_rows(spark, ev, recipient=scn["recipient"], purpose=scn["purpose"], at=at,
                                 decisions=decisions).collect()
    sud_labels = set(load_policy().classes["SUD"].any_labels)
    for r in out:
        carries_sud = bool(sud_labels & set(r.security_labels or [])) or any(
            c.replace(".", "").upper().startswith(SUD_CODES) for c in r.diagnosis_codes or [])
        if carries_sud:
            assert oracle_permits(scn, int(r.member_id[1:]), at), (r, scn)
