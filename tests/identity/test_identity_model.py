"""Fellegi-Sunter estimation on a small known case: EM recovers m and the match share."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from jobs.identity import config
from jobs.identity.config import Comparison, Level
from jobs.identity.model import Model, estimate_prior, expectation_maximisation, probability


def _comp(name: str, levels: int) -> Comparison:
    lv = tuple(Level("exact" if i == 0 else "levenshtein", f"l{i}", max=1 if i else None) for i in range(levels - 1))
    return Comparison(name, "gn", (*lv, Level("else", "else")))


def _expected_patterns(comps, m, u, lam, total):
    """Exact expected pattern counts under the model (conditional independence)."""
    rows = []
    for gammas in itertools.product(*[range(len(c.levels)) for c in comps]):
        pm = np.prod([m[c.name][g] for c, g in zip(comps, gammas, strict=True)])
        pu = np.prod([u[c.name][g] for c, g in zip(comps, gammas, strict=True)])
        rows.append({**{f"g_{c.name}": g for c, g in zip(comps, gammas, strict=True)},
                     "n": total * (lam * pm + (1 - lam) * pu)})
    return pd.DataFrame(rows)


def test_em_recovers_known_m_and_lambda():
    comps = (_comp("a", 3), _comp("b", 2), _comp("c", 3), _comp("d", 2))
    # gamma index 0 = else, last = exact.
    m = {"a": np.array([0.05, 0.1, 0.85]), "b": np.array([0.1, 0.9]), "c": np.array([0.02, 0.08, 0.9]),
         "d": np.array([0.2, 0.8])}
    u = {"a": np.array([0.9, 0.07, 0.03]), "b": np.array([0.7, 0.3]), "c": np.array([0.95, 0.04, 0.01]),
         "d": np.array([0.8, 0.2])}
    patterns = _expected_patterns(comps, m, u, 0.3, 100_000)
    start = {k: np.full(len(v), 1 / len(v)) for k, v in m.items()}
    for k in start:  # a weak, generic start: agreement more likely for matches
        start[k] = np.linspace(0.2, 0.8, len(start[k]))
        start[k] /= start[k].sum()
    res = expectation_maximisation(patterns, comps, u, start, 0.5, max_iterations=500, tolerance=1e-10)
    assert res.converged
    assert abs(res.lam - 0.3) < 1e-3
    for k, v in m.items():
        assert np.allclose(res.m[k], v, atol=2e-3), k


def test_em_ignores_blocked_comparisons():
    comps = (_comp("a", 2), _comp("b", 2), _comp("c", 2))
    m = {"a": np.array([0.1, 0.9]), "b": np.array([0.05, 0.95]), "c": np.array([0.1, 0.9])}
    u = {"a": np.array([0.9, 0.1]), "b": np.array([0.8, 0.2]), "c": np.array([0.9, 0.1])}
    patterns = _expected_patterns(comps, m, u, 0.2, 50_000)
    start = {k: np.array([0.3, 0.7]) for k in m}
    res = expectation_maximisation(patterns, comps, u, start, 0.5, ignore=frozenset({"a"}),
                                   max_iterations=500, tolerance=1e-10)
    assert set(res.m) == {"b", "c"}
    assert np.allclose(res.m["b"], m["b"], atol=5e-3)


def test_weights_explain_and_prior_agree():
    s = config.load()
    m = {c.name: [0.05] + [0.9 / (len(c.levels) - 1)] * (len(c.levels) - 1) for c in s.comparisons}
    u = {c.name: [0.9] + [0.1 / (len(c.levels) - 1)] * (len(c.levels) - 1) for c in s.comparisons}
    model = Model(m=m, u=u, prior=1e-4, tf_u={"given_name": 0.01}, tf_floor=1e-6)
    gammas = {c.name: len(c.levels) - 1 for c in s.comparisons}
    steps = model.explain(s, gammas, {"given_name": 0.001})
    total = sum(st["bits"] for st in steps)
    # A rare given name (0.1% of records) is stronger evidence than the average (1%).
    assert next(st for st in steps if st["comparison"] == "given_name")["tf_bits"] > 3
    assert 0.999 < probability(total) <= 1.0
    # The prior's fixed point: all-agree patterns are matches, so prior ~= their count / all pairs.
    patterns = pd.DataFrame([{**{f"g_{c.name}": len(c.levels) - 1 for c in s.comparisons}, "n": 500}])
    prior = estimate_prior(patterns, model, s, total_pairs=1e8)
    assert abs(prior - 5e-6) / 5e-6 < 0.01
    assert Model.from_json(model.to_json()).m == model.m


def test_a_near_miss_never_weighs_less_than_total_disagreement():
    # EM on a small file saw no one-digit birth-date typos among its matches: m of that level
    # is at the floor, which would make a typo count far more against a pair than a wholly
    # different date. Levels are ordinal: a near miss weighs at least what ``else`` weighs,
    # and at most what exact agreement weighs.
    from jobs.identity.model import _monotone

    u = np.array([0.90, 0.002, 0.003, 0.095])   # else, typo, similar, exact (gamma order)
    m = np.array([0.05, 1e-6, 0.20, 0.749999])
    out = _monotone(m, u, [None, None, None, None])
    bf = np.log2(out / u)
    assert abs(out.sum() - 1.0) < 1e-12
    assert bf[1] >= bf[0] - 1e-9 and bf[2] >= bf[0] - 1e-9
    assert max(bf[1], bf[2]) <= bf[3] + 1e-9


def test_m_prior_keeps_an_unseen_level_off_the_floor_and_fades_with_evidence():
    """A level no match reached in the training set (nobody had moved yet) gets a small m from
    the Dirichlet prior, not the floor; with many matches the prior's pull is a fraction of one."""
    comps = (_comp("a", 3), _comp("b", 2), _comp("c", 3), _comp("d", 2))
    # Among matches, comparison 'c' never falls to else (gamma 0): one month, nobody moved.
    m = {"a": np.array([0.05, 0.1, 0.85]), "b": np.array([0.1, 0.9]), "c": np.array([0.0, 0.2, 0.8]),
         "d": np.array([0.2, 0.8])}
    u = {"a": np.array([0.9, 0.07, 0.03]), "b": np.array([0.7, 0.3]), "c": np.array([0.95, 0.04, 0.01]),
         "d": np.array([0.8, 0.2])}
    start = {"a": np.array([0.05, 0.1, 0.85]), "b": np.array([0.05, 0.95]), "c": np.array([0.05, 0.1, 0.85]),
             "d": np.array([0.05, 0.95])}
    results = {}
    for total in (1_000, 1_000_000):
        patterns = _expected_patterns(comps, m, u, 0.2, total)
        flat = expectation_maximisation(patterns, comps, u, start, 0.5, max_iterations=500, tolerance=1e-10)
        smoothed = expectation_maximisation(patterns, comps, u, start, 0.5, max_iterations=500,
                                            tolerance=1e-10, m_prior=start, prior_pairs=50)
        results[total] = (flat, smoothed)
    flat, smoothed = results[1_000]
    assert flat.m["c"][0] < 1e-4  # next to nothing: a later move would weigh below -13 bits
    # About 200 expected matches and 50 pseudo-pairs at 5%: m(else) near 2.5 / 250.
    assert 0.005 < smoothed.m["c"][0] < 0.03
    assert np.log2(smoothed.m["c"][0] / u["c"][0]) > -8
    # The seen levels barely move, and with 200,000 matches the prior is negligible.
    assert np.allclose(smoothed.m["a"], m["a"], atol=0.01)
    _, big = results[1_000_000]
    for k, v in m.items():
        assert np.allclose(big.m[k], v, atol=1e-3), k
