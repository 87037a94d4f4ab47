"""The population indicators in the LHJ package (``indicators.csv`` / ``.parquet``), suppressed for
every LHJ and the state at once.

Why this protects across geographies: the indicators are published by ZIP code, and ZIPs nest
in LHJs that nest in the state; a ZIP straddling two LHJs (90805: Long Beach and Los Angeles
County) is two cells, one in each LHJ's table, and the state's ZIP rows are not published, so no
published relation links two LHJs' ZIP cells. Each LHJ's table is suppressed on its own
(privacy.suppression: DDG 2.0 primary and complementary suppression, then the LP attacker audit
of privacy.attack until no small count can be bounded; relations: the strata of each stratifier
add up to the total, ZIPs included, and months to quarters to the year). The state's rows follow
the rule of the measure feed's statewide rows (:func:`jobs.publish.lhj_feed.state_table`): a
statewide count is shown only where every LHJ publishes the same count, so it is the sum of
published counts and tells an attacker nothing new, and "state minus the other LHJs" recovers
nothing. The test runs the attacker's LP over the union of every LHJ's table and the state's rows
(tests/publish/test_lhj_indicators.py). An earlier version suppressed all LHJs as one table with
the geography relation; its LP components spanned every LHJ and it did not finish at 3,000 members.

Denominators are published once: a population row (``kind`` population: MEMBERS, MEMBER_MONTHS,
MEMBERS_BMI) per LHJ, period and stratum, suppressed as a count of its own, and every indicator of
that population repeats it as its denominator, shown or hidden with it. What the suppression sees
(:func:`count_table`): a population row is 0 over its count; a prevalence row is cases over the
population count, tied to the population row by an equality (``shared_denominators``); a
utilization row is 0 over its events (events may exceed member-months, and nothing ties them). So
one indicator's hidden events hide no other indicator's rate. (Until this layout each utilization
row carried events + member-months, one member-months count shared by all: one indicator's hidden
events withheld the member-months, and with them every rate of the stratum.)

Rates (crude and age-adjusted, gamma 95% intervals; :mod:`jobs.indicators.rates`) are given only
where both counts of the row are published; the state's rates beside each LHJ's only where the
state's counts are published, and never beside a ZIP (the statewide value of a straddling ZIP
would add the other LHJ's part).

Annotation codes (what exactly is hidden): 1 a count of 1-10 (numerator, denominator or
member-months; on an indicator row whose own counts are shown, its population's), 4 the numerator of a row whose complement (denominator - numerator: members
without the condition) is 1-10, 2 complementary (hidden so that a small count cannot be worked out
from the others), 3 no data (denominator 0). privacy.attack.audit, given this table, agrees: it
bounds every hidden count.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from jobs.indicators import catalogue as catalogue_mod
from jobs.indicators.catalogue import BmiEvidence, Indicator, RiskTierEvidence
from jobs.indicators.cells import CRUDE, age_matrices, age_weights, rate_rows, strata, with_periods
from jobs.indicators.rates import adjusted_arrays
from phmx.log import get_logger
from phmx.recipients import STATE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.indicators.catalogue import Catalogue, StandardPopulation

log = get_logger(__name__)

FILE = "indicators"
SMALL, COMPLEMENTARY, NO_DATA, COMPLEMENT_SMALL = "1", "2", "3", "4"
SUPPRESSED_CODES = (SMALL, COMPLEMENTARY, COMPLEMENT_SMALL)
ANNOTATIONS = {
    SMALL: "a count of 1-10 is hidden (the numerator, the denominator or the member-months)",
    COMPLEMENT_SMALL: "the numerator is hidden because denominator minus numerator (members without it) is 1-10",
    COMPLEMENTARY: "hidden so that a small count elsewhere cannot be worked out by subtraction (complementary)",
    NO_DATA: "no data: no member or member-month in the cell",
}
COLUMNS = ["lhj", "indicator_id", "indicator", "kind", "period", "stratifier", "stratum", "numerator",
           "denominator", "denominator_unit", "rate_type", "rate", "ci_low", "ci_high", "per", "state_rate",
           "state_ci_low", "state_ci_high", "change", "change_ci_low", "change_ci_high", "age_groups_missing",
           "annotation"]
TOPICS = {"sud": "sud", "mh": "mental_health"}


def _topics(cat: Catalogue) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for iid, ind in cat.indicators.items():
        t = ind.topic or TOPICS.get(ind.sensitivity)
        if t:
            out[iid] = [t]
    return out


def spec(table: pd.DataFrame, cat: Catalogue) -> dict[str, Any]:
    """The privacy.suppression spec of the all-LHJ indicator table."""
    from jobs.publish.lhj_suppression import base_spec

    s: dict[str, Any] = dict(base_spec())
    s["measure_topics"] = {**(s.get("measure_topics") or {}), **_topics(cat)}
    s["geography_total"] = STATE
    s["always_mask"] = True  # ZIP-level tables of a Medi-Cal population: mask small cells everywhere
    periods = sorted(set(table["period"].astype(str)))
    rollups: dict[str, list[str]] = {}
    for p in periods:
        if "-Q" in p:
            if p[:4] in periods:
                rollups.setdefault(p[:4], []).append(p)
        elif len(p) == 7:
            q = f"{p[:4]}-Q{(int(p[5:7]) - 1) // 3 + 1}"
            if q in periods:
                rollups.setdefault(q, []).append(p)
    s["period_rollups"] = rollups
    s["period_rollup_columns"] = ["numerator", "denominator"]
    s["period_granularity"] = "month" if any(len(p) == 7 and "-Q" not in p for p in periods) else "year"
    # a prevalence row's denominator is its population row's count (see count_table)
    s["shared_denominators"] = {iid: population_id(ind, cat) for iid, ind in cat.indicators.items()
                                if ind.kind == "prevalence"}
    s["partitions"] = tier_partitions(cat)
    return s


TIERS = frozenset({"high", "rising", "low", "none"})


def tier_partitions(cat: Catalogue) -> dict[str, tuple[str, ...]]:
    """{population: the tier indicators}, where a population's risk-tier indicators (RISK_HIGH,
    RISK_RISING, RISK_LOW, RISK_NONE) each count disjoint tiers that together cover every member:
    their counts add up to the population's, a relation the suppression and the audit protect (a
    table with its margin), so every tier can be published. Tier indicators that do not cover every
    member (no ``none``, say) add no relation; then publishing all but one would still give it
    by subtraction, which is why the catalogue ships all four."""
    by_pop: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for iid, ind in cat.indicators.items():
        if ind.kind == "prevalence" and ind.evidence and all(isinstance(e, RiskTierEvidence) for e in ind.evidence):
            tiers = tuple(t for e in ind.evidence if isinstance(e, RiskTierEvidence) for t in e.tiers)
            by_pop.setdefault(population_id(ind, cat), []).append((iid, tiers))
    out: dict[str, tuple[str, ...]] = {}
    for pop, inds in by_pop.items():
        every = [t for _, tiers in inds for t in tiers]
        if len(every) == len(set(every)) and set(every) == TIERS:
            out[pop] = tuple(iid for iid, _ in inds)
    return out


POPULATION = "population"  # the kind of a population row (MEMBERS, MEMBER_MONTHS, ...)


def population_id(ind: Indicator, cat: Catalogue) -> str:
    """The population whose count is the indicator's published denominator: ``MEMBER_MONTHS`` for
    utilization; ``MEMBERS`` (enrolled the catalogue's minimum months of the year) for prevalence,
    ``_<N>M`` when the indicator asks for another minimum, ``_BMI`` when only members with a BMI
    observation count (obesity). Indicators with the same id share one count (see
    :func:`shared_populations`)."""
    if ind.kind == "utilization":
        return "MEMBER_MONTHS"
    months = cat.enrolled_months(ind)
    out = "MEMBERS" + ("" if months == cat.min_enrolled_months else f"_{months}M")
    return out + ("_BMI" if any(isinstance(e, BmiEvidence) for e in ind.evidence) else "")


def population_name(pop: str, cat: Catalogue) -> str:
    """A reader's name for a population row of indicators.csv."""
    users = [i.name for i in cat.indicators.values() if population_id(i, cat) == pop]
    if pop == "MEMBER_MONTHS":
        return "Member-months (the denominator of every use-of-care indicator)"
    months = pop.split("_")[1][:-1] if pop.split("_")[1:2] and pop.split("_")[1].endswith("M") else \
        str(cat.min_enrolled_months)
    what = f"Members enrolled at least {months} months of the year"
    if pop.endswith("_BMI"):
        what += " with a BMI observation"
    return f"{what} (the denominator of {', '.join(users)})" if len(users) <= 2 else \
        f"{what} (the denominator of the prevalence indicators)"


def count_table(long: pd.DataFrame, cat: Catalogue) -> pd.DataFrame:
    """The rows privacy.suppression protects, from :func:`jobs.indicators.cells.strata` rows: one
    per indicator and one per population (POPULATION rows), each by LHJ, period and stratum (the
    state's ZIP rows dropped). Columns: lhj, measure_id, period, stratifier, stratum, numerator,
    denominator (the suppression's shape), kind, count (the indicator's events or cases, or the
    population's count), population (the population id), population_count.

    The suppression's shape (numerator <= denominator, the implied count denominator - numerator
    protected too):

    * a population row: 0 over the population count (members, member-months), a count of its own;
    * a prevalence row: cases over the population count, the denominator tied to the population
      row's by ``shared_denominators`` (one number: hidden for every indicator or none; members
      without the condition protected as the implied count);
    * a utilization row: 0 over the events. Events may exceed member-months, and no relation ties
      them to the member-months, so the events are a count of their own, as the population is:
      hiding one indicator's events hides no other indicator's rate."""
    sums = long.groupby(["lhj", "indicator_id", "period", "stratifier", "stratum"], observed=True, sort=True)[
        ["numerator", "denominator"]].sum().reset_index()
    sums = sums[~((sums["lhj"] == STATE) & (sums["stratifier"] == "zip"))]
    pop_of = {iid: population_id(ind, cat) for iid, ind in cat.indicators.items()}
    kind_of = {iid: ind.kind for iid, ind in cat.indicators.items()}
    sums = sums.assign(population=sums["indicator_id"].map(pop_of), kind=sums["indicator_id"].map(kind_of))
    cell = ["lhj", "population", "period", "stratifier", "stratum"]
    pops = sums.groupby(cell, sort=True)["denominator"].agg(["min", "max"]).reset_index()
    if (pops["min"] != pops["max"]).any():
        bad = pops[pops["min"] != pops["max"]].iloc[0]
        raise ValueError(f"indicators of population {bad['population']} disagree on its count in "
                         f"{bad['period']} / {bad['stratifier']}; jobs.publish.lhj_indicators.shared_populations "
                         "must give every indicator of a population one denominator")
    util = (sums["kind"] == "utilization").to_numpy()
    num = sums["numerator"].astype("int64").to_numpy()
    den = sums["denominator"].astype("int64").to_numpy()
    rows = pd.DataFrame({
        "lhj": sums["lhj"].to_numpy(), "measure_id": sums["indicator_id"].to_numpy(), "period": sums["period"].to_numpy(),
        "stratifier": sums["stratifier"].to_numpy(), "stratum": sums["stratum"].to_numpy(),
        "numerator": np.where(util, 0, num), "denominator": np.where(util, num, den),
        "kind": sums["kind"].to_numpy(), "count": num, "population": sums["population"].to_numpy(),
        "population_count": den})
    p = pops["min"].astype("int64").to_numpy()
    pop_rows = pd.DataFrame({
        "lhj": pops["lhj"].to_numpy(), "measure_id": pops["population"].to_numpy(), "period": pops["period"].to_numpy(),
        "stratifier": pops["stratifier"].to_numpy(), "stratum": pops["stratum"].to_numpy(),
        "numerator": np.zeros(len(pops), dtype="int64"), "denominator": p, "kind": POPULATION, "count": p,
        "population": pops["population"].to_numpy(), "population_count": p})
    return pd.concat([pop_rows, rows], ignore_index=True)


def _state_rule(counts: pd.DataFrame, masked: pd.DataFrame) -> pd.DataFrame:
    """Hide each statewide count that some LHJ does not publish (same indicator or population,
    period, stratum, column); annotate hidden statewide rows 1 (a small count), 4 (a small
    complement) or 2.

    An LHJ without the row (no member of that stratum there) publishes its zero by the row's
    absence, so it does not hide the state's count: the state's count is then the sum of the
    published ones. (Hiding it anyway left the attacker a hidden cell provably 0, which the audit
    counts as a recovered count: 186 such cells withheld every indicator at benchmark scale.)"""
    key = ["measure_id", "period", "stratifier", "stratum"]
    is_state = (counts["lhj"] == STATE).to_numpy()
    lhj_rows = masked[~is_state]
    out = masked.copy()
    num = counts["numerator"].to_numpy()
    den = counts["denominator"].to_numpy()
    prev = (counts["kind"] == "prevalence").to_numpy()
    small = lambda v: (v >= 1) & (v <= 10)  # noqa: E731
    for c in ("numerator", "denominator"):
        shown = lhj_rows.assign(_shown=lhj_rows[c].notna()).groupby(key)["_shown"].agg(["all", "size"]).reset_index()
        st = masked.loc[is_state, key].merge(shown, on=key, how="left")
        ok = st["all"].fillna(True).astype(bool).to_numpy()
        vals = out.loc[is_state, c].astype("Int64").to_numpy(dtype=object)
        vals[~ok] = pd.NA
        out.loc[is_state, c] = pd.array(vals, dtype="Int64")
    hidden = is_state & (out["numerator"].isna() | out["denominator"].isna()).to_numpy()
    own = small(num) | small(den)
    complement = prev & small(den - num)
    ann = out["annotation"].astype("object").to_numpy()
    ann[hidden] = np.select([own[hidden], complement[hidden]], [SMALL, COMPLEMENT_SMALL], COMPLEMENTARY)
    ann[is_state & ~hidden & (den == 0)] = NO_DATA
    out["annotation"] = ann
    return out


#: the key of a long row (:func:`jobs.indicators.cells.strata`) besides its indicator
LONG_KEYS = ["lhj", "period", "age_group", "stratifier", "stratum"]


def shared_populations(long: pd.DataFrame, cat: Catalogue) -> pd.DataFrame:
    """The long rows (:func:`jobs.indicators.cells.strata`) as the feed publishes them: every
    indicator of a population over one denominator.

    Why: two indicators' denominators that differ by an age limit (diabetes: all members; COPD:
    adults) would publish, by subtraction, the members under the limit in a cell, and so a count
    the suppression of either indicator hid. So in the feed an age-limited indicator's numerator is
    counted over the population of its kind (members enrolled 6 months, or member-months, of every
    age): its crude rate is per member of any age, and its age-adjusted rate stays over its own
    ages. The gold tables keep the age-limited denominators.

    Done on the summed rows (sums are linear, and a limited indicator's members are among its
    reference's), so the finest cells never reach pandas."""
    out = [long]
    present = set(long["indicator_id"])
    for key in sorted({population_id(i, cat) for i in cat.indicators.values()}):
        same = [i for i in cat.indicators.values() if population_id(i, cat) == key]
        ref = next((i for i in same if i.ages is None and i.id in present), None)
        limited = [i for i in same if i.ages is not None and i.id in present]
        if ref is None or not limited:
            continue
        grid = long[long["indicator_id"] == ref.id][LONG_KEYS + ["denominator"]]
        for ind in limited:
            mine = long[long["indicator_id"] == ind.id][LONG_KEYS + ["numerator"]]
            rows = grid.merge(mine, on=LONG_KEYS, how="left")
            rows["numerator"] = rows["numerator"].fillna(0).astype("int64")
            rows["indicator_id"] = ind.id
            out[0] = out[0][out[0]["indicator_id"] != ind.id]
            out.append(rows[long.columns])
    return pd.concat(out, ignore_index=True)


def _lhj_spec(table: pd.DataFrame, cat: Catalogue) -> dict[str, Any]:
    sp = spec(table, cat)
    sp.pop("geography_total", None)
    return sp


_RANK = {SMALL: 0, COMPLEMENT_SMALL: 1, COMPLEMENTARY: 2}


def _most_specific(a: Any, b: Any) -> Any:  # noqa: ANN401
    """Of two annotation codes (or None), the one that says most exactly what is hidden."""
    codes = [c for c in (a, b) if c in _RANK]
    return min(codes, key=_RANK.__getitem__) if codes else (a if a is not None else b)


def suppress_one(table: pd.DataFrame, sp: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """privacy.suppression.suppress of one LHJ's rows: (masked rows, its summary). A module-level
    function, so worker processes can run it."""
    from privacy.suppression import suppress

    m = suppress(table, sp, on_failure="report")
    info = dict(m.attrs.get("privacy.suppression", {}))
    # pandas deep-copies attrs on every later operation (and across processes): keep the figures only
    m.attrs = {}
    return m, {k: info.get(k) for k in ("primary", "complementary", "failed_measures")}


#: below this many LHJ tables the suppression runs in this process (a worker's start costs seconds)
POOL_MIN = 8


def _suppress_lhjs(feed: pd.DataFrame, cat: Catalogue, workers: int = 1) -> tuple[list[pd.DataFrame], dict[str, int],
                                                                                 set[tuple[str, str]]]:
    """privacy.suppression.suppress on each LHJ's rows: their relations never reach another LHJ,
    so they are independent, and with ``workers`` > 1 they run in that many processes (the LPs are
    CPU-bound Python and HiGHS; the largest tables go first)."""
    from functools import partial

    tables = {str(lhj): rows.reset_index() for lhj, rows in feed[feed["lhj"] != STATE].groupby("lhj", sort=True)}
    jobs = {lhj: (t.drop(columns="index"), _lhj_spec(t, cat)) for lhj, t in tables.items()}
    order = sorted(jobs, key=lambda k: -len(jobs[k][0]))
    from jobs.publish.lhj_tables import may_start_workers, worker_pool

    if workers > 1 and len(jobs) >= POOL_MIN and may_start_workers():
        with worker_pool(workers) as pool:
            futures = {lhj: pool.submit(suppress_one, *jobs[lhj]) for lhj in order}
            results = {lhj: fut.result() for lhj, fut in futures.items()}
    else:
        results = {lhj: partial(suppress_one, *jobs[lhj])() for lhj in order}
    parts: list[pd.DataFrame] = []
    summary = {"primary": 0, "complementary": 0}
    failed: set[tuple[str, str]] = set()
    for lhj in sorted(results):
        m, info = results[lhj]
        summary["primary"] += int(info.get("primary") or 0)
        summary["complementary"] += int(info.get("complementary") or 0)
        failed |= {(str(a), str(b)) for a, b in info.get("failed_measures") or []}
        m.index = tables[lhj]["index"].to_numpy()
        m["annotation"] = pd.Series([None if pd.isna(v) else str(int(v)) for v in m["annotation"]], index=m.index,
                                    dtype="object")
        parts.append(m)
    return parts, summary, failed


def decide_all(cube: pd.DataFrame, cat: Catalogue | None = None, std: StandardPopulation | None = None, *,
               workers: int | None = None) -> pd.DataFrame:
    """The published indicator and population rows of every LHJ and the state (COLUMNS), from
    finest cells (the columns of gold.indicator_strata with lhj, zip, age_group, age_band, sex,
    race_ethnicity and language in place of stratifier and stratum: hand-built histories summed
    per cell). ``workers``: processes for the per-LHJ suppression (default
    :func:`jobs.publish.lhj_tables.pool_size`; 1 = in this process)."""
    if cube.empty:
        return pd.DataFrame(columns=COLUMNS)
    cube = cube.copy()
    cube["numerator"] = cube["numerator"].astype("int64")
    cube["denominator"] = cube["denominator"].astype("int64")
    return decide_strata(strata(with_periods(cube)), cat, std, workers=workers)


def decide_strata(long: pd.DataFrame, cat: Catalogue | None = None, std: StandardPopulation | None = None, *,
                  workers: int | None = None) -> pd.DataFrame:
    """:func:`decide_all` from the cube's long rows (:func:`jobs.indicators.cells.strata`, or
    :func:`load_strata`: summed by the stage in the engine)."""
    if cat is None or std is None:
        cat, std = catalogue_mod.default()
    long = long[long["indicator_id"].isin(list(cat.indicators))]
    if long.empty:
        return pd.DataFrame(columns=COLUMNS)
    long = shared_populations(long, cat)
    counts = count_table(long, cat)
    feed = counts[["lhj", "measure_id", "period", "stratifier", "stratum", "numerator", "denominator"]].copy()
    from jobs.publish.lhj_tables import pool_size

    parts, summary, failed = _suppress_lhjs(feed, cat, pool_size() if workers is None else workers)
    state = feed[feed["lhj"] == STATE].copy()
    state["annotation"] = pd.Series([None] * len(state), index=state.index, dtype="object")
    parts.append(state)
    masked = pd.concat(parts).sort_index()
    masked["numerator"] = masked["numerator"].astype("Int64")
    masked["denominator"] = masked["denominator"].astype("Int64")
    if failed:  # withhold every count of an indicator the audit could still bound (never expected)
        bad = np.array([(str(a), str(b)) in failed for a, b in zip(masked["lhj"], masked["measure_id"], strict=True)])
        masked.loc[bad, ["numerator", "denominator"]] = pd.NA
        a = masked["annotation"].to_numpy(dtype=object)
        a[bad & pd.isna(a)] = COMPLEMENTARY
        masked["annotation"] = a
        log.error("indicator suppression: the audit still fails for %d (LHJ, indicator) pair(s); withheld", len(failed))
    masked = _state_rule(counts, masked)

    # what each row publishes: an indicator's count, and its population's count as its denominator
    kind = counts["kind"].to_numpy()
    is_pop, util = kind == POPULATION, kind == "utilization"
    m_num = masked["numerator"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    m_den = masked["denominator"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    own_count = np.where(util | is_pop, m_den, m_num)
    cell = ["lhj", "population", "period", "stratifier", "stratum"]
    pops = counts.loc[is_pop, cell].assign(_pop=m_den[is_pop], _pop_ann=masked["annotation"].to_numpy()[is_pop])
    joined = counts[cell].merge(pops, on=cell, how="left")
    pub_den = joined["_pop"].to_numpy(dtype=float)
    pub_den = np.where(util | is_pop, pub_den, np.where(np.isnan(m_den), np.nan, pub_den))
    ann_own = masked["annotation"].to_numpy(dtype=object)
    ann = np.array([a if p or not np.isnan(d) else _most_specific(a, pa)
                    for a, pa, d, p in zip(ann_own, joined["_pop_ann"].to_numpy(dtype=object), pub_den, is_pop,
                                           strict=True)], dtype=object)
    ok = ~np.isnan(own_count) & ~np.isnan(pub_den) & (pub_den > 0) & ~is_pop

    # rates from the age-specific counts, for indicator rows whose counts are both published
    ind = ~is_pop
    ic = counts[ind].reset_index(drop=True)
    key = ["lhj", "indicator_id", "period", "stratifier", "stratum"]
    labels = list(std.labels)
    piv = long.pivot_table(index=key, columns="age_group", values=["numerator", "denominator"], aggfunc="sum",
                           fill_value=0, observed=True)
    rows = pd.MultiIndex.from_frame(ic.rename(columns={"measure_id": "indicator_id"})[key])
    piv = piv.reindex(rows, fill_value=0)
    x, n = age_matrices(piv, labels)
    ids = ic["measure_id"].to_numpy()
    per = np.array([cat.indicators[i].multiplier for i in ids], dtype=float)
    w = age_weights(cat, std, ids)
    true_num = ic["count"].to_numpy(dtype=float)
    true_den = ic["population_count"].to_numpy(dtype=float)
    cr = adjusted_arrays(true_num[:, None], true_den[:, None], np.ones((len(ids), 1)))
    ad = adjusted_arrays(x, n, w)
    ok_i = ok[ind]
    base = pd.DataFrame({
        "lhj": ic["lhj"], "indicator_id": ids, "indicator": [cat.indicators[i].name for i in ids],
        "kind": ic["kind"], "period": ic["period"], "stratifier": ic["stratifier"], "stratum": ic["stratum"],
        "numerator": pd.Series(own_count[ind], dtype="float64").round().astype("Int64").to_numpy(),
        "denominator": pd.Series(pub_den[ind], dtype="float64").round().astype("Int64").to_numpy(),
        "denominator_unit": np.where(util[ind], "member-months", "members"),
        "per": per.astype("int64"), "annotation": ann[ind]})

    def shown(v: np.ndarray) -> np.ndarray:
        return np.round(np.where(ok_i, v * per, np.nan), 4)

    out = rate_rows(base, cr, ad, shown)
    out = out.merge(year_over_year(base, cr, ad, ok_i, per), on=CHANGE_KEY, how="left")
    pc = counts[is_pop].reset_index(drop=True)
    shown_pop = pd.Series(own_count[is_pop], dtype="float64").round().astype("Int64").to_numpy()
    population = pd.DataFrame({
        "lhj": pc["lhj"], "indicator_id": pc["measure_id"],
        "indicator": [population_name(str(p), cat) for p in pc["measure_id"]], "kind": POPULATION,
        "period": pc["period"], "stratifier": pc["stratifier"], "stratum": pc["stratum"],
        "numerator": shown_pop, "denominator": shown_pop,
        "denominator_unit": np.where(pc["measure_id"] == "MEMBER_MONTHS", "member-months", "members"),
        "rate_type": CRUDE, "age_groups_missing": 0, "annotation": ann[is_pop]})
    out = pd.concat([out, population], ignore_index=True)
    out["per"] = out["per"].astype("Int64")
    out = out[COLUMNS].sort_values(["lhj", "indicator_id", "period", "stratifier", "stratum", "rate_type"],
                                   ignore_index=True)
    log.info("indicators: %d rows for %d LHJs and the state; %d primary, %d complementary suppressions",
             len(out), out["lhj"].nunique() - 1, summary.get("primary", 0), summary.get("complementary", 0))
    return out


CHANGE_KEY = ["lhj", "indicator_id", "period", "stratifier", "stratum", "rate_type"]


def _year_after(period: str) -> str:
    """The same period a year later: 2024 -> 2025, 2024-Q3 -> 2025-Q3, 2024-07 -> 2025-07."""
    return f"{int(period[:4]) + 1}{period[4:]}"


def year_over_year(base: pd.DataFrame, cr: dict[str, np.ndarray], ad: dict[str, np.ndarray], ok: np.ndarray,
                   per: np.ndarray) -> pd.DataFrame:
    """Change from the same period a year earlier (CHANGE_KEY + change, change_ci_low, change_ci_high),
    per ``per``, for crude and age-adjusted rows: the difference of two independent rates with the
    normal interval of :func:`jobs.indicators.rates.change` (NCHS's test of two age-adjusted rates).

    Given only where both years' rates are published (their counts are both shown), so the change
    is arithmetic on published numbers and its interval on their published counts: it reveals
    nothing the two rows do not. Empty where the earlier period is not in the table."""
    from scipy import stats

    from jobs.indicators.rates import ALPHA

    frames = []
    for rate_type, arrays, keep in ((CRUDE, cr, np.ones(len(base), dtype=bool)),
                                    ("age_adjusted", ad, (base["stratifier"] != "age_band").to_numpy())):
        f = base.loc[keep, CHANGE_KEY[:-1]].assign(rate_type=rate_type, _r=arrays["rate"][keep],
                                                  _v=arrays["variance"][keep], _ok=ok[keep], _per=per[keep])
        frames.append(f)
    now = pd.concat(frames, ignore_index=True)
    before = now.assign(period=now["period"].astype(str).map(_year_after))  # last year's row, keyed as this year
    both = now.merge(before, on=CHANGE_KEY, how="left", suffixes=("", "_prev"))
    z = float(stats.norm.ppf(1 - ALPHA / 2))
    d = both["_r"].to_numpy(dtype=float) - both["_r_prev"].to_numpy(dtype=float)
    se = np.sqrt(both["_v"].to_numpy(dtype=float) + both["_v_prev"].to_numpy(dtype=float))
    shown = both["_ok"].to_numpy(dtype=bool) & both["_ok_prev"].astype("boolean").fillna(False).to_numpy(dtype=bool) & np.isfinite(d)
    scale = both["_per"].to_numpy(dtype=float)

    def col(v: np.ndarray) -> np.ndarray:
        return np.round(np.where(shown, v * scale, np.nan), 4)

    return both[CHANGE_KEY].assign(change=col(d), change_ci_low=col(d - z * se), change_ci_high=col(d + z * se))


def audit_table(published: pd.DataFrame, cat: Catalogue | None = None) -> pd.DataFrame:
    """The crude rows of ``published`` in the shape privacy.suppression protected (see
    :func:`count_table`), which privacy.attack.audit reads: a population row 0 over its count, a
    utilization row 0 over its events, a prevalence row cases over its population's count.

    A population count counts as published if any row shows it (its own row, or an indicator row's
    denominator), so a count shown in one place and hidden in another is judged as shown."""
    cat = cat or catalogue_mod.default()[0]
    crude = published[published["rate_type"] == CRUDE].reset_index(drop=True)
    num = pd.to_numeric(crude["numerator"], errors="coerce").astype("Float64")
    den = pd.to_numeric(crude["denominator"], errors="coerce").astype("Float64")
    kind = crude["kind"].astype(str)
    pop_of = {iid: population_id(ind, cat) for iid, ind in cat.indicators.items()}
    population = crude["indicator_id"].map(lambda i: pop_of.get(str(i), str(i)))
    cell = ["lhj", "population", "period", "stratifier", "stratum"]
    seen = crude[cell[:1] + cell[2:]].assign(population=population, _d=den).dropna(subset=["_d"]) \
        .drop_duplicates(cell)[[*cell, "_d"]]
    any_shown = crude[cell[:1] + cell[2:]].assign(population=population).merge(seen, on=cell, how="left")["_d"]
    pop_count = pd.Series(any_shown.to_numpy(), dtype="Float64")
    is_pop, util = (kind == POPULATION).to_numpy(), (kind == "utilization").to_numpy()
    feed_num = num.where(~(pd.Series(is_pop | util)), 0)
    feed_den = den.where(~pd.Series(is_pop), pop_count).where(~pd.Series(util), num)
    return pd.DataFrame({"lhj": crude["lhj"], "measure_id": crude["indicator_id"], "period": crude["period"],
                         "stratifier": crude["stratifier"], "stratum": crude["stratum"],
                         "numerator": feed_num.round().astype("Int64"), "denominator": feed_den.round().astype("Int64"),
                         "rate": crude["rate"], "ci_low": crude["ci_low"], "ci_high": crude["ci_high"],
                         "annotation": crude["annotation"]})


DERIVED = ("rate", "ci_low", "ci_high", "state_rate", "state_ci_low", "state_ci_high", "change", "change_ci_low",
           "change_ci_high")


def rate_leaks(published: pd.DataFrame) -> int:
    """Rows of ``published`` (any rate type) that show a rate, interval or change while their
    numerator or denominator is hidden: a rate times a published count gives the other count back.
    ``state_*`` beside an LHJ's row are the state's, checked on the state's own row."""
    if published.empty:
        return 0
    hidden = published["numerator"].isna() | published["denominator"].isna()
    own = [c for c in DERIVED if not c.startswith("state_")]
    shown = published[own].apply(pd.to_numeric, errors="coerce").notna().any(axis=1)
    return int((hidden & shown).sum())


def protected(published: pd.DataFrame, cat: Catalogue | None = None, *,
              decompose: bool = True) -> tuple[bool, dict[str, int]]:
    """The last gate: the attacker's LP over the union of every LHJ's table and the state's rows
    (with the state = sum of LHJs, the calendar's roll-ups and the shared population counts), and
    no rate beside a hidden count. (passes, figures without values).

    With ``decompose`` (default) the union is solved exactly in parts when it can be (see
    :func:`_decomposed_audit`: one LP per LHJ, the state's hidden counts as sums of the LHJs'
    intervals); only if that cannot decide, the union is solved as one system."""
    from privacy.attack import audit
    from privacy.suppression import SuppressionSpec

    if published.empty:
        return True, {}
    cat = cat or catalogue_mod.default()[0]
    leaks = rate_leaks(published)
    table = audit_table(published, cat)
    sp = SuppressionSpec.from_dict(spec(table, cat))
    if decompose:
        decided = _decomposed_audit(table, sp)
        if decided is not None and decided[0]:
            ok, figures = decided
            return ok and not leaks, {**figures, "rate_leaks": leaks}
    report = audit(table, sp)
    small = sum(1 for f in report.failures if f["high"] < 11 - 1e-6)
    return report.ok and not leaks, {"failures": len(report.failures), "small_count_failures": small,
                                     "suppressed_cells": report.suppressed_cells, "components": report.components,
                                     "rate_leaks": leaks}


def _decomposed_audit(table: pd.DataFrame, sp: Any) -> tuple[bool, dict[str, int]] | None:  # noqa: ANN401
    """The union audit of :func:`protected`, exactly, in parts; None when the parts cannot decide.

    Why it is exact: the LHJs' tables share no cell, and the only relations joining them are the
    state's (state = sum of the LHJs, for each indicator, period and stratum). Where a statewide
    count is published, every LHJ's part of it must be published too (checked here; else None):
    the relation then holds between published numbers and binds nothing. Where it is hidden, it is
    a free variable equal to the sum, and the state's own relations (strata, calendar) are sums of
    the LHJs' (the state's rows are built as sums). So the attacker's bounds on an LHJ's hidden
    counts are those of that LHJ's table alone, and a hidden statewide count ranges over the sums:
    its minimum is the sum of the parts' minima (exact: privacy.attack reports an exact minimum, or
    0 with a feasible point at 0), its maximum at least the sum of the reported maxima (a witness
    may stop at 11). So a statewide count that passes on these sums passes the union; one that does
    not is left to the union LP (None). The one union system joined every LHJ through the state
    rows (86 components for 61 LHJs at benchmark scale); the parts grow with each LHJ's table only."""
    from dataclasses import replace

    from privacy.attack import CellBound, audit, derived_leaks, implied_ok

    key = ["measure_id", "period", "stratifier", "stratum"]
    threshold = 11
    is_state = (table["lhj"] == STATE).to_numpy()
    num = pd.to_numeric(table["numerator"], errors="coerce").to_numpy(dtype=float)
    den = pd.to_numeric(table["denominator"], errors="coerce").to_numpy(dtype=float)
    lows = {c: v.copy() for c, v in (("numerator", num), ("denominator", den))}
    highs = {c: v.copy() for c, v in (("numerator", num), ("denominator", den))}
    y_low, y_high = den - num, den - num
    failures = leaks = infeasible = cells = parts = 0
    lhj_spec = replace(sp, geography_total=None)
    for _lhj, idx in table.index[~is_state].groupby(table.loc[~is_state, "lhj"].to_numpy()).items():
        rows = np.asarray(idx)
        report = audit(table.loc[rows].reset_index(drop=True), lhj_spec)
        failures += len(report.failures)
        leaks += len(report.derived_leaks)
        infeasible += report.infeasible_components
        cells += report.suppressed_cells
        parts += report.components
        for cell, b in report.bounds.items():
            col = "numerator" if cell % 2 == 0 else "denominator"
            lows[col][rows[cell // 2]], highs[col][rows[cell // 2]] = b.low, b.high
        for r, b in report.implied_bounds.items():
            y_low[rows[r]], y_high[rows[r]] = b.low, b.high
    state_rows = np.flatnonzero(is_state)
    leaks += len(derived_leaks(table.iloc[state_rows].reset_index(drop=True)))
    figures = {"failures": failures, "small_count_failures": -1, "suppressed_cells": cells, "components": parts}
    if failures or leaks or infeasible:
        return False, figures
    frame = table[key].assign(_state=is_state)
    parts_of = frame[~is_state].groupby(key, sort=False).indices
    for srow in state_rows:
        members = parts_of.get(tuple(frame.iloc[srow][key]))
        kids = np.flatnonzero(~is_state)[members] if members is not None else np.array([], dtype=int)
        hidden_row = False
        for col, vals in (("numerator", num), ("denominator", den)):
            kid_hidden = np.isnan(vals[kids]).any()
            if not np.isnan(vals[srow]):
                if kid_hidden:
                    return None  # a published statewide count over a hidden part: the parts are coupled
                continue
            hidden_row = True
            cells += 1
            if np.isnan(lows[col][kids]).any() or np.isnan(highs[col][kids]).any():
                return None
            b = CellBound(int(srow) * 2, float(lows[col][kids].sum()), float(highs[col][kids].sum()))
            if not b.ok(threshold):
                return None
        if hidden_row:
            if np.isnan(y_low[kids]).any() or np.isnan(y_high[kids]).any():
                return None
            if not implied_ok(CellBound(int(srow) * 2, float(y_low[kids].sum()), float(y_high[kids].sum())), threshold):
                return None
    figures["suppressed_cells"] = cells
    figures["small_count_failures"] = 0
    return True, figures


def suppressed_cells(table: pd.DataFrame) -> int:
    """Rows (crude, one per cell) whose counts are withheld: annotation 1, 2 or 4."""
    if table.empty:
        return 0
    crude = table[table["rate_type"] == CRUDE]
    return int(crude["annotation"].isin(SUPPRESSED_CODES).sum())


def load_strata(spark: SparkSession, year: str | None) -> pd.DataFrame | None:
    """The long rows (:func:`jobs.indicators.cells.strata_from_table`) of gold.indicator_strata for
    ``year`` and the year before (for the year-over-year change; all years when None); None when
    the table does not exist."""
    from pyspark.sql import functions as F

    from jobs.indicators.cells import strata_from_table
    from phmx import lakehouse
    from phmx.tables import INDICATOR_STRATA

    if not lakehouse.exists(INDICATOR_STRATA):
        return None
    df = lakehouse.read(spark, INDICATOR_STRATA)
    if year:
        df = df.where(F.substring("period", 1, 4).isin(str(int(year) - 1), year))
    return strata_from_table(df)


def for_lhj(published: pd.DataFrame, lhj: str) -> pd.DataFrame:
    return published[published["lhj"] == lhj].reset_index(drop=True)


def _published_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The contract's columns, counts as nullable integers: a count column that reached here as floats
    (NaN for hidden cells; which dtype depends on the engine that computed it) would print as 19.0."""
    frame = table[COLUMNS].copy()
    for c in ("numerator", "denominator"):
        frame[c] = frame[c].astype("Int64")
    return frame


def csv_bytes(table: pd.DataFrame) -> bytes:
    from phmx.spreadsheet import escape_frame

    buf = io.StringIO()
    escape_frame(_published_columns(table)).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def parquet_bytes(table: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = _published_columns(table)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf, compression="zstd")
    return buf.getvalue()
