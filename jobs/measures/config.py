"""Measure parameters and value sets, loaded from mappings/measures/*.yaml and validated.

Why validate up front: a measure that silently reads an empty or misspelt value set computes a
plausible-looking 0% rate. Every file is a pydantic model (phmx.yamlspec) that refuses unknown
keys; the rules between files (a measure naming a value set, a combination naming antigens) are
validators with the other files in the validation context. Every error names the file and the
key (``measures.yaml: measures.FUM.followup: unknown evidence kind ...``) so the fix is obvious.
Nothing here touches the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from phmx.errors import SpecError
from phmx.sensitivity import LEVELS
from phmx.yamlspec import Spec, read_yaml, validate

MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings" / "measures"

# Evidence kinds a follow-up measure may list (defined in jobs/measures/evidence.py).
EVIDENCE_KINDS = (
    "claim_mental_health_dx",
    "claim_mental_health_service",
    "claim_sud_dx",
    "claim_sud_service",
    "claim_ambulatory",
    "county_mh",
    "county_sud",
    "sud_pharmacotherapy",
)
ADMISSION_KINDS = ("inpatient", "county_24_hour")
FAMILIES = ("ed_followup", "discharge_followup", "dental", "immunization", "well_child", "well_care_year")
SENSITIVITIES = LEVELS  # the one ranking, phmx.sensitivity
_CODE = re.compile(r"^[A-Za-z0-9]+$")
_PATTERN = re.compile(r"^[\^A-Za-z0-9.|()\[\]\-?]+$")


def _codes(value: Any, *, pattern: re.Pattern[str] = _CODE) -> tuple[str, ...]:  # noqa: ANN401 - raw YAML
    """A non-empty list of codes, each as text matching ``pattern`` (YAML may give numbers)."""
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list")
    out = []
    for v in value:
        s = str(v)
        if not pattern.match(s):
            raise ValueError(f"invalid entry {s!r}")
        out.append(s)
    return tuple(out)


def prefix_regex(prefixes: tuple[str, ...] = (), patterns: tuple[str, ...] = ()) -> str:
    """One regular expression matching a code that starts with any prefix or matches any pattern,
    anchored at a code boundary: the start of the string or a comma.

    Why a comma: arrays of codes are matched as one comma-joined string (``,F329,Z5900``) because
    the embedded engine cannot push a lambda predicate (``exists(codes, x -> ...)``) into a Delta
    scan. A pattern's ``.`` becomes ``[^,]`` so it never matches across two codes.
    """
    alts = [re.escape(p) for p in prefixes] + [p.lstrip("^").replace(".", "[^,]") for p in patterns]
    return "(^|,)(" + "|".join(alts) + ")"


# ---- valuesets.yaml ---------------------------------------------------------------------------
class IcdValueSet(Spec):
    """An ICD-10-CM value set: prefixes and/or patterns, and where the list comes from."""

    source: str = Field(min_length=1)
    prefixes: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    @field_validator("prefixes", mode="before")
    @classmethod
    def _prefixes(cls, v: Any) -> tuple[str, ...]:  # noqa: ANN401
        return _codes(v)

    @field_validator("patterns", mode="before")
    @classmethod
    def _patterns(cls, v: Any) -> tuple[str, ...]:  # noqa: ANN401
        out = _codes(v, pattern=_PATTERN)
        for p in out:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"{p!r} is not a regular expression") from exc
        return out

    @model_validator(mode="after")
    def _some(self) -> IcdValueSet:
        if not self.prefixes and not self.patterns:
            raise ValueError("needs prefixes or patterns")
        return self

    @property
    def regex(self) -> str:
        return prefix_regex(self.prefixes, self.patterns)


class CodeList(Spec):
    """A list of procedure, place-of-service, CDT, NDC or county service codes, with its source."""

    source: str = Field(min_length=1)
    codes: tuple[str, ...]

    @field_validator("codes", mode="before")
    @classmethod
    def _codes(cls, v: Any) -> tuple[str, ...]:  # noqa: ANN401
        return _codes(v)


class ChronicConditions(Spec):
    source: str = ""
    categories: dict[str, tuple[str, ...]] = Field(min_length=1)

    @field_validator("categories", mode="before")
    @classmethod
    def _categories(cls, v: Any) -> dict[str, tuple[str, ...]]:  # noqa: ANN401
        if not isinstance(v, dict) or not v:
            raise ValueError("expected a mapping")
        out = {}
        for k, codes in v.items():
            try:
                out[str(k)] = _codes(codes)
            except ValueError as exc:
                raise ValueError(f"{k}: {exc}") from None
        return out


class ValueSets(Spec):
    version: str = ""
    icd10cm: dict[str, IcdValueSet] = Field(min_length=1)
    chronic_conditions: ChronicConditions
    procedure_codes: dict[str, CodeList] = Field(min_length=1)
    place_of_service: dict[str, CodeList] = Field(min_length=1)
    cdt: dict[str, CodeList] = Field(min_length=1)
    ndc: dict[str, CodeList] = Field(min_length=1)
    county_bh: dict[str, CodeList] = Field(min_length=1)

    def code_lists(self) -> dict[str, tuple[str, ...]]:
        """``"<section>.<name>"`` -> codes, for every code list section."""
        return {f"{section}.{name}": entry.codes
                for section in ("procedure_codes", "place_of_service", "cdt", "ndc", "county_bh")
                for name, entry in getattr(self, section).items()}


# ---- cvx_antigens.yaml ------------------------------------------------------------------------
class Antigen(Spec):
    """One antigen of a vaccine combination: which CVX codes count and the age rules."""

    name: str = ""
    rule: Literal["rotavirus"] | None = None
    cvx: tuple[str, ...] = ()
    doses: int = Field(1, ge=1)
    min_age_days: int = 0
    from_first_birthday: bool = False
    two_dose_cvx: tuple[str, ...] = ()
    three_dose_cvx: tuple[str, ...] = ()

    @field_validator("cvx", "two_dose_cvx", "three_dose_cvx", mode="before")
    @classmethod
    def _cvx(cls, v: Any) -> tuple[str, ...]:  # noqa: ANN401
        return _codes(v)

    @model_validator(mode="after")
    def _complete(self) -> Antigen:
        if self.rotavirus:
            if not self.two_dose_cvx or not self.three_dose_cvx:
                raise ValueError("the rotavirus rule needs two_dose_cvx and three_dose_cvx")
        elif not self.cvx:
            raise ValueError("needs a 'cvx' list")
        return self

    @property
    def rotavirus(self) -> bool:
        return self.rule == "rotavirus"


class CvxAntigens(Spec):
    version: str = ""
    antigens: dict[str, Antigen] = Field(min_length=1)
    combinations: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("antigens", mode="after")
    @classmethod
    def _named(cls, v: dict[str, Antigen]) -> dict[str, Antigen]:
        return {name: a.model_copy(update={"name": name}) for name, a in v.items()}

    @field_validator("combinations", mode="before")
    @classmethod
    def _combinations(cls, v: Any) -> dict[str, tuple[str, ...]]:  # noqa: ANN401
        out = {}
        for cname, members in (v or {}).items():
            try:
                out[str(cname)] = _codes(members)
            except ValueError as exc:
                raise ValueError(f"{cname}: {exc}") from None
        return out

    @model_validator(mode="after")
    def _known_antigens(self) -> CvxAntigens:
        for cname, names in self.combinations.items():
            unknown = [n for n in names if n not in self.antigens]
            if unknown:
                raise ValueError(f"combinations.{cname}: unknown antigen(s) {unknown}")
        return self


# ---- race_ethnicity.yaml ----------------------------------------------------------------------
class CodeSystems(Spec):
    cdc: tuple[str, ...] = ()
    county: tuple[str, ...] = ()


class RaceEthnicity(Spec):
    version: str = ""
    hispanic: CodeSystems
    not_hispanic: CodeSystems
    unknown_values: tuple[str, ...] = ()
    race_groups: dict[str, tuple[str, ...]]
    categories: dict[str, str]

    @model_validator(mode="after")
    def _labelled(self) -> RaceEthnicity:
        missing = [g for g in [*self.race_groups, "Hispanic", "Unknown"] if g not in self.categories]
        if missing:
            raise ValueError(f"categories: no label for {missing}")
        return self


# ---- risk.yaml ----------------------------------------------------------------------------------
class RiskComponent(Spec):
    cap: int
    points: dict[str, int]


class RiskComponents(Spec):
    utilization: RiskComponent
    chronic_conditions: RiskComponent
    behavioral_health: RiskComponent
    social_needs: RiskComponent


class Tiers(Spec):
    high: int
    rising: int
    low: int

    @model_validator(mode="after")
    def _decreasing(self) -> Tiers:
        if not self.high > self.rising > self.low:
            raise ValueError("thresholds must decrease from high to low")
        return self


class HighUtilizer(Spec):
    ed_visits: int
    unplanned_admissions: int


class Ecm(Spec):
    high_utilizer: HighUtilizer


class Risk(Spec):
    version: str = ""
    lookback_months: int = 12
    components: RiskComponents
    tiers: Tiers
    ecm: Ecm


# ---- measures.yaml ------------------------------------------------------------------------------
class Enrollment(Spec):
    """Continuous-enrollment rule of a measure (jobs/measures/population.py reads it)."""

    after_days: int | None = None
    min_continuous_days: int | None = None
    months_before_anchor: int | None = None
    max_gaps: int | None = None
    max_gap_days: int | None = None
    enrolled_on_anchor: bool | None = None


class WellChildRate(Spec):
    """One W30 rate: the age window and the visits it needs."""

    anchor_months: int
    window_from_months: int
    window_from_days: int
    min_visits: int
    enrollment_from_days: int


# The keys of a measure besides the common ones, as the family code reads them with spec.get().
PARAM_KEYS = ("min_age", "max_age", "index_principal", "index_any", "followup", "followup_first_day",
              "exclude_admission_days", "admissions", "one_visit_per_days", "readmission_days", "enrollment",
              "unit_labels", "codes", "oral_health_procedures", "combination")


class MeasureSpec(Spec):
    """One measure group from measures.yaml (e.g. FUM with rates FUM-7 and FUM-30)."""

    group: str = ""
    family: Literal["ed_followup", "discharge_followup", "dental", "immunization", "well_child", "well_care_year"]
    title: str
    spec: str
    rates: dict[str, int | WellChildRate] = Field(min_length=1)
    sensitivity: str
    min_age: int | None = None
    max_age: int | None = None
    index_principal: tuple[str, ...] | None = None
    index_any: tuple[str, ...] | None = None
    followup: tuple[str, ...] | None = None
    followup_first_day: int | None = None
    exclude_admission_days: int | None = None
    admissions: tuple[str, ...] | None = None
    one_visit_per_days: int | None = None
    readmission_days: int | None = None
    enrollment: Enrollment | None = None
    unit_labels: tuple[str, ...] | None = None
    codes: str | None = None
    oral_health_procedures: str | None = None
    combination: str | None = None

    @field_validator("index_principal", "index_any")
    @classmethod
    def _known_value_sets(cls, v: tuple[str, ...] | None, info: ValidationInfo) -> tuple[str, ...] | None:
        icd = (info.context or {}).get("icd", {})
        for vs in v or ():
            if vs not in icd:
                raise ValueError(f"unknown ICD-10-CM value set {vs!r}")
        return v

    @field_validator("sensitivity")
    @classmethod
    def _known_sensitivity(cls, v: str) -> str:
        if v not in SENSITIVITIES:
            raise ValueError(f"expected one of {SENSITIVITIES}")
        return v

    @field_validator("followup")
    @classmethod
    def _known_evidence(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for kind in v or ():
            if kind not in EVIDENCE_KINDS:
                raise ValueError(f"unknown evidence kind {kind!r} (known: {', '.join(EVIDENCE_KINDS)})")
        return v

    @field_validator("admissions")
    @classmethod
    def _known_admissions(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for kind in v or ():
            if kind not in ADMISSION_KINDS:
                raise ValueError(f"unknown admission kind {kind!r}")
        return v

    @field_validator("unit_labels")
    @classmethod
    def _labels(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for lab in v or ():
            if not _CODE.match(str(lab).replace("_", "")):
                raise ValueError(f"invalid label {lab!r}")
        return v

    @model_validator(mode="after")
    def _family_rules(self, info: ValidationInfo) -> MeasureSpec:
        ctx = info.context or {}
        windowed = self.family == "well_child"
        wrong = [mid for mid, r in self.rates.items() if isinstance(r, WellChildRate) != windowed]
        if wrong:
            need = "an age window (anchor_months, window_from_months, ...)" if windowed else "a number"
            raise ValueError(f"rates: {', '.join(wrong)}: a {self.family} rate is {need}")
        if self.family in ("ed_followup", "discharge_followup") and not self.followup:
            raise ValueError("followup: a follow-up measure needs at least one evidence kind")
        if self.family == "dental":
            if f"cdt.{self.codes}" not in ctx.get("codes", {}):
                raise ValueError(f"codes: unknown CDT list {self.codes!r}")
            ohp = self.oral_health_procedures
            if ohp and f"procedure_codes.{ohp}" not in ctx.get("codes", {}):
                raise ValueError(f"oral_health_procedures: unknown procedure list {ohp!r}")
        if self.family == "immunization" and self.combination not in ctx.get("combinations", {}):
            raise ValueError(f"combination: unknown combination {self.combination!r}")
        return self

    @property
    def measure_ids(self) -> tuple[str, ...]:
        return tuple(self.rates)

    @property
    def thresholds(self) -> dict[str, int]:
        """measure id -> its number (days, services, months); every family but well_child."""
        return {mid: r for mid, r in self.rates.items() if isinstance(r, int)}

    @property
    def windows(self) -> dict[str, WellChildRate]:
        """measure id -> its age window (well_child)."""
        return {mid: r for mid, r in self.rates.items() if isinstance(r, WellChildRate)}

    @property
    def params(self) -> dict[str, Any]:
        """The measure's parameters that are set (everything but the common keys)."""
        out: dict[str, Any] = {}
        for k in PARAM_KEYS:
            v = getattr(self, k)
            if v is not None:
                out[k] = v.model_dump(exclude_none=True) if isinstance(v, Spec) else v
        return out

    def get(self, key: str, default: Any = None) -> Any:  # noqa: ANN401
        return self.params.get(key, default)


class Measures(Spec):
    version: str = ""
    measures: dict[str, MeasureSpec] = Field(min_length=1)

    @field_validator("measures", mode="after")
    @classmethod
    def _named(cls, v: dict[str, MeasureSpec]) -> dict[str, MeasureSpec]:
        return {str(g): m.model_copy(update={"group": str(g)}) for g, m in v.items()}

    @model_validator(mode="after")
    def _unique_ids(self) -> Measures:
        seen: set[str] = set()
        for group, m in self.measures.items():
            for mid in m.rates:
                if mid in seen:
                    raise ValueError(f"measures.{group}.rates: measure id {mid!r} used twice")
                seen.add(mid)
        return self


@dataclass(frozen=True)
class MeasuresConfig:
    """Everything the stage reads from mappings/measures/, validated."""

    icd: dict[str, str]                     # ICD-10-CM value set name -> anchored regex
    chronic: dict[str, str]                 # chronic condition category -> anchored regex
    codes: dict[str, tuple[str, ...]]       # "procedure_codes.well_care" -> codes, etc.
    antigens: dict[str, Antigen]
    combinations: dict[str, tuple[str, ...]]
    race: dict[str, Any]
    risk: dict[str, Any]
    measures: dict[str, MeasureSpec]
    versions: dict[str, str]

    def code_list(self, section: str, name: str) -> tuple[str, ...]:
        key = f"{section}.{name}"
        if key not in self.codes:
            raise SpecError(f"valuesets.yaml: {key}: no such code list")
        return self.codes[key]

    def icd_regex(self, name: str) -> str:
        if name not in self.icd:
            raise SpecError(f"valuesets.yaml: icd10cm.{name}: no such value set")
        return self.icd[name]

    def all_measure_ids(self) -> tuple[str, ...]:
        return tuple(mid for m in self.measures.values() for mid in m.measure_ids)


def _doc(name: str, base: Path) -> Any:  # noqa: ANN401 - raw YAML
    return read_yaml(base / name, label=name, error=SpecError)


def load(base: Path | None = None) -> MeasuresConfig:
    """Load and validate every file in mappings/measures/ (or ``base``)."""
    base = base or MAPPINGS_DIR
    docs = {n: _doc(f"{n}.yaml", base) for n in ("valuesets", "cvx_antigens", "race_ethnicity", "risk", "measures")}
    vs = validate(ValueSets, docs["valuesets"], "valuesets.yaml", error=SpecError)
    cvx = validate(CvxAntigens, docs["cvx_antigens"], "cvx_antigens.yaml", error=SpecError)
    validate(RaceEthnicity, docs["race_ethnicity"], "race_ethnicity.yaml", error=SpecError)
    validate(Risk, docs["risk"], "risk.yaml", error=SpecError)
    icd = {name: v.regex for name, v in vs.icd10cm.items()}
    codes = vs.code_lists()
    meas = validate(Measures, docs["measures"], "measures.yaml", error=SpecError,
                    context={"icd": icd, "codes": codes, "combinations": cvx.combinations})
    return MeasuresConfig(
        icd=icd,
        chronic={k: prefix_regex(v) for k, v in vs.chronic_conditions.categories.items()},
        codes=codes,
        antigens=cvx.antigens,
        combinations=cvx.combinations,
        # The stage reads these two as plain mappings; the models above have checked their shape.
        race=docs["race_ethnicity"],
        risk=docs["risk"],
        measures=meas.measures,
        versions={n: str(d.get("version", "")) for n, d in docs.items()},
    )


@lru_cache(maxsize=1)
def default() -> MeasuresConfig:
    """The shipped configuration, loaded once per process."""
    return load()
