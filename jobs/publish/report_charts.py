"""The LHJ report's charts: Vega-Lite specifications, rendered offline to SVG by vl-convert.

Why a charting library: the hand-drawn SVG this replaces drew legends and marks from separate
colour lists (they disagreed), sorted age bands as text and picked tick values by dividing the axis
in four (18.8%, 56.2%). Here one colour scale serves marks and legend, categories carry an explicit
sort, Vega picks nice ticks, and the panels of one measure share one rate scale. vl-convert
renders each spec to SVG inside the Python process (its Vega engine is bundled: no network, no
browser, no script tag in the report).

Cost: a report has two charts per measure and the publish stage writes one report per LHJ, so
building and rendering are kept apart. :func:`trend` and :func:`bars` only write the specification
as plain Vega-Lite JSON (building it through altair's objects, with their deep copies and schema
validation at every step, cost more CPU than Vega's rendering; the tests validate every kind of
spec against the Vega-Lite schema altair ships), and :func:`render` turns all of a report's charts
into SVG in one batch on a small thread pool (vl-convert releases the GIL while Vega renders).

Only published values are drawn. A suppressed or no-data value is a gap in a line or the word
"suppressed"/"no data" in place of a bar, never a zero; a chart with nothing to draw is not drawn at
all (:class:`Chart` then carries the sentence saying why).
"""

from __future__ import annotations

import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

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
    """A chart: its Vega-Lite ``spec`` until :func:`render` fills ``svg``; or, when there is nothing to
    draw, neither, and the sentence saying why (``empty_reason``, also used for panels left out)."""

    title: str
    svg: str = ""
    empty_reason: str = ""
    spec: dict[str, Any] | None = None


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


#: The Vega-Lite schema the specifications are written against (the version vl-convert bundles).
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"


def _records(points: list[Point]) -> list[dict[str, Any]]:
    return [{"series": p.series, "label": p.label, "rate": p.rate, "low": p.low, "high": p.high, "note": p.note}
            for p in points]


def _colour(series: list[str]) -> dict[str, Any]:
    rng = [STATE_COLOUR if s == STATE else LHJ_COLOUR for s in series]
    return {"field": "series", "type": "nominal", "title": None, "scale": {"domain": series, "range": rng},
            "legend": {"orient": "top", "symbolType": "square"}}


def _rate_axis(top: float, per: str | None = None) -> dict[str, Any]:
    """The rate axis: a proportion shown as percent; or, with ``per`` (e.g. "per 1,000 member-months"),
    a plain number with that title (Vega picks nice round ticks from ``top``)."""
    if per:
        return {"title": per, "scale": {"domain": [0, top], "nice": True, "zero": True},
                "axis": {"format": "~s", "tickCount": 5}}
    return {"title": "rate", "scale": {"domain": [0, top], "nice": True, "zero": True},
            "axis": {"format": ".0%", "tickCount": 5}}


def _nice_number(top: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``top`` (an axis end)."""
    if top <= 0:
        return 1.0
    base = 10.0 ** math.floor(math.log10(top))
    return float(next(m * base for m in (1, 2, 2.5, 5, 10) if top <= m * base + 1e-12))


def _svg(spec: dict[str, Any]) -> str:
    svg: str = vl_convert.vegalite_to_svg(spec)
    return svg.replace("<svg ", '<svg role="img" ', 1) if 'role="img"' not in svg[:300] else svg


def render(charts: list[Chart], *, workers: int | None = None) -> list[Chart]:
    """Every chart with its SVG, in the order given; charts without a spec are returned as they are.
    One batch per report, rendered on ``workers`` threads (default: the machine's cores, at most 4)."""
    todo = [(i, c.spec) for i, c in enumerate(charts) if c.spec is not None and not c.svg]
    if not todo:
        return list(charts)
    n = max(1, min(workers or os.cpu_count() or 1, 4, len(todo)))
    specs = [spec for _, spec in todo]
    if n == 1:
        svgs = [_svg(spec) for spec in specs]
    else:
        with ThreadPoolExecutor(n, thread_name_prefix="vl-convert") as pool:
            svgs = list(pool.map(_svg, specs))
    out = list(charts)
    for (i, _), svg in zip(todo, svgs, strict=True):
        out[i] = replace(charts[i], svg=svg)
    return out


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
    y_top = top if top is not None else nice_top([v for p in filled for v in (p.rate, p.high)])
    x = {"field": "label", "type": "ordinal", "title": None, "sort": labels, "scale": {"domain": labels},
         "axis": {"labelAngle": -45 if len(labels) > 6 else 0}}
    colour = _colour(series)
    tip = [{"field": "series", "type": "nominal"}, {"field": "label", "type": "nominal", "title": "period"},
           {"field": "rate", "type": "quantitative", "format": ".1%"}]
    ci = {"transform": [{"filter": "isValid(datum.low) && isValid(datum.rate)"}],
          "mark": {"type": "rule", "opacity": 0.5},
          "encoding": {"x": x, "y": {"field": "low", "type": "quantitative"}, "y2": {"field": "high"},
                       "color": colour}}
    line = {"mark": {"type": "line", "point": {"filled": True, "size": 30}},
            "encoding": {"x": x, "y": {"field": "rate", "type": "quantitative", **_rate_axis(y_top)},
                         "color": colour, "tooltip": tip}}
    spec = {"$schema": SCHEMA, "title": title, "width": WIDTH, "height": 200,
            "data": {"values": _records(filled)}, "layer": [ci, line]}
    return Chart(title, spec=spec)


def bars(title: str, panels: list[tuple[str, list[Point]]], *, series: list[str],
         natural: list[str] | None = None, per: str | None = None) -> Chart:
    """Horizontal bars with 95% CI whiskers, one panel per comparison (LHJ and state; each
    stratifier), all on one rate scale so bar lengths compare across panels. A panel with no
    published value is left out and named in ``empty_reason``; a suppressed stratum is labelled.
    Rates are proportions (a percent axis) unless ``per`` names their unit (the population
    indicators: per 1,000 member-months)."""
    drawn = [(name, pts) for name, pts in panels if any(p.rate is not None for p in pts)]
    empty_names = [name for name, pts in panels if not any(p.rate is not None for p in pts)]
    reason = (f"Not drawn (every value suppressed or no data): {', '.join(empty_names)}." if empty_names else "")
    if not drawn:
        return Chart(title, empty_reason="No chart: every value for this period is suppressed or has no data "
                                         "(see the table below).")
    ends = [v for _, pts in drawn for p in pts for v in (p.rate, p.high)]
    top = _nice_number(max([v for v in ends if v is not None and not math.isnan(v)] + [0.0])) if per \
        else nice_top(ends)
    x = {"field": "rate", "type": "quantitative", **_rate_axis(top, per)}
    colour = _colour(series)
    fmt = ".1f" if per else ".1%"
    tip = [{"field": "series", "type": "nominal"}, {"field": "label", "type": "nominal"},
           {"field": "rate", "type": "quantitative", "format": fmt}]
    panels_out = []
    for name, pts in drawn:
        order = stratum_order([p.label for p in pts], natural=[*series, *(natural or [])])  # the LHJ above the state
        y = {"field": "label", "type": "nominal", "title": None, "sort": order, "scale": {"domain": order}}
        # several series on one category (an indicator: the LHJ and the state): side by side, never stacked
        grouped = len({(p.series, p.label) for p in pts}) > len({p.label for p in pts})
        off: dict[str, Any] = ({"yOffset": {"field": "series", "type": "nominal", "sort": series,
                                            "scale": {"domain": series}}} if grouped else {})
        bar = {"transform": [{"filter": "isValid(datum.rate)"}],
               "mark": {"type": "bar", **({} if grouped else {"height": 14})},
               "encoding": {"x": {**x, "stack": None}, "y": y, "color": colour, "tooltip": tip, **off}}
        whisker = {"transform": [{"filter": "isValid(datum.low) && isValid(datum.rate)"}],
                   "mark": {"type": "rule", "color": "#222"},
                   "encoding": {"x": {"field": "low", "type": "quantitative"}, "x2": {"field": "high"}, "y": y, **off}}
        value = {"transform": [{"filter": "isValid(datum.rate)"},
                               {"calculate": "isValid(datum.high) ? datum.high : datum.rate", "as": "text_at"}],
                 "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 10},
                 "encoding": {"x": {"field": "text_at", "type": "quantitative"}, "y": y, **off,
                              "text": {"field": "rate", "type": "quantitative", "format": fmt}}}
        gap = {"transform": [{"filter": "!isValid(datum.rate)"}],
               "mark": {"type": "text", "align": "left", "dx": 4, "fontSize": 10, "color": "#666"},
               "encoding": {"x": {"datum": 0}, "y": y, **off, "text": {"field": "note", "type": "nominal"}}}
        panels_out.append({"title": name, "width": WIDTH - 120, "height": {"step": 36 if grouped else 20},
                           "data": {"values": _records(pts)}, "layer": [bar, whisker, value, gap]})
    spec = {"$schema": SCHEMA, "title": title, "vconcat": panels_out,
            "resolve": {"scale": {"x": "shared", "color": "shared"}}}
    return Chart(title, spec=spec, empty_reason=reason)


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
