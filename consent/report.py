"""``phmx audit report``: an HTML report that explains each figure, and the same figures as CSV.

Sources are the audit tables only (read with delta-rs, no engine): the newest ``decision_batch``
entry's counts, the disclosure entries and their member rows, the policy (what each rule is and
cites) and silver.consent for revocations. The page is rendered from a Jinja2 template with
autoescaping (``consent/templates/audit_report.html.j2``), charts included (SVG drawn by template
macros from numbers): no JavaScript, no external assets, it opens offline.

Why a consent was cited decides what a revocation means. A disclosure cites a consent either
because it relied on it (the decision's rule is the policy's consent-permit rule for that class:
**permitting**), because it is a deny directive (**denying**), or only to explain it (the decision
came from a rule of law that needs no consent, e.g. W&I 5328 between treating professionals, and
the consent was revoked, expired or given by someone not eligible: **not relied on**). "Disclosures
after revocation" counts only the first kind: a disclosure that relied on a consent after it was
revoked. Every red figure has a table of the rows behind it.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consent import audit, ledger
from phmx import lakehouse, storage
from phmx.tables import CONSENT, DISCLOSURE_MEMBER

PERMITTING = "permitting"
DENYING = "denying"
NOT_RELIED_ON = "not_relied_on"
REASON_LABELS = {PERMITTING: "permitting", DENYING: "denying",
                 NOT_RELIED_ON: "cited, not relied on: overridden by a rule that needs no consent"}


def _latest_batch(entries: list[dict[str, Any]]) -> dict[str, Any]:
    batches = [e for e in entries if e["entry_type"] == "decision_batch"]
    return json.loads(batches[-1]["payload"]) if batches else {}


def _read_delta(path: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    if not lakehouse.delta_exists(path):
        return []
    return lakehouse.open_delta(path).to_pyarrow_table(columns=columns).to_pylist()


@dataclass(frozen=True)
class RuleKinds:
    """Which rule ids mean "decided by a consent" (permit or deny) and which only explain a consent."""

    permit: frozenset[str]
    deny: frozenset[str]
    explain: frozenset[str]
    citations: dict[str, str]

    @classmethod
    def from_policy(cls) -> RuleKinds:
        from consent.disclosure_policy import load_policy

        p = load_policy()
        return cls(frozenset(p.consent_permit.values()), frozenset({p.consent_deny}),
                   frozenset({p.consent_revoked, p.consent_expired, p.grantor_rule}), dict(p.citations))

    def reason(self, rule_ids: list[str]) -> tuple[str, str]:
        """(reason code, detail) for a consent cited by a decision with these rules."""
        rules = set(rule_ids)
        if rules & self.permit:
            return PERMITTING, ""
        if rules & self.deny:
            return DENYING, ""
        basis = sorted(rules - self.explain)
        why = sorted(rules & self.explain)
        detail = f"permitted by {', '.join(basis) or 'a rule'}"
        if why:
            detail += f"; consent state: {', '.join(why)}"
        return NOT_RELIED_ON, detail

    def kind(self, rule_id: str) -> str:
        if rule_id in self.permit:
            return "consent permits"
        if rule_id in self.deny:
            return "consent denies"
        if rule_id in self.explain:
            return "consent state"
        return "law (no consent needed)"


def _parse_at(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).replace(tzinfo=None)


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def model(kinds: RuleKinds | None = None) -> dict[str, Any]:
    """Everything the report shows: figure tables (header + rows, also written as CSV) and the
    disclosures with their rules and cited consents."""
    kinds = kinds or RuleKinds.from_policy()
    entries = ledger.read_entries().to_pylist()
    batch = _latest_batch(entries)
    undelivered = audit.not_delivered(entries)
    by_rule = [["rule_id", "recipient", "decision", "count"]] + [list(r) for r in batch.get("by_rule_recipient", [])]
    denials = [["data_class", "purpose", "decision", "count"]] + [
        list(r) for r in batch.get("by_class_purpose", []) if r[2] == "deny"]
    disclosures: dict[int, dict[str, Any]] = {}
    for e in entries:
        if e["entry_type"] != "disclosure" or int(e["seq"]) in undelivered:
            continue
        p = json.loads(e["payload"])
        disclosures[int(e["seq"])] = {
            "seq": int(e["seq"]), "disclosed_at": p["disclosed_at"], "recipient": p["recipient"],
            "purpose": p["purpose"], "members": int((p.get("members") or {}).get("distinct_members", 0)),
            "rule_ids": sorted(p.get("rule_ids") or []), "citations": []}
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d in disclosures.values():
        per_day[d["disclosed_at"][:10]][0] += 1
        per_day[d["disclosed_at"][:10]][1] += d["members"]
    over_time = [["date", "disclosures", "members"]] + [[k, v[0], v[1]] for k, v in sorted(per_day.items())]
    to_whom = Counter((d["recipient"], d["purpose"]) for d in disclosures.values())
    by_recipient = [["recipient", "purpose", "disclosures"]] + [[r, p, n] for (r, p), n in sorted(to_whom.items())]

    # Why each consent was cited, per disclosure (member rows aggregated; no member id leaves here).
    cited: Counter[tuple[int, str, str, str, str, str]] = Counter()
    for r in _read_delta(lakehouse.table_path(DISCLOSURE_MEMBER), ["seq", "data_class", "rule_ids", "consent_ids"]):
        seq = int(r["seq"])
        if seq not in disclosures or not r["consent_ids"]:
            continue
        code, detail = kinds.reason(list(r["rule_ids"] or []))
        rules = ",".join(sorted(r["rule_ids"] or []))
        for cid in r["consent_ids"]:
            cited[(seq, cid, r["data_class"], code, detail, rules)] += 1
    citations: list[list[Any]] = [["seq", "consent_id", "data_class", "reason", "detail", "rule_ids", "member_rows"]]
    per_disclosure: dict[tuple[int, str, str, str], int] = Counter()
    for (seq, cid, cls, code, detail, rules), n in sorted(cited.items()):
        citations.append([seq, cid, cls, code, detail, rules, n])
        per_disclosure[(seq, cid, code, detail)] += n
    for (seq, cid, code, detail), n in sorted(per_disclosure.items()):
        disclosures[seq]["citations"].append({"consent_id": cid, "reason": code, "reason_label": REASON_LABELS[code],
                                              "detail": detail, "rows": n})

    consents = _consents()
    revocations, violations = _revocations(consents, disclosures, cited)
    figs = {"decisions_by_rule_recipient": by_rule, "denials_by_class_purpose": denials,
            "disclosures_over_time": over_time, "disclosures_by_recipient": by_recipient,
            "revocations": revocations, "revocation_violations": violations,
            "disclosures": [["seq", "disclosed_at", "recipient", "purpose", "members", "rule_ids", "consents"]] + [
                [d["seq"], d["disclosed_at"], d["recipient"], d["purpose"], d["members"], ",".join(d["rule_ids"]),
                 ";".join(f"{c['consent_id']}:{c['reason']}" for c in d["citations"])]
                for d in sorted(disclosures.values(), key=lambda d: d["seq"])],
            "consent_citations": citations}
    rule_ids = sorted({r for d in disclosures.values() for r in d["rule_ids"]}
                      | {r for (_, _, _, _, _, rules) in cited for r in rules.split(",") if r})
    seqs_by_consent: dict[str, set[int]] = defaultdict(set)
    for (seq, cid, *_rest) in cited:
        seqs_by_consent[cid].add(seq)
    return {
        "figures": figs,
        "disclosures": sorted(disclosures.values(), key=lambda d: d["seq"]),
        "rules": [{"id": r, "kind": kinds.kind(r), "cite": kinds.citations.get(r, "")} for r in rule_ids],
        "consents": [{"consent_id": cid, "status": (consents.get(cid) or {}).get("status", "unknown"),
                      "revoked_at": _iso_or_blank((consents.get(cid) or {}).get("revoked_at")),
                      "seqs": sorted(seqs)} for cid, seqs in sorted(seqs_by_consent.items())],
    }


def _iso_or_blank(ts: datetime | None) -> str:
    return ledger.iso(ts) if ts is not None else ""


def _consents() -> dict[str, dict[str, Any]]:
    """The newest version of every consent (status, revoked_at)."""
    newest: dict[str, dict[str, Any]] = {}
    for c in _read_delta(lakehouse.table_path(CONSENT), ["consent_id", "version", "status", "revoked_at"]):
        if c["consent_id"] not in newest or c["version"] > newest[c["consent_id"]]["version"]:
            newest[c["consent_id"]] = c
    return newest


def _revocations(consents: dict[str, dict[str, Any]], disclosures: dict[int, dict[str, Any]],
                 cited: Counter[tuple[int, str, str, str, str, str]]) -> tuple[list[list[Any]], list[list[Any]]]:
    """Per revoked consent: disclosures that relied on it before and after its revocation, and those
    that only cited it; and the drill-down rows of every disclosure that relied on it afterwards."""
    revoked = {k: _naive(v["revoked_at"]) for k, v in consents.items()
               if v["revoked_at"] is not None and v["status"] != "active"}
    before: dict[str, set[int]] = defaultdict(set)
    after: dict[str, set[int]] = defaultdict(set)
    only_cited: dict[str, set[int]] = defaultdict(set)
    rows_after: Counter[tuple[int, str, str]] = Counter()
    for (seq, cid, cls, code, _detail, _rules), n in cited.items():
        if cid not in revoked:
            continue
        if code != PERMITTING:
            only_cited[cid].add(seq)
            continue
        at = _parse_at(disclosures[seq]["disclosed_at"])
        if at >= revoked[cid]:
            after[cid].add(seq)
            rows_after[(seq, cid, cls)] += n
        else:
            before[cid].add(seq)
    table: list[list[Any]] = [["consent_id", "revoked_at", "relied_on_before", "relied_on_after_revocation", "cited_not_relied_on"]]
    for cid, ts in sorted(revoked.items()):
        table.append([cid, ledger.iso(ts), len(before[cid]), len(after[cid]), len(only_cited[cid])])
    drill: list[list[Any]] = [["seq", "disclosed_at", "recipient", "purpose", "consent_id", "revoked_at", "data_class", "member_rows"]]
    for (seq, cid, cls), n in sorted(rows_after.items()):
        d = disclosures[seq]
        drill.append([seq, d["disclosed_at"], d["recipient"], d["purpose"], cid, ledger.iso(revoked[cid]), cls, n])
    return table, drill


def figures() -> dict[str, list[list[Any]]]:
    """Every table the report shows, as header + rows (also written as CSV)."""
    return model()["figures"]


def render(v: audit.VerifyReport, m: dict[str, Any], *, generated_at: datetime | None = None) -> str:
    """The report page (Jinja2, autoescaped) from a verify result and :func:`model`."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                      autoescape=select_autoescape(["html", "j2"], default=True), undefined=StrictUndefined,
                      trim_blocks=False, lstrip_blocks=False)
    figs = m["figures"]
    rule_tot: Counter[str] = Counter()
    for r in figs["decisions_by_rule_recipient"][1:]:
        rule_tot[f"{r[0]} ({r[2]})"] += int(r[3])
    deny_tot: Counter[str] = Counter()
    for r in figs["denials_by_class_purpose"][1:]:
        deny_tot[f"{r[0]} / {r[1]}"] += int(r[3])
    problems = [["seq", "kind", "detail", "file"]] + [[p.seq, p.kind, p.detail, p.file or ""] for p in v.problems]
    return env.get_template("audit_report.html.j2").render(
        generated_at=ledger.iso(generated_at or datetime.now(UTC)), verify=v, problems=problems, figures=figs,
        rule_totals=sorted(rule_tot.items(), key=lambda kv: -kv[1]),
        denial_totals=sorted(deny_tot.items(), key=lambda kv: -kv[1]),
        time_points=[(str(r[0]), int(r[1])) for r in figs["disclosures_over_time"][1:]],
        violations=len(figs["revocation_violations"]) - 1, disclosures=m["disclosures"], rules=m["rules"],
        consents=m["consents"])


def write_report(out_dir: str) -> dict[str, str]:
    """Write report.html and one CSV per figure into ``out_dir``; return their locations."""
    v = audit.verify()
    m = model()
    written: dict[str, str] = {}
    for name, rows in m["figures"].items():
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        uri = storage.join(out_dir, f"{name}.csv")
        storage.write_text(uri, buf.getvalue(), content_type="text/csv")
        written[name] = uri
    uri = storage.join(out_dir, "report.html")
    storage.write_text(uri, render(v, m), content_type="text/html; charset=utf-8")
    written["report"] = uri
    return written


def ensure_dir(out_dir: str) -> None:
    if not storage.is_s3(out_dir):
        Path(out_dir).mkdir(parents=True, exist_ok=True)
