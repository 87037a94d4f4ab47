"""Packages for ECM providers and plans: their own provider-month metrics and statements.

``write_package(spark, recipient, out)`` writes, for an ECM provider (its submitter id, e.g.
``ecm_p001``: the NPIs it sends under) or a plan (its submitter id, ``mcp_*``: the plan ids in its
member information files), under ``out``: ``provider_month.csv`` and ``.parquet`` (its rows of
gold.ecm_provider_month only), ``statement.csv`` and ``.parquet`` (its statement lines), the
``dashboard.html`` and a ``manifest.json`` with each file's SHA-256.

Aggregates only (counts and rates per provider, plan and month, and statement lines): no member
is in a package, so none of it is a disclosure of a member's record and no consent decision is
needed. A provider sees only its own NPIs' rows; a plan sees every provider it pays, and nothing
of another plan.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.ecm.config import load as load_metrics
from jobs.ecm.dashboard import render_html
from phmx import lakehouse
from phmx.errors import ConfigError
from phmx.tables import (
    ECM_ASSIGNMENT,
    ECM_CARE_PLAN,
    ECM_PROVIDER_MONTH,
    ECM_STATEMENT_LINE,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def _scope(spark: SparkSession, recipient: str) -> tuple[str, list[str]]:
    """(column, values) that select the recipient's own rows: provider NPIs or plan ids."""
    from pyspark.sql import functions as F

    if recipient.startswith("ecm_"):
        src = lakehouse.read(spark, ECM_CARE_PLAN)
        vals = sorted(r[0] for r in src.where(F.split("source", ":").getItem(0) == recipient)
                      .select("provider_npi").distinct().collect())
        return "provider_npi", vals
    if recipient.startswith("mcp_"):
        src = lakehouse.read(spark, ECM_ASSIGNMENT)
        vals = sorted(r[0] for r in src.where(F.split("source", ":").getItem(0) == recipient)
                      .select("plan_id").distinct().collect())
        return "plan_id", vals
    raise ConfigError(f"not an ECM package recipient: {recipient!r}", hint="an ECM provider (ecm_*) or a plan (mcp_*)")


def _write(df: DataFrame, out: Path, name: str) -> list[Path]:
    pdf: Any = df.toPandas()
    csv_path, pq_path = out / f"{name}.csv", out / f"{name}.parquet"
    pdf.to_csv(csv_path, index=False)
    pdf.to_parquet(pq_path, index=False)
    return [csv_path, pq_path]


def write_package(spark: SparkSession, recipient: str, out: Path) -> dict[str, str]:
    """Write ``recipient``'s ECM package under ``out``; returns file name -> SHA-256 (also in manifest.json)."""
    from pyspark.sql import functions as F

    column, values = _scope(spark, recipient)
    if not values:
        raise ConfigError(f"no ECM data for {recipient!r} yet", hint="the ecm stage has nothing for this recipient")
    out.mkdir(parents=True, exist_ok=True)
    pm = lakehouse.read(spark, ECM_PROVIDER_MONTH).where(F.col(column).isin(values)).orderBy(
        "provider_npi", "plan_id", "month", "metric_id")
    st = lakehouse.read(spark, ECM_STATEMENT_LINE).where(F.col(column).isin(values)).orderBy(
        "contract_id", "provider_npi", "month", "line_id")
    files = _write(pm, out, "provider_month") + _write(st, out, "statement")
    raw = [r.asDict() for r in pm.collect()]
    plans = sorted({str(r["plan_id"]) for r in raw})
    # the dashboard's view: a provider's plans (or a plan's providers) summed per month and metric
    metric_rows = _sum_rows(raw)
    run_ids = sorted({str(r.get("run_id")) for r in metric_rows if r.get("run_id")})
    html = render_html(recipient, metric_rows, [r.asDict() for r in st.collect()], ", ".join(run_ids) or "-",
                       plans=plans)
    (out / "dashboard.html").write_text(html, encoding="utf-8")
    files.append(out / "dashboard.html")
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    (out / "manifest.json").write_text(json.dumps({"recipient": recipient, column: values, "files": digests},
                                                  indent=1, sort_keys=True) + "\n")
    return digests


def _sum_rows(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per month and metric, numerators and denominators summed over the rows' providers and plans
    (value recomputed as numerator / denominator x the metric's scale; the plan ids kept as a list)."""
    acc: dict[tuple[str, str], dict[str, object]] = {}
    for r in rows:
        key = (str(r["month"]), str(r["metric_id"]))
        a = acc.setdefault(key, {"month": key[0], "metric_id": key[1], "numerator": 0.0,
                                 "denominator": None, "run_id": r.get("run_id")})
        a["numerator"] = float(a["numerator"]) + float(r["numerator"] or 0)  # type: ignore[arg-type]
        if r["denominator"] is not None:
            a["denominator"] = float(a["denominator"] or 0) + float(r["denominator"])  # type: ignore[arg-type]
    scale = {m.id: m.scale for m in load_metrics().metrics}
    for a in acc.values():
        den, num = a["denominator"], float(a["numerator"])  # type: ignore[arg-type]
        k = scale.get(str(a["metric_id"]).split(":")[0], 1.0)
        a["value"] = num if den is None else (round(num / float(den) * k, 6) if float(den) else None)  # type: ignore[arg-type]
    return list(acc.values())
