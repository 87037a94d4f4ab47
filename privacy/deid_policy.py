"""De-identification policies: one YAML file per output, deny by default.

A policy names every output field and the action that produces it; any input column no field
uses is dropped. A policy file is a pydantic model (one rule model per action, chosen by
``action``; unknown keys refused) and the rules across fields are its validators, so everything
is checked before a row is touched and errors name the file and key (``SpecError``). Example (``privacy/policies/research_encounters.yaml``)::

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
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from phmx.errors import SpecError
from phmx.yamlspec import Spec, read_yaml, validate

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


def _bands(raw: Any) -> tuple[AgeBand, ...]:  # noqa: ANN401 - raw YAML
    """Age bands: ascending, non-overlapping, and 90+ never split (Safe Harbor (C))."""
    if not isinstance(raw, list) or not raw:
        raise ValueError("bands must be a non-empty list like ['0-17', '18-64', '65+']")
    bands: list[AgeBand] = []
    for text in raw:
        m = _BAND_RE.match(str(text).strip())
        if not m:
            raise ValueError(f"band {text!r} is not 'lo-hi' or 'lo+'")
        lo, hi = int(m.group(1)), (int(m.group(2)) if m.group(2) else None)
        if hi is not None and hi < lo:
            raise ValueError(f"band {text!r} ends before it starts")
        if bands and (bands[-1].hi is None or lo != bands[-1].hi + 1):
            raise ValueError(f"band {text!r} must start right after the previous band")
        if hi is not None and hi >= 90:
            raise ValueError(f"band {text!r} reaches 90; ages 90 and over must be one open band "
                             "(e.g. '65+' or '90+')")
        if hi is None and lo > 90:
            raise ValueError(f"band {text!r} starts above 90; use an open band starting at 90 or below")
        bands.append(AgeBand(str(text).strip(), lo, hi))
    if bands[0].lo != 0:
        raise ValueError("the first band must start at 0")
    if bands[-1].hi is not None:
        raise ValueError("the last band must be open-ended (e.g. '65+')")
    return tuple(bands)


def parse_bands(raw: Any, where: str) -> tuple[AgeBand, ...]:  # noqa: ANN401 - raw YAML
    """Validate age bands (see :func:`_bands`); errors name ``where``."""
    try:
        return _bands(raw)
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from None


# ---- the policy file, as models --------------------------------------------------------------
class _Rule(Spec):
    """One output field's rule; ``source`` defaults to the field's own name."""

    action: str
    source: str | None = None

    def options(self) -> dict[str, Any]:
        """The options the policy sets, by their YAML names, as the engine code reads them."""
        fields = type(self).model_fields
        return {fields[n].alias or n: getattr(self, n) for n in self.model_fields_set - {"action", "source"}}


class KeepRule(_Rule):
    action: Literal["keep"]
    reviewed: str | None = None   # why a column named like an identifier is not one
    codes: bool | None = None     # exempt from the free-text number patterns


class DropRule(_Rule):
    action: Literal["drop"]


class YearRule(_Rule):
    action: Literal["year"]


class Zip3Rule(_Rule):
    action: Literal["zip3"]


class PseudonymRule(_Rule):
    action: Literal["pseudonym"]


class ScrubRule(_Rule):
    action: Literal["scrub"]


class AgeRule(_Rule):
    action: Literal["age"]
    as_: str = Field("label", alias="as")

    @field_validator("as_")
    @classmethod
    def _as(cls, v: str) -> str:
        if v not in ("label", "int"):
            raise ValueError("age 'as' is 'label' ('90+') or 'int' (90 meaning 90 and over)")
        return v


class AgeBandRule(_Rule):
    action: Literal["age_band"]
    bands: tuple[AgeBand, ...]

    @field_validator("bands", mode="before")
    @classmethod
    def _valid_bands(cls, v: Any) -> tuple[AgeBand, ...]:  # noqa: ANN401
        return _bands(v)


class GeneraliseRule(_Rule):
    action: Literal["generalise"]
    map: dict[str, str | None] | None = None
    default: str | None = None   # for unlisted values; null drops them (must be given with map)
    truncate: int | None = Field(None, ge=1)

    @field_validator("map", mode="before")
    @classmethod
    def _texts(cls, v: Any) -> Any:  # noqa: ANN401
        if not isinstance(v, dict):
            raise ValueError("generalise 'map' must be a mapping")
        return {str(k): (None if x is None else str(x)) for k, x in v.items()}

    @model_validator(mode="after")
    def _complete(self) -> GeneraliseRule:
        if self.map is None and self.truncate is None:
            raise ValueError("generalise needs 'map' (with 'default') or 'truncate'")
        if self.map is not None and "default" not in self.model_fields_set:
            raise ValueError("generalise 'map' needs a 'default' for unlisted values (use null to drop them)")
        return self


Rule = Annotated[KeepRule | DropRule | YearRule | Zip3Rule | PseudonymRule | ScrubRule | AgeRule | AgeBandRule
                 | GeneraliseRule, Field(discriminator="action")]


class AgeSource(Spec):
    birth_date: str | None = None   # input column holding the birth date
    as_of: str = "today"            # input date column, an ISO date, or "today"


class PolicyDoc(Spec):
    """A policy file as written."""

    output: str
    version: int
    basis: Literal["safe_harbor", "limited_data_set", "expert_determination"] = "safe_harbor"
    zip3_list: str | None = None
    age: AgeSource = AgeSource()
    fields: dict[str, Rule] = Field(min_length=1)
    description: str = ""

    @field_validator("fields", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:  # noqa: ANN401
        """``sex: keep`` is ``sex: {action: keep}``; every name must be a column name."""
        if not isinstance(v, dict):
            return v
        for name in v:
            if not _FIELD_RE.match(str(name)):
                raise ValueError(f"field name {name!r} is not a valid column name")
        return {str(k): ({"action": r} if isinstance(r, str) else r) for k, r in v.items()}

    @model_validator(mode="after")
    def _across_fields(self) -> PolicyDoc:
        for name, rule in self.fields.items():
            source = rule.source or name
            if isinstance(rule, KeepRule) and self.basis == "safe_harbor" and not rule.reviewed \
                    and (IDENTIFIER_NAME_RE.search(name) or IDENTIFIER_NAME_RE.search(source)):
                raise ValueError(f"fields.{name}: 'keep' on {source!r} looks like a Safe Harbor identifier; use "
                                 "drop/year/zip3/pseudonym/generalise, or add reviewed: '<why it is not an "
                                 "identifier>'")
        birth = self.age.birth_date
        needs_age = [n for n, r in self.fields.items() if isinstance(r, AgeRule | AgeBandRule) and r.source is None]
        if needs_age and not birth:
            raise ValueError(f"fields {', '.join(needs_age)} compute an age: set age.birth_date (or give the field "
                             "a numeric age column as source)")
        birthish = [n for n, r in self.fields.items() if isinstance(r, YearRule)
                    and re.search(r"birth|dob", r.source or n, re.I) and (r.source or n) != birth]
        if birthish:
            raise ValueError(f"fields {', '.join(birthish)} publish a birth year: set age.birth_date to that column "
                             "so birth years of people aged 90 and over are suppressed")
        if birth and not _is_literal_date(self.age.as_of) and not _FIELD_RE.match(self.age.as_of):
            raise ValueError("age.as_of must be a column, an ISO date or 'today'")
        return self


class Zip3Version(Spec):
    source: str = ""
    zip3: tuple[str, ...] = Field(min_length=1)

    @field_validator("zip3", mode="before")
    @classmethod
    def _three_digits(cls, v: Any) -> Any:  # noqa: ANN401
        codes = [str(z) for z in v or []]
        if not codes or any(not re.fullmatch(r"\d{3}", z) for z in codes):
            raise ValueError("must be a list of three-digit strings")
        return codes


class Zip3Lists(Spec):
    default: str
    versions: dict[str, Zip3Version] = Field(min_length=1)

    @model_validator(mode="after")
    def _default_exists(self) -> Zip3Lists:
        if self.default not in self.versions:
            raise ValueError(f"default {self.default!r} is not one of the versions")
        return self


def load_zip3_lists(path: str | Path | None = None) -> tuple[str, dict[str, frozenset[str]]]:
    """The versioned restricted-ZIP3 lists: (default version, {version: set of ZIP3})."""
    p = Path(path) if path else ZIP3_FILE
    doc = validate(Zip3Lists, read_yaml(p, error=SpecError), str(p), error=SpecError)
    return doc.default, {name: frozenset(v.zip3) for name, v in doc.versions.items()}


def restricted_zip3(version: str | None = None) -> frozenset[str]:
    """The ZIP3 areas that must be published as 000 under list ``version`` (default if None)."""
    default, lists = load_zip3_lists()
    v = version or default
    if v not in lists:
        raise SpecError(f"{ZIP3_FILE}: unknown ZIP3 list version {v!r} (have {', '.join(sorted(lists))})")
    return lists[v]


def _field_rule(name: str, rule: _Rule, birth: str | None) -> FieldRule:
    """The engine's view of one rule: the action, the input column, the options."""
    opts = rule.options()
    source = rule.source or name
    if isinstance(rule, AgeRule | AgeBandRule) and (rule.source is None or (birth and rule.source == birth)):
        opts["from_birth_date"] = True
        source = birth or source
    return FieldRule(name, rule.action, source, opts)


def parse_policy(doc: dict[str, Any], source_file: str = "(inline)") -> Policy:
    """Validate a policy document (already parsed from YAML)."""
    if not isinstance(doc, dict):
        raise SpecError(f"{source_file}: a policy is a mapping with output, version, fields")
    pol = validate(PolicyDoc, doc, source_file, error=SpecError)
    default_zip, lists = load_zip3_lists()
    zip3_list = pol.zip3_list or default_zip
    if zip3_list not in lists:
        raise SpecError(f"{source_file}: zip3_list {zip3_list!r} is not one of {', '.join(sorted(lists))}")
    birth = pol.age.birth_date
    return Policy(
        output=pol.output, version=pol.version, basis=pol.basis, zip3_list=zip3_list,
        fields=tuple(_field_rule(n, r, birth) for n, r in pol.fields.items()), age_birth_date=birth,
        age_as_of=pol.age.as_of if birth else None, description=pol.description, source_file=source_file,
    )


def load_policy(name_or_path: str | Path) -> Policy:
    """Load ``privacy/policies/<name>.yaml`` or a path; the output name must match the file name."""
    p = Path(name_or_path)
    if not p.suffix:
        p = POLICY_DIR / f"{name_or_path}.yaml"
    if not p.exists():
        raise SpecError(f"policy {name_or_path} not found", hint=f"policies live in {POLICY_DIR}")
    policy = parse_policy(read_yaml(p, error=SpecError), str(p))
    if policy.output != p.stem:
        raise SpecError(f"{p}: output {policy.output!r} must match the file name {p.stem!r}")
    return policy
