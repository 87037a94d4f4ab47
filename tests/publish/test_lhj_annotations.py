"""measures.csv and indicators.csv share one set of annotation codes, and each says exactly what is
hidden: 1 a count of 1-10 of the row, 4 the numerator because denominator minus numerator is 1-10
(the numerator itself may be large), 2 complementary. The dictionary says so, and the attacker's
LP agrees: every hidden count is bounded to a range reaching 0 and 11. Counts invented."""

from __future__ import annotations

import pandas as pd

from jobs.publish import dictionary, lhj_suppression
from privacy.attack import audit


def _table() -> pd.DataFrame:
    # FUM (mental health: always masked). F: 95 of 100 met it (5 did not); M: 4 of 300; X: 60 of 400
    rows = [("all", "all", 159, 800), ("sex", "F", 95, 100), ("sex", "M", 4, 300), ("sex", "X", 60, 400)]
    return pd.DataFrame([{"lhj": "Alameda", "measure_id": "FUM-30", "period": "2025", "stratifier": s,
                          "stratum": v, "numerator": n, "denominator": d, "sensitivity": "mh"} for s, v, n, d in rows])


def test_measures_csv_says_which_count_is_small():
    truth = _table()
    out, _method, failed = lhj_suppression.suppress_report(truth)
    assert not failed
    by = out.set_index("stratum")
    assert by.loc["F", "annotation"] == "4" and pd.isna(by.loc["F", "numerator"])  # 95 hidden: 5 did not meet it
    assert by.loc["M", "annotation"] == "1" and pd.isna(by.loc["M", "numerator"])  # 4: a small count
    for r, t in zip(out.itertuples(), truth.itertuples(), strict=True):
        small = lambda v: 1 <= v <= 10  # noqa: E731
        if r.annotation == "1":
            assert small(t.numerator) or small(t.denominator)
        if r.annotation == "4":
            assert small(t.denominator - t.numerator) and not small(t.numerator) and not small(t.denominator)
    assert lhj_suppression.suppressed_cells(out) == int(out["annotation"].isin(["1", "2", "4"]).sum()) >= 3
    report = audit(out.drop(columns="sensitivity"))
    assert report.ok and report.suppressed_cells >= 3
    f_row = int(out.index[out["stratum"] == "F"][0])
    implied = report.implied_bounds[f_row]  # the 5 who did not meet the measure stay protected
    assert implied.low <= 0 and implied.high >= 11


def test_the_dictionary_explains_code_4_for_both_files():
    md = dictionary.markdown(pd.DataFrame({"measure_id": ["FUM-30"], "sensitive": [True]}), ci_method="wilson",
                             suppression_method="x", cells=4, suppressed_cells=3)
    codes = md.split("## Annotation codes", 1)[1]
    assert "| 4 | small complement |" in codes and "denominator minus numerator" in codes
    assert "(annotation 1, 2 or 4)" in md
    from jobs.publish.lhj_indicators import ANNOTATIONS

    assert "denominator minus numerator" in ANNOTATIONS["4"]
    measure_col = dict((c, d) for c, _t, d in dictionary.MEASURE_COLUMNS)["annotation"]
    assert "4 the numerator, because denominator minus numerator is 1-10" in measure_col
