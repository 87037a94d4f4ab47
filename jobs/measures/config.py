"""Measure parameters and value sets, loaded from mappings/measures/*.yaml and validated.

Why validate up front: a measure that silently reads an empty or misspelt value set computes a
plausible-looking 0% rate. Every file is checked when loaded, and every error names the file and
the key (``measures.yaml: measures.FUM.followup: unknown evidence kind ...``) so the fix is
obvious. Nothing here touches the engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from phmx.errors import SpecError
from phmx.sensitivity import LEVELS

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


@dataclass(frozen=True)
class Antigen:
    """One antigen of a vaccine combination: which CVX codes count and the age rules."""

    name: str
    cvx: tuple[str, ...] = ()
    doses: int = 1
    min_age_days: int = 0
    from_first_birthday: bool = False
    rotavirus: bool = False
    two_dose_cvx: tuple[str, ...] = ()
    three_dose_cvx: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasureSpec:
    """One measure group from measures.yaml (e.g. FUM with rates FUM-7 and FUM-30)."""

    group: str
    family: str
    title: str
    spec: str
    rates: dict[str, Any]
    sensitivity: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def measure_ids(self) -> tuple[str, ...]:
        return tuple(self.rates)

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


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


def _read(name: str, base: Path) -> dict[str, Any]:
    path = base / name
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SpecError(f"{name}: file not found in {base}") from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{name}: not valid YAML ({type(exc).__name__})") from exc
    if not isinstance(doc, dict):
        raise SpecError(f"{name}: expected a mapping at the top level")
    return doc


def _strings(value: Any, where: str, *, pattern: re.Pattern[str] = _CODE) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SpecError(f"{where}: expected a non-empty list")
    out = []
    for v in value:
        s = str(v)
        if not pattern.match(s):
            raise SpecError(f"{where}: invalid entry {s!r}")
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


def _icd_sets(doc: dict[str, Any], fname: str) -> dict[str, str]:
    sets = doc.get("icd10cm")
    if not isinstance(sets, dict) or not sets:
        raise SpecError(f"{fname}: icd10cm: expected a mapping of value sets")
    out = {}
    for name, body in sets.items():
        where = f"{fname}: icd10cm.{name}"
        if not isinstance(body, dict) or not body.get("source"):
            raise SpecError(f"{where}: needs a 'source' saying where the list comes from")
        prefixes = _strings(body["prefixes"], f"{where}.prefixes") if "prefixes" in body else ()
        patterns = _strings(body["patterns"], f"{where}.patterns", pattern=_PATTERN) if "patterns" in body else ()
        if not prefixes and not patterns:
            raise SpecError(f"{where}: needs prefixes or patterns")
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise SpecError(f"{where}.patterns: {p!r} is not a regular expression") from exc
        out[str(name)] = prefix_regex(prefixes, patterns)
    return out


def _code_lists(doc: dict[str, Any], fname: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for section in ("procedure_codes", "place_of_service", "cdt", "ndc", "county_bh"):
        body = doc.get(section)
        if not isinstance(body, dict) or not body:
            raise SpecError(f"{fname}: {section}: expected a mapping of code lists")
        for name, entry in body.items():
            where = f"{fname}: {section}.{name}"
            if not isinstance(entry, dict) or not entry.get("source"):
                raise SpecError(f"{where}: needs a 'source'")
            out[f"{section}.{name}"] = _strings(entry.get("codes"), f"{where}.codes")
    return out


def _chronic(doc: dict[str, Any], fname: str) -> dict[str, str]:
    body = doc.get("chronic_conditions") or {}
    cats = body.get("categories")
    if not isinstance(cats, dict) or not cats:
        raise SpecError(f"{fname}: chronic_conditions.categories: expected a mapping")
    return {str(k): prefix_regex(_strings(v, f"{fname}: chronic_conditions.categories.{k}")) for k, v in cats.items()}


def _antigens(doc: dict[str, Any], fname: str) -> tuple[dict[str, Antigen], dict[str, tuple[str, ...]]]:
    body = doc.get("antigens")
    if not isinstance(body, dict) or not body:
        raise SpecError(f"{fname}: antigens: expected a mapping")
    out = {}
    for name, a in body.items():
        where = f"{fname}: antigens.{name}"
        if not isinstance(a, dict):
            raise SpecError(f"{where}: expected a mapping")
        if a.get("rule") == "rotavirus":
            out[name] = Antigen(name, rotavirus=True, min_age_days=int(a.get("min_age_days", 0)),
                                two_dose_cvx=_strings(a.get("two_dose_cvx"), f"{where}.two_dose_cvx"),
                                three_dose_cvx=_strings(a.get("three_dose_cvx"), f"{where}.three_dose_cvx"))
            continue
        if "rule" in a:
            raise SpecError(f"{where}.rule: unknown rule {a['rule']!r} (known: rotavirus)")
        doses = a.get("doses")
        if not isinstance(doses, int) or doses < 1:
            raise SpecError(f"{where}.doses: expected a positive integer")
        out[name] = Antigen(name, cvx=_strings(a.get("cvx"), f"{where}.cvx"), doses=doses,
                            min_age_days=int(a.get("min_age_days", 0)),
                            from_first_birthday=bool(a.get("from_first_birthday", False)))
    combos = {}
    for cname, members in (doc.get("combinations") or {}).items():
        names = _strings(members, f"{fname}: combinations.{cname}")
        unknown = [n for n in names if n not in out]
        if unknown:
            raise SpecError(f"{fname}: combinations.{cname}: unknown antigen(s) {unknown}")
        combos[str(cname)] = names
    return out, combos


def _race(doc: dict[str, Any], fname: str) -> dict[str, Any]:
    for key in ("hispanic", "not_hispanic", "race_groups", "categories"):
        if not isinstance(doc.get(key), dict):
            raise SpecError(f"{fname}: {key}: expected a mapping")
    groups = doc["race_groups"]
    cats = doc["categories"]
    missing = [g for g in [*groups, "Hispanic", "Unknown"] if g not in cats]
    if missing:
        raise SpecError(f"{fname}: categories: no label for {missing}")
    return doc


def _risk(doc: dict[str, Any], fname: str) -> dict[str, Any]:
    comps = doc.get("components")
    if not isinstance(comps, dict):
        raise SpecError(f"{fname}: components: expected a mapping")
    for name in ("utilization", "chronic_conditions", "behavioral_health", "social_needs"):
        c = comps.get(name)
        if not isinstance(c, dict) or not isinstance(c.get("cap"), int) or not isinstance(c.get("points"), dict):
            raise SpecError(f"{fname}: components.{name}: needs an integer cap and a points mapping")
    tiers = doc.get("tiers")
    if not isinstance(tiers, dict) or set(tiers) != {"high", "rising", "low"}:
        raise SpecError(f"{fname}: tiers: expected high, rising and low thresholds")
    if not tiers["high"] > tiers["rising"] > tiers["low"]:
        raise SpecError(f"{fname}: tiers: thresholds must decrease from high to low")
    hu = (doc.get("ecm") or {}).get("high_utilizer") or {}
    if not isinstance(hu.get("ed_visits"), int) or not isinstance(hu.get("unplanned_admissions"), int):
        raise SpecError(f"{fname}: ecm.high_utilizer: needs integer ed_visits and unplanned_admissions")
    return doc


def _measures(doc: dict[str, Any], fname: str, icd: dict[str, str], codes: dict[str, tuple[str, ...]],
              combos: dict[str, tuple[str, ...]]) -> dict[str, MeasureSpec]:
    body = doc.get("measures")
    if not isinstance(body, dict) or not body:
        raise SpecError(f"{fname}: measures: expected a mapping")
    out: dict[str, MeasureSpec] = {}
    seen_ids: set[str] = set()
    for group, m in body.items():
        where = f"{fname}: measures.{group}"
        if not isinstance(m, dict):
            raise SpecError(f"{where}: expected a mapping")
        for key in ("family", "title", "spec", "rates", "sensitivity"):
            if key not in m:
                raise SpecError(f"{where}.{key}: required")
        if m["family"] not in FAMILIES:
            raise SpecError(f"{where}.family: unknown family {m['family']!r} (known: {', '.join(FAMILIES)})")
        if m["sensitivity"] not in SENSITIVITIES:
            raise SpecError(f"{where}.sensitivity: expected one of {SENSITIVITIES}")
        if not isinstance(m["rates"], dict) or not m["rates"]:
            raise SpecError(f"{where}.rates: expected a mapping of measure id -> parameter")
        for mid in m["rates"]:
            if mid in seen_ids:
                raise SpecError(f"{where}.rates: measure id {mid!r} used twice")
            seen_ids.add(mid)
        for key in ("index_principal", "index_any"):
            for vs in m.get(key) or []:
                if vs not in icd:
                    raise SpecError(f"{where}.{key}: unknown ICD-10-CM value set {vs!r}")
        for kind in m.get("followup") or []:
            if kind not in EVIDENCE_KINDS:
                raise SpecError(f"{where}.followup: unknown evidence kind {kind!r} (known: {', '.join(EVIDENCE_KINDS)})")
        for kind in m.get("admissions") or []:
            if kind not in ADMISSION_KINDS:
                raise SpecError(f"{where}.admissions: unknown admission kind {kind!r}")
        if m["family"] in ("ed_followup", "discharge_followup") and not m.get("followup"):
            raise SpecError(f"{where}.followup: a follow-up measure needs at least one evidence kind")
        if m["family"] == "dental":
            if f"cdt.{m.get('codes')}" not in codes:
                raise SpecError(f"{where}.codes: unknown CDT list {m.get('codes')!r}")
            ohp = m.get("oral_health_procedures")
            if ohp and f"procedure_codes.{ohp}" not in codes:
                raise SpecError(f"{where}.oral_health_procedures: unknown procedure list {ohp!r}")
        for lab in m.get("unit_labels") or []:
            if not _CODE.match(str(lab).replace("_", "")):
                raise SpecError(f"{where}.unit_labels: invalid label {lab!r}")
        if m["family"] == "immunization" and m.get("combination") not in combos:
            raise SpecError(f"{where}.combination: unknown combination {m.get('combination')!r}")
        params = {k: v for k, v in m.items() if k not in ("family", "title", "spec", "rates", "sensitivity")}
        out[str(group)] = MeasureSpec(str(group), m["family"], str(m["title"]), str(m["spec"]),
                                      dict(m["rates"]), m["sensitivity"], params)
    return out


def load(base: Path | None = None) -> MeasuresConfig:
    """Load and validate every file in mappings/measures/ (or ``base``)."""
    base = base or MAPPINGS_DIR
    vs = _read("valuesets.yaml", base)
    cvx = _read("cvx_antigens.yaml", base)
    race = _read("race_ethnicity.yaml", base)
    risk = _read("risk.yaml", base)
    meas = _read("measures.yaml", base)
    icd = _icd_sets(vs, "valuesets.yaml")
    codes = _code_lists(vs, "valuesets.yaml")
    antigens, combos = _antigens(cvx, "cvx_antigens.yaml")
    return MeasuresConfig(
        icd=icd,
        chronic=_chronic(vs, "valuesets.yaml"),
        codes=codes,
        antigens=antigens,
        combinations=combos,
        race=_race(race, "race_ethnicity.yaml"),
        risk=_risk(risk, "risk.yaml"),
        measures=_measures(meas, "measures.yaml", icd, codes, combos),
        versions={n: str(d.get("version", "")) for n, d in
                  (("valuesets", vs), ("cvx_antigens", cvx), ("race_ethnicity", race), ("risk", risk),
                   ("measures", meas))},
    )


@lru_cache(maxsize=1)
def default() -> MeasuresConfig:
    """The shipped configuration, loaded once per process."""
    return load()
