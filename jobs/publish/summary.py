"""What is published, read from the publish root itself (for the demo and ``phmx feeds``)."""

from __future__ import annotations

import json
from typing import Any

from jobs.publish.package import CLAIMS, KEYS, LATEST, MANIFEST, STAGING
from phmx import storage


def summarize_publish(publish_root: str) -> list[dict[str, Any]]:
    """One dict per (recipient, feed, period) with its latest complete version.

    Keys: recipient, feed, period, version, versions (how many exist), path (the version folder),
    manifest, published_at, files, report (path of report.html, LHJ feeds), cells,
    suppressed_cells, resources (plan feeds). Works on a local folder or an ``s3://`` prefix.
    """
    out: list[dict[str, Any]] = []
    files = list(storage.list_files(publish_root))
    seen: dict[tuple[str, str, str], set[str]] = {}
    for f in files:
        parts = f.relpath.split("/")
        if len(parts) > 4 and parts[0] not in (STAGING, KEYS, CLAIMS) and parts[3].startswith("v"):
            seen.setdefault((parts[0], parts[1], parts[2]), set()).add(parts[3])
    for f in files:
        parts = f.relpath.split("/")
        if len(parts) != 4 or parts[-1] != LATEST or parts[0] in (STAGING, KEYS, CLAIMS):
            continue
        recipient, feed, period, _ = parts
        base = storage.join(publish_root, recipient, feed, period)
        pointer = json.loads(storage.read_bytes(f.uri))
        version = str(pointer["version"])
        folder = storage.join(base, version)
        manifest = json.loads(storage.read_bytes(storage.join(folder, MANIFEST)))
        names = [x["name"] for x in manifest.get("files", [])]
        content = manifest.get("content", {})
        n_versions = len(seen.get((recipient, feed, period), ()))
        out.append({
            "recipient": recipient, "feed": feed, "period": period, "version": version, "versions": n_versions,
            "path": folder, "manifest": storage.join(folder, MANIFEST), "published_at": pointer.get("published_at"),
            "files": len(names) + 2,
            "report": storage.join(folder, manifest["report"]) if manifest.get("report") in names else None,
            "cells": content.get("cells"), "suppressed_cells": content.get("suppressed_cells"),
            "resources": content.get("resources"), "key_id": manifest.get("publisher", {}).get("key_id"),
        })
    return sorted(out, key=lambda r: (r["recipient"], r["feed"], r["period"]))
