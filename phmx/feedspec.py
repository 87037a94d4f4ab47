"""Feed specs: what each submitter feed looks like, how it is validated and mapped, as data.

Specs live in ``mappings/feeds/<feed>.yaml``; value sets in ``mappings/valuesets/<name>.yaml``.
A new county's variant of a feed is a new YAML file (``bronze_table`` pointing at the shared
bronze table), not code. Specs are validated on load and errors name the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from phmx.errors import SpecError

MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "mappings"
FEEDS_DIR = MAPPINGS_DIR / "feeds"
VALUESETS_DIR = MAPPINGS_DIR / "valuesets"

FIELD_TYPES = {"string", "integer", "decimal", "date", "timestamp", "code", "cin", "ssn", "zip", "phone",
               "npi", "county_fips", "email"}
FORMAT_TYPES = {"delimited", "fixed_width", "x12_834", "hl7_vxu", "fhir_ndjson"}
SENSITIVITIES = {"general", "mh", "sud"}
SPEC_KEYS = {
    "feed", "version", "title", "description", "submitters", "sensitivity", "labels", "format", "on_resubmit",
    "natural_key", "fields", "rules", "targets", "how_to_fix", "bronze_table", "notes",
}
ROW_CHECKS = {"date_order", "duplicate_key", "one_of_required", "within_coverage"}
# How each format numbers its records on receipts (the ``row_number`` lineage column).
RECORD_UNITS = {
    "delimited": "line",
    "fixed_width": "line",
    "x12_834": "segment",
    "hl7_vxu": "line",
    "fhir_ndjson": "line",
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class FieldSpec:
    """One field of a feed: its bronze column name, where it comes from, and its checks."""

    name: str
    source: Any = None
    type: str = "string"
    required: bool = False
    required_if: dict[str, Any] | None = None
    format: str | None = None
    valueset: str | None = None
    pattern: str | None = None
    allow: tuple[str, ...] = ()
    max_length: int | None = None
    severity: str = "error"
    identifier: bool = False
    description: str = ""
    # Declarative clean-up applied to the extracted text before any check (all formats):
    # ``take`` keeps the first n characters (an HL7 or FHIR timestamp's date part),
    # ``strip_prefix`` drops a literal prefix (``Patient/`` of a FHIR reference), ``value_map``
    # (YAML key ``map``) recodes submitted values (a county's ``1``/``2`` to ``M``/``F``).
    take: int | None = None
    strip_prefix: str | None = None
    value_map: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_transform(self) -> bool:
        return bool(self.take or self.strip_prefix or self.value_map)


@dataclass(frozen=True)
class RuleSpec:
    """A row-level rule across fields, e.g. ``date_order`` of admit and discharge dates."""

    id: str
    check: str
    fields: tuple[str, ...]
    severity: str = "error"
    message: str = ""
    when: str | None = None
    # Check-specific settings, e.g. ``against`` for ``within_coverage``.
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FeedSpec:
    """A whole feed spec, loaded from YAML."""

    feed: str
    version: str
    title: str
    path: str
    submitter_pattern: str
    bronze_table: str
    sensitivity: str
    labels: tuple[str, ...]
    format: dict[str, Any]
    on_resubmit: str
    natural_key: tuple[str, ...]
    fields: tuple[FieldSpec, ...]
    rules: tuple[RuleSpec, ...]
    targets: dict[str, Any]
    description: str = ""
    how_to_fix: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def format_type(self) -> str:
        return str(self.format.get("type", "delimited"))

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def accepts_submitter(self, submitter: str) -> bool:
        return re.fullmatch(self.submitter_pattern, submitter) is not None

    @property
    def variant_of(self) -> str | None:
        """The base feed whose bronze table this spec shares (``enrollment_834`` -> ``enrollment``)."""
        return self.bronze_table if self.bronze_table != self.feed else None

    @property
    def record_unit(self) -> str:
        """What a receipt's row number counts in this feed's files."""
        return RECORD_UNITS.get(self.format_type, "line")


def _fail(path: Path, key: str, msg: str) -> SpecError:
    return SpecError(f"{path.name}: {key}: {msg}", hint=f"edit {path}")


def parse_spec(doc: dict[str, Any], path: Path) -> FeedSpec:
    """Build and validate a FeedSpec from a YAML document; errors name the file and key."""
    if not isinstance(doc, dict):
        raise _fail(path, "(root)", "a feed spec must be a mapping")
    for key in ("feed", "version", "fields", "format"):
        if key not in doc:
            raise _fail(path, key, "missing")
    unknown = sorted(set(doc) - SPEC_KEYS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key (spec keys are {', '.join(sorted(SPEC_KEYS))})")
    feed = str(doc["feed"])
    if not _NAME.match(feed):
        raise _fail(path, "feed", f"must match {_NAME.pattern}")
    fmt = doc["format"]
    if not isinstance(fmt, dict) or fmt.get("type") not in FORMAT_TYPES:
        raise _fail(path, "format.type", f"must be one of {sorted(FORMAT_TYPES)}")
    sensitivity = doc.get("sensitivity", "general")
    if sensitivity not in SENSITIVITIES:
        raise _fail(path, "sensitivity", f"must be one of {sorted(SENSITIVITIES)}")
    on_resubmit = doc.get("on_resubmit", "replace")
    if on_resubmit not in {"replace", "append"}:
        raise _fail(path, "on_resubmit", "must be replace or append")
    fields: list[FieldSpec] = []
    known = {
        "name", "source", "type", "required", "required_if", "format", "valueset", "pattern", "allow",
        "max_length", "severity", "identifier", "description", "take", "strip_prefix", "map",
    }
    for i, f in enumerate(doc["fields"] or []):
        key = f"fields[{i}]"
        if not isinstance(f, dict) or "name" not in f:
            raise _fail(path, key, "each field needs a name")
        name = str(f["name"])
        if not _NAME.match(name):
            raise _fail(path, f"{key}.name", f"{name!r} must match {_NAME.pattern}")
        ftype = f.get("type", "string")
        if ftype not in FIELD_TYPES:
            raise _fail(path, f"{key}.type", f"{ftype!r} not one of {sorted(FIELD_TYPES)}")
        if ftype in {"date", "timestamp"} and not f.get("format"):
            raise _fail(path, f"{key}.format", "date fields need a strptime format")
        if ftype == "code" and not f.get("valueset"):
            raise _fail(path, f"{key}.valueset", "code fields need a value set")
        if f.get("valueset"):
            load_valueset(f["valueset"])  # raises with the value set's own file name
        if f.get("pattern"):
            try:
                re.compile(f["pattern"])
            except re.error as exc:
                raise _fail(path, f"{key}.pattern", f"bad regex: {exc}") from exc
        if f.get("severity", "error") not in {"error", "warning"}:
            raise _fail(path, f"{key}.severity", "must be error or warning")
        if f.get("take") is not None and (not isinstance(f["take"], int) or f["take"] < 1):
            raise _fail(path, f"{key}.take", "must be a positive whole number of characters")
        vmap = f.get("map") or {}
        if not isinstance(vmap, dict):
            raise _fail(path, f"{key}.map", "must map submitted values to spec values")
        if f.get("required_if"):
            if not isinstance(f["required_if"], dict):
                raise _fail(path, f"{key}.required_if", "must map a field name to a list of values")
            for other in f["required_if"]:
                if other not in {str(x.get("name")) for x in doc["fields"] if isinstance(x, dict)}:
                    raise _fail(path, f"{key}.required_if", f"unknown field {other!r}")
        fields.append(
            FieldSpec(
                name=name,
                source=f.get("source", name),
                type=ftype,
                required=bool(f.get("required", False)),
                required_if=f.get("required_if"),
                format=f.get("format"),
                valueset=f.get("valueset"),
                pattern=f.get("pattern"),
                allow=tuple(str(a) for a in f.get("allow", ())),
                max_length=f.get("max_length"),
                severity=f.get("severity", "error"),
                identifier=bool(f.get("identifier", False)),
                description=str(f.get("description", "")),
                take=f.get("take"),
                strip_prefix=str(f["strip_prefix"]) if f.get("strip_prefix") else None,
                value_map={str(k): str(v) for k, v in vmap.items()},
                extra={k: v for k, v in f.items() if k not in known},
            )
        )
    names = [f.name for f in fields]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise _fail(path, "fields", f"duplicate names {sorted(dupes)}")
    rules: list[RuleSpec] = []
    for i, r in enumerate(doc.get("rules") or []):
        key = f"rules[{i}]"
        for k in ("id", "check", "fields"):
            if k not in r:
                raise _fail(path, f"{key}.{k}", "missing")
        if r["check"] not in ROW_CHECKS:
            raise _fail(path, f"{key}.check", f"unknown check {r['check']!r} (one of {sorted(ROW_CHECKS)})")
        for fname in r["fields"]:
            if fname not in names:
                raise _fail(path, f"{key}.fields", f"unknown field {fname!r}")
        severity = r.get("severity", "error")
        if severity not in {"error", "warning"}:
            raise _fail(path, f"{key}.severity", "must be error or warning")
        params = {k: v for k, v in r.items() if k not in {"id", "check", "fields", "severity", "message", "when"}}
        if r["check"] == "within_coverage":
            _check_within_coverage(path, key, r, params, severity)
        if r["check"] == "date_order" and len(r["fields"]) != 2:
            raise _fail(path, f"{key}.fields", "date_order compares exactly two fields")
        rules.append(RuleSpec(id=str(r["id"]), check=r["check"], fields=tuple(r["fields"]),
                              severity=severity, message=str(r.get("message", "")),
                              when=r.get("when"), params=params))
    for k in doc.get("natural_key") or []:
        if k not in names:
            raise _fail(path, "natural_key", f"unknown field {k!r}")
    return FeedSpec(
        feed=feed,
        version=str(doc["version"]),
        title=str(doc.get("title", feed)),
        path=str(path),
        submitter_pattern=str(doc.get("submitters", ".*")),
        bronze_table=str(doc.get("bronze_table", feed)),
        sensitivity=sensitivity,
        labels=tuple(doc.get("labels") or ()),
        format=dict(fmt),
        on_resubmit=on_resubmit,
        natural_key=tuple(doc.get("natural_key") or ()),
        fields=tuple(fields),
        rules=tuple(rules),
        targets=dict(doc.get("targets") or {}),
        description=str(doc.get("description", "")),
        how_to_fix={str(k): str(v) for k, v in (doc.get("how_to_fix") or {}).items()},
        notes=tuple(str(n) for n in doc.get("notes") or ()),
    )


def _check_within_coverage(path: Path, key: str, r: dict[str, Any], params: dict[str, Any],
                           severity: str) -> None:
    """``within_coverage`` is a cross-file check run after rows are written: warnings only."""
    if severity != "warning":
        raise _fail(path, f"{key}.severity", "within_coverage runs after rows are loaded, so it must be a warning")
    if len(r["fields"]) != 3:
        raise _fail(path, f"{key}.fields", "within_coverage needs [member id, plan id, service date]")
    against = params.get("against")
    if not isinstance(against, dict) or not against.get("table") or len(against.get("fields") or []) != 4:
        raise _fail(path, f"{key}.against", "needs {table: <bronze table>, fields: [member id, plan id, "
                    "coverage start, coverage end]}")


@lru_cache(maxsize=256)
def load_spec_file(path: str) -> FeedSpec:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"{p.name}: not valid YAML: {exc}", hint=f"edit {p}") from exc
    return parse_spec(doc, p)


def all_specs(feeds_dir: Path | None = None) -> dict[str, FeedSpec]:
    """Every feed spec by feed name (the landing folder name)."""
    d = feeds_dir or FEEDS_DIR
    specs = {}
    for p in sorted(d.glob("*.yaml")):
        spec = load_spec_file(str(p))
        if spec.feed in specs:
            raise SpecError(f"{p.name}: feed {spec.feed!r} also defined in {Path(specs[spec.feed].path).name}")
        specs[spec.feed] = spec
    return specs


def get_spec(feed: str) -> FeedSpec:
    specs = all_specs()
    if feed not in specs:
        raise SpecError(f"unknown feed {feed!r}", hint=f"one of: {', '.join(sorted(specs))}")
    return specs[feed]


@dataclass(frozen=True)
class ValueSet:
    """A code set: exact codes and/or code prefixes, with its source and version."""

    name: str
    version: str
    source: str
    codes: frozenset[str]
    prefixes: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    # Regular expressions (RE2-compatible) for code families a prefix cannot express,
    # e.g. ICD-10-CM poisonings whose 6th character is the intent.
    patterns: tuple[str, ...] = ()

    def contains(self, code: str) -> bool:
        return (code in self.codes or any(code.startswith(p) for p in self.prefixes)
                or any(re.search(p, code) for p in self.patterns))


@lru_cache(maxsize=128)
def load_valueset(name: str) -> ValueSet:
    p = VALUESETS_DIR / f"{name}.yaml"
    if not p.exists():
        raise SpecError(f"value set {name!r} not found", hint=f"add {p}")
    doc = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    codes = doc.get("codes") or {}
    if isinstance(codes, dict):
        labels = {str(k): str(v) for k, v in codes.items()}
        code_set = frozenset(labels)
    else:
        labels = {}
        code_set = frozenset(str(c) for c in codes)
    patterns = tuple(str(x) for x in doc.get("patterns") or ())
    for pat in patterns:
        try:
            re.compile(pat)
        except re.error as exc:
            raise SpecError(f"{p.name}: patterns: bad regex: {exc}", hint=f"edit {p}") from exc
    return ValueSet(name=name, version=str(doc.get("version", "")), source=str(doc.get("source", "")).strip(),
                    codes=code_set, prefixes=tuple(str(x) for x in doc.get("prefixes") or ()), labels=labels,
                    patterns=patterns)
