"""FHIR R4 NDJSON: every resource feed from the synthetic writers, bad lines, Consent into bronze."""

from __future__ import annotations

import json
import shutil

import orjson
import pytest

from jobs import ingest
from phmx import lakehouse
from phmx.context import RunContext
from tests.ingest.conftest import synth_file, synth_rows
from tests.ingest.helpers import accepted_rows, assert_conserved, receipts, run_file


@pytest.mark.parametrize(("submitter", "feed"), [
    ("mcp_bluecoast", "fhir_patient"), ("mcp_bluecoast", "fhir_coverage"), ("mcp_bluecoast", "fhir_encounter"),
    ("cair2", "fhir_immunization"), ("county_06001_bh", "fhir_consent"),
])
def test_synthetic_resources_validate_and_load(synth_root, submitter, feed):
    data = synth_file(synth_root, submitter, feed).read_bytes()
    out = run_file(data, feed, submitter)
    assert out.receipt.status == "accepted", out.receipt.errors
    assert out.receipt.rows_landed == len(data.splitlines())
    assert_conserved(out)


def test_immunization_lines_carry_what_the_csv_row_carries(synth_root):
    rows = synth_rows(synth_root, "cair2", "immunizations")
    got = accepted_rows(run_file(synth_file(synth_root, "cair2", "fhir_immunization").read_bytes(),
                                 "fhir_immunization", "cair2"))
    assert len(got) == len(rows)
    for src, row in zip(rows, got, strict=True):
        for f, v in src.items():
            assert row[f] == (v or None), f


def test_patient_fields_and_gender_map(synth_root):
    rows = {r["member_local_id"]: r for r in synth_rows(synth_root, "mcp_bluecoast", "enrollment")}
    got = accepted_rows(run_file(synth_file(synth_root, "mcp_bluecoast", "fhir_patient").read_bytes(),
                                 "fhir_patient", "mcp_bluecoast"))
    for row in got:
        src = rows[row["patient_id"]]
        assert row["sex"] == src["sex"] and row["cin"] == (src["cin"] or None)
        assert row["county_fips"] == src["county_fips"] and row["race"] == (src["race"] or None)


def test_bad_lines_are_quarantined_one_by_one(synth_root):
    lines = synth_file(synth_root, "mcp_bluecoast", "fhir_patient").read_bytes().splitlines()[:8]
    bad_date = orjson.loads(lines[3])
    bad_date["birthDate"] = "1980-13-45"
    lines[1] = b'{"resourceType": "Patient", "id": '          # cut short
    lines[2] = orjson.dumps({"resourceType": "Coverage", "id": "x", "status": "active"})
    lines[3] = orjson.dumps(bad_date)
    lines[4] = b"[1, 2, 3]"
    out = run_file(b"\n".join(lines) + b"\n\n", "fhir_patient", "mcp_bluecoast")
    r = out.receipt
    by_rule: dict[str, list[int]] = {}
    for e in r.errors:
        by_rule[e["rule_id"]] = sorted(by_rule.get(e["rule_id"], []) + e["rows"])
    assert by_rule == {"fhir_json": [2, 5], "fhir_resource_type": [3], "fhir_invalid": [4]}
    assert r.rows_accepted == 4
    assert_conserved(out)
    msg = next(e["message"] for e in r.errors if e["rule_id"] == "fhir_invalid")
    assert "Patient.birthDate" in msg and "1980-13-45" not in json.dumps(r.errors)


def test_consents_land_in_bronze_fhir_consent_for_the_registry(spark, phmx_home, synth_root):
    src = synth_file(synth_root, "county_06001_bh", "fhir_consent")
    dest = phmx_home / "landing" / "county_06001_bh" / "fhir_consent" / "2025-01" / src.name
    dest.parent.mkdir(parents=True)
    shutil.copy(src, dest)
    ingest.run(spark, RunContext.new())
    (r,) = receipts(phmx_home, "county_06001_bh")
    assert r["status"] == "accepted"
    rows = lakehouse.read(spark, "bronze.fhir_consent").orderBy("row_number").collect()
    assert len(rows) == r["rows_accepted"] == len(src.read_bytes().splitlines())
    first = json.loads(rows[0].resource_json)
    assert first["resourceType"] == "Consent" and first["id"] == rows[0].consent_id
    assert rows[0].patient_id and not rows[0].patient_id.startswith("Patient/")
    assert rows[0].period_start and "T" in rows[0].period_start  # normalised ISO timestamp
