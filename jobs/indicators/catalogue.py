"""The indicator catalogue (mappings/indicators/indicators.yaml) and the standard population, validated.

Why a catalogue: an LHJ epidemiologist must be able to read exactly what "diabetes" or
"preventable admission" means, with the public source of every code list, and a reviewer must be
able to change a list without touching code. Every node is a :class:`phmx.yamlspec.Spec` that
refuses unknown keys; the rules between nodes (an indicator naming a value set that exists, a
prevalence indicator with evidence and a utilization indicator with events) are validators, and
every error names the file and the key.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from jobs.measures.config import IcdValueSet, prefix_regex
from phmx.sensitivity import LEVELS
from phmx.yamlspec import Spec, read_yaml, validate

MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings" / "indicators"
CATALOGUE_FILE = "indicators.yaml"
STANDARD_FILE = "standard_population.yaml"

Ages = tuple[int, int | None]


def _ages(v: Any) -> Ages | None:  # noqa: ANN401 - raw YAML
    if v is None:
        return None
    if not isinstance(v, list | tuple) or len(v) != 2 or not isinstance(v[0], int) \
            or not (v[1] is None or isinstance(v[1], int)):
        raise ValueError("ages must be [lowest, highest] in years (highest may be null)")
    lo, hi = int(v[0]), (None if v[1] is None else int(v[1]))
    if lo < 0 or (hi is not None and hi < lo):
        raise ValueError(f"ages [{lo}, {hi}] is not a range")
    return (lo, hi)


class CodeList(Spec):
    source: str = Field(min_length=1)
    codes: tuple[str, ...] = Field(min_length=1)


class _Evidence(Spec):
    lookback_months: int = Field(12, ge=1, le=60)


class DiagnosisEvidence(_Evidence):
    """CCW-style claims rule: ``inpatient_claims`` inpatient claims or ``other_claims`` other claims
    (outpatient, ED, county services: distinct service days) with a code of ``value_set``."""

    kind: Literal["diagnosis"]
    value_set: str
    inpatient_claims: int = Field(1, ge=1)
    other_claims: int = Field(2, ge=1)


class CountyServiceEvidence(_Evidence):
    kind: Literal["county_service"]
    program: Literal["MH", "SUD"]
    services: int = Field(1, ge=1)


class BmiEvidence(_Evidence):
    """The latest BMI observation (LOINC 39156-5) of the lookback is at least ``at_least``; members
    without one are left out of the denominator (prevalence "where present")."""

    kind: Literal["bmi"]
    at_least: float = Field(gt=0)


class SocialEvidence(_Evidence):
    kind: Literal["social_observation"]
    category: Literal["homelessness"]


class DentalEvidence(_Evidence):
    kind: Literal["dental_visit"]


class RiskTierEvidence(_Evidence):
    """The member's risk tier over the 12 months ending the year's last day (gold.member_risk period
    ``R12-YYYY-12``, :mod:`jobs.measures.risk`) is one of ``tiers``. The lookback is the risk
    model's own (12 months); ``lookback_months`` must say so."""

    kind: Literal["risk_tier"]
    #: ``none``: no tier for that month (a member the risk model has not scored): with it the tier
    #: indicators partition the members, a relation the LHJ suppression protects (``partitions``)
    tiers: tuple[Literal["high", "rising", "low", "none"], ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _twelve(self) -> RiskTierEvidence:
        if self.lookback_months != 12:
            raise ValueError("risk_tier evidence reads the rolling 12-month tier: lookback_months must be 12")
        return self


Evidence = Annotated[DiagnosisEvidence | CountyServiceEvidence | BmiEvidence | SocialEvidence | DentalEvidence
                     | RiskTierEvidence, Field(discriminator="kind")]


class DxGroup(Spec):
    """One component of a composite: a principal-diagnosis value set, optionally for some ages only."""

    value_set: str
    ages: Ages | None = None

    @field_validator("ages", mode="before")
    @classmethod
    def _a(cls, v: Any) -> Ages | None:  # noqa: ANN401
        return _ages(v)


class Events(Spec):
    """What one utilization event is (one per member and day, or per admission date)."""

    kind: Literal["ed_visit", "inpatient_admission", "visit", "dental_visit", "county_service"]
    principal_dx: tuple[DxGroup, ...] = ()
    procedure_codes: str | None = None
    program: Literal["MH", "SUD"] | None = None

    @model_validator(mode="after")
    def _fits(self) -> Events:
        if self.principal_dx and self.kind != "inpatient_admission":
            raise ValueError("principal_dx applies to inpatient_admission events only")
        if self.kind == "visit" and not self.procedure_codes:
            raise ValueError("a visit needs procedure_codes (a procedure_codes list)")
        if self.kind == "county_service" and not self.program:
            raise ValueError("a county_service needs program MH or SUD")
        return self


class Indicator(Spec):
    id: str = ""
    name: str = Field(min_length=1)
    kind: Literal["prevalence", "utilization"]
    source: str = Field(min_length=1)
    sensitivity: str = "general"
    #: the suppression topic (privacy.suppression SENSITIVE_TOPICS); defaults from the sensitivity
    topic: str | None = None
    ages: Ages | None = None
    min_enrolled_months: int | None = Field(None, ge=1, le=12)
    evidence: tuple[Evidence, ...] = ()
    events: Events | None = None

    @field_validator("ages", mode="before")
    @classmethod
    def _a(cls, v: Any) -> Ages | None:  # noqa: ANN401
        return _ages(v)

    @field_validator("sensitivity")
    @classmethod
    def _s(cls, v: str) -> str:
        if v not in LEVELS:
            raise ValueError(f"sensitivity {v!r} is not one of {', '.join(LEVELS)}")
        return v

    @model_validator(mode="after")
    def _shape(self) -> Indicator:
        if self.kind == "prevalence" and (not self.evidence or self.events is not None):
            raise ValueError("a prevalence indicator needs evidence (and no events)")
        if self.kind == "utilization" and (self.events is None or self.evidence):
            raise ValueError("a utilization indicator needs events (and no evidence)")
        if self.kind == "utilization" and self.min_enrolled_months is not None:
            raise ValueError("min_enrolled_months applies to prevalence only")
        return self

    @property
    def multiplier(self) -> int:
        """Per 100 members (prevalence, a percentage) or per 1,000 member-months (utilization)."""
        return 100 if self.kind == "prevalence" else 1000

    @property
    def unit(self) -> str:
        return "per 100 members" if self.kind == "prevalence" else "per 1,000 member-months"

    def in_ages(self, lo: int, hi: int | None) -> bool:
        """Does the age group [lo, hi] overlap the indicator's ages (all ages when none given)?"""
        if self.ages is None:
            return True
        a, b = self.ages
        return (b is None or lo <= b) and (hi is None or hi >= a)


class Languages(Spec):
    source: str = Field(min_length=1)
    aliases: dict[str, str] = Field(default_factory=dict)
    names: dict[str, str] = Field(min_length=1)


class Catalogue(Spec):
    version: str = Field(min_length=1)
    languages: Languages
    min_enrolled_months: int = Field(ge=1, le=12)
    value_sets: dict[str, IcdValueSet] = Field(min_length=1)
    procedure_codes: dict[str, CodeList] = Field(default_factory=dict)
    indicators: dict[str, Indicator] = Field(min_length=1)

    @field_validator("indicators", mode="after")
    @classmethod
    def _named(cls, v: dict[str, Indicator], info: ValidationInfo) -> dict[str, Indicator]:
        return {k: i.model_copy(update={"id": k}) for k, i in v.items()}

    @model_validator(mode="after")
    def _references(self) -> Catalogue:
        problems = []
        for iid, ind in self.indicators.items():
            for n, ev in enumerate(ind.evidence):
                if isinstance(ev, DiagnosisEvidence) and ev.value_set not in self.value_sets:
                    problems.append(f"indicators.{iid}.evidence.{n}.value_set: unknown value set {ev.value_set!r}")
            if ind.events is not None:
                for n, g in enumerate(ind.events.principal_dx):
                    if g.value_set not in self.value_sets:
                        problems.append(f"indicators.{iid}.events.principal_dx.{n}.value_set: "
                                        f"unknown value set {g.value_set!r}")
                pc = ind.events.procedure_codes
                if pc and pc not in self.procedure_codes:
                    problems.append(f"indicators.{iid}.events.procedure_codes: unknown list {pc!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def age_cuts(self) -> tuple[int, ...]:
        """Every age where some indicator (or a composite's component) starts or stops applying:
        cells split there, so an age range either wholly meets an indicator's ages or not."""
        cuts = {0}
        ranges = [i.ages for i in self.indicators.values()]
        ranges += [g.ages for i in self.indicators.values() if i.events for g in i.events.principal_dx]
        for r in ranges:
            if r is not None:
                cuts.add(r[0])
                if r[1] is not None:
                    cuts.add(r[1] + 1)
        return tuple(sorted(cuts))

    def enrolled_months(self, ind: Indicator) -> int:
        return ind.min_enrolled_months or self.min_enrolled_months

    def regex(self, value_set: str) -> str:
        vs = self.value_sets[value_set]
        return prefix_regex(vs.prefixes, vs.patterns)


class AgeGroup(Spec):
    label: str
    low: int
    high: int | None
    weight: float


class StandardPopulation(Spec):
    version: str
    name: str
    source: str = Field(min_length=1)
    groups: tuple[AgeGroup, ...] = Field(min_length=1)

    @field_validator("groups", mode="before")
    @classmethod
    def _groups(cls, v: Any) -> tuple[dict[str, Any], ...]:  # noqa: ANN401
        if not isinstance(v, dict) or not v:
            raise ValueError("groups: label -> [lowest age, highest age or null, persons]")
        out, expect = [], 0
        for label, row in v.items():
            if not isinstance(row, list) or len(row) != 3:
                raise ValueError(f"{label}: expected [lowest age, highest age or null, persons]")
            lo, hi, n = row
            if lo != expect:
                raise ValueError(f"{label}: starts at {lo}, expected {expect} (groups must be contiguous from 0)")
            if hi is None and label != list(v)[-1]:
                raise ValueError(f"{label}: only the last group may be open-ended")
            out.append({"label": str(label), "low": int(lo), "high": None if hi is None else int(hi),
                        "weight": float(n)})
            expect = (hi or 0) + 1
        if out[-1]["high"] is not None:
            raise ValueError("the last group must be open-ended (null highest age)")
        return tuple(out)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(g.label for g in self.groups)

    def group_of(self, age: int) -> str:
        for g in self.groups:
            if age >= g.low and (g.high is None or age <= g.high):
                return g.label
        raise ValueError(f"age {age} is in no group")


def load(base: Path | None = None) -> tuple[Catalogue, StandardPopulation]:
    d = base or MAPPINGS_DIR
    cat = validate(Catalogue, read_yaml(d / CATALOGUE_FILE, label=CATALOGUE_FILE), CATALOGUE_FILE)
    std = validate(StandardPopulation, read_yaml(d / STANDARD_FILE, label=STANDARD_FILE), STANDARD_FILE)
    return cat, std


@lru_cache(maxsize=1)
def default() -> tuple[Catalogue, StandardPopulation]:
    return load()
