"""Rates and 95% confidence intervals for proportions (numerator / denominator).

Default: the Wilson score interval (Wilson 1927; recommended over the Wald interval by Brown,
Cai and DasGupta, Statistical Science 2001), closed form, well behaved at 0 and 1 and for small
denominators. Alternative: the exact Clopper-Pearson interval (beta quantiles, scipy), more
conservative; used by some public-health agencies for small counts. The method is named in each
package's manifest and data dictionary.

Both are vectorised (numpy arrays in, arrays out); a zero denominator gives NaN everywhere.
"""

from __future__ import annotations

import numpy as np

Z95 = 1.959963984540054  # standard normal 97.5th percentile
METHODS = ("wilson", "clopper-pearson")


def rate(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0."""
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def wilson(numerator: np.ndarray, denominator: np.ndarray, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (low, high) for x successes in n trials."""
    x = np.asarray(numerator, dtype=float)
    n = np.asarray(denominator, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        low = np.where(x <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))  # exact at the edges (no float dust)
        high = np.where(x >= n, 1.0, np.clip(centre + half, 0.0, 1.0))
    bad = ~(n > 0)
    return np.where(bad, np.nan, low), np.where(bad, np.nan, high)


def clopper_pearson(numerator: np.ndarray, denominator: np.ndarray,
                    alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) interval from beta quantiles."""
    from scipy.stats import beta

    x = np.asarray(numerator, dtype=float)
    n = np.asarray(denominator, dtype=float)
    ok = n > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where((x > 0) & ok, beta.ppf(alpha / 2, x, n - x + 1), 0.0)
        high = np.where((x < n) & ok, beta.ppf(1 - alpha / 2, x + 1, n - x), 1.0)
    return np.where(ok, low, np.nan), np.where(ok, high, np.nan)


def interval(numerator: np.ndarray, denominator: np.ndarray, method: str = "wilson") -> tuple[np.ndarray, np.ndarray]:
    """The 95% interval by name (``wilson`` or ``clopper-pearson``)."""
    if method == "wilson":
        return wilson(numerator, denominator)
    if method == "clopper-pearson":
        return clopper_pearson(numerator, denominator)
    from phmx.errors import ConfigError

    raise ConfigError(f"unknown confidence interval method {method!r}", hint=f"use one of {', '.join(METHODS)}")
