"""Property: any FHIR export that is valid by the standard goes through intake, conform, identity,
consent and measures without stopping the run, and every record is accepted or quarantined.

Hypothesis draws whole Bulk Data exports (Patients and the resources that reference them) from
what FHIR R4 allows: codes in any system (SNOMED CT only, ICD-10-CM with or without the dot,
unknown systems), no reasonCode at all, optional periods (start only, end only, none), date-only
and offset dateTimes, every status, Observation values of every kind and components. Each draw is
one pipeline run, so the number of draws is kept small (item 6 of the issue: a couple of minutes).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SNOMED, ICD, LOINC = "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm", "http://loinc.org"
CPT, CVX = "http://www.ama-assn.org/go/cpt", "http://hl7.org/fhir/sid/cvx"
PLAN = "mcp_prop"

codings = st.lists(st.one_of(
    st.builds(lambda c: {"system": SNOMED, "code": c}, st.sampled_from(["44054006", "35489007", "72892002"])),
    st.builds(lambda c: {"system": ICD, "code": c}, st.sampled_from(["F329", "F32.9", "F1120", "J45.909", "Z00129"])),
    st.builds(lambda c: {"system": LOINC, "code": c}, st.sampled_from(["4548-4", "44261-6", "85354-9"])),
    st.builds(lambda c: {"system": "urn:oid:2.16.840.1.113883.6.96", "code": c}, st.text("0123456789", min_size=1, max_size=9)),
), min_size=0, max_size=3)
day = st.dates(min_value=date(2024, 1, 1), max_value=date(2025, 12, 31))
offset = st.sampled_from(["Z", "-08:00", "+05:30", "-07:00"])
datetime_ = st.one_of(day.map(str), st.tuples(day, st.integers(0, 23), offset).map(
    lambda t: f"{t[0]}T{t[1]:02d}:15:00{t[2]}"))


def concept(cs: list[dict]) -> dict:
    return {"coding": cs} if cs else {"text": "free text only"}


@st.composite
def export(draw: Any) -> dict[str, list[dict]]:  # noqa: ANN401 - hypothesis draw
    n = draw(st.integers(2, 6))
    pats = [{"resourceType": "Patient", "id": f"p{i}", "name": [{"family": f"Fam{i}", "given": [f"Giv{i}"]}],
             "gender": draw(st.sampled_from(["male", "female", "other", "unknown"])),
             "birthDate": str(draw(st.dates(min_value=date(1940, 1, 1),
                                            max_value=date(2023, 1, 1))))}
            for i in range(n)]
    ref = st.integers(0, n - 1).map(lambda i: {"reference": f"Patient/p{i}"})
    out: dict[str, list[dict]] = {"Patient": pats, "Encounter": [], "Condition": [], "Observation": [],
                                  "Procedure": [], "Immunization": []}
    for k in range(draw(st.integers(1, 8))):
        enc: dict[str, Any] = {"resourceType": "Encounter", "id": f"e{k}", "subject": draw(ref),
                               "status": draw(st.sampled_from(["planned", "arrived", "in-progress", "finished",
                                                               "cancelled", "entered-in-error", "unknown"])),
                               "class": {"code": draw(st.sampled_from(["EMER", "IMP", "AMB", "VR", "HH"]))}}
        period = {k2: draw(datetime_) for k2 in draw(st.sampled_from([(), ("start",), ("end",), ("start", "end")]))}
        if period:
            enc["period"] = period
        reasons = draw(st.lists(codings, max_size=3))
        if reasons:
            enc["reasonCode"] = [concept(c) for c in reasons]
        types = draw(codings)
        if types:
            enc["type"] = [concept(types)]
        out["Encounter"].append(enc)
    for k in range(draw(st.integers(0, 5))):
        cond: dict[str, Any] = {"resourceType": "Condition", "id": f"c{k}", "subject": draw(ref),
                                "code": concept(draw(codings))}
        vs = draw(st.sampled_from([None, "confirmed", "refuted", "entered-in-error", "provisional"]))
        if vs:
            cond["verificationStatus"] = {"coding": [{"code": vs}]}
        if draw(st.booleans()):
            cond["onsetDateTime"] = draw(datetime_)
        out["Condition"].append(cond)
    for k in range(draw(st.integers(0, 5))):
        obs: dict[str, Any] = {"resourceType": "Observation", "id": f"o{k}", "subject": draw(ref),
                               "status": draw(st.sampled_from(["final", "preliminary", "amended", "cancelled"])),
                               "code": concept(draw(codings))}
        if draw(st.booleans()):
            obs["effectiveDateTime"] = draw(datetime_)
        value = draw(st.sampled_from(["q", "i", "c", "s", None]))
        if value == "q":
            obs["valueQuantity"] = {"value": draw(st.floats(-1e6, 1e6, allow_nan=False)), "unit": "mg"}
        elif value == "i":
            obs["valueInteger"] = draw(st.integers(0, 27))
        elif value == "c":
            obs["valueCodeableConcept"] = concept(draw(codings))
        elif value == "s":
            obs["valueString"] = draw(st.text(max_size=20))
        comps = draw(st.lists(codings.filter(bool), max_size=2))
        if comps:
            obs["component"] = [{"code": {"coding": c}, "valueQuantity": {"value": 120}} for c in comps]
        out["Observation"].append(obs)
    for k in range(draw(st.integers(0, 4))):
        proc: dict[str, Any] = {"resourceType": "Procedure", "id": f"r{k}", "subject": draw(ref),
                                "status": draw(st.sampled_from(["completed", "not-done", "in-progress"])),
                                "code": concept(draw(codings))}
        if draw(st.booleans()):
            proc["performedDateTime"] = draw(datetime_)
        out["Procedure"].append(proc)
    for k in range(draw(st.integers(0, 4))):
        out["Immunization"].append({
            "resourceType": "Immunization", "id": f"i{k}", "patient": draw(ref),
            "status": draw(st.sampled_from(["completed", "not-done", "entered-in-error"])),
            "vaccineCode": {"coding": [{"system": CVX, "code": draw(st.sampled_from(["08", "20", "03", "999"]))}]},
            "occurrenceDateTime": draw(datetime_)})
    return out


@pytest.mark.slow
@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(export())
def test_any_standard_valid_export_runs_through_conform_and_measures(spark, resources):
    from phmx import lakehouse
    from phmx.pipeline import run_pipeline

    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        home = Path(tmp) / "var"
        mp.setenv("PHMX_HOME", str(home))
        for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                    "PHMX_KEYS_DIR", "PHMX_LEDGER_ROOT"):
            mp.delenv(var, raising=False)
        folder = home / "landing" / PLAN / "fhir_bulk" / "2025-06"
        folder.mkdir(parents=True)
        for rtype, items in resources.items():
            if items:
                (folder / f"{rtype}.000.ndjson").write_bytes(b"\n".join(orjson.dumps(r) for r in items) + b"\n")
        results = {r.stage: r for r in run_pipeline(period="all", run_id="run-prop",
                                                    stages=["ingest", "conform", "identity", "consent", "measures"])}
        assert set(results) == {"ingest", "conform", "identity", "consent", "measures"}
        receipts = [json.loads(p.read_text()) for p in (home / "outbox" / PLAN).rglob("*.json")]
        assert {os.path.basename(r["source_file"]) for r in receipts} == {p.name for p in folder.iterdir()}
        for r in receipts:  # every record accepted or quarantined with a rule
            assert r["rows_landed"] == r["rows_accepted"] + r["rows_quarantined"]
        accepted = {r["feed"]: r["rows_accepted"] for r in receipts}
        for feed, table in (("fhir_encounter", "silver.encounter"), ("fhir_condition", "silver.condition"),
                            ("fhir_observation", "silver.observation"), ("fhir_procedure", "silver.procedure")):
            if accepted.get(feed):
                assert lakehouse.read(spark, table).where(f"source = '{PLAN}:fhir'").count() == accepted[feed]
