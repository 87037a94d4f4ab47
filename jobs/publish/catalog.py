"""Names and short descriptions of the measures, for people (dictionary, report, FHIR displays).

Prefers the measures stage's own catalogue (``mappings/measures/measures.yaml`` through
``jobs.measures.config``: title and public specification per measure) when it is installed; the entries here cover the
measures named in the project's domain notes (NCQA HEDIS, CMS Core Set, DQA, DHCS PHM), so a
feed built before that stage lands still reads well. Unknown ids fall back to the id itself.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

BASE: dict[str, tuple[str, str]] = {
    "FUM-7": ("Follow-up after ED visit for mental illness, 7 days",
              "ED visits (age 6+) with a principal diagnosis of mental illness or intentional self-harm, "
              "followed by a mental health visit within 7 days."),
    "FUM-30": ("Follow-up after ED visit for mental illness, 30 days", "As FUM-7, within 30 days."),
    "FUA-7": ("Follow-up after ED visit for substance use, 7 days",
              "ED visits (age 13+) for substance use or overdose, followed by follow-up within 7 days."),
    "FUA-30": ("Follow-up after ED visit for substance use, 30 days", "As FUA-7, within 30 days."),
    "FUH-7": ("Follow-up after hospitalization for mental illness, 7 days",
              "Acute inpatient discharges for mental illness (age 6+), follow-up within 7 days."),
    "FUH-30": ("Follow-up after hospitalization for mental illness, 30 days", "As FUH-7, within 30 days."),
    "OEV-CH": ("Oral evaluation, children (DQA)",
               "Enrolled children under 21 with a comprehensive or periodic oral evaluation in the year."),
    "TFL-CH": ("Topical fluoride, children (DQA)",
               "Children aged 1-20 with at least two topical fluoride applications in the year."),
    "CIS-10": ("Childhood immunization status, combination 10",
               "Children with the vaccine series by their second birthday, from immunization records."),
    "IMA-2": ("Immunizations for adolescents, combination 2",
              "Adolescents with the vaccine series by their 13th birthday."),
    "TCM-30": ("Transitional care follow-up, 30 days",
               "Discharges with an ambulatory follow-up within 30 days (DHCS PHM policy)."),
}


@lru_cache(maxsize=1)
def _stage_catalog() -> dict[str, Any]:
    """measure id -> {name, description} from the measures stage's measures.yaml, when installed."""
    try:
        from jobs.measures import config

        cfg = config.default()
    except Exception:  # noqa: BLE001 - the catalogue is a nicety; fall back to BASE
        return {}
    out: dict[str, Any] = {}
    for spec in cfg.measures.values():
        for mid in spec.measure_ids:
            suffix = f" ({mid})" if len(spec.measure_ids) > 1 else ""
            out[mid] = {"name": f"{spec.title}{suffix}", "description": f"Specification: {spec.spec}."}
    return out


def describe(measure_id: str) -> tuple[str, str]:
    """(name, description) of a measure."""
    entry = _stage_catalog().get(measure_id)
    if entry is not None:
        name = getattr(entry, "name", None) or (entry.get("name") if isinstance(entry, dict) else None)
        desc = getattr(entry, "description", None) or (entry.get("description") if isinstance(entry, dict) else None)
        if name:
            return str(name), str(desc or "")
    for key, val in BASE.items():
        if measure_id.upper() == key or measure_id.upper().replace("_", "-") == key:
            return val
    return measure_id, ""


#: The measures stage's sensitivity levels that make a measure itself a behavioural-health one.
BEHAVIOURAL_DOMAINS = frozenset({"mh", "sud", "smi"})


@lru_cache(maxsize=1)
def _domains() -> dict[str, str]:
    try:
        from jobs.measures import config

        cfg = config.default()
    except Exception:  # noqa: BLE001 - without the stage's catalogue no measure is labelled by domain
        return {}
    return {mid: str(spec.sensitivity) for spec in cfg.measures.values() for mid in spec.measure_ids}


def domain(measure_id: str) -> str | None:
    """The measure's own domain as the measures catalogue declares it (``sensitivity`` in
    mappings/measures/measures.yaml: general, mh, sud, ...), or None when it is not catalogued.

    This, not whether some of a measure's units touch sensitive services (TRC-30 counts county
    mental health follow-ups), decides whether a report calls it a mental health or SUD measure."""
    return _domains().get(measure_id)
