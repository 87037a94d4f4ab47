"""The LHJ package's HTML report: what the numbers say and how to read them, for people.

Self-contained (inline CSS and SVG; no JavaScript, no fonts or scripts from a CDN), so it opens
offline from the package. Per measure: the trend of the rate (with the statewide rate), the LHJ
against the state for the latest year, and the rate by each stratifier (disparities), all with
95% confidence intervals. Only published values are drawn: a suppressed value is shown as a gap
or the word "suppressed", never as zero. Then what was suppressed and why, and how to verify
the package.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape
from typing import Any

import pandas as pd

from jobs.publish.catalog import describe
from jobs.publish.lhj_cube import ALL, ONE_WAY, grain_of
from jobs.publish.svg import Point, bar_chart, line_chart

ANNOTATIONS = {"1": "small cell (1-10), suppressed", "2": "complementary suppression (protects a small cell)",
               "3": "no data (denominator 0)"}
CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:980px;margin:24px auto;padding:0 16px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:2em}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;font-size:.9em;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.92em}.sens{background:#fff4e5;padding:6px 10px;border-left:4px solid #c2571a}
code{background:#f4f4f4;padding:1px 4px}figure{margin:12px 0}"""


def _v(x: Any) -> float | None:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return None
    return float(x)


def _point(label: str, row: dict[str, Any] | None) -> Point:
    if row is None:
        return Point(label, None, note="no data")
    note = "suppressed" if row.get("annotation") in ("1", "2") else "no data"
    return Point(label, _v(row.get("rate")), _v(row.get("ci_low")), _v(row.get("ci_high")), note)


def _fmt(x: Any, pct: bool = False) -> str:
    v = _v(x)
    if v is None:
        return ""
    return f"{100 * v:.1f}%" if pct else f"{int(v):,}"


def _trend(lhj: str, mine: pd.DataFrame, state: pd.DataFrame) -> str:
    totals = mine[mine["stratifier"] == ALL]
    grains = [g for g in ("month", "quarter", "year") if (totals["period"].map(grain_of) == g).any()]
    if not grains:
        return ""
    g = grains[0] if (totals["period"].map(grain_of) == grains[0]).sum() > 1 or len(grains) == 1 else grains[1]
    sel = totals[totals["period"].map(grain_of) == g]
    st = state[(state["stratifier"] == ALL) & (state["period"].map(grain_of) == g)] if not state.empty else state
    series = [(lhj, [_point(r["period"], r) for r in sel.to_dict("records")])]
    if not st.empty:
        series.append(("California", [_point(r["period"], r) for r in st.to_dict("records")]))
    return line_chart(f"Rate by {g}", series)


def _latest_year(mine: pd.DataFrame) -> str | None:
    years = sorted(p for p in mine["period"].unique() if grain_of(p) == "year")
    if years:
        return years[-1]
    periods = sorted(mine["period"].unique())
    return periods[-1] if periods else None


def _row(df: pd.DataFrame, period: str, strat: str, stratum: str) -> dict[str, Any] | None:
    hit = df[(df["period"] == period) & (df["stratifier"] == strat) & (df["stratum"] == stratum)]
    return hit.iloc[0].to_dict() if len(hit) else None


def _measure_section(measure: str, lhj: str, mine: pd.DataFrame, state: pd.DataFrame, sensitive: bool) -> str:
    name, desc = describe(measure)
    out = [f'<h2 id="{escape(measure)}">{escape(name)} <small>({escape(measure)})</small></h2>']
    if desc:
        out.append(f"<p>{escape(desc)}</p>")
    if sensitive:
        out.append('<p class="sens">Sensitive measure (substance use or mental health): every count below 11 is '
                   "suppressed whatever else is published (CalHHS DDG 5.6.2).</p>")
    out.append(f"<figure>{_trend(lhj, mine, state)}</figure>")
    year = _latest_year(mine)
    if year:
        comp = [_point(lhj, _row(mine, year, ALL, ALL)), _point("California", _row(state, year, ALL, ALL))]
        out.append(f"<figure>{bar_chart(f'{lhj} and California, {year}', comp, highlight_first=True)}</figure>")
        for strat, _ in ONE_WAY:
            rows = mine[(mine["period"] == year) & (mine["stratifier"] == strat)]
            if rows.empty:
                continue
            pts = [_point(str(r["stratum"]), r) for r in rows.to_dict("records")]
            label = strat.replace("_", " ")
            out.append(f"<figure>{bar_chart(f'By {label}, {year}', pts)}</figure>")
        out.append("<table><tr><th>period</th><th>numerator</th><th>denominator</th><th>rate</th><th>95% CI</th>"
                   "<th>annotation</th></tr>")
        for r in mine[mine["stratifier"] == ALL].to_dict("records"):
            ci = f"{_fmt(r.get('ci_low'), True)} - {_fmt(r.get('ci_high'), True)}" if _v(r.get("ci_low")) is not None else ""
            out.append(f"<tr><td>{escape(str(r['period']))}</td><td>{_fmt(r.get('numerator'))}</td>"
                       f"<td>{_fmt(r.get('denominator'))}</td><td>{_fmt(r.get('rate'), True)}</td><td>{ci}</td>"
                       f"<td>{escape(str(r.get('annotation') or ''))}</td></tr>")
        out.append("</table>")
    return "\n".join(out)


def _suppression_section(table: pd.DataFrame, method: str) -> str:
    out = ["<h2 id=\"suppression\">What was suppressed and why</h2>",
           "<p>Counts of 1 to 10 are never published (CalHHS Data De-identification Guidelines 2.0, section 4.4; "
           "the CMS cell suppression policy). Zero is shown. Where a small count could be worked out by "
           "subtraction (a total minus the other strata, a year minus the other quarters, a denominator minus a "
           "numerator), another count is suppressed as well (complementary suppression). Rates and intervals "
           "are left empty whenever a count behind them is. Empty cells carry an annotation code:</p><ul>"]
    out += [f"<li><b>{k}</b>: {escape(v)}</li>" for k, v in ANNOTATIONS.items()]
    out.append(f"</ul><p class=\"note\">Method: {escape(method)}.</p>")
    if table.empty:
        return "\n".join(out)
    counts = table.assign(annotation=table["annotation"].fillna("")).groupby(["measure_id", "annotation"]).size()
    out.append("<table><tr><th>measure</th><th>cells</th><th>small cell (1)</th><th>complementary (2)</th>"
               "<th>no data (3)</th></tr>")
    for m in sorted(table["measure_id"].unique()):
        c = counts.get(m, pd.Series(dtype=int))
        out.append(f"<tr><td>{escape(m)}</td><td>{int(c.sum()):,}</td><td>{int(c.get('1', 0)):,}</td>"
                   f"<td>{int(c.get('2', 0)):,}</td><td>{int(c.get('3', 0)):,}</td></tr>")
    out.append("</table>")
    return "\n".join(out)


def render(*, lhj: str, recipient: str, period: str, run_id: str, table: pd.DataFrame, state: pd.DataFrame,
           suppression_method: str, ci_method: str, fingerprint: str, key_id: str,
           generated_at: datetime | None = None, files: list[str] | None = None) -> str:
    """The whole report as one HTML document."""
    when = (generated_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    measures = list(dict.fromkeys(table["measure_id"])) if not table.empty else []
    sens = table.groupby("measure_id")["sensitive"].max().to_dict() if "sensitive" in table and not table.empty else {}
    nav = " &middot; ".join(f'<a href="#{escape(m)}">{escape(m)}</a>' for m in measures)
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{escape(lhj)}: population health measures, {escape(period)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(lhj)}: population health measures</h1>",
        f"<p class=\"note\">Recipient <code>{escape(recipient)}</code> &middot; period <code>{escape(period)}</code> "
        f"&middot; run <code>{escape(run_id)}</code> &middot; generated {escape(when)}</p>",
        "<h2>How to read this report</h2>",
        "<p>Each measure is a proportion: the <b>denominator</b> counts the units eligible for the measure "
        "(for example ED visits, discharges or enrolled children) among Medi-Cal members who live in this "
        "jurisdiction; the <b>numerator</b> counts those that met it. The <b>rate</b> is numerator / "
        f"denominator. Whiskers and the <b>95% CI</b> columns show the {escape(ci_method)} confidence "
        "interval: with small denominators the interval is wide, so differences between groups or with the "
        "state may be chance. Periods: a year (2025), a quarter (2025-Q1) or a month (2025-01), assigned by "
        "each unit's anchor date. The strata of each stratifier (age band, sex, race/ethnicity, plan) add up "
        "to the total, with an <i>unknown</i> stratum where the attribute is missing.</p>",
        "<p>The same numbers are in <code>measures.csv</code> / <code>measures.parquet</code> (one row per cell) "
        "and <code>measure_report.json</code> (FHIR R4 MeasureReport); <code>data_dictionary.md</code> defines "
        "every column and code.</p>",
        f"<p>{nav}</p>" if nav else "<p>No measure results for this period.</p>",
    ]
    for m in measures:
        mine = table[table["measure_id"] == m]
        st = state[state["measure_id"] == m] if not state.empty else state
        parts.append(_measure_section(m, lhj, mine, st, bool(sens.get(m, False))))
    parts.append(_suppression_section(table, suppression_method))
    parts.append("<h2>Checking this package</h2><p>Run <code>phmx feeds verify &lt;folder&gt;</code> (or the "
                 "openssl steps in the LHJ guide): it checks the Ed25519 signature on <code>manifest.json</code> "
                 "and the SHA-256 of every file. Compare the key fingerprint with the one the hub publishes:</p>"
                 f"<p><code>{escape(fingerprint)}</code> (key id <code>{escape(key_id)}</code>)</p>")
    if files:
        parts.append("<p class=\"note\">Files: " + ", ".join(f"<code>{escape(f)}</code>" for f in files) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
