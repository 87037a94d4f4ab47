"""Cross-feed differencing: every LHJ package carries the statewide rows, and all LHJ feeds may be
public together, so the LP attack runs over the union of every LHJ's published table and the
statewide rows, with the geography relation (state = sum of the LHJs)."""

from __future__ import annotations

import pandas as pd

from jobs.publish import lhj_feed, lhj_suppression
from jobs.publish.lhj_cube import ALL, CELL_COLUMNS
from phmx.synth.measure_feed import make_feed
from privacy.attack import audit
from privacy.suppression import SuppressionSpec

STATE = "California"
QUARTERS = ("2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4")
LHJS = ("Alpine", "Sierra", "Modoc", "Mono", "Inyo")


def run_cells(seed: int = 3) -> pd.DataFrame:
    """Cells of a small run: 5 LHJs, quarters and their year, one-way strata, and the state rows."""
    strat = {"age_band": ("0-17", "18-64", "65+"), "sex": ("F", "M")}
    q = make_feed(LHJS, measures=("OEV-CH", "FUM-30"), periods=QUARTERS, stratifiers=strat, two_way=(),
                  mean_denominator=2.5, seed=seed)
    cols = ["lhj", "measure_id", "period", "stratifier", "stratum", "numerator", "denominator"]
    y = q.groupby(cols[:2] + cols[3:5], as_index=False, sort=False)[["numerator", "denominator"]].sum()
    y["period"] = "2025"
    lhj = pd.concat([q[cols], y[cols]], ignore_index=True)
    state = lhj.groupby(cols[1:5], as_index=False, sort=False)[["numerator", "denominator"]].sum()
    state["lhj"] = STATE
    cells = pd.concat([lhj, state[cols]], ignore_index=True)
    cells["sensitivity"] = cells["measure_id"].map({"FUM-30": "mh"}).fillna("general")
    cells["sensitive"] = cells["sensitivity"] != "general"
    return cells[CELL_COLUMNS]


def union_audit(published: dict[str, pd.DataFrame], state_rows: pd.DataFrame, cells: pd.DataFrame):  # noqa: ANN201
    union = pd.concat([*(t[lhj_feed.OUTPUT_COLUMNS] for t in published.values()),
                       state_rows[lhj_feed.OUTPUT_COLUMNS]], ignore_index=True)
    spec = SuppressionSpec.from_dict({**lhj_suppression.privacy_spec(cells), "geography_total": STATE})
    return audit(union, spec)


def test_union_of_every_lhj_feed_and_the_state_rows_passes_the_attack():
    cells = run_cells()
    state = cells[cells["lhj"] == STATE].reset_index(drop=True)
    published = {x: lhj_feed.suppress_and_finalize(cells[cells["lhj"] == x].reset_index(drop=True), "wilson")[0]
                 for x in LHJS}
    assert all(t["numerator"].isna().any() for t in published.values())  # there is something to protect

    # The statewide totals as the state table alone would publish them: state minus the other LHJs
    # gives suppressed LHJ totals back.
    naive = lhj_feed.suppress_and_finalize(state[state["stratifier"] == ALL].reset_index(drop=True), "wilson")[0]
    leaks = union_audit(published, naive, cells).failures
    assert leaks and any(f["lhj"] in LHJS and f["stratifier"] == ALL for f in leaks)

    # The rule: a statewide count where every LHJ publishes that count (it is their sum), and
    # beyond that only counts the LP attacker over the union still cannot use.
    rows = lhj_feed.state_table(state, "wilson", published)
    rep = union_audit(published, rows, cells)
    assert rep.ok, rep.failures[:3]
    assert rows["denominator"].notna().any()  # the rule keeps what is safe
    truth = state[state["stratifier"] == ALL].set_index(["measure_id", "period"])
    strict = 0
    for col in ("numerator", "denominator"):
        for _, r in rows.iterrows():
            lhj_rows = [t[(t.measure_id == r.measure_id) & (t.period == r.period) & (t.stratifier == ALL)]
                        for t in published.values()]
            every = all(x[col].notna().iloc[0] for x in lhj_rows)
            if every:  # the every-LHJ rule: always shown, and it is the sum of published counts
                strict += 1
                assert int(r[col]) == sum(int(x[col].iloc[0]) for x in lhj_rows)
            if pd.notna(r[col]):
                assert int(r[col]) == int(truth.loc[(r.measure_id, r.period), col])
                assert not 0 < int(r[col]) < 11  # never a small statewide count
    shown = int(rows["numerator"].notna().sum() + rows["denominator"].notna().sum())
    assert shown > strict  # the LP-checked reveal shows more than the every-LHJ rule alone
    assert rows.loc[rows["numerator"].isna() | rows["denominator"].isna(), "rate"].isna().all()
    assert set(rows["annotation"].dropna()) <= {"1", "2", "3"}


def test_without_the_lhj_tables_no_statewide_count_is_published():
    cells = run_cells(seed=5)
    state = cells[cells["lhj"] == STATE].reset_index(drop=True)
    rows = lhj_feed.state_table(state, "wilson")
    assert len(rows) == (state["stratifier"] == ALL).sum()
    assert rows["numerator"].isna().all() and rows["denominator"].isna().all() and rows["rate"].isna().all()
