"""A new layout is a YAML change: composite and constant fields, joined files, strict spec keys.

The two-file case uses a real Synthea CSV export (tests/conformance/synthea_csv, see SOURCES.md):
patients.csv joined to immunizations.csv on PATIENT = Id, with a composite dose id.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jobs import ingest
from jobs.ingest.cli import precheck
from jobs.ingest.landing import LandedFile
from jobs.ingest.process import process_file
from jobs.ingest.specs import load_specs
from phmx import lakehouse
from phmx.context import RunContext
from phmx.errors import SpecError
from phmx.feedspec import FEEDS_DIR
from tests.ingest.helpers import RECEIVED, accepted_rows, assert_conserved, land, receipts

SYNTHEA = Path(__file__).resolve().parents[1] / "conformance" / "synthea_csv"
PATIENTS = (SYNTHEA / "patients.csv").read_bytes()
DOSES = (SYNTHEA / "immunizations.csv").read_bytes()
FEED = "immunizations_csv_export"


def _run(data: bytes, feed: str, submitter: str, specs=None, companions=None, name: str = "f.csv"):
    lf = LandedFile(uri=name, relpath=f"{submitter}/{feed}/2025-01/{name}", submitter=submitter, feed=feed,
                    period="2025-01", name=name, size=len(data), layout_ok=True)
    return process_file(lf, data, specs or load_specs(), received_at=RECEIVED, companions=companions)


def _spec_dir(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / "feeds"
    d.mkdir(parents=True)
    for p in FEEDS_DIR.glob("*.yaml"):
        shutil.copy(p, d / p.name)
    (d / name).write_text(text)
    return d


def test_two_files_of_one_export_are_joined_with_a_composite_key():
    out = _run(DOSES, FEED, "registry_synthea", companions={"patients.csv": PATIENTS}, name="immunizations.csv")
    assert_conserved(out)
    assert out.receipt.status == "accepted" and out.receipt.rows_accepted == 29
    first = accepted_rows(out)[0]
    # line 2 of immunizations.csv: its ENCOUNTER and CODE, and the patient's row 2 of patients.csv
    assert first["vaccination_id"] == "0622440b-ab3a-87bf-b0d7-f8145ac11cc5:140"
    assert (first["given_name"], first["birth_date"], first["sex"], first["zip"], first["admin_date"]) == (
        "Maynard46", "2014-10-06", "M", "02155", "2023-10-10")
    assert any("joined with companion file patients.csv" in n for n in out.receipt.notes)


def test_a_dose_without_its_patient_or_with_two_is_quarantined_alone():
    lines = PATIENTS.decode().splitlines()
    gone = "3edac2e3-d223-6fae-d515-daf96ef6bc76"  # the first patient (two doses in immunizations.csv)
    twice = "9d188916-8390-282b-3ec2-73fce6e08649"
    kept = [ln for ln in lines if not ln.startswith(gone)] + [ln for ln in lines if ln.startswith(twice)]
    out = _run(DOSES, FEED, "registry_synthea", companions={"patients.csv": ("\n".join(kept) + "\n").encode()})
    assert_conserved(out)
    dose_lines = DOSES.decode().splitlines()
    expect = {i + 1: "join_unmatched" for i, ln in enumerate(dose_lines) if f",{gone}," in ln}
    expect |= {i + 1: "join_ambiguous" for i, ln in enumerate(dose_lines) if f",{twice}," in ln}
    assert {q["row_number"]: q["rule_id"] for q in out.quarantine} == expect
    assert out.receipt.rows_accepted == 29 - len(expect) and len(expect) >= 2


def test_no_companion_rejects_the_file_and_counts_every_record():
    out = _run(DOSES, FEED, "registry_synthea", companions={})
    assert_conserved(out)
    assert out.receipt.status == "rejected" and out.receipt.rows_quarantined == 29
    assert out.receipt.file_errors[0]["rule_id"] == "join_file_missing"
    assert "patients*.csv" in out.receipt.file_errors[0]["message"]
    broken = _run(DOSES, FEED, "registry_synthea", companions={"patients.csv": b"Name,Other\nx,y\n"})
    assert broken.receipt.file_errors[0]["rule_id"] == "join_file" and "patients.csv" in \
        broken.receipt.file_errors[0]["message"]


def test_phmx_validate_takes_the_companion_with_with():
    r = precheck(DOSES, FEED, name="immunizations.csv", companions={"patients.csv": PATIENTS})
    assert r.status == "accepted" and r.rows_accepted == 29


def test_the_export_lands_as_one_submission_in_the_shared_table(spark, phmx_home):
    land(phmx_home, "registry_synthea", FEED, "2025-01", "patients.csv", PATIENTS)
    land(phmx_home, "registry_synthea", FEED, "2025-01", "immunizations.csv", DOSES)
    result = ingest.run(spark, RunContext.new())
    assert result.counts["files"] == 1 and result.counts["rows_accepted"] == 29
    (r,) = receipts(phmx_home, "registry_synthea")
    assert r["source_file"].endswith("immunizations.csv")
    rows = lakehouse.read(spark, "bronze.immunizations").collect()
    assert len(rows) == 29 and {x.feed for x in rows} == {FEED}
    # A corrected patients file alone is a new submission of the same export (its bytes are covered).
    land(phmx_home, "registry_synthea", FEED, "2025-01", "patients.csv", PATIENTS.replace(b"Maynard46", b"Maynard"))
    again = ingest.run(spark, RunContext.new())
    assert again.counts["files"] == 1 and again.counts["skipped_already_ingested"] == 0
    names = {x.given_name for x in lakehouse.read(spark, "bronze.immunizations").collect()}
    assert "Maynard" in names and "Maynard46" not in names


CONSTANT_VARIANT = """\
feed: mh_csi_one_county
version: "1"
submitters: "county_06019_bh"
bronze_table: mh_csi
sensitivity: mh
format: {type: delimited, delimiter: ",", header: true}
fields:
  - {name: record_type, source: TYPE, type: code, valueset: csi_record_type, required: true}
  - {name: county_code, constant: "10", type: code, valueset: ca_county_code, required: true}
  - {name: client_number, source: [CLINIC, CLIENT], separator: "-", type: string, required: true, max_length: 20}
  - {name: service_date, source: DATE, type: date, format: "%m/%d/%Y"}
rules:
  - {id: duplicate_key, check: duplicate_key, fields: [record_type, county_code, client_number, service_date]}
"""


def test_a_constant_and_a_composite_key_in_a_county_variant(tmp_path):
    specs = load_specs(_spec_dir(tmp_path, "mh_csi_one_county.yaml", CONSTANT_VARIANT))
    body = "TYPE,CLINIC,CLIENT,DATE\nS,A1,0007,01/09/2025\nS,A1,,01/10/2025\nS,B2,0007,01/09/2025\nS,A1,0007,01/09/2025\n"
    out = _run(body.encode(), "mh_csi_one_county", "county_06019_bh", specs=specs)
    assert_conserved(out)
    got = [(r["county_code"], r["client_number"]) for r in accepted_rows(out)]
    assert got == [("10", "A1-0007"), ("10", "B2-0007")]
    # a part missing leaves the key empty (required), a repeat of the composite key is a duplicate
    assert {(q["row_number"], q["rule_id"]) for q in out.quarantine} == {(3, "required"), (5, "duplicate_key")}
    assert not any("county_code" in n for n in out.receipt.notes)  # a constant is not a missing column


def test_a_composite_field_in_a_fixed_width_layout(tmp_path):
    text = """\
feed: fw_composite
version: "1"
format:
  type: fixed_width
  record_type: {start: 1, length: 1}
  layouts:
    C: {length: 12, fields: {record_type: [1, 1], client: [[2, 3], [7, 4]], area: [11, 2]}}
fields:
  - {name: record_type, required: true}
  - {name: client, required: true, separator: "/"}
  - {name: area}
  - {name: county, constant: "10"}
"""
    specs = load_specs(_spec_dir(tmp_path, "fw_composite.yaml", text))
    out = _run(b"CABC  0042XX\nCDEF      YY\n", "fw_composite", "any", specs=specs)
    assert_conserved(out)
    (row,) = accepted_rows(out)
    assert (row["client"], row["area"], row["county"]) == ("ABC/0042", "XX", "10")
    assert [(q["row_number"], q["rule_id"]) for q in out.quarantine] == [(2, "required")]
    with pytest.raises(SpecError, match=r"fields\[1\].source"):
        load_specs(_spec_dir(tmp_path / "b", "fw_composite.yaml", text.replace(
            "{name: client, required: true", "{name: client, source: [A, B], required: true")))


@pytest.mark.parametrize(("text", "key"), [
    ("feed: x1\nversion: '1'\nformat: {type: delimited}\nfields:\n  - {name: a, requird: true}\n", "fields[0].requird"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited, delimter: '|'}\nfields:\n  - {name: a}\n", "format.delimter"),
    ("feed: x1\nversion: '1'\nformat: {type: x12_834}\nfields:\n  - {name: a, constant: '1'}\n", "fields[0].constant"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited}\nfields:\n  - {name: a, source: [A, B], constant: x}\n",
     "fields[0].constant"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited}\nfields:\n  - {name: a, source: [A, {b: 1}]}\n",
     "fields[0].source"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited, header: false}\nfields:\n  - {name: a, source: [A, B]}\n",
     "fields[0].source"),
    ("feed: x1\nversion: '1'\nformat: {type: fhir_ndjson, resource_type: Patient}\nfields:\n"
     "  - {name: a, source: [id, gender]}\n", "fields[0].source"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited, join: {p: {file: 'p*.csv', key: [b], companion_key: [Id]}}}\n"
     "fields:\n  - {name: a}\n", "format.join.p.key"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited, join: {p: {file: 'p*.csv', key: [a], on: [Id]}}}\n"
     "fields:\n  - {name: a}\n", "format.join.p"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited}\nfields:\n  - {name: a}\nrules:\n"
     "  - {id: r, check: date_order, fields: [a, a], agaisnt: {}}\n", "rules[0].agaisnt"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited}\nfields:\n  - {name: a, max_length: 0}\n",
     "fields[0].max_length"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited}\nfields:\n  - {name: a, separator: '-'}\n",
     "fields[0].separator"),
], ids=["field-typo", "format-typo", "constant-in-x12", "constant-with-source", "bad-list-source",
        "composite-without-header", "fhir-list-source", "join-unknown-key", "join-on-key", "rule-typo", "bad-number",
        "separator-without-composite"])
def test_spec_mistakes_are_refused_at_load_naming_file_and_key(tmp_path, text, key):
    with pytest.raises(SpecError) as exc:
        load_specs(_spec_dir(tmp_path, "x1.yaml", text))
    assert key in str(exc.value) and "x1.yaml" in str(exc.value)


def test_the_committed_export_spec_documents_its_join():
    from jobs.ingest import feeddocs

    md = (feeddocs.DOCS_DIR / f"{FEED}.md").read_text()
    assert "`ENCOUNTER` + `CODE` joined with `:`" in md and "patients*.csv" in md
