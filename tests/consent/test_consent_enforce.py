"""Bulk enforcement: labels, redaction vs withholding, de-identified public health, the
ledger's accounting of disclosures and the audit report, end to end on the engine."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from consent import audit, decision_engine, enforce, ledger, report
from consent.labels import label_expr, sensitivity_expr

A, LHJ = "mcp_alpha", "lhj_alameda"
T = datetime(2025, 6, 1, 12, 0, 0)
COUNTY = "county_06001_bh"


def _node(**kw):
    base = {"path": "0", "parent": None, "depth": 0, "effect": "permit", "purposes": [], "recipients": [],
            "data_classes": [], "period_start": None, "period_end": None}
    return {**base, **kw}


@pytest.fixture(scope="module")
def world(spark):
    """m1 consented to SUD for TPO to plan alpha; m2 has no consent; m3 has no decisions at all."""
    consents = spark.createDataFrame(
        [("k1", 1, COUNTY, "c1", "self", "active", datetime(2024, 1, 1), None, datetime(2024, 1, 2),
          json.dumps([_node(purposes=["TREAT", "HPAYMT", "HOPERAT"], recipients=[A], data_classes=["SUD"])]), None)],
        "consent_id string, version int, source string, source_person_id string, grantor string, status string,"
        "period_start timestamp, period_end timestamp, recorded_at timestamp, provisions string, revoked_at timestamp")
    inputs = decision_engine.Inputs(
        consents, spark.createDataFrame([(COUNTY, "c1", "m1"), (COUNTY, "c2", "m2")],
                                        "source string, source_person_id string, member_id string"),
        spark.createDataFrame([("m1", date(1980, 1, 1)), ("m2", date(1985, 1, 1))], "member_id string, birth_date date"))
    decisions = decision_engine.decide(spark, pairs=[(A, "TREAT"), (A, "HOPERAT"), (LHJ, "PUBHLTH")], run_id="t",
                              decided_at=T, inputs=inputs)
    decisions = spark.createDataFrame(decisions.collect(), decisions.schema)  # as publish reads it: materialised
    rows = [
        ("e1", "m1", ["F11.20", "I10"], []),          # SUD dx in a general encounter, consented member
        ("e2", "m2", ["F11.20", "I10"], []),          # same, no consent: redact the SUD code
        ("e3", "m2", ["F11.20"], ["SUD", "ETH", "42CFRPart2"]),  # a Part 2 program record: withhold
        ("e4", "m2", ["I10"], ["SUD"]),               # labelled SUD but no code explains it: withhold
        ("e5", "m2", ["F32.9", "I10"], []),           # MH dx in a general encounter
        ("e6", "m2", ["F32.9"], ["MH", "PSY"]),       # county MH program record
        ("e7", "m2", ["F17.210", "I10"], []),         # nicotine only: not SUD
        ("e8", "m3", ["I10"], []),                    # member without decisions
    ]
    ev = spark.createDataFrame(rows, "event_id string, member_id string, diagnosis_codes array<string>,"
                                     "feed_labels array<string>")
    ev = ev.withColumn("security_labels", label_expr("diagnosis_codes", []))
    from pyspark.sql import functions as F

    ev = ev.withColumn("security_labels", F.array_sort(F.array_distinct(F.concat("security_labels", "feed_labels"))))
    ev = ev.drop("feed_labels").withColumn("sensitivity", sensitivity_expr("security_labels"))
    return decisions, ev


def _out(spark, world, **kw):
    decisions, ev = world
    df = enforce.permitted_rows(spark, ev, at=T, decisions=decisions, **kw)
    return {r.event_id: (sorted(r.diagnosis_codes), sorted(r.security_labels)) for r in df.collect()}


def test_label_expr_value_sets(spark):
    df = spark.createDataFrame([(["F17.210"],), (["F11.20"],), (["F32.9"],), (["B20"],), (["F50.0"],), (["A54.0"],),
                                (None,)], "dx array<string>")
    got = [r.l for r in df.select(label_expr("dx", ["X"]).alias("l")).collect()]
    # F50 (eating disorder) is mental health information too (icd10cm_mh.yaml says why).
    assert got == [["X"], ["SUD", "X"], ["MH", "X"], ["HIV", "X"], ["MH", "X"], ["STD", "X"], ["X"]]


def test_treatment_redacts_or_withholds(spark, world):
    out = _out(spark, world, recipient=A, purpose="TREAT")
    assert out["e1"] == (["F11.20", "I10"], ["SUD"])        # consented: sent whole
    assert out["e2"] == (["I10"], [])                       # SUD diagnosis dropped, encounter kept
    assert "e3" not in out and "e4" not in out              # Part 2 record / unexplained label withheld
    assert out["e5"] == (["F32.9", "I10"], ["MH"])          # W&I 5328 treating professionals
    assert out["e7"] == (["F17.210", "I10"], [])            # nicotine is not SUD
    assert "e8" not in out                                  # no decisions: deny by default


def test_operations_redacts_mental_health_and_withholds_program_records(spark, world):
    out = _out(spark, world, recipient=A, purpose="HOPERAT")
    assert out["e5"] == (["I10"], [])
    assert "e6" not in out


def test_public_health_only_deidentified(spark, world):
    assert _out(spark, world, recipient=LHJ, purpose="PUBHLTH") == {}
    out = _out(spark, world, recipient=LHJ, purpose="PUBHLTH", deidentified=True)
    assert {"e1", "e2", "e3", "e6"} <= set(out)


def test_disclosure_is_accounted_and_reported(spark, world, phmx_home, tmp_path):
    from privacy.keys import reset_provider_cache

    reset_provider_cache()
    decisions, ev = world
    sent = enforce.permitted_rows(spark, ev, recipient=A, purpose="TREAT", at=T, decisions=decisions)
    members = enforce.disclosure_members(spark, sent, recipient=A, purpose="TREAT", at=T, decisions=decisions)
    classes = {(r.member_id, r.data_class): (r.rule_ids, r.consent_ids) for r in members.collect()}
    assert classes[("m1", "SUD")][1] == ["k1"] and ("m2", "SUD") not in classes
    seq = ledger.record_disclosure(spark, recipient=A, purpose="TREAT", run_id="r1",
                                   files=[("publish/mcp_alpha/f.parquet", "ab" * 32)], members_by_class=members,
                                   rule_ids=["PART2-2.31-WRITTEN-CONSENT"], consent_ids=["k1"], at=T.replace(tzinfo=UTC))
    acct = audit.disclosures_for_member("m1")
    assert {(a["seq"], a["data_class"], a["recipient"]) for a in acct} >= {(seq, "SUD", A), (seq, "GENERAL", A)}
    assert audit.disclosures_for_member("m1", since=datetime(2026, 1, 1)) == []
    assert audit.verify().ok
    written = report.write_report(str(tmp_path / "rep"))
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<svg" in html and "<script" not in html and "verified" in html
    assert set(written) >= {"report", "disclosures_over_time", "revocations", "decisions_by_rule_recipient"}
