"""The whole pipeline in-process on a handful of hand-built files from all four source types."""

from __future__ import annotations

import json

from testkit import csv_rows

from phmx import lakehouse
from phmx.feedspec import get_spec
from phmx.pipeline import run_pipeline


def _files(land) -> None:
    enr = get_spec("enrollment").field_names
    rows = [{"member_local_id": f"BC{i}", "cin": f"9{i:07d}B", "given_name": "Ana", "family_name": f"Testa{i}",
             "birth_date": "20150304", "sex": "F", "zip": "94607", "county_fips": "06001", "plan_id": "BC",
             "coverage_start": "20250101", "state": "CA"} for i in range(1, 16)]
    land("mcp_bluecoast", "enrollment", "2025-01", "e.txt", csv_rows(enr, rows, sep="|"))
    claims = [{"claim_id": f"C{i}", "claim_line": "1", "member_local_id": f"BC{i}", "claim_type": "P",
               "service_from": "2025-01-10", "place_of_service": "11", "cpt_hcpcs": "99213", "dx1": "J459",
               "plan_id": "BC"} for i in range(1, 16)]
    land("mcp_bluecoast", "claims", "2025-01", "c.csv", csv_rows(get_spec("claims").field_names, claims))
    dental = [{"claim_id": f"D{i}", "claim_line": "1", "member_local_id": f"DM{i}", "cin": f"9{i:07d}B",
               "given_name": "Ana", "family_name": f"Testa{i}", "birth_date": "2015-03-04", "sex": "F",
               "zip": "94607", "service_date": "2025-01-12", "cdt_code": "D1206"} for i in range(1, 16)]
    land("dental_medical", "dental_claims", "2025-01", "d.csv", csv_rows(get_spec("dental_claims").field_names, dental))
    imms = [{"vaccination_id": f"V{i}", "registry_patient_id": f"R{i}", "given_name": "Ana",
             "family_name": f"Testa{i}", "birth_date": "2015-03-04", "sex": "F", "zip": "94607",
             "admin_date": "2025-01-15", "cvx": "03", "protection_indicator": "N"} for i in range(1, 16)]
    land("cair2", "immunizations", "2025-01", "i.csv", csv_rows(get_spec("immunizations").field_names, imms))
    sud = [{"record_type": "A", "provider_id": "010001", "client_id": f"S{i}", "cin": f"9{i:07d}B",
            "given_name": "Ana", "family_name": f"Testa{i}", "birth_date": "2015-03-04", "sex": "F", "zip": "94607",
            "admission_date": "2025-01-20", "diagnosis": "F1120"} for i in range(1, 16)]
    land("county_06001_bh", "sud_caloms", "2025-01", "s.csv", csv_rows(get_spec("sud_caloms").field_names, sud))


def test_all_four_source_types_reach_a_published_feed(spark, phmx_home, land):
    _files(land)
    results = {r.stage: r for r in run_pipeline(period="all", run_id="run-handbuilt")}
    assert results["ingest"].counts["rows_quarantined"] == 0
    members = lakehouse.read(spark, "gold.member").count()
    assert members == 15  # the same 15 children in five sources
    manifest = next(phmx_home.joinpath("publish").rglob("manifest.json"))
    data = json.loads(manifest.read_text())
    assert data["recipient"] == "lhj_alameda"
    csv = (manifest.parent / "service_counts.csv").read_text()
    assert "plan_medical" in csv and "dental" in csv and "immunization" in csv
    # SUD rows never leave without an explicit consent record: no county_sud cell at all.
    assert "county_sud" not in csv
