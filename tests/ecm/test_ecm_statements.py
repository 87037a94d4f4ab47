"""ECM payment statements: a value-based contract as data, priced on the hand-built world by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ecm_world import NPI, PLAN, land_world

from jobs import conform, ecm, identity, ingest
from jobs.ecm import statements
from jobs.ecm.contracts import load_all, parse
from phmx import lakehouse
from phmx.context import RunContext
from phmx.errors import SpecError

CONTRACT = {
    "contract_id": "bc-test", "plan_id": PLAN, "providers": "all", "start": "2025-01",
    "pmpm": {"rate": 450.0},
    "outreach": {"basis": "attempt", "rate": 25.0, "cap_per_member_month": 1, "before_enrollment_only": True},
    "quality": [
        {"metric": "care_plan_within_90_days", "min_denominator": 1,
         "tiers": [{"min_value": 0.9, "share_of_pmpm": 0.10}, {"min_value": 0.75, "share_of_pmpm": 0.05}]},
        {"metric": "cs_closed_loop_rate", "min_denominator": 1, "tiers": [{"min_value": 0.8, "share_of_pmpm": 0.05}]},
    ],
}
# month -> line -> amount, worked out from tests/ecm/ecm_world.py: A engaged every month (so its January
# attempts are not paid: the contract pays outreach only before enrollment); B's attempts capped at 1 a month;
# the care plan bonus in April (1 of 1 within 90 days), the closed-loop bonus in March (1 of 1).
EXPECTED = {
    "2025-01": {"PMPM": 450.0, "OUTREACH": 0.0, "QUALITY:care_plan_within_90_days": 0.0,
                "QUALITY:cs_closed_loop_rate": 0.0, "TOTAL": 450.0},
    "2025-02": {"PMPM": 450.0, "OUTREACH": 25.0, "QUALITY:care_plan_within_90_days": 0.0,
                "QUALITY:cs_closed_loop_rate": 0.0, "TOTAL": 475.0},
    "2025-03": {"PMPM": 450.0, "OUTREACH": 25.0, "QUALITY:care_plan_within_90_days": 0.0,
                "QUALITY:cs_closed_loop_rate": 22.5, "TOTAL": 497.5},
    "2025-04": {"PMPM": 450.0, "OUTREACH": 0.0, "QUALITY:care_plan_within_90_days": 45.0,
                "QUALITY:cs_closed_loop_rate": 0.0, "TOTAL": 495.0},
}


def test_statement_lines_and_the_members_behind_them(spark, phmx_home, land):
    land_world(land)
    for stage in (ingest, conform, identity):
        stage.run(spark, RunContext.new())
    contract = parse(CONTRACT, Path("bc-test.yaml"))
    result = ecm.run(spark, RunContext.new(), contracts=[contract])
    assert result.counts["statement_lines"] == 20
    lines = lakehouse.read(spark, "gold.ecm_statement_line").collect()
    got = {r.month: {} for r in lines}
    for r in lines:
        assert (r.contract_id, r.plan_id, r.provider_npi) == ("bc-test", PLAN, NPI)
        got[r.month][r.line_id] = r.amount
    assert got == EXPECTED
    members = lakehouse.read(spark, "gold.ecm_statement_member").collect()
    for r in lines:
        if r.line_id in ("PMPM", "OUTREACH"):
            behind = [m for m in members if (m.month, m.line_id) == (r.month, r.line_id)]
            assert sum(m.amount for m in behind) == r.amount
            assert sum(m.units for m in behind) == r.quantity
    assert len([m for m in members if m.line_id == "PMPM"]) == 4  # A, every month
    assert sorted((m.month, m.units) for m in members if m.line_id == "OUTREACH") == [("2025-02", 1.0), ("2025-03", 1.0)]

    # reproducible from the tables: pricing the same months again gives the same lines
    again, _ = statements.statement(spark, contract, ["2025-01", "2025-02", "2025-03", "2025-04"], "rerun")
    assert sorted((r.month, r.line_id, r.quantity, r.rate, r.amount) for r in again.collect()) == sorted(
        (r.month, r.line_id, r.quantity, r.rate, r.amount) for r in lines)

    # the other payment basis: per successful attempt, at most 2 a member-month, enrolled or not
    per_success = parse({**CONTRACT, "contract_id": "bc-success", "quality": [],
                         "outreach": {"basis": "successful", "rate": 60.0, "cap_per_member_month": 2}},
                        Path("bc-success.yaml"))
    lines2, _ = statements.statement(spark, per_success, ["2025-01", "2025-02", "2025-03", "2025-04"], "r")
    out = {r.month: r.amount for r in lines2.collect() if r.line_id == "OUTREACH"}
    assert out == {"2025-01": 60.0, "2025-02": 60.0, "2025-03": 60.0, "2025-04": 0.0}


def test_contracts_are_validated_with_file_and_key(tmp_path):
    assert {c.plan_id for c in load_all()} == {"BLC001", "SRA001"}  # the shipped contracts load
    with pytest.raises(SpecError, match=r"bad.yaml: quality\[0\].metric: 'hba1c_control' is not a metric"):
        parse({**CONTRACT, "quality": [{"metric": "hba1c_control", "tiers": [{"min_value": 1, "share_of_pmpm": 0.1}]}]},
              Path("bad.yaml"))
    # a lower-is-better measure (GSD > 9%) is paid on max_value tiers, best (lowest) first
    with pytest.raises(SpecError, match=r"bad.yaml: quality\[0\].tiers: 'gsd_poor_control' is better when lower"):
        parse({**CONTRACT, "quality": [{"metric": "gsd_poor_control", "tiers": [{"min_value": 0.2, "share_of_pmpm": 0.1}]}]},
              Path("bad.yaml"))
    with pytest.raises(SpecError, match=r"bad.yaml: quality.0.*lowest max_value first"):
        parse({**CONTRACT, "quality": [{"metric": "gsd_poor_control", "tiers": [
            {"max_value": 0.5, "share_of_pmpm": 0.02}, {"max_value": 0.2, "share_of_pmpm": 0.04}]}]}, Path("bad.yaml"))
    with pytest.raises(SpecError, match=r"bad.yaml: outreach"):
        parse({**CONTRACT, "outreach": {"basis": "per_visit", "rate": 1, "cap_per_member_month": 1}}, Path("bad.yaml"))
    with pytest.raises(SpecError, match=r"bad.yaml: quality.0"):
        parse({**CONTRACT, "quality": [{"metric": "cs_closed_loop_rate", "tiers": [
            {"min_value": 0.5, "share_of_pmpm": 0.1}, {"min_value": 0.9, "share_of_pmpm": 0.2}]}]}, Path("bad.yaml"))
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(CONTRACT))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**CONTRACT, "contract_id": "other"}))
    with pytest.raises(SpecError, match="b.yaml: pays plan BC in months bc-test pays too"):
        load_all(tmp_path)
