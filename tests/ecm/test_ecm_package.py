"""ECM packages: a provider's and a plan's own metrics, statements and dashboard (read in headless Chromium)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from ecm_world import NPI, PLAN, land_world
from test_ecm_statements import CONTRACT
from testkit import csv_rows

from jobs import conform, ecm, identity, ingest
from jobs.ecm.config import load
from jobs.ecm.contracts import parse
from jobs.ecm.dashboard import FAMILIES
from jobs.ecm.ecm_package import write_package
from phmx.context import RunContext
from phmx.feedspec import get_spec

NPI2 = "1987654328"
C = {"cin": "95555555C", "given_name": "Cruz", "family_name": "Lane", "birth_date": "1990-07-07"}


def _other_plan_and_provider(land) -> None:  # noqa: ANN001
    land("mcp_sierra", "ecm_member_information", "2025-03", "mif.csv", csv_rows(get_spec("ecm_member_information").field_names, [
        {"member_local_id": "SR9", **C, "plan_id": "SR", "ecm_provider_npi": NPI2,
         "population_of_focus_1": "SMH_SUD", "authorization_start": "2025-02-01"}]))
    land("ecm_north", "ecm_return_transmission", "2025-03", "rtf.csv", csv_rows(
        get_spec("ecm_return_transmission").field_names, [
            {**C, "plan_id": "SR", "ecm_provider_npi": NPI2, "status_date": "2025-03-31", "benefit_status": "ENROLLED",
             "enrollment_date": "2025-02-15", "lead_care_manager_id": "N1"}]))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_provider_and_plan_packages_hold_only_their_own_rows(spark, phmx_home, land, tmp_path):
    land_world(land)
    _other_plan_and_provider(land)
    for stage in (ingest, conform, identity):
        stage.run(spark, RunContext.new())
    ecm.run(spark, RunContext.new(), contracts=[parse(CONTRACT, Path("bc.yaml"))])

    prov = tmp_path / "ecm_harbor"
    digests = write_package(spark, "ecm_harbor", prov)
    assert set(digests) == {"provider_month.csv", "provider_month.parquet", "statement.csv", "statement.parquet",
                            "dashboard.html"}
    manifest = json.loads((prov / "manifest.json").read_text())
    assert manifest["provider_npi"] == [NPI]
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((prov / name).read_bytes()).hexdigest() == digest
    pm = _rows(prov / "provider_month.csv")
    assert pm and {r["provider_npi"] for r in pm} == {NPI} and {r["plan_id"] for r in pm} == {PLAN}
    assert {r["line_id"] for r in _rows(prov / "statement.csv")} >= {"PMPM", "OUTREACH", "TOTAL"}

    other = tmp_path / "ecm_north"
    write_package(spark, "ecm_north", other)
    assert {r["provider_npi"] for r in _rows(other / "provider_month.csv")} == {NPI2}
    assert _rows(other / "statement.csv") == []  # no contract pays plan SR in this test

    plan = tmp_path / "mcp_bluecoast"
    write_package(spark, "mcp_bluecoast", plan)
    assert {r["plan_id"] for r in _rows(plan / "provider_month.csv")} == {PLAN}

    # no member identifier anywhere in a package
    blob = b"".join(p.read_bytes() for d in (prov, other, plan) for p in d.iterdir())
    for phi in (b"91234567A", b"97654321B", b"95555555C", b"Rivera", b"Okafor", b"1970-03-04"):
        assert phi not in blob

    seen = _open(prov / "dashboard.html")
    assert seen["errors"] == []
    # the four metric families in order, each with its charts and a table of all its metrics
    assert seen["sections"] == ["process", "clinical", "financial", "quality"]
    assert [f["caption"] for f in seen["charts"]] == [t for _f, _h, charts in FAMILIES for t, _ids, _u in charts]
    cfg = load()
    for fam in ("process", "clinical", "financial", "quality"):
        assert seen["rows"][fam] == sum(m.family == fam for m in cfg.metrics), fam
    assert "TOTAL" in seen["text"] and seen["statement_rows"] == 20
    # this world has no clinical data: no discharges and no covered months (the 7-day and cost charts say
    # so instead of drawing); every other chart is drawn, its legend naming exactly the series drawn as
    # lines, each in its legend colour
    by_caption = {f["caption"]: f for f in seen["charts"]}
    empty = {"Follow-up within 7 days of an inpatient discharge",
             "Total cost of care PMPM: engaged members before and after enrollment, and the comparison group"}
    assert {c for c, f in by_caption.items() if f["svg"] == 0} == empty
    for caption, chart in by_caption.items():
        if caption in empty:
            continue
        ids = next(ids for _f, _h, charts in FAMILIES for t, ids, _u in charts if t == caption)
        drawn = {ln["series"]: ln["stroke"] for ln in chart["lines"]}
        assert drawn and set(chart["legend"]) == set(drawn) and set(drawn) <= set(ids), caption
        assert all(chart["legend"][s] == stroke for s, stroke in drawn.items()), caption


def _open(path: Path) -> dict:
    from chart_reader import browse, read_charts

    with browse(path) as (page, errors):
        return {"errors": errors, "charts": read_charts(page), "text": page.inner_text("body"),
                "sections": page.eval_on_selector_all("h2[id]", "hs => hs.map(h => h.id)"),
                "rows": {fam: page.locator(f"#{fam}-table tbody tr").count()
                         for fam in ("process", "clinical", "financial", "quality")},
                "statement_rows": page.locator("#statement-table tbody tr").count()}


def test_dashboard_sums_a_providers_plans_per_month():
    from jobs.ecm.ecm_package import _sum_rows

    rows = [{"month": "2025-01", "metric_id": "engaged_members", "plan_id": "A", "numerator": 3.0, "denominator": None},
            {"month": "2025-01", "metric_id": "engaged_members", "plan_id": "B", "numerator": 4.0, "denominator": None},
            {"month": "2025-01", "metric_id": "care_plan_within_90_days", "plan_id": "A", "numerator": 1.0,
             "denominator": 2.0},
            {"month": "2025-01", "metric_id": "care_plan_within_90_days", "plan_id": "B", "numerator": 2.0,
             "denominator": 2.0}]
    got = {r["metric_id"]: (r["numerator"], r["denominator"], r["value"]) for r in _sum_rows(rows)}
    assert got == {"engaged_members": (7.0, None, 7.0), "care_plan_within_90_days": (3.0, 4.0, 0.75)}
