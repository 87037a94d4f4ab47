"""Synthetic LHJ measure feeds with exact margins (for tests, the benchmark and demos).

Counts are drawn for the finest cross-classification of the stratifiers, then summed up to the
two-way, one-way and total rows, so every additive relation holds exactly, as in a real feed.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from privacy.cell_relations import ALL

DEFAULT_STRATIFIERS: dict[str, tuple[str, ...]] = {
    "age_band": ("0-17", "18-64", "65+"),
    "sex": ("F", "M"),
    "race_ethnicity": ("Hispanic", "White", "Black", "Asian", "AIAN", "NHPI", "Multiple", "Other"),
}
CA_LHJS: tuple[str, ...] = (
    "Alameda", "Alpine", "Amador", "Butte", "Calaveras", "Colusa", "Contra Costa", "Del Norte", "El Dorado",
    "Fresno", "Glenn", "Humboldt", "Imperial", "Inyo", "Kern", "Kings", "Lake", "Lassen", "Los Angeles",
    "Madera", "Marin", "Mariposa", "Mendocino", "Merced", "Modoc", "Mono", "Monterey", "Napa", "Nevada",
    "Orange", "Placer", "Plumas", "Riverside", "Sacramento", "San Benito", "San Bernardino", "San Diego",
    "San Francisco", "San Joaquin", "San Luis Obispo", "San Mateo", "Santa Barbara", "Santa Clara",
    "Santa Cruz", "Shasta", "Sierra", "Siskiyou", "Solano", "Sonoma", "Stanislaus", "Sutter", "Tehama",
    "Trinity", "Tulare", "Tuolumne", "Ventura", "Yolo", "Yuba", "Berkeley", "Long Beach", "Pasadena",
)


def _wilson(n: int, d: int, z: float = 1.96) -> tuple[float, float]:
    if d == 0:
        return (math.nan, math.nan)
    p = n / d
    denom = 1 + z * z / d
    centre = (p + z * z / (2 * d)) / denom
    half = z * math.sqrt(p * (1 - p) / d + z * z / (4 * d * d)) / denom
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


def make_feed(lhjs: tuple[str, ...] | list[str] = ("Alpha", "Beta"), measures: tuple[str, ...] = ("M1",),
              periods: tuple[str, ...] = ("2024",), stratifiers: dict[str, tuple[str, ...]] | None = None,
              two_way: tuple[str, ...] = ("age_band*sex",), *, mean_denominator: float = 40.0,
              rate: float = 0.3, seed: int = 0, geography_total: str | None = None) -> pd.DataFrame:
    """A consistent feed; ``mean_denominator`` is per finest cell (small values give small cells)."""
    rng = np.random.default_rng(seed)
    strat = dict(stratifiers or DEFAULT_STRATIFIERS)
    dims = list(strat)
    finest = list(itertools.product(*(strat[d] for d in dims)))
    rows = []
    lhj_list = list(lhjs)
    sums: dict[tuple[str, ...], list[int]] = {}
    for lhj, measure, period in itertools.product(lhj_list, measures, periods):
        scale = rng.lognormal(0.0, 1.0)
        den = rng.poisson(mean_denominator * scale, size=len(finest))
        p = np.clip(rng.beta(2, 2 / max(rate, 1e-3) - 2 if rate < 1 else 1, size=len(finest)), 0, 1)
        num = rng.binomial(den, p)
        cells = {c: (int(n), int(d)) for c, n, d in zip(finest, num, den, strict=True)}

        def total_of(pred, cells=cells):  # noqa: ANN001, ANN202
            n = sum(v[0] for c, v in cells.items() if pred(c))
            d = sum(v[1] for c, v in cells.items() if pred(c))
            return n, d

        out = [(ALL, ALL, total_of(lambda c: True))]
        for i, dim in enumerate(dims):
            for val in strat[dim]:
                out.append((dim, val, total_of(lambda c, i=i, val=val: c[i] == val)))
        for tw in two_way:
            a, b = tw.split("*")
            ia, ib = dims.index(a), dims.index(b)
            for va, vb in itertools.product(strat[a], strat[b]):
                out.append((tw, f"{va}*{vb}", total_of(lambda c, ia=ia, ib=ib, va=va, vb=vb: c[ia] == va and c[ib] == vb)))
        for s, st, (n, d) in out:
            rows.append((lhj, measure, period, s, st, n, d))
            if geography_total:
                acc = sums.setdefault((measure, period, s, st), [0, 0])
                acc[0] += n
                acc[1] += d
    if geography_total:
        for (measure, period, s, st), (n, d) in sums.items():
            rows.append((geography_total, measure, period, s, st, n, d))
    df = pd.DataFrame(rows, columns=["lhj", "measure_id", "period", "stratifier", "stratum", "numerator",
                                     "denominator"])
    df["rate"] = np.where(df["denominator"] > 0, 100 * df["numerator"] / df["denominator"].where(df["denominator"] > 0), np.nan)
    ci = [_wilson(n, d) for n, d in zip(df["numerator"], df["denominator"], strict=True)]
    df["ci_low"] = [c[0] for c in ci]
    df["ci_high"] = [c[1] for c in ci]
    df["annotation"] = pd.array([pd.NA] * len(df), dtype="Int64")
    return df
