"""Why two records do (or do not) match: each comparison's contribution to the match weight.

The waterfall starts at the prior (log2 odds that two random records match) and adds, per
comparison, log2(m/u) of the level reached (plus the term-frequency adjustment for exact name
agreement); the total is the match weight, and its logistic transform the probability. The
same engine code that scored the pair standardises and compares the two records here.

Values are masked by default (the comparison level says enough for most reviews); a reviewer
in the PHI zone may ask for them with ``show_values``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobs.identity import comparisons, model_store, standardise
from jobs.identity.config import IdentitySettings
from jobs.identity.model import Model, probability
from phmx import lakehouse, tables
from phmx.errors import ConfigError
from phmx.tables import REVIEW_QUEUE
from privacy.crypto import decrypt_for_read, decryption_errors
from privacy.keys import get_provider

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class Explanation:
    left: tuple[str, str]
    right: tuple[str, str]
    rows: list[dict[str, Any]]
    weight: float
    probability: float
    values: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def resolve_pair(spark: SparkSession, ref: list[str]) -> tuple[tuple[str, str], tuple[str, str]]:
    """``[PAIR_ID]`` (from the review queue) or ``[SOURCE:ID, SOURCE:ID]`` -> two record keys."""
    from pyspark.sql import functions as F

    if len(ref) == 1:
        rows = lakehouse.read(spark, REVIEW_QUEUE).where(F.col("pair_id") == F.lit(ref[0])).limit(1).collect()
        if not rows:
            raise ConfigError(f"no review item with pair id {ref[0]!r}", hint="or name two records as SOURCE:ID")
        r = rows[0]
        return (r["source_l"], r["source_person_id_l"]), (r["source_r"], r["source_person_id_r"])
    if len(ref) == 2 and all(":" in x for x in ref):
        a, b = (tuple(x.split(":", 1)) for x in ref)
        return (a[0], a[1]), (b[0], b[1])
    raise ConfigError("name a pair as PAIR_ID or as SOURCE:ID SOURCE:ID")


def explain_records(spark: SparkSession, settings: IdentitySettings, left: tuple[str, str],
                    right: tuple[str, str], *, model: Model | None = None) -> Explanation:
    """Explain the pair ``left``/``right`` (source, source_person_id) from ``silver.person``."""
    from pyspark.sql import functions as F

    model = model or model_store.load()
    if model is None:
        raise ConfigError("no trained identity model yet", hint="run the identity stage first")
    person = lakehouse.read(spark, tables.PERSON)
    cond = ((F.col("source") == left[0]) & (F.col("source_person_id") == left[1])) | \
        ((F.col("source") == right[0]) & (F.col("source_person_id") == right[1]))
    # Only the two records are decrypted (silver.person's identifiers are encrypted at rest).
    two = decrypt_for_read(person.where(cond), tables.PERSON.fqn, get_provider())
    std = standardise.standardise(two, settings)
    # Term frequencies from the last run (kept in work.identity_tf) when present.
    tf_cols = sorted({f"tf_{c.tf_column}" for c in settings.comparisons if c.tf})
    if lakehouse.exists("work.identity_tf"):
        tf = lakehouse.read(spark, "work.identity_tf").select("rid", *tf_cols)
        std = std.join(tf, "rid", "left")
    else:
        for c in tf_cols:
            std = std.withColumn(c, F.lit(None).cast("double"))
    with decryption_errors():
        rows = std.collect()
    keyed = {(r["source"], r["source_person_id"]): r for r in rows}
    if left not in keyed or right not in keyed:
        raise ConfigError("one of the two records is not in silver.person")
    rl, rr = keyed[left], keyed[right]
    pair = spark.createDataFrame([(rl["rid"], rr["rid"])], "rid_l bigint, rid_r bigint")
    mat = spark.createDataFrame(rows, std.schema)
    g = comparisons.compare(comparisons.with_sides(pair, mat, settings), settings).collect()[0]
    gammas = {c.name: int(g[f"g_{c.name}"]) for c in settings.comparisons}
    tfs = {c.name: g[f"tf_{c.name}"] for c in settings.comparisons if c.tf}
    steps = model.explain(settings, gammas, tfs)
    weight = sum(s["bits"] for s in steps)
    values = {c.name: (rl[c.column], rr[c.column]) for c in settings.comparisons}
    return Explanation(left, right, steps, weight, probability(weight), values)


def to_text_rows(e: Explanation, *, show_values: bool = False) -> list[list[str]]:
    """Rows for a terminal table: comparison, level, bits, running total (values if asked)."""
    out, total = [], 0.0
    for s in e.rows:
        total += s["bits"]
        row = [s["comparison"], s["level"], f"{s['bits']:+.2f}", f"{total:+.2f}"]
        if show_values:
            v = e.values.get(s["comparison"], ("", ""))
            row += [_fmt(v[0]), _fmt(v[1])]
        out.append(row)
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, list | tuple):
        return " ".join(str(x) for x in v)
    return str(v)


def to_html(e: Explanation, *, show_values: bool = False) -> str:
    """A standalone HTML page with the waterfall as an inline SVG chart and a table."""
    steps = e.rows
    width, bar_h, gap, left_pad = 760, 22, 8, 170
    lo = min(0.0, *_running(steps)) - 2
    hi = max(0.0, *_running(steps)) + 2
    scale = (width - left_pad - 60) / (hi - lo)

    def x(v: float) -> float:
        return left_pad + (v - lo) * scale

    parts = []
    total = 0.0
    for i, s in enumerate(steps):
        start, total = total, total + s["bits"]
        y = 10 + i * (bar_h + gap)
        a, b = sorted((x(start), x(total)))
        color = "#2e7d32" if s["bits"] >= 0 else "#c62828"
        if s["comparison"] == "prior":
            color = "#546e7a"
        label = html.escape(f"{s['comparison']} ({s['level']})" if s["level"] else s["comparison"])
        parts.append(f'<text x="{left_pad - 6}" y="{y + 15}" text-anchor="end" font-size="12">{label}</text>')
        parts.append(f'<rect x="{a:.1f}" y="{y}" width="{max(b - a, 1):.1f}" height="{bar_h}" fill="{color}"/>')
        parts.append(f'<text x="{b + 4:.1f}" y="{y + 15}" font-size="11">{s["bits"]:+.2f}</text>')
    n = len(steps)
    y = 10 + n * (bar_h + gap)
    parts.append(f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{y}" stroke="#999" stroke-dasharray="3,3"/>')
    parts.append(f'<text x="{left_pad - 6}" y="{y + 15}" text-anchor="end" font-size="12" font-weight="bold">'
                 f'match weight</text><text x="{x(total) + 4:.1f}" y="{y + 15}" font-size="12" '
                 f'font-weight="bold">{total:+.2f} bits = p {e.probability:.4f}</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 30}" role="img" '
           f'aria-label="match weight waterfall">' + "".join(parts) + "</svg>")
    head = ["comparison", "level", "bits", "running total"] + (["left value", "right value"] if show_values else [])
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in to_text_rows(e, show_values=show_values))
    title = f"Match explanation: {e.left[0]}:{e.left[1]} vs {e.right[0]}:{e.right[1]}"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        "<p>Audience: identity reviewers (PHI zone). Bars show each comparison's contribution to the "
        "match weight in bits (log2 odds); green for evidence for a match, red against.</p>"
        f"{svg}<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + f"</tr>{rows}</table>"
        f"<p>Match probability: {e.probability:.6f}</p></body></html>"
    )


def _running(steps: list[dict[str, Any]]) -> list[float]:
    out, total = [], 0.0
    for s in steps:
        total += s["bits"]
        out.append(total)
    return out

