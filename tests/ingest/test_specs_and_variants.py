"""Specs as data: a county variant is YAML only; spec mistakes name the file and key; guides are current."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jobs import ingest
from jobs.ingest import feeddocs
from jobs.ingest.specs import load_specs
from phmx import lakehouse
from phmx.context import RunContext
from phmx.errors import SpecError
from phmx.feedspec import FEEDS_DIR
from tests.ingest.helpers import land, receipts

FRESNO_HEADER = ("REC_TYPE|CNTY|CLIENT_NO|MEDI_CAL_ID|SSN|FIRST_NM|LAST_NM|DOB|SEX_CD|RACE_CD|ETH_CD|ZIP|SVC_DT|MODE|"
                 "SVC_FN|UNITS|MINUTES|DX_CD|LIVING|EMPLOY|EDUC")


def fresno(**values: str) -> str:
    return "|".join(values.get(c, "") for c in FRESNO_HEADER.split("|"))


def test_county_variant_lands_in_the_shared_bronze_table(spark, phmx_home):
    rows = [fresno(REC_TYPE="C", CNTY="10", CLIENT_NO="F-001", MEDI_CAL_ID="91234567A", FIRST_NM="Ana",
                   LAST_NM="Ruiz", DOB="03/14/1990", SEX_CD="2", RACE_CD="2106-3", ZIP="93721"),
            fresno(REC_TYPE="S", CNTY="10", CLIENT_NO="F-001", SVC_DT="01/09/2025", MODE="15", SVC_FN="30",
                   UNITS="1.5", MINUTES="45", DX_CD="F329"),
            fresno(REC_TYPE="C", CNTY="10", CLIENT_NO="F-002", LAST_NM="Lee", DOB="12/01/1985", SEX_CD="7")]
    land(phmx_home, "county_06019_bh", "mh_csi_06019", "2025-01", "fresno.txt",
         "\n".join([FRESNO_HEADER, *rows]) + "\n")
    ingest.run(spark, RunContext.new())
    (r,) = receipts(phmx_home, "county_06019_bh")
    assert r["status"] == "accepted_with_errors"
    assert {(e["rule_id"], e["field"]) for e in r["errors"]} == {("required", "given_name"), ("code_set", "sex")}
    got = {x.client_number: x for x in lakehouse.read(spark, "bronze.mh_csi").collect()}
    assert set(got) == {"F-001"} and len(lakehouse.read(spark, "bronze.mh_csi").collect()) == 2
    client = next(x for x in lakehouse.read(spark, "bronze.mh_csi").collect() if x.record_type == "C")
    service = next(x for x in lakehouse.read(spark, "bronze.mh_csi").collect() if x.record_type == "S")
    assert (client.birth_date, client.sex, client.given_name) == ("1990-03-14", "F", "Ana")
    assert (service.service_date, service.units_of_service, service.feed) == ("2025-01-09", "1.5", "mh_csi_06019")


def _spec_dir(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / "feeds"
    d.mkdir()
    for p in FEEDS_DIR.glob("*.yaml"):
        shutil.copy(p, d / p.name)
    (d / name).write_text(text)
    return d


@pytest.mark.parametrize(("text", "key"), [
    ("feed: x1\nversion: '1'\nformat: {type: delimited}\nfields:\n  - {name: a, type: date}\n", "fields[0].format"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited}\nfields:\n  - {name: a, type: code, valueset: nope}\n",
     "value set 'nope'"),
    ("feed: x1\nversion: '1'\nformat: {type: x12_834}\nfields:\n  - {name: a, source: 'REF[0F]'}\n",
     "fields[0].source"),
    ("feed: x1\nversion: '1'\nformat: {type: hl7_vxu}\nfields:\n  - {name: a, source: 'PID.5'}\n", "fields[0].source"),
    ("feed: x1\nversion: '1'\nformat: {type: fhir_ndjson, resource_type: Pateint}\nfields:\n  - {name: a, source: id}\n",
     "format.resource_type"),
    ("feed: x1\nversion: '1'\nbronze_table: enrollment\nformat: {type: delimited}\nfields:\n  - {name: bogus}\n",
     "fields: not columns of bronze.enrollment"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited}\nfields:\n  - {name: a}\nrules:\n"
     "  - {id: c, check: within_coverage, fields: [a, a, a], against: {table: enrollment, fields: [a, b, c, d]}}\n",
     "rules[0].severity"),
    ("feed: x1\nversion: '1'\nformt: {type: delimited}\nformat: {type: delimited}\nfields: []\n", "formt"),
    ("feed: x1\nversion: '1'\nformat: {type: delimited}\nfields:\n  - {name: a}\nhow_to_fix: {requird: x}\n",
     "how_to_fix.requird"),
], ids=["date-without-format", "unknown-valueset", "bad-x12-path", "bad-hl7-path", "bad-resource", "variant-extra",
        "coverage-as-error", "typo-key", "typo-fix-rule"])
def test_spec_mistakes_name_the_file_and_key(tmp_path, text, key):
    d = _spec_dir(tmp_path, "x1.yaml", text)
    with pytest.raises(SpecError) as exc:
        load_specs(d)
    assert key in str(exc.value)
    assert "x1.yaml" in str(exc.value) or "nope" in str(exc.value)


def test_every_committed_spec_loads_and_every_variant_matches_its_base():
    specs = load_specs()
    variants = {s.feed: s.variant_of for s in specs.values() if s.variant_of}
    assert variants == {"enrollment_834": "enrollment", "immunizations_vxu": "immunizations",
                        "mh_csi_fixed": "mh_csi", "mh_csi_06019": "mh_csi", "fhir_immunization": "immunizations",
                        "immunizations_csv_export": "immunizations"}


def test_committed_feed_guides_are_current():
    assert feeddocs.stale() == [], "run: python -m jobs.ingest.feeddocs"
    html = (feeddocs.DOCS_DIR / "enrollment_834.html").read_text()
    assert "<table>" in html and "REF[0F].02" in html and "x12_se_count" in html
