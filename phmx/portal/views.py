"""What each role sees, built on the code behind ``phmx submissions``, ``phmx feeds``, ``phmx audit``.

Every function takes the caller's organisation (never an id from the request) and returns only
that organisation's objects; ``None`` means "not yours or not there", which the routes turn into
the same 404. Viewing or downloading PHI-bearing content goes through :func:`record_access`,
which appends a ``note`` entry (``event: portal_access``) to the audit ledger with the ledger's
own append API (hash-chained, signed checkpoint) before the content is served: when the ledger
cannot be written, the content is not served.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from phmx import settings, storage
from phmx.portal.directory import Principal

SUBMISSION_ID = re.compile(r"^sub-[0-9a-f]{20}$")
FEED_OR_PERIOD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")
VERSION = re.compile(r"^v[0-9]{1,6}$")
MEMBER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
RUN_ID = "portal"


# ---- the ledger record of access ----------------------------------------------------------------
def record_access(principal: Principal, *, action: str, resource: dict[str, Any],
                  files: list[tuple[str, str]] | None = None, subject: str | None = None) -> int:
    """Append who saw or took what (and, for a member lookup, a SHA-256 of the member id, never
    the id itself) to the audit ledger; return the entry's seq."""
    from consent import ledger

    payload: dict[str, Any] = {
        "event": "portal_access", "action": action, "organisation": principal.organisation.id,
        "role": str(principal.role), "principal": principal.name,
        "at": ledger.iso(datetime.now(UTC)), "resource": resource,
        "files": [{"uri": u, "sha256": h} for u, h in sorted(files or [])],
    }
    if subject is not None:
        payload["subject_sha256"] = hashlib.sha256(subject.encode()).hexdigest()
    return ledger.append([ledger.NewEntry("note", RUN_ID, payload)])[0]


# ---- submitters ------------------------------------------------------------------------------------
def _receipt_uris(submitter: str) -> dict[str, str]:
    """submission id -> URI of its JSON receipt, for one submitter's outbox."""
    out = {}
    for f in storage.list_files(settings.load().outbox_root, f"{submitter}/receipts"):
        name = f.relpath.rsplit("/", 1)[-1]
        if name.endswith(".json") and SUBMISSION_ID.match(name[:-5]):
            out[name[:-5]] = f.uri
    return out


# The history's columns, from each JSON receipt (the receipt carries every column of bronze.submissions).
HISTORY_FIELDS = ("submission_id", "submitter", "feed", "period", "source_file_sha256", "received_at", "status",
                  "rows_landed", "rows_accepted", "rows_quarantined", "file_errors", "supersedes", "spec_version",
                  "duplicate_of", "rule_summary")


class ReceiptIndex:
    """The submission history, read from the submitters' JSON receipts and kept in memory.

    The history page is the page submitters reload most; reading ``bronze.submissions`` through
    the engine for each request cost a Delta scan per page view and could not keep up with a
    statewide morning. Intake writes one JSON receipt per submission beside the ACKs (the
    receipt holds every column of the ledger row), so the history is a listing of the
    submitter's receipts folder plus a parse of each receipt not seen before (or changed since:
    size, and modification time on a local outbox). One index per process; a receipt's summary
    is a few hundred bytes.
    """

    def __init__(self) -> None:
        self._rows: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _stamp(f: storage.StoredFile) -> tuple[int, int]:
        if storage.is_s3(f.uri):
            return f.size, 0
        try:
            return f.size, os.stat(f.uri).st_mtime_ns
        except OSError:
            return f.size, 0

    def rows(self, submitter: str) -> list[dict[str, Any]]:
        """Every receipt of one submitter (summary fields only), in no particular order."""
        out = []
        for sid, uri, stamp in self._listing(submitter):
            with self._lock:
                held = self._rows.get(uri)
            if held is None or held[0] != stamp:
                doc = json.loads(storage.read_bytes(uri))
                row = {k: doc.get(k) for k in HISTORY_FIELDS}
                row["submission_id"] = sid
                row["file"] = str(doc.get("source_file") or "").rsplit("/", 1)[-1]
                row["rule_summary"] = row["rule_summary"] or []
                row["supersedes"] = list(row["supersedes"] or [])
                held = (stamp, row)
                with self._lock:
                    self._rows[uri] = held
            out.append(dict(held[1]))
        return out

    def _listing(self, submitter: str) -> list[tuple[str, str, tuple[int, int]]]:
        out = []
        for f in storage.list_files(settings.load().outbox_root, f"{submitter}/receipts"):
            name = f.relpath.rsplit("/", 1)[-1]
            if name.endswith(".json") and SUBMISSION_ID.match(name[:-5]):
                out.append((name[:-5], f.uri, self._stamp(f)))
        return out


RECEIPTS = ReceiptIndex()
# A submitter's history is rebuilt at most once per HISTORY_TTL_S: at a busy hour hundreds of page
# views a second share one listing, and a new receipt shows within a second.
HISTORY_TTL_S = 1.0
_history_cache: dict[tuple[str, str, str, int], tuple[float, list[dict[str, Any]], bytes]] = {}
_history_lock = threading.Lock()


def _history(submitter: str, feed: str | None, period: str | None, limit: int) -> tuple[list[dict[str, Any]], bytes]:
    key = (submitter, feed or "", period or "", limit)
    now = time.monotonic()
    with _history_lock:
        held = _history_cache.get(key)
    if held is not None and now - held[0] < HISTORY_TTL_S:
        return held[1], held[2]
    rows = _build_history(submitter, feed, period, limit)
    body = orjson.dumps(rows)
    with _history_lock:
        if len(_history_cache) > 10_000:
            _history_cache.clear()
        _history_cache[key] = (now, rows, body)
    return rows, body


def submissions(principal: Principal, *, feed: str | None = None, period: str | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
    """The organisation's submission history, newest first, each with its rule summary and
    ``superseded_by`` (what ``phmx submissions`` shows), from its receipts (:class:`ReceiptIndex`).
    The rows are shared between callers for up to :data:`HISTORY_TTL_S`: do not change them."""
    submitter = principal.organisation.submitter
    return _history(submitter, feed, period, limit)[0] if submitter else []


def submissions_json(principal: Principal, *, feed: str | None = None, period: str | None = None,
                     limit: int = 200) -> bytes:
    """:func:`submissions` as JSON, serialised once per rebuild (the API's hot path)."""
    submitter = principal.organisation.submitter
    return _history(submitter, feed, period, limit)[1] if submitter else b"[]"


def _build_history(submitter: str, feed: str | None, period: str | None, limit: int) -> list[dict[str, Any]]:
    rows = RECEIPTS.rows(submitter)
    superseded_by: dict[str, str] = {}
    for r in sorted(rows, key=lambda x: (str(x["received_at"] or ""), x["submission_id"])):
        for old in r["supersedes"]:
            superseded_by[str(old)] = r["submission_id"]
    out = []
    for r in rows:
        if (feed and r["feed"] != feed) or (period and r["period"] != period):
            continue
        r["superseded_by"] = superseded_by.get(r["submission_id"], "")
        out.append(r)
    out.sort(key=lambda x: (str(x["received_at"] or ""), x["file"]), reverse=True)
    return out[:limit]


def receipt(principal: Principal, submission_id: str) -> dict[str, Any] | None:
    """The JSON receipt of one of the organisation's submissions, or None."""
    submitter = principal.organisation.submitter
    if not submitter or not SUBMISSION_ID.match(submission_id):
        return None
    uri = _receipt_uris(submitter).get(submission_id)
    return json.loads(storage.read_bytes(uri)) if uri else None


def acknowledgments(principal: Principal, submission_id: str) -> dict[str, str] | None:
    """The HL7 ACK / X12 999 and TA1 written beside the receipt (suffix -> text), or None."""
    submitter = principal.organisation.submitter
    if not submitter or not SUBMISSION_ID.match(submission_id):
        return None
    uri = _receipt_uris(submitter).get(submission_id)
    if uri is None:
        return None
    base = uri[: -len(".json")]
    folder = base.rsplit("/", 1)[0]
    out = {}
    root = settings.load().outbox_root
    for f in storage.list_files(root, folder[len(root) + 1:] if folder.startswith(root) else folder):
        if f.uri.startswith(base) and f.uri not in (base + ".json", base + ".html"):
            out[f.uri[len(base):]] = storage.read_bytes(f.uri).decode("utf-8", "replace")
    return out


# ---- recipients ------------------------------------------------------------------------------------
def packages(principal: Principal) -> list[dict[str, Any]]:
    """The organisation's packages, latest version of each feed and period (``phmx feeds --source folder``),
    with every version listed."""
    from jobs.publish.package import versions
    from jobs.publish.summary import summarize_publish

    recipient = principal.organisation.recipient
    if not recipient:
        return []
    root = settings.load().publish_root
    out = []
    for r in summarize_publish(root):
        if r["recipient"] != recipient:
            continue
        base = storage.join(root, recipient, r["feed"], r["period"])
        out.append({"feed": r["feed"], "period": r["period"], "latest": r["version"],
                    "versions": [f"v{n}" for n in versions(base)], "published_at": r["published_at"],
                    "files": r["files"], "cells": r["cells"], "suppressed_cells": r["suppressed_cells"],
                    "resources": r["resources"], "key_id": r["key_id"]})
    return out


def _package_dir(principal: Principal, feed: str, period: str, version: str) -> str | None:
    """Where the caller's package version lives (a local folder or an ``s3://`` prefix of the
    publish zone), or None when it is not the caller's or has no manifest."""
    from jobs.publish.package import MANIFEST

    recipient = principal.organisation.recipient
    if not recipient or not (FEED_OR_PERIOD.match(feed) and FEED_OR_PERIOD.match(period) and VERSION.match(version)):
        return None
    d = storage.join(settings.load().publish_root, recipient, feed, period, version)
    if storage.is_s3(d):
        return d if storage.exists(storage.join(d, MANIFEST)) else None
    return d if Path(d, MANIFEST).is_file() else None


def package(principal: Principal, feed: str, period: str, version: str) -> dict[str, Any] | None:
    """One package version: its manifest's file list and the result of verifying it (``phmx feeds verify``),
    read where the publish zone keeps it (local or S3, streamed)."""
    from jobs.publish.package import MANIFEST, SIGNATURE
    from jobs.publish.verify import PackageInvalid, verify_stored

    d = _package_dir(principal, feed, period, version)
    if d is None:
        return None
    manifest = json.loads(storage.read_bytes(storage.join(d, MANIFEST)).decode("utf-8"))
    try:
        v = verify_stored(d)
        verification = {"ok": True, "key_id": v.key_id, "fingerprint": v.fingerprint, "files": v.files,
                        "detail": "signature valid; every file matches its SHA-256"}
    except PackageInvalid as exc:
        verification = {"ok": False, "detail": str(exc).replace(d.rstrip("/") + "/", "")}
    sizes = {f.relpath: f.size for f in storage.list_files(d) if f.relpath in (MANIFEST, SIGNATURE)}
    return {"feed": feed, "period": period, "version": version, "verification": verification,
            "files": [{"name": f["name"], "bytes": f["bytes"], "sha256": f["sha256"]}
                      for f in manifest.get("files", [])] + [{"name": n, "bytes": sizes.get(n, 0), "sha256": ""}
                                                              for n in (MANIFEST, SIGNATURE)]}


def package_file(principal: Principal, feed: str, period: str, version: str, name: str) -> tuple[str, str] | None:
    """(location, sha256) of a file the package's manifest lists (or the manifest and its signature),
    else None. The location is a local path or an ``s3://`` URI (:func:`phmx.storage.iter_chunks`)."""
    from jobs.publish.package import MANIFEST, SIGNATURE

    d = _package_dir(principal, feed, period, version)
    if d is None:
        return None
    manifest = json.loads(storage.read_bytes(storage.join(d, MANIFEST)).decode("utf-8"))
    listed = {str(f["name"]): str(f["sha256"]) for f in manifest.get("files", [])}
    if name not in listed and name not in (MANIFEST, SIGNATURE):
        return None
    if ".." in Path(name).parts or Path(name).is_absolute():
        return None
    uri = storage.join(d, name)
    if storage.is_s3(uri):
        if not storage.exists(uri):
            return None
    else:
        p = Path(uri)
        if not p.is_file() or Path(d).resolve() not in p.resolve().parents:
            return None
    return uri, listed.get(name) or _sha256(uri)


def _sha256(uri: str) -> str:
    h = hashlib.sha256()
    for chunk in storage.iter_chunks(uri):
        h.update(chunk)
    return h.hexdigest()


def publish_key() -> dict[str, Any]:
    """The hub's published feed-signing public key(s) and fingerprint(s) (``<publish>/_keys``)."""
    from jobs.publish.package import published_keys_root

    out = []
    root = published_keys_root()
    for f in storage.list_files(root):
        if f.relpath.endswith(".json"):
            meta = json.loads(storage.read_bytes(f.uri))
            pem_uri = f.uri[: -len(".json")] + ".pem"
            pem = storage.read_bytes(pem_uri).decode() if storage.exists(pem_uri) else ""
            out.append({**meta, "pem": pem})
    return {"keys": out}


# ---- auditors --------------------------------------------------------------------------------------
def ledger_status() -> dict[str, Any]:
    """``phmx audit verify``: the chain, checkpoint signatures and digests, and the head to note down."""
    from consent import audit, ledger

    rep = audit.verify()
    head = ledger.read_head()
    return {**rep.to_dict(), "head": f"{head.seq}:{head.entry_hash}" if head.seq else None}


def disclosures(member_id: str, *, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """``phmx audit disclosures``: every disclosure of one member's data."""
    from consent import audit

    return audit.disclosures_for_member(member_id, since=since, until=until)
