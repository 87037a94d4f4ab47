"""Small-cell suppression for aggregate feeds, following the CalHHS Data De-identification
Guidelines (DDG 2.0).

``suppress(table, spec)`` takes the LHJ measure feed (one row per cell: ``lhj, measure_id,
period, stratifier, stratum, numerator, denominator, rate, ci_low, ci_high, annotation``) and
returns it masked:

1. **Decide per table whether masking is required** (a table = one LHJ, measure, period and
   stratifier). Always for sensitive topics (DDG 5.6.2: substance use, serious mental illness,
   HIV...; the spec maps measures to topics). Otherwise (DDG 4.2/4.3): no masking when every
   numerator is 0 or >= 11 and every denominator >= 20,000; else the Publication Scoring
   Criteria decide: a score of 13 or more means mask.
2. **Primary suppression** (DDG 4.4.1): in masked tables, numerators of 1-10 (never 0) and,
   by default, denominators of 1-10 (small denominators identify people too: DDG 4.2), and the
   numerator where the implied count ``denominator - numerator`` (units not meeting the
   measure) is 1-10. Annotation ``1`` when a count of the row is 1-10; ``4`` when only the
   implied count is (the numerator shown empty may be well above 10: a reader must not read
   it as a small count).
3. **Complementary suppression** (DDG 4.4.1 (a)/(b), 4.4.3): in every additive relation
   (each stratifier's strata vs the total, two-way cells vs margins, LHJs vs the state row,
   roll-ups) that holds a suppressed cell, suppress more cells while only one is suppressed, all
   suppressed values are <= 3, or they sum to less than 11. Complements are the smallest
   non-zero non-total cells that fix the condition (least informative first). Annotation ``2``.
4. **Attacker check**: privacy.attack bounds every suppressed cell and every implied count by
   linear programming; any that fails (an upper bound below 11, or a lower bound above 0) gets
   another complement, chosen among the published cells the LP's duals say pin that bound (see
   :func:`_fix_failure`), until none is left. ``on_failure="raise"`` (default) raises
   PrivacyError if that cannot be done; ``"report"`` returns the table and names the failing
   ``(lhj, measure)`` pairs in the summary (the publish stage then publishes less detail for
   them or withholds them).
5. **Derived statistics**: rate and confidence limits are emptied for every row whose numerator
   or denominator is suppressed (DDG 4.4.1). Rows with a zero denominator get annotation ``3``
   (no data).

Suppressed values are left empty (pandas ``<NA>``); the annotation column carries the code.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from phmx.errors import PrivacyError, SpecError
from phmx.log import get_logger
from privacy.attack import IMPLIED, AttackReport, audit
from privacy.cell_relations import (
    ALL,
    KEY,
    VALUE_COLUMNS,
    CellSystem,
    Rollup,
    build_system,
    check_feed,
    infer_period_rollups,
)

log = get_logger("phmx.privacy.suppression")

SMALL_CELL = 1
COMPLEMENTARY = 2
NO_DATA = 3
COMPLEMENT_SMALL = 4  # the numerator is hidden because denominator - numerator is 1-10
#: A row with several hidden counts carries the most specific reason: a small count of its own,
#: then a small complement, then complementary.
_CODE_RANK = {SMALL_CELL: 0, COMPLEMENT_SMALL: 1, COMPLEMENTARY: 2}

#: Topics DDG 2.0 section 5.6.2 says are always suppressed below 11, whatever the score, plus
#: HIV/STD and mental health (W&I 5328 confidentiality), which this hub treats the same way.
SENSITIVE_TOPICS = frozenset({
    "sud", "substance_use", "serious_mental_illness", "smi", "mental_health", "hiv", "std", "trauma",
    "developmental_disability", "child_welfare", "foster_care", "homelessness", "crime_victim",
    "domestic_violence", "justice_involved", "incarceration", "non_citizen", "immigration",
    "pregnancy_termination", "abortion", "gender_affirming_care", "sexual_orientation", "suicide",
})
#: Default topics of the hub's measures (a spec may override or extend).
DEFAULT_MEASURE_TOPICS: dict[str, tuple[str, ...]] = {
    "FUA": ("sud",), "FUA-7": ("sud",), "FUA-30": ("sud",),
    "FUM": ("mental_health",), "FUM-7": ("mental_health",), "FUM-30": ("mental_health",),
    "FUH": ("serious_mental_illness",), "FUH-7": ("serious_mental_illness",),
    "FUH-30": ("serious_mental_illness",),
}
TIME_SCORES = {"five_years": -5, "multi_year": -3, "year": 0, "half_year": 3, "quarter": 4, "month": 5,
               "week": 5, "day": 5}
_BAND = re.compile(r"^(\d{1,3})\s*-\s*(\d{1,3})$")


@dataclass
class SuppressionSpec:
    """How to mask one feed. Defaults follow DDG 2.0; see docs/privacy.md for each knob."""

    threshold: int = 11
    measure_topics: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_MEASURE_TOPICS))
    always_mask: bool = False
    period_granularity: str = "year"
    populations: dict[str, int] = field(default_factory=dict)
    geography_total: str | None = None
    rollups: tuple[Rollup, ...] = ()
    period_rollups: dict[str, tuple[str, ...]] | None = None
    period_rollup_columns: tuple[str, ...] = ("numerator",)
    #: measure -> population measure whose denominator it shares (privacy.cell_relations.build_system)
    shared_denominators: dict[str, str] = field(default_factory=dict)
    #: population measure -> measures whose numerators add up to its denominator (risk tiers)
    partitions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    suppress_denominators: bool = True
    suppress_implied: bool = True
    score_cutoff: int = 13
    large_denominator: int = 20000
    payer_self_pay: bool = False
    distinguish_complementary: bool = True
    max_rounds: int = 100

    def __post_init__(self) -> None:
        if self.period_granularity not in TIME_SCORES:
            raise SpecError(f"period_granularity {self.period_granularity!r} is not one of "
                            f"{', '.join(TIME_SCORES)}")
        if self.threshold < 2:
            raise SpecError("threshold must be at least 2")

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> SuppressionSpec:
        """Build from a mapping (YAML); roll-ups as dicts with parent/children."""
        doc = dict(doc)
        rollups = tuple(
            Rollup(r["parent_stratifier"], str(r["parent_stratum"]), r["child_stratifier"],
                   tuple(str(c) for c in r["children"])) for r in doc.pop("rollups", []) or [])
        if "measure_topics" in doc:
            doc["measure_topics"] = {**DEFAULT_MEASURE_TOPICS,
                                     **{k: tuple(v) for k, v in doc["measure_topics"].items()}}
        if doc.get("partitions"):
            doc["partitions"] = {k: tuple(v) for k, v in doc["partitions"].items()}
        if doc.get("period_rollups"):
            doc["period_rollups"] = {k: tuple(v) for k, v in doc["period_rollups"].items()}
        unknown = set(doc) - set(cls.__dataclass_fields__)
        if unknown:
            raise SpecError(f"suppression spec: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(rollups=rollups, **doc)

    def is_sensitive(self, measure_id: str) -> bool:
        return self.always_mask or bool(set(self.measure_topics.get(measure_id, ())) & SENSITIVE_TOPICS)


# ---- DDG publication scoring -----------------------------------------------------------------

def _events_score(smallest: float | None) -> int:
    if smallest is None or smallest >= 1000:
        return 2
    if smallest >= 100:
        return 3
    if smallest >= 11:
        return 5
    return 7


def _age_score(strata: list[str]) -> int:
    best = 0
    for s in strata:
        m = _BAND.match(s.strip())
        width = (int(m.group(2)) - int(m.group(1)) + 1) if m else 30  # open bands ("65+") are wide
        score = 1 if width > 29 else 2 if width >= 11 else 3 if width >= 6 else 5 if width >= 3 else 7
        best = max(best, score)
    return best


def _geo_score(population: int | None) -> int:
    if population is None:
        return 7  # unknown: assume the smallest geography
    for limit, score in ((2_000_000, -5), (1_000_000, -3), (560_000, -1), (250_000, 0), (100_000, 1),
                         (50_000, 3), (20_000, 4), (4_000, 5)):
        if population > limit:
            return score
    return 7


def publication_score(rows: pd.DataFrame, stratifier: str, lhj: str, spec: SuppressionSpec) -> dict[str, int]:
    """DDG 2.0 Publication Scoring Criteria for one table; returns the parts and ``total``."""
    num = pd.to_numeric(rows["numerator"], errors="coerce")
    positive = num[num > 0]
    parts = {"events": _events_score(float(positive.min()) if len(positive) else None)}
    dims = [] if stratifier == ALL else stratifier.split("*")
    cells = [] if stratifier == ALL else [s.split("*") for s in rows.loc[rows["stratifier"] == stratifier, "stratum"]
                                          .astype(str)]
    for pos, dim in enumerate(dims):
        vals = sorted({c[pos] for c in cells if len(c) > pos})
        d = dim.lower()
        if "age" in d:
            parts["age"] = _age_score(vals)
        if "race" in d:
            parts["race"] = 2 if len(vals) <= 5 else 3
        if "ethnic" in d:
            parts["ethnicity"] = 1
        if d in ("sex", "gender") or d.startswith("sex"):
            parts["sex"] = 1
        if "payer" in d:
            parts["payer"] = 2 if spec.payer_self_pay else 1
    parts["time"] = TIME_SCORES[spec.period_granularity]
    population = spec.populations.get(lhj)
    if population is None and lhj == spec.geography_total:
        population = 39_000_000
    parts["geography"] = _geo_score(population)
    parts["total"] = sum(parts.values())
    return parts


# ---- suppression -----------------------------------------------------------------------------

@dataclass
class _State:
    table: pd.DataFrame
    system: CellSystem
    vals: list[float]
    code: dict[int, int] = field(default_factory=dict)
    rel_index: dict[int, list[int]] = field(default_factory=dict)
    threshold: int = 11

    def is_parent(self, cell: int) -> bool:
        strat = self.table.iat[CellSystem.row_of(cell), self.table.columns.get_loc("stratifier")]
        return str(strat) == ALL or any(self.system.relations[r].parent == cell for r in self.rel_index.get(cell, []))

    def add(self, cell: int, code: int) -> None:
        self.code.setdefault(cell, code)

    def candidate(self, cells: list[int], need_sum: float, need_over3: bool) -> int | None:
        """The least informative unsuppressed cell that fixes a relation (None if none can)."""
        pool = []
        for c in cells:
            if c in self.code or self.vals[c] <= 0:
                continue
            if c % 2 == 0 and self.vals[c + 1] < self.threshold and (c + 1) not in self.code:
                continue  # a numerator whose small denominator stays published would be bounded by it
            pool.append(c)
        if not pool:
            return None
        key = lambda c: (self.is_parent(c), self.vals[c])  # noqa: E731 - children first, then smallest
        fixing = [c for c in pool if self.vals[c] >= need_sum and (not need_over3 or self.vals[c] > 3)]
        if fixing:
            return min(fixing, key=key)
        return max(pool, key=lambda c: (not self.is_parent(c), self.vals[c]))


def _needs_more(vals: list[float], threshold: int) -> tuple[bool, float, bool]:
    """DDG 4.4.1: more complements needed? Returns (needed, missing sum, needs a value > 3)."""
    if not vals:
        return False, 0.0, False
    total = sum(vals)
    all_small = all(v <= 3 for v in vals)
    needed = len(vals) == 1 or all_small or total < threshold
    return needed, max(threshold - total, 1.0), all_small


def _apply_rules(st: _State, threshold: int) -> int:
    """Add complements until every relation satisfies DDG 4.4.1; returns how many were added."""
    added = 0
    for _ in range(10_000):
        changed = False
        for rel in st.system.relations:
            cells = [rel.parent, *rel.children]
            sup = [c for c in cells if c in st.code]
            if not sup:
                continue
            needed, missing, over3 = _needs_more([st.vals[c] for c in sup], threshold)
            if not needed:
                continue
            cand = st.candidate(cells, missing, over3)
            if cand is None:
                continue
            st.add(cand, COMPLEMENTARY)
            added += 1
            changed = True
        if not changed:
            return added
    raise PrivacyError("complementary suppression did not converge")  # pragma: no cover


def _masked_output(st: _State, spec: SuppressionSpec) -> pd.DataFrame:
    out = st.table.copy()
    n = len(out)
    codes: list[int | None] = [None] * n
    num = pd.array(pd.to_numeric(out["numerator"], errors="coerce").round().astype("Int64"))
    den = pd.array(pd.to_numeric(out["denominator"], errors="coerce").round().astype("Int64"))
    hidden = [False] * n
    for cell, code in st.code.items():
        row = CellSystem.row_of(cell)
        (num if cell % 2 == 0 else den)[row] = pd.NA
        hidden[row] = True
        shown = code if spec.distinguish_complementary else SMALL_CELL
        prev = codes[row]
        codes[row] = shown if prev is None else min(prev, shown, key=_CODE_RANK.__getitem__)
    out["numerator"] = num
    out["denominator"] = den
    for col in ("rate", "ci_low", "ci_high"):
        if col in out.columns:
            vals = pd.to_numeric(out[col], errors="coerce").astype("Float64")
            vals[pd.Series(hidden, index=out.index)] = pd.NA
            out[col] = vals
    existing = out["annotation"] if "annotation" in out.columns else pd.Series([pd.NA] * n, index=out.index)
    existing = pd.to_numeric(existing, errors="coerce").astype("Int64")
    for row in range(n):
        if codes[row] is None and not pd.isna(den[row]) and den[row] == 0 and pd.isna(existing.iat[row]):
            codes[row] = NO_DATA
    out["annotation"] = pd.array([c if c is not None else existing.iat[i] for i, c in enumerate(codes)],
                                 dtype="Int64")
    return out


def suppress(table: pd.DataFrame, spec: SuppressionSpec | dict[str, Any] | None = None, *,
             on_failure: str = "raise", hide: Iterable[tuple[int, str]] = (),
             reuse: dict[str, dict[Any, Any]] | None = None) -> pd.DataFrame:
    """Mask a measure feed per DDG 2.0 (see the module docstring). Returns a new frame.

    ``hide``: (positional row, column) cells the caller needs hidden whatever their value (a count
    it withholds for a reason outside this table, e.g. a denominator shared with another table
    that hid it). They are suppressed before the complementary rules and the attacker audit, so
    the audit judges the table as it will be published: hiding more can still fail the audit,
    e.g. an implied count that was provably 11 or more becomes boundable between 1 and 10.

    ``reuse``: a dict the caller keeps between calls on the *same* table where each call hides
    everything the previous one did (pass its hidden cells in ``hide``): the attacker audit's
    solved groups and certified variables are kept in it, so a repeat call solves only the groups
    its extra cells changed (the rounds of one call rely on the same two facts).

    ``result.attrs["privacy.suppression"]`` summarises what was done (counts, tables masked and
    their scores, rounds, the attacker audit). Raises PrivacyError if no suppression pattern
    passes the attacker audit (the feed must not be published then).
    """
    spec = SuppressionSpec.from_dict(spec) if isinstance(spec, dict) else (spec or SuppressionSpec())
    check_feed(table)
    base = table.reset_index(drop=True).copy()
    num = pd.to_numeric(base["numerator"], errors="coerce")
    den = pd.to_numeric(base["denominator"], errors="coerce")
    if num.isna().any() or den.isna().any():
        raise SpecError("suppress() needs every numerator and denominator (the unmasked feed)")
    if (num < 0).any() or (den < 0).any() or (num > den).any():
        raise SpecError("measure feed has negative counts or a numerator above its denominator")
    system = build_system(base, geography_total=spec.geography_total, rollups=spec.rollups,
                          period_rollups=spec.period_rollups, period_rollup_columns=spec.period_rollup_columns,
                          shared_denominators=spec.shared_denominators, partitions=spec.partitions)
    vals: list[float] = []
    for a, b in zip(num.tolist(), den.tolist(), strict=True):
        vals += [float(a), float(b)]
    st = _State(base, system, vals, rel_index=system.relations_of())
    st.threshold = spec.threshold

    # 1-2: which tables need masking, and primary suppression in them
    masked_rows: set[int] = set()
    scores: list[dict[str, Any]] = []
    strat = base["stratifier"].astype(str).to_numpy()  # positional (base has a RangeIndex); numpy, not Series
    for key, idx in base.groupby(list(KEY), sort=True).groups.items():
        lhj, measure, _period = (str(k) for k in key)
        sensitive = spec.is_sensitive(measure)
        rows = base if sensitive else base.loc[idx]
        total_rows = [i for i in idx if strat[i] == ALL]
        for s in sorted(set(strat[np.asarray(idx)]) - {ALL}) or [ALL]:
            t_idx = [i for i in idx if strat[i] == s] + total_rows
            if sensitive:  # masked whatever the score: the score is not computed (None in the summary)
                mask, score = True, None
            else:
                t_rows = base.loc[t_idx]
                tn = pd.to_numeric(t_rows["numerator"])
                td = pd.to_numeric(t_rows["denominator"])
                clean = bool(((tn == 0) | (tn >= spec.threshold)).all() and (td >= spec.large_denominator).all())
                score = publication_score(rows, s, lhj, spec)["total"]
                mask = not clean and score >= spec.score_cutoff
            scores.append({"lhj": lhj, "measure_id": measure, "period": str(key[2]), "stratifier": s,
                           "score": score, "sensitive": sensitive, "masked": mask})
            if mask:
                masked_rows.update(t_idx)
    primary = 0
    for row in sorted(masked_rows):
        for col in VALUE_COLUMNS if spec.suppress_denominators else ("numerator",):
            cell = CellSystem.cell(row, col)
            if 0 < vals[cell] < spec.threshold:
                st.add(cell, SMALL_CELL)
                primary += 1
        num_cell, den_cell = row * 2, row * 2 + 1
        gap = vals[den_cell] - vals[num_cell]
        if spec.suppress_implied and 0 < gap < spec.threshold and num_cell not in st.code and den_cell not in st.code:
            # the units NOT meeting the measure are a small count too (DDG 4.4.1): hide the numerator
            st.add(num_cell, COMPLEMENT_SMALL)
            primary += 1

    for row, col in hide:
        if not 0 <= row < len(base):
            raise SpecError(f"suppress(hide=...): row {row} is not in the table of {len(base)} row(s)")
        st.add(CellSystem.cell(row, col), COMPLEMENTARY)

    # 3-4: complements by the DDG rules, then by the attacker audit until it passes
    rounds, report = 0, AttackReport()
    complements = _apply_rules(st, spec.threshold)
    reuse = {} if reuse is None else reuse
    cache: dict[Any, Any] = reuse.setdefault("cache", {})
    # certified variables stay certified: each round (and each call given ``reuse``) only adds suppressions
    known: dict[Any, Any] = reuse.setdefault("known", {})
    while True:
        report = (audit(_masked_output(st, spec), spec, threshold=spec.threshold, cache=cache, known=known,
                        system=st.system, rel_index=st.rel_index)
                  if st.code else AttackReport())
        if report.ok or rounds >= spec.max_rounds:
            break
        rounds += 1
        added = 0
        for failure in report.failures:
            added += _fix_failure(st, report, failure)
        if not added:
            break
        complements += added + _apply_rules(st, spec.threshold)
    failed_measures = sorted({(f["lhj"], f["measure_id"]) for f in report.failures}
                             | {(f["lhj"], f["measure_id"]) for f in report.derived_leaks})
    out = _masked_output(st, spec)
    summary = {
        "primary": primary, "complementary": sum(1 for c in st.code.values() if c == COMPLEMENTARY),
        "rows": len(out), "tables": len(scores), "tables_masked": sum(1 for s in scores if s["masked"]),
        "audit_rounds": rounds, "audit": report.summary(), "scores": scores,
        "failed_measures": [list(x) for x in failed_measures],
    }
    out.attrs["privacy.suppression"] = summary
    log.info("suppression: %d primary, %d complementary cell(s) over %d row(s); %d of %d table(s) masked; "
             "audit %s after %d round(s)", summary["primary"], summary["complementary"], len(out),
             summary["tables_masked"], len(scores), "passed" if report.ok else "FAILED", rounds)
    if not report.ok and on_failure == "raise":
        report.raise_if_failed("suppressed feed")
    return out


def _fix_failure(st: _State, report: AttackReport, failure: dict[str, Any]) -> int:
    """One more complement for a cell (or implied count) the attacker could bound; 1 if one was added.

    First choice: a published cell that pins the failing bound, found from the duals of the
    attacker's LP (:meth:`privacy.attack.AttackReport.binding`). That handles upper bounds (a small
    published denominator or remainder caps the cell) and lower bounds alike (a published
    denominator of a co-suppressed cell, or a published part of a relation, forces a minimum):
    suppressing it gives the attacker slack on exactly the failing side. Among the binding cells
    the least informative is taken: non-zero before zero, strata before totals, smallest first.
    Otherwise the relation rules of DDG 4.4.1 pick a complement.
    """
    sens = report.binding(failure)
    pool = [c for c in sens if c not in st.code]
    if pool:
        pick = min(pool, key=lambda c: (st.vals[c] <= 0, st.is_parent(c), st.vals[c], c))
        st.add(pick, COMPLEMENTARY)
        return 1
    row = int(failure["row"])
    if failure["column"] == IMPLIED:
        for cell in (row * 2 + 1, row * 2):  # the row's other count, denominator first
            if cell not in st.code and st.vals[cell] > 0:
                st.add(cell, COMPLEMENTARY)
                return 1
        return 0
    cell = CellSystem.cell(row, failure["column"])
    if cell % 2 == 0 and (cell + 1) not in st.code and st.vals[cell + 1] < st.threshold and st.vals[cell + 1] > 0:
        st.add(cell + 1, COMPLEMENTARY)
        return 1
    options = []
    for rid in st.rel_index.get(cell, []):
        rel = st.system.relations[rid]
        cells = [rel.parent, *rel.children]
        n_sup = sum(1 for c in cells if c in st.code)
        cand = st.candidate(cells, st.threshold, False)
        if cand is not None:
            options.append((n_sup, st.is_parent(cand), st.vals[cand], cand))
    if not options:
        return 0
    st.add(min(options)[3], COMPLEMENTARY)
    return 1


def with_calendar(table: pd.DataFrame, spec: SuppressionSpec | None = None) -> SuppressionSpec:
    """``spec`` (default: a new one) with the period roll-ups an attacker reads off the labels
    (year = quarters, quarter = months, numerators and denominators), unless it names its own:
    what an audit of a published table assumes the attacker knows."""
    spec = spec or SuppressionSpec()
    if not spec.period_rollups:
        rollups = infer_period_rollups(table)
        if rollups:
            spec.period_rollups = rollups
            spec.period_rollup_columns = ("numerator", "denominator")
    return spec


def suppression_counts(masked: pd.DataFrame) -> dict[str, int]:
    """How many rows carry each annotation code (for run summaries)."""
    counts: dict[str, int] = defaultdict(int)
    for v in masked.get("annotation", pd.Series(dtype="Int64")).dropna():
        counts[str(int(v))] += 1
    return dict(counts)
