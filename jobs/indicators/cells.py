"""Indicator rates from the strata (gold.indicator_strata): crude and age-adjusted, for every LHJ
and the state, by period and stratum, with the state's value beside each LHJ's (gold.indicator_rate).

Everything here is pandas on the strata (a few rows per LHJ, indicator, period and age
group), vectorised so that the gamma intervals of every cell are one scipy call.

Periods: utilization by month, quarter and year (events and member-months add up over time);
prevalence by year. Stratifiers: the total (``all``/``all``), age band, sex, race/ethnicity,
preferred language and ZIP code, each on its own, for the year; months and quarters carry the
total only (the trend), as the measure feed does. Age-adjusted rates are given for every
stratifier but age band.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from jobs.indicators.catalogue import Catalogue, StandardPopulation
from jobs.indicators.rates import Method, adjusted_arrays, weights
from phmx.recipients import STATE

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ALL = "all"
STRATIFIERS: tuple[str, ...] = ("age_band", "sex", "race_ethnicity", "language", "zip")
CRUDE, ADJUSTED = "crude", "age_adjusted"
KEY = ["indicator_id", "period", "lhj", "stratifier", "stratum"]
RATE_COLUMNS = [*KEY, "numerator", "denominator", "rate_type", "rate", "ci_low", "ci_high", "per",
                "state_rate", "state_ci_low", "state_ci_high", "age_groups_missing", "sensitivity"]


def age_matrices(cells: pd.DataFrame, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(numerators, denominators) as cells x age groups, in ``labels`` order, from a pivot with
    ``numerator``/``denominator`` column groups by age group (a group absent from the pivot is 0)."""
    def matrix(part: str) -> np.ndarray:
        return np.column_stack([cells[part][g].to_numpy() if g in cells[part] else np.zeros(len(cells))
                                for g in labels])
    return matrix("numerator"), matrix("denominator")


def age_weights(cat: Catalogue, std: StandardPopulation, ids: Iterable[str]) -> np.ndarray:
    """Each cell's standard-population weights (cells x age groups): the groups inside its
    indicator's ages, re-proportioned to sum to 1."""
    per_indicator = {iid: weights([g.weight for g in std.groups], [ind.in_ages(g.low, g.high) for g in std.groups])
                     for iid, ind in cat.indicators.items()}
    return np.vstack([per_indicator[i] for i in ids])


def rate_rows(base: pd.DataFrame, crude: dict[str, np.ndarray], adjusted: dict[str, np.ndarray],
              scale: Callable[[np.ndarray], np.ndarray]) -> pd.DataFrame:
    """One crude and one age-adjusted row per cell of ``base`` (no adjusted row by age band, where
    adjustment means nothing), rate and interval passed through ``scale`` (per 1,000 and, for
    publishing, masked and rounded), with the state's row of the same kind beside each."""
    c = base.assign(rate_type=CRUDE, rate=scale(crude["rate"]), ci_low=scale(crude["low"]),
                    ci_high=scale(crude["high"]), age_groups_missing=0)
    a = base.assign(rate_type=ADJUSTED, rate=scale(adjusted["rate"]), ci_low=scale(adjusted["low"]),
                    ci_high=scale(adjusted["high"]), age_groups_missing=adjusted["missing"].astype("int64"))
    out = pd.concat([c, a[a["stratifier"] != "age_band"]], ignore_index=True)
    state = out[out["lhj"] == STATE][["indicator_id", "period", "stratifier", "stratum", "rate_type", "rate",
                                      "ci_low", "ci_high"]].rename(
        columns={"rate": "state_rate", "ci_low": "state_ci_low", "ci_high": "state_ci_high"})
    return out.merge(state, on=["indicator_id", "period", "stratifier", "stratum", "rate_type"], how="left")


def _quarter(month: str) -> str:
    return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"


def with_periods(cube: pd.DataFrame) -> pd.DataFrame:
    """Monthly utilization rows also as their quarter and year (sums); yearly rows as they are."""
    monthly = cube[cube["period"].str.len() == 7]
    out = [cube]
    if not monthly.empty:
        for label in (monthly["period"].map(_quarter), monthly["period"].str[:4]):
            out.append(monthly.assign(period=label.to_numpy()))
    return pd.concat(out, ignore_index=True)


def strata(cube: pd.DataFrame) -> pd.DataFrame:
    """Long rows (KEY + age_group, numerator, denominator): the total and each stratifier, for each
    LHJ and the state; stratified rows for years only."""
    dims = ["indicator_id", "period", "age_group"]
    geo = pd.concat([cube, cube.assign(lhj=STATE)], ignore_index=True)
    parts = [geo.groupby(["lhj", *dims], observed=True, sort=False)[["numerator", "denominator"]].sum()
             .reset_index().assign(stratifier=ALL, stratum=ALL)]
    yearly = geo[geo["period"].str.len() == 4]
    for s in STRATIFIERS:
        g = yearly.groupby(["lhj", *dims, s], observed=True, sort=False)[["numerator", "denominator"]].sum() \
            .reset_index().rename(columns={s: "stratum"}).assign(stratifier=s)
        parts.append(g)
    return pd.concat(parts, ignore_index=True)


LONG_COLUMNS = ["lhj", "indicator_id", "period", "age_group", "numerator", "denominator", "stratifier", "stratum"]


def strata_from_table(table: DataFrame) -> pd.DataFrame:
    """``strata(with_periods(cells))`` from gold.indicator_strata rows (an engine DataFrame, which
    the stage already summed by stratum: :mod:`jobs.indicators.cube`): only those rows reach
    pandas, where the monthly totals are summed into quarters and the year, and the state's rows
    are the sums of the LHJs' (a ZIP that straddles two LHJs sums both parts).

    Why the stage writes strata and not the finest cells: those grow with the population (nearly
    one per member-month), the strata stop growing once every stratum is populated."""
    from pyspark.sql import functions as F

    keys = ["lhj", "indicator_id", "period", "age_group", "stratifier", "stratum"]
    out = table.where(F.greatest(*[F.col(k).isNull() for k in keys]) == F.lit(False)).select(*LONG_COLUMNS)
    lhjs: pd.DataFrame = out.toPandas()
    lhjs["numerator"] = lhjs["numerator"].astype("int64")
    lhjs["denominator"] = lhjs["denominator"].astype("int64")
    # the quarters and years of the monthly totals (small), then the state as the sum of the LHJs
    monthly = lhjs[(lhjs["stratifier"] == ALL) & (lhjs["period"].str.len() == 7)]
    rolled = [lhjs]
    for label in (monthly["period"].map(_quarter), monthly["period"].str[:4]):
        rolled.append(monthly.assign(period=label.to_numpy()).groupby(
            ["lhj", "indicator_id", "period", "age_group", "stratifier", "stratum"], sort=False)[
            ["numerator", "denominator"]].sum().reset_index())
    lhjs = pd.concat(rolled, ignore_index=True)
    state = lhjs.groupby(["indicator_id", "period", "age_group", "stratifier", "stratum"], sort=False)[
        ["numerator", "denominator"]].sum().reset_index().assign(lhj=STATE)
    return pd.concat([lhjs[LONG_COLUMNS], state[LONG_COLUMNS]], ignore_index=True)


def rates_of_strata(long: pd.DataFrame, cat: Catalogue, std: StandardPopulation, *,
                    method: Method = "fay-feuer") -> pd.DataFrame:
    """gold.indicator_rate rows (without run_id) from the long rows of :func:`strata_from_table` (or
    :func:`strata` of finest cells in pandas)."""
    if long.empty:
        return pd.DataFrame(columns=RATE_COLUMNS)
    sens = {iid: ind.sensitivity for iid, ind in cat.indicators.items()}
    labels = list(std.labels)
    # age group matrices per cell
    cells = long.pivot_table(index=KEY, columns="age_group", values=["numerator", "denominator"],
                             aggfunc="sum", fill_value=0, observed=True)
    num_all = cells["numerator"].sum(axis=1).to_numpy()
    den_all = cells["denominator"].sum(axis=1).to_numpy()
    x, n = age_matrices(cells, labels)
    idx = cells.index.to_frame(index=False)
    per = idx["indicator_id"].map(lambda i: cat.indicators[i].multiplier).to_numpy(dtype=float)
    w = age_weights(cat, std, idx["indicator_id"])
    crude = adjusted_arrays(num_all[:, None], den_all[:, None], np.ones((len(idx), 1)), method=method)
    adj = adjusted_arrays(x, n, w, method=method)
    base = idx.assign(numerator=num_all.astype("int64"), denominator=den_all.astype("int64"),
                      per=per.astype("int64"), sensitivity=idx["indicator_id"].map(sens))
    out = rate_rows(base, crude, adj, lambda v: v * per)
    return out[RATE_COLUMNS].sort_values(["indicator_id", "lhj", "period", "stratifier", "stratum", "rate_type"],
                                         ignore_index=True)
