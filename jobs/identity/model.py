"""The Fellegi-Sunter model: m and u probabilities per comparison level, a prior, match weights.

Training never touches pair rows in Python: the engine aggregates comparison vectors into
pattern counts (one row per distinct gamma pattern, a few thousand at most), and EM runs on
those counts with numpy.

* u (how often non-matches reach a level) comes from random record pairs; the exact level of a
  term-frequency comparison uses the value frequencies instead (sum of p_v^2), which is exact.
* m (how often matches reach a level) comes from EM, run once per training blocking rule on the
  pairs that rule finds, ignoring the comparisons the rule blocks on (they agree by
  construction there), then averaged weighted by each rule's expected matches. EM starts from
  a generic m (most matches agree exactly), never from pairs that share an identifier.
* The prior (probability that two random records match) is the fixed point of
  expected matches among candidate pairs / all pairs.

A pair's match weight is ``log2(prior odds) + sum(log2(m/u))`` plus, when a term-frequency
comparison agrees exactly, ``log2(u_exact / frequency of the value)`` (rare names count more).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from jobs.identity.config import Comparison, IdentitySettings

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column


@dataclass
class Model:
    """Trained parameters. ``m[name][g]`` and ``u[name][g]`` are indexed by gamma (0 = else)."""

    m: dict[str, list[float]]
    u: dict[str, list[float]]
    prior: float
    tf_u: dict[str, float] = field(default_factory=dict)
    tf_floor: float = 1e-7
    meta: dict[str, Any] = field(default_factory=dict)

    def bayes_factor_bits(self, name: str, gamma: int) -> float:
        """log2(m/u) of one level; 0 for null (gamma -1)."""
        if gamma < 0:
            return 0.0
        return math.log2(self.m[name][gamma] / self.u[name][gamma])

    @property
    def prior_bits(self) -> float:
        return math.log2(self.prior / (1 - self.prior))

    def tf_adjustment_bits(self, name: str, tf: float | None) -> float:
        if name not in self.tf_u or tf is None or (isinstance(tf, float) and math.isnan(tf)):
            return 0.0
        return math.log2(self.tf_u[name] / max(float(tf), self.tf_floor))

    def explain(self, settings: IdentitySettings, gammas: dict[str, int],
                tfs: dict[str, float | None] | None = None) -> list[dict[str, Any]]:
        """The waterfall: prior, then each comparison's level and contribution in bits."""
        tfs = tfs or {}
        rows: list[dict[str, Any]] = [{"comparison": "prior", "level": "", "bits": self.prior_bits}]
        for c in settings.comparisons:
            g = int(gammas.get(c.name, -1))
            bits = self.bayes_factor_bits(c.name, g)
            row: dict[str, Any] = {"comparison": c.name, "level": c.label(g), "bits": bits}
            if c.tf and g == len(c.levels) - 1:
                tf_bits = self.tf_adjustment_bits(c.name, tfs.get(c.name))
                row["tf_bits"] = tf_bits
                row["bits"] = bits + tf_bits
            rows.append(row)
        return rows

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Model:
        d = json.loads(text)
        return cls(m=d["m"], u=d["u"], prior=d["prior"], tf_u=d.get("tf_u", {}),
                   tf_floor=d.get("tf_floor", 1e-7), meta=d.get("meta", {}))

    def weight_column(self, settings: IdentitySettings) -> Column:
        """The match weight of each pair as an engine expression over ``g_*`` / ``tf_*``."""
        from pyspark.sql import functions as F

        total = F.lit(self.prior_bits)
        for c in settings.comparisons:
            g = F.col(f"g_{c.name}")
            expr = F.when(g < 0, F.lit(0.0))
            for gamma in range(len(c.levels)):
                expr = expr.when(g == gamma, F.lit(self.bayes_factor_bits(c.name, gamma)))
            total = total + expr.otherwise(F.lit(0.0))
            if c.tf and c.name in self.tf_u:
                tf = F.col(f"tf_{c.name}")
                adj = F.lit(math.log2(self.tf_u[c.name])) - F.log2(F.greatest(tf, F.lit(self.tf_floor)))
                total = total + F.when((g == len(c.levels) - 1) & tf.isNotNull(), adj).otherwise(F.lit(0.0))
        return total


def probability(weight_bits: float) -> float:
    return 1.0 / (1.0 + 2.0 ** (-weight_bits))


def probability_column(weight: Column) -> Column:
    from pyspark.sql import functions as F

    return F.lit(1.0) / (F.lit(1.0) + F.pow(F.lit(2.0), -weight))


# ---- estimation -----------------------------------------------------------------------------
def _normalise(v: np.ndarray, floor: float) -> np.ndarray:
    v = np.maximum(np.asarray(v, dtype=float), floor)
    return v / v.sum()


def default_m(comp: Comparison) -> np.ndarray:
    """A generic starting m: most matches agree exactly, few fall to ``else``."""
    n = len(comp.levels)
    if n == 2:
        return np.array([0.05, 0.95])
    v = np.full(n, 0.1 / (n - 2))
    v[0], v[-1] = 0.05, 0.85
    return v / v.sum()


def estimate_u(sample: dict[str, pd.DataFrame], settings: IdentitySettings,
               exact_u: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """u per level from level counts of random pairs: per comparison a frame of ``g_<name>``, ``n``.

    ``exact_u`` overrides the top level of named comparisons (value-frequency estimates);
    the other levels keep their sampled proportions, rescaled to sum to one.
    """
    floor = settings.min_probability
    out: dict[str, np.ndarray] = {}
    for c in settings.comparisons:
        levels = len(c.levels)
        frame = sample.get(c.name)
        g = frame[f"g_{c.name}"].to_numpy() if frame is not None else np.array([], dtype=int)
        n = frame["n"].to_numpy(dtype=float) if frame is not None else np.array([], dtype=float)
        counts = np.array([n[g == k].sum() for k in range(levels)], dtype=float)
        total = counts.sum()
        if total > 0 and settings.u_prior_count > 0:
            # Add-k (Dirichlet) smoothing: a level no sampled pair reached gets the share a level
            # seen ``u_prior_count`` times would have, not a floor unrelated to the sample's size.
            counts = counts + settings.u_prior_count
            total = counts.sum()
        if total <= 0:
            # Never observed: assume non-matches almost always fall to ``else``.
            u = np.full(levels, floor)
            u[0] = 1.0
        else:
            u = np.maximum(counts / total, floor)
        if exact_u and c.name in exact_u:
            top = max(min(exact_u[c.name], 0.5), floor)
            rest = u[:-1].sum()
            u[:-1] = u[:-1] * (1 - top) / rest if rest > 0 else (1 - top) / (levels - 1)
            u[-1] = top
        out[c.name] = _normalise(u, floor)
    return out


@dataclass
class EMResult:
    m: dict[str, np.ndarray]
    lam: float
    iterations: int
    converged: bool
    expected_matches: float


def expectation_maximisation(patterns: pd.DataFrame, comparisons: tuple[Comparison, ...],
                             u: dict[str, np.ndarray], m0: dict[str, np.ndarray], lam0: float, *,
                             ignore: frozenset[str] = frozenset(), max_iterations: int = 60,
                             tolerance: float = 1e-6, floor: float = 1e-6,
                             m_prior: dict[str, np.ndarray] | None = None,
                             prior_pairs: float = 0.0) -> EMResult:
    """EM for m and the match proportion on pattern counts, with u held fixed.

    ``patterns`` has a ``g_<name>`` column per comparison and ``n`` (pairs with that pattern).
    Comparisons in ``ignore`` (the blocking rule's keys) contribute nothing.

    With ``prior_pairs`` > 0, each M step adds ``prior_pairs * m_prior[name]`` pseudo-counts to the
    expected matches at each level (a Dirichlet prior whose mean is ``m_prior``): a level no
    expected match reached in this training set gets a small m that shrinks as evidence grows,
    instead of the floor (a weight of -15 bits or so that one month's data cannot justify).
    """
    active = [c for c in comparisons if c.name not in ignore]
    n = patterns["n"].to_numpy(dtype=float)
    gam = {c.name: patterns[f"g_{c.name}"].to_numpy(dtype=int) for c in active}
    m = {c.name: np.asarray(m0[c.name], dtype=float).copy() for c in active}
    log_u = np.zeros(len(n))
    for c in active:
        g = gam[c.name]
        log_u += np.where(g >= 0, np.log(u[c.name][np.clip(g, 0, None)]), 0.0)
    lam = float(lam0)
    converged = False
    it = 0
    post = np.zeros(len(n))
    while it < max_iterations:
        it += 1
        log_m = np.zeros(len(n))
        for c in active:
            g = gam[c.name]
            log_m += np.where(g >= 0, np.log(m[c.name][np.clip(g, 0, None)]), 0.0)
        a = math.log(max(lam, 1e-300)) + log_m
        b = math.log(max(1 - lam, 1e-300)) + log_u
        post = 1.0 / (1.0 + np.exp(np.clip(b - a, -700, 700)))
        w = n * post
        new_lam = float(w.sum() / n.sum()) if n.sum() > 0 else lam
        delta = abs(new_lam - lam)
        new_m = {}
        for c in active:
            g = gam[c.name]
            counts = np.array([w[g == k].sum() for k in range(len(c.levels))])
            if prior_pairs > 0 and m_prior is not None:
                counts = counts + prior_pairs * np.asarray(m_prior[c.name], dtype=float)
            new_m[c.name] = _normalise(counts / counts.sum(), floor) if counts.sum() > 0 else m[c.name]
            delta = max(delta, float(np.abs(new_m[c.name] - m[c.name]).max()))
        m, lam = new_m, min(max(new_lam, 1e-9), 1 - 1e-9)
        if delta < tolerance:
            converged = True
            break
    return EMResult(m=m, lam=lam, iterations=it, converged=converged, expected_matches=float((n * post).sum()))


def start_m(settings: IdentitySettings) -> dict[str, np.ndarray]:
    """Starting m for EM: generic (most matches agree exactly, few fall to ``else``).

    Deliberately not seeded from pairs that share an identifier: EM must converge on data
    whose identifiers are missing, unlike ours, or another kind of number altogether.
    """
    return {c.name: default_m(c) for c in settings.comparisons}


def train(patterns: pd.DataFrame, u: dict[str, np.ndarray], settings: IdentitySettings, *,
          total_pairs: float, tf_u: dict[str, float] | None = None) -> Model:
    """Estimate m by EM per training rule and the prior over all pairs; return the model.

    ``patterns``: pattern counts of the candidate pairs with a ``rules`` bit mask column.
    """
    m0 = start_m(settings)
    comp_names = {c.name for c in settings.comparisons}
    sums = {c.name: np.zeros(len(c.levels)) for c in settings.comparisons}
    weights = {c.name: 0.0 for c in settings.comparisons}
    runs = []
    rule_index = {r.name: i for i, r in enumerate(settings.rules)}
    for rule_name in settings.training_rules:
        rule = settings.rules[rule_index[rule_name]]
        bit = 1 << rule_index[rule_name]
        sub = patterns[(patterns["rules"].to_numpy(dtype=int) & bit) != 0]
        sub = sub.groupby([f"g_{c.name}" for c in settings.comparisons], as_index=False)["n"].sum()
        if sub["n"].sum() < 10:
            continue
        ignore = frozenset(_comparisons_on_keys(settings, rule.keys) & comp_names)
        res = expectation_maximisation(sub, settings.comparisons, u, m0, 0.3, ignore=ignore,
                                       max_iterations=settings.max_iterations, tolerance=settings.tolerance,
                                       floor=settings.min_probability, m_prior=m0,
                                       prior_pairs=settings.m_prior_pairs)
        runs.append({"rule": rule_name, "iterations": res.iterations, "converged": res.converged,
                     "match_share": round(res.lam, 6), "pairs": int(sub["n"].sum())})
        for name, mv in res.m.items():
            sums[name] += mv * res.expected_matches
            weights[name] += res.expected_matches
    m = {}
    for c in settings.comparisons:
        m[c.name] = _normalise(sums[c.name] / weights[c.name], settings.min_probability) \
            if weights[c.name] > 0 else m0[c.name]
    m = {c.name: _monotone(m[c.name], u[c.name], [lv.max_bits for lv in c.levels]) for c in settings.comparisons}
    model = Model(m={k: [float(x) for x in v] for k, v in m.items()},
                  u={k: [float(x) for x in v] for k, v in u.items()},
                  prior=1e-6, tf_u=dict(tf_u or {}),
                  tf_floor=1.0 / max(total_pairs, 1.0) ** 0.5,
                  meta={"em_runs": runs})
    model.prior = estimate_prior(patterns, model, settings, total_pairs)
    return model


def _monotone(m: np.ndarray, u: np.ndarray, caps: list[float | None]) -> np.ndarray:
    """Cap each level's Bayes factor at the top (exact) level's, and at its ``max_bits``.

    A weaker level must never count for more than exact agreement; a rare level whose u was
    barely seen in the random sample would otherwise get an absurd weight. The capped
    level's lost m goes to ``else`` (m stays a distribution).
    """
    m = np.asarray(m, dtype=float).copy()
    top = len(m) - 1
    top_bf = m[top] / u[top]
    limits = []
    for g in range(1, top):
        cap = top_bf
        bits = caps[top - g] if caps is not None else None
        if bits is not None:
            cap = min(cap, 2.0 ** bits)
        limits.append(cap)
        if m[g] / u[g] > cap:
            m[0] += m[g] - cap * u[g]
            m[g] = cap * u[g]
    # Nor for less than total disagreement: a near miss (a date one keystroke off, a nickname)
    # that EM saw too rarely among the matches of a small file would otherwise weigh far below
    # ``else`` (FEBRL 1: a one-digit birth-date typo scored -9.8 bits, a different date -4.4).
    # After the caps (they move m to ``else``); renormalising keeps every ratio.
    else_bf = m[0] / u[0]
    for g, cap in zip(range(1, top), limits, strict=True):
        floor = min(else_bf, cap)
        if m[g] / u[g] < floor:
            m[g] = floor * u[g]
    return m / m.sum()


def _comparisons_on_keys(settings: IdentitySettings, keys: tuple[str, ...]) -> set[str]:
    """Comparisons whose columns overlap a blocking rule's keys (or derive from them)."""
    derived = {"birth_date": {"dob_str", "birth_date", "birth_year"}, "birth_year": {"dob_str"},
               "fn_sdx": {"fn"}, "gn_sdx": {"gn"}, "gn_initial": {"gn"}, "gn_canon": {"gn", "gn_canon"}, "gn_key": {"gn", "gn_canon"},
               "dob_md": {"dob_str"}, "dob_ym": {"dob_str"}, "name_set": {"gn", "fn"},
               "zip5": {"zip5"}}
    cols = set(keys)
    for k in keys:
        cols |= derived.get(k, set())
    return {c.name for c in settings.comparisons if set(c.columns) & cols}


def estimate_prior(patterns: pd.DataFrame, model: Model, settings: IdentitySettings, total_pairs: float) -> float:
    """Fixed point of prior = expected matches among candidates (given the prior) / all pairs."""
    n = patterns["n"].to_numpy(dtype=float)
    bits = np.zeros(len(n))
    for c in settings.comparisons:
        g = patterns[f"g_{c.name}"].to_numpy(dtype=int)
        bf = np.array([model.bayes_factor_bits(c.name, k) for k in range(len(c.levels))])
        bits += np.where(g >= 0, bf[np.clip(g, 0, None)], 0.0)
    total_pairs = max(total_pairs, 1.0)
    prior = min(max(n.sum() / total_pairs * 0.1, 1.0 / total_pairs), 0.5)
    for _ in range(200):
        logit = math.log2(prior / (1 - prior))
        post = 1.0 / (1.0 + np.power(2.0, -np.clip(bits + logit, -1000, 1000)))
        new = min(max(float((n * post).sum()) / total_pairs, 1.0 / total_pairs), 0.5)
        if abs(new - prior) <= 1e-6 * prior:
            prior = new
            break
        prior = new
    return prior
