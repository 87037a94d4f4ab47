"""The publish stage end to end on a hand-built lakehouse: LHJ feeds, plan feeds, ledger, feed log.

One publish run per module (the engine work is the slow part); each test reads its outputs.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from publish_testdata import (
    WITHHELD_FROM_BERKELEY,
    build,
    expected_oev,
    local_id,
    write_berkeley_decisions,
)

RUN = "run-publish-test"


@pytest.fixture(scope="module")
def published(spark, module_home):
    from jobs import publish
    from phmx.context import RunContext

    build(spark)
    write_berkeley_decisions(spark)
    result = publish.run(spark, RunContext.new(period="all", run_id=RUN))
    return module_home, result


def _latest(home: Path, recipient: str, feed: str) -> Path:
    base = home / "publish" / recipient / feed / "all"
    return base / json.loads((base / "latest").read_text())["version"]


def _measures(home: Path, recipient: str) -> pd.DataFrame:
    return pd.read_csv(_latest(home, recipient, "lhj_measures") / "measures.csv", dtype={"annotation": "string"},
                       keep_default_na=True)


def test_one_feed_per_lhj_with_members_and_per_plan(published):
    home, result = published
    assert result.counts["lhj_feeds"] == 3 and result.counts["plan_feeds"] == 2 and result.counts["failed"] == 0
    assert set(result.details["paths"]) == {"lhj_alameda", "lhj_berkeley", "lhj_long_beach", "mcp_bluecoast",
                                            "mcp_sierra"}
    names = {p.name for p in _latest(home, "lhj_alameda", "lhj_measures").iterdir()}
    assert names == {"measures.csv", "measures.parquet", "measure_report.json", "service_counts.csv",
                     "data_dictionary.md", "data_dictionary.csv", "report.html", "manifest.json", "manifest.sig",
                     "publisher.pem"}


def test_measures_table_contract_totals_and_suppression(published):
    home, _ = published
    t = _measures(home, "lhj_alameda")
    assert list(t.columns) == ["lhj", "measure_id", "period", "stratifier", "stratum", "numerator", "denominator",
                               "rate", "ci_low", "ci_high", "annotation"]
    assert set(t["lhj"]) == {"Alameda"}
    assert "California" not in set(t["lhj"])
    # measurement-year rows only (the rolling R12 rows are not double counted), exclusions not counted
    num, den = expected_oev("Alameda")
    total = t[(t.measure_id == "OEV-CH") & (t.period == "2025") & (t.stratifier == "all")].iloc[0]
    assert (total.numerator, total.denominator) == (num, den)
    assert total.rate == pytest.approx(num / den, abs=1e-6)
    assert total.ci_low < total.rate < total.ci_high
    # no published count is 1-10, and every blank count carries a code
    for col in ("numerator", "denominator"):
        shown = t[col].dropna()
        assert not ((shown > 0) & (shown < 11)).any()
        assert t.loc[t[col].isna(), "annotation"].isin(["1", "2", "4"]).all()
    assert t.loc[t.numerator.isna() | t.denominator.isna(), "rate"].isna().all()
    # strata partition the total: where every stratum is published they add up exactly
    for (m, p, s), g in t[t.stratifier != "all"].groupby(["measure_id", "period", "stratifier"]):
        tot = t[(t.measure_id == m) & (t.period == p) & (t.stratifier == "all")].iloc[0]
        for col in ("numerator", "denominator"):
            if g[col].notna().all() and pd.notna(tot[col]):
                assert g[col].sum() == tot[col], (m, p, s, col)
            if pd.notna(tot[col]) and g[col].isna().sum() == 1:
                pytest.fail(f"a single suppressed stratum is derivable: {m} {p} {s} {col}")
    # the sensitive measure is masked below 11 and the 'unknown' stratum exists where needed
    fum = t[t.measure_id == "FUM-7"]
    assert len(fum) and fum["annotation"].isin(["1", "2"]).any()
    assert set(t.loc[t.stratifier == "age_band*sex", "stratum"]).issubset(
        {f"{a}*{s}" for a in ("0-5", "6-11", "12-17", "21-44", "45-64") for s in ("F", "M")})


def test_stored_lhj_decisions_are_honoured_and_ledgered(published, spark):
    from pyspark.sql import functions as F

    from consent import ledger
    from phmx import lakehouse

    home, _ = published
    t = _measures(home, "lhj_berkeley")
    num, den = expected_oev("Berkeley")
    total = t[(t.measure_id == "OEV-CH") & (t.period == "2025") & (t.stratifier == "all")].iloc[0]
    assert total.denominator == den  # the member the stored decisions deny is not counted
    assert num < 11 and pd.isna(total.numerator) and total.annotation == "1"
    entries = [json.loads(p) for p, e in zip(ledger.read_entries()["payload"].to_pylist(),
                                                ledger.read_entries()["entry_type"].to_pylist(), strict=True)
               if e == "disclosure"]
    by_recipient = {e["recipient"]: e for e in entries}
    assert set(by_recipient) == {"lhj_alameda", "lhj_berkeley", "lhj_long_beach", "mcp_bluecoast", "mcp_sierra"}
    berkeley = by_recipient["lhj_berkeley"]
    assert berkeley["purpose"] == "PUBHLTH" and "PART2-2.54-DEID-PUBLIC-HEALTH" in berkeley["rule_ids"]
    manifest = json.loads((_latest(home, "lhj_berkeley", "lhj_measures") / "manifest.json").read_text())
    shas = {Path(f["uri"]).name: f["sha256"] for f in berkeley["files"]}
    assert all(shas[f["name"]] == f["sha256"] for f in manifest["files"])
    seq = next(s for s, p in zip(ledger.read_entries()["seq"].to_pylist(), ledger.read_entries()["payload"].to_pylist(),
                                 strict=True) if json.loads(p).get("recipient") == "lhj_berkeley")
    dm = lakehouse.read(spark, "audit.disclosure_member").where(F.col("seq") == seq)
    ids = {r[0] for r in dm.select("member_id").distinct().collect()}
    assert WITHHELD_FROM_BERKELEY not in ids and len(ids) == den
    assert berkeley["members"]["by_class"]["GENERAL"] == den


def test_fhir_measure_report_bundle(published):
    from fhir.resources.R4B.bundle import Bundle

    home, _ = published
    doc = json.loads((_latest(home, "lhj_alameda", "lhj_measures") / "measure_report.json").read_text())
    b = Bundle.model_validate(doc)
    assert b.type == "collection" and len(b.entry) == len({tuple(e["resource"]["period"].values()) for e in doc["entry"]})
    report = next(e["resource"] for e in doc["entry"] if e["resource"]["period"] == {"start": "2025-01-01",
                                                                                      "end": "2025-12-31"})
    assert report["type"] == "summary"
    oev = next(g for g in report["group"] if g["code"]["coding"][0]["code"] == "OEV-CH")
    pops = {p["code"]["coding"][0]["code"]: p.get("count") for p in oev["population"]}
    assert (pops["numerator"], pops["denominator"]) == expected_oev("Alameda")
    two_way = next(s for s in oev["stratifier"] if len(s["code"]) == 2)
    assert all(len(st["component"]) == 2 for st in two_way["stratum"])
    text = json.dumps(doc)
    assert "data-absent-reason" in text and '"masked"' in text


def test_html_report_is_self_contained(published):
    home, _ = published
    html = (_latest(home, "lhj_alameda", "lhj_measures") / "report.html").read_text()
    assert html.count("<svg") >= 3 and "<script" not in html.lower() and "http://cdn" not in html
    assert "What was suppressed and why" in html and "How to read this report" in html
    assert "SHA256:" in html
    import re
    import xml.etree.ElementTree as ET

    for svg in re.findall(r"<svg.*?</svg>", html, re.S):  # every chart is well-formed SVG
        assert ET.fromstring(svg).tag.endswith("svg")


def test_service_counts_include_sud_as_deidentified_aggregates(published):
    home, _ = published
    rows = list(csv.DictReader(io.StringIO((_latest(home, "lhj_alameda", "lhj_measures") / "service_counts.csv")
                                           .read_text())))
    kinds = {r["source_kind"] for r in rows}
    assert {"plan_medical", "dental"} <= kinds
    for r in rows:
        assert (r["members"] == "" and r["annotation"] == "1") or int(r["members"]) == 0 or int(r["members"]) >= 11


def test_plan_feed_attribution_consent_redaction_and_ids(published):
    from fhir.resources.R4B import get_fhir_model_class

    home, _ = published
    folder = _latest(home, "mcp_bluecoast", "plan_bulk_fhir")
    res = {t: [json.loads(x) for x in (folder / f"{t}.ndjson").read_text().splitlines()]
           for t in ("Patient", "Coverage", "Encounter", "Immunization", "Condition", "Flag")}
    for t, items in res.items():
        for r in items:
            get_fhir_model_class(t).model_validate(r)
    # attribution: the plan's own 75 members, its own member ids, no other source's ids
    own = {i["value"] for p in res["Patient"] for i in p["identifier"] if i["system"].endswith("/member-id")}
    assert len(res["Patient"]) == 75 and own == {local_id(i) for i in range(2, 151, 2)}
    blob = "".join((folder / f).read_text() for f in ("Patient.ndjson", "Encounter.ndjson", "Immunization.ndjson",
                                                     "Condition.ndjson", "Coverage.ndjson", "Flag.ndjson"))
    for foreign in ('"CS', '"CM', '"R4"', '"V4"', "SUD22", "SR0"):
        assert foreign not in blob
    assert all(r["id"].startswith("v1.") for items in res.values() for r in items)
    # no consent for SUD to this plan: no Part 2 record, SUD codes redacted from its own ED claims
    assert "42CFRPart2" not in blob and "F1120" not in blob
    ed = [e for e in res["Encounter"] if e["class"]["code"] == "EMER"]
    assert ed and all(c["coding"][0]["code"] == "J459" for e in ed for c in e["reasonCode"])
    # CAIR2 protection indicator Y never leaves: 37 immunized members with i % 4 == 0, 7 of them locked
    assert len(res["Immunization"]) == 30
    from jobs.publish.fhir_sql import MEASURE_CS, POPULATION_CS

    gaps = [f for f in res["Flag"] if f["code"]["coding"][0]["system"] == MEASURE_CS]
    assert gaps and all(f["code"]["coding"][0]["code"] in ("OEV-CH", "FUM-7") for f in gaps)
    pops = [f for f in res["Flag"] if f["code"]["coding"][0]["system"] == POPULATION_CS]
    assert len(gaps) + len(pops) == len(res["Flag"]) and {f["code"]["coding"][0]["code"] for f in pops} == {
        "HOMELESS_ADULT"}  # SMH_SUD flags carry Part 2 labels: this plan has no consent for them
    assert not (folder / "part2_notice.txt").exists()


def test_consented_sud_record_goes_to_that_plan_with_the_part2_notice(published):
    home, _ = published
    folder = _latest(home, "mcp_sierra", "plan_bulk_fhir")
    enc = [json.loads(x) for x in (folder / "Encounter.ndjson").read_text().splitlines()]
    part2 = [e for e in enc if any(s["code"] == "42CFRPart2" for s in e["meta"]["security"])]
    assert len(part2) == 1 and part2[0]["reasonCode"][0]["coding"][0]["code"] == "F1120"
    assert any(s["code"] == "R" for s in part2[0]["meta"]["security"])
    assert (folder / "part2_notice.txt").read_text().startswith("Notice under 42 CFR 2.32")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["purpose"] == "TREAT" and manifest["part2_notice"] == "part2_notice.txt"
    assert {o["type"] for o in manifest["fhir_bulk"]["output"]} == {"Patient", "Coverage", "Encounter", "Immunization",
                                                                    "Condition", "Flag", "RiskAssessment"}


def test_packages_verify_and_summary_and_feed_log(published):
    from jobs.publish import feed_log, summarize_publish
    from jobs.publish.verify import verify_package

    home, _ = published
    summary = summarize_publish(str(home / "publish"))
    assert {s["recipient"] for s in summary} == {"lhj_alameda", "lhj_berkeley", "lhj_long_beach", "mcp_bluecoast",
                                                 "mcp_sierra"}
    alameda = next(s for s in summary if s["recipient"] == "lhj_alameda")
    assert alameda["version"] == "v1" and alameda["report"].endswith("report.html") and Path(alameda["report"]).exists()
    for s in summary:
        v = verify_package(s["path"])
        assert v.recipient == s["recipient"] and v.fingerprint.startswith("SHA256:")
    log = feed_log.read()
    assert {r["recipient"] for r in log} == {s["recipient"] for s in summary}
    assert all(r["ledger_seq"] and r["status"] == "published" and r["run_id"] == RUN for r in log)


def test_airflow_steps_prepare_then_one_recipient_and_report_names_the_rest(published, spark):
    """The mapped-task path: prepare once, publish one recipient from the stored work, report.
    The same data again make no new version: the package is logged as unchanged, not re-published."""
    from consent import ledger
    from jobs import publish
    from jobs.publish import feed_log
    from phmx.context import RunContext
    from phmx.errors import PhmxError

    home, _ = published
    run2 = "run-publish-test-2"
    prep = publish.run(spark, RunContext.new(period="all", run_id=run2), step="prepare")
    assert prep.details["recipients"] == ["lhj_alameda", "lhj_berkeley", "lhj_long_beach", "mcp_bluecoast",
                                          "mcp_sierra"]
    assert publish.run_recipients(run2) == prep.details["recipients"]
    disclosures = sum(1 for e in ledger.read_entries().to_pylist() if e["entry_type"] == "disclosure")
    one = publish.run(spark, RunContext.new(period="all", run_id=run2), recipient="lhj_long_beach")
    # Same data, same table (read from the work tables): byte for byte v1, so v1 stays the latest.
    assert one.counts["version"] == 1
    base = home / "publish" / "lhj_long_beach" / "lhj_measures" / "all"
    assert json.loads((base / "latest").read_text())["version"] == "v1" and not (base / "v2").exists()
    assert sum(1 for e in ledger.read_entries().to_pylist() if e["entry_type"] == "disclosure") == disclosures
    logged = [r for r in feed_log.read("lhj_long_beach") if r["run_id"] == run2]
    assert [(r["status"], r["version"], r["ledger_seq"]) for r in logged] == [("unchanged", 1, None)]
    with pytest.raises(PhmxError) as exc:
        publish.report(run2)
    assert "lhj_alameda" in str(exc.value) and "lhj_long_beach" not in str(exc.value)
    assert publish.report(RUN)["published"] == 5


def test_lhj_packages_built_in_worker_processes_match_the_sequential_ones(published, spark, monkeypatch):
    from jobs.publish import prepare, stage
    from jobs.publish.verify import verify_package
    from phmx.context import RunContext

    home, _ = published
    monkeypatch.setattr(stage, "POOL_MIN", 1)
    monkeypatch.setenv("PHMX_PUBLISH_WORKERS", "2")
    ctx = RunContext.new(period="all", run_id="run-publish-test-3")
    prepared = prepare.prepare(spark, ctx)
    done, failed = stage.publish_lhjs(spark, ctx, prepared, ["lhj_alameda", "lhj_berkeley"])
    assert failed == [] and [d["recipient"] for d in done] == ["lhj_alameda", "lhj_berkeley"]
    for d in done:
        folder = Path(d["uri"])
        assert verify_package(folder).version == folder.name
        assert (folder / "measures.csv").read_text() == (folder.parent / "v1" / "measures.csv").read_text()


def test_statewide_rows_are_decided_from_every_lhj_table_and_stored_for_the_mapped_tasks(published, spark):
    """The prepare step suppresses every LHJ first, then derives the statewide rows: a statewide
    count is shown where every LHJ publishes that count (their sum), and elsewhere only if the LP
    attacker over the union of all LHJ tables and the statewide rows still passes (cross-feed
    differencing); what it stores reads back identical for each recipient's task."""
    from jobs.publish import lhj_feed, lhj_tables, prepare
    from phmx.context import RunContext
    from privacy.attack import audit
    from privacy.suppression import SuppressionSpec, with_calendar

    run_id = "run-publish-test-decided"
    prepared = prepare.prepare(spark, RunContext.new(period="all", run_id=run_id))
    decided = lhj_tables.decide(spark, prepared)
    assert sorted(decided.tables) == ["Alameda", "Berkeley", "Long Beach"] and not decided.failed
    state = decided.state
    totals = {lhj: t[t["stratifier"] == "all"].set_index(["measure_id", "period"]) for lhj, t in decided.tables.items()}
    shown = 0
    for row in state.itertuples():
        for col in ("numerator", "denominator"):
            every = all(pd.notna(t.loc[(row.measure_id, row.period), col]) for t in totals.values())
            value = getattr(row, col)
            if every:  # shown, and the sum of the published LHJ counts
                assert int(value) == sum(int(t.loc[(row.measure_id, row.period), col]) for t in totals.values())
            if pd.notna(value):
                shown += 1
                assert not 0 < int(value) < 11
    assert shown > 0  # the hand-built lakehouse has measures every LHJ publishes
    union = pd.concat([*(t[lhj_feed.OUTPUT_COLUMNS] for t in decided.tables.values()),
                       state[lhj_feed.OUTPUT_COLUMNS]], ignore_index=True)
    assert audit(union, with_calendar(union, SuppressionSpec(geography_total=str(state["lhj"].iloc[0])))).ok
    for lhj, table in decided.tables.items():
        back, method, back_state = lhj_tables.load_one(run_id, lhj)
        assert method == decided.methods[lhj]
        pd.testing.assert_frame_equal(back.reset_index(drop=True), table.reset_index(drop=True), check_dtype=False)
        pd.testing.assert_frame_equal(back_state.reset_index(drop=True), state.reset_index(drop=True),
                                      check_dtype=False)


@pytest.mark.slow
def test_html_report_in_a_real_browser(published):
    """Each LHJ's report in headless Chromium: no console errors, legends match marks, categories
    in natural order, the one suppressed-cell count; screenshots kept under var/artifacts/report."""
    import re

    from report_browser import open_report

    from jobs.publish.report_charts import stratum_order

    home, _ = published
    age_panels: list[list[str]] = []
    for recipient in ("lhj_alameda", "lhj_berkeley", "lhj_long_beach"):
        folder = _latest(home, recipient, "lhj_measures")
        manifest = json.loads((folder / "manifest.json").read_text())
        html = (folder / "report.html").read_text()
        assert "<script" not in html.lower() and "<link" not in html.lower()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from elsewhere
        seen = open_report(folder / "report.html", recipient)
        assert seen.console_errors == [], seen.console_errors
        assert seen.screenshot is not None and seen.screenshot.stat().st_size > 10_000
        drawn = [c for c in seen.charts if c["svg"]]
        assert drawn, "no chart was drawn"
        for chart in drawn:
            assert chart["legend"], f"a chart without a legend: {chart['panels']}"
            for bar in chart["bars"]:  # every bar's fill is its own series' legend colour
                assert bar["fill"] == chart["legend"][bar["series"]], (bar, chart["legend"])
            for line in chart["lines"]:
                assert line["stroke"] == chart["legend"][line["series"]], (line, chart["legend"])
            first, *strata = chart["panels"] or [{"categories": []}]  # a trend chart has no panels
            assert first["categories"][-1:] == ["California"] or "California" not in first["categories"]
            for panel in strata:
                cats = panel["categories"]
                assert cats == stratum_order(cats), (panel["title"], cats)
                if panel["title"] == "By age band":
                    lows = [int(c.split("-")[0].rstrip("+")) for c in cats if c != "unknown"]
                    assert lows == sorted(lows), cats
                    age_panels.append(cats)
        # empty charts are a sentence, not empty axes
        for chart in seen.charts:
            if not chart["svg"]:
                assert "No chart:" in chart["text"] or "Not drawn" in chart["text"]
        # the one suppressed-cell count: report == manifest == data dictionary
        total = int(seen.suppressed_total.replace(",", ""))
        assert total == manifest["content"]["suppressed_cells"]
        dictionary = (folder / "data_dictionary.md").read_text()
        m = re.search(r"This package: ([\d,]+) of ([\d,]+) cells", dictionary)
        assert m and int(m.group(1).replace(",", "")) == total
        assert int(m.group(2).replace(",", "")) == manifest["content"]["cells"]
        t = _measures(home, recipient)
        assert total == int(t["annotation"].isin(["1", "2", "4"]).sum())
        # codes explained next to the table that uses them
        if t["annotation"].isin(["1", "2", "3", "4"]).any():
            assert "small cell:" in seen.text or "small complement:" in seen.text or "complementary:" in seen.text or "no data:" in seen.text
    assert age_panels, "no age band panel was drawn"
