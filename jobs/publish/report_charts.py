"""The LHJ report's charts: Vega-Lite specifications built with altair, rendered offline to SVG.

Why a charting library: the hand-drawn SVG this replaces drew legends and marks from separate
colour lists (they disagreed), sorted age bands as text and picked tick values by dividing the axis
in four (18.8%, 56.2%). Here one colour scale serves marks and legend, categories carry an explicit
sort, Vega picks nice ticks, and the panels of one measure share one rate scale. vl-convert
renders each spec to SVG inside the Python process (its Vega engine is bundled: no network, no
browser, no script tag in the report).

Only published values are drawn. A suppressed or no-data value is a gap in a line or the word
"suppressed"/"no data" in place of a bar, never a zero; a chart with nothing to draw is not drawn at
all (:class:`Chart` then carries the sentence saying why).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd
import vl_convert

#: The jurisdiction's colour and the state's; one scale per chart maps series name -> colour, so a
#: legend entry and the marks it names cannot disagree.
LHJ_COLOUR = "#1f5fa8"
STATE_COLOUR = "#c2571a"
STATE = "California"
WIDTH = 560
#: Upper ends the rate axis may take (a proportion): nice round percentages.
_NICE_TOPS = (0.05, 0.1, 0.2, 0.25, 0.4, 0.5, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Point:
    """One value of a chart: ``rate`` None when suppressed or no data (``note`` says which)."""

    series: str
    label: str
    rate: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Chart:
    """A rendered chart (``svg``) or, when there is nothing to draw, the sentence saying why."""

    title: str
    svg: str = ""
    empty_reason: str = ""


def nice_top(values: list[float | None]) -> float:
    """The smallest nice upper end of a rate axis that holds every value (and interval end)."""
    top = max([v for v in values if v is not None and not math.isnan(v)] + [0.0])
    return next((t for t in _NICE_TOPS if top <= t + 1e-12), 1.0)


def _age_key(label: str) -> tuple[int, str]:
    m = re.match(r"^(\d+)", label)
    return (int(m.group(1)), label) if m else (10**6, label)


def stratum_order(labels: list[str], *, natural: list[str] | None = None) -> list[str]:
    """Categories in their natural order: a known list first (e.g. the measures stage's age bands),
    then numeric ranges by their lower end (6-11 before 45-64), then text; ``unknown`` last."""
    uniq = list(dict.fromkeys(labels))
    known = [x for x in (natural or []) if x in uniq]
    rest = sorted((x for x in uniq if x not in known and x != "unknown"), key=_age_key)
    return known + rest + (["unknown"] if "unknown" in uniq else [])


def period_sequence(labels: list[str]) -> list[str]:
    """Every period from the first to the last of one grain (``2025-01``..``2025-12`` or
    ``2025-Q1``..), so a month without a published value shows as a gap on the axis."""
    if not labels:
        return []
    if all(re.fullmatch(r"\d{4}-\d{2}", x) for x in labels):
        freq = "M"
    elif all(re.fullmatch(r"\d{4}-Q\d", x) for x in labels):
        freq = "Q"
    elif all(re.fullmatch(r"\d{4}", x) for x in labels):
        freq = "Y"
    else:
        return sorted(set(labels))
    ps = [pd.Period(x, freq=freq) for x in labels]
    fmt = {"M": "%Y-%m", "Q": "%Y-Q%q", "Y": "%Y"}[freq]
    return [p.strftime(fmt) for p in pd.period_range(min(ps), max(ps), freq=freq)]


def _frame(points: list[Point]) -> pd.DataFrame:
    return pd.DataFrame([{"series": p.series, "label": p.label, "rate": p.rate, "low": p.low, "high": p.high,
                          "note": p.note} for p in points])


def _colour(series: list[str]) -> alt.Color:
    rng = [STATE_COLOUR if s == STATE else LHJ_COLOUR for s in series]
    return alt.Color("series:N", title=None, scale=alt.Scale(domain=series, range=rng),
                     legend=alt.Legend(orient="top", symbolType="square"))


def _svg(chart: alt.TopLevelMixin) -> str:
    svg = vl_convert.vegalite_to_svg(chart.to_dict())
    return svg.replace("<svg ", '<svg role="img" ', 1) if 'role="img"' not in svg[:300] else svg


def trend(title: str, points: list[Point], *, series: list[str], top: float | None = None) -> Chart:
    """The rate over time, one line per series (the LHJ, the state), 95% CI as a vertical rule;
    missing periods are on the axis and break the line."""
    shown = [p for p in points if p.rate is not None]
    if not shown:
        return Chart(title, empty_reason="No chart: every value in this series is suppressed or has no data "
                                         "(see the table below).")
    labels = period_sequence([p.label for p in points])
    present = {(p.series, p.label) for p in points}
    filled = points + [Point(s, lab, None, note="no data") for s in series for lab in labels
                       if (s, lab) not in present]
    df = _frame(filled)
    y_top = top if top is not None else nice_top([*df["rate"], *df["high"]])
    x = alt.X("label:O", title=None, sort=labels, scale=alt.Scale(domain=labels),
              axis=alt.Axis(labelAngle=-45 if len(labels) > 6 else 0))
    y = alt.Y("rate:Q", title="rate", scale=alt.Scale(domain=[0, y_top], nice=True, zero=True),
              axis=alt.Axis(format=".0%", tickCount=5))
    colour = _colour(series)
    tip = [alt.Tooltip("series:N"), alt.Tooltip("label:N", title="period"), alt.Tooltip("rate:Q", format=".1%")]
    base = alt.Chart(df)
    line = base.mark_line(point=alt.OverlayMarkDef(filled=True, size=30)).encode(x=x, y=y, color=colour,
                                                                                   tooltip=tip)
    ci = base.transform_filter("isValid(datum.low) && isValid(datum.rate)").mark_rule(opacity=0.5).encode(
        x=x, y=alt.Y("low:Q"), y2="high:Q", color=colour)
    chart = alt.layer(ci, line).properties(title=title, width=WIDTH, height=200)
    return Chart(title, svg=_svg(chart))


def bars(title: str, panels: list[tuple[str, list[Point]]], *, series: list[str],
         natural: list[str] | None = None) -> Chart:
    """Horizontal bars with 95% CI whiskers, one panel per comparison (LHJ and state; each
    stratifier), all on one rate scale so bar lengths compare across panels. A panel with no
    published value is left out and named in ``empty_reason``; a suppressed stratum is labelled."""
    drawn = [(name, pts) for name, pts in panels if any(p.rate is not None for p in pts)]
    empty_names = [name for name, pts in panels if not any(p.rate is not None for p in pts)]
    reason = (f"Not drawn (every value suppressed or no data): {', '.join(empty_names)}." if empty_names else "")
    if not drawn:
        return Chart(title, empty_reason="No chart: every value for this period is suppressed or has no data "
                                         "(see the table below).")
    top = nice_top([v for _, pts in drawn for p in pts for v in (p.rate, p.high)])
    x = alt.X("rate:Q", title="rate", scale=alt.Scale(domain=[0, top], nice=True, zero=True),
              axis=alt.Axis(format=".0%", tickCount=5))
    colour = _colour(series)
    charts = []
    for name, pts in drawn:
        df = _frame(pts)
        order = stratum_order(list(df["label"]), natural=[*series, *(natural or [])])  # the LHJ above the state
        y = alt.Y("label:N", title=None, sort=order, scale=alt.Scale(domain=order))
        base = alt.Chart(df)
        bar = base.transform_filter("isValid(datum.rate)").mark_bar(height=14).encode(
            x=x, y=y, color=colour,
            tooltip=[alt.Tooltip("series:N"), alt.Tooltip("label:N"), alt.Tooltip("rate:Q", format=".1%")])
        whisker = base.transform_filter("isValid(datum.low) && isValid(datum.rate)").mark_rule(
            color="#222").encode(x="low:Q", x2="high:Q", y=y)
        value = base.transform_filter("isValid(datum.rate)").mark_text(align="left", dx=4, fontSize=10).encode(
            x=alt.X("text_at:Q"), y=y, text=alt.Text("rate:Q", format=".1%")).transform_calculate(
            text_at="isValid(datum.high) ? datum.high : datum.rate")
        gap = base.transform_filter("!isValid(datum.rate)").mark_text(
            align="left", dx=4, fontSize=10, color="#666").encode(x=alt.datum(0), y=y, text="note:N")
        charts.append(alt.layer(bar, whisker, value, gap).properties(
            title=name, width=WIDTH - 120, height=alt.Step(20)))
    chart = alt.vconcat(*charts).resolve_scale(x="shared", color="shared").properties(title=title)
    return Chart(title, svg=_svg(chart), empty_reason=reason)


def spec_colours(svg: str) -> dict[str, Any]:
    """For tests and checks: the legend's label -> colour and the bar marks' series -> colours of one
    rendered chart (vl-convert writes each mark's fields into its aria-label)."""
    legend: dict[str, str] = {}
    entries = re.findall(r'class="mark-symbol role-legend-symbol".*?fill="(#[0-9a-fA-F]{6})".*?'
                         r'class="mark-text role-legend-label".*?>([^<]*)</text>', svg, re.S)
    for colour, label in entries:
        legend[label] = colour.lower()
    marks: dict[str, set[str]] = {}
    for label, colour in re.findall(r'aria-label="[^"]*series: ([^";]*)[^"]*"[^>]*aria-roledescription="bar"'
                                    r'[^>]*fill="(#[0-9a-fA-F]{6})"', svg):
        marks.setdefault(label, set()).add(colour.lower())
    return {"legend": legend, "marks": marks}
