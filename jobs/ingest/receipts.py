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

from phmx import storage

MAX_ROWS_LISTED = 200

HOW_TO_FIX: dict[str, str] = {
    "required": "Fill in the field for every listed row.",
    "format": "Correct the value to the format the feed spec gives for this field.",
    "cin_shape": "A Medi-Cal CIN is 9 characters: the digit 9, seven digits, a capital letter. Leave it empty if unknown.",
    "code_set": "Use a code from the value set named in the feed spec.",
    "max_length": "Shorten the value to the spec's maximum length.",
    "date_range": "Check the year; dates must fall between 1900 and 2100.",
    "column_count": "The row has a different number of fields than the header; check delimiters and quotes.",
    "quoting": "A quote is not closed; quote fields that contain the delimiter and close every quote.",
    "duplicate_key": "Send each record once per file.",
    "file_empty": "The file was empty: export again and resend.",
    "file_binary": "Send the delimited text export, not a spreadsheet or archive.",
    "file_encoding": "Save the file as UTF-8 (or Latin-1) text.",
    "wrong_delimiter": "Export with the delimiter the feed spec names.",
    "header_missing": "Put the header row the feed spec lists as the first line.",
    "header_columns": "Add the missing required columns to the header and every row.",
    "unknown_feed": "Place the file under landing/<submitter>/<feed>/<YYYY-MM>/ with a feed from the published list.",
    "unknown_submitter": "This feed is not accepted from this submitter; contact the hub operator.",
    "bad_period": "The folder above the file must be the reporting period as YYYY-MM.",
    "internal_error": "The hub could not process this file; the operator has been notified. Resend unchanged later.",
}


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
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    supersedes: list[str] = field(default_factory=list)
    duplicate_of: str | None = None
    spec_version: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True, default=_plain)


def _plain(value: Any) -> Any:
    """numpy scalars (row numbers from vectorised checks) as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def group_findings(findings: list[tuple[int, str, str, str]], how_to_fix: dict[str, str] | None = None
                   ) -> list[dict[str, Any]]:
    """Group (row, rule, field, message) findings by rule and field, listing row numbers."""
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for row, rule, fld, msg in findings:
        groups[(rule, fld, msg)].append(row)
    fixes = {**HOW_TO_FIX, **(how_to_fix or {})}
    out = []
    for (rule, fld, msg), rows in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], min(kv[1]))):
        rows = sorted(set(rows))
        out.append({"rule_id": rule, "field": fld, "message": msg, "count": len(rows),
                    "rows": rows[:MAX_ROWS_LISTED], "rows_truncated": len(rows) > MAX_ROWS_LISTED,
                    "how_to_fix": fixes.get(rule, "See the feed spec for this rule.")})
    return out


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


def render_html(r: Receipt) -> str:
    """A plain, self-contained HTML receipt for people (no scripts, no external assets)."""
    e = html.escape

    def table(items: list[dict[str, Any]]) -> str:
        if not items:
            return "<p>None.</p>"
        rows = "".join(
            f"<tr><td>{e(i['rule_id'])}</td><td>{e(i['field'])}</td><td>{i['count']}</td>"
            f"<td>{e(', '.join(map(str, i['rows'])))}{' ...' if i['rows_truncated'] else ''}</td>"
            f"<td>{e(i['message'])}</td><td>{e(i['how_to_fix'])}</td></tr>" for i in items)
        return ("<table><thead><tr><th>rule</th><th>field</th><th>rows</th><th>row numbers</th>"
                f"<th>problem</th><th>how to fix</th></tr></thead><tbody>{rows}</tbody></table>")

    file_errs = "".join(f"<li><b>{e(f['rule_id'])}</b>: {e(f['message'])} "
                        f"({e(HOW_TO_FIX.get(f['rule_id'], ''))})</li>" for f in r.file_errors)
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
<h2>Errors (rows quarantined)</h2>{table(r.errors)}
<h2>Warnings (rows accepted)</h2>{table(r.warnings)}
{'<h2>Notes</h2><ul>' + ''.join(f'<li>{e(n)}</li>' for n in r.notes) + '</ul>' if r.notes else ''}
<p>Row numbers are line numbers in your file (line 1 is the header). Values are never repeated here.</p>
</body></html>"""
