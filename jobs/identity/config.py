"""Identity settings as data: blocking rules, comparisons, thresholds, guards, survivorship.

The defaults live in ``mappings/identity/settings.yaml``. They are validated when loaded, and
every error names the file and the key (a mistyped level kind fails before any data is read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from phmx.errors import ConfigError

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
SETTINGS_FILE = MAPPINGS / "identity" / "settings.yaml"
NICKNAMES_FILE = MAPPINGS / "identity" / "nicknames.yaml"
ADDRESS_FILE = MAPPINGS / "identity" / "address_abbreviations.yaml"

LEVEL_KINDS = {"exact", "jaro_winkler", "levenshtein", "transposition", "token_overlap", "date_transposed",
               "date_year_off", "date_within", "prefix", "initial", "else"}

#: Standardised feature columns that blocking keys and comparisons may name.
FEATURES = {
    "gn", "gn_canon", "gn_key", "gn_sdx", "gn_initial", "mi", "fn", "fn_sdx", "fn_tokens", "name_set", "birth_date",
    "dob_str", "birth_year", "dob_md", "dob_ym", "sex", "cin", "ssn", "phone", "zip5", "addr_key", "city",
}


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
class BlockingRule:
    name: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class EdgeGuard:
    """Pairs whose levels match all of ``when`` and none of ``unless`` are never auto-linked."""

    name: str
    when: tuple[tuple[str, tuple[str, ...]], ...]
    unless: tuple[tuple[str, tuple[str, ...]], ...] = ()
    review: bool = True


@dataclass(frozen=True)
class IdentitySettings:
    """Everything the linkage engine needs, validated."""

    link_probability: float
    review_probability: float
    guard_cin: bool
    guard_ssn: bool
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
    source_file: str = ""

    @property
    def link_weight(self) -> float:
        """The match weight (log2 odds) equivalent of :attr:`link_probability`."""
        p = self.link_probability
        return math.log2(p / (1 - p))

    @property
    def review_weight(self) -> float:
        p = self.review_probability
        return math.log2(p / (1 - p))

    def comparison(self, name: str) -> Comparison:
        for c in self.comparisons:
            if c.name == name:
                return c
        raise KeyError(name)

    def restricted_to(self, available: set[str]) -> IdentitySettings:
        """These settings without the rules and comparisons whose features are unavailable.

        Used by ``phmx identity link`` on files that lack some fields: a missing field is simply
        absent from blocking and comparisons.
        """
        from dataclasses import replace

        comps = tuple(c for c in self.comparisons
                      if c.column in available and all(lv.column is None or lv.column in available
                                                       for lv in c.levels))
        comps = tuple(replace(c, only_if_null=c.only_if_null if c.only_if_null in available else None)
                      for c in comps)
        rules = tuple(r for r in self.rules if all(k in available for k in r.keys))
        training = tuple(t for t in self.training_rules if any(r.name == t for r in rules))
        names = {c.name for c in comps}
        guards = tuple(
            replace(g, unless=tuple((c, lv) for c, lv in g.unless if c in names))
            for g in self.edge_guards if all(c in names for c, _ in g.when))
        det = tuple(d for d in self.deterministic if all(c in names for c, _ in d.when))
        return replace(self, comparisons=comps, rules=rules, training_rules=training, edge_guards=guards,
                       deterministic=det)


def _need(d: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in d:
        raise ConfigError(f"{where}: missing key {key!r}")
    value = d[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")
    return value


def _level(raw: Any, where: str) -> Level:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each level is a mapping with 'kind'")
    kind = _need(raw, "kind", where, str)
    if kind not in LEVEL_KINDS:
        raise ConfigError(f"{where}.kind: unknown level kind {kind!r} (one of {sorted(LEVEL_KINDS)})")
    column = raw.get("column")
    if column is not None and column not in FEATURES:
        raise ConfigError(f"{where}.column: unknown feature {column!r}")
    threshold = raw.get("threshold")
    if kind == "jaro_winkler" and not (isinstance(threshold, int | float) and 0 < threshold <= 1):
        raise ConfigError(f"{where}.threshold: jaro_winkler needs a threshold in (0, 1]")
    if kind in ("levenshtein", "date_year_off", "date_within") and not isinstance(raw.get("max"), int):
        raise ConfigError(f"{where}.max: {kind} needs an integer max")
    if kind == "prefix" and not isinstance(raw.get("n"), int):
        raise ConfigError(f"{where}.n: prefix needs an integer n")
    label = raw.get("label") or {
        "jaro_winkler": f"jw_{threshold}", "levenshtein": f"lev_{raw.get('max')}",
        "date_year_off": f"year_off_{raw.get('max')}", "date_within": f"within_{raw.get('max')}_days",
        "prefix": f"prefix_{raw.get('n')}",
    }.get(kind, kind)
    max_bits = raw.get("max_bits")
    if max_bits is not None and not isinstance(max_bits, int | float):
        raise ConfigError(f"{where}.max_bits: a number (the most this level may add, in bits)")
    return Level(kind=kind, label=str(label), column=column,
                 threshold=float(threshold) if threshold is not None else None,
                 max=raw.get("max"), n=raw.get("n"),
                 max_bits=float(max_bits) if max_bits is not None else None)


def _level_rules(raw: list[Any], where_base: str, by_name: dict[str, Comparison]) -> list[EdgeGuard]:
    """Rules over comparison levels (edge guards, deterministic links), validated."""
    out = []
    for i, g in enumerate(raw):
        where = f"{where_base}[{i}]"
        gname = _need(g, "name", where, str)
        parts = {}
        for part in ("when", "unless"):
            spec = g.get(part) or {}
            if not isinstance(spec, dict) or (part == "when" and not spec):
                raise ConfigError(f"{where}.{part}: a mapping of comparison -> list of level labels")
            items = []
            for cname, labels in spec.items():
                if cname not in by_name:
                    raise ConfigError(f"{where}.{part}.{cname}: no such comparison")
                known = {lv.label for lv in by_name[cname].levels}
                bad = [lb for lb in labels if lb not in known]
                if bad:
                    raise ConfigError(f"{where}.{part}.{cname}: unknown level labels {bad} (known: {sorted(known)})")
                items.append((cname, tuple(labels)))
            parts[part] = tuple(items)
        out.append(EdgeGuard(gname, parts["when"], parts["unless"], bool(g.get("review", True))))
    return out


def parse(data: Any, source: str = "<settings>") -> IdentitySettings:
    """Validate a settings mapping (as loaded from YAML) into :class:`IdentitySettings`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    th = _need(data, "thresholds", source, dict)
    link_p = float(_need(th, "link_probability", f"{source}: thresholds", (int, float)))
    review_p = float(_need(th, "review_probability", f"{source}: thresholds", (int, float)))
    if not 0 < review_p <= link_p < 1:
        raise ConfigError(f"{source}: thresholds need 0 < review_probability <= link_probability < 1")
    guards = _need(data, "guards", source, dict)
    blocking = _need(data, "blocking", source, dict)
    rules = []
    for i, r in enumerate(_need(blocking, "rules", f"{source}: blocking", list)):
        where = f"{source}: blocking.rules[{i}]"
        name = _need(r, "name", where, str)
        keys = tuple(_need(r, "keys", where, list))
        bad = [k for k in keys if k not in FEATURES]
        if bad or not keys:
            raise ConfigError(f"{where}.keys: unknown or empty features {bad}")
        rules.append(BlockingRule(name, keys))
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: blocking.rules: rule names must be unique")
    em = _need(data, "em", source, dict)
    training = tuple(em.get("training_rules") or names)
    unknown = [t for t in training if t not in names]
    if unknown:
        raise ConfigError(f"{source}: em.training_rules: not blocking rules: {unknown}")
    comps = []
    for i, c in enumerate(_need(data, "comparisons", source, list)):
        where = f"{source}: comparisons[{i}]"
        name = _need(c, "name", where, str)
        column = _need(c, "column", where, str)
        if column not in FEATURES:
            raise ConfigError(f"{where}.column: unknown feature {column!r}")
        levels = tuple(_level(lv, f"{where}.levels[{j}]") for j, lv in enumerate(_need(c, "levels", where, list)))
        if not levels or levels[-1].kind != "else" or any(lv.kind == "else" for lv in levels[:-1]):
            raise ConfigError(f"{where}.levels: the last level (and only the last) must be kind 'else'")
        if c.get("tf") and levels[0].kind != "exact":
            raise ConfigError(f"{where}.tf: term-frequency adjustment needs an exact first level")
        only = c.get("only_if_null")
        if only is not None and only not in FEATURES:
            raise ConfigError(f"{where}.only_if_null: unknown feature {only!r}")
        comps.append(Comparison(name, column, levels, bool(c.get("tf", False)), only))
    by_name = {c.name: c for c in comps}
    edge_guards = _level_rules(guards.get("edge") or [], f"{source}: guards.edge", by_name)
    deterministic = _level_rules(data.get("deterministic") or [], f"{source}: deterministic", by_name)
    surv = data.get("survivorship") or {}

    return IdentitySettings(
        link_probability=link_p,
        review_probability=review_p,
        guard_cin=bool(guards.get("cin", True)),
        guard_ssn=bool(guards.get("ssn", True)),
        guard_dob_days=int(guards.get("birth_date_max_days", 31)),
        override_margin_bits=float(guards.get("override_margin_bits", 12.0)),
        max_block_size=int(blocking.get("max_block_size", 60)),
        rules=tuple(rules),
        compare_chunk_pairs=int(blocking.get("compare_chunk_pairs", 1_000_000)),
        training_rules=training,
        max_iterations=int(em.get("max_iterations", 60)),
        tolerance=float(em.get("tolerance", 1e-6)),
        u_sample_records=int(em.get("u_sample_records", 2500)),
        seed=int(em.get("seed", 1)),
        min_probability=float(em.get("min_probability", 1e-6)),
        comparisons=tuple(comps),
        source_trust=tuple(surv.get("source_trust") or ("*",)),
        survivorship=dict(surv.get("fields") or {}),
        edge_guards=tuple(edge_guards),
        deterministic=tuple(deterministic),
        unique_sources=tuple(str(x) for x in (guards.get("unique_sources") or ())),
        source_file=source,
    )


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


@lru_cache(maxsize=2)
def nicknames(path: str = str(NICKNAMES_FILE)) -> dict[str, tuple[str, ...]]:
    """Given name -> the nickname groups (canonical names) it belongs to, sorted.

    A canonical name belongs to its own group; a nickname to every group that lists it.
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
    return {k: tuple(sorted(v)) for k, v in groups.items()}


@lru_cache(maxsize=2)
def address_abbreviations(path: str = str(ADDRESS_FILE)) -> dict[str, dict[str, str]]:
    """USPS abbreviation tables: ``{"suffixes": {...}, "directionals": {...}, "units": {...}}``."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    for key in ("suffixes", "directionals", "units"):
        if not isinstance(data.get(key), dict):
            raise ConfigError(f"{path}: key {key!r} must be a mapping")
    return {k: {str(a).upper(): str(b).upper() for a, b in data[k].items()} for k in ("suffixes", "directionals", "units")}
