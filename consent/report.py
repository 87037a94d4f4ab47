"""``phmx audit report``: an HTML report with inline SVG charts, and the same figures as CSV.

Sources are the audit tables only (read with delta-rs, no engine): the newest ``decision_batch``
entry's counts (decisions by rule, recipient and outcome; denials by class and purpose), the
disclosure entries and their member rows, and silver.consent for revocations. No JavaScript,
no external assets: the file opens offline.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consent import audit, ledger
from phmx import lakehouse, storage
from phmx.tables import CONSENT, DISCLOSURE_MEMBER


def _latest_batch(entries: list[dict[str, Any]]) -> dict[str, Any]:
    batches = [e for e in entries if e["entry_type"] == "decision_batch"]
    return json.loads(batches[-1]["payload"]) if batches else {}


def _read_delta(path: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    from deltalake import DeltaTable

    if not ledger._exists(path):  # noqa: SLF001 - same package
        return []
    dt = DeltaTable(path, storage_options=storage.delta_storage_options(path) if storage.is_s3(path) else None)
    return dt.to_pyarrow_table(columns=columns).to_pylist()


def figures() -> dict[str, list[list[Any]]]:
    """Every table the report shows, as header + rows (also written as CSV)."""
    entries = ledger.read_entries().to_pylist()
    batch = _latest_batch(entries)
    by_rule = [["rule_id", "recipient", "decision", "count"]] + [list(r) for r in batch.get("by_rule_recipient", [])]
    denials = [["data_class", "purpose", "decision", "count"]] + [
        list(r) for r in batch.get("by_class_purpose", []) if r[2] == "deny"]
    disclosures = [e for e in entries if e["entry_type"] == "disclosure"]
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    disclosed_at: dict[int, datetime] = {}
    for e in disclosures:
        p = json.loads(e["payload"])
        day = p["disclosed_at"][:10]
        per_day[day][0] += 1
        per_day[day][1] += int((p.get("members") or {}).get("distinct_members", 0))
        disclosed_at[int(e["seq"])] = datetime.fromisoformat(p["disclosed_at"].replace("Z", "+00:00")).replace(tzinfo=None)
    over_time = [["date", "disclosures", "members"]] + [[d, v[0], v[1]] for d, v in sorted(per_day.items())]
    to_whom = Counter((json.loads(e["payload"])["recipient"], json.loads(e["payload"])["purpose"]) for e in disclosures)
    by_recipient = [["recipient", "purpose", "disclosures"]] + [[r, p, n] for (r, p), n in sorted(to_whom.items())]
    return {"decisions_by_rule_recipient": by_rule, "denials_by_class_purpose": denials,
            "disclosures_over_time": over_time, "disclosures_by_recipient": by_recipient,
            "revocations": _revocations(disclosed_at)}


def _revocations(disclosed_at: dict[int, datetime]) -> list[list[Any]]:
    """Each revoked consent: when, and how many disclosures cited it after that time (must be 0)."""
    consents = _read_delta(lakehouse.table_path(CONSENT), ["consent_id", "version", "status", "revoked_at"])
    newest: dict[str, dict[str, Any]] = {}
    for c in consents:
        if c["consent_id"] not in newest or c["version"] > newest[c["consent_id"]]["version"]:
            newest[c["consent_id"]] = c
    revoked = {k: v["revoked_at"] for k, v in newest.items() if v["revoked_at"] is not None and v["status"] != "active"}
    after: Counter[str] = Counter()
    before: Counter[str] = Counter()
    if revoked:
        for r in _read_delta(lakehouse.table_path(DISCLOSURE_MEMBER), ["seq", "consent_ids"]):
            at = disclosed_at.get(int(r["seq"]))
            for cid in r["consent_ids"] or []:
                if cid in revoked and at is not None:
                    ts = revoked[cid].replace(tzinfo=None) if revoked[cid].tzinfo else revoked[cid]
                    (after if at >= ts else before)[cid] += 1
    rows: list[list[str | int]] = [["consent_id", "revoked_at", "disclosures_before", "disclosures_after_revocation"]]
    for cid, ts in sorted(revoked.items()):
        rows.append([cid, ledger.iso(ts), before[cid], after[cid]])
    return rows


# ---- SVG ---------------------------------------------------------------------------------------
def bar_svg(items: list[tuple[str, int]], *, title: str, width: int = 640) -> str:
    """A horizontal bar chart as inline SVG."""
    items = items[:30]
    row_h, label_w = 18, 260
    h = 30 + row_h * max(1, len(items))
    top = max([v for _, v in items] or [1]) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" role="img" '
           f'aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>']
    for i, (label, v) in enumerate(items):
        y = 20 + i * row_h
        w = int((width - label_w - 60) * v / top)
        out.append(f'<text x="{label_w - 6}" y="{y + 12}" font-size="11" text-anchor="end">{html.escape(label)}</text>'
                   f'<rect x="{label_w}" y="{y + 2}" width="{max(w, 1)}" height="{row_h - 5}" fill="#2b6cb0"/>'
                   f'<text x="{label_w + w + 4}" y="{y + 12}" font-size="11">{v}</text>')
    if not items:
        out.append('<text x="10" y="20" font-size="12">no data</text>')
    out.append("</svg>")
    return "".join(out)


def columns_svg(points: list[tuple[str, int]], *, title: str, width: int = 640, height: int = 200) -> str:
    """A column chart over time as inline SVG."""
    n = max(1, len(points))
    top = max([v for _, v in points] or [1]) or 1
    bw = max(2, (width - 60) // n)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" role="img" '
           f'aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>'
           f'<line x1="40" y1="{height}" x2="{width}" y2="{height}" stroke="#444"/>']
    for i, (label, v) in enumerate(points):
        bh = int((height - 20) * v / top)
        x = 40 + i * bw
        out.append(f'<rect x="{x}" y="{height - bh}" width="{max(bw - 2, 1)}" height="{bh}" fill="#2f855a">'
                   f'<title>{html.escape(label)}: {v}</title></rect>')
        if n <= 12 or i % max(1, n // 6) == 0:
            out.append(f'<text x="{x}" y="{height + 14}" font-size="10">{html.escape(label)}</text>')
    if not points:
        out.append('<text x="50" y="20" font-size="12">no disclosures yet</text>')
    out.append(f'<text x="2" y="14" font-size="10">{top}</text></svg>')
    return "".join(out)


def _table(rows: list[list[Any]]) -> str:
    if len(rows) <= 1:
        return "<p>None.</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows[1:201])
    more = f"<p>{len(rows) - 201} more rows in the CSV.</p>" if len(rows) > 201 else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def write_report(out_dir: str) -> dict[str, str]:
    """Write report.html and one CSV per figure into ``out_dir``; return their locations."""
    v = audit.verify()
    figs = figures()
    written: dict[str, str] = {}
    for name, rows in figs.items():
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        uri = storage.join(out_dir, f"{name}.csv")
        storage.write_text(uri, buf.getvalue(), content_type="text/csv")
        written[name] = uri
    rule_tot: Counter[str] = Counter()
    for r in figs["decisions_by_rule_recipient"][1:]:
        rule_tot[f"{r[0]} ({r[2]})"] += int(r[3])
    deny_tot: Counter[str] = Counter()
    for r in figs["denials_by_class_purpose"][1:]:
        deny_tot[f"{r[0]} / {r[1]}"] += int(r[3])
    time_pts = [(str(r[0]), int(r[1])) for r in figs["disclosures_over_time"][1:]]
    revs = figs["revocations"]
    violations = sum(int(r[3]) for r in revs[1:])
    status = "verified" if v.ok else f"FAILED at entry {v.first_bad.seq if v.first_bad else '?'}: {v.first_bad.kind if v.first_bad else ''}"
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>phmx consent and disclosure audit report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#1a202c}}
table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #cbd5e0;padding:2px 6px;text-align:left}}
.ok{{color:#276749}}.bad{{color:#c53030}}</style></head><body>
<h1>Consent and disclosure audit report</h1>
<p>Generated {html.escape(ledger.iso(datetime.now(UTC)))}. Ledger: {v.entries} entries, {v.checkpoints} signed checkpoints,
{v.disclosures} disclosures. Chain and signatures: <b class="{'ok' if v.ok else 'bad'}">{html.escape(status)}</b>.</p>
<h2>Decisions by rule</h2><p>Decisions in force when the newest decision batch ran, by the rule behind them.</p>
{bar_svg(sorted(rule_tot.items(), key=lambda kv: -kv[1]), title="decisions by rule")}
{_table(figs["decisions_by_rule_recipient"])}
<h2>Denials by data class and purpose</h2>
{bar_svg(sorted(deny_tot.items(), key=lambda kv: -kv[1]), title="denials by class and purpose")}
<h2>Revocations honoured</h2><p>{len(revs) - 1} revoked consents; disclosures citing a consent after its revocation:
<b class="{'ok' if violations == 0 else 'bad'}">{violations}</b>.</p>{_table(revs)}
<h2>Disclosures over time</h2>{columns_svg(time_pts, title="disclosures per day")}
{_table(figs["disclosures_by_recipient"])}
<p>The same figures are in the CSV files next to this report. See docs/auditor-guide.md for what each proves.</p>
</body></html>"""
    uri = storage.join(out_dir, "report.html")
    storage.write_text(uri, doc, content_type="text/html; charset=utf-8")
    written["report"] = uri
    return written


def ensure_dir(out_dir: str) -> None:
    if not storage.is_s3(out_dir):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
