"""Identity settings as data: identifiers, blocking rules, comparisons, thresholds, guards,
survivorship.

The defaults live in ``mappings/identity/settings.yaml``. The file is read into a pydantic
model that refuses unknown keys (a misspelt key would otherwise be silently ignored and a
guard silently off), then cross-checked (features, level labels, rule names) into the frozen
dataclasses the engine code reads. Every error names the file and the key.

Identifiers are data: each entry of ``identifiers`` (CIN, SSN, a county client number, a
foreign person number) declares its normalisation, its validity rule, its comparison levels
(exact, one typo, two adjacent characters swapped), whether it blocks, and whether two
different valid values in one member are a conflict (a cluster guard). Each becomes a
standardised feature of its own name, a comparison and (optionally) a blocking rule; no code
names CIN or SSN.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from phmx.errors import ConfigError

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
SETTINGS_FILE = MAPPINGS / "identity" / "settings.yaml"
NICKNAMES_FILE = MAPPINGS / "identity" / "nicknames.yaml"
ADDRESS_FILE = MAPPINGS / "identity" / "address_abbreviations.yaml"

LEVEL_KINDS = ("exact", "jaro_winkler", "levenshtein", "transposition", "token_overlap", "date_transposed",
               "date_year_off", "date_within", "prefix", "initial", "cross_equal", "numeric_within", "disjoint",
               "else")

#: Standardised feature columns (besides the declared identifiers) that blocking keys and
#: comparisons may name.
BASE_FEATURES = frozenset({
    "gn", "gn_canon", "gn_key", "gn_sdx", "gn_initial", "gn_tokens", "gn_alias", "mi", "fn", "fn_sdx", "fn_tokens",
    "fn_alias", "name_set", "birth_date", "dob_str", "birth_year", "dob_md", "dob_ym", "sex", "phone", "zip5",
    "addr_key", "addr_num", "addr_words", "addr_hist", "city", "mmn", "no_zip",
})
#: Kept for readers of the old constant: the base features plus the default identifiers.
FEATURES = BASE_FEATURES | {"cin", "ssn"}

#: In guard and deterministic rules, a condition on every declared identifier at once: it holds
#: when any identifier reaches one of the named levels.
ANY_IDENTIFIER = "any_identifier"
#: Like ``any_identifier``, over the identifiers declared ``personal`` only: numbers that are
#: never written on another person's record (unlike an SSN or CIN on a dependant's claim).
PERSONAL_IDENTIFIER = "personal_identifier"
IDENTIFIER_GROUPS = (ANY_IDENTIFIER, PERSONAL_IDENTIFIER)
#: The comparison levels an identifier may declare, strongest first. ``consecutive``: two
#: numbers one or two apart (twins and triplets are often issued consecutive SSNs), kept apart
#: from ``one_typo`` so the model and the guards can tell a sibling from a keying error.
IDENTIFIER_LEVELS = ("exact", "consecutive", "one_typo", "transposition")
DEFAULT_IDENTIFIER_LEVELS = ("exact", "one_typo", "transposition")
#: Named validity checks an identifier may ask for (beyond its pattern).
IDENTIFIER_CHECKS = ("ssa_ssn",)
_NAME = r"^[a-z][a-z0-9_]*$"


@dataclass(frozen=True)
class Level:
    """One comparison level: how two values must relate to reach it."""

    kind: str
    label: str
    column: str | None = None
    threshold: float | None = None
    max: int | None = None
    n: int | None = None
    max_bits: float | None = None


@dataclass(frozen=True)
class Comparison:
    """A comparison of one feature: its levels, strongest first (the last is ``else``)."""

    name: str
    column: str
    levels: tuple[Level, ...]
    tf: bool = False
    only_if_null: str | None = None

    @property
    def tf_column(self) -> str:
        """The column whose value frequency adjusts the top (exact) level's weight."""
        return self.levels[0].column or self.column

    @property
    def columns(self) -> tuple[str, ...]:
        """Every feature column this comparison reads."""
        cols = [self.column] + [lv.column for lv in self.levels if lv.column]
        if self.only_if_null:
            cols.append(self.only_if_null)
        return tuple(dict.fromkeys(cols))

    def gamma(self, index: int) -> int:
        """Gamma value of the level at ``index`` in :attr:`levels` (else = 0, best = highest)."""
        return len(self.levels) - 1 - index

    def label(self, gamma: int) -> str:
        if gamma < 0:
            return "null"
        return self.levels[len(self.levels) - 1 - gamma].label


@dataclass(frozen=True)
class Identifier:
    """An identifier field (CIN, SSN, MRN, a foreign person number), declared as data.

    ``column``: the person field that carries it (silver.person column, or the mapping's
    identifier name in ``phmx identity link``). ``normalise``: ``digits`` (keep digits),
    ``alnum`` (keep letters and digits, upper case) or ``text`` (trim, upper case). A value is
    valid when it matches ``pattern`` (whole value), passes ``check`` (``ssa_ssn``: no area
    000/666/9xx, group 00 or serial 0000), is not one repeated character and not in
    ``invalid``; anything else becomes null (no evidence, never a false agreement).
    ``namespace``: ``global`` (one id space across sources) or ``source`` (the value means
    something only within its source: prefixed by it). ``sources``: fnmatch patterns of the
    sources that carry it. ``guard``: two different valid values in one member conflict.
    ``personal``: the number is only ever written on its holder's own records (a registry's
    person number), never on a relative's (a parent's SSN or CIN on a child's claim): exact
    agreement then outweighs the household guards (``personal_identifier`` in guard rules).
    """

    name: str
    column: str
    normalise: str = "alnum"
    pattern: str | None = None
    check: str | None = None
    invalid: tuple[str, ...] = ()
    namespace: str = "global"
    sources: tuple[str, ...] = ("*",)
    levels: tuple[str, ...] = DEFAULT_IDENTIFIER_LEVELS
    guard: bool = True
    block: bool = True
    max_block_size: int | None = None
    personal: bool = False
    #: Also block on the number's first and last halves (overlapping in the middle character)
    #: and on its characters sorted: a pair whose numbers differ by one typo agrees on a half,
    #: one whose numbers have two characters swapped on the sorted key. Opt-in: on a 9-digit
    #: SSN at a million records each half is a block of about ten records.
    block_typos: bool = False

    @property
    def typo_keys(self) -> tuple[str, ...]:
        """The blocking features ``block_typos`` adds (empty when off)."""
        return (f"{self.name}_head", f"{self.name}_tail", f"{self.name}_sorted") if self.block_typos else ()

    def comparison(self) -> Comparison:
        """The comparison this identifier contributes: its declared levels, then ``else``."""
        kinds = {"exact": Level("exact", "exact"), "consecutive": Level("numeric_within", "consecutive", max=2),
                 "one_typo": Level("levenshtein", "one_typo", max=1),
                 "transposition": Level("transposition", "transposition")}
        return Comparison(self.name, self.name, tuple(kinds[lv] for lv in self.levels) + (Level("else", "else"),))


@dataclass(frozen=True)
class BlockingRule:
    """A self-join on ``keys``. ``max_block_size`` (default: the settings' one) skips keys held by
    more records than that: a broad rule (family name and ZIP) then adds only its small blocks,
    where it finds what the narrower rules miss, instead of pairs that grow with the square of
    the population's density."""

    name: str
    keys: tuple[str, ...]
    max_block_size: int | None = None


@dataclass(frozen=True)
class EdgeGuard:
    """Pairs whose levels match all of ``when`` and none of ``unless`` are never auto-linked.

    A comparison named ``any_identifier`` stands for every declared identifier: the entry
    holds when any of them reaches one of the levels.
    """

    name: str
    when: tuple[tuple[str, tuple[str, ...]], ...]
    unless: tuple[tuple[str, tuple[str, ...]], ...] = ()
    review: bool = True
    protects: str = ""
    #: Also keep the two records apart when other records would bridge them (a cannot-link in
    #: clustering, until a reviewer decides): for guards whose pairs are one step from a merge
    #: through a third record that carries less evidence (a dental record with only a ZIP).
    apart: bool = False


@dataclass(frozen=True)
class IdentitySettings:
    """Everything the linkage engine needs, validated."""

    link_probability: float
    review_probability: float
    guard_dob_days: int
    override_margin_bits: float
    max_block_size: int
    rules: tuple[BlockingRule, ...]
    compare_chunk_pairs: int
    training_rules: tuple[str, ...]
    max_iterations: int
    tolerance: float
    u_sample_records: int
    seed: int
    min_probability: float
    comparisons: tuple[Comparison, ...]
    source_trust: tuple[str, ...]
    survivorship: dict[str, str] = field(default_factory=dict)
    edge_guards: tuple[EdgeGuard, ...] = ()
    deterministic: tuple[EdgeGuard, ...] = ()
    unique_sources: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    source_file: str = ""
    #: Cluster-guard conflicts whose refused edges go to the review queue (None: all of them);
    #: the others are decided (kept apart) without asking.
    review_cluster_conflicts: tuple[str, ...] | None = None
    #: Dirichlet pseudo-counts: EM's m per level is estimated as if this many matched pairs had
    #: been seen spread as the generic starting m (0 turns the prior off).
    m_prior_pairs: float = 0.0
    #: Pseudo-count added to each level's count among the random pairs before u is taken.
    u_prior_count: float = 0.0

    @property
    def link_weight(self) -> float:
        """The match weight (log2 odds) equivalent of :attr:`link_probability`."""
        p = self.link_probability
        return math.log2(p / (1 - p))

    @property
    def review_weight(self) -> float:
        p = self.review_probability
        return math.log2(p / (1 - p))

    @property
    def features(self) -> frozenset[str]:
        """Every feature a rule or comparison may name: the base ones and the identifiers."""
        return BASE_FEATURES | {i.name for i in self.identifiers}

    @property
    def guarded_identifiers(self) -> tuple[str, ...]:
        """Identifiers whose conflict (two different valid values in one member) is a guard."""
        return tuple(i.name for i in self.identifiers if i.guard)

    def identifier_comparisons(self) -> tuple[str, ...]:
        """Names of the comparisons that identifiers contribute (present in these settings)."""
        ids = {i.name for i in self.identifiers}
        return tuple(c.name for c in self.comparisons if c.name in ids)

    def comparison(self, name: str) -> Comparison:
        for c in self.comparisons:
            if c.name == name:
                return c
        raise KeyError(name)

    def gammas(self, cname: str, labels: tuple[str, ...] | list[str]) -> list[tuple[str, list[int]]]:
        """(comparison, gamma values) of the named levels; ``any_identifier`` expands to every
        identifier comparison; the label ``null`` means a side has no value (gamma -1)."""
        if cname == ANY_IDENTIFIER:
            names = self.identifier_comparisons()
        elif cname == PERSONAL_IDENTIFIER:
            personal = {i.name for i in self.identifiers if i.personal}
            names = tuple(n for n in self.identifier_comparisons() if n in personal)
        else:
            names = (cname,)
        out = []
        wanted = set(labels)
        for n in names:
            comp = self.comparison(n)
            gs = [comp.gamma(i) for i, lv in enumerate(comp.levels) if lv.label in wanted]
            out.append((n, gs + ([-1] if "null" in wanted else [])))
        return out

    def restricted_to(self, available: set[str]) -> IdentitySettings:
        """These settings without the rules and comparisons whose features are unavailable.

        Used by ``phmx identity link`` on files that lack some fields: a missing field is simply
        absent from blocking and comparisons.
        """
        # A comparison needs its main column; a level on a missing feature (an alias nobody
        # has) is dropped, the comparison kept.
        comps = tuple(
            replace(c, levels=tuple(lv for lv in c.levels if lv.column is None or lv.column in available),
                    only_if_null=c.only_if_null if c.only_if_null in available else None)
            for c in self.comparisons if c.column in available)
        comps = tuple(c for c in comps if len(c.levels) > 1)
        rules = tuple(r for r in self.rules if all(k in available for k in r.keys))
        training = tuple(t for t in self.training_rules if any(r.name == t for r in rules))
        names = {c.name for c in comps} | set(IDENTIFIER_GROUPS)
        idents = tuple(i for i in self.identifiers if i.name in available)
        guards = tuple(
            replace(g, unless=tuple((c, lv) for c, lv in g.unless if c in names))
            for g in self.edge_guards if all(c in names for c, _ in g.when))
        det = tuple(d for d in self.deterministic if all(c in names for c, _ in d.when))
        return replace(self, comparisons=comps, rules=rules, training_rules=training, edge_guards=guards,
                       deterministic=det, identifiers=idents)

    def with_identifiers(self, extra: tuple[Identifier, ...]) -> IdentitySettings:
        """These settings with more identifiers (a link mapping's own), each with its
        comparison and blocking rule; an identifier of the same name is replaced."""
        names = {i.name for i in extra}
        kept = tuple(i for i in self.identifiers if i.name not in names)
        comps = tuple(c for c in self.comparisons if c.name not in names)
        replaced = names | {k for i in self.identifiers if i.name in names for k in i.typo_keys}
        rules = tuple(r for r in self.rules if r.name not in replaced)
        base = replace(self, identifiers=kept, comparisons=comps, rules=rules)
        return _with_identifier_parts(base, extra)


def _with_identifier_parts(s: IdentitySettings, idents: tuple[Identifier, ...]) -> IdentitySettings:
    """Add the identifiers, their comparisons (before the others) and blocking rules (first)."""
    comps = tuple(i.comparison() for i in idents) + s.comparisons
    rules = tuple(BlockingRule(i.name, (i.name,), i.max_block_size) for i in idents if i.block)
    rules += tuple(BlockingRule(k, (k,), i.max_block_size) for i in idents if i.block for k in i.typo_keys)
    rules += s.rules
    return replace(s, identifiers=s.identifiers + idents, comparisons=comps, rules=rules)


# ---- the settings file's schema (pydantic: unknown keys are refused) ------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LevelSpec(_Strict):
    """One level of a comparison."""

    kind: Literal[LEVEL_KINDS]  # type: ignore[valid-type]
    label: str | None = None
    column: str | None = None
    threshold: Annotated[float, Field(gt=0, le=1)] | None = None
    max: int | None = None
    n: int | None = None
    max_bits: float | None = None

    @model_validator(mode="after")
    def _parameters(self) -> LevelSpec:
        if self.kind == "jaro_winkler" and self.threshold is None:
            raise ValueError("jaro_winkler needs a threshold in (0, 1]")
        if self.kind in ("levenshtein", "date_year_off", "date_within", "numeric_within") and self.max is None:
            raise ValueError(f"{self.kind} needs an integer max")
        if self.kind == "prefix" and self.n is None:
            raise ValueError("prefix needs an integer n")
        if self.kind == "cross_equal" and self.column is None:
            raise ValueError("cross_equal needs the column compared crosswise (an alias)")
        return self

    def default_label(self) -> str:
        return self.label or {
            "jaro_winkler": f"jw_{self.threshold}", "levenshtein": f"lev_{self.max}",
            "date_year_off": f"year_off_{self.max}", "date_within": f"within_{self.max}_days",
            "prefix": f"prefix_{self.n}",
        }.get(self.kind, self.kind)


class ComparisonSpec(_Strict):
    name: Annotated[str, Field(pattern=_NAME)]
    column: str
    tf: bool = False
    only_if_null: str | None = None
    levels: Annotated[list[LevelSpec], Field(min_length=2)]


class IdentifierSpec(_Strict):
    """An identifier declaration (see :class:`Identifier`)."""

    name: Annotated[str, Field(pattern=_NAME)]
    column: str | None = None
    normalise: Literal["digits", "alnum", "text"] = "alnum"
    pattern: str | None = None
    check: Literal[IDENTIFIER_CHECKS] | None = None  # type: ignore[valid-type]
    invalid: list[str] = Field(default_factory=list)
    namespace: Literal["global", "source"] = "global"
    sources: list[str] = Field(default_factory=lambda: ["*"])
    levels: Annotated[list[Literal[IDENTIFIER_LEVELS]], Field(min_length=1)] = list(DEFAULT_IDENTIFIER_LEVELS)  # type: ignore[valid-type]
    guard: bool = True
    block: bool = True
    personal: bool = False
    block_typos: bool = False

    @model_validator(mode="after")
    def _valid_pattern(self) -> IdentifierSpec:
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a regular expression: {exc}") from exc
        if "exact" not in self.levels:
            raise ValueError("levels must include exact")
        return self

    def build(self) -> Identifier:
        order = [lv for lv in IDENTIFIER_LEVELS if lv in self.levels]
        return Identifier(name=self.name, column=self.column or self.name, normalise=self.normalise,
                          pattern=self.pattern, check=self.check, invalid=tuple(self.invalid),
                          namespace=self.namespace, sources=tuple(self.sources), levels=tuple(order),
                          guard=self.guard, block=self.block, personal=self.personal,
                          block_typos=self.block_typos)


class LevelRuleSpec(_Strict):
    """An edge guard or a deterministic rule: conditions on comparison levels."""

    name: str
    when: Annotated[dict[str, list[str]], Field(min_length=1)]
    unless: dict[str, list[str]] = Field(default_factory=dict)
    review: bool = True
    protects: str = ""
    apart: bool = False


class ThresholdsSpec(_Strict):
    link_probability: Annotated[float, Field(gt=0, lt=1)]
    review_probability: Annotated[float, Field(gt=0, lt=1)]

    @model_validator(mode="after")
    def _order(self) -> ThresholdsSpec:
        if self.review_probability > self.link_probability:
            raise ValueError("review_probability must not exceed link_probability")
        return self


class GuardsSpec(_Strict):
    birth_date_max_days: Annotated[int, Field(ge=0)] = 31
    override_margin_bits: float = 12.0
    unique_sources: list[str] = Field(default_factory=list)
    edge: list[LevelRuleSpec] = Field(default_factory=list)
    review_cluster_conflicts: list[str] | None = None


class BlockingRuleSpec(_Strict):
    name: Annotated[str, Field(pattern=_NAME)]
    keys: Annotated[list[str], Field(min_length=1)]
    max_block_size: Annotated[int | None, Field(ge=2)] = None


class BlockingSpec(_Strict):
    max_block_size: Annotated[int, Field(ge=2)] = 60
    compare_chunk_pairs: Annotated[int, Field(ge=1)] = 4_000_000
    rules: list[BlockingRuleSpec] = Field(default_factory=list)


class EmSpec(_Strict):
    training_rules: list[str] | None = None
    max_iterations: Annotated[int, Field(ge=1)] = 60
    tolerance: Annotated[float, Field(gt=0)] = 1e-6
    u_sample_records: Annotated[int, Field(ge=10)] = 2500
    seed: int = 1
    min_probability: Annotated[float, Field(gt=0, lt=1)] = 1e-6
    m_prior_pairs: Annotated[float, Field(ge=0)] = 0.0
    u_prior_count: Annotated[float, Field(ge=0)] = 0.0


class SurvivorshipSpec(_Strict):
    source_trust: list[str] = Field(default_factory=lambda: ["*"])
    fields: dict[str, Literal["trusted", "frequent", "recent"]] = Field(default_factory=dict)


class SettingsSpec(_Strict):
    """The whole identity settings file."""

    version: Literal[1] = 1
    thresholds: ThresholdsSpec
    guards: GuardsSpec = Field(default_factory=GuardsSpec)
    identifiers: list[IdentifierSpec] = Field(default_factory=list)
    deterministic: list[LevelRuleSpec] = Field(default_factory=list)
    blocking: BlockingSpec
    em: EmSpec = Field(default_factory=EmSpec)
    comparisons: list[ComparisonSpec]
    survivorship: SurvivorshipSpec = Field(default_factory=SurvivorshipSpec)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "literal[")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def validation_message(exc: ValidationError, source: str) -> str:
    """One line per problem, each naming the file and the key (``guards.edge[2].whn``)."""
    lines = []
    for err in exc.errors():
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{source}: {_loc(tuple(err['loc']))}: {msg}")
    return "; ".join(lines)


def _check_level_rules(raw: list[LevelRuleSpec], where: str, by_name: dict[str, Comparison],
                       id_levels: set[str]) -> tuple[EdgeGuard, ...]:
    out = []
    for i, g in enumerate(raw):
        parts: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {}
        for part in ("when", "unless"):
            items = []
            for cname, labels in getattr(g, part).items():
                if cname in IDENTIFIER_GROUPS:
                    known = id_levels | {"null"}
                elif cname in by_name:
                    known = {lv.label for lv in by_name[cname].levels} | {"null"}
                else:
                    raise ConfigError(f"{where}[{i}].{part}.{cname}: no such comparison "
                                      f"(known: {sorted(by_name)}, {ANY_IDENTIFIER} and {PERSONAL_IDENTIFIER})")
                bad = [lb for lb in labels if lb not in known]
                if bad:
                    raise ConfigError(f"{where}[{i}].{part}.{cname}: unknown level labels {bad} (known: {sorted(known)})")
                items.append((cname, tuple(labels)))
            parts[part] = tuple(items)
        out.append(EdgeGuard(g.name, parts["when"], parts["unless"], g.review, g.protects, g.apart))
    return tuple(out)


def parse(data: Any, source: str = "<settings>") -> IdentitySettings:
    """Validate a settings mapping (as loaded from YAML) into :class:`IdentitySettings`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    try:
        spec = SettingsSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(exc, source)) from None
    idents = tuple(i.build() for i in spec.identifiers)
    id_names = [i.name for i in idents]
    if len(set(id_names)) != len(id_names):
        raise ConfigError(f"{source}: identifiers: names must be unique")
    features = BASE_FEATURES | set(id_names)
    clash = set(id_names) & BASE_FEATURES
    if clash:
        raise ConfigError(f"{source}: identifiers: {sorted(clash)} are built-in feature names")
    rules = []
    for i, r in enumerate(spec.blocking.rules):
        bad = [k for k in r.keys if k not in features]
        if bad:
            raise ConfigError(f"{source}: blocking.rules[{i}].keys: unknown features {bad}")
        rules.append(BlockingRule(r.name, tuple(r.keys), r.max_block_size))
    comps = []
    for i, c in enumerate(spec.comparisons):
        where = f"{source}: comparisons[{i}]"
        if c.name in id_names:
            raise ConfigError(f"{where}.name: {c.name!r} is an identifier (its comparison comes from identifiers)")
        if c.column not in features:
            raise ConfigError(f"{where}.column: unknown feature {c.column!r}")
        levels = []
        for j, lv in enumerate(c.levels):
            if lv.column is not None and lv.column not in features:
                raise ConfigError(f"{where}.levels[{j}].column: unknown feature {lv.column!r}")
            levels.append(Level(kind=lv.kind, label=str(lv.default_label()), column=lv.column,
                                threshold=lv.threshold, max=lv.max, n=lv.n, max_bits=lv.max_bits))
        if levels[-1].kind != "else" or any(lv.kind == "else" for lv in levels[:-1]):
            raise ConfigError(f"{where}.levels: the last level (and only the last) must be kind 'else'")
        if c.tf and levels[0].kind != "exact":
            raise ConfigError(f"{where}.tf: term-frequency adjustment needs an exact first level")
        if c.only_if_null is not None and c.only_if_null not in features:
            raise ConfigError(f"{where}.only_if_null: unknown feature {c.only_if_null!r}")
        comps.append(Comparison(c.name, c.column, tuple(levels), c.tf, c.only_if_null))
    base = IdentitySettings(
        link_probability=spec.thresholds.link_probability,
        review_probability=spec.thresholds.review_probability,
        guard_dob_days=spec.guards.birth_date_max_days,
        override_margin_bits=spec.guards.override_margin_bits,
        max_block_size=spec.blocking.max_block_size,
        rules=tuple(rules),
        compare_chunk_pairs=spec.blocking.compare_chunk_pairs,
        training_rules=(),
        max_iterations=spec.em.max_iterations,
        tolerance=spec.em.tolerance,
        u_sample_records=spec.em.u_sample_records,
        seed=spec.em.seed,
        min_probability=spec.em.min_probability,
        m_prior_pairs=spec.em.m_prior_pairs,
        u_prior_count=spec.em.u_prior_count,
        comparisons=tuple(comps),
        source_trust=tuple(spec.survivorship.source_trust),
        survivorship=dict(spec.survivorship.fields),
        unique_sources=tuple(spec.guards.unique_sources),
        review_cluster_conflicts=(None if spec.guards.review_cluster_conflicts is None
                                  else tuple(spec.guards.review_cluster_conflicts)),
        source_file=source,
    )
    s = _with_identifier_parts(base, idents)
    names = [r.name for r in s.rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: blocking.rules: rule names must be unique (identifiers add a rule of their name)")
    training = tuple(spec.em.training_rules or names)
    unknown = [t for t in training if t not in names]
    if unknown:
        raise ConfigError(f"{source}: em.training_rules: not blocking rules: {unknown}")
    if s.review_cluster_conflicts is not None:
        known = {"birth_date", "given_name", "same_source", "reviewer_rejected", *(i.name for i in s.identifiers)}
        bad = [c for c in s.review_cluster_conflicts if c not in known]
        if bad:
            raise ConfigError(f"{source}: guards.review_cluster_conflicts: unknown conflicts {bad} "
                              f"(known: {sorted(known)})")
    by_name = {c.name: c for c in s.comparisons}
    id_levels = set(IDENTIFIER_LEVELS) | {"else"}
    edge = _check_level_rules(spec.guards.edge, f"{source}: guards.edge", by_name, id_levels)
    det = _check_level_rules(spec.deterministic, f"{source}: deterministic", by_name, id_levels)
    return replace(s, training_rules=training, edge_guards=edge, deterministic=det)


def parse_identifiers(raw: Any, source: str, where: str = "identifiers") -> tuple[Identifier, ...]:
    """Identifier declarations outside the settings file (a link mapping's), validated."""
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: {where}: a list of identifier declarations")
    out = []
    for i, item in enumerate(raw):
        try:
            out.append(IdentifierSpec.model_validate(item).build())
        except ValidationError as exc:
            raise ConfigError(validation_message(exc, f"{source}: {where}[{i}]")) from None
    return tuple(out)


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> IdentitySettings:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read identity settings {path}: {type(exc).__name__}") from exc
    return parse(data, path)


def load(path: str | Path | None = None) -> IdentitySettings:
    """Load and validate identity settings (default ``mappings/identity/settings.yaml``)."""
    p = Path(path or SETTINGS_FILE)
    if not p.exists():
        raise ConfigError(f"identity settings not found: {p}")
    return _load_cached(str(p), p.stat().st_mtime)


def package_nicknames() -> dict[str, set[str]]:
    """Canonical given name -> its nicknames, from the list shipped inside the PyPI package
    ``nicknames`` (carltonnorthern/nicknames, Apache-2.0; a hand-curated list of English names),
    read at run time from the installed package.

    The list also records full given names as nicknames of a third name (MARY and MARIA both
    under MARIAH), and the names of one group agree with each other, so taken whole it would
    make MARY and MARIA one name: a pair of twins named so would then pass the twin guards,
    which fire only on given names that differ. So a group keeps at most one name that is a
    canonical name in its own right (has nicknames of its own: WILLIAM keeps BILL); where it
    lists several, they are dropped from it (MARIAH keeps neither MARY nor MARIA).
    """
    import csv
    from importlib.resources import files

    text = files("nicknames").joinpath("names.csv").read_text(encoding="utf-8")
    pairs = [(r["name1"].strip().upper(), r["name2"].strip().upper())
             for r in csv.DictReader(text.splitlines()) if r.get("relationship") == "has_nickname"]
    canonicals = {a for a, _ in pairs}
    out: dict[str, set[str]] = {}
    for canon, nick in pairs:
        if nick != canon:
            out.setdefault(canon, set()).add(nick)
    for nicks in out.values():
        full = nicks & canonicals
        if len(full) > 1:
            nicks -= full
    return {c: n for c, n in out.items() if n}


@lru_cache(maxsize=2)
def nicknames(path: str = str(NICKNAMES_FILE), public: bool = True) -> dict[str, tuple[str, ...]]:
    """Given name -> the nickname groups (canonical names) it belongs to, sorted.

    A canonical name belongs to its own group; a nickname to every group that lists it. The
    groups are the curated table's (``mappings/identity/nicknames.yaml``: Spanish, Filipino and
    cross-language forms) and, for the default table, the public English list of
    :func:`package_nicknames` (``public``); a name the curated table groups is grouped as it says.
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must map canonical names to lists of nicknames")
    groups: dict[str, set[str]] = {}
    for canon, variants in data.items():
        if not isinstance(variants, list):
            raise ConfigError(f"{path}: {canon}: expected a list of nicknames")
        c = str(canon).upper()
        groups.setdefault(c, set()).add(c)
        for v in variants:
            groups.setdefault(str(v).upper(), set()).add(c)
    if public and Path(path) == NICKNAMES_FILE:
        curated, curated_canon = set(groups), {str(k).upper() for k in data}
        for canon, nicks in sorted(package_nicknames().items()):
            if canon in curated and canon not in curated_canon:
                continue  # the curated table has it as another name's nickname: as it says
            groups.setdefault(canon, set()).add(canon)
            for n in sorted(nicks - curated):  # a curated name keeps the groups the table gives it
                groups.setdefault(n, set()).add(canon)
    return {k: tuple(sorted(v)) for k, v in groups.items()}


@lru_cache(maxsize=2)
def address_abbreviations(path: str = str(ADDRESS_FILE)) -> dict[str, dict[str, str]]:
    """USPS abbreviation tables: ``{"suffixes": {...}, "directionals": {...}, "units": {...}}``."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    for key in ("suffixes", "directionals", "units"):
        if not isinstance(data.get(key), dict):
            raise ConfigError(f"{path}: key {key!r} must be a mapping")
    return {k: {str(a).upper(): str(b).upper() for a, b in data[k].items()} for k in ("suffixes", "directionals", "units")}
