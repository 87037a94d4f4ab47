"""Auditors' decision reports and search: what the consent engine decided, and what went out.

Two sources, both read with delta-rs (no engine), both aggregated before they reach a page (no
member id leaves this module):

* ``gold.consent_decision``: the decisions in force (``valid_to`` open), counted by decision,
  recipient, purpose, data class and rule; a search by recipient or purpose is pushed down to
  the Delta read, a rule narrows to rows citing it, a date range to decisions that began in it.
* the ledger's disclosures, with why each consent was cited (:func:`consent.report.model`, the
  code behind ``phmx audit report``), searched by recipient, purpose, rule and date; each one
  has a drill-down (:func:`disclosure`) with its files, the rules with what they cite, the
  consents with the reason they were cited, and its member rows counted by data class.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from phmx import lakehouse
from phmx.tables import CONSENT_DECISION, DISCLOSURE_MEMBER


@dataclass(frozen=True)
class Search:
    """What an auditor searches by (every field optional; none of them is about one member)."""

    recipient: str | None = None
    purpose: str | None = None
    rule: str | None = None
    since: date | None = None
    until: date | None = None  # exclusive

    def covers_day(self, day: str) -> bool:
        return (not self.since or day >= self.since.isoformat()) and (not self.until or day < self.until.isoformat())


def decision_counts(q: Search, limit: int = 500) -> list[dict[str, Any]]:
    """Decisions in force, counted by (decision, recipient, purpose, data class, rule)."""
    if not lakehouse.delta_exists(CONSENT_DECISION):
        return []
    filters: list[tuple[str, str, Any]] = []
    if q.recipient:
        filters.append(("recipient", "=", q.recipient))
    if q.purpose:
        filters.append(("purpose", "=", q.purpose))
    cols = ["decision", "recipient", "purpose", "data_class", "rule_ids", "valid_from", "valid_to"]
    rows = lakehouse.open_delta(CONSENT_DECISION).to_pyarrow_table(columns=cols, filters=filters or None)
    counts: Counter[tuple[str, str, str, str, str]] = Counter()
    for r in rows.to_pylist():
        if r["valid_to"] is not None:
            continue
        start = r["valid_from"].date().isoformat() if isinstance(r["valid_from"], datetime) else ""
        if (q.since or q.until) and not (start and q.covers_day(start)):
            continue
        rules = sorted(r["rule_ids"] or [])
        if q.rule and q.rule not in rules:
            continue
        for rule in rules or [""]:
            if q.rule and rule != q.rule:
                continue
            counts[(r["decision"], r["recipient"], r["purpose"], r["data_class"], rule)] += 1
    out: list[dict[str, Any]] = [{"decision": d, "recipient": rc, "purpose": p, "data_class": c, "rule_id": rule, "members": n}
           for (d, rc, p, c, rule), n in counts.items()]
    out.sort(key=lambda x: (-x["members"], x["decision"], x["recipient"], x["purpose"], x["data_class"], x["rule_id"]))
    return out[:limit]


def disclosures(q: Search, limit: int = 500) -> list[dict[str, Any]]:
    """Disclosures that went out, newest first, matching the search (a rule matches when the
    disclosure cites it)."""
    from consent import report

    out = []
    for d in report.model()["disclosures"]:
        if q.recipient and d["recipient"] != q.recipient:
            continue
        if q.purpose and d["purpose"] != q.purpose:
            continue
        if q.rule and q.rule not in d["rule_ids"]:
            continue
        if not q.covers_day(d["disclosed_at"][:10]):
            continue
        out.append({k: d[k] for k in ("seq", "disclosed_at", "recipient", "purpose", "members", "rule_ids")}
                   | {"consents": len(d["citations"])})
    out.sort(key=lambda d: d["seq"], reverse=True)
    return out[:limit]


def disclosure(seq: int) -> dict[str, Any] | None:
    """One disclosure in full (None when there is no delivered disclosure with that seq)."""
    from consent import ledger, report

    m = report.model()
    found = next((d for d in m["disclosures"] if d["seq"] == seq), None)
    if found is None:
        return None
    entry = next((e for e in ledger.read_entries().to_pylist() if int(e["seq"]) == seq), None)
    payload = json.loads(entry["payload"]) if entry else {}
    by_class: Counter[str] = Counter()
    if lakehouse.delta_exists(DISCLOSURE_MEMBER):
        rows = lakehouse.open_delta(DISCLOSURE_MEMBER).to_pyarrow_table(columns=["data_class"],
                                                                        filters=[("seq", "=", seq)])
        by_class.update(str(c) for c in rows.column("data_class").to_pylist())
    cites = {r["id"]: r for r in m["rules"]}
    return {
        "seq": seq, "disclosed_at": found["disclosed_at"], "recipient": found["recipient"],
        "purpose": found["purpose"], "members": found["members"], "run_id": entry["run_id"] if entry else "",
        # recipient/feed/period/version/file: the package path, not where the hub keeps it
        "files": [{"path": "/".join(str(f["uri"]).split("/")[-5:]), "sha256": f["sha256"]}
                  for f in payload.get("files", [])],
        "rules": [{"id": r, "kind": cites.get(r, {}).get("kind", ""), "cite": cites.get(r, {}).get("cite", "")}
                  for r in found["rule_ids"]],
        "consents": found["citations"],
        "member_rows_by_class": [{"data_class": c, "rows": n} for c, n in sorted(by_class.items())],
    }
