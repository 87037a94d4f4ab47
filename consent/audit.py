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

from consent import ledger
from phmx import lakehouse, storage
from phmx.errors import LedgerError, PhmxError
from phmx.tables import DISCLOSURE_MEMBER
from privacy import signing


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
    head_seq: int = 0
    head_hash: str = ""

    @property
    def first_bad(self) -> Problem | None:
        bad = [p for p in self.problems if p.seq is not None]
        return min(bad, key=lambda p: p.seq or 0) if bad else (self.problems[0] if self.problems else None)

    @property
    def head(self) -> str:
        """``SEQ:HASH`` of the last entry: what an auditor keeps and passes as ``--expect-head`` later."""
        return f"{self.head_seq}:{self.head_hash}" if self.head_hash else ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["first_bad"] = asdict(self.first_bad) if self.first_bad else None
        d["head"] = self.head
        return d


def _is_fatal(exc: BaseException) -> bool:
    """Errors verify must let through; anything else reading a ledger is a finding, not a crash
    (delta-rs reports some corrupt inputs as a Rust panic, which is not an ``Exception``)."""
    return isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError)


# ---- reading files one by one ------------------------------------------------------------------
def _files(path: str) -> list[str]:
    return sorted(lakehouse.open_delta(path).file_uris())


def _read_file(uri: str) -> Any:
    import pyarrow.parquet as pq

    local = uri[len("file://"):] if uri.startswith("file://") else uri
    return pq.read_table(io.BytesIO(storage.read_bytes(local)))


def _rows(path: str, problems: list[Problem]) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        files = _files(path)
    except BaseException as exc:  # noqa: BLE001 - any failure to read the log is a finding
        if _is_fatal(exc):
            raise
        problems.append(Problem(None, "log_unreadable", f"Delta log cannot be read: {type(exc).__name__}: {exc}"[:300],
                                storage.join(path, "_delta_log")))
        return
    for uri in files:
        try:
            rows = _read_file(uri).to_pylist()
        except BaseException as exc:  # noqa: BLE001 - a corrupt file is a finding, named by its location
            if _is_fatal(exc):
                raise
            problems.append(Problem(None, "file_unreadable", f"data file cannot be read: {type(exc).__name__}", uri))
            continue
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(Problem(None, "entry_malformed", f"row {i} is not a record", uri))
                continue
            yield uri, row


_ENTRY_FIELDS = ("seq", "entry_type", "recorded_at", "run_id", "payload", "prev_hash", "entry_hash")


def _entry(uri: str, i: int, e: dict[str, Any], problems: list[Problem]) -> dict[str, Any] | None:
    """One ledger row with every field present and of its type, or None (and a problem naming the
    row's position and field) when it is malformed: a damaged row is tamper evidence, never a crash."""
    seq = e.get("seq")
    where = f"row {i}"
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        problems.append(Problem(None, "entry_malformed", f"{where}: seq is missing or not a positive integer", uri))
        return None
    for name in _ENTRY_FIELDS[1:]:
        value = e.get(name)
        if name == "recorded_at":
            ok = isinstance(value, datetime | str)
        elif name == "run_id":
            ok = value is None or isinstance(value, str)
        else:
            ok = isinstance(value, str)
        if not ok:
            problems.append(Problem(seq, "entry_malformed", f"{where}: field {name} is missing or of the wrong type",
                                    uri))
            return None
    return e


# ---- verify -----------------------------------------------------------------------------------
def verify(path: str | None = None, *, public_keys: dict[str, Any] | None = None,
           members_path: str | None = None, expect_head: tuple[int, str] | None = None) -> VerifyReport:
    """Recompute the hash chain, check every checkpoint signature and every disclosure's member digest.

    ``public_keys`` (key id -> Ed25519 public key) default to the keys exported next to the
    ledger; an auditor should pass the key obtained out of band. ``expect_head`` (seq, hash) is a
    checkpoint the auditor saw before: the ledger must still contain it (catches truncation).
    A missing or empty ledger is a failure (there is nothing to vouch for), and so is any row or
    file that cannot be read: each is reported with its location, never raised.
    """
    path = path or ledger.ledger_path()
    problems: list[Problem] = []
    warnings: list[Problem] = []
    rep = VerifyReport(ok=False, entries=0, checkpoints=0, last_signed_seq=0, unsigned_tail=0, disclosures=0,
                       problems=problems, warnings=warnings)
    if not _exists(path):
        problems.append(Problem(None, "no_ledger", "no ledger at this location (nothing has been recorded, or the "
                                "path is wrong)", path))
        return rep
    try:
        keys = public_keys if public_keys is not None else signing.load_public_keys(signing.LEDGER)
    except PhmxError as exc:
        problems.append(Problem(None, "public_key_unreadable", str(exc)[:300]))
        keys = {}
    raw = list(_rows(path, problems))
    entries = [(u, e) for i, (u, r) in enumerate(raw) if (e := _entry(u, i, r, problems)) is not None]
    entries.sort(key=lambda fr: fr[1]["seq"])
    rep.entries = len(entries)
    if not raw and not problems:
        problems.append(Problem(None, "empty_ledger", "the ledger table exists but holds no entries", path))
    prev_hash, expected = ledger.GENESIS, 1
    hashes: dict[int, str] = {}
    digests: dict[int, tuple[str, int]] = {}
    for uri, e in entries:
        seq = int(e["seq"])
        try:
            if _verify_entry(rep, uri, e, seq, prev_hash, expected, hashes, digests, keys):
                continue
        except Exception as exc:  # noqa: BLE001 - a malformed entry is tamper evidence, not a crash
            problems.append(Problem(seq, "entry_malformed", f"entry cannot be checked: {type(exc).__name__}", uri))
        hashes[seq] = e["entry_hash"]
        prev_hash = e["entry_hash"]
        expected = max(expected, seq + 1)
    last = max(hashes) if hashes else 0
    if last:
        rep.head_seq, rep.head_hash = last, hashes[last]
    signed = max((int(e["seq"]) for (_, e) in entries if e["entry_type"] == "checkpoint"), default=0)
    rep.unsigned_tail = max(0, last - signed)
    if rep.unsigned_tail:
        warnings.append(Problem(signed + 1, "unsigned_tail", f"{rep.unsigned_tail} entries after the last checkpoint"))
    if expect_head is not None:
        s, h = expect_head
        if hashes.get(int(s)) != h:
            problems.append(Problem(int(s), "expected_head_missing",
                                    "the checkpoint seen earlier is not in the ledger (truncated or rewritten)"))
    try:
        _check_members(members_path or lakehouse.table_path(DISCLOSURE_MEMBER), digests, problems, warnings)
    except Exception as exc:  # noqa: BLE001
        problems.append(Problem(None, "members_unreadable", f"disclosed-member rows cannot be checked: "
                                f"{type(exc).__name__}", members_path or lakehouse.table_path(DISCLOSURE_MEMBER)))
    rep.ok = not problems
    return rep


def _verify_entry(rep: VerifyReport, uri: str, e: dict[str, Any], seq: int, prev_hash: str, expected: int,
                  hashes: dict[int, str], digests: dict[int, tuple[str, int]], keys: dict[str, Any]) -> bool:
    """Check one entry against the chain; True when it must be skipped (a duplicate seq)."""
    problems = rep.problems
    if seq in hashes:
        problems.append(Problem(seq, "duplicate_seq", "two entries carry this seq (concurrent writer or copy)", uri))
        return True
    if seq > expected:
        problems.append(Problem(expected, "missing_entries", f"entries {expected}..{seq - 1} are missing", uri))
    elif seq < expected:
        problems.append(Problem(seq, "out_of_order", "seq lower than expected", uri))
    if e["prev_hash"] != prev_hash:
        problems.append(Problem(seq, "chain_broken", "prev_hash does not match the previous entry's hash", uri))
    rec = ledger.iso(e["recorded_at"]) if isinstance(e["recorded_at"], datetime) else str(e["recorded_at"])
    calc = ledger.entry_hash(seq, e["entry_type"], rec, e["run_id"] or "", e["payload"], e["prev_hash"])
    if calc != e["entry_hash"]:
        problems.append(Problem(seq, "hash_mismatch", "entry content does not match its hash (altered)", uri))
    payload: Any
    try:
        payload = json.loads(e["payload"])
        if ledger.canonical(payload).decode("utf-8") != e["payload"]:
            problems.append(Problem(seq, "payload_not_canonical", "payload is not canonical JSON", uri))
    except (ValueError, LedgerError, RecursionError):
        problems.append(Problem(seq, "payload_invalid", "payload is not valid JSON", uri))
        payload = {}
    if not isinstance(payload, dict):
        problems.append(Problem(seq, "payload_invalid", "payload is not a JSON object", uri))
        payload = {}
    members = payload.get("members")
    if isinstance(members, dict) and e["entry_type"] in ("disclosure", "note"):
        rows = members.get("rows", 0)
        digests[seq] = (str(members.get("digest")), rows if isinstance(rows, int) else -1)
    if e["entry_type"] == "checkpoint":
        rep.checkpoints += 1
        _check_checkpoint(seq, payload, prev_hash, keys, uri, problems)
        if not any(p.seq is not None and p.seq <= seq for p in problems):
            rep.last_signed_seq = seq
    elif e["entry_type"] == "disclosure":
        rep.disclosures += 1
    elif e["entry_type"] not in ledger.ENTRY_TYPES:
        problems.append(Problem(seq, "unknown_entry_type", f"entry type {e['entry_type']!r}", uri))
    return False


def _check_checkpoint(seq: int, payload: dict[str, Any], prev_hash: str, keys: dict[str, Any], uri: str,
                      problems: list[Problem]) -> None:
    kid = payload.get("key_id")
    if payload.get("upto_seq") != seq - 1 or payload.get("head_hash") != prev_hash:
        problems.append(Problem(seq, "checkpoint_mismatch", "checkpoint does not sign the entry before it", uri))
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        problems.append(Problem(seq, "unknown_key", f"no public key for key id {kid!r}", uri))
        return
    upto = payload.get("upto_seq")
    if not isinstance(upto, int):
        return  # already reported as checkpoint_mismatch
    msg = ledger.checkpoint_message(upto, str(payload.get("head_hash")), str(kid))
    if not signing.verify_b64(key, msg, str(payload.get("signature", ""))):
        problems.append(Problem(seq, "bad_signature", "checkpoint signature does not verify", uri))


def _check_members(path: str, digests: dict[int, tuple[str, int]], problems: list[Problem],
                   warnings: list[Problem]) -> None:
    if not digests and not _exists(path):
        return
    by_seq: dict[int, list[tuple[str, str, list[str], list[str]]]] = {}
    where: dict[int, str] = {}
    if _exists(path):
        for i, (uri, r) in enumerate(_rows(path, problems)):
            s, m, c = r.get("seq"), r.get("member_id"), r.get("data_class")
            rules, consents = r.get("rule_ids") or [], r.get("consent_ids") or []
            if not (isinstance(s, int) and isinstance(m, str) and isinstance(c, str)
                    and isinstance(rules, list) and isinstance(consents, list)):
                problems.append(Problem(s if isinstance(s, int) else None, "member_row_malformed",
                                        f"row {i}: a field is missing or of the wrong type", uri))
                continue
            by_seq.setdefault(s, []).append((m, c, [str(x) for x in rules], [str(x) for x in consents]))
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
    rows = lakehouse.open_delta(mpath).to_pyarrow_table(filters=[("member_id", "=", member_id)])
    if rows.num_rows == 0:
        return []
    seqs = set(pc.unique(rows["seq"]).to_pylist())
    all_entries = ledger.read_entries(path).to_pylist()
    undelivered = not_delivered(all_entries)
    # Only disclosures that went out: member rows of an interrupted append (recorded by a note)
    # and disclosures whose package was never delivered are not disclosures of this member.
    entries = {int(e["seq"]): e for e in all_entries
               if e["entry_type"] == "disclosure" and int(e["seq"]) in seqs and int(e["seq"]) not in undelivered}
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


def not_delivered(entries: list[dict[str, Any]]) -> set[int]:
    """Seqs of disclosures a later ``note`` says were never delivered (the package was not promoted)."""
    out: set[int] = set()
    for e in entries:
        if e["entry_type"] != "note":
            continue
        try:
            p = json.loads(e["payload"])
        except ValueError:
            continue
        if isinstance(p, dict) and p.get("kind") == "disclosure_not_delivered" and isinstance(p.get("disclosure_seq"), int):
            out.add(p["disclosure_seq"])
    return out


def member_known(member_id: str) -> bool:
    """Whether ``member_id`` is a member of the hub (gold.member), read with delta-rs (no engine)."""
    if not lakehouse.delta_exists("gold.member"):
        return False
    found = lakehouse.open_delta("gold.member").to_pyarrow_table(columns=["member_id"],
                                                                 filters=[("member_id", "=", member_id)])
    return found.num_rows > 0
