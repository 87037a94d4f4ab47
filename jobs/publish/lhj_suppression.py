"""Small-cell suppression of one LHJ's measure table (CalHHS DDG 2.0 section 4.4), through privacy/.

The privacy package owns statistical disclosure control (``privacy.suppression.suppress``: DDG
publication scoring, primary and complementary suppression, an LP attacker audit). What is the
publish stage's is the spec built from the LHJ table (:func:`privacy_spec`: sensitive measures as
DDG topics, the finest time grain, the period roll-ups), the call (:func:`suppress`,
:func:`suppress_report`) and primary-only suppression of the service counts, which have no
additive relations (:func:`primary_only`).

``annotation``: 1 a count of 1-10 (numerator or denominator), 4 the numerator, hidden because
denominator minus numerator is 1-10, 2 complementary, 3 no data (denominator 0), else empty.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from jobs.publish.lhj_cube import grain_of
from phmx.log import get_logger
from phmx.period import CELL_KINDS, Period, PeriodKind

log = get_logger(__name__)

THRESHOLD = 11  # cells 1..10 are small (DDG 2.0; CMS cell suppression policy)
SMALL_CELL, COMPLEMENTARY, NO_DATA, COMPLEMENT_SMALL = "1", "2", "3", "4"
COLUMNS = ("numerator", "denominator")
# the measures stage's sensitivity -> the DDG topic privacy.suppression masks below 11 whatever the score
TOPICS = {"sud": "sud", "mh": "mental_health", "smi": "serious_mental_illness"}


SPEC_FILE = "privacy/policies/suppression_lhj.yaml"


#: Annotation codes of a withheld count: 1 a count of 1-10, 4 a complement (denominator - numerator)
#: of 1-10, 2 complementary (3, no data, hides nothing). The same codes as indicators.csv.
SUPPRESSED_CODES = (SMALL_CELL, COMPLEMENTARY, COMPLEMENT_SMALL)


def annotation_counts(table: pd.DataFrame) -> dict[str, int]:
    """Rows per annotation code ("1" to "4") of a published measures table."""
    if table.empty or "annotation" not in table:
        return {}
    ann = table["annotation"].dropna().astype(str)
    ann = ann[ann != ""]
    return {str(k): int(v) for k, v in sorted(ann.value_counts().items())}


def suppressed_cells(table: pd.DataFrame) -> int:
    """The package's suppressed-cell count: rows of the published measures table whose counts are
    withheld (annotation 1, 2 or 4). The one definition the manifest, the data dictionary, the HTML
    report and the demo summary all print, so one package never shows two totals."""
    counts = annotation_counts(table)
    return sum(counts.get(c, 0) for c in SUPPRESSED_CODES)


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
    from privacy.suppression import suppress as privacy_suppress

    spec = privacy_spec(table)
    feed = table.drop(columns=[c for c in ("sensitive", "sensitivity") if c in table.columns])
    out = privacy_suppress(feed, spec, on_failure="report")
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
