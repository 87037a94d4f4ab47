"""Names, descriptions and domains of the measures, for people (dictionary, report, FHIR displays).

The one catalogue is the measures stage's own (``mappings/measures/measures.yaml`` through
``jobs.measures.config``: title, public specification and sensitivity per measure). Publish only
ever carries measures that stage computed, so there is no second list here; an id the catalogue
does not hold is shown as the id itself.
"""

from __future__ import annotations

from functools import lru_cache

from jobs.measures import config


@lru_cache(maxsize=1)
def _catalog() -> dict[str, tuple[str, str, str]]:
    """measure id -> (name, description, sensitivity) from measures.yaml."""
    out: dict[str, tuple[str, str, str]] = {}
    for spec in config.default().measures.values():
        for mid in spec.measure_ids:
            suffix = f" ({mid})" if len(spec.measure_ids) > 1 else ""
            out[mid] = (f"{spec.title}{suffix}", f"Specification: {spec.spec}.", str(spec.sensitivity))
    return out


def describe(measure_id: str) -> tuple[str, str]:
    """(name, description) of a measure."""
    entry = _catalog().get(measure_id) or _catalog().get(measure_id.upper().replace("_", "-"))
    return (entry[0], entry[1]) if entry else (measure_id, "")


#: The measures stage's sensitivity levels that make a measure itself a behavioural-health one.
BEHAVIOURAL_DOMAINS = frozenset({"mh", "sud", "smi"})


def domain(measure_id: str) -> str | None:
    """The measure's own domain as the measures catalogue declares it (``sensitivity`` in
    mappings/measures/measures.yaml: general, mh, sud, ...), or None when it is not catalogued.

    This, not whether some of a measure's units touch sensitive services (TRC-30 counts county
    mental health follow-ups), decides whether a report calls it a mental health or SUD measure."""
    entry = _catalog().get(measure_id)
    return entry[2] if entry else None
