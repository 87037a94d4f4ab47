"""Policy as data: load and validate ``consent/policies/*.yaml`` and evaluate its baseline rules.

The policy file names every data class, purpose, recipient role, grantor rule and law-based rule
(each with a stable id). Validation names the file and key of anything wrong (SpecError), so a
bad policy never reaches the engine. The baseline (what the law allows without a consent) is
evaluated here for the small grid of (data class, purpose, recipient) only: it never depends on
a member, so member-level work stays on the engine (:mod:`consent.decision_engine`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from phmx.errors import SpecError

POLICY_DIR = Path(__file__).parent / "policies"
VALUESET_DIR = Path(__file__).parent / "valuesets"
EFFECTS = ("permit", "deny", "permit_deidentified", "annotate")
ACTIONS = ("redact", "withhold")
BANDS = ("under_minor_age", "minor", "adult")
GRANTORS = ("self", "guardian", "minor_self")


@dataclass(frozen=True)
class ValueSet:
    """ICD-10-CM prefixes (dots removed, upper case) that put a code in a class."""

    name: str
    label: str
    include: tuple[str, ...]
    exclude: tuple[str, ...] = ()

    def contains(self, code: str) -> bool:
        c = code.replace(".", "").strip().upper()
        return c.startswith(self.include) and not (self.exclude and c.startswith(self.exclude))


@dataclass(frozen=True)
class DataClass:
    name: str
    any_labels: tuple[str, ...]
    all_labels: tuple[str, ...]
    explicit_consent: bool
    minor_controlled: bool
    action: str
    columns: tuple[str, ...]
    valueset: str | None
    withhold_if_labels: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    classes: tuple[str, ...]
    purposes: tuple[str, ...]
    roles: tuple[str, ...]
    effect: str
    mandatory: bool
    cite: str

    @property
    def specificity(self) -> int:
        return sum(1 for dim in (self.classes, self.purposes, self.roles) if "*" not in dim)

    def matches(self, data_class: str, purpose: str, roles: tuple[str, ...]) -> bool:
        return (("*" in self.classes or data_class in self.classes)
                and ("*" in self.purposes or purpose in self.purposes)
                and ("*" in self.roles or any(r in self.roles for r in roles)))


@dataclass(frozen=True)
class Baseline:
    """The law's answer for one (class, purpose, recipient) without any consent."""

    effect: str
    rule_ids: tuple[str, ...]
    mandatory: bool
    annotations: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    version: str
    path: str
    purposes: tuple[str, ...]
    classes: dict[str, DataClass]
    rules: tuple[Rule, ...]
    role_patterns: tuple[tuple[str, tuple[str, ...]], ...]
    outbound: tuple[tuple[str, tuple[str, ...]], ...]
    grantor_rule: str
    minor_age: int
    majority_age: int
    grantors: dict[str, dict[str, tuple[str, ...]]]
    consent_permit: dict[str, str]
    consent_deny: str
    consent_revoked: str
    consent_expired: str
    citations: dict[str, str] = field(default_factory=dict)

    # ---- recipients --------------------------------------------------------------------------
    def roles_for(self, recipient: str) -> tuple[str, ...]:
        roles: list[str] = []
        for pattern, rs in self.role_patterns:
            if fnmatch.fnmatchcase(recipient, pattern):
                roles += [r for r in rs if r not in roles]
        return tuple(roles)

    def outbound_purposes(self, recipient: str) -> tuple[str, ...]:
        out: list[str] = []
        for pattern, ps in self.outbound:
            if fnmatch.fnmatchcase(recipient, pattern):
                out += [p for p in ps if p not in out]
        return tuple(out)

    # ---- baseline ----------------------------------------------------------------------------
    def baseline(self, data_class: str, purpose: str, recipient: str) -> Baseline:
        """Most specific matching rule wins, deny over permit at equal specificity; mandatory first."""
        roles = self.roles_for(recipient)
        hits = [r for r in self.rules if r.effect != "annotate" and r.matches(data_class, purpose, roles)]
        annotations = tuple(r.id for r in self.rules if r.effect == "annotate" and r.matches(data_class, purpose, roles))
        mandatory = [r for r in hits if r.mandatory]
        pool = mandatory or hits
        if not pool:  # validation guarantees a catch-all, but be safe
            return Baseline("deny", ("DEFAULT-DENY",), False, annotations)
        top = max(r.specificity for r in pool)
        best = [r for r in pool if r.specificity == top]
        denies = [r for r in best if r.effect == "deny"]
        chosen = denies or [r for r in best if r.effect == "permit"] or best
        return Baseline(chosen[0].effect, tuple(sorted({r.id for r in chosen if r.effect == chosen[0].effect})),
                        bool(mandatory), annotations)

    def consent_rule(self, data_class: str, effect: str) -> str:
        if effect == "deny":
            return self.consent_deny
        return self.consent_permit.get(data_class, self.consent_permit["*"])

    def grid(self, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """One row per (class, purpose, recipient) with the baseline and the class's consent traits."""
        rows = []
        for recipient, purpose in sorted(set(pairs)):
            roles = self.roles_for(recipient)
            for name, dc in sorted(self.classes.items()):
                b = self.baseline(name, purpose, recipient)
                rows.append({
                    "data_class": name, "purpose": purpose, "recipient": recipient,
                    "roles": ["role:" + r for r in roles], "base_effect": b.effect,
                    "base_rules": list(b.rule_ids), "mandatory": b.mandatory, "annotations": list(b.annotations),
                    "explicit": dc.explicit_consent, "minor_controlled": dc.minor_controlled,
                    "permit_rule": self.consent_rule(name, "permit"), "deny_rule": self.consent_deny,
                })
        return rows

    def eligible_grantors(self, minor_controlled: bool, band: str) -> tuple[str, ...]:
        return self.grantors["minor_controlled" if minor_controlled else "other"][band]

    def valueset(self, name: str) -> ValueSet:
        return load_valueset(name)


# ---- loading and validation -------------------------------------------------------------------
def _fail(path: Path | str, key: str, msg: str) -> SpecError:
    return SpecError(f"{path}: {key}: {msg}", hint="fix the policy file; see docs/auditor-guide.md")


def _strs(doc: Any, path: Path, key: str) -> tuple[str, ...]:
    if doc is None:
        return ()
    if not isinstance(doc, list) or not all(isinstance(x, str) for x in doc):
        raise _fail(path, key, "must be a list of strings")
    return tuple(doc)


def _req(doc: dict[str, Any], k: str, path: Path, prefix: str) -> Any:
    if k not in doc:
        raise _fail(path, f"{prefix}{k}", "is required")
    return doc[k]


@lru_cache(maxsize=16)
def load_valueset(name: str) -> ValueSet:
    path = VALUESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"value set {name!r} not found in {VALUESET_DIR}")
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    inc = _strs(doc.get("include_prefixes"), path, "include_prefixes")
    if not inc:
        raise _fail(path, "include_prefixes", "must not be empty")
    norm = tuple(p.replace(".", "").upper() for p in inc)
    exc = tuple(p.replace(".", "").upper() for p in _strs(doc.get("exclude_prefixes"), path, "exclude_prefixes"))
    return ValueSet(str(_req(doc, "name", path, "")), str(_req(doc, "label", path, "")), norm, exc)


def _load_classes(doc: Any, path: Path) -> dict[str, DataClass]:
    if not isinstance(doc, dict) or "GENERAL" not in doc:
        raise _fail(path, "data_classes", "must be a mapping that includes GENERAL")
    out = {}
    for name, spec in doc.items():
        key = f"data_classes.{name}"
        spec = spec or {}
        labels = spec.get("labels") or {}
        on_deny = spec.get("on_deny") or {"action": "withhold"}
        action = on_deny.get("action")
        if action not in ACTIONS:
            raise _fail(path, f"{key}.on_deny.action", f"must be one of {ACTIONS}")
        vs = on_deny.get("valueset")
        if action == "redact":
            if not vs or not on_deny.get("columns"):
                raise _fail(path, f"{key}.on_deny", "redact needs columns and a valueset")
            load_valueset(vs)
        if name != "GENERAL" and not (labels.get("any") or labels.get("all")):
            raise _fail(path, f"{key}.labels", "needs any or all")
        out[name] = DataClass(
            name, _strs(labels.get("any"), path, f"{key}.labels.any"), _strs(labels.get("all"), path, f"{key}.labels.all"),
            bool(spec.get("explicit_consent", False)), bool(spec.get("minor_controlled", False)), action,
            _strs(on_deny.get("columns"), path, f"{key}.on_deny.columns"), vs,
            _strs(on_deny.get("withhold_if_labels"), path, f"{key}.on_deny.withhold_if_labels"),
        )
    return out


def _load_rules(doc: Any, path: Path, classes: dict[str, DataClass], purposes: tuple[str, ...]) -> tuple[Rule, ...]:
    if not isinstance(doc, list) or not doc:
        raise _fail(path, "rules", "must be a non-empty list")
    seen: set[str] = set()
    rules = []
    for i, r in enumerate(doc):
        key = f"rules[{i}]"
        rid = str(_req(r, "id", path, f"{key}."))
        if rid in seen:
            raise _fail(path, f"{key}.id", f"duplicate rule id {rid}")
        seen.add(rid)
        effect = _req(r, "effect", path, f"{key}.")
        if effect not in EFFECTS:
            raise _fail(path, f"{key}.effect", f"must be one of {EFFECTS}")
        cls = _strs(_req(r, "classes", path, f"{key}."), path, f"{key}.classes")
        for c in cls:
            if c != "*" and c not in classes:
                raise _fail(path, f"{key}.classes", f"unknown data class {c}")
        pur = _strs(_req(r, "purposes", path, f"{key}."), path, f"{key}.purposes")
        for p in pur:
            if p != "*" and p not in purposes:
                raise _fail(path, f"{key}.purposes", f"unknown purpose {p}")
        roles = _strs(r.get("recipient_roles", ["*"]), path, f"{key}.recipient_roles")
        rules.append(Rule(rid, cls, pur, roles, effect, bool(r.get("mandatory", False)), str(r.get("cite", ""))))
    if not any(r.specificity == 0 and r.effect == "deny" for r in rules):
        raise _fail(path, "rules", "needs a catch-all deny rule (classes, purposes, recipient_roles all '*')")
    return tuple(rules)


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy file (default: the newest file in consent/policies/)."""
    if path is None:
        files = sorted(POLICY_DIR.glob("*.yaml"))
        if not files:
            raise SpecError(f"no policy file in {POLICY_DIR}")
        path = files[-1]
    return _load(str(Path(path).resolve()))


@lru_cache(maxsize=8)
def _load(path_s: str) -> Policy:
    path = Path(path_s)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read policy: {type(exc).__name__}") from exc
    if not isinstance(doc, dict):
        raise _fail(path, "(root)", "must be a mapping")
    version = str(_req(doc, "policy_version", path, ""))
    purposes = tuple(_req(doc, "purposes", path, "") or {})
    classes = _load_classes(_req(doc, "data_classes", path, ""), path)
    rules = _load_rules(_req(doc, "rules", path, ""), path, classes, purposes)
    roles = tuple((str(_req(x, "pattern", path, "recipient_roles[].")), _strs(x.get("roles"), path, "recipient_roles[].roles"))
                  for x in doc.get("recipient_roles") or [])
    outbound = tuple((str(_req(x, "pattern", path, "outbound[].")), _strs(x.get("purposes"), path, "outbound[].purposes"))
                     for x in doc.get("outbound") or [])
    g = _req(doc, "grantors", path, "")
    grantors: dict[str, dict[str, tuple[str, ...]]] = {}
    for kind in ("minor_controlled", "other"):
        spec = _req(g, kind, path, "grantors.")
        grantors[kind] = {}
        for band in BANDS:
            vals = _strs(_req(spec, band, path, f"grantors.{kind}."), path, f"grantors.{kind}.{band}")
            bad = [v for v in vals if v not in GRANTORS]
            if bad:
                raise _fail(path, f"grantors.{kind}.{band}", f"unknown grantor {bad[0]}")
            grantors[kind][band] = vals
    cr = _req(doc, "consent_rules", path, "")
    permit = {k: str(_req(v, "id", path, f"consent_rules.permit.{k}.")) for k, v in _req(cr, "permit", path, "consent_rules.").items()}
    if "*" not in permit:
        raise _fail(path, "consent_rules.permit", "needs a '*' entry")
    citations = {r.id: r.cite for r in rules}
    for k in ("deny", "revoked", "expired"):
        citations[_req(_req(cr, k, path, "consent_rules."), "id", path, f"consent_rules.{k}.")] = cr[k].get("cite", "")
    for v in cr["permit"].values():
        citations[v["id"]] = v.get("cite", "")
    citations[str(g.get("rule_id", "CA-MINOR-SELF-CONSENT"))] = str(g.get("cite", ""))
    return Policy(
        version=version, path=str(path), purposes=purposes, classes=classes, rules=rules, role_patterns=roles,
        outbound=outbound, grantor_rule=str(g.get("rule_id", "CA-MINOR-SELF-CONSENT")),
        minor_age=int(g.get("minor_age", 12)), majority_age=int(g.get("majority_age", 18)), grantors=grantors,
        consent_permit=permit, consent_deny=str(cr["deny"]["id"]), consent_revoked=str(cr["revoked"]["id"]),
        consent_expired=str(cr["expired"]["id"]), citations=citations,
    )
