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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from phmx.errors import SpecError

MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "mappings"
FEEDS_DIR = MAPPINGS_DIR / "feeds"
VALUESETS_DIR = MAPPINGS_DIR / "valuesets"

FIELD_TYPES = {"string", "integer", "decimal", "date", "timestamp", "code", "cin", "ssn", "zip", "phone",
               "npi", "county_fips", "email"}
FORMAT_TYPES = {"delimited", "fixed_width", "x12_834", "hl7_vxu", "hl7_adt", "fhir_ndjson"}
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
    "hl7_adt": "line",
    "fhir_ndjson": "line",
}
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    """A spec part: unknown keys are refused (a typo is an error at load, never a silent default)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, coerce_numbers_to_str=True,
                              arbitrary_types_allowed=True)


class FieldSpec(_Strict):
    """One field of a feed: its bronze column name, where it comes from, and its checks."""

    name: str
    # Where the value comes from in the file: a column name (delimited), a path (X12, HL7, FHIR).
    # A list names several sources whose values are joined with ``separator`` (a composite key:
    # a county code and a client number), in every format that reads ``source``.
    source: Any = None
    type: str = "string"
    required: bool = False
    required_if: dict[str, list[str]] | None = None
    format: str | None = None
    valueset: str | None = None
    pattern: str | None = None
    allow: tuple[str, ...] = ()
    max_length: int | None = Field(default=None, ge=1)
    severity: str = "error"
    identifier: bool = False
    description: str = ""
    # Declarative clean-up applied to the extracted text before any check (all formats):
    # ``take`` keeps the first n characters (an HL7 or FHIR timestamp's date part),
    # ``strip_prefix`` drops a literal prefix (``Patient/`` of a FHIR reference), ``value_map``
    # (YAML key ``map``) recodes submitted values (a county's ``1``/``2`` to ``M``/``F``).
    take: int | None = None
    strip_prefix: str | None = None
    value_map: dict[str, str] = Field(default_factory=dict, alias="map")
    # ``constant``: the same value for every record, not read from the file (a county variant's
    # county code, a plan id its export leaves out). ``separator`` joins the parts of a composite
    # (a list ``source``, or a fixed-width layout entry listing several spans).
    constant: str | None = None
    separator: str = ""
    # A made-up example of an accepted value, shown in receipts' fixes (pattern fields need one).
    example: str | None = None
    # ``all`` (FHIR paths): keep every match of the path as a JSON array, not only the first (every
    # coding of a CodeableConcept with its system, every component of an Observation).
    all_matches: bool = Field(default=False, alias="all")

    @model_validator(mode="before")
    @classmethod
    def _source_defaults_to_name(cls, data: Any) -> Any:  # noqa: ANN401 - the raw YAML mapping
        """A field without ``source`` reads the column (or path) of its own name, unless constant."""
        if isinstance(data, dict) and data.get("source") is None and data.get("constant") is None:
            data = {**data, "source": data.get("name")}
        return data

    @property
    def has_transform(self) -> bool:
        return bool(self.take or self.strip_prefix or self.value_map)

    @property
    def sources(self) -> list[str]:
        """The source names as a list (one for a plain field, several for a composite; none when constant)."""
        if self.source is None:
            return []
        return [str(x) for x in self.source] if isinstance(self.source, list | tuple) else [str(self.source)]

    @property
    def is_composite(self) -> bool:
        return isinstance(self.source, list | tuple)


class _Against(_Strict):
    table: str
    fields: tuple[str, str, str, str]


class RuleSpec(_Strict):
    """A row-level rule across fields, e.g. ``date_order`` of admit and discharge dates."""

    id: str
    check: str
    fields: tuple[str, ...]
    severity: str = "error"
    message: str = ""
    when: str | None = None
    # ``within_coverage`` only: the enrollment table and its [member id, plan id, start, end].
    against: _Against | None = None

    @property
    def params(self) -> dict[str, Any]:
        """Check-specific settings, e.g. ``against`` for ``within_coverage``."""
        return {"against": self.against.model_dump()} if self.against is not None else {}


class FeedSpec(_Strict):
    """A whole feed spec, loaded from YAML."""

    feed: str
    version: str
    title: str = ""
    path: str = ""
    submitter_pattern: str = Field(default=".*", alias="submitters")
    bronze_table: str = ""
    sensitivity: str = "general"
    labels: tuple[str, ...] = ()
    format: dict[str, Any]
    on_resubmit: str = "replace"
    natural_key: tuple[str, ...] = ()
    fields: tuple[FieldSpec, ...]
    rules: tuple[RuleSpec, ...] = ()
    targets: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    how_to_fix: dict[str, str] = Field(default_factory=dict)
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


# Format settings of the text formats intake owns; other formats' keys are checked by their parser.
_FORMAT_KEYS = {
    "delimited": {"type", "delimiter", "quote", "header", "encodings", "join"},
    "fixed_width": {"type", "encodings", "record_type", "header", "trailer", "layouts"},
}
# Formats whose fields may be composite (list ``source``) or constant: the text readers.
COMPOSABLE_FORMATS = {"delimited", "fixed_width"}


def _fail(path: Path, key: str, msg: str) -> SpecError:
    return SpecError(f"{path.name}: {key}: {msg}", hint=f"edit {path}")


def _loc(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the spec's key path: ``fields[3].type``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in ("function-after", "function-before"):
            out += f".{part}" if out else str(part)
    return out or "(root)"


def _yaml_key(key: str) -> str:
    return {"submitter_pattern": "submitters", "value_map": "map"}.get(key, key)


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
    fmt = doc["format"]
    if not isinstance(fmt, dict) or fmt.get("type") not in FORMAT_TYPES:
        raise _fail(path, "format.type", f"must be one of {sorted(FORMAT_TYPES)}")
    allowed = _FORMAT_KEYS.get(str(fmt["type"]))
    if allowed is not None and set(fmt) - allowed:
        raise _fail(path, f"format.{sorted(set(fmt) - allowed)[0]}",
                    f"unknown key (a {fmt['type']} format has {', '.join(sorted(allowed))})")
    for i, f in enumerate(doc["fields"] or []):
        if not isinstance(f, dict) or "name" not in f:
            raise _fail(path, f"fields[{i}]", "each field needs a name")
    try:
        spec = FeedSpec.model_validate({**doc, "fields": doc["fields"] or [], "rules": doc.get("rules") or [],
                                        "targets": doc.get("targets") or {}, "labels": doc.get("labels") or [],
                                        "natural_key": doc.get("natural_key") or [], "notes": doc.get("notes") or [],
                                        "how_to_fix": doc.get("how_to_fix") or {}, "path": str(path)})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(_yaml_key(str(p)) if isinstance(p, str) else p for p in err["loc"])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise _fail(path, _loc(loc), msg) from None
    spec = spec.model_copy(update={"title": spec.title or spec.feed, "bronze_table": spec.bronze_table or spec.feed})
    _check_spec(spec, doc, path)
    return spec


def _check_spec(spec: FeedSpec, doc: dict[str, Any], path: Path) -> None:
    """The rules across keys that a schema cannot say, each naming the file and key."""
    if not _NAME.match(spec.feed):
        raise _fail(path, "feed", f"must match {_NAME.pattern}")
    if spec.sensitivity not in SENSITIVITIES:
        raise _fail(path, "sensitivity", f"must be one of {sorted(SENSITIVITIES)}")
    if spec.on_resubmit not in {"replace", "append"}:
        raise _fail(path, "on_resubmit", "must be replace or append")
    names = spec.field_names
    raw_fields = doc["fields"] or []
    for i, f in enumerate(spec.fields):
        key = f"fields[{i}]"
        if not _NAME.match(f.name):
            raise _fail(path, f"{key}.name", f"{f.name!r} must match {_NAME.pattern}")
        if f.type not in FIELD_TYPES:
            raise _fail(path, f"{key}.type", f"{f.type!r} not one of {sorted(FIELD_TYPES)}")
        if f.type in {"date", "timestamp"} and not f.format:
            raise _fail(path, f"{key}.format", "date fields need a strptime format")
        if f.type == "code" and not f.valueset:
            raise _fail(path, f"{key}.valueset", "code fields need a value set")
        if f.valueset:
            load_valueset(f.valueset)  # raises with the value set's own file name
        if f.pattern:
            try:
                re.compile(f.pattern)
            except re.error as exc:
                raise _fail(path, f"{key}.pattern", f"bad regex: {exc}") from exc
        if f.severity not in {"error", "warning"}:
            raise _fail(path, f"{key}.severity", "must be error or warning")
        if f.take is not None and f.take < 1:
            raise _fail(path, f"{key}.take", "must be a positive whole number of characters")
        if f.required_if:
            for other in f.required_if:
                if other not in names:
                    raise _fail(path, f"{key}.required_if", f"unknown field {other!r}")
        _check_source(path, key, f, raw_fields[i], spec.format_type)
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise _fail(path, "fields", f"duplicate names {sorted(dupes)}")
    for i, r in enumerate(spec.rules):
        key = f"rules[{i}]"
        if r.check not in ROW_CHECKS:
            raise _fail(path, f"{key}.check", f"unknown check {r.check!r} (one of {sorted(ROW_CHECKS)})")
        for fname in r.fields:
            if fname not in names:
                raise _fail(path, f"{key}.fields", f"unknown field {fname!r}")
        if r.severity not in {"error", "warning"}:
            raise _fail(path, f"{key}.severity", "must be error or warning")
        if r.check == "within_coverage":
            _check_within_coverage(path, key, r)
        elif r.against is not None:
            raise _fail(path, f"{key}.against", "only within_coverage rules take against")
        if r.check == "date_order" and len(r.fields) != 2:
            raise _fail(path, f"{key}.fields", "date_order compares exactly two fields")
    for k in spec.natural_key:
        if k not in names:
            raise _fail(path, "natural_key", f"unknown field {k!r}")
    _check_target_expressions(path, spec.targets)


# Functions a target expression may not call, with the reason and the safe form.
_UNSAFE_FUNCTIONS = {
    "array_compact": "on the embedded engine (Sail) array_compact of an array built by an aggregate "
                     "(collect_list, collect_set, flatten of those) returns other groups' values; "
                     "write filter(<array>, x -> x IS NOT NULL) instead (docs/ARCHITECTURE.md, engine gaps)",
}


def _check_target_expressions(path: Path, targets: dict[str, Any]) -> None:
    """Refuse, at load, a target expression calling a function that gives wrong rows on an engine."""
    def walk(node: Any, key: str) -> None:  # noqa: ANN401 - the raw YAML under targets
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}.{k}")
        elif isinstance(node, list | tuple):
            for i, v in enumerate(node):
                walk(v, f"{key}[{i}]")
        elif isinstance(node, str):
            for name, why in _UNSAFE_FUNCTIONS.items():
                if re.search(rf"\b{name}\s*\(", node, re.IGNORECASE):
                    raise _fail(path, key, f"{name}() is not allowed: {why}")

    walk(targets, "targets")


def _check_source(path: Path, key: str, f: FieldSpec, raw: dict[str, Any], format_type: str) -> None:
    """A list ``source`` or a ``constant`` is refused at load where the format cannot honour it."""
    src = raw.get("source")
    if isinstance(src, list | tuple):
        if not src or not all(isinstance(x, str | int) and str(x).strip() for x in src):
            raise _fail(path, f"{key}.source", "a list source names one or more non-empty sources")
    elif src is not None and not isinstance(src, str | int):
        raise _fail(path, f"{key}.source", "must be a name (or a list of names for a composite)")
    if f.constant is not None:
        if format_type not in COMPOSABLE_FORMATS:
            raise _fail(path, f"{key}.constant", f"constant fields are for {', '.join(sorted(COMPOSABLE_FORMATS))} "
                        f"feeds (this one is {format_type})")
        if src is not None:
            raise _fail(path, f"{key}.constant", "a constant field has no source")
    if raw.get("all") and format_type != "fhir_ndjson":
        raise _fail(path, f"{key}.all", "keeps every match of a FHIR path; this feed is not FHIR")
    if "separator" in raw and not isinstance(src, list | tuple) and format_type != "fixed_width":
        raise _fail(path, f"{key}.separator", "joins the parts of a list source; this field has one source")


def _check_within_coverage(path: Path, key: str, r: RuleSpec) -> None:
    """``within_coverage`` is a cross-file check run after rows are written: warnings only."""
    if r.severity != "warning":
        raise _fail(path, f"{key}.severity", "within_coverage runs after rows are loaded, so it must be a warning")
    if len(r.fields) != 3:
        raise _fail(path, f"{key}.fields", "within_coverage needs [member id, plan id, service date]")
    if r.against is None:
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
    specs: dict[str, FeedSpec] = {}
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
