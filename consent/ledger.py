"""The audit ledger: append-only, hash-chained, with Ed25519-signed checkpoints.

Every entry is one row of ``audit.ledger`` (contract ``phmx.tables.LEDGER``)::

    seq, entry_type, recorded_at, run_id, payload (canonical JSON), prev_hash, entry_hash

``entry_hash = SHA-256(canonical JSON of {seq, entry_type, recorded_at, run_id, payload,
prev_hash})``; ``prev_hash`` is the previous entry's hash (64 zeros for the first). Canonical JSON
is UTF-8, keys sorted, no whitespace, no floats (see :func:`canonical`). Every append ends with a
``checkpoint`` entry whose payload signs ``(upto_seq, head_hash, key_id)`` with the ledger's
Ed25519 key (:mod:`privacy.signing`, purpose ``LEDGER``), so rewriting history needs the private key.

Which members' data went out in a disclosure is kept in ``audit.disclosure_member`` (one row per
member and class); the disclosure entry pins the row count and a SHA-256 digest over those rows.

Append only: this module has no update or delete, and the tables are created with
``delta.appendOnly=true`` so Delta writers refuse to remove rows.

Concurrency and crashes: one writer at a time, under a lease (:mod:`phmx.lease`: holder, host and
an expiry, renewed while held; a dead or expired holder is taken over, on local disks and on S3
alike). Inside the lease an append reads the last seq and hash, writes the disclosed-member rows
first, then the entries in one Delta commit; after the commit the Delta version must be exactly one
more than the one read (optimistic check). A process killed between the member rows and the entry
leaves member rows under a seq no entry has yet; the next append finds them and first records a
``note`` entry of kind ``interrupted_append`` at that seq (with their count and digest), so the
retried disclosure gets the next seq, ``phmx audit verify`` finds every row accounted for, and the
orphans never appear in a member's accounting of disclosures. The fault points named
``ledger.append.*`` (:mod:`phmx.faults`) are the commit boundaries the crash tests kill at.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from phmx import faults, lakehouse, lease, storage
from phmx.errors import LedgerError
from phmx.log import get_logger
from phmx.tables import DISCLOSURE_MEMBER, LEDGER
from privacy import signing

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)

GENESIS = "0" * 64
CHECKPOINT_CONTEXT = b"phmx-ledger-checkpoint-v1\n"
ENTRY_TYPES = ("decision_batch", "disclosure", "checkpoint", "note")
_APPEND_ONLY = {"delta.appendOnly": "true"}
_thread_lock = threading.Lock()


# ---- canonical form and hashes --------------------------------------------------------------
def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no whitespace, UTF-8. Floats are refused (not canonical)."""
    _no_floats(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _no_floats(obj: Any) -> None:
    if isinstance(obj, float):
        raise LedgerError("ledger payloads carry no floats (use integers or strings)")
    if isinstance(obj, dict):
        for v in obj.values():
            _no_floats(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            _no_floats(v)


def iso(ts: datetime) -> str:
    """A UTC timestamp as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (microseconds, as Delta stores them)."""
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(seq: int, entry_type: str, recorded_at: str, run_id: str, payload: str, prev_hash: str) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry's fields (payload as its canonical string)."""
    body = {"seq": int(seq), "entry_type": entry_type, "recorded_at": recorded_at, "run_id": run_id or "",
            "payload": payload, "prev_hash": prev_hash}
    return hashlib.sha256(canonical(body)).hexdigest()


def checkpoint_message(upto_seq: int, head_hash: str, key_id: str) -> bytes:
    """The bytes a checkpoint signs (domain-separated so a signature cannot be reused elsewhere)."""
    return CHECKPOINT_CONTEXT + canonical({"upto_seq": int(upto_seq), "head_hash": head_hash, "key_id": key_id})


def members_digest(rows: Iterator[tuple[str, str, list[str], list[str]]]) -> str:
    """SHA-256 over sorted ``member_id\\tdata_class\\trule_ids\\tconsent_ids`` lines."""
    lines = sorted(
        f"{m}\t{c}\t{','.join(sorted(r or []))}\t{','.join(sorted(k or []))}\n" for m, c, r, k in rows
    )
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8"))
    return h.hexdigest()


# ---- storage ---------------------------------------------------------------------------------
def ledger_path() -> str:
    return lakehouse.table_path(LEDGER)


def _exists(path: str) -> bool:
    return lakehouse.delta_exists(path)


def lock_uri(path: str) -> str:
    """Where the ledger writer's lease record lives: beside the table (``.ledger.lock``)."""
    parent, _, name = path.rstrip("/").rpartition("/")
    return storage.join(parent, f".{name}.lock")


@dataclass(frozen=True)
class Head:
    """The ledger's last entry as read before an append, and the Delta version it was read at."""

    seq: int
    entry_hash: str
    version: int | None


def read_head(path: str | None = None) -> Head:
    """The last seq and hash (0 and the genesis hash for an empty ledger)."""
    import pyarrow.compute as pc

    path = path or ledger_path()
    if not _exists(path):
        return Head(0, GENESIS, None)
    dt = lakehouse.open_delta(path)
    tbl = dt.to_pyarrow_table(columns=["seq", "entry_hash"])
    if tbl.num_rows == 0:
        return Head(0, GENESIS, dt.version())
    idx = pc.index(tbl["seq"], pc.max(tbl["seq"])).as_py()
    return Head(int(tbl["seq"][idx].as_py()), str(tbl["entry_hash"][idx].as_py()), dt.version())


def _write(path: str, table: pa.Table) -> None:
    lakehouse.append_arrow(path, table, configuration=_APPEND_ONLY)


@dataclass(frozen=True)
class NewEntry:
    """An entry to append: its type, run id and payload (a JSON-able dict, no floats)."""

    entry_type: str
    run_id: str
    payload: dict[str, Any]


def append(entries: list[NewEntry], *, checkpoint: bool = True,
           members: dict[int, pa.Table] | None = None, _at: datetime | None = None) -> list[int]:
    """Append entries (and a signed checkpoint) in one Delta commit; return their seqs.

    ``members`` maps an index into ``entries`` to the disclosure-member rows of that entry (columns
    member_id, data_class, rule_ids, consent_ids); they are written first, with the entry's seq,
    and the entry's payload gets their count and digest.
    """
    import pyarrow as pa

    for e in entries:
        if e.entry_type not in ENTRY_TYPES or e.entry_type == "checkpoint":
            raise LedgerError(f"unknown or reserved ledger entry type {e.entry_type!r}")
    path = ledger_path()
    signer = signing.get_signer(signing.LEDGER) if checkpoint else None
    with _thread_lock, lease.held(lock_uri(path), purpose="ledger writer") as held:
        head = read_head(path)
        now = _at or datetime.now(UTC)
        rows: list[dict[str, Any]] = []
        prev, seq = head.entry_hash, head.seq
        for orphan_seq, info in sorted(_orphans(head.seq).items()):
            while seq + 1 < orphan_seq:  # member rows beyond a gap: keep seqs contiguous
                seq += 1
                rows.append(_row(seq, "note", now, "", {"kind": "seq_skipped", "reason": "interrupted_append"}, prev))
                prev = rows[-1]["entry_hash"]
            seq += 1
            rows.append(_row(seq, "note", now, "", {"kind": "interrupted_append", "members": info}, prev))
            prev = rows[-1]["entry_hash"]
        first_new = len(rows)
        for i, e in enumerate(entries):
            seq += 1
            payload = dict(e.payload)
            if members and i in members:
                faults.point("ledger.append.before_members")
                payload["members"] = _write_members(seq, members[i])
                faults.point("ledger.append.after_members")
            rows.append(_row(seq, e.entry_type, now, e.run_id, payload, prev))
            prev = rows[-1]["entry_hash"]
        if signer is not None:
            seq += 1
            sig = signer.sign_b64(checkpoint_message(seq - 1, prev, signer.key_id))
            payload = {"upto_seq": seq - 1, "head_hash": prev, "key_id": signer.key_id, "alg": "Ed25519",
                       "signature": sig}
            rows.append(_row(seq, "checkpoint", now, entries[-1].run_id if entries else "", payload, prev))
        if not rows:
            return []
        held.check()
        faults.point("ledger.append.before_commit")
        _write(path, pa.Table.from_pylist(rows, schema=LEDGER.arrow_schema))
        faults.point("ledger.append.after_commit")
        after = read_head(path)
        expected = None if head.version is None else head.version + 1
        if after.seq != seq or (expected is not None and after.version != expected):
            raise LedgerError("concurrent ledger append detected; run `phmx audit verify`",
                              hint="ledger writers must be serialised (one Airflow pool slot)")
    log.info("ledger: appended %d entries (seq %d..%d)", len(rows), rows[0]["seq"], rows[-1]["seq"])
    return [r["seq"] for r in rows[first_new: first_new + len(entries)]]


def _orphans(head_seq: int) -> dict[int, dict[str, Any]]:
    """Disclosed-member rows under seqs after the head (an append killed after writing them):
    their count and digest per seq, for the ``interrupted_append`` note that accounts for them."""
    mpath = lakehouse.table_path(DISCLOSURE_MEMBER)
    if not _exists(mpath):
        return {}
    data = lakehouse.open_delta(mpath).to_pyarrow_table(filters=[("seq", ">", head_seq)])
    if data.num_rows == 0:
        return {}
    by_seq: dict[int, list[tuple[str, str, list[str], list[str]]]] = {}
    for r in data.to_pylist():
        by_seq.setdefault(int(r["seq"]), []).append(
            (r["member_id"], r["data_class"], r["rule_ids"] or [], r["consent_ids"] or []))
    log.warning("ledger: member rows of %d interrupted append(s) found; recording them as such", len(by_seq))
    return {s: {"table": DISCLOSURE_MEMBER.fqn, "rows": len(rs), "digest": members_digest(iter(rs))}
            for s, rs in by_seq.items()}


def _row(seq: int, entry_type: str, now: datetime, run_id: str, payload: dict[str, Any], prev: str) -> dict[str, Any]:
    text = canonical(payload).decode("utf-8")
    rec = iso(now)
    return {"seq": seq, "entry_type": entry_type, "recorded_at": now.astimezone(UTC), "run_id": run_id or "",
            "payload": text, "prev_hash": prev, "entry_hash": entry_hash(seq, entry_type, rec, run_id, text, prev)}


def _write_members(seq: int, table: pa.Table) -> dict[str, Any]:
    import pyarrow as pa

    n = table.num_rows
    cols = {c: table[c] if c in table.column_names else pa.nulls(n, pa.list_(pa.string()))
            for c in ("member_id", "data_class", "rule_ids", "consent_ids")}
    data = pa.table({"seq": pa.array([seq] * n, pa.int64()), **cols}).cast(DISCLOSURE_MEMBER.arrow_schema)
    rows = zip(*(data[c].to_pylist() for c in ("member_id", "data_class", "rule_ids", "consent_ids")),
               strict=True)
    digest = members_digest(rows)
    by_class: dict[str, int] = {}
    for c in data["data_class"].to_pylist():
        by_class[c] = by_class.get(c, 0) + 1
    if n:
        _write(lakehouse.table_path(DISCLOSURE_MEMBER), data)
    distinct = len(set(data["member_id"].to_pylist()))
    return {"table": DISCLOSURE_MEMBER.fqn, "rows": n, "distinct_members": distinct,
            "by_class": dict(sorted(by_class.items())), "digest": digest}


# ---- the two calls other stages make ----------------------------------------------------------
def record_decision_batch(*, run_id: str, policy_version: str, decisions_version: int | None,
                          counts: dict[str, int], breakdown: dict[str, list[list[Any]]] | None = None,
                          decided_at: datetime | None = None) -> int:
    """Record a decision batch: policy version, the Delta version of gold.consent_decision it wrote,
    counts, and breakdowns (by rule/recipient/decision, by class/purpose/decision) of the
    decisions in force at ``decided_at``."""
    payload: dict[str, Any] = {"table": "gold.consent_decision", "policy_version": policy_version,
                               "table_version": decisions_version, "counts": dict(sorted(counts.items())),
                               "decided_at": iso(decided_at or datetime.now(UTC))}
    for k, rows in sorted((breakdown or {}).items()):
        payload[k] = sorted([list(r) for r in rows])
    return append([NewEntry("decision_batch", run_id, payload)])[0]


def record_disclosure(spark: SparkSession | None, *, recipient: str, purpose: str, run_id: str,
                      files: list[tuple[str, str]], members_by_class: DataFrame | None,
                      rule_ids: list[str], consent_ids: list[str], at: datetime | None = None) -> int:
    """Append one disclosure (what went to whom, in which files) and a signed checkpoint; return its seq.

    ``members_by_class`` has ``member_id`` and ``data_class`` (and optionally ``rule_ids`` and
    ``consent_ids`` per member, as :func:`consent.enforce.disclosure_members` returns); it is
    collected once through Arrow (counts are per member, not per event).
    """
    at = at or datetime.now(UTC)
    payload = {
        "recipient": recipient, "purpose": purpose, "disclosed_at": iso(at),
        "files": [{"uri": u, "sha256": h} for u, h in sorted(files)],
        "rule_ids": sorted(set(rule_ids)), "consent_ids": sorted(set(consent_ids)),
    }
    members = None
    if members_by_class is not None:
        cols = [c for c in ("member_id", "data_class", "rule_ids", "consent_ids") if c in members_by_class.columns]
        members = {0: members_by_class.select(*cols).distinct().toArrow()}
    return append([NewEntry("disclosure", run_id, payload)], members=members)[0]


def checkpoint() -> int:
    """Sign the current head with a checkpoint entry of its own; return the checkpoint's seq."""
    append([], checkpoint=True)
    return read_head().seq


def read_entries(path: str | None = None) -> pa.Table:
    """The whole ledger as an Arrow table sorted by seq (via delta-rs; no engine needed)."""
    path = path or ledger_path()
    if not _exists(path):
        return LEDGER.arrow_schema.empty_table()
    return lakehouse.open_delta(path).to_pyarrow_table().sort_by("seq")
