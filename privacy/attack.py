"""The attacker test: how tightly can anyone bound a suppressed cell from what a feed publishes?

Model (the "interval attack" of statistical disclosure control): the attacker knows every
published number and every additive relation of the table (each stratifier partitions the
total, two-way cells add up to their one-way margins, LHJs add up to the state row, quarters to
the year where the feed says so), that counts are non-negative and that a numerator never exceeds
its denominator. Integrality is relaxed (a linear programme; the integer range is inside the
real one, so passing the LP test is the conservative direction). For each suppressed cell it
solves ``min x`` and ``max x`` with scipy's HiGHS.

Pass criterion for a suppressed cell: ``min <= 0`` and ``max >= 11``; or ``min >= 11`` (the cell is
provably not a small count; only complements can be like that, since a primary cell's true value
1-10 lies inside its interval). ``strict=True`` drops that exception. DDG 2.0 section 4.4.1
protects small counts (1-10) by requiring that suppressed values "cannot be re-identified":
(b) the suppressed values of a row/column must sum to 11 or more, so none of them can be pinned
below 11, and zero may be shown, so the attacker must also be unable to rule zero out. The
feasible interval must therefore contain all of [0, 11]: the attacker cannot tell "no events"
from "a publishable count". Annotation codes are not used as bounds (see docs/privacy.md).

Also reported: a rate or confidence limit published for a row whose numerator or denominator
is suppressed (a derived statistic gives the count back; DDG 4.4.1).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from phmx.errors import PrivacyError
from phmx.log import get_logger
from privacy.cells import DERIVED_COLUMNS, CellSystem, build_system, describe_cell, values

log = get_logger("phmx.privacy.attack")

THRESHOLD = 11
_TOL = 1e-6


@dataclass(frozen=True)
class CellBound:
    """The attacker's interval for one suppressed cell."""

    cell: int
    low: float
    high: float

    def ok(self, threshold: int = THRESHOLD, *, strict: bool = False) -> bool:
        """[0, threshold] inside the interval; or (unless strict) provably not a small count."""
        if self.low <= _TOL and self.high >= threshold - _TOL:
            return True
        return not strict and self.low >= threshold - _TOL


@dataclass
class AttackReport:
    """Bounds for every suppressed cell, the failures, and derived statistics that leak."""

    bounds: dict[int, CellBound] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    derived_leaks: list[dict[str, Any]] = field(default_factory=list)
    infeasible_components: int = 0
    suppressed_cells: int = 0
    components: int = 0
    threshold: int = THRESHOLD

    @property
    def ok(self) -> bool:
        return not self.failures and not self.derived_leaks and not self.infeasible_components

    def summary(self) -> dict[str, Any]:
        return {"ok": self.ok, "suppressed_cells": self.suppressed_cells, "components": self.components,
                "failures": len(self.failures), "derived_leaks": len(self.derived_leaks),
                "infeasible_components": self.infeasible_components, "threshold": self.threshold}

    def raise_if_failed(self, what: str = "feed") -> None:
        if self.ok:
            return
        first = self.failures[:5]
        detail = "; ".join(f"{f['lhj']}/{f['measure_id']}/{f['period']}/{f['stratifier']}={f['stratum']} "
                           f"{f['column']} in [{f['low']:.1f}, {f['high']:.1f}]" for f in first)
        raise PrivacyError(
            f"{what}: {len(self.failures)} suppressed cell(s) can be bounded too tightly, "
            f"{len(self.derived_leaks)} derived statistic(s) leak, "
            f"{self.infeasible_components} inconsistent component(s). {detail}",
            hint="re-run suppression with the same spec (complementary suppression) before publishing",
        )


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


def components(system: CellSystem, vals: list[float | None]) -> list[list[int]]:
    """Groups of suppressed cells that constrain each other (solved as separate LPs)."""
    uf = _UnionFind()
    variables = [i for i, v in enumerate(vals) if v is None]
    for v in variables:
        uf.find(v)
    for rel in system.relations:
        vs = [c for c in (rel.parent, *rel.children) if vals[c] is None]
        for a, b in zip(vs, vs[1:], strict=False):
            uf.union(a, b)
    for v in variables:
        if v % 2 == 0 and vals[v + 1] is None:
            uf.union(v, v + 1)
    groups: dict[int, list[int]] = defaultdict(list)
    for v in variables:
        groups[uf.find(v)].append(v)
    return [sorted(g) for g in groups.values()]


def solve_component(system: CellSystem, vals: list[float | None], comp: list[int],
                    rel_index: dict[int, list[int]] | None = None, *, threshold: int = THRESHOLD,
                    exact: bool = False) -> dict[int, CellBound] | None:
    """Attacker intervals for the cells of ``comp``; None when the published numbers are inconsistent.

    With ``exact=False`` (default) a cell that some feasible point shows at 0 and another at
    ``threshold`` or more passes without solving its own two LPs (its reported ``low``/``high``
    are those witnesses: the true interval is at least that wide). Every other cell gets its
    exact ``min`` and ``max``. Witness points come from LPs with aggregate objectives and from
    every LP solved on the way, so most cells are certified by a handful of solves.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    pos = {c: i for i, c in enumerate(comp)}
    n = len(comp)
    rel_index = rel_index if rel_index is not None else system.relations_of()
    rel_ids = sorted({r for c in comp for r in rel_index.get(c, [])})
    rows, cols, data, b_eq = [], [], [], []
    for k, rid in enumerate(rel_ids):
        rel = system.relations[rid]
        rhs = 0.0
        for cell, coef in ((rel.parent, 1.0), *((c, -1.0) for c in rel.children)):
            if cell in pos:
                rows.append(k)
                cols.append(pos[cell])
                data.append(coef)
            else:
                v = vals[cell]
                rhs -= coef * (v if v is not None else 0.0)
        b_eq.append(rhs)
    lower = np.zeros(n)
    upper = np.full(n, np.inf)
    ub_rows, ub_cols, ub_data, b_ub = [], [], [], []
    for c in comp:
        row = CellSystem.row_of(c)
        num, den = row * 2, row * 2 + 1
        if c == num:
            if den in pos:
                k = len(b_ub)
                ub_rows += [k, k]
                ub_cols += [pos[num], pos[den]]
                ub_data += [1.0, -1.0]
                b_ub.append(0.0)
            elif vals[den] is not None:
                upper[pos[num]] = min(upper[pos[num]], vals[den])  # type: ignore[arg-type]
        elif c == den and num not in pos and vals[num] is not None:
            lower[pos[den]] = max(lower[pos[den]], vals[num])  # type: ignore[arg-type]
    a_eq = coo_matrix((data, (rows, cols)), shape=(len(b_eq), n)).tocsr() if b_eq else None
    a_ub = coo_matrix((ub_data, (ub_rows, ub_cols)), shape=(len(b_ub), n)).tocsr() if b_ub else None
    bounds = list(zip(lower, [None if np.isinf(u) else u for u in upper], strict=True))
    cap = float(sum(abs(v) for v in vals if v is not None) + 10 * threshold)
    capped = [(lo, cap if hi is None else hi) for lo, hi in bounds]

    def run(cvec: np.ndarray, bnds: list[Any]) -> Any:
        return linprog(cvec, A_ub=a_ub, b_ub=b_ub or None, A_eq=a_eq, b_eq=b_eq or None, bounds=bnds,
                       method="highs")

    seen_low = np.full(n, np.inf)
    seen_high = np.full(n, -np.inf)

    def witness(res: Any) -> None:
        if res.status == 0 and res.x is not None:
            np.minimum(seen_low, res.x, out=seen_low)
            np.maximum(seen_high, res.x, out=seen_high)

    first = run(np.ones(n), capped)
    if first.status == 2:
        return None
    witness(first)
    if not exact:
        _certify(_AuxRunner(a_eq, b_eq, a_ub, b_ub, capped, threshold), seen_low, seen_high)
    out: dict[int, CellBound] = {}
    for c in comp:
        i = pos[c]
        if not exact and seen_low[i] <= _TOL and seen_high[i] >= threshold - _TOL:
            out[c] = CellBound(c, float(seen_low[i]), float(seen_high[i]))
            continue
        cvec = np.zeros(n)
        cvec[i] = 1.0
        lo = run(cvec, bounds)
        if lo.status == 2:
            return None
        witness(lo)
        hi = run(-cvec, bounds)
        if hi.status == 2:
            return None
        witness(hi)
        low = float(lo.fun) if lo.status == 0 else 0.0
        high = float("inf") if hi.status == 3 else float(-hi.fun)
        out[c] = CellBound(c, low, high)
    return out


class _AuxRunner:
    """LPs over the cells x plus t (t_i <= x_i, t_i <= threshold), to certify many cells at once."""

    def __init__(self, a_eq: Any, b_eq: list[float], a_ub: Any, b_ub: list[float], bounds: list[Any],
                 threshold: int) -> None:
        from scipy.sparse import csr_matrix, hstack, identity, vstack

        n = len(bounds)
        self.n = n
        self.threshold = float(threshold)
        self.a_eq = hstack([a_eq, csr_matrix((a_eq.shape[0], n))], format="csr") if a_eq is not None else None
        blocks = [hstack([-identity(n), identity(n)], format="csr")]  # t - x <= 0
        if a_ub is not None:
            blocks.append(hstack([a_ub, csr_matrix((a_ub.shape[0], n))], format="csr"))
        self.a_ub = vstack(blocks, format="csr")
        self.b_ub = [0.0] * n + list(b_ub or [])
        self.b_eq = b_eq
        self.bounds = list(bounds) + [(0.0, self.threshold)] * n

    def solve(self, c_x: np.ndarray, c_t: np.ndarray) -> Any:
        from scipy.optimize import linprog

        return linprog(np.concatenate([c_x, c_t]), A_ub=self.a_ub, b_ub=self.b_ub, A_eq=self.a_eq,
                       b_eq=self.b_eq or None, bounds=self.bounds, method="highs")


def _certify(runner: _AuxRunner, seen_low: np.ndarray, seen_high: np.ndarray, rounds: int = 6) -> None:
    """Find feasible points putting as many uncertified cells as possible at 0 / at the threshold."""
    n = runner.n
    zero = np.zeros(n)
    for _ in range(rounds):
        todo_high = seen_high < runner.threshold - _TOL
        if not todo_high.any():
            break
        res = runner.solve(zero, -todo_high.astype(float))  # maximise sum of min(x, threshold)
        if res.status != 0:
            break
        x = res.x[:n]
        before = int(todo_high.sum())
        np.minimum(seen_low, x, out=seen_low)
        np.maximum(seen_high, x, out=seen_high)
        if int((seen_high < runner.threshold - _TOL).sum()) == before:
            break
    for _ in range(rounds):
        todo_low = seen_low > _TOL
        if not todo_low.any():
            break
        res = runner.solve(todo_low.astype(float), zero)  # minimise the uncertified cells
        if res.status != 0:
            break
        x = res.x[:n]
        before = int(todo_low.sum())
        np.minimum(seen_low, x, out=seen_low)
        np.maximum(seen_high, x, out=seen_high)
        if int((seen_low > _TOL).sum()) == before:
            break


def derived_leaks(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows publishing a rate/CI although their numerator or denominator is suppressed."""
    out = []
    num = pd.to_numeric(table["numerator"], errors="coerce")
    den = pd.to_numeric(table["denominator"], errors="coerce")
    hidden = num.isna() | den.isna()
    for col in DERIVED_COLUMNS:
        if col not in table.columns:
            continue
        shown = pd.to_numeric(table[col], errors="coerce").notna() & hidden
        for row in np.flatnonzero(shown.to_numpy()):
            d = describe_cell(table, int(row) * 2)
            d["column"] = col
            out.append(d)
    return out


def audit(published_table: pd.DataFrame, spec: Any = None, *, threshold: int = THRESHOLD,
          strict: bool = False, exact: bool = False,
          cache: dict[frozenset[int], dict[int, CellBound] | None] | None = None) -> AttackReport:
    """Bound every suppressed cell of a published measure feed by linear programming.

    ``spec`` (a :class:`privacy.suppression.SuppressionSpec`, optional) adds the relations the
    shape does not show: the geography total, stratum roll-ups and period roll-ups. ``cache``
    (a dict kept by the caller) reuses the bounds of linked groups already solved on the same
    table: a group's LP depends only on its set of cells, so an unchanged group is not re-solved
    (privacy.suppression passes one between its rounds).
    """
    table = published_table.reset_index(drop=True)
    system = build_system(table, **_relation_options(spec))
    vals = values(table)
    report = AttackReport(threshold=threshold)
    report.derived_leaks = derived_leaks(table)
    rel_index = system.relations_of()
    comps = components(system, vals)
    report.components = len(comps)
    for comp in comps:
        key = frozenset(comp)
        if cache is not None and key in cache:
            bounds = cache[key]
        else:
            bounds = solve_component(system, vals, comp, rel_index, threshold=threshold, exact=exact)
            if cache is not None:
                cache[key] = bounds
        if bounds is None:
            report.infeasible_components += 1
            continue
        report.bounds.update(bounds)
    report.suppressed_cells = sum(1 for v in vals if v is None)
    for cell, b in sorted(report.bounds.items()):
        if not b.ok(threshold, strict=strict):
            report.failures.append({**describe_cell(table, cell), "low": b.low, "high": b.high})
    log.info("attack audit: %d suppressed cell(s) in %d component(s), %d failure(s), %d derived leak(s)",
             report.suppressed_cells, report.components, len(report.failures), len(report.derived_leaks))
    return report


def _relation_options(spec: Any) -> dict[str, Any]:
    if spec is None:
        return {}
    return {"geography_total": getattr(spec, "geography_total", None),
            "rollups": tuple(getattr(spec, "rollups", ()) or ()),
            "period_rollups": getattr(spec, "period_rollups", None),
            "period_rollup_columns": tuple(getattr(spec, "period_rollup_columns", ("numerator",)))}
