"""Small helpers shared by tests in several folders (import as ``from testkit import ...``)."""

from __future__ import annotations


def csv_rows(header: list[str], rows: list[dict[str, str]], sep: str = ",") -> list[str]:
    """Header + rows as delimited lines (missing keys empty)."""
    return [sep.join(header)] + [sep.join(r.get(h, "") for h in header) for r in rows]


def relied_on_after_revocation() -> int:
    """Disclosures (delivered) with a member row whose rules include a consent-permit rule and that
    cites a consent revoked at or before the disclosure, counted from the stored data alone (the
    ledger, audit.disclosure_member, silver.consent and the policy's permit rules), not by the
    auditor report's code, so the report's "after revocation" figure can be checked against it."""
    import json
    from datetime import UTC, datetime

    from deltalake import DeltaTable

    from consent import audit, ledger
    from consent.disclosure_policy import load_policy
    from phmx import lakehouse
    from phmx.tables import CONSENT, DISCLOSURE_MEMBER

    permit = set(load_policy().consent_permit.values())
    consents: dict[str, dict] = {}
    for c in DeltaTable(lakehouse.table_path(CONSENT)).to_pyarrow_table(
            columns=["consent_id", "version", "status", "revoked_at"]).to_pylist():
        if c["consent_id"] not in consents or c["version"] > consents[c["consent_id"]]["version"]:
            consents[c["consent_id"]] = c
    revoked = {k: v["revoked_at"].astimezone(UTC) for k, v in consents.items()
               if v["revoked_at"] is not None and v["status"] != "active"}
    entries = ledger.read_entries().to_pylist()
    gone = audit.not_delivered(entries)
    when = {int(e["seq"]): datetime.fromisoformat(json.loads(e["payload"])["disclosed_at"].replace("Z", "+00:00"))
            for e in entries if e["entry_type"] == "disclosure" and int(e["seq"]) not in gone}
    hits = set()
    path = lakehouse.table_path(DISCLOSURE_MEMBER)
    rows = DeltaTable(path).to_pyarrow_table().to_pylist() if lakehouse.exists(DISCLOSURE_MEMBER) else []
    for r in rows:
        seq = int(r["seq"])
        if seq in when and set(r["rule_ids"] or []) & permit:
            if any(c in revoked and revoked[c] <= when[seq] for c in r["consent_ids"] or []):
                hits.add(seq)
    return len(hits)
