"""The LHJ report's content rules on a hand-built published table (no engine), checked in Debian's
chromium: categories in natural order, a missing month as a gap, nice ticks on one scale shared by
a measure's panels, empty panels replaced by a sentence, TRC-30 not called a mental health or SUD
measure, annotation codes explained beside the table, and the one suppressed-cell count."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd
import pytest

from jobs.publish import report_html
from jobs.publish.lhj_suppression import suppressed_cells
from jobs.publish.report_charts import nice_top, period_sequence, stratum_order

AGE_TEXT_ORDER = ["0-5", "12-17", "45-64", "6-11", "65+", "unknown"]  # how a text sort has them


def _row(lhj, measure, period, strat, stratum, num, den, ann=""):
    rate = None if num is None or den in (None, 0) else num / den
    lo, hi = (None, None) if rate is None else (max(rate - 0.05, 0.0), min(rate + 0.05, 1.0))
    return {"lhj": lhj, "measure_id": measure, "period": period, "stratifier": strat, "stratum": stratum,
            "numerator": num, "denominator": den, "rate": rate, "ci_low": lo, "ci_high": hi,
            "annotation": ann or None, "sensitive": measure == "TRC-30"}


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for m in ("TRC-30", "OEV-CH"):
        rows.append(_row("Yolo", m, "2025", "all", "all", 120, 400))
        for month, num, den, ann in (("2025-01", 30, 100, ""), ("2025-02", None, 100, "2"),
                                     ("2025-04", 45, 100, ""), ("2025-05", 45, 100, "")):
            rows.append(_row("Yolo", m, month, "all", "all", num, den, ann))
        # no 2025-03 row at all: the axis must still show March, as a gap
        for band, num, den in zip(AGE_TEXT_ORDER, (20, 15, 30, 25, 18, None), (60, 50, 90, 80, 120, 0),
                                  strict=True):
            rows.append(_row("Yolo", m, "2025", "age_band", band, num, den, "3" if den == 0 else ""))
        rows.append(_row("Yolo", m, "2025", "sex", "F", None, None, "1"))
        rows.append(_row("Yolo", m, "2025", "sex", "M", None, None, "2"))
    state = pd.DataFrame([_row("California", m, p, "all", "all", 5_000, 12_000)
                          for m in ("TRC-30", "OEV-CH") for p in ("2025", "2025-01", "2025-02", "2025-04")])
    return pd.DataFrame(rows), state


def test_helpers_order_gaps_and_ticks():
    assert stratum_order(AGE_TEXT_ORDER) == ["0-5", "6-11", "12-17", "45-64", "65+", "unknown"]
    assert stratum_order(["white", "unknown", "asian"]) == ["asian", "white", "unknown"]
    assert period_sequence(["2025-04", "2025-01"]) == ["2025-01", "2025-02", "2025-03", "2025-04"]
    assert period_sequence(["2025-Q3", "2025-Q1"]) == ["2025-Q1", "2025-Q2", "2025-Q3"]
    assert nice_top([0.188, 0.562]) == 0.6 and nice_top([None, 0.03]) == 0.05 and nice_top([]) == 0.05


@pytest.mark.slow
def test_report_content_in_a_real_browser(tmp_path):
    from report_browser import open_report

    table, state = _tables()
    html = report_html.render(lhj="Yolo", recipient="lhj_yolo", period="2025", run_id="r1", table=table,
                              state=state, suppression_method="test method", ci_method="wilson",
                              fingerprint="SHA256:00", key_id="k1",
                              generated_at=datetime(2026, 1, 1, tzinfo=UTC), files=["measures.csv"])
    path = tmp_path / "report.html"
    path.write_text(html)
    seen = open_report(path, "handbuilt_yolo")
    assert seen.console_errors == []
    bars = [c for c in seen.charts if c["panels"]]
    assert len(bars) == 2
    for chart in bars:
        titles = [p["title"] for p in chart["panels"]]
        assert titles == ["Yolo and California", "By age band"]  # sex: every value suppressed
        assert chart["panels"][0]["categories"] == ["Yolo", "California"]
        age = chart["panels"][1]["categories"]
        assert age == ["0-5", "6-11", "12-17", "45-64", "65+", "unknown"]
        ticks = {tuple(p["ticks"]) for p in chart["panels"]}
        assert len(ticks) == 1, ticks  # one shared rate scale
        (shared,) = ticks
        assert all(int(t.rstrip("%")) % 5 == 0 for t in shared), shared  # nice ticks
        assert "Not drawn (every value suppressed or no data): By sex." in chart["text"]
        for bar in chart["bars"]:
            assert bar["fill"] == chart["legend"][bar["series"]]
        assert chart["legend"]["Yolo"] != chart["legend"]["California"]
    trends = [c for c in seen.charts if c["lines"]]
    assert len(trends) == 2
    for chart in trends:
        yolo = next(line for line in chart["lines"] if line["series"] == "Yolo")
        assert yolo["d"].count("M") >= 2  # February (suppressed) and March (absent) break the line
        assert yolo["stroke"] == chart["legend"]["Yolo"]
    text = seen.text
    trc = text[text.index("(TRC-30)"):text.index("(OEV-CH)")]
    assert "Sensitive measure (mental health)" not in trc and "Sensitive measure (substance" not in trc
    assert "Some units of this measure involve mental health or substance use services" in trc
    assert "2 complementary:" in trc  # the code the table uses, explained beside it
    total = suppressed_cells(table)
    assert total == 6 and int(seen.suppressed_total) == total  # per measure: Feb, F, M (code 3 hides nothing)
    assert re.search(rf"\b{total}\b of {len(table)} cells in this package are suppressed", text)


def test_every_chart_spec_is_valid_vega_lite_and_renders_in_order():
    """The specs are built as plain Vega-Lite JSON (no schema check at publish time, for speed), so
    each kind the report draws is checked here against the Vega-Lite schema altair ships, and the
    batch renderer must hand back each chart's own SVG in the order given."""
    import altair as alt

    from jobs.publish import report_charts
    from jobs.publish.report_charts import STATE, Point

    pts = [Point("Yolo", "2025-01", 0.3, 0.25, 0.35), Point(STATE, "2025-01", 0.4, 0.35, 0.45),
           Point("Yolo", "2025-03", 0.2), Point("Yolo", "2025-04", None, note="suppressed")]
    line = report_charts.trend("Rate by month", pts, series=["Yolo", STATE])
    panels = report_charts.bars("2025: Yolo and California", [
        ("Yolo and California", [Point("Yolo", "Yolo", 0.3, 0.2, 0.4), Point(STATE, STATE, 0.35, 0.3, 0.4)]),
        ("By age band", [Point("Yolo", "6-11", 0.3), Point("Yolo", "0-5", None, note="suppressed")]),
        ("By sex", [Point("Yolo", "F", None, note="suppressed")])], series=["Yolo", STATE])
    empty = report_charts.trend("Nothing", [Point("Yolo", "2025-01", None, note="suppressed")], series=["Yolo"])
    assert empty.spec is None and empty.empty_reason.startswith("No chart")
    assert panels.empty_reason == "Not drawn (every value suppressed or no data): By sex."
    alt.LayerChart.from_dict(line.spec, validate=True)
    alt.VConcatChart.from_dict(panels.spec, validate=True)
    # the indicators' kind: the LHJ and the state side by side per category, a per-1,000 axis
    grouped = report_charts.bars("Use of care", [("Use of care", [
        Point("Yolo", "ED visits", 21.2, 18.5, 24.2), Point(STATE, "ED visits", 22.1, 20.1, 24.4),
        Point("Yolo", "Dental visits", None, note="suppressed"), Point(STATE, "Dental visits", 40.0)])],
        series=["Yolo", STATE], natural=["ED visits", "Dental visits"], per="per 1,000 member-months")
    alt.VConcatChart.from_dict(grouped.spec, validate=True)
    layer = grouped.spec["vconcat"][0]["layer"][0]["encoding"]
    assert layer["x"]["stack"] is None and layer["yOffset"]["field"] == "series"  # never stacked
    assert grouped.spec["vconcat"][0]["layer"][0]["encoding"]["x"]["scale"]["domain"] == [0, 50]

    drawn = report_charts.render([line, empty, panels], workers=2)
    assert [c.title for c in drawn] == ["Rate by month", "Nothing", "2025: Yolo and California"]
    assert drawn[1].svg == ""
    assert drawn[0].svg.startswith('<svg role="img"') and "2025-02" in drawn[0].svg  # the gap month is on the axis
    assert "By age band" in drawn[2].svg and "Rate by month" not in drawn[2].svg
    colours = report_charts.spec_colours(drawn[2].svg)
    assert colours["legend"] == {"Yolo": report_charts.LHJ_COLOUR, STATE: report_charts.STATE_COLOUR}
    assert colours["marks"] == {"Yolo": {report_charts.LHJ_COLOUR}, STATE: {report_charts.STATE_COLOUR}}
