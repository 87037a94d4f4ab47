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
#: The process metrics drawn as monthly lines (the table lists every metric).
CHARTED = (("Members authorized and engaged", ("authorized_members", "engaged_members"), "members"),
           ("Outreach attempts, all and successful", ("outreach_attempts", "successful_outreach"), "attempts"))


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
    charts = render([_line(t, ids, unit, {k: v for k, v in by_key.items() if v is not None})
                     for t, ids, unit in CHARTED], workers=1)
    process = [{"title": m.title, "cells": [_fmt(by_key.get((mo, m.id))) for mo in months]}
               for m in cfg.metrics]
    lines = [{**r, "quantity": _fmt(r["quantity"]), "rate": _fmt(r["rate"]), "amount": _fmt(r["amount"])}
             for r in sorted(statement_rows, key=lambda r: (r["month"], r["contract_id"], r["line_id"]))]
    return _env().get_template(TEMPLATE).render(
        who=who, months=months, first_month=months[0] if months else "-", last_month=months[-1] if months else "-",
        plans=plans, run_id=run_id, charts=charts, process_rows=process,
        statement_rows=lines)
