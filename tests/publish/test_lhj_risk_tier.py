"""Members in the high risk tier (indicator RISK_HIGH) in the LHJ feed, with the indicators' shared
suppression: every small count hidden, the attacker's LP bounds every hidden count, and the
dictionary and FHIR bundle name it. A hand-built cube (all counts invented), no engine; the cube's
RISK_HIGH cells themselves are tested in tests/indicators/test_stage.py.
"""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from jobs.indicators.catalogue import default
from jobs.publish import lhj_indicators
from privacy.attack import audit
from privacy.suppression import SuppressionSpec

COLUMNS = ["indicator_id", "period", "lhj", "zip", "age_group", "age_band", "sex", "race_ethnicity", "language",
           "numerator", "denominator", "sensitivity"]
# (lhj, zip, members, high-risk members): one ZIP with 3 high-risk members, one with 1
PLACES = [("Long Beach", "90802", 400, 22), ("Long Beach", "90813", 60, 3), ("Los Angeles", "90001", 900, 41),
          ("Pasadena", "91101", 300, 1)]


def cube() -> pd.DataFrame:
    rows = []
    for lhj, z, members, high in PLACES:
        for i, ((ag, band), sex) in enumerate(itertools.product([("25-34", "21-44"), ("45-54", "45-64")], ["F", "M"])):
            m = members // 4 + (members % 4 if i == 0 else 0)
            h = high // 4 + (high % 4 if i == 0 else 0)
            rows.append(("RISK_HIGH", "2025", lhj, z, ag, band, sex, "Hispanic", "Spanish", h, m, "general"))
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    cat, std = default()
    return lhj_indicators.decide_all(cube(), cat, std)


def test_small_tier_counts_are_hidden_and_the_attacker_bounds_them(table):
    cat, _ = default()
    t = table[(table.indicator_id == "RISK_HIGH") & (table.rate_type == "crude")]
    zips = t[(t.stratifier == "zip") & (t.period == "2025")]
    shown = dict(zip(zips.stratum, zips.numerator, strict=True))
    assert pd.isna(shown["90813"]) and pd.isna(shown["91101"])  # 3 and 1 members: hidden
    assert shown["90001"] == 41  # a large count is published
    assert pd.isna(shown["90802"])  # complementary: Long Beach's total minus it would give 90813's 3
    spec = SuppressionSpec.from_dict(lhj_indicators.spec(lhj_indicators.audit_table(table), cat))
    report = audit(lhj_indicators.audit_table(table), spec)
    assert report.suppressed_cells > 0 and report.ok, report.failures[:3]
    assert not report.derived_leaks


def test_the_dictionary_names_the_tier_indicator(table):
    from jobs.publish import dictionary

    mine = lhj_indicators.for_lhj(table, "Long Beach")
    md = dictionary.markdown(pd.DataFrame(columns=["measure_id", "sensitive"]), ci_method="wilson",
                             suppression_method="x", indicators=mine)
    assert "| RISK_HIGH | High risk tier (rolling 12 months) |" in md
