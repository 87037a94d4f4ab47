"""De-identification policies: one YAML file per output, deny by default.

A policy names every output field and the action that produces it; any input column no field
uses is dropped. The loader validates everything before a row is touched and names the file and
key in its errors (``SpecError``). Example (``privacy/policies/research_encounters.yaml``)::

    output: research_encounters
    version: 1
    basis: safe_harbor              # safe_harbor | limited_data_set | expert_determination
    zip3_list: census2010           # version of the restricted ZIP3 list
    age:                            # how age is known, for the 90+ rule
      birth_date: birth_date        # input column holding the birth date
      as_of: service_date           # input date column, or an ISO date, or "today"
    fields:
      person: {action: pseudonym, source: member_id}
      birth_year: {action: year, source: birth_date}     # null when age >= 90
      age: {action: age}                                 # "0".."89" or "90+"
      age_group: {action: age_band, bands: ["0-17", "18-64", "65+"]}
      zip3: {action: zip3, source: zip}
      service_year: {action: year, source: service_date}
      sex: keep
      race: {action: generalise, map: {"2106-3": White}, default: Other}
      procedure_codes: {action: keep, codes: true}       # exempt from number patterns
      referral_reason: scrub                             # free text through Presidio

Actions: keep, drop, year, zip3, age, age_band, pseudonym, generalise, scrub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from phmx.errors import SpecError

POLICY_DIR = Path(__file__).with_name("policies")
ZIP3_FILE = POLICY_DIR / "zip3_restricted.yaml"

ACTIONS = ("keep", "drop", "year", "zip3", "age", "age_band", "pseudonym", "generalise", "scrub")
BASES = ("safe_harbor", "limited_data_set", "expert_determination")
_FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BAND_RE = re.compile(r"^(\d{1,3})(?:-(\d{1,3})|\+)$")

#: Column names that look like one of the 18 identifier classes: ``keep`` is refused on them
#: unless the field carries ``reviewed: <why this is not an identifier>``.
IDENTIFIER_NAME_RE = re.compile(
    r"(^|_)(name|names|given|family|surname|ssn|social|cin|mrn|medical_record|address|street|"
    r"address_line|city|county|county_fips|zip|zipcode|postal|precinct|phone|fax|email|e_mail|url|"
    r"ip|ip_address|birth|dob|death|date|dt|admit|discharge|license|licence|certificate|account|"
    r"vin|plate|device|serial|photo|image|biometric|fingerprint|member_id|person_id|"
    r"source_person_id|client_number|beneficiary|policy_number|subscriber)(_|$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AgeBand:
    """An age band ``lo-hi`` (inclusive) or ``lo+`` (open)."""

    label: str
    lo: int
    hi: int | None


@dataclass(frozen=True)
class FieldRule:
    """How one output field is made."""

    name: str
    action: str
    source: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_code(self) -> bool:
        return bool(self.options.get("codes"))


@dataclass(frozen=True)
class Policy:
    """A validated de-identification policy for one output."""

    output: str
    version: int
    basis: str
    zip3_list: str
    fields: tuple[FieldRule, ...]
    age_birth_date: str | None = None
    age_as_of: str | None = None
    description: str = ""
    source_file: str = ""

    @property
    def sources(self) -> set[str]:
        """Input columns the policy reads (everything else is dropped)."""
        used = {f.source for f in self.fields if f.action != "drop"}
        if self.age_birth_date and any(f.action in ("age", "age_band", "year") for f in self.fields):
            used.add(self.age_birth_date)
            if self.age_as_of and not _is_literal_date(self.age_as_of):
                used.add(self.age_as_of)
        return used

    @property
    def output_columns(self) -> list[str]:
        return [f.name for f in self.fields if f.action != "drop"]

    @property
    def code_columns(self) -> set[str]:
        return {f.name for f in self.fields if f.is_code}


def _is_literal_date(text: str) -> bool:
    if text == "today":
        return True
    try:
        date.fromisoformat(text)
        return True
    except ValueError:
        return False


def parse_bands(raw: Any, where: str) -> tuple[AgeBand, ...]:
    """Validate age bands: ascending, non-overlapping, and 90+ never split (Safe Harbor (C))."""
    if not isinstance(raw, list) or not raw:
        raise SpecError(f"{where}: bands must be a non-empty list like ['0-17', '18-64', '65+']")
    bands: list[AgeBand] = []
    for text in raw:
        m = _BAND_RE.match(str(text).strip())
        if not m:
            raise SpecError(f"{where}: band {text!r} is not 'lo-hi' or 'lo+'")
        lo, hi = int(m.group(1)), (int(m.group(2)) if m.group(2) else None)
        if hi is not None and hi < lo:
            raise SpecError(f"{where}: band {text!r} ends before it starts")
        if bands and (bands[-1].hi is None or lo != bands[-1].hi + 1):
            raise SpecError(f"{where}: band {text!r} must start right after the previous band")
        if hi is not None and hi >= 90:
            raise SpecError(f"{where}: band {text!r} reaches 90; ages 90 and over must be one open band "
                            "(e.g. '65+' or '90+')")
        if hi is None and lo > 90:
            raise SpecError(f"{where}: band {text!r} starts above 90; use an open band starting at 90 or below")
        bands.append(AgeBand(str(text).strip(), lo, hi))
    if bands[0].lo != 0:
        raise SpecError(f"{where}: the first band must start at 0")
    if bands[-1].hi is not None:
        raise SpecError(f"{where}: the last band must be open-ended (e.g. '65+')")
    return tuple(bands)


def _parse_field(name: str, raw: Any, where: str, *, basis: str) -> FieldRule:
    if not _FIELD_RE.match(str(name)):
        raise SpecError(f"{where}: field name {name!r} is not a valid column name")
    if isinstance(raw, str):
        raw = {"action": raw}
    if not isinstance(raw, dict) or "action" not in raw:
        raise SpecError(f"{where}: give an action (one of {', '.join(ACTIONS)})")
    opts = dict(raw)
    action = str(opts.pop("action"))
    if action in ("age", "age_band") and "source" not in opts:
        opts["from_birth_date"] = True
    if action not in ACTIONS:
        raise SpecError(f"{where}: unknown action {action!r} (one of {', '.join(ACTIONS)})")
    source = str(opts.pop("source", name))
    allowed = {"keep": {"reviewed", "codes"}, "drop": set(), "year": set(), "zip3": set(),
               "age": {"as", "from_birth_date"}, "age_band": {"bands", "from_birth_date"}, "pseudonym": set(),
               "generalise": {"map", "default", "truncate"}, "scrub": set()}[action]
    extra = set(opts) - allowed
    if extra:
        raise SpecError(f"{where}: option(s) {', '.join(sorted(extra))} not valid for action {action!r}")
    if action == "keep" and basis == "safe_harbor":
        if (IDENTIFIER_NAME_RE.search(name) or IDENTIFIER_NAME_RE.search(source)) and not opts.get("reviewed"):
            raise SpecError(
                f"{where}: 'keep' on {source!r} looks like a Safe Harbor identifier",
                hint="use drop/year/zip3/pseudonym/generalise, or add reviewed: '<why it is not an identifier>'",
            )
    if action == "age_band":
        opts["bands"] = parse_bands(opts.get("bands"), f"{where}.bands")
    if action == "generalise":
        if "map" not in opts and "truncate" not in opts:
            raise SpecError(f"{where}: generalise needs 'map' (with 'default') or 'truncate'")
        if "map" in opts:
            if not isinstance(opts["map"], dict) or "default" not in opts:
                raise SpecError(f"{where}: generalise 'map' must be a mapping and needs a 'default' for "
                                "unlisted values (use null to drop them)")
            opts["map"] = {str(k): (None if v is None else str(v)) for k, v in opts["map"].items()}
        if "truncate" in opts and (not isinstance(opts["truncate"], int) or opts["truncate"] < 1):
            raise SpecError(f"{where}: truncate must be a positive number of characters")
    if action == "age" and opts.get("as", "label") not in ("label", "int"):
        raise SpecError(f"{where}: age 'as' is 'label' ('90+') or 'int' (90 meaning 90 and over)")
    return FieldRule(str(name), action, source, opts)


def load_zip3_lists(path: str | Path | None = None) -> tuple[str, dict[str, frozenset[str]]]:
    """The versioned restricted-ZIP3 lists: (default version, {version: set of ZIP3})."""
    p = Path(path) if path else ZIP3_FILE
    doc = yaml.safe_load(p.read_text()) or {}
    versions = doc.get("versions") or {}
    lists: dict[str, frozenset[str]] = {}
    for name, spec in versions.items():
        codes = [str(z) for z in (spec or {}).get("zip3", [])]
        bad = [z for z in codes if not re.fullmatch(r"\d{3}", z)]
        if bad or not codes:
            raise SpecError(f"{p}: versions.{name}.zip3 must be a list of three-digit strings")
        lists[str(name)] = frozenset(codes)
    default = str(doc.get("default", ""))
    if default not in lists:
        raise SpecError(f"{p}: default {default!r} is not one of the versions")
    return default, lists


def restricted_zip3(version: str | None = None) -> frozenset[str]:
    """The ZIP3 areas that must be published as 000 under list ``version`` (default if None)."""
    default, lists = load_zip3_lists()
    v = version or default
    if v not in lists:
        raise SpecError(f"{ZIP3_FILE}: unknown ZIP3 list version {v!r} (have {', '.join(sorted(lists))})")
    return lists[v]


def parse_policy(doc: dict[str, Any], source_file: str = "(inline)") -> Policy:
    """Validate a policy document (already parsed from YAML)."""
    if not isinstance(doc, dict):
        raise SpecError(f"{source_file}: a policy is a mapping with output, version, fields")
    for key in ("output", "version", "fields"):
        if key not in doc:
            raise SpecError(f"{source_file}: missing key {key!r}")
    unknown = set(doc) - {"output", "version", "basis", "zip3_list", "age", "fields", "description"}
    if unknown:
        raise SpecError(f"{source_file}: unknown key(s) {', '.join(sorted(unknown))}")
    basis = str(doc.get("basis", "safe_harbor"))
    if basis not in BASES:
        raise SpecError(f"{source_file}: basis must be one of {', '.join(BASES)}")
    default_zip, lists = load_zip3_lists()
    zip3_list = str(doc.get("zip3_list", default_zip))
    if zip3_list not in lists:
        raise SpecError(f"{source_file}: zip3_list {zip3_list!r} is not one of {', '.join(sorted(lists))}")
    if not isinstance(doc["fields"], dict) or not doc["fields"]:
        raise SpecError(f"{source_file}: fields must be a non-empty mapping of output field to action")
    fields = tuple(_parse_field(k, v, f"{source_file}: fields.{k}", basis=basis) for k, v in doc["fields"].items())
    age = doc.get("age") or {}
    if not isinstance(age, dict) or set(age) - {"birth_date", "as_of"}:
        raise SpecError(f"{source_file}: age takes birth_date and as_of")
    birth = age.get("birth_date")
    as_of = str(age.get("as_of", "today")) if birth else None
    needs_age = [f.name for f in fields if f.options.get("from_birth_date")]
    if needs_age and not birth:
        raise SpecError(f"{source_file}: fields {', '.join(needs_age)} compute an age: set age.birth_date "
                        "(or give the field a numeric age column as source)")
    if birth:
        fields = tuple(
            replace(f, source=birth, options={**f.options, "from_birth_date": True})
            if f.action in ("age", "age_band") and (f.options.get("from_birth_date") or f.source == birth) else f
            for f in fields
        )
    birthish = [f.name for f in fields if f.action == "year" and re.search(r"birth|dob", f.source, re.I)
                and f.source != birth]
    if birthish:
        raise SpecError(f"{source_file}: fields {', '.join(birthish)} publish a birth year: set age.birth_date "
                        "to that column so birth years of people aged 90 and over are suppressed")
    if birth and as_of and not _is_literal_date(as_of) and not _FIELD_RE.match(as_of):
        raise SpecError(f"{source_file}: age.as_of must be a column, an ISO date or 'today'")
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise SpecError(f"{source_file}: duplicate output field names")
    return Policy(
        output=str(doc["output"]), version=int(doc["version"]), basis=basis, zip3_list=zip3_list,
        fields=fields, age_birth_date=birth, age_as_of=as_of, description=str(doc.get("description", "")),
        source_file=source_file,
    )


def load_policy(name_or_path: str | Path) -> Policy:
    """Load ``privacy/policies/<name>.yaml`` or a path; the output name must match the file name."""
    p = Path(name_or_path)
    if not p.suffix:
        p = POLICY_DIR / f"{name_or_path}.yaml"
    if not p.exists():
        raise SpecError(f"policy {name_or_path} not found", hint=f"policies live in {POLICY_DIR}")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(f"{p}: not valid YAML ({type(exc).__name__})") from None
    policy = parse_policy(doc, str(p))
    if policy.output != p.stem:
        raise SpecError(f"{p}: output {policy.output!r} must match the file name {p.stem!r}")
    return policy
