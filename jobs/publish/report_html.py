"""The LHJ package's HTML report: what the numbers say and how to read them, for people.

Rendered from the Jinja2 template ``templates/lhj_report.html.j2`` with autoescaping on (every
value from the data is escaped by the template engine, not by hand); charts are Vega-Lite specs
rendered offline to inline SVG (:mod:`jobs.publish.report_charts`). Self-contained: inline CSS and
SVG, no JavaScript, no fonts or scripts from a CDN, so it opens offline from the package.

Per measure: the trend of the rate (with the statewide rate), the LHJ against the state for the
latest year and the rate by each stratifier (disparities) on one shared scale, all with 95%
confidence intervals, then the table with the annotation codes it uses explained beside it. Only
published values are drawn. Then what was suppressed and why (the package's one suppressed-cell
count, :func:`jobs.publish.lhj_suppression.suppressed_cells`), and how to verify the package.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from markupsafe import Markup

from jobs.publish import report_charts
from jobs.publish.catalog import BEHAVIOURAL_DOMAINS, describe, domain
from jobs.publish.dictionary import ANNOTATIONS as CODE_TABLE
from jobs.publish.lhj_cube import ALL, ONE_WAY, grain_of
from jobs.publish.lhj_suppression import SUPPRESSED_CODES, annotation_counts, suppressed_cells
from jobs.publish.report_charts import STATE, Chart, Point

TEMPLATE = "lhj_report.html.j2"
#: code -> what it means, from the data dictionary's table (one wording for both documents).
ANNOTATIONS = {code: f"{name}: {meaning}" for code, name, meaning in CODE_TABLE}


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)


def _v(x: Any) -> float | None:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(x)


def _point(series: str, label: str, row: dict[str, Any] | None) -> Point:
    if row is None:
        return Point(series, label, None, note="no data")
    note = "suppressed" if str(row.get("annotation") or "") in SUPPRESSED_CODES else "no data"
    return Point(series, label, _v(row.get("rate")), _v(row.get("ci_low")), _v(row.get("ci_high")), note)


def _fmt(x: Any, pct: bool = False) -> str:
    v = _v(x)
    if v is None:
        return ""
    return f"{100 * v:.1f}%" if pct else f"{int(v):,}"


def _trend_grain(totals: pd.DataFrame) -> str | None:
    """The finest grain with more than one period (a trend needs two points), else the only one."""
    grains = totals["period"].map(grain_of)
    present = [g for g in ("month", "quarter", "year") if (grains == g).any()]
    many = [g for g in present if (grains == g).sum() > 1]
    return many[0] if many else (present[0] if present else None)


def _trend(lhj: str, mine: pd.DataFrame, state: pd.DataFrame) -> Chart | None:
    totals = mine[mine["stratifier"] == ALL]
    g = _trend_grain(totals)
    if g is None:
        return None
    sel = totals[totals["period"].map(grain_of) == g]
    st = state[(state["stratifier"] == ALL) & (state["period"].map(grain_of) == g)] if not state.empty else state
    points = [_point(lhj, str(r["period"]), r) for r in sel.to_dict("records")]
    points += [_point(STATE, str(r["period"]), r) for r in st.to_dict("records")]
    series = [lhj, STATE] if len(st) else [lhj]
    return report_charts.trend(f"Rate by {g}, {lhj}" + (" and California" if len(st) else ""), points,
                               series=series)


def _latest_year(mine: pd.DataFrame) -> str | None:
    years = sorted(p for p in mine["period"].unique() if grain_of(p) == "year")
    if years:
        return str(years[-1])
    periods = sorted(mine["period"].unique())
    return str(periods[-1]) if periods else None


def _row(df: pd.DataFrame, period: str, strat: str, stratum: str) -> dict[str, Any] | None:
    if df.empty:
        return None
    hit = df[(df["period"] == period) & (df["stratifier"] == strat) & (df["stratum"] == stratum)]
    return hit.iloc[0].to_dict() if len(hit) else None


def _panels(lhj: str, year: str, mine: pd.DataFrame, state: pd.DataFrame) -> Chart:
    has_state = _row(state, year, ALL, ALL) is not None
    panels = [(f"{lhj} and California" if has_state else lhj,
               [_point(lhj, lhj, _row(mine, year, ALL, ALL))]
               + ([_point(STATE, STATE, _row(state, year, ALL, ALL))] if has_state else []))]
    for strat, _ in ONE_WAY:
        rows = mine[(mine["period"] == year) & (mine["stratifier"] == strat)]
        if rows.empty:
            continue
        panels.append((f"By {strat.replace('_', ' ')}",
                       [_point(lhj, str(r["stratum"]), r) for r in rows.to_dict("records")]))
    return report_charts.bars(f"{year}: {lhj}" + (" and California" if has_state else "") + ", and by stratum",
                              panels, series=[lhj, STATE] if has_state else [lhj])


def _domain_note(measure: str, sensitive: bool) -> str:
    dom = domain(measure)
    if dom in BEHAVIOURAL_DOMAINS:
        kind = "substance use disorder" if dom == "sud" else "mental health"
        return (f"Sensitive measure ({kind}): every count below 11 is suppressed whatever else is published "
                "(CalHHS DDG 5.6.2).")
    if sensitive:
        return ("Some units of this measure involve mental health or substance use services, so every count "
                "below 11 is suppressed whatever else is published (CalHHS DDG 5.6.2).")
    return ""


def _measure(measure: str, lhj: str, mine: pd.DataFrame, state: pd.DataFrame, sensitive: bool) -> dict[str, Any]:
    name, desc = describe(measure)
    charts: list[Chart] = []
    trend = _trend(lhj, mine, state)
    if trend is not None:
        charts.append(trend)
    year = _latest_year(mine)
    rows: list[dict[str, str]] = []
    codes_used: set[str] = set()
    if year:
        charts.append(_panels(lhj, year, mine, state))
        for r in mine[mine["stratifier"] == ALL].to_dict("records"):
            code = str(r.get("annotation") or "")
            if code and code != "<NA>":
                codes_used.add(code)
            else:
                code = ""
            ci = (f"{_fmt(r.get('ci_low'), True)} - {_fmt(r.get('ci_high'), True)}"
                  if _v(r.get("ci_low")) is not None else "")
            rows.append({"period": str(r["period"]), "numerator": _fmt(r.get("numerator")),
                         "denominator": _fmt(r.get("denominator")), "rate": _fmt(r.get("rate"), True), "ci": ci,
                         "annotation": code})
    return {"id": measure, "name": name, "description": desc, "domain_note": _domain_note(measure, sensitive),
            "charts": charts, "rows": rows,
            "codes": [(c, ANNOTATIONS[c]) for c in sorted(codes_used) if c in ANNOTATIONS]}


def _suppression_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for m in sorted(table["measure_id"].unique()):
        sub = table[table["measure_id"] == m]
        c = annotation_counts(sub)
        out.append({"measure": m, "cells": len(sub), "suppressed": suppressed_cells(sub),
                    "c1": c.get("1", 0), "c2": c.get("2", 0), "c3": c.get("3", 0), "c4": c.get("4", 0)})
    return out


def _interval(r: dict[str, Any] | None, rate: str = "rate", low: str = "ci_low", high: str = "ci_high") -> str:
    if r is None or _v(r.get(rate)) is None:
        return ""
    lo, hi = _v(r.get(low)), _v(r.get(high))
    text = f"{_v(r.get(rate)):.1f}"
    return text + (f" ({lo:.1f}-{hi:.1f})" if lo is not None and hi is not None else "")


def indicator_summary(indicators: pd.DataFrame | None) -> dict[str, Any] | None:
    """The report's indicator table: the latest year's total per indicator (catalogue order), crude
    and age-adjusted with intervals, California's age-adjusted rate beside; the codes used explained."""
    if indicators is None or indicators.empty:
        return None
    from jobs.indicators.catalogue import default
    from jobs.publish.lhj_indicators import ANNOTATIONS as IND_CODES
    from jobs.publish.lhj_indicators import suppressed_cells as ind_suppressed

    cat, _ = default()
    years = sorted(p for p in indicators["period"].unique() if len(str(p)) == 4)
    if not years:
        return None
    year = str(years[-1])
    tot = indicators[(indicators["period"] == year) & (indicators["stratifier"] == ALL)]
    rows, used = [], set()
    for iid, ind in cat.indicators.items():
        sub = tot[tot["indicator_id"] == iid]
        if sub.empty:
            continue
        crude = sub[sub["rate_type"] == "crude"].iloc[0].to_dict()
        adj_rows = sub[sub["rate_type"] == "age_adjusted"]
        adj = adj_rows.iloc[0].to_dict() if len(adj_rows) else None
        code = str(crude.get("annotation") or "")
        code = "" if code in ("", "<NA>", "None") else code
        if code:
            used.add(code)
        rows.append({"id": iid, "name": ind.name, "unit": ind.unit, "sensitive": ind.sensitivity != "general",
                     "numerator": _fmt(crude.get("numerator")), "denominator": _fmt(crude.get("denominator")),
                     "crude": _interval(crude), "adjusted": _interval(adj),
                     "state": _interval(adj, "state_rate", "state_ci_low", "state_ci_high"), "annotation": code})
    return {"year": year, "rows": rows, "codes": [(c, IND_CODES[c]) for c in sorted(used) if c in IND_CODES],
            "cells": int((indicators["rate_type"] == "crude").sum()), "suppressed": ind_suppressed(indicators),
            "charts": indicator_charts(indicators, year)}


def indicator_charts(indicators: pd.DataFrame, year: str) -> list[Chart]:
    """The LHJ beside California, age-adjusted with 95% intervals, for the year's totals: one chart
    for prevalence (per 100 members, a percent axis) and one for use of care (per 1,000
    member-months), each on one scale, indicators in catalogue order. An indicator whose rate is
    withheld is labelled, never drawn as 0; a chart with nothing published says so instead."""
    from jobs.indicators.catalogue import default
    from jobs.publish.lhj_indicators import SUPPRESSED_CODES as ind_codes

    cat, _ = default()
    lhj = str(next((x for x in indicators["lhj"].unique() if x != STATE), STATE))
    tot = indicators[(indicators["period"] == year) & (indicators["stratifier"] == ALL)
                     & (indicators["rate_type"] == "age_adjusted")]
    charts = []
    for kind, title, per in (("prevalence", "Conditions among members", None),
                             ("utilization", "Use of care", "per 1,000 member-months")):
        names, points, has_state = [], [], False
        for iid, ind in cat.indicators.items():
            hit = tot[(tot["indicator_id"] == iid) & (tot["kind"] == kind)]
            if hit.empty:
                continue
            r = hit.iloc[0].to_dict()
            scale = 0.01 if per is None else 1.0  # per 100 -> a proportion on the percent axis

            def v(key: str, row: dict[str, Any] = r, k: float = scale) -> float | None:
                x = _v(row.get(key))
                return None if x is None else x * k

            note = "suppressed" if str(r.get("annotation") or "") in ind_codes else "no data"
            names.append(ind.name)
            points.append(report_charts.Point(lhj, ind.name, v("rate"), v("ci_low"), v("ci_high"),
                                              note if v("rate") is None else ""))
            if v("state_rate") is not None:
                has_state = True
            points.append(report_charts.Point(STATE, ind.name, v("state_rate"), v("state_ci_low"),
                                              v("state_ci_high"), "withheld" if v("state_rate") is None else ""))
        if not names:
            continue
        series = [lhj, STATE] if has_state else [lhj]
        pts = [p for p in points if p.series in series]
        chart_title = f"{title}, {year}, age-adjusted: {lhj}" + (" and California" if has_state else "")
        charts.append(report_charts.bars(chart_title, [(title, pts)], series=series, natural=names, per=per))
    return charts


def render(*, lhj: str, recipient: str, period: str, run_id: str, table: pd.DataFrame, state: pd.DataFrame,
           suppression_method: str, ci_method: str, fingerprint: str, key_id: str,
           generated_at: datetime | None = None, files: list[str] | None = None,
           indicators: pd.DataFrame | None = None) -> str:
    """The whole report as one HTML document."""
    when = (generated_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    measures = [str(m) for m in dict.fromkeys(table["measure_id"])] if not table.empty else []
    sens = table.groupby("measure_id")["sensitive"].max().to_dict() if "sensitive" in table and not table.empty else {}
    sections = []
    for m in measures:
        mine = table[table["measure_id"] == m]
        st = state[state["measure_id"] == m] if not state.empty else state
        sections.append(_measure(m, lhj, mine, st, bool(sens.get(m, False))))
    # Every chart of the report rendered in one batch (see report_charts.render), then marked safe:
    # the SVG comes from vl-convert, which escapes the text it draws.
    ind = indicator_summary(indicators)
    chart_owners = [*sections, *([ind] if ind else [])]
    drawn = iter(report_charts.render([c for sec in chart_owners for c in sec["charts"]]))
    for sec in chart_owners:
        sec["charts"] = [Chart(c.title, Markup(c.svg), c.empty_reason)  # noqa: S704 - SVG from vl-convert
                         for c in (next(drawn) for _ in sec["charts"])]
    totals = annotation_counts(table)
    return _env().get_template(TEMPLATE).render(
        lhj=lhj, recipient=recipient, period=period, run_id=run_id, generated=when, ci_method=ci_method,
        measures=sections, cells=len(table), suppressed=suppressed_cells(table),
        totals={"c1": totals.get("1", 0), "c2": totals.get("2", 0), "c3": totals.get("3", 0),
                "c4": totals.get("4", 0)},
        suppression_rows=_suppression_rows(table) if not table.empty else [],
        annotation_codes=list(ANNOTATIONS.items()), suppression_method=suppression_method,
        fingerprint=fingerprint, key_id=key_id, files=files or [], indicators=ind)
