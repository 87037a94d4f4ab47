"""A submitter withdraws a period from the portal: a header-only file lands in its own prefix, and
the real intake run replaces the period's records with none, saying so on the receipt; feeds that
cannot be withdrawn this way are refused with the reason."""

from __future__ import annotations

import json

from portal_world import World


def test_a_plan_withdraws_a_period_and_the_next_intake_run_records_it(world: World, spark):  # noqa: ANN001
    from jobs.ingest import stage as ingest
    from phmx.context import RunContext

    c = world.signed_in("alpha_plan")
    csrf = {"X-CSRF-Token": world.csrf["alpha_plan"]}
    r = c.post("/api/v1/submissions/withdraw", json={"feed": "claims", "period": "2026-01"}, headers=csrf)
    assert r.status_code == 201, r.text
    landed = world.home / "landing" / "mcp_alpha" / "claims" / "2026-01" / r.json()["file"]
    header = landed.read_text().strip().split(",")
    assert landed.read_text().count("\n") == 1 and header[:2] == ["claim_id", "claim_line"]
    ingest.run(spark, RunContext.new())
    receipt = json.loads(next((world.home / "outbox" / "mcp_alpha" / "receipts").rglob("sub-*.json")).read_text())
    assert receipt["feed"] == "claims" and receipt["period"] == "2026-01" and receipt["rows_landed"] == 0
    assert [w["rule_id"] for w in receipt["file_warnings"]] == ["period_withdrawn"]
    import time

    from phmx.portal import views

    time.sleep(views.HISTORY_TTL_S + 0.1)
    history = c.get("/api/v1/submissions").json()
    assert [(h["feed"], h["period"], h["file"]) for h in history] == [("claims", "2026-01", landed.name)]
    # A feed whose files add to each other, or that is not delimited text, cannot be withdrawn here.
    hl7 = world.signed_in("cair2").post("/api/v1/submissions/withdraw", json={"feed": "immunizations_vxu",
                                                                             "period": "2026-01"},
                                        headers={"X-CSRF-Token": world.csrf["cair2"]})
    assert hl7.status_code == 422 and "cannot be withdrawn" in hl7.json()["detail"]
    # The page asks for confirmation first.
    page = c.post("/submissions/withdraw", data={"feed": "claims", "period": "2026-02",
                                                 "csrf_token": world.csrf["alpha_plan"]})
    assert page.status_code == 200 and "Nothing was withdrawn" in page.text
    assert not (world.home / "landing" / "mcp_alpha" / "claims" / "2026-02").exists()
