"""The whole public FHIR corpus (tests/conformance/fhir_r4_examples, synthea_fhir) through the pipeline.

The Synthea export goes in as one Bulk Data export folder (``fhir_bulk``: NDJSON per type plus its
manifest, with a Practitioner file the hub has no feed for), the HL7 examples file by file into
their feeds. Every stage runs (ingest, conform, identity, consent, measures, publish) and a feed is
published; the SNOMED CT-only Synthea encounters reach measures without failing them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phmx import lakehouse
from phmx.pipeline import run_pipeline

CORPUS = Path(__file__).resolve().parent.parent / "conformance"
PLAN = "mcp_bluecoast"
EXAMPLE_FEEDS = {"Patient": "fhir_patient", "Encounter": "fhir_encounter", "Immunization": "fhir_immunization",
                 "Coverage": "fhir_coverage", "Condition": "fhir_condition", "Observation": "fhir_observation",
                 "Procedure": "fhir_procedure", "MedicationDispense": "fhir_medication_dispense",
                 "MedicationRequest": "fhir_medication_request"}
PRACTITIONER = ('{"resourceType":"Practitioner","id":"pr1","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi",'
                '"value":"9999967793"}],"name":[{"family":"Kihn","given":["Rubin"]}]}\n')


@pytest.fixture(scope="module")
def corpus_run(spark, tmp_path_factory):
    home = tmp_path_factory.mktemp("fhircorpus") / "var"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PHMX_HOME", str(home))
        for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                    "PHMX_KEYS_DIR", "PHMX_LEDGER_ROOT"):
            mp.delenv(var, raising=False)
        bulk = home / "landing" / PLAN / "fhir_bulk" / "2025-01"
        bulk.mkdir(parents=True)
        for f in (CORPUS / "synthea_fhir").iterdir():
            if f.suffix in (".ndjson", ".json"):
                (bulk / f.name).write_bytes(f.read_bytes())
        (bulk / "Practitioner.000.ndjson").write_text(PRACTITIONER)
        for f in sorted((CORPUS / "fhir_r4_examples").glob("*.ndjson")):
            dest = home / "landing" / "mcp_example" / EXAMPLE_FEEDS[f.stem] / "2025-01" / f.name
            dest.parent.mkdir(parents=True)
            dest.write_bytes(f.read_bytes())
        results = {r.stage: r for r in run_pipeline(period="all", run_id="run-fhir-corpus")}
        yield results, home


def _receipts(home: Path, submitter: str) -> dict[str, dict]:
    return {json.loads(p.read_text())["source_file"].rsplit("/", 1)[-1]: json.loads(p.read_text())
            for p in (home / "outbox" / submitter).rglob("*.json")}


def test_bulk_export_is_one_submission_with_a_receipt_per_file(corpus_run):
    _, home = corpus_run
    got = {name: (r["feed"], r["status"], r["rows_accepted"], r["rows_quarantined"])
           for name, r in _receipts(home, PLAN).items()}
    assert got == {
        "manifest.json": ("fhir_bulk", "accepted", 0, 0),
        "Patient.000.ndjson": ("fhir_patient", "accepted", 3, 0),
        "Encounter.000.ndjson": ("fhir_encounter", "accepted", 48, 0),
        "Condition.000.ndjson": ("fhir_condition", "accepted", 29, 0),
        "Procedure.000.ndjson": ("fhir_procedure", "accepted", 75, 0),
        "MedicationRequest.000.ndjson": ("fhir_medication_request", "accepted", 11, 0),
        # Patient/<id> resolved from the export's Patient file
        "Immunization.000.ndjson": ("fhir_immunization", "accepted", 44, 0),
        # no Practitioner feed: kept in quarantine with the reason, nothing lost
        "Practitioner.000.ndjson": ("fhir_bulk", "rejected", 0, 1),
    }
    assert _receipts(home, PLAN)["Practitioner.000.ndjson"]["file_errors"][0]["rule_id"] == "fhir_type_not_taken"


def test_codes_reach_silver_with_their_code_system(spark, corpus_run):
    src = f"{PLAN}:fhir"
    cond = lakehouse.read(spark, "silver.condition").where(f"source = '{src}'").collect()
    assert len(cond) == 29 and all(c.codings and c.codings[0].startswith("http://snomed.info/sct|") for c in cond)
    assert all(c.snomed_code and c.icd10_code is None and c.diagnosis_codes == [] for c in cond)
    enc = lakehouse.read(spark, "silver.encounter").where(f"source = '{src}'").collect()
    assert len(enc) == 48 and all(e.diagnosis_codes == [] for e in enc)  # SNOMED CT only: no ICD-10-CM
    coded = lakehouse.read(spark, "silver.encounter_coding").where(f"source = '{src}'").collect()
    assert len(coded) == 48 and all(c.type_codings[0].startswith("http://snomed.info/sct|") for c in coded)
    assert sum(1 for e in enc if e.provider_id) > 0  # NPIs from conditional Practitioner references
    procs = lakehouse.read(spark, "silver.procedure").where(f"source = '{src}'").count()
    meds = lakehouse.read(spark, "silver.medication_event").where(f"source = '{src}'").collect()
    assert procs == 75 and len(meds) == 11 and all(m.kind == "request" and m.rxnorm_code for m in meds)
    imm = lakehouse.read(spark, "silver.immunization").where(f"source = '{PLAN}'").count()
    assert imm == 44
    obs = lakehouse.read(spark, "silver.observation").where("source = 'mcp_example:fhir'").collect()
    bp = next(o for o in obs if o.loinc_code == "85354-9")
    assert {json.loads(c)["code"] for c in bp.components} == {"http://loinc.org|8480-6", "http://loinc.org|8462-4"}
    bmi = next(o for o in obs if o.loinc_code == "39156-5")
    assert bmi.value_num is not None and bmi.value_unit == "kg/m2"


def test_every_stage_ran_and_a_feed_was_published(corpus_run):
    results, home = corpus_run
    assert set(results) >= {"ingest", "conform", "identity", "consent", "measures", "publish"}
    assert results["ingest"].counts["rows_accepted"] == 277  # every case of the corpus, as tests/conformance says
    from jobs.publish.verify import verify_package

    # The example plan sent FHIR Coverage only (source mcp_example:fhir): its care-team feed is published
    # (it used to fail the whole publish stage with "recipient id 'mcp_example:fhir' is not valid").
    plan = next((home / "publish" / "mcp_example").rglob("manifest.json")).parent
    assert verify_package(plan).recipient == "mcp_example"
