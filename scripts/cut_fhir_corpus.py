"""Cut the FHIR part of the conformance corpus from its public sources (run by hand, not in CI).

Usage: python scripts/cut_fhir_corpus.py <hl7.fhir.r4.examples package dir> <synthea bulk dir>

* ``hl7.fhir.r4.examples`` 4.0.1 (npm, CC0-1.0): each example resource of the types the hub takes,
  compacted to one line, into ``tests/conformance/fhir_r4_examples/<Type>.ndjson`` (Observation
  and the medication resources cut to the examples named below to stay small).
* smart-on-fhir/sample-bulk-fhir-datasets, branch ``10-patients`` (Synthea output, CC0): every
  resource of three living patients, in the export's own file names, into
  ``tests/conformance/synthea_fhir/``, plus a Bulk Data manifest listing the files.
The resources themselves are not changed (key order and whitespace only).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "conformance"
TYPES = ["Patient", "Encounter", "Immunization", "Coverage", "Condition", "Observation", "Procedure",
         "MedicationDispense", "MedicationRequest"]
# Vitals (US Core vital signs incl. blood pressure components and BMI), labs, a coded value, a
# cancelled one and one with no value: enough to show each path through the Observation feed.
OBSERVATIONS = ["blood-pressure", "blood-pressure-cancel", "bmi", "body-height", "body-temperature", "heart-rate",
                "respiratory-rate", "satO2", "head-circumference", "f001", "f002", "f003", "f005", "f202",
                "bgpanel", "example", "glasgow", "eye-color", "rhstatus", "vitals-panel", "10minute-apgar-score",
                "date-lastmp", "secondsmoke"]
MEDS = {"MedicationDispense": ["meddisp008", "meddisp0301", "meddisp0302", "meddisp0305", "meddisp0306",
                               "meddisp0307", "meddisp0309", "meddisp0310", "meddisp0315", "meddisp0317"],
        "MedicationRequest": ["medrx002", "medrx0301", "medrx0302", "medrx0305", "medrx0306", "medrx0307",
                              "medrx0309", "medrx0310", "medrx0311", "medrx0320"]}
SYNTHEA_PATIENTS = ("63ee2253", "bb6a9034", "cbc86e51")
SYNTHEA_TYPES = ["Patient", "Encounter", "Condition", "Immunization", "Procedure", "MedicationRequest"]


def compact(res: dict) -> str:
    return json.dumps(res, separators=(",", ":"), ensure_ascii=False)


def examples(pkg: Path) -> None:
    dest = OUT / "fhir_r4_examples"
    dest.mkdir(parents=True, exist_ok=True)
    for t in TYPES:
        files = sorted(pkg.glob(f"{t}-*.json"))
        if t == "Observation":
            files = [pkg / f"Observation-{n}.json" for n in OBSERVATIONS]
        elif t in MEDS:
            files = [pkg / f"{t}-{n}.json" for n in MEDS[t]]
        lines = [compact(json.loads(f.read_text(encoding="utf-8"))) for f in files]
        (dest / f"{t}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")


def synthea(src: Path) -> None:
    dest = OUT / "synthea_fhir"
    dest.mkdir(parents=True, exist_ok=True)
    refs = set()
    output = []
    for t in SYNTHEA_TYPES:
        name = f"{t}.000.ndjson"
        keep = []
        for line in (src / name).read_text(encoding="utf-8").splitlines():
            res = json.loads(line)
            if t == "Patient":
                ok = res["id"].startswith(SYNTHEA_PATIENTS)
                if ok:
                    refs.add(f"Patient/{res['id']}")
            else:
                ref = (res.get("subject") or res.get("patient") or {}).get("reference")
                ok = ref in refs
            if ok:
                keep.append(line)
        (dest / name).write_text("\n".join(keep) + "\n", encoding="utf-8")
        output.append({"type": t, "url": f"https://example.com/fhir/bulkfiles/{name}", "count": len(keep)})
    manifest = {"transactionTime": "2024-08-06T18:12:57Z", "request": "https://example.com/fhir/Group/sample-10/$export",
                "requiresAccessToken": True, "output": output, "error": []}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    examples(Path(sys.argv[1]))
    synthea(Path(sys.argv[2]))
