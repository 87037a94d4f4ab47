"""Policy as data: load and validate ``consent/policies/*.yaml`` and evaluate its baseline rules.

The policy file names every data class, purpose, recipient role, grantor rule and law-based rule
(each with a stable id). The file is a pydantic model (phmx.yamlspec: unknown keys refused, the
rules across keys as validators) and validation names the file and key of anything wrong
(SpecError), so a bad policy never reaches the engine. The baseline (what the law allows without a consent) is
evaluated here for the small grid of (data class, purpose, recipient) only: it never depends on
a member, so member-level work stays on the engine (:mod:`consent.decision_engine`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictStr, field_validator, model_validator

from phmx.errors import SpecError
from phmx.yamlspec import Spec, read_yaml, validate

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


# ---- the files, as models ----------------------------------------------------------------------
HINT = "fix the policy file; see docs/auditor-guide.md"
Strs = tuple[StrictStr, ...]
Grantor = Literal["self", "guardian", "minor_self"]


class ValueSetDoc(Spec):
    name: str
    label: str
    version: str = ""
    system: str = ""
    include_prefixes: Strs = Field(min_length=1)
    exclude_prefixes: Strs = ()


class Labels(Spec):
    any: Strs = ()
    all: Strs = ()


class OnDeny(Spec):
    action: Literal["redact", "withhold"]
    columns: Strs = ()
    valueset: str | None = None
    withhold_if_labels: Strs = ()

    @model_validator(mode="after")
    def _redact_complete(self) -> OnDeny:
        if self.action == "redact":
            if not self.valueset or not self.columns:
                raise ValueError("redact needs columns and a valueset")
            load_valueset(self.valueset)  # a missing or bad value set is its own SpecError
        return self


class DataClassDoc(Spec):
    description: str = ""
    labels: Labels = Labels()
    explicit_consent: bool = False
    minor_controlled: bool = False
    on_deny: OnDeny = OnDeny(action="withhold")


class RuleDoc(Spec):
    id: str
    classes: Strs
    purposes: Strs
    recipient_roles: Strs = ("*",)
    effect: Literal["permit", "deny", "permit_deidentified", "annotate"]
    mandatory: bool = False
    cite: str = ""


class RolePattern(Spec):
    pattern: str
    roles: Strs = ()


class OutboundPattern(Spec):
    pattern: str
    purposes: Strs = ()


class GrantorBands(Spec):
    under_minor_age: tuple[Grantor, ...]
    minor: tuple[Grantor, ...]
    adult: tuple[Grantor, ...]


class Grantors(Spec):
    rule_id: str = "CA-MINOR-SELF-CONSENT"
    cite: str = ""
    minor_age: int = 12
    majority_age: int = 18
    minor_controlled: GrantorBands
    other: GrantorBands


class RuleRef(Spec):
    id: str
    cite: str = ""


class ConsentRules(Spec):
    permit: dict[str, RuleRef]
    deny: RuleRef
    revoked: RuleRef
    expired: RuleRef

    @field_validator("permit")
    @classmethod
    def _catch_all(cls, v: dict[str, RuleRef]) -> dict[str, RuleRef]:
        if "*" not in v:
            raise ValueError("needs a '*' entry")
        return v


class PolicyDoc(Spec):
    """A policy file as written."""

    policy_version: str
    effective_from: str = ""
    title: str = ""
    purposes: dict[str, str]
    data_classes: dict[str, DataClassDoc]
    recipient_roles: tuple[RolePattern, ...] = ()
    outbound: tuple[OutboundPattern, ...] = ()
    grantors: Grantors
    consent_rules: ConsentRules
    rules: tuple[RuleDoc, ...] = Field(min_length=1)

    @field_validator("data_classes", mode="before")
    @classmethod
    def _empty_is_default(cls, v: Any) -> Any:  # noqa: ANN401 - raw YAML
        return {k: (c if c is not None else {}) for k, c in v.items()} if isinstance(v, dict) else v

    @field_validator("data_classes")
    @classmethod
    def _classes(cls, v: dict[str, DataClassDoc]) -> dict[str, DataClassDoc]:
        if "GENERAL" not in v:
            raise ValueError("must include GENERAL")
        for name, dc in v.items():
            if name != "GENERAL" and not (dc.labels.any or dc.labels.all):
                raise ValueError(f"{name}.labels: needs any or all")
        return v

    @model_validator(mode="after")
    def _rules(self) -> PolicyDoc:
        seen: set[str] = set()
        for i, r in enumerate(self.rules):
            if r.id in seen:
                raise ValueError(f"rules.{i}.id: duplicate rule id {r.id}")
            seen.add(r.id)
            for c in r.classes:
                if c != "*" and c not in self.data_classes:
                    raise ValueError(f"rules.{i}.classes: unknown data class {c}")
            for p in r.purposes:
                if p != "*" and p not in self.purposes:
                    raise ValueError(f"rules.{i}.purposes: unknown purpose {p}")
        if not any(r.effect == "deny" and "*" in r.classes and "*" in r.purposes and "*" in r.recipient_roles
                   for r in self.rules):
            raise ValueError("rules: needs a catch-all deny rule (classes, purposes, recipient_roles all '*')")
        return self


# ---- loading -----------------------------------------------------------------------------------
@lru_cache(maxsize=16)
def load_valueset(name: str) -> ValueSet:
    path = VALUESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise SpecError(f"value set {name!r} not found in {VALUESET_DIR}")
    doc = validate(ValueSetDoc, read_yaml(path, error=SpecError), str(path), error=SpecError, hint=HINT)
    return ValueSet(doc.name, doc.label, tuple(p.replace(".", "").upper() for p in doc.include_prefixes),
                    tuple(p.replace(".", "").upper() for p in doc.exclude_prefixes))


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
    doc = validate(PolicyDoc, read_yaml(path_s, error=SpecError), path_s, error=SpecError, hint=HINT)
    classes = {name: DataClass(name, dc.labels.any, dc.labels.all, dc.explicit_consent, dc.minor_controlled,
                               dc.on_deny.action, dc.on_deny.columns, dc.on_deny.valueset,
                               dc.on_deny.withhold_if_labels)
               for name, dc in doc.data_classes.items()}
    rules = tuple(Rule(r.id, r.classes, r.purposes, r.recipient_roles, r.effect, r.mandatory, r.cite)
                  for r in doc.rules)
    g, cr = doc.grantors, doc.consent_rules
    citations = {r.id: r.cite for r in rules}
    for ref in (cr.deny, cr.revoked, cr.expired, *cr.permit.values()):
        citations[ref.id] = ref.cite
    citations[g.rule_id] = g.cite
    return Policy(
        version=doc.policy_version, path=path_s, purposes=tuple(doc.purposes), classes=classes, rules=rules,
        role_patterns=tuple((x.pattern, x.roles) for x in doc.recipient_roles),
        outbound=tuple((x.pattern, x.purposes) for x in doc.outbound), grantor_rule=g.rule_id,
        minor_age=g.minor_age, majority_age=g.majority_age,
        grantors={kind: {band: getattr(getattr(g, kind), band) for band in BANDS}
                  for kind in ("minor_controlled", "other")},
        consent_permit={k: v.id for k, v in cr.permit.items()}, consent_deny=cr.deny.id,
        consent_revoked=cr.revoked.id, consent_expired=cr.expired.id, citations=citations,
    )
