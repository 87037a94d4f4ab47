"""FHIR Consent resources (R4 via fhir.resources' R4B models, and R5) -> silver.consent rows.

Resources arrive as NDJSON files (one resource per line). Each is validated with the
fhir.resources model of its version, then normalised to the registry's provision tree:

* R4/R4B: ``patient``, ``dateTime``, ``provision`` (one root with ``type``; nested provisions
  carry their own ``type``, or the opposite of their parent's when absent). The consent period
  is the root provision's ``period``.
* R5: ``subject``, ``date``, ``period``, ``decision`` (the base rule; top-level provisions are
  exceptions to it, each nested level negating the one above, per the R5 specification).

Purposes from ``provision.purpose`` (v3-ActReason codes), data classes from
``provision.securityLabel`` codes mapped through the policy's class labels (42CFRPart2 -> SUD,
PSY -> MH, ...), recipients from ``provision.actor`` references (``Organization/<id>``) or
identifiers; an actor identifier ``urn:phmx:recipient-role|<role>`` names a role. A security
label no class knows: a permit is dropped for safety (it cannot be shown to cover anything), a
deny applies to all classes. Status ``inactive`` is a revocation effective at ``meta.lastUpdated``
(or the root period end). The grantor is ``guardian`` when the performer/grantor is a
RelatedPerson, else ``self``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

from consent.disclosure_policy import Policy, load_policy
from phmx.errors import ConsentError

ROLE_SYSTEM = "urn:phmx:recipient-role"
STATUS = {"active": "active", "inactive": "inactive", "rejected": "rejected", "entered-in-error": "entered-in-error",
          "draft": "draft", "proposed": "draft", "not-done": "rejected"}


def detect_version(obj: dict[str, Any]) -> str:
    """``R5`` if the resource uses R5-only elements, else ``R4``."""
    if any(k in obj for k in ("subject", "decision", "grantor", "grantee", "regulatoryBasis", "date")):
        return "R5"
    return "R4"


def parse(obj: dict[str, Any], version: str = "auto") -> Any:
    """Validate a Consent resource with the fhir.resources model of its version."""
    v = detect_version(obj) if version == "auto" else version.upper()
    try:
        if v == "R5":
            from fhir.resources.consent import Consent

            return v, Consent.model_validate(obj)
        from fhir.resources.R4B.consent import Consent as ConsentR4B

        return v, ConsentR4B.model_validate(obj)
    except Exception as exc:  # noqa: BLE001 - re-raised without the resource's content
        raise ConsentError(f"invalid FHIR {v} Consent resource: {type(exc).__name__}") from None


def _dt(v: Any) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo else v
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day)
    s = str(v)
    if len(s) == 10:
        return datetime.fromisoformat(s)
    d = datetime.fromisoformat(s.replace("Z", "+00:00"))
    return d.astimezone(UTC).replace(tzinfo=None) if d.tzinfo else d


def _ref_id(ref: Any) -> str | None:
    if ref is None:
        return None
    if getattr(ref, "reference", None):
        return str(ref.reference).rsplit("/", 1)[-1]
    ident = getattr(ref, "identifier", None)
    return str(ident.value) if ident is not None and ident.value else None


def _recipient(actor: Any) -> str | None:
    ref = actor.reference
    ident = getattr(ref, "identifier", None)
    if ident is not None and ident.system == ROLE_SYSTEM:
        return f"role:{ident.value}"
    return _ref_id(ref)


def _codes(concepts: list[Any] | None) -> list[str]:
    out = []
    for c in concepts or []:
        code = getattr(c, "code", None)
        if code:
            out.append(str(code))
        for cd in getattr(c, "coding", None) or []:
            if cd.code:
                out.append(str(cd.code))
    return out


def _classes(labels: list[str], policy: Policy) -> tuple[list[str], bool]:
    """Policy data classes a provision's security labels name; and whether any label was unknown.

    A class is named when the labels meet its rule (one of ``any``, all of ``all``), or by its own
    name (e.g. ``SUDCN``).
    """
    got = set(labels)
    out, known = set(), set()
    for name, dc in policy.classes.items():
        if name in got:
            out.add(name)
            known.add(name)
            continue
        if not dc.any_labels and not dc.all_labels:
            continue
        if (not dc.any_labels or got & set(dc.any_labels)) and set(dc.all_labels) <= got:
            out.add(name)
            known |= (got & set(dc.any_labels)) | set(dc.all_labels)
    return sorted(out), bool(got - known)


def _nodes(prov: Any, effect: str, path: str, depth: int, parent: dict[str, Any] | None, policy: Policy,
           out: list[dict[str, Any]]) -> None:
    own_purposes = _codes(prov.purpose)
    own_recips = [r for r in (_recipient(a) for a in prov.actor or []) if r]
    own_classes, unknown = _classes(_codes(prov.securityLabel), policy)
    period = getattr(prov, "period", None)
    inherit = parent or {"purposes": [], "recipients": [], "data_classes": [], "period_start": None, "period_end": None}
    node = {
        "path": path, "parent": parent["path"] if parent else None, "depth": depth, "effect": effect,
        "purposes": sorted(set(own_purposes)) or inherit["purposes"],
        "recipients": sorted(set(own_recips)) or inherit["recipients"],
        "data_classes": own_classes or inherit["data_classes"],
        "period_start": (_iso(_dt(period.start)) if period and period.start else None) or inherit["period_start"],
        "period_end": (_iso(_dt(period.end)) if period and period.end else None) or inherit["period_end"],
    }
    skip = unknown and effect == "permit" and not own_classes
    if unknown and effect == "deny":
        node["data_classes"] = []
    if not skip:
        out.append(node)
    for i, child in enumerate(prov.provision or []):
        ctype = getattr(child, "type", None)
        ceffect = str(ctype) if ctype in ("permit", "deny") else ("deny" if effect == "permit" else "permit")
        _nodes(child, ceffect, f"{path}.{i}", depth + 1, node, policy, out)


def _iso(d: datetime | None) -> str | None:
    return d.strftime("%Y-%m-%dT%H:%M:%S") if d else None


def normalise(obj: dict[str, Any], *, source: str, recorded_at: datetime, version: str = "auto",
              policy: Policy | None = None) -> dict[str, Any]:
    """One silver.consent row (without version number) from one Consent resource."""
    policy = policy or load_policy()
    v, c = parse(obj, version)
    nodes: list[dict[str, Any]] = []
    if v == "R5":
        subject, when = c.subject, c.date
        period = c.period
        grantors = c.grantor or []
        base = str(c.decision or "permit")
        root: dict[str, Any] = {"path": "0", "parent": None, "depth": 0, "effect": base, "purposes": [], "recipients": [],
                "data_classes": [], "period_start": None, "period_end": None}
        # The base decision applies to everything the consent scopes; each provision negates it.
        for i, p in enumerate(c.provision or []):
            _nodes(p, "deny" if base == "permit" else "permit", f"0.{i}", 1, root, policy, nodes)
        nodes.insert(0, root)
        policy_code = ",".join(_codes(c.regulatoryBasis))
    else:
        subject, when = c.patient, c.dateTime
        period = c.provision.period if c.provision else None
        grantors = c.performer or []
        if c.provision is not None:
            rtype = str(c.provision.type) if c.provision.type else "deny"
            _nodes(c.provision, rtype, "0", 0, None, policy, nodes)
        policy_code = ",".join(_codes([c.policyRule]) if c.policyRule else [])
    person = _ref_id(subject)
    if not person:
        raise ConsentError("FHIR Consent without a patient/subject reference")
    grantor = "guardian" if any(str(getattr(g, "reference", "") or "").startswith("RelatedPerson/") for g in grantors) \
        else "self"
    status = STATUS.get(str(c.status), "rejected")
    last_updated = _dt(c.meta.lastUpdated) if c.meta and c.meta.lastUpdated else None
    start = _dt(period.start) if period and period.start else _dt(when)
    end = _dt(period.end) if period and period.end else None
    revoked = (last_updated or end or recorded_at) if status == "inactive" else None
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return {
        "consent_id": f"{source}:{c.id}", "source": source, "source_person_id": person, "grantor": grantor,
        "status": status, "period_start": start, "period_end": end, "recorded_at": last_updated or recorded_at,
        "provisions": json.dumps(nodes, sort_keys=True), "revoked_at": revoked, "source_format": f"fhir_{v.lower()}",
        "policy": policy_code or None, "content_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "meta_version": int(c.meta.versionId) if c.meta and c.meta.versionId and str(c.meta.versionId).isdigit() else None,
    }


def read_ndjson(text: str, *, source: str, recorded_at: datetime, submission_id: str, period: str,
                version: str = "auto") -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Rows for every valid line, and (line number, reason) for every rejected one (no content)."""
    policy = load_policy()
    rows, errors = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if obj.get("resourceType") != "Consent":
                raise ConsentError("not a Consent resource")
            row = normalise(obj, source=source, recorded_at=recorded_at, version=version, policy=policy)
        except (ValueError, ConsentError) as exc:
            errors.append((n, str(exc) if isinstance(exc, ConsentError) else "invalid JSON"))
            continue
        row.update(submission_id=submission_id, period=period, row_number=n)
        rows.append(row)
    return rows, errors
