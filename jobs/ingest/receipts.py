"""Receipts: what happened to each submission, for the submitter (JSON for machines, HTML for people).

A receipt cites file, row number, field and rule, and says how to fix; it never carries a
submitted value. Written to ``<outbox>/<submitter>/receipts/<feed>/<period>/<submission_id>.json``.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from jobs.ingest.rules import RULES, how_to_fix
from phmx import storage

MAX_ROWS_LISTED = 200

# Kept for callers that imported it: the catalogue in jobs.ingest.rules is the source.
HOW_TO_FIX: dict[str, str] = {rid: r.how_to_fix for rid, r in RULES.items()}

UNIT_TEXT = {
    "line": "Row numbers are line numbers in your file (line 1 is the header when the feed has one).",
    "segment": "Row numbers are segment positions in your X12 file, counting the ISA segment as 1; each "
               "member loop is numbered by its INS segment.",
}
UNIT_TEXT_HL7 = ("Row numbers are line numbers in your HL7 file (one segment per line): the line of the RXA "
                 "segment of each vaccination; each listed row also names its message (1 = the first MSH).")


@dataclass
class Receipt:
    """The receipt for one submission (counts, errors by rule with row numbers, status)."""

    submission_id: str
    submitter: str
    feed: str
    period: str
    source_file: str
    source_file_sha256: str
    received_at: str
    status: str
    rows_landed: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    file_errors: list[dict[str, str]] = field(default_factory=list)
    # Whole-file warnings (the file was accepted): e.g. a header-only file withdrawing a period.
    file_warnings: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # One entry per rule that fired: how many records it quarantined (or warned) and their share of
    # the file's records, most frequent first: what to fix first.
    rule_summary: list[dict[str, Any]] = field(default_factory=list)
    supersedes: list[str] = field(default_factory=list)
    duplicate_of: str | None = None
    spec_version: str = ""
    record_unit: str = "line"
    format: str = ""

    @property
    def unit_text(self) -> str:
        if self.format == "hl7_vxu":
            return UNIT_TEXT_HL7
        if self.format == "hl7_adt":
            return ("Row numbers are line numbers in your HL7 file (one segment per line): the line of each "
                    "message's MSH segment; each listed row also names its message (1 = the first MSH).")
        return UNIT_TEXT.get(self.record_unit, UNIT_TEXT["line"])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    """numpy scalars (row numbers from vectorised checks) as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def group_findings(findings: list[tuple[int, str, str, str]] | list[tuple[int, str, str, str, str]],
                   how_to_fix_texts: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Group (row, rule, field, message[, locator]) findings by rule and field, listing row numbers.

    Each group carries its rule id, field, the problem (never a value), how many rows, the first
    row numbers (and where the format has them, locators such as ``message 12``), and how to fix.
    """
    groups: dict[tuple[str, str, str], dict[int, str]] = defaultdict(dict)
    for item in findings:
        row, rule, fld, msg = item[:4]
        loc = item[4] if len(item) > 4 else ""
        groups[(rule, fld, msg)][int(row)] = loc
    out = []
    for (rule, fld, msg), by_row in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], min(kv[1]))):
        rows = sorted(by_row)
        group: dict[str, Any] = {
            "rule_id": rule, "field": fld, "message": msg, "count": len(rows), "rows": rows[:MAX_ROWS_LISTED],
            "rows_truncated": len(rows) > MAX_ROWS_LISTED,
            # A field-specific fix ("<rule>.<field>": the segment, field and expected value) before the rule's own.
            "how_to_fix": how_to_fix(f"{rule}.{fld}" if f"{rule}.{fld}" in (how_to_fix_texts or {}) else rule,
                                     how_to_fix_texts),
            "level": RULES[rule].level if rule in RULES else "row",
        }
        locs = [by_row[r] for r in rows[:MAX_ROWS_LISTED]]
        if any(locs):
            group["locations"] = locs
        out.append(group)
    return out


def rule_summary(quarantine: list[dict[str, Any]], warnings: list[tuple[Any, ...]], landed: int) -> list[dict[str, Any]]:
    """Per rule: records quarantined (errors) or accepted with a warning, and their share of the records.

    A record failing one rule in two fields counts once for that rule; a record failing two rules
    counts for each, so shares need not add up to the quarantined share.
    """
    by_rule: dict[tuple[str, str], set[int]] = defaultdict(set)
    for q in quarantine:
        by_rule[("error", str(q["rule_id"]))].add(int(q["row_number"]))
    for w in warnings:
        by_rule[("warning", str(w[1]))].add(int(w[0]))
    out = [{"rule_id": rule, "severity": sev, "level": RULES[rule].level if rule in RULES else "row",
            "records": len(rows), "share": round(len(rows) / landed, 4) if landed else 0.0}
           for (sev, rule), rows in by_rule.items()]
    return sorted(out, key=lambda x: (x["severity"] != "error", -x["records"], x["rule_id"]))


def percent(share: float) -> str:
    """A share as people read it: 12.5%, <0.1% for a handful among millions."""
    p = share * 100
    return "<0.1%" if 0 < p < 0.1 else f"{p:.1f}%".replace(".0%", "%")


def receipt_prefix(outbox_root: str, r: Receipt) -> str:
    return storage.join(outbox_root, r.submitter, "receipts", r.feed, r.period, r.submission_id)


def write_receipt(outbox_root: str, r: Receipt) -> str:
    """Write JSON and HTML receipts; return the JSON receipt's URI."""
    base = receipt_prefix(outbox_root, r)
    storage.write_text(base + ".json", r.to_json(), content_type="application/json")
    storage.write_text(base + ".html", render_html(r), content_type="text/html; charset=utf-8")
    return base + ".json"


_STATUS_TEXT = {
    "accepted": "Accepted: every row passed.",
    "accepted_with_errors": "Accepted with errors: the rows listed below were quarantined; the rest were accepted.",
    "rejected": "Rejected: the file could not be processed. Nothing from it was loaded.",
    "duplicate": "Duplicate: this exact file was already received; nothing was changed.",
}


def _row_text(group: dict[str, Any]) -> str:
    locs = group.get("locations")
    if locs:
        return ", ".join(f"{row} ({loc})" if loc else str(row) for row, loc in zip(group["rows"], locs, strict=False))
    return ", ".join(map(str, group["rows"]))


def next_steps(r: Receipt) -> list[str]:
    """Plain advice for the submitter, by status."""
    if r.status == "accepted":
        steps = ["Nothing to do: every record was loaded."]
        if r.warnings:
            steps.append("Review the warnings: the rows were loaded, but the values look wrong.")
        return steps
    if r.status == "duplicate":
        return ["Nothing to do: this exact file was already received. To correct a submission, send a changed "
                "file for the same period; it replaces the earlier one."]
    if r.status == "rejected":
        return ["Fix the file problems listed above, check the file with `phmx validate FILE --feed "
                f"{r.feed}`, and send it again to the same period folder."]
    return ["The listed rows were not loaded; the rest were.",
            "Correct the listed rows and send the whole corrected file again "
            + (f"to the {r.period} folder" if r.period else "to the folder of its reporting period")
            + ": it replaces this submission (feeds that append instead say so in their submission guide).",
            f"Check the corrected file first with `phmx validate FILE --feed {r.feed}`."]


def render_html(r: Receipt) -> str:
    """A plain, self-contained HTML receipt for people (no scripts, no external assets)."""
    e = html.escape

    def table(items: list[dict[str, Any]]) -> str:
        if not items:
            return "<p>None.</p>"
        rows = "".join(
            f"<tr><td>{e(i['rule_id'])}</td><td>{e(i['field'])}</td><td>{i['count']}</td>"
            f"<td>{e(_row_text(i))}{' ...' if i['rows_truncated'] else ''}</td>"
            f"<td>{e(i['message'])}</td><td>{e(i['how_to_fix'])}</td></tr>" for i in items)
        return ("<table><thead><tr><th>rule</th><th>field</th><th>rows</th><th>row numbers</th>"
                f"<th>problem</th><th>how to fix</th></tr></thead><tbody>{rows}</tbody></table>")

    file_errs = "".join(f"<li><b>{e(f['rule_id'])}</b>: {e(f['message'])}. How to fix: "
                        f"{e(how_to_fix(f['rule_id']))}</li>" for f in r.file_errors)
    summary_rows = "".join(f"<tr><td>{e(x['rule_id'])}</td><td>{e(x['severity'])}</td><td>{x['records']}</td>"
                           f"<td>{percent(x['share'])}</td></tr>" for x in r.rule_summary)
    summary_html = ("<h2>Summary by rule</h2><table><thead><tr><th>rule</th><th>severity</th><th>records</th>"
                    f"<th>share of records</th></tr></thead><tbody>{summary_rows}</tbody></table>"
                    if r.rule_summary else "")
    file_warns = "".join(f"<li><b>{e(f['rule_id'])}</b>: {e(f['message'])}</li>" for f in r.file_warnings)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Receipt {e(r.submission_id)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}}
.status{{font-size:1.3em;padding:.5em;border-left:6px solid {'#2a7' if r.status == 'accepted' else '#c80' if r.status in ('accepted_with_errors', 'duplicate') else '#c22'}}}</style>
</head><body>
<h1>Submission receipt</h1>
<p class="status"><b>{e(r.status)}</b>. {e(_STATUS_TEXT.get(r.status, ''))}</p>
<table>
<tr><th>submission id</th><td>{e(r.submission_id)}</td></tr>
<tr><th>submitter</th><td>{e(r.submitter)}</td></tr><tr><th>feed</th><td>{e(r.feed)} (spec {e(r.spec_version)})</td></tr>
<tr><th>period</th><td>{e(r.period)}</td></tr><tr><th>file</th><td>{e(r.source_file)}</td></tr>
<tr><th>sha256</th><td><code>{e(r.source_file_sha256)}</code></td></tr><tr><th>received</th><td>{e(r.received_at)}</td></tr>
<tr><th>rows landed</th><td>{r.rows_landed}</td></tr><tr><th>rows accepted</th><td>{r.rows_accepted}</td></tr>
<tr><th>rows quarantined</th><td>{r.rows_quarantined}</td></tr>
<tr><th>supersedes</th><td>{e(', '.join(r.supersedes) or '-')}</td></tr>
<tr><th>duplicate of</th><td>{e(r.duplicate_of or '-')}</td></tr>
</table>
{'<h2>File problems</h2><ul>' + file_errs + '</ul>' if r.file_errors else ''}
{summary_html}
{'<h2>File warnings</h2><ul>' + file_warns + '</ul>' if r.file_warnings else ''}
<h2>Errors (rows quarantined)</h2>{table(r.errors)}
<h2>Warnings (rows accepted)</h2>{table(r.warnings)}
{'<h2>Notes</h2><ul>' + ''.join(f'<li>{e(n)}</li>' for n in r.notes) + '</ul>' if r.notes else ''}
<p>{e(r.unit_text)} Values you sent are never repeated here.</p>
<h2>What to do next</h2><ul>{''.join(f'<li>{e(t)}</li>' for t in next_steps(r))}</ul>
</body></html>"""
