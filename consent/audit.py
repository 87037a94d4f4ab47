"""Auditor tools: verify the ledger, account for one member's disclosures, and report.

Everything here reads the Delta tables' files directly (delta-rs for the list of live files,
pyarrow for each file) and needs no engine and no private key: an auditor verifies with the
ledger files and the exported public key alone. Each data file is read on its own, so a file
rewritten outside the project's code is still read and the bad entry named.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from consent import ledger, signing
from phmx import lakehouse, storage
from phmx.errors import LedgerError
from phmx.tables import DISCLOSURE_MEMBER


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the ledger: the entry (seq), what, and the data file holding it."""

    seq: int | None
    kind: str
    detail: str
    file: str | None = None


@dataclass
class VerifyReport:
    ok: bool
    entries: int
    checkpoints: int
    last_signed_seq: int
    unsigned_tail: int
    disclosures: int
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def first_bad(self) -> Problem | None:
        bad = [p for p in self.problems if p.seq is not None]
        return min(bad, key=lambda p: p.seq or 0) if bad else (self.problems[0] if self.problems else None)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["first_bad"] = asdict(self.first_bad) if self.first_bad else None
        return d


# ---- reading files one by one ------------------------------------------------------------------
def _files(path: str) -> list[str]:
    from deltalake import DeltaTable

    dt = DeltaTable(path, storage_options=storage.delta_storage_options(path) if storage.is_s3(path) else None)
    return sorted(dt.file_uris())


def _read_file(uri: str) -> Any:
    import pyarrow.parquet as pq

    local = uri[len("file://"):] if uri.startswith("file://") else uri
    return pq.read_table(io.BytesIO(storage.read_bytes(local)))


def _rows(path: str, problems: list[Problem]) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        files = _files(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read the log is a finding
        problems.append(Problem(None, "log_unreadable", f"Delta log cannot be read: {type(exc).__name__}: {exc}"[:300]))
        return
    for uri in files:
        try:
            rows = _read_file(uri).to_pylist()
        except Exception as exc:  # noqa: BLE001 - a corrupt file is a finding, named by its location
            problems.append(Problem(None, "file_unreadable", f"data file cannot be read: {type(exc).__name__}", uri))
            continue
        for row in rows:
            yield uri, row


# ---- verify -----------------------------------------------------------------------------------
def verify(path: str | None = None, *, public_keys: dict[str, Any] | None = None,
           members_path: str | None = None, expect_head: tuple[int, str] | None = None) -> VerifyReport:
    """Recompute the hash chain, check every checkpoint signature and every disclosure's member digest.

    ``public_keys`` (key id -> Ed25519 public key) default to the keys exported next to the
    ledger; an auditor should pass the key obtained out of band. ``expect_head`` (seq, hash) is a
    checkpoint the auditor saw before: the ledger must still contain it (catches truncation).
    """
    path = path or ledger.ledger_path()
    keys = public_keys if public_keys is not None else signing.load_public_keys()
    problems: list[Problem] = []
    warnings: list[Problem] = []
    if not _exists(path):
        warnings.append(Problem(None, "no_ledger", "no ledger has been written yet"))
        if expect_head is not None:
            problems.append(Problem(int(expect_head[0]), "expected_head_missing", "there is no ledger at all"))
        return VerifyReport(ok=not problems, entries=0, checkpoints=0, last_signed_seq=0, unsigned_tail=0,
                            disclosures=0, problems=problems, warnings=warnings)
    entries = sorted(_rows(path, problems), key=lambda fr: (fr[1].get("seq") or 0))
    rep = VerifyReport(ok=False, entries=len(entries), checkpoints=0, last_signed_seq=0, unsigned_tail=0, disclosures=0,
                       problems=problems, warnings=warnings)
    prev_hash, expected = ledger.GENESIS, 1
    hashes: dict[int, str] = {}
    digests: dict[int, tuple[str, int]] = {}
    for uri, e in entries:
        seq = int(e["seq"])
        if seq in hashes:
            problems.append(Problem(seq, "duplicate_seq", "two entries carry this seq (concurrent writer or copy)", uri))
            continue
        if seq > expected:
            problems.append(Problem(expected, "missing_entries", f"entries {expected}..{seq - 1} are missing", uri))
        elif seq < expected:
            problems.append(Problem(seq, "out_of_order", "seq lower than expected", uri))
        if e["prev_hash"] != prev_hash:
            problems.append(Problem(seq, "chain_broken", "prev_hash does not match the previous entry's hash", uri))
        rec = ledger.iso(e["recorded_at"]) if isinstance(e["recorded_at"], datetime) else str(e["recorded_at"])
        calc = ledger.entry_hash(seq, e["entry_type"], rec, e["run_id"], e["payload"], e["prev_hash"])
        if calc != e["entry_hash"]:
            problems.append(Problem(seq, "hash_mismatch", "entry content does not match its hash (altered)", uri))
        try:
            payload = json.loads(e["payload"])
            if ledger.canonical(payload).decode("utf-8") != e["payload"]:
                problems.append(Problem(seq, "payload_not_canonical", "payload is not canonical JSON", uri))
        except (ValueError, LedgerError):
            problems.append(Problem(seq, "payload_invalid", "payload is not valid JSON", uri))
            payload = {}
        if e["entry_type"] == "checkpoint":
            rep.checkpoints += 1
            _check_checkpoint(seq, payload, prev_hash, keys, uri, problems)
            if not any(p.seq is not None and p.seq <= seq for p in problems):
                rep.last_signed_seq = seq
        elif e["entry_type"] == "disclosure":
            rep.disclosures += 1
            m = payload.get("members")
            if isinstance(m, dict):
                digests[seq] = (str(m.get("digest")), int(m.get("rows", 0)))
        elif e["entry_type"] not in ledger.ENTRY_TYPES:
            problems.append(Problem(seq, "unknown_entry_type", f"entry type {e['entry_type']!r}", uri))
        hashes[seq] = e["entry_hash"]
        prev_hash = e["entry_hash"]
        expected = max(expected, seq + 1)
    last = max(hashes) if hashes else 0
    signed = max((s for (_, e) in entries for s in [int(e["seq"])] if e["entry_type"] == "checkpoint"), default=0)
    rep.unsigned_tail = max(0, last - signed)
    if rep.unsigned_tail:
        warnings.append(Problem(signed + 1, "unsigned_tail", f"{rep.unsigned_tail} entries after the last checkpoint"))
    if expect_head is not None:
        s, h = expect_head
        if hashes.get(int(s)) != h:
            problems.append(Problem(int(s), "expected_head_missing",
                                    "the checkpoint seen earlier is not in the ledger (truncated or rewritten)"))
    _check_members(members_path or lakehouse.table_path(DISCLOSURE_MEMBER), digests, problems, warnings)
    rep.ok = not problems
    return rep


def _check_checkpoint(seq: int, payload: dict[str, Any], prev_hash: str, keys: dict[str, Any], uri: str,
                      problems: list[Problem]) -> None:
    kid = payload.get("key_id")
    if payload.get("upto_seq") != seq - 1 or payload.get("head_hash") != prev_hash:
        problems.append(Problem(seq, "checkpoint_mismatch", "checkpoint does not sign the entry before it", uri))
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        problems.append(Problem(seq, "unknown_key", f"no public key for key id {kid!r}", uri))
        return
    msg = ledger.checkpoint_message(int(payload.get("upto_seq", -1)), str(payload.get("head_hash")), str(kid))
    if not signing.verify_signature(key, msg, str(payload.get("signature", ""))):
        problems.append(Problem(seq, "bad_signature", "checkpoint signature does not verify", uri))


def _check_members(path: str, digests: dict[int, tuple[str, int]], problems: list[Problem],
                   warnings: list[Problem]) -> None:
    if not digests and not _exists(path):
        return
    by_seq: dict[int, list[tuple[str, str, list[str], list[str]]]] = {}
    where: dict[int, str] = {}
    if _exists(path):
        for uri, r in _rows(path, problems):
            s = int(r["seq"])
            by_seq.setdefault(s, []).append((r["member_id"], r["data_class"], r["rule_ids"] or [], r["consent_ids"] or []))
            where[s] = uri
    for seq, (digest, n) in sorted(digests.items()):
        rows = by_seq.get(seq, [])
        if len(rows) != n or ledger.members_digest(iter(rows)) != digest:
            problems.append(Problem(seq, "members_mismatch",
                                    "disclosed-member rows do not match the digest in the ledger", where.get(seq)))
    for seq in sorted(set(by_seq) - set(digests)):
        warnings.append(Problem(seq, "orphan_members", "member rows with no disclosure entry (an interrupted append)",
                                where.get(seq)))


def _exists(path: str) -> bool:
    return ledger._exists(path)  # noqa: SLF001 - same package


# ---- accounting of disclosures -----------------------------------------------------------------
def disclosures_for_member(member_id: str, *, since: datetime | None = None, until: datetime | None = None,
                           path: str | None = None, members_path: str | None = None) -> list[dict[str, Any]]:
    """Every disclosure of one member's data: when, to whom, why, which classes, rules, consents, files."""
    import pyarrow.compute as pc

    mpath = members_path or lakehouse.table_path(DISCLOSURE_MEMBER)
    if not _exists(mpath):
        return []
    from deltalake import DeltaTable

    dt = DeltaTable(mpath, storage_options=storage.delta_storage_options(mpath) if storage.is_s3(mpath) else None)
    rows = dt.to_pyarrow_table(filters=[("member_id", "=", member_id)])
    if rows.num_rows == 0:
        return []
    seqs = set(pc.unique(rows["seq"]).to_pylist())
    entries = {int(e["seq"]): e for e in ledger.read_entries(path).to_pylist()
               if e["entry_type"] == "disclosure" and int(e["seq"]) in seqs}
    out = []
    for r in rows.to_pylist():
        e = entries.get(int(r["seq"]))
        if e is None:
            continue
        p = json.loads(e["payload"])
        at = datetime.fromisoformat(p["disclosed_at"].replace("Z", "+00:00")).replace(tzinfo=None)
        if (since and at < since) or (until and at >= until):
            continue
        out.append({"seq": int(r["seq"]), "disclosed_at": p["disclosed_at"], "recipient": p["recipient"],
                    "purpose": p["purpose"], "data_class": r["data_class"],
                    "rule_ids": sorted(r["rule_ids"] or []), "consent_ids": sorted(r["consent_ids"] or []),
                    "files": p.get("files", []), "run_id": e["run_id"]})
    out.sort(key=lambda d: (d["disclosed_at"], d["seq"], d["data_class"]))
    return out
