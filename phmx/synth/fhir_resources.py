"""The FHIR R4 Patient and Observation resources the synthetic plans send, and the NDJSON landing
files that hold them: one builder for every synthetic writer (the ECM clinical histories in
:mod:`phmx.synth.ecm_clinical`, the adults' BMI in :mod:`phmx.synth.bmi`).

Why one place: two writers send Observations for the same plans and months, and the hub keeps only
the latest file of a (submitter, feed, period) (``on_resubmit: replace``). So both must build the
resources the same way (the paths ``mappings/feeds/fhir_observation.yaml`` and ``fhir_patient.yaml``
read) and add their lines to one file per period instead of each writing its own
(:func:`merge_ndjson`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CIN_SYSTEM = "urn:phmx:medi-cal-cin"
GENDER = {"F": "female", "M": "male", "X": "other"}


def quantity(value: float, unit: str) -> dict[str, Any]:
    """A UCUM valueQuantity (``unit`` is both the human unit and the UCUM code)."""
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def observation(oid: str, patient_id: str, loinc: str, day: date, value: Mapping[str, Any]) -> dict[str, Any]:
    """A final Observation coded in LOINC about ``Patient/<patient_id>`` on ``day``; ``value`` holds
    its value[x] and/or component keys (e.g. ``{"valueQuantity": quantity(31.2, "kg/m2")}``)."""
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "subject": {"reference": f"Patient/{patient_id}"}, "effectiveDateTime": day.isoformat(), **value}


def patient(patient_id: str, who: Mapping[str, str]) -> dict[str, Any]:
    """A Patient from a plan's roster row (``cin``, names, ``birth_date``, ``sex``; address fields
    when present), so identity links it to the member the roster describes."""
    res: dict[str, Any] = {"resourceType": "Patient", "id": patient_id}
    if who.get("cin"):
        res["identifier"] = [{"system": CIN_SYSTEM, "value": who["cin"]}]
    res["name"] = [{"family": who["family_name"], "given": [who["given_name"]]}]
    res["birthDate"] = who["birth_date"]
    res["gender"] = GENDER.get(who.get("sex", ""), "unknown")
    addr: dict[str, Any] = {k: who[f] for k, f in (("city", "city"), ("state", "state"), ("postalCode", "zip"),
                                   ("district", "county_fips")) if who.get(f)}
    if who.get("address_line"):
        addr["line"] = [who["address_line"]]
    if addr:
        res["address"] = [addr]
    return res


def landing_ndjson(submitter: str, feed: str, period: str) -> str:
    """The landing path of a submitter's FHIR NDJSON file for a feed and period."""
    return f"landing/{submitter}/{feed}/{period}/{submitter}_{feed}_{period.replace('-', '')}.ndjson"


def sent_patient_ids(root: Path) -> set[tuple[str, str]]:
    """(plan submitter, Patient id) of every Patient the plans' FHIR files under ``root`` already hold
    (the ``fhir_patient`` variant format writes one per member under the plan's member id): a writer
    adding readings for a member references that Patient rather than sending a second one under
    another id, which a recipient would take for a second person."""
    sent: set[tuple[str, str]] = set()
    for path in sorted((root / "landing").glob("mcp_*/fhir_patient/*/*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                sent.add((path.parts[-4], str(json.loads(line)["id"])))
    return sent


def merge_ndjson(path: Path, resources: Iterable[Mapping[str, Any]]) -> int:
    """Add ``resources`` to the NDJSON file at ``path`` (created if absent): a resource whose id the
    file already holds replaces that line in place, new ones follow in order. Writing the same
    resources twice leaves the file as it was. Returns the number of lines in the file."""
    lines: dict[str, str] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                lines[json.loads(line)["id"]] = line
    for res in resources:
        lines[str(res["id"])] = json.dumps(res)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines.values()), encoding="utf-8")
    return len(lines)
