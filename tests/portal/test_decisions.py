"""Auditors' decision reports and search (gold.consent_decision and the ledger's disclosures), the
drill-down of one disclosure, each drill-down recorded, and no member id anywhere in them."""

from __future__ import annotations

import json

from portal_world import COUNTY_B, DISCLOSED_MEMBER, OTHER_MEMBER, World


def _get(world: World, path: str, **params: str):  # noqa: ANN202 - httpx.Response
    return world.signed_in("state_audit").get(path, params=params)


def test_decisions_in_force_are_counted_and_searched_by_recipient_purpose_rule_and_date(world: World):
    everything = _get(world, "/api/v1/audit/decisions").json()
    assert sorted((c["decision"], c["recipient"], c["rule_id"], c["members"]) for c in everything["decisions"]) == [
        ("deny", "mcp_alpha", "DEFAULT-DENY", 1), ("permit", "lhj_alameda", "HIPAA-164.512B-PUBLIC-HEALTH", 1),
        ("permit", "mcp_beta", "PART2-2.31-WRITTEN-CONSENT", 1)]
    assert [d["recipient"] for d in everything["disclosures"]] == ["mcp_beta", "lhj_alameda"]  # newest first
    beta = _get(world, "/api/v1/audit/decisions", recipient="mcp_beta").json()
    assert [c["recipient"] for c in beta["decisions"]] == ["mcp_beta"]
    assert [(d["recipient"], d["purpose"], d["members"]) for d in beta["disclosures"]] == [("mcp_beta", "TREAT", 1)]
    by_rule = _get(world, "/api/v1/audit/decisions", rule="pubhlth_aggregate").json()
    assert [d["seq"] for d in by_rule["disclosures"]] == [world.disclosure_seq] and by_rule["decisions"] == []
    assert _get(world, "/api/v1/audit/decisions", purpose="PUBHLTH").json()["decisions"][0]["purpose"] == "PUBHLTH"
    none = _get(world, "/api/v1/audit/decisions", since="2099-01-01").json()
    assert none == {"decisions": [], "disclosures": []}
    page = _get(world, "/audit/decisions", recipient="mcp_beta")
    assert page.status_code == 200 and "PART2-2.31-WRITTEN-CONSENT" in page.text and "<td>lhj_alameda</td>" not in page.text
    blob = json.dumps(everything) + page.text
    assert DISCLOSED_MEMBER not in blob and OTHER_MEMBER not in blob


def test_a_disclosure_drills_down_to_its_rules_consents_files_and_rows_and_is_recorded(world: World):
    from consent import ledger

    before = ledger.read_head().seq
    seqs = {d["recipient"]: d["seq"] for d in _get(world, "/api/v1/audit/decisions").json()["disclosures"]}
    d = _get(world, f"/api/v1/audit/disclosures/{seqs['mcp_beta']}").json()
    assert (d["recipient"], d["purpose"], d["members"]) == ("mcp_beta", "TREAT", 1)
    assert [c["consent_id"] for c in d["consents"]] == [f"{COUNTY_B}:F-200"]
    assert [r["id"] for r in d["rules"]] == ["PART2-2.31-WRITTEN-CONSENT"] and "42 CFR" in d["rules"][0]["cite"]
    assert d["files"] == [{"path": "mcp_beta/plan_feed/2025/v1/members.csv", "sha256": "1" * 64}]
    shared = _get(world, f"/api/v1/audit/disclosures/{world.disclosure_seq}").json()
    assert shared["member_rows_by_class"] == [{"data_class": "SUD", "rows": 1}, {"data_class": "immunization", "rows": 1}]
    page = _get(world, f"/audit/decisions/disclosures/{seqs['mcp_beta']}")
    assert page.status_code == 200 and f"{COUNTY_B}:F-200" in page.text
    assert OTHER_MEMBER not in page.text + json.dumps(d) + json.dumps(shared)
    notes = [json.loads(e["payload"]) for e in ledger.read_entries().to_pylist()
             if e["entry_type"] == "note" and int(e["seq"]) > before]
    assert [(n["action"], n["resource"]["seq"]) for n in notes] == [
        ("disclosure_detail", seqs["mcp_beta"]), ("disclosure_detail", world.disclosure_seq),
        ("disclosure_detail", seqs["mcp_beta"])]
    assert _get(world, "/api/v1/audit/disclosures/999999").status_code == 404
    assert world.signed_in("lhj_alameda").get(f"/api/v1/audit/disclosures/{world.disclosure_seq}").status_code == 403
