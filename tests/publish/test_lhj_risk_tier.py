"""Members by risk tier (RISK_HIGH, RISK_RISING, RISK_LOW, RISK_NONE) in the LHJ feed. The tiers
partition the members, so the suppression and the attacker's LP carry that relation (the tier
counts add up to the MEMBERS population row: a table with its margin): every small count is
hidden, no hidden tier count can be worked out by subtraction, and a well-populated stratum
publishes every tier. A hand-built cube (all counts invented), no engine; the cube's tier cells
themselves are tested in tests/indicators/test_stage.py.
"""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from jobs.indicators.catalogue import default
from jobs.publish import lhj_indicators
from privacy.attack import audit
from privacy.cell_relations import build_system
from privacy.suppression import SuppressionSpec

COLUMNS = ["indicator_id", "period", "lhj", "zip", "age_group", "age_band", "sex", "race_ethnicity", "language",
           "numerator", "denominator", "sensitivity"]
TIERS = ("RISK_HIGH", "RISK_RISING", "RISK_LOW")
# (lhj, zip, members, high, rising, low); members without a tier (RISK_NONE) are the rest
PLACES = [("Long Beach", "90802", 400, 22, 80, 290),   # 8 without a tier
          ("Long Beach", "90813", 60, 3, 12, 44),      # 3 high, 1 without a tier
          ("Los Angeles", "90001", 900, 41, 150, 700),  # 9 without a tier
          ("Los Angeles", "90002", 800, 60, 140, 580),
          ("Pasadena", "91101", 300, 32, 64, 204)]      # every tier well populated, all members tiered


def cube() -> pd.DataFrame:
    rows = []
    for lhj, z, members, *tiers in PLACES:
        counts = dict(zip(TIERS, tiers, strict=True))
        counts["RISK_NONE"] = members - sum(tiers)
        for i, ((ag, band), sex) in enumerate(itertools.product([("25-34", "21-44"), ("45-54", "45-64")], ["F", "M"])):
            def part(n: int, i: int = i) -> int:  # four cells, remainders spread over the first ones
                return n // 4 + (1 if i < n % 4 else 0)
            m = part(members)
            cells = {iid: part(n) for iid, n in counts.items() if iid != "RISK_NONE"}
            cells["RISK_NONE"] = m - sum(cells.values())  # the cell's own members without a tier
            assert cells["RISK_NONE"] >= 0
            for iid, c in cells.items():
                rows.append((iid, "2025", lhj, z, ag, band, sex, "Hispanic", "Spanish", c, m, "general"))
            rows.append(("DIAB", "2025", lhj, z, ag, band, sex, "Hispanic", "Spanish", m // 10, m, "general"))
    return pd.DataFrame(rows, columns=COLUMNS)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    cat, std = default()
    return lhj_indicators.decide_all(cube(), cat, std)


def _crude(table: pd.DataFrame, lhj: str, stratifier: str, stratum: str) -> dict[str, object]:
    t = table[(table.rate_type == "crude") & (table.lhj == lhj) & (table.period == "2025")
              & (table.stratifier == stratifier) & (table.stratum == stratum)]
    return dict(zip(t.indicator_id, t.numerator, strict=True))


def test_the_tiers_add_up_to_the_members_in_the_suppression_and_the_audit(table):
    cat, _ = default()
    assert lhj_indicators.tier_partitions(cat) == {"MEMBERS": (*TIERS, "RISK_NONE")}
    feed = lhj_indicators.audit_table(table, cat)
    spec = SuppressionSpec.from_dict(lhj_indicators.spec(feed, cat))
    system = build_system(feed, geography_total=spec.geography_total, period_rollups=spec.period_rollups,
                          shared_denominators=spec.shared_denominators, partitions=spec.partitions)
    partition = [r for r in system.relations if r.kind == "partition"]
    assert partition and all(len(r.children) == 4 for r in partition)


def test_small_tier_counts_are_hidden_and_none_is_recoverable(table):
    cat, _ = default()
    lb = _crude(table, "Long Beach", "zip", "90813")
    assert pd.isna(lb["RISK_HIGH"]) and pd.isna(lb["RISK_NONE"])  # 3 and 1 members
    # 3 = 60 - 12 - 44 - 1 if every other count of the cell were shown: a second count is hidden
    others = [lb[i] for i in ("RISK_RISING", "RISK_LOW", "RISK_NONE", "MEMBERS")]
    assert sum(pd.isna(v) for v in others) >= 1
    assert pd.isna(_crude(table, "Los Angeles", "zip", "90001")["RISK_NONE"])  # 9 members without a tier
    feed = lhj_indicators.audit_table(table, cat)
    report = audit(feed, SuppressionSpec.from_dict(lhj_indicators.spec(feed, cat)))
    tier_cells = {c for c in report.bounds if feed.loc[c // 2, "measure_id"] in (*TIERS, "RISK_NONE")}
    assert tier_cells
    for c in tier_cells:  # each hidden tier count: at least 11 wide from 0, or at least 11
        b = report.bounds[c]
        assert (b.low <= 1e-6 and b.high >= 11 - 1e-6) or b.low >= 11 - 1e-6, feed.loc[c // 2].to_dict()
    assert report.ok and not report.derived_leaks, report.failures[:3]
    ok, figures = lhj_indicators.protected(table, cat)
    assert ok, figures


def test_a_well_populated_stratum_publishes_every_tier(table):
    pas = _crude(table, "Pasadena", "all", "all")
    assert [pas[i] for i in (*TIERS, "RISK_NONE", "MEMBERS")] == [32, 64, 204, 0, 300]
    la = _crude(table, "Los Angeles", "all", "all")
    assert la["MEMBERS"] == 1700 and la["RISK_HIGH"] == 101


def test_the_dictionary_names_the_tier_indicators(table):
    from jobs.publish import dictionary

    mine = lhj_indicators.for_lhj(table, "Long Beach")
    md = dictionary.markdown(pd.DataFrame(columns=["measure_id", "sensitive"]), ci_method="wilson",
                             suppression_method="x", indicators=mine)
    assert "| RISK_HIGH | High risk tier (rolling 12 months) |" in md
    assert "| RISK_NONE | No risk tier yet (rolling 12 months) |" in md
