"""Finish or retract what a crashed publish left half done, before publishing to a recipient again.

A delivery has three commits, in this order: the ledger's disclosure entry, the promotion of the
staged package (then the ``latest`` pointer), and the ``gold.feed_log`` row. A process killed
between them leaves one of two states, each recognised from the ledger and the publish root alone:

* **recorded, never promoted** (no manifest at the version folder the disclosure names): the data
  did not go out. A ``note`` entry ``disclosure_not_delivered`` says so (the accounting of
  disclosures then leaves it out), and a partly copied version folder (S3) is removed.
* **promoted, not logged** (the manifest is there and its SHA-256 is the one the ledger recorded):
  the package went out. ``latest`` is pointed at it if it does not already name it or a newer
  version, and the ``gold.feed_log`` row is written from the manifest and the ledger entry.

So every delivered package is in the ledger and in gold.feed_log exactly once, and ``latest`` only
ever names a complete version. :func:`reconcile` runs at the start of each publish to a recipient,
after removing the staging and spool folders crashed processes left (:func:`package.clean_staging`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs.publish import feed_log, package
from phmx import storage
from phmx.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What reconciling one recipient found: versions logged late, disclosures marked undelivered."""

    logged: list[dict[str, Any]]
    retracted: list[int]


def _disclosures(recipient: str) -> tuple[list[dict[str, Any]], set[int]]:
    from consent import audit, ledger

    entries = ledger.read_entries().to_pylist()
    mine = []
    for e in entries:
        if e["entry_type"] != "disclosure":
            continue
        p = json.loads(e["payload"])
        if p.get("recipient") == recipient:
            mine.append({**e, "payload": p})
    return mine, audit.not_delivered(entries)


def _manifest_uri(payload: dict[str, Any]) -> tuple[str, str] | None:
    for f in payload.get("files", []):
        if str(f.get("uri", "")).endswith("/" + package.MANIFEST):
            return str(f["uri"]), str(f["sha256"])
    return None


def reconcile(root: str, recipient: str) -> Outcome:
    """Clean the recipient's staging, then complete or retract every disclosure a crash left
    between its commits (see the module docstring)."""
    from consent import ledger

    package.clean_staging(root, recipient)
    disclosures, undelivered = _disclosures(recipient)
    if not disclosures:
        return Outcome([], [])
    logged_seqs = {r["ledger_seq"] for r in feed_log.read(recipient)}
    logged: list[dict[str, Any]] = []
    retracted: list[int] = []
    for e in disclosures:
        seq = int(e["seq"])
        if seq in logged_seqs or seq in undelivered:
            continue
        found = _manifest_uri(e["payload"])
        if found is None:
            continue  # not a package disclosure (nothing to promote)
        uri, sha = found
        folder = uri.rsplit("/", 1)[0]
        raw = storage.read_bytes(uri) if storage.exists(uri) else None
        if raw is None or package.sha256(raw) != sha:
            if raw is None and storage.is_s3(folder):
                package.discard_folder(folder)  # a partly copied version: never visible via latest
            ledger.append([ledger.NewEntry("note", e["run_id"], {
                "kind": "disclosure_not_delivered", "disclosure_seq": seq, "recipient": recipient,
                "reason": "the process stopped before the package was promoted"})])
            retracted.append(seq)
            log.warning("publish %s: disclosure seq %d was never delivered; recorded as such", recipient, seq)
            continue
        logged.append(_log_delivered(e, folder, raw))
    return Outcome(logged, retracted)


def _log_delivered(e: dict[str, Any], folder: str, raw: bytes) -> dict[str, Any]:
    manifest = json.loads(raw)
    version = int(str(manifest["version"]).lstrip("v"))
    base = folder.rsplit("/", 1)[0]
    published_at = datetime.fromisoformat(manifest["generated_at"])
    latest = package.read_latest(base)
    current = int(str(latest["version"]).lstrip("v")) if latest else 0
    if current < version:
        package.write_latest(base, version, package.sha256(raw), published_at)
    files = {f["name"]: f["sha256"] for f in manifest.get("files", [])} | {package.MANIFEST: package.sha256(raw)}
    size = sum(int(f.get("bytes", 0)) for f in manifest.get("files", [])) + len(raw)
    sig = storage.join(folder, package.SIGNATURE)
    size += len(storage.read_bytes(sig)) if storage.exists(sig) else 0
    delivered = package.Delivered(manifest["recipient"], manifest["feed"], manifest["period"], version, folder,
                                  package.sha256(raw), manifest.get("publisher", {}).get("key_id", ""), files, size,
                                  published_at)
    content = manifest.get("content", {})
    members = content.get("attributed_members")
    if members is None:
        members = (e["payload"].get("members") or {}).get("distinct_members", 0)
    feed_log.record(delivered, run_id=e["run_id"], ledger_seq=int(e["seq"]), cells=int(content.get("cells", 0)),
                    suppressed=int(content.get("suppressed_cells", 0)), members=int(members))
    log.warning("publish %s: v%d was delivered but not logged; logged now", manifest["recipient"], version)
    return {"recipient": manifest["recipient"], "feed": manifest["feed"], "version": version, "uri": folder,
            "ledger_seq": int(e["seq"]), "cells": int(content.get("cells", 0)),
            "suppressed_cells": int(content.get("suppressed_cells", 0)), "members": int(members)}


def already_published(recipient: str, run_id: str, feed: str | None = None) -> dict[str, Any] | None:
    """This run's delivery to ``recipient`` (of ``feed``, when a recipient gets several: a plan's
    care-team feed and its ECM package) if gold.feed_log has it (a retried task then does not
    publish a second version), else None."""
    for r in feed_log.read(recipient):
        if r["run_id"] == run_id and (feed is None or r["feed"] == feed):
            return {"recipient": recipient, "feed": r["feed"], "version": int(r["version"]), "uri": r["uri"],
                    "ledger_seq": r["ledger_seq"], "cells": int(r["cells"] or 0),
                    "suppressed_cells": int(r["suppressed_cells"] or 0), "members": int(r["members"] or 0)}
    return None
