"""The consent stage end to end on tiny synthetic data: registry, decisions, enforcement, ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime

from consent_testdata import PLAN, PLAN_B, form, write_forms, write_members, write_submissions

from consent import enforce, ledger
from jobs.consent_decisions import run
from phmx import lakehouse
from phmx.context import RunContext
from phmx.tables import CONSENT, CONSENT_DECISION


def test_stage_runs_and_sud_needs_consent(spark, phmx_home):
    write_members(spark, [("m1", "c1", date(1980, 1, 1)), ("m2", "c2", date(1985, 1, 1))])
    write_submissions(spark, [PLAN, PLAN_B])
    write_forms(spark, [form("f1", "c1")])
    result = run(spark, RunContext.new(run_id="r1"))
    assert result.counts["consent_versions"] == 1
    d = lakehouse.read(spark, CONSENT_DECISION)
    sud = {(r.member_id, r.recipient, r.purpose): r.decision
           for r in d.where("data_class = 'SUD' AND valid_to IS NULL").collect()}
    assert sud[("m1", PLAN, "TREAT")] == "permit"
    assert sud[("m1", PLAN_B, "TREAT")] == "deny"
    assert sud[("m2", PLAN, "TREAT")] == "deny"
    assert lakehouse.read(spark, CONSENT).count() == 1

    events = spark.createDataFrame(
        [("e1", "m1", ["SUD", "42CFRPart2"]), ("e2", "m2", ["SUD"]), ("e3", "m2", [])],
        "event_id string, member_id string, security_labels array<string>")
    ok = enforce.permitted_rows(spark, events, recipient=PLAN, purpose="TREAT", at=datetime.now(UTC))
    assert sorted(r.event_id for r in ok.collect()) == ["e1", "e3"]

    seq = ledger.record_disclosure(spark, recipient=PLAN, purpose="TREAT", run_id="r1",
                                   files=[("file:///x.parquet", "a" * 64)],
                                   members_by_class=spark.createDataFrame([("m1", "SUD")], "member_id string, data_class string"),
                                   rule_ids=["PART2-CONSENT"], consent_ids=["county_06001_bh:f1"])
    entries = ledger.read_entries().to_pylist()
    assert [e["entry_type"] for e in entries] == ["decision_batch", "checkpoint", "disclosure", "checkpoint"]
    assert entries[2]["seq"] == seq and entries[3]["prev_hash"] == entries[2]["entry_hash"]


def test_the_stage_decides_for_every_recipient_publish_serves_and_publish_only_reads_them(spark, phmx_home):
    """LHJs included: each member toward their own LHJ. Publish's gate reads those rows and fails,
    naming the recipient, where the consent stage has not decided; it never decides itself."""
    import pytest
    from pyspark.sql import functions as F

    from jobs.publish import consent_gate
    from phmx.errors import ConsentError

    write_members(spark, [("m1", "c1", date(1980, 1, 1)), ("m2", "c2", date(1985, 1, 1))], lhj="Alameda")
    write_submissions(spark, [PLAN])
    write_forms(spark, [form("f1", "c1")])
    run(spark, RunContext.new(run_id="r2"))
    d = lakehouse.read(spark, CONSENT_DECISION)
    lhj = d.where(F.col("recipient").startswith("lhj_"))
    assert {(r.recipient, r.purpose) for r in lhj.select("recipient", "purpose").distinct().collect()} == \
        {("lhj_alameda", "PUBHLTH")}
    assert {r.member_id for r in lhj.select("member_id").distinct().collect()} == {"m1", "m2"}
    assert {r.decision for r in lhj.where("valid_to IS NULL").collect()} == {"permit_deidentified"}
    gathered = consent_gate.lhj_decisions(spark)
    assert gathered.count() == lhj.count() and {r[0] for r in gathered.select("recipient").distinct().collect()} \
        == {consent_gate.ANY_LHJ}
    assert consent_gate.plan_decisions(spark, PLAN).count() > 0

    with pytest.raises(ConsentError, match=r"no TREAT consent decisions .* for mcp_gamma"):
        consent_gate.plan_decisions(spark, "mcp_gamma")
    lakehouse.overwrite(d.where("NOT (recipient = 'lhj_alameda' AND member_id = 'm2')").toPandas()
                        .pipe(lambda pdf: spark.createDataFrame(pdf, CONSENT_DECISION.ddl)), CONSENT_DECISION)
    with pytest.raises(ConsentError, match=r"no PUBHLTH consent decisions .* for lhj_alameda \(1 member\(s\)\)"):
        consent_gate.lhj_decisions(spark)
