"""Small inline SVG charts for the HTML report (no JavaScript, no external assets).

Rates are proportions drawn as percentages. A value of ``None`` (suppressed or no data) is drawn
as a gap (line chart) or a labelled empty bar, never as zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

COLOURS = ("#1f5fa8", "#c2571a", "#2e7d32", "#6a1b9a")


@dataclass(frozen=True)
class Point:
    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _scale_max(values: list[float]) -> float:
    top = max([v for v in values if v is not None] + [0.0])
    for step in (0.1, 0.2, 0.25, 0.5, 0.75, 1.0):
        if top <= step:
            return step
    return 1.0


def line_chart(title: str, series: list[tuple[str, list[Point]]], *, width: int = 640, height: int = 240) -> str:
    """Rate over time, one line per series (e.g. the LHJ and the state), CI as whiskers."""
    labels: list[str] = []
    for _, pts in series:
        for pt in pts:
            if pt.label not in labels:
                labels.append(pt.label)
    labels.sort()
    left, right, top, bottom = 56, 16, 28, 48
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _, pts in series for p in pts for v in (p.value, p.high) if v is not None]
    ymax = _scale_max(vals)
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / n)

    def y(v: float) -> float:
        return top + ph * (1 - v / ymax)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
           f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for k in range(5):
        v = ymax * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="10" text-anchor="end">{_pct(v)}</text>')
    every = max(1, n // 12)
    for i, lab in enumerate(labels):
        if i % every == 0:
            out.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" font-size="10" '
                       f'text-anchor="middle">{escape(lab)}</text>')
    for s, (name, pts) in enumerate(series):
        colour = COLOURS[s % len(COLOURS)]
        by = {p.label: p for p in pts}
        path: list[str] = []
        for i, lab in enumerate(labels):
            p = by.get(lab)
            if p is None or p.value is None:
                if path:
                    out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(path)}"/>')
                path = []
                continue
            path.append(f"{x(i):.1f},{y(p.value):.1f}")
            if p.low is not None and p.high is not None:
                out.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(p.low):.1f}" y2="{y(p.high):.1f}" '
                           f'stroke="{colour}" stroke-opacity="0.5"/>')
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="3" fill="{colour}">'
                       f'<title>{escape(name)} {escape(lab)}: {_pct(p.value)}</title></circle>')
        if path:
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(path)}"/>')
        lx = left + 140 * s
        out.append(f'<rect x="{lx}" y="{height - 18}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{lx + 14}" y="{height - 9}" font-size="11">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(title: str, points: list[Point], *, width: int = 640, bar: int = 18, highlight_first: bool = False) -> str:
    """Horizontal bars (rate with CI whiskers); suppressed values are labelled, not drawn as 0."""
    left, right, top = 170, 70, 28
    height = top + len(points) * (bar + 8) + 24
    pw = width - left - right
    vals = [v for p in points for v in (p.value, p.high) if v is not None]
    xmax = _scale_max(vals)

    def x(v: float) -> float:
        return left + pw * v / xmax

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
           f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for k in range(5):
        v = xmax * k / 4
        out.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{top - 4}" y2="{height - 20}" stroke="#eee"/>'
                   f'<text x="{x(v):.1f}" y="{height - 6}" font-size="10" text-anchor="middle">{_pct(v)}</text>')
    for i, p in enumerate(points):
        yy = top + i * (bar + 8)
        out.append(f'<text x="{left - 6}" y="{yy + bar - 5}" font-size="11" text-anchor="end">{escape(p.label)}</text>')
        if p.value is None:
            out.append(f'<text x="{left + 4}" y="{yy + bar - 5}" font-size="11" fill="#777">'
                       f'{escape(p.note or "suppressed")}</text>')
            continue
        colour = COLOURS[1] if highlight_first and i == 0 else COLOURS[0]
        out.append(f'<rect x="{left}" y="{yy}" width="{max(x(p.value) - left, 1):.1f}" height="{bar}" '
                   f'fill="{colour}" fill-opacity="0.8"><title>{escape(p.label)}: {_pct(p.value)}</title></rect>')
        if p.low is not None and p.high is not None:
            out.append(f'<line x1="{x(p.low):.1f}" x2="{x(p.high):.1f}" y1="{yy + bar / 2:.1f}" '
                       f'y2="{yy + bar / 2:.1f}" stroke="#222"/>')
        out.append(f'<text x="{x(max(p.value, p.high or 0)) + 4:.1f}" y="{yy + bar - 5}" '
                   f'font-size="11">{_pct(p.value)}</text>')
    out.append("</svg>")
    return "".join(out)
