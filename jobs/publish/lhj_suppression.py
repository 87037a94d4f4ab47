"""Small-cell suppression of the LHJ measure table (CalHHS DDG 2.0 section 4.4), one LHJ at a time.

The privacy package owns statistical disclosure control: :func:`suppress` calls
``privacy.suppression.suppress`` (DDG publication scoring, primary and complementary
suppression, an LP attacker audit) with a spec built from the table (:func:`privacy_spec`).
:func:`suppress_cells` here is the fallback used only when that package is absent, and the
reference the tests compare behaviour with; deliberately simple and conservative:

1. **Primary** (code 1): a numerator or denominator of 1-10 is blanked; zero stays visible. The
   implied count ``denominator - numerator`` (units *not* meeting the measure) is a cell too: when
   it is 1-10 and the denominator is published, the numerator is blanked (it would reveal it). SUD and mental-health measures
   (DDG 5.6.2: always suppress below 11 whatever the score) use the same threshold, and it
   cannot be lowered for them.
2. **Complementary** (code 2): every additive relation in the table (the total = the strata of
   each stratifier; one-way = two-way margins; year = quarters, quarter = months) is checked;
   where a visible total has exactly one blank part, or blank parts summing to less than 11, the
   smallest visible non-zero part is blanked too (or, with none, the total). Repeated until
   nothing changes.
3. **Derived statistics**: rate and confidence interval are blank whenever the numerator or the
   denominator is (including rates that would round to 0).

``annotation``: 1 small cell, 2 complementary, 3 no data (denominator 0), else empty.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from jobs.publish.lhj_cube import ALL, grain_of
from phmx.log import get_logger
from phmx.period import CELL_KINDS, Period, PeriodKind

log = get_logger(__name__)

THRESHOLD = 11  # cells 1..10 are small (DDG 2.0; CMS cell suppression policy)
SENSITIVE_THRESHOLD = 11  # DDG 5.6.2: SUD, serious mental illness... always < 11
SMALL_CELL, COMPLEMENTARY, NO_DATA = "1", "2", "3"
COLUMNS = ("numerator", "denominator")


def relations(table: pd.DataFrame) -> list[tuple[int, list[int]]]:
    """Additive relations among rows of one LHJ's table: (parent row, child rows)."""
    idx: dict[tuple[str, str, str, str], int] = {}
    rows = table[["measure_id", "period", "stratifier", "stratum"]].astype(str).itertuples(index=False, name=None)
    for i, key in enumerate(rows):
        idx[key] = i
    by_mp: dict[tuple[str, str], dict[str, list[tuple[str, int]]]] = defaultdict(lambda: defaultdict(list))
    by_ms: dict[tuple[str, str, str], list[tuple[str, int]]] = defaultdict(list)
    for (m, p, s, u), i in idx.items():
        if s != ALL:
            by_mp[(m, p)][s].append((u, i))
        by_ms[(m, s, u)].append((p, i))
    out: list[tuple[int, list[int]]] = []
    for (m, p), strats in by_mp.items():
        total = idx.get((m, p, ALL, ALL))
        for s, members in strats.items():
            if total is not None:
                out.append((total, [i for _, i in members]))
            if "*" in s:
                dims = s.split("*")
                for pos, dim in enumerate(dims):
                    groups: dict[str, list[int]] = defaultdict(list)
                    for u, i in members:
                        groups[u.split("*")[pos]].append(i)
                    for val, kids in groups.items():
                        parent = idx.get((m, p, dim, val))
                        if parent is not None:
                            out.append((parent, kids))
    for (_m, _s, _u), periods in by_ms.items():
        years: dict[str, list[int]] = defaultdict(list)
        quarters: dict[str, list[int]] = defaultdict(list)
        pos = dict(periods)
        for p, i in periods:
            g = grain_of(p)
            if g == "quarter":
                years[p[:4]].append(i)
            elif g == "month":
                quarters[f"{p[:4]}-Q{(int(p[5:7]) - 1) // 3 + 1}"].append(i)
        for y, kids in years.items():
            if y in pos:
                out.append((pos[y], kids))
        for q, kids in quarters.items():
            if q in pos:
                out.append((pos[q], kids))
    return out


def suppress_cells(table: pd.DataFrame, *, threshold: int = THRESHOLD, max_rounds: int = 100) -> pd.DataFrame:
    """Primary, implied-complement and complementary suppression of one LHJ's cells (see module doc)."""
    out = table.reset_index(drop=True).copy()
    n = len(out)
    vals = {c: out[c].fillna(0).to_numpy(dtype=np.int64) for c in COLUMNS}
    sens = out["sensitive"].to_numpy(dtype=bool) if "sensitive" in out else np.zeros(n, dtype=bool)
    limit = np.where(sens, max(threshold, SENSITIVE_THRESHOLD), threshold)
    code = {c: np.full(n, "", dtype=object) for c in COLUMNS}
    for c in COLUMNS:
        small = (vals[c] > 0) & (vals[c] < limit)
        code[c][small] = SMALL_CELL
    gap = vals["denominator"] - vals["numerator"]
    implied = (gap > 0) & (gap < limit) & (code["numerator"] == "") & (code["denominator"] == "")
    code["numerator"][implied] = SMALL_CELL
    rels = relations(out)
    for c in COLUMNS:
        v, k = vals[c], code[c]
        for _ in range(max_rounds):
            changed = False
            for parent, kids in rels:
                if k[parent]:
                    continue
                hidden = [i for i in kids if k[i]]
                if not hidden:
                    continue
                if len(hidden) >= 2 and int(v[hidden].sum()) >= threshold:
                    continue
                visible = [i for i in kids if not k[i] and v[i] > 0]
                if visible:
                    k[min(visible, key=lambda i: (v[i], i))] = COMPLEMENTARY
                else:
                    k[parent] = COMPLEMENTARY
                changed = True
            if not changed:
                break
        else:  # pragma: no cover - the loop always converges on real tables
            log.warning("complementary suppression did not converge in %d rounds", max_rounds)
    for c in COLUMNS:
        out[c] = pd.array(np.where(code[c] != "", None, vals[c]), dtype="Int64")
    row_codes = np.where((code["numerator"] == SMALL_CELL) | (code["denominator"] == SMALL_CELL), SMALL_CELL,
                         np.where((code["numerator"] != "") | (code["denominator"] != ""), COMPLEMENTARY, ""))
    row_codes = np.where((row_codes == "") & (vals["denominator"] == 0), NO_DATA, row_codes)
    out["annotation"] = pd.Series([x or None for x in row_codes], dtype="object")
    return out


TOPICS = {"sud": "sud", "mh": "mental_health", "smi": "serious_mental_illness"}


def _privacy_api() -> Callable[..., pd.DataFrame] | None:
    """``privacy.suppression.suppress`` (the privacy package's DDG masking), when it is installed."""
    try:
        mod = importlib.import_module("privacy.suppression")
    except ImportError:
        return None
    fn = getattr(mod, "suppress", None)
    return fn if callable(fn) else None


SPEC_FILE = "privacy/policies/suppression_lhj.yaml"


def base_spec() -> dict[str, Any]:
    """The privacy package's LHJ default spec (``privacy/policies/suppression_lhj.yaml``), if present."""
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[2] / SPEC_FILE
    if not path.is_file():
        return {}
    return dict(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def privacy_spec(table: pd.DataFrame) -> dict[str, Any]:
    """The privacy package's SuppressionSpec for one LHJ's table, as a dict: the LHJ default
    (:func:`base_spec`) with what this table needs on top:

    * sensitive measures (the measures stage's sensitivity ``sud`` / ``mh``) map to DDG topics,
      so they are always masked below 11 (5.6.2);
    * time granularity for the publication score: the finest grain present (months score +5,
      the most conservative choice);
    * period roll-ups: year = its quarters, quarter = its months, for numerators *and*
      denominators (units are assigned to one period by their anchor date, so both add up);
    * LHJ population unknown here, so the geography score assumes the smallest (conservative).
    """
    spec: dict[str, Any] = dict(base_spec())
    sens = table.groupby("measure_id")["sensitivity"].first().to_dict() if "sensitivity" in table else {}
    if not sens and "sensitive" in table:
        sens = {m: ("mh" if v else "general") for m, v in table.groupby("measure_id")["sensitive"].max().items()}
    topics = {str(k): tuple(v) for k, v in (spec.get("measure_topics") or {}).items()}
    topics.update({str(m): (TOPICS.get(str(s), str(s)),) for m, s in sens.items()
                   if str(s) not in ("general", "", "None")})
    spec["measure_topics"] = topics
    periods = sorted(set(table["period"].astype(str)))
    grains = {grain_of(p) for p in periods}
    spec["period_granularity"] = "month" if "month" in grains else "quarter" if "quarter" in grains else "year"
    rollups: dict[str, list[str]] = {}
    for p in periods:
        parsed = Period.parse(p, allowed=CELL_KINDS, what="cell period")
        parent = parsed.year_period if parsed.kind is PeriodKind.QUARTER else parsed.quarter
        if parent is not None:
            rollups.setdefault(parent.label, []).append(p)
    spec["period_rollups"] = {k: v for k, v in rollups.items() if k in periods}
    spec["period_rollup_columns"] = list(COLUMNS)
    return spec


def suppress(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Suppress one LHJ's measure table; return it (annotation as strings) and the method used.

    Raises PrivacyError when the attacker audit cannot be satisfied (see :func:`suppress_report`)."""
    out, method, failed = suppress_report(table)
    if failed:
        from phmx.errors import PrivacyError

        raise PrivacyError(f"suppressed feed: the attacker audit still fails for measure(s) {', '.join(failed)}",
                           hint="publish less detail for them, or withhold them (jobs.publish.lhj_feed)")
    return out, method


def suppress_report(table: pd.DataFrame) -> tuple[pd.DataFrame, str, list[str]]:
    """Suppress one LHJ's measure table: (table with string annotations, method, measures whose cells
    the attacker audit could still bound). Never raises for an audit failure: the caller decides
    (:func:`jobs.publish.lhj_feed.suppress_and_finalize` publishes less detail or withholds them)."""
    api = _privacy_api()
    if api is None:
        return suppress_cells(table), "jobs.publish.suppression.suppress_cells (primary + complementary fallback)", []
    spec = privacy_spec(table)
    feed = table.drop(columns=[c for c in ("sensitive", "sensitivity") if c in table.columns])
    out = api(feed, spec, on_failure="report")
    out["annotation"] = pd.Series([None if pd.isna(v) else str(int(v)) for v in out["annotation"]],
                                  index=out.index, dtype="object")
    for c in ("sensitivity", "sensitive"):
        if c in table.columns:
            out[c] = table[c].to_numpy()
    summary = out.attrs.get("privacy.suppression", {})
    failed = sorted({str(m) for _lhj, m in summary.get("failed_measures", [])})
    # pandas deep-copies attrs on every operation on the frame (and its slices): drop the summary
    # (audit details, a score per table) or every later step on the table crawls.
    out.attrs = {}
    return out, (f"privacy.suppression.suppress (CalHHS DDG 2.0 masking with publication scoring, "
                 f"complementary suppression and an LP attacker audit; {summary.get('primary', 0)} primary, "
                 f"{summary.get('complementary', 0)} complementary)"), failed


def primary_only(table: pd.DataFrame, count_col: str, *, threshold: int = THRESHOLD) -> pd.DataFrame:
    """Primary suppression of a table without additive relations (the service counts)."""
    out = table.copy()
    v = out[count_col].fillna(0).astype("int64")
    small = (v > 0) & (v < threshold)
    out[count_col] = pd.array(np.where(small, None, v), dtype="Int64")
    out["annotation"] = pd.Series([SMALL_CELL if s else None for s in small], index=out.index, dtype="object")
    return out
