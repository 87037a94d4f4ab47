"""Cells, rollups, confidence intervals and suppression on small pandas frames (no engine)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.publish import lhj_cube, lhj_suppression, stats
from jobs.publish.fhir_measure import period_bounds
from jobs.publish.lhj_feed import finalize
from phmx.recipients import lhj_by_recipient, recipient_id
from privacy.suppression import SuppressionSpec


def test_sixty_one_lhjs_with_recipient_ids():
    ids = lhj_by_recipient()
    assert len(ids) == 61
    assert {"lhj_alameda", "lhj_berkeley", "lhj_long_beach", "lhj_pasadena", "lhj_san_luis_obispo", "lhj_yuba"} <= set(ids)
    assert recipient_id("Long Beach") == "lhj_long_beach"


def test_wilson_and_clopper_pearson_known_values():
    lo, hi = stats.wilson(np.array([5, 0, 10]), np.array([10, 10, 10]))
    assert lo[0] == pytest.approx(0.2366, abs=1e-4) and hi[0] == pytest.approx(0.7634, abs=1e-4)
    assert lo[1] == 0.0 and hi[1] == pytest.approx(0.2775, abs=1e-4)
    assert hi[2] == 1.0 and lo[2] == pytest.approx(0.7225, abs=1e-4)
    lo, hi = stats.clopper_pearson(np.array([0, 5]), np.array([10, 10]))
    assert hi[0] == pytest.approx(0.3085, abs=1e-4) and lo[1] == pytest.approx(0.1871, abs=1e-4)
    lo, hi = stats.wilson(np.array([0]), np.array([0]))
    assert np.isnan(lo[0]) and np.isnan(hi[0])


def test_period_bounds():
    assert period_bounds("2025") == ("2025-01-01", "2025-12-31")
    assert period_bounds("2024-Q1") == ("2024-01-01", "2024-03-31")
    assert period_bounds("2024-02") == ("2024-02-01", "2024-02-29")


def _base() -> pd.DataFrame:
    rows = []
    for lhj, n in (("Alameda", 40), ("Yuba", 3)):
        for k in range(n):
            rows.append({"lhj": lhj, "measure_id": "OEV-CH", "month": f"2025-0{1 + k % 4}",
                         "age_band": ("0-5", "6-11", "unknown")[k % 3], "sex": "F" if k % 2 else "M",
                         "race_ethnicity": "white", "plan": "BC", "denominator": 1, "numerator": int(k % 3 == 0),
                         "sensitive": 0})
    return pd.DataFrame(rows).groupby(["lhj", "measure_id", "month", *lhj_cube.DIMS], as_index=False) \
        .agg(denominator=("denominator", "sum"), numerator=("numerator", "sum"), sensitive=("sensitive", "max"))


def test_rollup_partitions_zero_fills_and_adds_the_state():
    out = lhj_cube.rollup(_base(), lhj_cube.Scope("all"))
    assert set(out["lhj"]) == {"Alameda", "Yuba", "California"}
    a = out[out.lhj == "Alameda"]
    y = out[out.lhj == "Yuba"]
    assert len(a) == len(y)  # same rows for every LHJ (zero-filled)
    tot = a[(a.period == "2025") & (a.stratifier == "all")].iloc[0]
    assert (tot.numerator, tot.denominator) == (14, 40)
    for s, g in a[a.period == "2025"].groupby("stratifier"):
        assert g.denominator.sum() == 40, s
    quarters = a[(a.period.str.contains("Q")) & (a.stratifier == "all")]
    assert quarters.denominator.sum() == 40 and set(quarters.period) == {"2025-Q1", "2025-Q2"}
    state = out[(out.lhj == "California") & (out.period == "2025") & (out.stratifier == "all")].iloc[0]
    assert state.denominator == 43
    assert set(a.loc[a.stratifier == "age_band*sex", "stratum"]) >= {"unknown*F", "0-5*M"}
    month = lhj_cube.rollup(_base(), lhj_cube.Scope("2025-02"))
    assert month.empty or set(month.period) <= {"2025-01", "2025-02", "2025-03", "2025-04"}


def test_suppression_is_privacys_primary_complementary_and_implied():
    """The LHJ table goes through privacy.suppression (there is no second algorithm in publish)."""
    t = pd.DataFrame({
        "lhj": "Alameda", "measure_id": "M", "period": "2025", "stratifier": ["all", "sex", "sex", "sex"],
        "stratum": ["all", "F", "M", "unknown"], "numerator": [40, 37, 3, 0], "denominator": [100, 60, 38, 2],
        "sensitivity": "general", "sensitive": False,
    })
    out, method, failed = lhj_suppression.suppress_report(t)
    assert method.startswith("privacy.suppression.suppress") and not failed
    assert out.loc[2, "annotation"] == "1" and pd.isna(out.loc[2, "numerator"])  # 3 is small
    assert out.loc[3, "annotation"] == "1" and pd.isna(out.loc[3, "denominator"])  # 2 is small
    assert pd.isna(out.loc[1, "numerator"])  # F (37) would give M's 3 away: 40 - 37 - 0
    assert out["denominator"].isna().sum() >= 2  # 100 = 60 + 38 + 2: one more denominator goes


def test_privacy_suppression_is_used_and_leaves_nothing_derivable():
    out = lhj_cube.rollup(_base(), lhj_cube.Scope("all"))
    yuba = out[out.lhj == "Yuba"].reset_index(drop=True)
    spec = lhj_suppression.privacy_spec(yuba)
    assert spec["period_granularity"] == "month" and spec["period_rollups"]["2025"] == ["2025-Q1", "2025-Q2"]
    masked, method = lhj_suppression.suppress(yuba)
    assert method.startswith("privacy.suppression.suppress")
    final = finalize(masked, "wilson")
    for col in ("numerator", "denominator"):
        shown = final[col].dropna()
        assert not ((shown > 0) & (shown < 11)).any()
    assert final.loc[final.numerator.isna() | final.denominator.isna(), "rate"].isna().all()
    assert set(final["annotation"].dropna()) <= {"1", "2", "3", "4"}


def test_sensitive_measures_map_to_ddg_topics():
    t = pd.DataFrame({"lhj": "X", "measure_id": ["FUA-7", "OEV-CH"], "period": "2025", "stratifier": "all",
                      "stratum": "all", "numerator": [0, 0], "denominator": [0, 0],
                      "sensitivity": ["sud", "general"], "sensitive": [True, False]})
    spec = lhj_suppression.privacy_spec(t)
    assert spec["measure_topics"]["FUA-7"] == ("sud",) and "OEV-CH" not in spec["measure_topics"]
    assert spec["threshold"] == 11  # the privacy package's LHJ default spec underneath


def _yuba_two_measures() -> pd.DataFrame:
    base = _base()
    other = base.assign(measure_id="WCV")
    out = lhj_cube.rollup(pd.concat([base, other], ignore_index=True), lhj_cube.Scope("all"))
    return out[out.lhj == "Yuba"].reset_index(drop=True)


def test_less_detail_only_for_the_measure_the_audit_cannot_protect(monkeypatch):
    from jobs.publish import lhj_feed
    from privacy.attack import audit

    yuba = _yuba_two_measures()
    real = lhj_suppression.suppress_report
    seen = []

    def picky(table):  # OEV-CH "fails" while it has two-way rows; WCV always passes
        seen.append(sorted(set(table["measure_id"])))
        out, method, failed = real(table)
        two_way = table["stratifier"].str.contains("*", regex=False)
        return out, method, sorted(set(failed) | set(table.loc[two_way & (table.measure_id == "OEV-CH"), "measure_id"]))

    monkeypatch.setattr(lhj_suppression, "suppress_report", picky)
    out, method = lhj_feed.suppress_and_finalize(yuba, "wilson")
    assert seen == [["OEV-CH", "WCV"], ["OEV-CH"]]
    assert "detail level 'no two-way stratifiers' for OEV-CH" in method
    oev, wcv = out[out.measure_id == "OEV-CH"], out[out.measure_id == "WCV"]
    assert not oev["stratifier"].str.contains("*", regex=False).any() and (oev["stratifier"] == "sex").any()
    assert wcv["stratifier"].str.contains("*", regex=False).any()  # the other measure keeps full detail
    spec = SuppressionSpec.from_dict(lhj_suppression.privacy_spec(out))
    assert audit(out[lhj_feed.OUTPUT_COLUMNS], spec).ok


def test_a_measure_no_level_can_protect_is_withheld_not_the_feed(monkeypatch):
    from jobs.publish import lhj_feed

    yuba = _yuba_two_measures()
    real = lhj_suppression.suppress_report

    def never_oev(table):
        out, method, failed = real(table)
        return out, method, sorted(set(failed) | ({"OEV-CH"} & set(table["measure_id"])))

    monkeypatch.setattr(lhj_suppression, "suppress_report", never_oev)
    out, method = lhj_feed.suppress_and_finalize(yuba, "wilson")
    oev = out[out.measure_id == "OEV-CH"]
    assert list(oev["period"]) == ["2025"] and list(oev["stratifier"]) == ["all"]  # year totals, withheld
    assert oev["numerator"].isna().all() and oev["denominator"].isna().all() and oev["rate"].isna().all()
    assert set(oev["annotation"]) == {"2"}
    assert "withheld" in method and "OEV-CH" in method.split("withheld")[1]
    assert (out.measure_id == "WCV").sum() > 10 and out.loc[out.measure_id == "WCV", "numerator"].notna().any()


def test_an_unaudited_table_is_never_returned(monkeypatch):
    from jobs.publish import lhj_feed
    from phmx.errors import PrivacyError

    yuba = _yuba_two_measures()

    def leaky(table):  # hides one small numerator and nothing else, and claims success
        out = table.copy()
        out["numerator"] = out["numerator"].astype("Int64")
        small = (out["numerator"] > 0) & (out["numerator"] < 11) & (out["stratifier"] == "sex")
        out.loc[small[small].index[:1], "numerator"] = pd.NA
        out["annotation"] = None
        return out, "leaky", []

    monkeypatch.setattr(lhj_suppression, "suppress_report", leaky)
    with pytest.raises(PrivacyError, match="published LHJ measure table"):
        lhj_feed.suppress_and_finalize(yuba, "wilson")
