"""One LHJ's package: suppressed measure table (CSV + Parquet), FHIR MeasureReport Bundle, service
counts, data dictionary, HTML report. Pure Python on a few thousand rows: the engine work happened
once for every LHJ (:mod:`jobs.publish.prepare`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from jobs.publish import dictionary, fhir_measure, lhj_suppression, report_html, stats
from jobs.publish.lhj_cube import ALL, CELL_COLUMNS
from jobs.publish.package import Package
from phmx.log import get_logger
from phmx.spreadsheet import escape_frame
from privacy import signing

log = get_logger(__name__)

FEED = "lhj_measures"
PURPOSE = "PUBHLTH"
OUTPUT_COLUMNS = ["lhj", "measure_id", "period", "stratifier", "stratum", "numerator", "denominator", "rate",
                  "ci_low", "ci_high", "annotation"]
LEGAL_BASIS = ("De-identified aggregate to a public health authority: 42 CFR 2.54 (Part 2 records), "
               "45 CFR 164.514(b) and 164.512(b); small cells suppressed per CalHHS DDG 2.0")
RULE_IDS = ("PART2-2.54-DEID-PUBLIC-HEALTH", "HIPAA-164.514-DEID-PUBLIC-HEALTH")


@dataclass(frozen=True)
class LhjTables:
    """The published tables of one LHJ and the figures the manifest and feed log record."""

    measures: pd.DataFrame
    state: pd.DataFrame
    services: pd.DataFrame
    suppression_method: str
    cells: int
    suppressed: int
    suppression_spec: dict[str, Any] | None = None
    #: the population indicators of this LHJ (jobs.publish.lhj_indicators.COLUMNS), or None
    indicators: pd.DataFrame | None = None


def finalize(table: pd.DataFrame, ci_method: str) -> pd.DataFrame:
    """Add rate and 95% CI where both counts are published and the denominator is positive."""
    out = table.copy()
    num = out["numerator"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    den = out["denominator"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(num) & ~np.isnan(den) & (den > 0)
    r = np.where(ok, stats.rate(np.nan_to_num(num), np.nan_to_num(den)), np.nan)
    lo, hi = stats.interval(np.nan_to_num(num), np.where(ok, den, 0), ci_method)
    out["rate"] = np.round(r, 6)
    out["ci_low"] = np.round(np.where(ok, lo, np.nan), 6)
    out["ci_high"] = np.round(np.where(ok, hi, np.nan), 6)
    return out


# Less detail, in order, when the privacy audit cannot protect a measure: (name, rows kept).
DETAIL_LEVELS: tuple[tuple[str, Any], ...] = (
    ("full", lambda t: t),
    ("no two-way stratifiers", lambda t: t[~t["stratifier"].astype(str).str.contains("*", regex=False)]),
    ("year only, one-way stratifiers", lambda t: t[(t["period"].astype(str).str.len() == 4)
                                                   & ~t["stratifier"].astype(str).str.contains("*", regex=False)]),
    ("totals only", lambda t: t[t["stratifier"].astype(str) == ALL]),
    ("year totals only", lambda t: t[(t["stratifier"].astype(str) == ALL) & (t["period"].astype(str).str.len() == 4)]),
)
WITHHELD = "2"  # annotation of a withheld measure's cells (complementary: not shown, not small per se)


def suppress_and_finalize(cells: pd.DataFrame, ci_method: str) -> tuple[pd.DataFrame, str]:
    """Suppress and add rates; publish, per measure, the most detailed table the privacy audit accepts.

    Relations never cross measures within one LHJ (strata, two-way margins and period roll-ups all
    stay inside one measure), so each measure can take its own level: the whole table is
    suppressed at full detail; a measure the attacker audit still fails is retried with less
    detail (two-way tables dropped, then quarters and months, then every stratifier, then all but
    the year totals), the other measures keep theirs. A measure that fails even as year totals is
    *withheld*: its year-total rows are published with numerator and denominator empty and
    annotation 2, and the method says so; the rest of the feed is published (an LHJ's feed is
    never refused for one measure).

    The assembled table is audited once more (:func:`privacy.attack.audit` with the table's
    relations); if that fails, PrivacyError: an unaudited table is never returned.
    """
    if cells.empty:
        empty = pd.DataFrame({c: pd.Series(dtype="object") for c in [*OUTPUT_COLUMNS, "sensitive"]})
        return empty, "none (no cells)"
    base = cells[CELL_COLUMNS].reset_index(drop=True)
    base["_order"] = np.arange(len(base))
    pending = sorted(set(base["measure_id"].astype(str)))
    parts: list[pd.DataFrame] = []
    method = ""
    coarser: list[str] = []
    for i, (level, keep) in enumerate(DETAIL_LEVELS):
        if not pending:
            break
        sub = keep(base[base["measure_id"].astype(str).isin(pending)]).reset_index(drop=True)
        table, level_method, failed = lhj_suppression.suppress_report(sub)
        method = method or level_method
        ok = ~table["measure_id"].astype(str).isin(failed)
        parts.append(table[ok])
        passed = sorted(set(table.loc[ok, "measure_id"].astype(str)))
        if i and passed:
            coarser.append(f"detail level {level!r} for {', '.join(passed)}")
        if failed:
            log.warning("suppression audit failed at detail level %r for %d measure(s); trying less detail",
                        level, len(failed))
        pending = failed
    if pending:
        parts.append(withhold(base[base["measure_id"].astype(str).isin(pending)]))
        coarser.append(f"withheld (annotation {WITHHELD}; the attacker audit could not protect them even as "
                       f"year totals): {', '.join(pending)}")
        log.warning("withholding %d measure(s) the suppression audit could not protect", len(pending))
    table = pd.concat(parts, ignore_index=True).sort_values("_order", kind="mergesort").drop(columns="_order")
    table = finalize(table.reset_index(drop=True), ci_method)
    assert_protected(table)
    return table, method + "".join(f"; {c}" for c in coarser)


def withhold(cells: pd.DataFrame) -> pd.DataFrame:
    """A measure's year-total rows with every count empty (annotation 2): published as withheld."""
    rows = DETAIL_LEVELS[-1][1](cells).copy()
    for c in ("numerator", "denominator"):
        rows[c] = pd.array([pd.NA] * len(rows), dtype="Int64")
    rows["annotation"] = pd.Series([WITHHELD] * len(rows), index=rows.index, dtype="object")
    return rows


def assert_protected(table: pd.DataFrame) -> None:
    """The last gate: the attacker audit over exactly what is published; PrivacyError if it fails."""
    from privacy.attack import audit
    from privacy.suppression import SuppressionSpec

    if table.empty or not table["numerator"].isna().any() and not table["denominator"].isna().any():
        return
    spec = SuppressionSpec.from_dict(lhj_suppression.privacy_spec(table))
    report = audit(table[[*OUTPUT_COLUMNS]], spec)
    report.raise_if_failed("published LHJ measure table")


def state_table(state: pd.DataFrame, ci_method: str,
                lhj_tables: Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame] | None = None) -> pd.DataFrame:
    """The statewide rows published in every LHJ package (the report's comparison), totals per period.

    Cross-feed differencing: the state total is the sum of the 61 LHJ totals, and every LHJ's
    package may end up public, so "state minus the other LHJs" would give back an LHJ total its
    own feed suppressed. The rule: a statewide count is published only where *every* LHJ of the
    run publishes that count (same measure, period and column) in its own table; otherwise it is
    empty (annotation 1 when it is 1-10 or its implied count is, else 2). A published statewide
    count is then the sum of published LHJ counts (it tells an attacker nothing new; it is never
    small, since an LHJ publishes no small count where masking applies), and an empty one is a
    free unknown, so the union of all feeds bounds each LHJ's cells exactly as its own table does
    (tests/privacy/test_attack_cross_feed.py runs the LP attack over that union). Hiding a
    statewide count every LHJ publishes would protect nothing (it is their sum). Beyond that rule,
    :func:`reveal_safe_state_counts` shows a statewide count only if the LP attack over the
    union (every LHJ's whole table plus the statewide rows) still passes with it shown.

    ``lhj_tables``: the published measure tables of every LHJ of the run (after
    :func:`suppress_and_finalize`). Without them (the stage builds the state rows before the LHJ
    tables) no statewide count can be shown safely: every count is withheld.
    """
    totals = state[state["stratifier"].astype(str) == ALL] if len(state) else state
    if totals.empty:
        return suppress_and_finalize(totals, ci_method)[0]
    out = totals[CELL_COLUMNS].reset_index(drop=True).copy()
    num = pd.to_numeric(out["numerator"]).to_numpy(dtype=float)
    den = pd.to_numeric(out["denominator"]).to_numpy(dtype=float)
    hide = {"numerator": np.ones(len(out), dtype=bool), "denominator": np.ones(len(out), dtype=bool)}
    if lhj_tables is not None:
        frames = list(lhj_tables.values()) if isinstance(lhj_tables, Mapping) else list(lhj_tables)
        hide = _state_hidden(out, frames)
        hide = reveal_safe_state_counts(out, hide, frames)
    small = lambda v: (v > 0) & (v < lhj_suppression.THRESHOLD)  # noqa: E731
    hidden_row = hide["numerator"] | hide["denominator"]
    for c in ("numerator", "denominator"):
        vals = out[c].astype("Int64").to_numpy(dtype=object)
        vals[hide[c]] = pd.NA
        out[c] = pd.array(vals, dtype="Int64")
    ann = np.where(hidden_row, np.select([small(num) | small(den), small(den - num)],
                                         [lhj_suppression.SMALL_CELL, lhj_suppression.COMPLEMENT_SMALL], WITHHELD),
                   np.where(den == 0, lhj_suppression.NO_DATA, ""))
    out["annotation"] = pd.Series([a or None for a in ann], index=out.index, dtype="object")
    return finalize(out, ci_method)


def reveal_safe_state_counts(state: pd.DataFrame, hide: dict[str, np.ndarray], frames: list[pd.DataFrame],
                             *, max_rounds: int = 12) -> dict[str, np.ndarray]:
    """Show more statewide counts than the every-LHJ rule does, as long as the LP attacker, given
    the union of every LHJ's whole published table and the statewide rows shown (state = sum of
    the LHJs, and the calendar's roll-ups), still cannot narrow any suppressed cell below [0, 11].

    Per measure (measures share no relation): show every candidate at once and run the attack
    (privacy.attack.audit) over that measure's union; where it fails, the LP's duals name the
    published cells that pin each failing bound, and for each failure the statewide count that
    pins it most goes back to hidden; repeat until the attack passes (or, after ``max_rounds``, show none of the
    candidates). A few audits per measure instead of one per count. A statewide count of 1-10,
    or a row whose shown denominator minus numerator would be 1-10, is never a candidate.
    """
    from privacy.attack import audit
    from privacy.cell_relations import CellSystem
    from privacy.suppression import SuppressionSpec, with_calendar

    hide = {c: v.copy() for c, v in hide.items()}
    if not frames or not (hide["numerator"].any() or hide["denominator"].any()):
        return hide
    geo = str(state["lhj"].iloc[0])
    vals = {c: pd.to_numeric(state[c]).to_numpy(dtype=float) for c in ("numerator", "denominator")}
    small = lambda v: 0 < v < lhj_suppression.THRESHOLD  # noqa: E731
    # The attacker holds every LHJ's whole table (strata and periods too), not only its totals.
    lhj_rows = pd.concat([f[OUTPUT_COLUMNS] for f in frames if len(f)], ignore_index=True)
    measure_of = state["measure_id"].astype(str)
    for measure in sorted(set(measure_of)):
        rows = list(state.index[measure_of == measure])
        cand = {(c, i) for c in ("numerator", "denominator") for i in rows if hide[c][i] and not small(vals[c][i])}
        for i in rows:  # both counts shown would show their difference
            if ("numerator", i) in cand and (not hide["denominator"][i] or ("denominator", i) in cand) \
                    and small(vals["denominator"][i] - vals["numerator"][i]):
                cand.discard(("numerator", i))
        if not cand:
            continue
        mine = lhj_rows[lhj_rows["measure_id"].astype(str) == measure].reset_index(drop=True)
        st = state.loc[rows, ["lhj", "measure_id", "period", "stratifier", "stratum"]].reset_index(drop=True)
        for c in ("rate", "ci_low", "ci_high"):
            st[c] = np.nan
        st["annotation"] = None
        spec = None
        for _ in range(max_rounds):
            trial = {c: hide[c].copy() for c in hide}
            for c, i in cand:
                trial[c][i] = False
            for c in ("numerator", "denominator"):
                st[c] = pd.array([pd.NA if trial[c][i] else int(vals[c][i]) for i in rows], dtype="Int64")
            union = pd.concat([mine, st[OUTPUT_COLUMNS]], ignore_index=True)
            if spec is None:
                spec = with_calendar(union, SuppressionSpec(geography_total=geo))
            report = audit(union, spec)
            if report.ok:
                hide = trial
                break
            culprits = set()
            for failure in report.failures:  # per failing bound, the candidate that pins it most
                pins = [(abs(d), (CellSystem.column_of(cell), rows[CellSystem.row_of(cell) - len(mine)]))
                        for cell, d in report.binding(failure).items()
                        if 0 <= CellSystem.row_of(cell) - len(mine) < len(rows)]
                pins = [p for p in pins if p[1] in cand]
                if pins:
                    culprits.add(max(pins)[1])
            if not culprits:
                break  # no candidate pins it (e.g. the LP returned no duals): keep them all hidden
            cand -= culprits
            if not cand:
                break
    return hide


def _state_hidden(state: pd.DataFrame, frames: list[pd.DataFrame]) -> dict[str, np.ndarray]:
    """Per statewide row and column: True where some LHJ does not publish that count (empty or absent)."""
    key = ["measure_id", "period"]
    lhjs = [f for f in frames if len(f)]
    out = {}
    for c in ("numerator", "denominator"):
        shown = []
        for f in lhjs:
            t = f[f["stratifier"].astype(str) == ALL]
            t = t.assign(_shown=pd.to_numeric(t[c], errors="coerce").notna())[[*key, "_shown"]]
            shown.append(t)
        if not shown:
            out[c] = np.ones(len(state), dtype=bool)
            continue
        allshown = pd.concat(shown, ignore_index=True).groupby(key)["_shown"].agg(["all", "size"]).reset_index()
        merged = state[key].astype(str).merge(allshown.astype({"measure_id": str, "period": str}), on=key, how="left")
        ok = merged["all"].fillna(False).astype(bool) & (merged["size"].fillna(0) == len(lhjs))
        out[c] = ~ok.to_numpy()
    return out


def tables(cells: pd.DataFrame, state: pd.DataFrame, services: pd.DataFrame, ci_method: str, *,
           state_published: pd.DataFrame | None = None,
           decided: tuple[pd.DataFrame, str] | None = None, indicators: pd.DataFrame | None = None) -> LhjTables:
    """The package's tables. ``decided``: this LHJ's published measure table and method as
    :mod:`jobs.publish.lhj_tables` decided them with every other LHJ's (the stage always passes
    it, with ``state_published``); without it the table is suppressed here, and without
    ``state_published`` every statewide count is withheld (the safe default)."""
    measures, method = decided if decided is not None else suppress_and_finalize(cells, ci_method)
    state_t = state_published if state_published is not None else state_table(state, ci_method)
    svc = lhj_suppression.primary_only(services.reset_index(drop=True), "members") if len(services) else \
        pd.DataFrame(columns=["lhj", "month", "source_kind", "members", "annotation"])
    suppressed = lhj_suppression.suppressed_cells(measures)
    spec = lhj_suppression.privacy_spec(cells) if len(cells) and method.startswith("privacy.") else None
    return LhjTables(measures, state_t, svc, method, len(measures), suppressed, spec, indicators)


def _csv(df: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    escape_frame(df).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode("utf-8")


def _parquet(df: pd.DataFrame) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("lhj", pa.string()), ("measure_id", pa.string()), ("period", pa.string()),
                        ("stratifier", pa.string()), ("stratum", pa.string()), ("numerator", pa.int64()),
                        ("denominator", pa.int64()), ("rate", pa.float64()), ("ci_low", pa.float64()),
                        ("ci_high", pa.float64()), ("annotation", pa.string())])
    frame = df[OUTPUT_COLUMNS].copy()
    for c in ("numerator", "denominator"):
        frame[c] = frame[c].astype("Int64")
    tbl = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    buf = io.BytesIO()
    pq.write_table(tbl, buf, compression="zstd")
    return buf.getvalue()


def _jsonable(obj: Any) -> Any:
    """Tuples to lists, so the spec is JSON (the manifest records exactly what was applied)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def check_deidentified(measures: pd.DataFrame, services: pd.DataFrame) -> None:
    """The Safe Harbor checker over the text columns (the last gate; raises PrivacyError)."""
    from privacy.checker import assert_clean

    # Counts and rates are aggregates; period is a reporting bucket, not a person's date; LHJ names
    # are the jurisdiction itself (the recipient), so names/geography patterns are not applied to them.
    if len(measures):
        assert_clean(measures[["measure_id", "stratifier", "stratum", "annotation"]].astype("string"),
                     what="LHJ measures table", names=False)
    if len(services):
        assert_clean(services[["source_kind", "annotation"]].astype("string"), what="LHJ service counts", names=False)


def build(*, recipient: str, lhj: str, period: str, run_id: str, t: LhjTables, ci_method: str,
          publisher: signing.Publisher, generated_at: datetime, extra_meta: dict[str, Any] | None = None) -> Package:
    """Assemble the package (not yet delivered)."""
    check_deidentified(t.measures, t.services)
    if t.indicators is not None and len(t.indicators):
        from privacy.checker import assert_clean

        # ZIP strata are the place the LHJ asked for (aggregates to a public health authority, suppressed):
        # the other text columns go through the checker.
        not_zip = t.indicators[t.indicators["stratifier"] != "zip"]
        assert_clean(t.indicators[["indicator_id", "stratifier", "annotation"]].astype("string"),
                     what="LHJ indicators table", names=False)
        if len(not_zip):
            assert_clean(not_zip[["stratum"]].astype("string"), what="LHJ indicators strata", names=False)
    pkg = Package(recipient, FEED, period, run_id)
    out = t.measures[OUTPUT_COLUMNS] if len(t.measures) else pd.DataFrame(columns=OUTPUT_COLUMNS)
    pkg.add("measures.csv", _csv(out), "text/csv")
    pkg.add("measures.parquet", _parquet(out), "application/vnd.apache.parquet")
    # In a fixed row order, so the same counts give the same bytes (an unchanged package is not re-published).
    services = t.services[["lhj", "month", "source_kind", "members", "annotation"]]
    pkg.add("service_counts.csv", _csv(services.sort_values(["lhj", "month", "source_kind"], kind="stable")),
            "text/csv")
    pkg.add("measure_report.json", fhir_measure.bundle(out, lhj=lhj, recipient=recipient, generated_at=generated_at,
                                                       bundle_id=f"{recipient}-{period}-{run_id}",
                                                       indicators=t.indicators),
            "application/fhir+json")
    meas = t.measures[["measure_id", "sensitive"]] if len(t.measures) else pd.DataFrame(columns=["measure_id", "sensitive"])
    pkg.add("data_dictionary.md", dictionary.markdown(meas, ci_method=f"{ci_method} 95% interval",
                                                      suppression_method=t.suppression_method,
                                                      cells=t.cells, suppressed_cells=t.suppressed,
                                                      indicators=t.indicators), "text/markdown")
    pkg.add("data_dictionary.csv", dictionary.csv_text(), "text/csv")
    ind = t.indicators
    if ind is not None:
        from jobs.publish import lhj_indicators

        pkg.add("indicators.csv", lhj_indicators.csv_bytes(ind), "text/csv")
        pkg.add("indicators.parquet", lhj_indicators.parquet_bytes(ind), "application/vnd.apache.parquet")
    files = sorted([*pkg.files, "report.html"])
    html = report_html.render(lhj=lhj, recipient=recipient, period=period, run_id=run_id, table=t.measures,
                              state=t.state, suppression_method=t.suppression_method, ci_method=ci_method,
                              fingerprint=publisher.fingerprint, key_id=publisher.key_id,
                              generated_at=generated_at, files=files, indicators=t.indicators)
    pkg.add("report.html", html, "text/html; charset=utf-8")
    ann = lhj_suppression.annotation_counts(t.measures)
    pkg.meta = {
        "lhj": lhj, "purpose": PURPOSE, "legal_basis": LEGAL_BASIS, "rule_ids": list(RULE_IDS),
        "content": {"measures": sorted(set(t.measures["measure_id"])) if len(t.measures) else [],
                    "cells": t.cells, "suppressed_cells": t.suppressed,
                    "annotations": ann,
                    "service_count_rows": len(t.services),
                    **(_indicator_meta(ind) if ind is not None else {})},
        "methods": {"confidence_interval": f"{ci_method} 95%", "suppression": t.suppression_method,
                    "suppression_spec": _jsonable(t.suppression_spec),
                    "small_cell_threshold": lhj_suppression.THRESHOLD, "rate": "proportion numerator/denominator"},
        "report": "report.html",
        **(extra_meta or {}),
    }
    return pkg


def _indicator_meta(ind: pd.DataFrame) -> dict[str, Any]:
    from jobs.publish import lhj_indicators

    crude = ind[ind["rate_type"] == "crude"] if len(ind) else ind
    return {"indicators": sorted(set(ind["indicator_id"])) if len(ind) else [],
            "indicator_cells": len(crude), "indicator_suppressed_cells": lhj_indicators.suppressed_cells(ind)}


@dataclass(frozen=True)
class LhjJob:
    """Everything one LHJ's package needs, picklable (no engine, no private key): the unit of work
    the in-process stage hands to a worker process."""

    recipient: str
    lhj: str
    period: str
    run_id: str
    cells: pd.DataFrame
    state: pd.DataFrame
    services: pd.DataFrame
    state_published: pd.DataFrame | None
    ci_method: str
    publisher: signing.Publisher
    generated_at: datetime
    decided: tuple[pd.DataFrame, str] | None = None
    indicators: pd.DataFrame | None = None


def build_job(job: LhjJob) -> tuple[Package, int, int]:
    """Assemble one LHJ's package (suppressing only if the job carries no decided table):
    (package, cells, suppressed cells). Pure Python."""
    t = tables(job.cells, job.state, job.services, job.ci_method, state_published=job.state_published,
               decided=job.decided, indicators=job.indicators)
    pkg = build(recipient=job.recipient, lhj=job.lhj, period=job.period, run_id=job.run_id, t=t,
                ci_method=job.ci_method, publisher=job.publisher, generated_at=job.generated_at)
    return pkg, t.cells, t.suppressed
