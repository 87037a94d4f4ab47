"""The suppression shapes that made LHJ feeds fail the attacker audit (the 100k-member benchmark),
the implied count (denominator - numerator), the withhold fallback, and a property over random
multi-dimensional tables with period roll-ups."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from phmx.errors import PrivacyError
from phmx.synth.measure_feed import make_feed
from privacy.attack import IMPLIED, audit
from privacy.cell_relations import ALL, build_system
from privacy.suppression import SuppressionSpec, suppress

FORCE = SuppressionSpec(always_mask=True)
COLS = ["lhj", "measure_id", "period", "stratifier", "stratum", "numerator", "denominator"]


def table(rows: list[tuple[str, str, int, int]], measure: str = "M1", period: str = "2025") -> pd.DataFrame:
    df = pd.DataFrame([("Alpha", measure, period, s, u, n, d) for s, u, n, d in rows], columns=COLS)
    df["rate"] = df["numerator"] / df["denominator"].where(df["denominator"] > 0)
    df["ci_low"] = df["rate"]
    df["ci_high"] = df["rate"]
    df["annotation"] = pd.array([pd.NA] * len(df), dtype="Int64")
    return df


def blank(df: pd.DataFrame, cells: list[tuple[str, str, str]]) -> pd.DataFrame:
    """``df`` with the named (stratifier, stratum, column) counts empty, and their rows' rates."""
    out = df.copy()
    for c in ("numerator", "denominator"):
        out[c] = out[c].astype("Int64")
    for s, u, col in cells:
        hit = (out["stratifier"] == s) & (out["stratum"] == u)
        out.loc[hit, col] = pd.NA
        out.loc[hit, ["rate", "ci_low", "ci_high"]] = float("nan")
    return out


# The FUM-30 shape of one LHJ in the benchmark: the attacker got sex=F's numerator in [1, 24].
BENCH_SHAPE = [
    (ALL, ALL, 23, 35),
    ("sex", "F", 16, 24), ("sex", "M", 7, 11), ("sex", "U", 0, 0),
    ("plan", "BLC001", 11, 15), ("plan", "SRA001", 12, 20),
]


def test_a_lower_bound_from_a_co_suppressed_denominator_is_found_and_repaired():
    # What the old complements published: M's numerator (7) and F's numerator (complement), BLC001's
    # numerator and M's denominator hidden. SRA001's 12 forces total >= 12, and M <= its denominator,
    # which is the published total 35 minus F's published 24: so F >= 12 - 11 = 1.
    before = blank(table(BENCH_SHAPE), [("sex", "M", "numerator"), ("sex", "M", "denominator"),
                                        ("sex", "F", "numerator"), ("plan", "BLC001", "numerator"),
                                        (ALL, ALL, "numerator")])
    rep = audit(before, exact=True)
    fail = next(f for f in rep.failures if f["stratum"] == "F" and f["column"] == "numerator")
    assert fail["low"] == pytest.approx(1) and fail["high"] == pytest.approx(24)
    # the LP duals name the published cells that pin that minimum
    pins = {(before.iloc[c // 2]["stratum"], ("numerator", "denominator")[c % 2]) for c in rep.binding(fail)}
    assert ("SRA001", "numerator") in pins and ("F", "denominator") in pins
    out = suppress(table(BENCH_SHAPE), FORCE)
    assert audit(out, exact=True).ok
    assert out.attrs["privacy.suppression"]["audit"]["ok"]


def test_the_implied_count_is_a_small_cell_too():
    # 95 of 100 met the measure: 5 did not, a small count (DDG 4.4.1); the numerator is primary
    out = suppress(table([(ALL, ALL, 135, 400), ("sex", "F", 95, 100), ("sex", "M", 40, 300)]), FORCE)
    f = out[out["stratum"] == "F"].iloc[0]
    # code 4, not 1: the hidden numerator (95) is not a small count, its complement (5) is
    assert pd.isna(f["numerator"]) and f["annotation"] == 4 and pd.isna(f["rate"])
    assert out.attrs["privacy.suppression"]["primary"] == 1
    assert audit(out, exact=True).ok


def test_the_attacker_bounds_implied_counts():
    # Both numerators hidden: each is >= 15 (fine as a cell), but F's 25 - numerator is in [0, 5]
    pub = blank(table([(ALL, ALL, 40, 45), ("sex", "F", 22, 25), ("sex", "M", 18, 20)]),
                [("sex", "F", "numerator"), ("sex", "M", "numerator")])
    rep = audit(pub, exact=True)
    assert {f["column"] for f in rep.failures} == {IMPLIED}
    implied = [f for f in rep.failures if f["stratum"] == "F"][0]
    assert implied["low"] == pytest.approx(0) and implied["high"] == pytest.approx(5)
    # everyone met the measure and that is provable: as publishable as a zero, not a failure
    zero = blank(table([(ALL, ALL, 40, 40), ("sex", "F", 25, 25), ("sex", "M", 15, 15)]),
                 [("sex", "F", "numerator"), ("sex", "M", "numerator")])
    assert not [f for f in audit(zero, exact=True).failures if f["column"] == IMPLIED]


def test_suppression_repairs_an_implied_failure():
    out = suppress(table([(ALL, ALL, 40, 45), ("sex", "F", 22, 25), ("sex", "M", 18, 20)]), FORCE)
    assert audit(out, exact=True).ok
    assert out["numerator"].isna().sum() >= 2


def test_report_mode_names_the_measures_it_could_not_protect():
    # max_rounds=0 stops before any audit repair: the failing measure is reported, not raised
    spec = SuppressionSpec(always_mask=True, max_rounds=0)
    df = pd.concat([table(BENCH_SHAPE, measure="M1"), table([(ALL, ALL, 500, 900)], measure="M2")],
                   ignore_index=True)
    out = suppress(df, spec, on_failure="report")
    failed = out.attrs["privacy.suppression"]["failed_measures"]
    assert failed and {m for _, m in failed} <= {"M1"}
    with pytest.raises(PrivacyError, match="bounded too tightly"):
        suppress(df, spec)


def _periods_feed(seed: int, mean: float, two_way: bool, n_lhj: int = 1) -> tuple[pd.DataFrame, SuppressionSpec]:
    """Quarters from the generator, the year as their sum (numerators and denominators)."""
    quarters = ("2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4")
    strat = {"age_band": ("0-17", "18-64", "65+"), "sex": ("F", "M"), "race": ("A", "B", "C")}
    q = make_feed(tuple(f"L{i}" for i in range(n_lhj)), measures=("OEV",), periods=quarters, stratifiers=strat,
                  two_way=("age_band*sex",) if two_way else (), mean_denominator=mean, seed=seed)
    y = q.groupby(["lhj", "measure_id", "stratifier", "stratum"], as_index=False, sort=False)[
        ["numerator", "denominator"]].sum()
    y["period"] = "2024"
    df = pd.concat([q[COLS], y[COLS]], ignore_index=True)
    df["rate"] = df["numerator"] / df["denominator"].where(df["denominator"] > 0)
    df["annotation"] = pd.array([pd.NA] * len(df), dtype="Int64")
    spec = SuppressionSpec(always_mask=True, period_rollups={"2024": quarters},
                           period_rollup_columns=("numerator", "denominator"))
    return df, spec


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking: a failure prints its seed
@given(seed=st.integers(0, 10_000), mean=st.floats(0.3, 4.0), two_way=st.booleans())
def test_random_tables_with_period_rollups_pass_and_stay_additive(seed, mean, two_way):
    df, spec = _periods_feed(seed, mean, two_way)
    out = suppress(df, spec)
    rep = audit(out, spec)
    assert rep.ok, rep.failures[:3]
    for col in ("numerator", "denominator"):
        shown = out[col].notna()
        assert (out.loc[shown, col] == df.loc[shown, col]).all()  # published values are the true ones
        assert not ((out[col] > 0) & (out[col] < 11)).any()
    gap = out["denominator"] - out["numerator"]
    assert not ((gap > 0) & (gap < 11)).fillna(False).any()  # no small implied count published
    # every relation whose cells are all published still adds up (strata to totals, quarters to years)
    vals = [v for n, d in zip(out["numerator"], out["denominator"], strict=True) for v in (n, d)]
    system = build_system(out, period_rollups=spec.period_rollups,
                          period_rollup_columns=spec.period_rollup_columns)
    for rel in system.relations:
        parts = [vals[c] for c in rel.children]
        if not pd.isna(vals[rel.parent]) and not any(pd.isna(p) for p in parts):
            assert vals[rel.parent] == sum(parts)
    assert out.loc[out["numerator"].isna() | out["denominator"].isna(), "rate"].isna().all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.generate])
@given(cells=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), min_size=2, max_size=6),
       hide=st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["numerator", "denominator"])), min_size=1,
                     max_size=4))
def test_a_group_of_one_relation_gets_the_exact_lps_intervals_without_solving(cells, hide):
    """privacy.attack decides a group whose LP is one relation plus the rows' bounds in closed form
    (most groups of a suppressed table); its intervals, cells and implied counts alike, equal the
    two exact LPs' of every variable, and an inconsistent table is still reported as such."""
    from privacy import attack
    from privacy.cell_relations import values

    rows = [("sex", f"S{i}", min(a, b), max(a, b)) for i, (a, b) in enumerate(cells)]
    df = table([(ALL, ALL, sum(r[2] for r in rows), sum(r[3] for r in rows)), *rows])
    names = [ALL] + [r[1] for r in rows]
    pub = blank(df, [("sex" if names[i % len(names)] != ALL else ALL, names[i % len(names)], col)
                     for i, col in hide])
    system = build_system(pub)
    vals = values(pub)
    rel_index = system.relations_of()
    for comp in attack.components(system, vals):
        lp = attack._build_lp(system, vals, comp, rel_index)
        closed = attack._one_equation(lp)
        if closed is False:
            continue
        real = attack._one_equation
        try:
            attack._one_equation = lambda _lp: False  # the LPs themselves
            exact = attack.solve_component(system, vals, comp, rel_index, exact=True)
        finally:
            attack._one_equation = real
        assert (closed is None) == (exact is None)
        if exact is None:
            continue
        for got, want in zip(closed, exact, strict=True):
            assert got.keys() == want.keys()
            for k, b in want.items():
                assert got[k].low == pytest.approx(b.low, abs=1e-6)
                assert got[k].high == pytest.approx(b.high, abs=1e-6) or got[k].high == b.high == float("inf")


def test_cells_an_equality_ties_are_one_variable_of_the_attackers_lp():
    """A population count hidden by sex hides the same count as a prevalence indicator's
    denominator (shared_denominators): one LP variable per count, and the bounds the relations
    give (30 members = F + M, F with 2 cases, M with 3)."""
    from privacy import attack
    from privacy.cell_relations import values

    pop = table([(ALL, ALL, 0, 30), ("sex", "F", 0, 12), ("sex", "M", 0, 18)], measure="POP")
    ind = table([(ALL, ALL, 5, 30), ("sex", "F", 2, 12), ("sex", "M", 3, 18)], measure="A")
    both = pd.concat([pop, ind], ignore_index=True)
    pub = blank(both, [("sex", "F", "denominator"), ("sex", "M", "denominator")])
    sp = SuppressionSpec(shared_denominators={"A": "POP"})
    system = build_system(pub, shared_denominators={"A": "POP"})
    vals = values(pub)
    (comp,) = attack.components(system, vals)
    lp = attack._build_lp(system, vals, comp, system.relations_of())
    assert len(comp) == 4 and lp.n_cells == 2
    report = attack.audit(pub, sp, exact=True)
    by_row = {(r.measure_id, r.stratum): i for i, r in pub.iterrows()}
    for m in ("POP", "A"):
        f, male = report.bounds[by_row[(m, "F")] * 2 + 1], report.bounds[by_row[(m, "M")] * 2 + 1]
        assert (f.low, f.high) == pytest.approx((2, 27)) and (male.low, male.high) == pytest.approx((3, 28))
    f_without = report.implied_bounds[by_row[("A", "F")]]
    assert (f_without.low, f_without.high) == pytest.approx((0, 25))
