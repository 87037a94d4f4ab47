"""The whole pipeline in-process on a handful of hand-built files from all four source types."""

from __future__ import annotations

import json

import pytest
from testkit import csv_rows

from phmx import lakehouse
from phmx.feedspec import get_spec
from phmx.pipeline import run_pipeline

GIVEN = ["Ana", "Bruno", "Carla", "Diego", "Elena", "Felix", "Gloria", "Hector", "Ines", "Jorge", "Karla", "Luis",
         "Marta", "Nico", "Olga"]
FAMILY = ["Abarca", "Benitez", "Cardenas", "Dominguez", "Escobar", "Figueroa", "Galvan", "Huerta", "Ibarra",
          "Jaramillo", "Lozano", "Montoya", "Navarro", "Ochoa", "Pacheco"]


def _who(i: int) -> dict[str, str]:
    """Child i's identity as each source writes it (distinct names and birth dates)."""
    return {"given_name": GIVEN[i - 1], "family_name": FAMILY[i - 1], "bd": f"2015-{(i % 12) + 1:02d}-{i + 5:02d}"}


def _files(land) -> None:
    enr = get_spec("enrollment").field_names
    rows = [{"member_local_id": f"BC{i}", "cin": f"9{i:07d}B", "given_name": _who(i)["given_name"],
             "family_name": _who(i)["family_name"], "birth_date": _who(i)["bd"].replace("-", ""), "sex": "F", "zip": "94607", "county_fips": "06001", "plan_id": "BC",
             "coverage_start": "20250101", "state": "CA"} for i in range(1, 16)]
    land("mcp_bluecoast", "enrollment", "2025-01", "e.txt", csv_rows(enr, rows, sep="|"))
    claims = [{"claim_id": f"C{i}", "claim_line": "1", "member_local_id": f"BC{i}", "claim_type": "P",
               "service_from": "2025-01-10", "place_of_service": "11", "cpt_hcpcs": "99213", "dx1": "J459",
               "plan_id": "BC"} for i in range(1, 16)]
    land("mcp_bluecoast", "claims", "2025-01", "c.csv", csv_rows(get_spec("claims").field_names, claims))
    dental = [{"claim_id": f"D{i}", "claim_line": "1", "member_local_id": f"DM{i}", "cin": f"9{i:07d}B",
               "given_name": _who(i)["given_name"], "family_name": _who(i)["family_name"], "birth_date": _who(i)["bd"],
               "sex": "F",
               "zip": "94607", "service_date": "2025-01-12", "cdt_code": "D1206"} for i in range(1, 16)]
    land("dental_medical", "dental_claims", "2025-01", "d.csv", csv_rows(get_spec("dental_claims").field_names, dental))
    imms = [{"vaccination_id": f"V{i}", "registry_patient_id": f"R{i}", "given_name": _who(i)["given_name"],
             "family_name": _who(i)["family_name"], "birth_date": _who(i)["bd"], "sex": "F", "zip": "94607",
             "address_line": f"{100 + i} Main St", "city": "Oakland",
             "admin_date": "2025-01-15", "cvx": "03", "protection_indicator": "N"} for i in range(1, 16)]
    land("cair2", "immunizations", "2025-01", "i.csv", csv_rows(get_spec("immunizations").field_names, imms))
    sud = [{"record_type": "A", "provider_id": "010001", "client_id": f"S{i}", "cin": f"9{i:07d}B",
            "given_name": _who(i)["given_name"], "family_name": _who(i)["family_name"], "birth_date": _who(i)["bd"],
            "sex": "F", "zip": "94607",
            "admission_date": "2025-01-20", "diagnosis": "F1120"} for i in range(1, 16)]
    land("county_06001_bh", "sud_caloms", "2025-01", "s.csv", csv_rows(get_spec("sud_caloms").field_names, sud))


@pytest.fixture
def handbuilt(spark, phmx_home, land):
    _files(land)
    return {r.stage: r for r in run_pipeline(period="all", run_id="run-handbuilt")}, phmx_home


def test_all_four_source_types_reach_a_published_feed(spark, handbuilt):
    from consent.audit import verify
    from jobs.publish.verify import verify_package

    results, phmx_home = handbuilt
    assert results["ingest"].counts["rows_quarantined"] == 0
    lhj = next(phmx_home.joinpath("publish", "lhj_alameda").rglob("manifest.json")).parent
    assert verify_package(lhj).recipient == "lhj_alameda"
    counts = (lhj / "service_counts.csv").read_text()
    assert "plan_medical" in counts and "dental" in counts and "immunization" in counts
    # the population indicators (jobs/indicators) ride in the same signed package
    assert results["indicators"].counts["members"] > 0
    indicators = (lhj / "indicators.csv").read_text()
    assert indicators.startswith("lhj,indicator_id,") and ",DIAB," in indicators and ",age_adjusted," in indicators
    # The county SUD admissions are 42 CFR Part 2 records with no consent on file: the plan's
    # record-level feed must carry nothing of them (no SUD code, no county client id).
    plan = next(phmx_home.joinpath("publish", "mcp_bluecoast").rglob("manifest.json")).parent
    assert verify_package(plan).recipient == "mcp_bluecoast"
    bundle = "".join(p.read_text() for p in plan.glob("*.ndjson"))
    patients = [json.loads(line) for line in (plan / "Patient.ndjson").read_text().splitlines()]
    assert len(patients) == 15
    assert "F1120" not in bundle and '"S1"' not in bundle
    assert verify().ok


def test_exact_identifiers_link_even_in_a_tiny_population(spark, handbuilt):
    assert lakehouse.read(spark, "gold.member").count() == 15  # the same 15 children in five sources
