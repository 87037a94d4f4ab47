"""FHIR Bulk Data ``$export`` folders: one export, one submission.

A Bulk Data export (https://hl7.org/fhir/uv/bulkdata/export.html) is a set of NDJSON files, one or
more per resource type (``Patient.000.ndjson``, ``Encounter.ndjson``...), plus the manifest JSON the
server returned (``output: [{type, url, count}]``). A submitter drops the whole set into
``landing/<submitter>/fhir_bulk/<YYYY-MM>/``; the hub then

* routes each NDJSON file to the feed that takes its resource type from that submitter (the type
  comes from the manifest entry whose ``url`` ends with the file name, else from the file name,
  else from the first line), so it is validated, receipted and loaded exactly as if sent there;
* resolves references between the files of the export: an Immunization whose ``patient`` is
  ``Patient/<id>`` finds that Patient in the export's Patient files (``companions``);
* checks the manifest: files it lists but that did not arrive, and line counts that differ from
  its ``count``, are named on the manifest's receipt;
* gives a file of a resource type the hub has no feed for (Practitioner, Organization, ...) a
  receipt saying so, every record quarantined under ``fhir_type_not_taken`` (nothing is lost
  silently; the Patient-type companions are still used for references).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from jobs.ingest.landing import LandedFile, is_landing_period, submission_id
from jobs.ingest.process import FileOutcome, process_file, submission_sha
from jobs.ingest.receipts import Receipt, group_findings
from phmx.feedspec import FeedSpec

BULK_FEED = "fhir_bulk"
_TYPE_IN_NAME = re.compile(r"^([A-Z][A-Za-z]+)(?:[._-]|$)")


def same_export(relpath_a: str, relpath_b: str) -> bool:
    """Two landed files of one export folder (their rows live together: an export may split a
    resource type over several files, ``Observation.000.ndjson`` and ``Observation.001.ndjson``)."""
    a, b = relpath_a.split("/"), relpath_b.split("/")
    return len(a) == len(b) == 4 and a[1] == BULK_FEED and a[:3] == b[:3]


def is_manifest(lf: LandedFile) -> bool:
    return lf.name.lower().endswith(".json")


@dataclass
class Export:
    """The files of one export folder (one submitter, one period), read once."""

    files: dict[str, bytes]
    manifest: dict[str, Any] | None = None
    manifest_problem: str = ""
    types: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, folder: list[LandedFile], read: Callable[[str], bytes]) -> Export:
        files = {lf.name: read(lf.uri) for lf in folder}
        exp = cls(files)
        for name, data in files.items():
            if name.lower().endswith(".json"):
                try:
                    doc = orjson.loads(data)
                except orjson.JSONDecodeError:
                    exp.manifest_problem = "the manifest is not valid JSON"
                    continue
                if not isinstance(doc, dict) or not isinstance(doc.get("output"), list):
                    exp.manifest_problem = "the manifest has no output list (Bulk Data export manifest)"
                    continue
                exp.manifest = doc
        for entry in (exp.manifest or {}).get("output") or []:
            if isinstance(entry, dict) and isinstance(entry.get("url"), str) and isinstance(entry.get("type"), str):
                exp.types[entry["url"].rstrip("/").rsplit("/", 1)[-1]] = entry["type"]
        return exp

    def resource_type(self, name: str) -> str | None:
        if name in self.types:
            return self.types[name]
        m = _TYPE_IN_NAME.match(name)
        if m:
            return m.group(1)
        first = next((ln for ln in self.files.get(name, b"").splitlines() if ln.strip()), b"")
        try:
            doc = orjson.loads(first)
        except orjson.JSONDecodeError:
            return None
        rtype = doc.get("resourceType") if isinstance(doc, dict) else None
        return rtype if isinstance(rtype, str) else None

    def companions(self, name: str) -> dict[str, bytes]:
        return {n: d for n, d in self.files.items() if n != name and not n.lower().endswith(".json")}


def feed_for(rtype: str, submitter: str, specs: dict[str, FeedSpec]) -> FeedSpec | None:
    """The FHIR NDJSON feed taking ``rtype`` from this submitter (base feeds before variants)."""
    found = [s for s in specs.values() if s.format_type == "fhir_ndjson"
             and str(s.format.get("resource_type")) == rtype and s.accepts_submitter(submitter)]
    found.sort(key=lambda s: (s.variant_of is not None, s.feed))
    return found[0] if found else None


def routed_feed(lf: LandedFile, export: Export, specs: dict[str, FeedSpec]) -> str:
    """The feed a file of an export is taken as (``fhir_bulk`` for the manifest and types not taken)."""
    if is_manifest(lf):
        return BULK_FEED
    rtype = export.resource_type(lf.name)
    spec = feed_for(rtype, lf.submitter, specs) if rtype else None
    return spec.feed if spec is not None else BULK_FEED


def process_export_file(lf: LandedFile, export: Export, specs: dict[str, FeedSpec], *, received_at: datetime,
                        sha256: str) -> FileOutcome:
    """One file of an export folder: the manifest, a file routed to its type's feed, or a type not taken."""
    data = export.files[lf.name]
    if not is_landing_period(lf.period):
        r = _receipt(lf, export, sha256, received_at, "rejected")
        r.file_errors.append({"rule_id": "bad_period", "message": "the period folder must be YYYY-MM"})
        return FileOutcome(r, None)
    if is_manifest(lf):
        return _manifest_outcome(lf, export, received_at, sha256)
    rtype = export.resource_type(lf.name)
    spec = feed_for(rtype, lf.submitter, specs) if rtype else None
    if spec is None:
        return _not_taken(lf, export, data, rtype, received_at, sha256)
    routed = replace(lf, feed=spec.feed)
    out = process_file(routed, data, specs, received_at=received_at, sha256=sha256,
                       companions=export.companions(lf.name))
    out.receipt.notes.append(f"file of the Bulk Data export in {BULK_FEED}/{lf.period}, taken as feed {spec.feed}")
    declared = next((e.get("count") for e in (export.manifest or {}).get("output") or []
                     if isinstance(e, dict) and str(e.get("url", "")).endswith("/" + lf.name)), None)
    if isinstance(declared, int) and declared != out.receipt.rows_landed:
        out.receipt.notes.append(f"the manifest declares {declared} resources in this file; {out.receipt.rows_landed} "
                                 "were received")
    return out


def _receipt(lf: LandedFile, export: Export, sha256: str, received_at: datetime, status: str) -> Receipt:
    """A receipt of a file taken as no feed (the manifest, a type not taken); its submission id is
    computed as the stage computes it (the export's other files are part of the submission)."""
    sid = submission_id(lf.submitter, BULK_FEED, lf.period, lf.relpath,
                        submission_sha(sha256, export.companions(lf.name)))
    return Receipt(sid, lf.submitter, BULK_FEED, lf.period, lf.relpath, sha256, received_at.isoformat(timespec="seconds"),
                   status, format="fhir_ndjson")


def _manifest_outcome(lf: LandedFile, export: Export, received_at: datetime, sha256: str) -> FileOutcome:
    r = _receipt(lf, export, sha256, received_at, "accepted")
    if export.manifest is None:
        r.status = "rejected"
        r.file_errors.append({"rule_id": "fhir_bulk_manifest", "message": export.manifest_problem
                              or "not a Bulk Data export manifest"})
        return FileOutcome(r, None)
    listed = sorted(export.types)
    missing = [n for n in listed if n not in export.files]
    r.notes.append(f"Bulk Data export manifest: {len(listed)} output file(s); each file received has its own receipt")
    if missing:
        r.status = "accepted_with_errors"
        r.file_errors.append({"rule_id": "fhir_bulk_missing_file", "message": f"{len(missing)} file(s) listed in "
                              "the manifest did not arrive: " + ", ".join(missing[:20])})
    return FileOutcome(r, None)


def _not_taken(lf: LandedFile, export: Export, data: bytes, rtype: str | None, received_at: datetime,
               sha256: str) -> FileOutcome:
    r = _receipt(lf, export, sha256, received_at, "rejected")
    what = f"{rtype} resources" if rtype else "this file's resources (no resource type could be read)"
    msg = f"the hub has no feed for {what} from this submitter; nothing in the file was loaded"
    r.file_errors.append({"rule_id": "fhir_type_not_taken", "message": msg})
    out = FileOutcome(r, None)
    lines = [(i + 1, ln.decode("utf-8", "replace")) for i, ln in enumerate(data.splitlines()) if ln.strip()]
    lineage = {"submission_id": r.submission_id, "submitter": lf.submitter, "feed": BULK_FEED, "period": lf.period,
               "source_file": lf.relpath, "source_file_sha256": sha256}
    for row, raw in lines:
        out.quarantine.append({**lineage, "row_number": row, "rule_id": "fhir_type_not_taken", "field": "",
                               "message": msg, "raw_record": raw, "quarantined_at": received_at})
    r.rows_landed = r.rows_quarantined = len(lines)
    r.errors = group_findings([(row, "fhir_type_not_taken", "", msg, "") for row, _ in lines])
    return out
