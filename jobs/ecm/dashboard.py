"""An ECM provider's (or a plan's) dashboard: one self-contained HTML page from the ECM gold tables.

Rendered from ``templates/ecm_dashboard.html.j2`` with autoescaping on; charts are Vega-Lite specs
rendered offline to inline SVG by the same renderer as the LHJ report (:mod:`jobs.publish.report_charts`),
so the page has no JavaScript and opens offline. Aggregates only: counts and rates per month, and
statement lines; never a member.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from jobs.ecm.config import MetricsConfig
from jobs.ecm.config import load as load_metrics
from jobs.publish.report_charts import Chart, render

TEMPLATE = "ecm_dashboard.html.j2"
#: The four metric families in page order, each with its monthly line charts (title, metric ids, y axis);
#: every metric of the family is also listed in the family's table.
FAMILIES: tuple[tuple[str, str, tuple[tuple[str, tuple[str, ...], str], ...]], ...] = (
    ("process", "Process: engagement, outreach, care plans, caseload", (
        ("Members authorized and engaged", ("authorized_members", "engaged_members"), "members"),
        ("Outreach attempts, all and successful", ("outreach_attempts", "successful_outreach"), "attempts"))),
    ("clinical", "Clinical: utilisation and transitions of care", (
        ("ED visits and admissions per 1,000 engaged member-months", ("ed_visits_per_1000", "admissions_per_1000"),
         "per 1,000 member-months"),
        ("Follow-up within 7 days of an inpatient discharge", ("follow_up_7_days_after_discharge",),
         "share of discharges"))),
    ("financial", "Financial: total cost of care and payment statements", (
        ("Total cost of care PMPM: engaged members before and after enrollment, and the comparison group",
         ("tcoc_pmpm_before_enrollment", "tcoc_pmpm_after_enrollment", "tcoc_pmpm_comparison_before",
          "tcoc_pmpm_comparison_after"), "US dollars per member-month"),)),
    ("quality", "Quality: blood pressure, glycemic status, depression screening", (
        ("CBP, GSD > 9% (lower is better) and DSF", ("cbp", "gsd_poor_control", "dsf_screening", "dsf_follow_up"),
         "share of members or screens"),)),
)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True)


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def _line(title: str, ids: tuple[str, ...], unit: str, values: dict[tuple[str, str], float]) -> Chart:
    data = [{"month": m, "series": mid, "value": v} for (m, mid), v in sorted(values.items()) if mid in ids]
    if not data:
        return Chart(title, empty_reason="No data for these months.")
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v5.json", "width": 520, "height": 200,
            "data": {"values": data},
            "mark": {"type": "line", "point": True},
            "encoding": {"x": {"field": "month", "type": "ordinal", "title": "month"},
                         "y": {"field": "value", "type": "quantitative", "title": unit},
                         "color": {"field": "series", "type": "nominal", "title": None}}}
    return Chart(title, spec=spec)


def render_html(who: str, metric_rows: list[dict[str, Any]], statement_rows: list[dict[str, Any]],
                run_id: str, *, plans: list[str], cfg: MetricsConfig | None = None) -> str:
    """The dashboard page. ``metric_rows``: one row per month and metric (month, metric_id, value), a
    provider's plans or a plan's providers already summed by the caller; ``statement_rows``: its
    statement lines; ``plans``: the plan ids the figures cover."""
    cfg = cfg or load_metrics()
    months = sorted({r["month"] for r in metric_rows})
    by_key = {(r["month"], r["metric_id"]): r["value"] for r in metric_rows}
    flat = [(fam, t, ids, unit) for fam, _h, charts in FAMILIES for t, ids, unit in charts]
    rendered = render([_line(t, ids, unit, {k: v for k, v in by_key.items() if v is not None})
                       for _f, t, ids, unit in flat], workers=1)
    sections = []
    for fam, heading, _charts in FAMILIES:
        rows = [{"title": m.title, "cells": [_fmt(by_key.get((mo, m.id))) for mo in months]}
                for m in cfg.metrics if m.family == fam]
        sections.append({"family": fam, "heading": heading, "rows": rows,
                         "charts": [c for (f, *_), c in zip(flat, rendered, strict=True) if f == fam]})
    lines = [{**r, "quantity": _fmt(r["quantity"]), "rate": _fmt(r["rate"]), "amount": _fmt(r["amount"])}
             for r in sorted(statement_rows, key=lambda r: (r["month"], r["contract_id"], r["line_id"]))]
    return _env().get_template(TEMPLATE).render(
        who=who, months=months, first_month=months[0] if months else "-", last_month=months[-1] if months else "-",
        plans=plans, run_id=run_id, sections=sections, statement_rows=lines)
