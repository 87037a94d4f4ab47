"""Crude and age-adjusted rates and their gamma intervals against independent computations.

Worked example: the Down syndrome live births by maternal age and birth order of Fleiss (1981,
p. 249), the data Fay and Feuer (1997) use in their Table 1 (also the example of R's epitools
``ageadjust.direct``), standardised to the average population of the five birth orders. The
expected limits are computed here independently in the chi-square form of Fay and Feuer's paper
(scipy.stats.chi2), not with the module's gamma code. Crude intervals are checked against the
exact Poisson (Garwood) limits as tabulated (e.g. 10 events: 4.795-18.390; 0 events: 0-3.689).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from jobs.indicators.rates import adjusted, adjusted_arrays, change, crude, weights

# rows: maternal age <20, 20-24, 25-29, 30-34, 35-39, 40+; columns: birth order 1, 2, 3, 4, 5+
POP = np.array([[230061, 72202, 15050, 2293, 327], [329449, 326701, 175702, 68800, 30666],
                [114920, 208667, 207081, 132424, 123419], [39487, 83228, 117300, 98301, 149919],
                [14208, 28466, 45026, 46075, 104088], [3052, 5375, 8660, 9834, 34392]], dtype=float)
CASES = np.array([[107, 25, 3, 1, 0], [141, 150, 71, 26, 8], [60, 110, 114, 64, 63], [40, 84, 103, 89, 112],
                  [39, 82, 108, 137, 262], [25, 39, 75, 96, 295]], dtype=float)


def _chi2_limits(x: np.ndarray, n: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """Fay & Feuer (1997) eq. 5-6 in chi-square form: y, L = v/(2y) chi2(2y^2/v; .025),
    U = (v+wM^2)/(2(y+wM)) chi2(2(y+wM)^2/(v+wM^2); .975)."""
    y = float(np.sum(w * x / n))
    v = float(np.sum(w ** 2 * x / n ** 2))
    wm = float(np.max(w / n))
    low = v / (2 * y) * stats.chi2.ppf(0.025, 2 * y * y / v)
    high = (v + wm ** 2) / (2 * (y + wm)) * stats.chi2.ppf(0.975, 2 * (y + wm) ** 2 / (v + wm ** 2))
    return y, low, high


@pytest.mark.parametrize("order", range(5))
def test_fleiss_down_syndrome_example_matches_the_chi_square_form(order):
    std = POP.mean(axis=1)
    w = std / std.sum()
    r = adjusted(CASES[:, order], POP[:, order], w, multiplier=1e5)
    y, low, high = _chi2_limits(CASES[:, order], POP[:, order], w)
    assert r.rate == pytest.approx(y * 1e5, rel=1e-12)
    assert r.low == pytest.approx(low * 1e5, rel=1e-9)
    assert r.high == pytest.approx(high * 1e5, rel=1e-9)


def test_birth_order_5_upper_limit_is_wide_because_of_a_tiny_group_without_cases():
    std = POP.mean(axis=1)
    r = adjusted(CASES[:, 4], POP[:, 4], std / std.sum(), multiplier=1e5)
    assert round(r.rate, 1) == 75.5
    assert r.high > 2 * r.rate  # w_M of the 327 births under 20 dominates the upper limit


@pytest.mark.parametrize(("x", "low", "high"), [(0, 0.0, 3.689), (1, 0.0253, 5.572), (10, 4.795, 18.390),
                                                (50, 37.11, 65.92)])
def test_crude_rate_has_the_exact_poisson_interval(x, low, high):
    r = crude(x, 1000, multiplier=1000)
    assert r.rate == pytest.approx(x)
    assert r.low == pytest.approx(low, abs=2e-3)
    assert r.high == pytest.approx(high, abs=2e-3)


def test_one_group_adjusted_equals_crude_and_zero_population_gives_no_rate():
    assert adjusted([7], [350], [1.0]) == crude(7, 350)
    assert crude(0, 0).rate is None
    assert adjusted([0, 0], [0, 0], [0.5, 0.5]).rate is None


def test_weights_restrict_to_the_groups_used_and_renormalise():
    w = weights([10, 30, 60], [False, True, True])
    assert list(w) == pytest.approx([0, 1 / 3, 2 / 3])
    with pytest.raises(ValueError):
        weights([10, 30], [False, False])


def test_missing_age_group_counts_zero_and_is_reported():
    r = adjusted_arrays(np.array([[5.0, 0.0]]), np.array([[100.0, 0.0]]), np.array([[0.5, 0.5]]))
    assert r["rate"][0] == pytest.approx(0.025) and r["missing"][0] == 1
    with pytest.raises(ValueError):
        adjusted_arrays(np.array([[5.0, 1.0]]), np.array([[100.0, 0.0]]), np.array([[0.5, 0.5]]))


def test_tiwari_upper_limit_is_not_above_fay_feuer():
    std = POP.mean(axis=1)
    w = std / std.sum()
    for j in range(5):
        ff = adjusted(CASES[:, j], POP[:, j], w)
        tw = adjusted(CASES[:, j], POP[:, j], w, method="tiwari")
        assert tw.rate == ff.rate and tw.low == ff.low and tw.high <= ff.high


def test_year_over_year_change_interval():
    a, b = crude(100, 10000, multiplier=1000), crude(150, 10000, multiplier=1000)
    c = change(a, b)
    se = np.sqrt(a.variance + b.variance)
    assert c.difference == pytest.approx(5.0)
    assert c.low == pytest.approx(5.0 - 1.959964 * se, rel=1e-5) and c.high == pytest.approx(5.0 + 1.959964 * se, rel=1e-5)
    assert c.ratio == pytest.approx(1.5) and c.ratio_low < 1.5 < c.ratio_high
    assert change(a, crude(0, 0)).difference is None


def test_catalogue_refuses_unknown_keys_and_value_sets(tmp_path):
    import shutil

    import yaml

    from jobs.indicators.catalogue import MAPPINGS_DIR, load
    from phmx.errors import ConfigError

    cat, std = load()
    assert std.group_of(0) == "<1" and std.group_of(90) == "85+" and sum(g.weight for g in std.groups) == 1_000_000
    assert cat.age_cuts() == (0, 12, 18, 20, 40)
    for n, (path, edit) in enumerate([
            (("indicators", "DIAB"), lambda d: d.update(colour="red")),
            (("indicators", "HTN", "evidence", 0), lambda d: d.update(value_set="no_such_set")),
            (("indicators", "ED"), lambda d: d.update(kind="prevalence"))]):
        base = tmp_path / str(n)
        shutil.copytree(MAPPINGS_DIR, base)
        doc = yaml.safe_load((base / "indicators.yaml").read_text())
        node = doc
        for k in path:
            node = node[k]
        edit(node)
        (base / "indicators.yaml").write_text(yaml.safe_dump(doc))
        with pytest.raises(ConfigError, match="indicators.yaml: indicators"):
            load(base)
