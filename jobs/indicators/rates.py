"""Crude and directly age-standardised rates with gamma intervals, and year-over-year change.

What NCHS and CDPH publish, and why these methods:

* **Direct standardisation** (NCHS Healthy People 2010 Statistical Notes no. 20): the adjusted
  rate is ``sum_i w_i * x_i / n_i`` with ``w_i`` the share of the 2000 U.S. standard population
  in age group ``i`` (mappings/indicators/standard_population.yaml), restricted to the age
  groups the indicator covers and renormalised to sum to 1 (an adults-only indicator is adjusted
  over the adult groups). An age group without population in the stratum contributes a rate of 0
  (its count is 0 too); the report says which strata lack a group (``groups_missing``).
* **Gamma interval** (Fay MP, Feuer EJ. Confidence intervals for directly standardized rates: a
  method based on the gamma distribution. Stat Med 1997;16:791-801), the method of NCHS's
  health statistics and CDPH's County Health Status Profiles: with ``y`` the adjusted rate,
  ``v = sum w_i^2 x_i / n_i^2`` its variance and ``w_M = max_i w_i / n_i``::

      lower = Gamma^-1(alpha/2; shape y^2/v, scale v/y)                     (0 when x = 0)
      upper = Gamma^-1(1-alpha/2; shape (y+w_M)^2/(v+w_M^2), scale (v+w_M^2)/(y+w_M))

  With one group this is the exact (Garwood) Poisson interval, so crude rates use the same
  function. ``method="tiwari"`` (Tiwari RC, Clegg LX, Zou Z. Efficient interval estimation for
  age-adjusted cancer rates. Stat Methods Med Res 2006;15:547-569) replaces ``w_M`` by the mean
  of ``w_i / n_i`` over the groups (and ``w_M^2`` by the mean of their squares): shorter upper
  limits with coverage still close to 95%; SEER*Stat offers it. Fay-Feuer is the default.
  Prevalences (members with a condition / members) are treated as Poisson counts, as NCHS does
  for age-adjusted prevalence from administrative data: slightly wide when prevalence is high.
* **Year-over-year change**: the difference of two independent rates with a normal interval
  ``d +/- z * sqrt(v1 + v2)`` (NCHS's test of the difference between two age-adjusted rates),
  and the rate ratio with a log-normal interval.

Pure numpy/scipy: the indicator cells are small once the engine has grouped them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Method = Literal["fay-feuer", "tiwari"]
ALPHA = 0.05


@dataclass(frozen=True)
class Rate:
    """A rate per ``multiplier`` with its interval and variance (on the same scale)."""

    rate: float | None
    low: float | None
    high: float | None
    variance: float | None


NONE = Rate(None, None, None, None)


def weights(std: Sequence[float], use: Sequence[bool]) -> np.ndarray:
    """Standard population counts -> proportions over the groups in ``use`` (others 0)."""
    w = np.where(np.asarray(use, dtype=bool), np.asarray(std, dtype=float), 0.0)
    total = float(w.sum())
    if total <= 0:
        raise ValueError("no standard population weight in the groups used")
    out: np.ndarray = w / total
    return out


def gamma_limits(y: np.ndarray, v: np.ndarray, wm: np.ndarray, wm2: np.ndarray,
                 alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Fay-Feuer limits for estimates ``y`` with variances ``v`` (``wm``/``wm2``: the added weight
    and its square; Fay-Feuer max w_i/n_i and its square, Tiwari the means). Vectorised."""
    y, v, wm, wm2 = (np.asarray(a, dtype=float) for a in (y, v, wm, wm2))
    pos = (y > 0) & (v > 0)
    ys, vs = np.where(pos, y, 1.0), np.where(pos, v, 1.0)
    low = np.where(pos, stats.gamma.ppf(alpha / 2, ys * ys / vs, scale=vs / ys), 0.0)
    ok = (y + wm > 0) & (v + wm2 > 0)
    top, var = np.where(ok, y + wm, 1.0), np.where(ok, v + wm2, 1.0)
    high = stats.gamma.ppf(1 - alpha / 2, top * top / var, scale=var / top)
    return low, np.where(ok, high, 0.0)


def adjusted_arrays(x: np.ndarray, n: np.ndarray, w: np.ndarray, *, method: Method = "fay-feuer",
                    alpha: float = ALPHA) -> dict[str, np.ndarray]:
    """Directly standardised rates of many cells at once: ``x``, ``n``, ``w`` are (cells x age
    groups); each row of ``w`` holds proportions summing to 1 over the groups used (0 elsewhere).
    Returns rate, low, high, variance (per person, not multiplied) and ``missing`` (groups used
    without population); rate is NaN where no group used has population."""
    x, n, w = (np.asarray(a, dtype=float) for a in (x, n, w))
    used = w > 0
    has = (n > 0) & used
    if ((x > 0) & ~(n > 0) & used).any():
        raise ValueError("a count in an age group without population")
    safe = np.where(has, n, 1.0)
    y = np.where(has, w * x / safe, 0.0).sum(axis=1)
    v = np.where(has, w * w * x / (safe * safe), 0.0).sum(axis=1)
    ratio = np.where(has, w / safe, 0.0)
    if method == "fay-feuer":
        wm = ratio.max(axis=1)
        wm2 = wm * wm
    elif method == "tiwari":
        k = np.maximum(has.sum(axis=1), 1)
        wm, wm2 = ratio.sum(axis=1) / k, (ratio * ratio).sum(axis=1) / k
    else:
        raise ValueError(f"unknown interval method {method!r}")
    low, high = gamma_limits(y, v, wm, wm2, alpha)
    none = ~has.any(axis=1)
    nan = np.full(y.shape, np.nan)
    return {"rate": np.where(none, nan, y), "low": np.where(none, nan, low), "high": np.where(none, nan, high),
            "variance": np.where(none, nan, v), "missing": (used & ~(n > 0)).sum(axis=1)}


def adjusted(x: Sequence[float], n: Sequence[float], w: Sequence[float], *, multiplier: float = 1.0,
             method: Method = "fay-feuer", alpha: float = ALPHA) -> Rate:
    """Directly standardised rate of counts ``x`` over populations ``n`` with weights ``w``
    (proportions summing to 1 over the groups used; groups with weight 0 are ignored)."""
    r = adjusted_arrays(np.asarray([x], dtype=float), np.asarray([n], dtype=float), np.asarray([w], dtype=float),
                        method=method, alpha=alpha)
    if np.isnan(r["rate"][0]):
        return NONE
    m = float(multiplier)
    return Rate(float(r["rate"][0]) * m, float(r["low"][0]) * m, float(r["high"][0]) * m,
                float(r["variance"][0]) * m * m)


def crude(x: float, n: float, *, multiplier: float = 1.0, alpha: float = ALPHA) -> Rate:
    """Crude rate ``x / n`` with the exact Poisson (Garwood) interval: the gamma method with one group."""
    if n <= 0:
        return NONE
    return adjusted([x], [n], [1.0], multiplier=multiplier, alpha=alpha)


@dataclass(frozen=True)
class Change:
    """Later minus earlier rate, its interval, and the ratio later / earlier with its interval."""

    difference: float | None
    low: float | None
    high: float | None
    ratio: float | None
    ratio_low: float | None
    ratio_high: float | None


def change(earlier: Rate, later: Rate, *, alpha: float = ALPHA) -> Change:
    """Year-over-year change of two independent rates (same multiplier)."""
    if earlier.rate is None or later.rate is None or earlier.variance is None or later.variance is None:
        return Change(None, None, None, None, None, None)
    z = float(stats.norm.ppf(1 - alpha / 2))
    d = later.rate - earlier.rate
    se = float(np.sqrt(earlier.variance + later.variance))
    ratio = rlo = rhi = None
    if earlier.rate > 0 and later.rate > 0:
        ratio = later.rate / earlier.rate
        se_log = float(np.sqrt(earlier.variance / earlier.rate ** 2 + later.variance / later.rate ** 2))
        rlo, rhi = ratio * float(np.exp(-z * se_log)), ratio * float(np.exp(z * se_log))
    return Change(d, d - z * se, d + z * se, ratio, rlo, rhi)
