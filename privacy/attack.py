"""The attacker test: how tightly can anyone bound a suppressed cell from what a feed publishes?

Model (the "interval attack" of statistical disclosure control): the attacker knows every
published number and every additive relation of the table (each stratifier partitions the
total, two-way cells add up to their one-way margins, LHJs add up to the state row, quarters to
the year where the feed says so), that counts are non-negative and that a numerator never exceeds
its denominator. Integrality is relaxed (a linear programme; the integer range is inside the
real one, so passing the LP test is the conservative direction). For each suppressed cell it
solves ``min x`` and ``max x`` with scipy's HiGHS.

Implied counts: for every row with a suppressed count the LP also bounds ``denominator -
numerator`` (the units not meeting the measure, a count in its own right); it must pass like a
cell or be provably 0 (failures have ``column == "implied"``). :func:`binding_cells` names the
published cells whose values pin a bound (from the LP duals): what privacy.suppression suppresses
next when a bound fails.

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
from typing import Any, Literal

import highspy
import numpy as np
import pandas as pd

from phmx.errors import PrivacyError
from phmx.log import get_logger
from privacy.cell_relations import DERIVED_COLUMNS, CellSystem, build_system, describe_cell, values

log = get_logger("phmx.privacy.attack")

THRESHOLD = 11
IMPLIED = "implied"  # failure column of an implied count: denominator - numerator of a row
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
    implied_bounds: dict[int, CellBound] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    derived_leaks: list[dict[str, Any]] = field(default_factory=list)
    infeasible_components: int = 0
    suppressed_cells: int = 0
    components: int = 0
    threshold: int = THRESHOLD
    # what binding() needs: the cell system, the values and each variable's group
    _system: CellSystem | None = field(default=None, repr=False)
    _vals: list[float | None] = field(default_factory=list, repr=False)
    _rel_index: dict[int, list[int]] = field(default_factory=dict, repr=False)
    _comp_of: dict[int, list[int]] = field(default_factory=dict, repr=False)
    _models: dict[int, tuple[_LP, _Model]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.derived_leaks and not self.infeasible_components

    def summary(self) -> dict[str, Any]:
        return {"ok": self.ok, "suppressed_cells": self.suppressed_cells, "components": self.components,
                "failures": len(self.failures), "derived_leaks": len(self.derived_leaks),
                "infeasible_components": self.infeasible_components, "threshold": self.threshold}

    def binding(self, failure: dict[str, Any]) -> dict[int, float]:
        """The published cells that pin ``failure``'s interval (see :func:`binding_cells`)."""
        if self._system is None:
            return {}
        row = int(failure["row"])
        if failure["column"] == IMPLIED:
            target, cell = ("implied", row), (row * 2 if row * 2 in self._comp_of else row * 2 + 1)
        else:
            cell = CellSystem.cell(row, failure["column"])
            target = ("cell", cell)
        comp = self._comp_of.get(cell)
        if comp is None:
            return {}
        side = "low" if failure["low"] > _TOL and failure["low"] < self.threshold - _TOL else "high"
        key = id(comp)  # one LP per group, re-solved for each failure in it
        if key not in self._models:
            lp = _build_lp(self._system, self._vals, comp, self._rel_index)
            self._models[key] = (lp, _Model(lp.a_eq, lp.b_eq, [(0.0, None)] * lp.n))
        return _binding(*self._models[key], target, side)

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


@dataclass
class _LP:
    """The attacker's linear programme for one group of suppressed cells.

    Variables: the suppressed cells of the group (``var_of``: cells an equality ties together,
    a population count and the same count as each prevalence indicator's denominator, are one
    variable), then one *implied* variable per row with a suppressed count, ``y = denominator -
    numerator`` (the units not meeting the measure: a count in its own right, DDG 4.4.1). Every
    other relation is an equation; published values are moved to the right-hand side, and
    ``terms[k]`` remembers which published cells (with their coefficients) went into equation
    ``k``, so the duals of a bound name the published cells that pin it.
    """

    comp: list[int]
    rows: list[int]
    a_eq: Any
    b_eq: list[float]
    terms: list[list[tuple[int, float]]]
    var_of: dict[int, int]
    n_cells: int  # cell variables (before the implied ones)

    @property
    def n(self) -> int:
        return self.n_cells + len(self.rows)

    def index_of_cell(self, cell: int) -> int:
        return self.var_of[cell]

    def index_of_row(self, row: int) -> int:
        return self.n_cells + self.rows.index(row)


def _build_lp(system: CellSystem, vals: list[float | None], comp: list[int],
              rel_index: dict[int, list[int]]) -> _LP:
    from scipy.sparse import coo_matrix

    rel_ids = sorted({r for c in comp for r in rel_index.get(c, [])})
    # An equality between two hidden cells (a shared population count: 12 prevalence indicators'
    # denominators and the population row's, per stratum) makes them one variable rather than 13
    # variables and 12 equations: the same LP, several times smaller for the largest groups.
    in_comp = set(comp)
    same = _UnionFind()
    tied: set[int] = set()
    for rid in rel_ids:
        rel = system.relations[rid]
        if len(rel.children) == 1 and rel.parent in in_comp and rel.children[0] in in_comp:
            same.union(rel.parent, rel.children[0])
            tied.add(rid)
    first: dict[int, int] = {}
    pos = {c: first.setdefault(same.find(c), len(first)) for c in comp}
    rows_with = sorted({CellSystem.row_of(c) for c in comp})
    rows: list[int] = []
    cols: list[int] = []
    data: list[float] = []
    b_eq: list[float] = []
    terms: list[list[tuple[int, float]]] = []

    def equation(entries: list[tuple[int | None, int | None, float]]) -> None:
        # entries: (variable index or None, published cell or None, coefficient)
        k = len(b_eq)
        rhs = 0.0
        used: list[tuple[int, float]] = []
        for var, cell, coef in entries:
            if var is not None:
                rows.append(k)
                cols.append(var)
                data.append(coef)
            elif cell is not None:
                v = vals[cell]
                rhs -= coef * (v if v is not None else 0.0)
                used.append((cell, coef))
        b_eq.append(rhs)
        terms.append(used)

    for rid in rel_ids:
        if rid in tied:
            continue
        rel = system.relations[rid]
        equation([(pos.get(cell), None if cell in pos else cell, coef)
                  for cell, coef in ((rel.parent, 1.0), *((c, -1.0) for c in rel.children))])
    base = len(first)
    for j, row in enumerate(rows_with):
        num, den = row * 2, row * 2 + 1
        equation([(base + j, None, 1.0),
                  (pos.get(num), None if num in pos else num, 1.0),
                  (pos.get(den), None if den in pos else den, -1.0)])
    n = base + len(rows_with)
    a_eq = coo_matrix((data, (rows, cols)), shape=(len(b_eq), n)).tocsr()
    return _LP(comp, rows_with, a_eq, b_eq, terms, pos, base)


@dataclass
class _Result:
    """What one solve returns (scipy's linprog status codes: 0 optimal, 2 infeasible, 3 unbounded)."""

    status: int
    fun: float = 0.0
    x: np.ndarray | None = None
    eq_duals: np.ndarray | None = None  # d objective / d right-hand side of each equation


class _Model:
    """One LP (``A_eq x = b_eq``, ``A_ub x <= b_ub``, bounds), solved for many objectives.

    The attacker solves the same constraints with a different objective per bound, so the model
    is passed to HiGHS once and only the costs change between solves: HiGHS restarts from the
    last basis, and the per-call overhead of ``scipy.optimize.linprog`` (input checks, a new
    solver each time) is gone. The binding is the public ``highspy`` package, pinned to the HiGHS
    release scipy's own ``linprog(method="highs")`` bundles, so bounds and witnesses match it.
    """

    def __init__(self, a_eq: Any, b_eq: list[float], bounds: list[tuple[float, float | None]],
                 a_ub: Any = None, b_ub: list[float] | None = None) -> None:
        self.n = len(bounds)
        self.a_eq, self.b_eq, self.bounds, self.a_ub, self.b_ub = a_eq, list(b_eq), bounds, a_ub, list(b_ub or [])
        self.m_eq = len(self.b_eq)
        self._idx = np.arange(self.n, dtype=np.int32)
        self._h = self._highs()

    def _highs(self) -> highspy.Highs:
        from scipy.sparse import csr_matrix, vstack

        blocks = [self.a_eq if self.a_eq is not None else csr_matrix((0, self.n))]
        if self.a_ub is not None:
            blocks.append(self.a_ub)
        a = vstack(blocks, format="csc")
        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_ = self.n
        lp.num_row_ = a.shape[0]
        lp.a_matrix_.num_col_ = self.n
        lp.a_matrix_.num_row_ = a.shape[0]
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = a.indptr.astype(np.int32)
        lp.a_matrix_.index_ = a.indices.astype(np.int32)
        lp.a_matrix_.value_ = a.data.astype(float)
        lp.col_cost_ = np.zeros(self.n)
        lp.col_lower_ = np.array([lo for lo, _ in self.bounds], dtype=float)
        lp.col_upper_ = np.array([inf if hi is None else hi for _, hi in self.bounds], dtype=float)
        lp.row_lower_ = np.array(self.b_eq + [-inf] * len(self.b_ub), dtype=float)
        lp.row_upper_ = np.array(self.b_eq + self.b_ub, dtype=float)
        solver = highspy.Highs()
        solver.setOptionValue("output_flag", False)
        # Only the costs change between solves, so the last basis stays primal feasible: primal
        # simplex restarts from it (dual simplex, the default, does not; ~7x slower here), and
        # presolve would throw the basis away.
        solver.setOptionValue("presolve", "off")
        solver.setOptionValue("simplex_strategy", 4)
        solver.passModel(lp)
        return solver

    def solve(self, cvec: np.ndarray) -> _Result:
        st = self._h
        st.changeColsCost(self.n, self._idx, np.asarray(cvec, dtype=float))
        st.run()
        status = st.getModelStatus()
        if status == highspy.HighsModelStatus.kOptimal:
            sol = st.getSolution()
            return _Result(0, float(st.getInfo().objective_function_value), np.array(sol.col_value),
                           np.array(sol.row_dual)[:self.m_eq])
        if status == highspy.HighsModelStatus.kInfeasible:
            return _Result(2)
        if status in (highspy.HighsModelStatus.kUnbounded, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            return _Result(3)
        return _Result(4)  # pragma: no cover - time or iteration limits are not set


def _cap(vals: list[float | None], threshold: int) -> float:
    return float(sum(abs(v) for v in vals if v is not None) + 10 * threshold)


Solution = tuple[dict[int, CellBound], dict[int, CellBound]]


def solve_component(system: CellSystem, vals: list[float | None], comp: list[int],
                    rel_index: dict[int, list[int]] | None = None, *, threshold: int = THRESHOLD,
                    exact: bool = False, known: dict[tuple[str, int], CellBound] | None = None) -> Solution | None:
    """Attacker intervals for the cells of ``comp`` and for the implied counts (denominator minus
    numerator) of their rows: ``(cell bounds, implied bounds by row)``; None when the published
    numbers are inconsistent.

    With ``exact=False`` (default) a variable that some feasible point shows at 0 and another at
    ``threshold`` or more passes without solving its own two LPs (its reported ``low``/``high``
    are those witnesses: the true interval is at least that wide). Every other variable gets its
    exact ``min`` and ``max``. Witness points come from LPs with aggregate objectives and from
    every LP solved on the way, so most cells are certified by a handful of solves.

    ``known`` (non-exact mode): variables already shown to reach both 0 and ``threshold`` on a
    table with fewer suppressed cells. Suppressing more only turns published constants into
    unknowns, so every earlier feasible point stays feasible and those witnesses still hold:
    privacy.suppression passes them between its rounds and they are not solved again.
    """
    rel_index = rel_index if rel_index is not None else system.relations_of()
    lp = _build_lp(system, vals, comp, rel_index)
    closed = _one_equation(lp)
    if closed is not False:
        return closed
    n = lp.n
    bounds: list[Any] = [(0.0, None)] * n
    cap = _cap(vals, threshold)
    capped: list[tuple[float, float | None]] = [(0.0, cap)] * n

    seen_low = np.full(n, np.inf)
    seen_high = np.full(n, -np.inf)
    if known and not exact:
        keys = [(("cell", c), lp.var_of[c]) for c in lp.comp] + \
            [(("implied", r), lp.n_cells + j) for j, r in enumerate(lp.rows)]
        for k, i in keys:
            if k in known:
                seen_low[i], seen_high[i] = known[k].low, known[k].high

    def witness(res: Any) -> None:
        if res.status == 0 and res.x is not None:
            np.minimum(seen_low, res.x, out=seen_low)
            np.maximum(seen_high, res.x, out=seen_high)

    capped_model = _Model(lp.a_eq, lp.b_eq, capped)
    first = capped_model.solve(np.ones(n))
    if first.status == 2:
        return None
    witness(first)
    if not exact:
        _certify(_AuxRunner(lp.a_eq, lp.b_eq, capped, threshold), seen_low, seen_high)
    model: _Model | None = None
    found: list[CellBound] = []
    for i in range(n):
        if not exact and seen_low[i] <= _TOL and seen_high[i] >= threshold - _TOL:
            found.append(CellBound(i, float(seen_low[i]), float(seen_high[i])))
            continue
        model = model or _Model(lp.a_eq, lp.b_eq, bounds)
        cvec = np.zeros(n)
        cvec[i] = 1.0
        low, high = float(seen_low[i]), float(seen_high[i])
        if exact or low > _TOL:
            lo = model.solve(cvec)
            if lo.status == 2:
                return None
            witness(lo)
            low = lo.fun if lo.status == 0 else 0.0
        # a cell provably >= threshold passes whatever its maximum (unless exact bounds are wanted)
        if exact or (high < threshold - _TOL and low < threshold - _TOL):
            hi = model.solve(-cvec)
            if hi.status == 2:
                return None
            witness(hi)
            high = float("inf") if hi.status == 3 else -hi.fun
        found.append(CellBound(i, low, high))
    cells = {c: CellBound(c, found[lp.var_of[c]].low, found[lp.var_of[c]].high) for c in lp.comp}
    implied = {row: CellBound(row * 2, b.low, b.high) for row, b in zip(lp.rows, found[lp.n_cells:], strict=True)}
    return cells, implied


def _one_equation(lp: _LP) -> Solution | None | Literal[False]:
    """The exact intervals of a group whose LP is one relation plus box bounds, without solving it;
    False when the group is not of that shape (then the LP is solved).

    The shape (most groups of a suppressed table: two or three hidden strata of one stratifier, a
    hidden count in no relation at all): at most one relation equation ``sum a_i x_i = b``
    (``a_i`` = +-1), and every row with a hidden count has only one (so its implied count ``y =
    r - c x`` >= 0 is a bound on that cell: ``0 <= x <= denominator`` for a numerator, ``x >=
    numerator`` for a denominator). Over a box cut by one hyperplane the attainable values of
    ``x_k`` are exactly ``(b - sum_{i != k} a_i x_i) / a_k`` over the others' boxes, intersected
    with its own box: the same interval the two LPs would give (None when empty: the published
    numbers are inconsistent)."""
    a = lp.a_eq.tocsr()
    n_cells = lp.n_cells
    n_rel = a.shape[0] - len(lp.rows)
    if n_rel > 1:
        return False
    low = np.zeros(n_cells)
    high = np.full(n_cells, np.inf)
    row_eq: list[tuple[int, float, float]] = []  # (cell variable, c, r) of y + c x = r
    for j in range(len(lp.rows)):
        k = n_rel + j
        cols = a.indices[a.indptr[k]:a.indptr[k + 1]]
        data = a.data[a.indptr[k]:a.indptr[k + 1]]
        cell_vars = [(int(c), float(v)) for c, v in zip(cols, data, strict=True) if c < n_cells]
        if len(cell_vars) != 1:
            return False
        var, c = cell_vars[0]
        r = float(lp.b_eq[k])
        row_eq.append((var, c, r))
        if c > 0:  # y = r - x >= 0
            high[var] = min(high[var], r)
        else:  # y = r + x >= 0
            low[var] = max(low[var], -r)
    if np.any(low > high + _TOL):
        return None
    if n_rel == 1:
        cols = a.indices[a.indptr[0]:a.indptr[1]]
        coef = np.zeros(n_cells)
        coef[cols] = a.data[a.indptr[0]:a.indptr[1]]
        if np.any(coef == 0) or np.any(np.abs(coef) != 1):
            return False
        b = float(lp.b_eq[0])
        # each term a_i x_i ranges over [t_lo, t_hi]
        t_lo = np.where(coef > 0, low, -high)
        t_hi = np.where(coef > 0, high, -low)
        if b < t_lo.sum() - _TOL or b > t_hi.sum() + _TOL:
            return None
        rest_lo, rest_hi = _sum_of_others(t_lo), _sum_of_others(t_hi)
        term_lo, term_hi = b - rest_hi, b - rest_lo  # a_k x_k
        x_lo = np.where(coef > 0, term_lo, -term_hi)
        x_hi = np.where(coef > 0, term_hi, -term_lo)
        low, high = np.maximum(low, x_lo), np.minimum(high, x_hi)
        if np.any(low > high + _TOL):
            return None
    cells = {c: CellBound(c, float(low[lp.var_of[c]]), float(high[lp.var_of[c]])) for c in lp.comp}
    implied: dict[int, CellBound] = {}
    for row, (var, c, r) in zip(lp.rows, row_eq, strict=True):
        ys = sorted((r - c * low[var], r - c * high[var]))
        implied[row] = CellBound(row * 2, float(max(ys[0], 0.0)), float(ys[1]))
    return cells, implied


def _sum_of_others(t: np.ndarray) -> np.ndarray:
    """For each k, the sum of ``t`` without ``t[k]``; ``t``'s infinite entries all of one sign."""
    inf = np.isinf(t)
    finite = np.where(inf, 0.0, t)
    total = finite.sum()
    n_inf = int(inf.sum())
    sign = float(np.sign(t[inf][0])) if n_inf else 0.0
    others_inf = (n_inf - inf.astype(int)) > 0
    return np.where(others_inf, sign * np.inf, total - finite)


def binding_cells(system: CellSystem, vals: list[float | None], comp: list[int], target: tuple[str, int], side: str,
                  rel_index: dict[int, list[int]] | None = None) -> dict[int, float]:
    """The published cells that pin a bound: ``{cell: d bound / d value}`` (non-zero only).

    ``target`` is ``("cell", cell)`` or ``("implied", row)``; ``side`` ``"low"`` or ``"high"``.
    Solves that bound's LP and reads the duals of its equations: suppressing a published cell
    with a non-zero sensitivity turns a constant of the binding equations into a free variable,
    which gives the attacker slack on that side (how privacy.suppression repairs a failure).
    """
    rel_index = rel_index if rel_index is not None else system.relations_of()
    lp = _build_lp(system, vals, comp, rel_index)
    return _binding(lp, _Model(lp.a_eq, lp.b_eq, [(0.0, None)] * lp.n), target, side)


def _binding(lp: _LP, model: _Model, target: tuple[str, int], side: str) -> dict[int, float]:
    i = lp.index_of_cell(target[1]) if target[0] == "cell" else lp.index_of_row(target[1])
    cvec = np.zeros(lp.n)
    cvec[i] = 1.0 if side == "low" else -1.0
    res = model.solve(cvec)
    if res.status != 0 or res.eq_duals is None:
        return {}
    out: dict[int, float] = defaultdict(float)
    for k, marginal in enumerate(res.eq_duals):
        if abs(marginal) <= _TOL:
            continue
        for cell, coef in lp.terms[k]:
            # b_k = -sum(coef * value): d objective / d value = marginal * -coef
            out[cell] += -coef * marginal * (1.0 if side == "low" else -1.0)
    return {c: v for c, v in out.items() if abs(v) > _TOL}


class _AuxRunner:
    """LPs over the cells x plus t (t_i <= x_i, t_i <= threshold), to certify many cells at once."""

    def __init__(self, a_eq: Any, b_eq: list[float], bounds: list[Any], threshold: int) -> None:
        from scipy.sparse import csr_matrix, hstack, identity

        n = len(bounds)
        self.n = n
        self.threshold = float(threshold)
        eq = hstack([a_eq, csr_matrix((a_eq.shape[0], n))], format="csr")
        ub = hstack([-identity(n), identity(n)], format="csr")  # t - x <= 0
        self.model = _Model(eq, b_eq, list(bounds) + [(0.0, self.threshold)] * n, ub, [0.0] * n)

    def solve(self, c_x: np.ndarray, c_t: np.ndarray) -> _Result:
        return self.model.solve(np.concatenate([c_x, c_t]))


def _certify(runner: _AuxRunner, seen_low: np.ndarray, seen_high: np.ndarray, rounds: int = 6) -> None:
    """Find feasible points putting as many uncertified cells as possible at 0 / at the threshold."""
    n = runner.n
    zero = np.zeros(n)
    for _ in range(rounds):
        todo_high = seen_high < runner.threshold - _TOL
        if not todo_high.any():
            break
        res = runner.solve(zero, -todo_high.astype(float))  # maximise sum of min(x, threshold)
        if res.status != 0 or res.x is None:
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
        if res.status != 0 or res.x is None:
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


def implied_ok(bound: CellBound, threshold: int = THRESHOLD, *, strict: bool = False) -> bool:
    """An implied count (denominator - numerator) passes like a cell, or when it is provably 0
    (everyone met the measure: as publishable as a zero cell)."""
    return bound.ok(threshold, strict=strict) or bound.high <= _TOL


def audit(published_table: pd.DataFrame, spec: Any = None, *, threshold: int = THRESHOLD,
          strict: bool = False, exact: bool = False,
          cache: dict[frozenset[int], Solution | None] | None = None,
          known: dict[tuple[str, int], CellBound] | None = None,
          system: CellSystem | None = None, rel_index: dict[int, list[int]] | None = None) -> AttackReport:
    """Bound every suppressed cell of a published measure feed by linear programming.

    Besides the suppressed cells, the implied count of every row with a suppressed count
    (``denominator - numerator``: the units *not* meeting the measure) is bounded too and must
    pass the same test (or be provably zero): a failure there has ``column == "implied"``.

    ``spec`` (a :class:`privacy.suppression.SuppressionSpec`, optional) adds the relations the
    shape does not show: the geography total, stratum roll-ups and period roll-ups. ``cache``
    (a dict kept by the caller) reuses the bounds of linked groups already solved on the same
    table: a group's LP depends only on its set of cells, so an unchanged group is not re-solved
    (privacy.suppression passes one between its rounds). ``known`` (a dict kept by the caller,
    only while the same table gets *more* suppressed cells between calls) collects the variables
    certified to reach 0 and the threshold, which stay certified (see :func:`solve_component`).
    ``system`` / ``rel_index``: the table's relations when the caller has them (they depend on
    its rows, not on which counts are hidden: privacy.suppression audits the same rows each round).
    """
    table = published_table.reset_index(drop=True)
    if system is None:
        system, rel_index = build_system(table, **_relation_options(spec)), None
    rel_index = rel_index if rel_index is not None else system.relations_of()
    vals = values(table)
    report = AttackReport(threshold=threshold)
    report.derived_leaks = derived_leaks(table)
    comps = components(system, vals)
    report.components = len(comps)
    report._system, report._vals, report._rel_index = system, vals, rel_index
    for comp in comps:
        for c in comp:
            report._comp_of[c] = comp
        key = frozenset(comp)
        if cache is not None and key in cache:
            solved = cache[key]
        else:
            solved = solve_component(system, vals, comp, rel_index, threshold=threshold, exact=exact, known=known)
            if cache is not None:
                cache[key] = solved
        if solved is None:
            report.infeasible_components += 1
            continue
        report.bounds.update(solved[0])
        report.implied_bounds.update(solved[1])
        if known is not None and not exact:
            for kind, got in (("cell", solved[0]), ("implied", solved[1])):
                known.update({(kind, k): b for k, b in got.items()
                              if b.low <= _TOL and b.high >= threshold - _TOL})
    report.suppressed_cells = sum(1 for v in vals if v is None)
    for cell, b in sorted(report.bounds.items()):
        if not b.ok(threshold, strict=strict):
            report.failures.append({**describe_cell(table, cell), "low": b.low, "high": b.high})
    for row, b in sorted(report.implied_bounds.items()):
        if not implied_ok(b, threshold, strict=strict):
            report.failures.append({**describe_cell(table, row * 2), "column": IMPLIED, "low": b.low, "high": b.high})
    log.info("attack audit: %d suppressed cell(s) in %d component(s), %d failure(s), %d derived leak(s)",
             report.suppressed_cells, report.components, len(report.failures), len(report.derived_leaks))
    return report


def _relation_options(spec: Any) -> dict[str, Any]:
    if spec is None:
        return {}
    return {"geography_total": getattr(spec, "geography_total", None),
            "rollups": tuple(getattr(spec, "rollups", ()) or ()),
            "period_rollups": getattr(spec, "period_rollups", None),
            "period_rollup_columns": tuple(getattr(spec, "period_rollup_columns", ("numerator",))),
            "shared_denominators": dict(getattr(spec, "shared_denominators", None) or {}),
            "partitions": {k: tuple(v) for k, v in (getattr(spec, "partitions", None) or {}).items()}}
