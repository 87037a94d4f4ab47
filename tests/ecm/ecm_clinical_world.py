"""The clinical side of the hand-built ECM world: every clinical, cost and quality value worked out by hand.

The ECM world of ecm_world.py (member A enrolled 2025-01-25 and engaged January to April; member B
authorized 2025-02-01 to 2025-03-05, never engaged) gets clinical data through the real feeds:
the plan's enrollment and claims with paid amounts, its FHIR Patients and Observations, and a
hospital's HL7 v2 ADT messages. Member C is the comparison group: the same plan, never in ECM.
gold.member_month (covered months) and gold.member_risk (tiers) are written by hand, so the cost
figures below depend only on what is written here.

Worked out (A is the only engaged member; months 2025-01..04):
* ED: A's ED claim on 02-14 -> February 1 / 1 member-month = 1000 per 1,000.
* Admissions: A's stay 03-02..03-06 comes twice (the plan's claim and the hospital's ADT visit),
  one admit day -> March 1000 per 1,000.
* 7-day follow-up: A discharged 03-06, office visit 03-10 (day 4) -> window ends 03-13, March 1/1.
  B discharged 02-20, next visit 03-01 (day 9) -> window ends 02-27, February 0/1.
* Cost: A paid 600 (2024-06 ED) + 120 (2024-11 office) in the 12 covered months before January
  -> before PMPM 720/12 = 60 every month. After: Jan 0, Feb 400 + 80 = 480, Mar 8000 + 100 = 8100,
  Apr 0. Comparison C (tier high like A's baseline): paid Dec 300, Feb 200, Mar 900 -> after
  Jan 0, Feb 200, Mar 900, Apr 0; before (12 months before each month): Jan 300/12 = 25,
  Feb 25, Mar 500/12 = 41.67, Apr 1400/12 = 116.67.
* CBP: A's first I10 diagnosis is 03-10, so hypertensive in March and April; the latest BP day is
  03-20 with 138/92 and 145/85, the day's lowest are 138/85 -> controlled: March and April 1/1.
* GSD: A's E11 diagnosis 2024-11-03; no HbA1c by January -> poor (missing) 1/1; February 9.5 ->
  1/1; March 8.1 (03-25) -> 0/1; April 0/1.
* DSF: A's PHQ-9 of 14 on 01-28 -> screened every month 1/1; positive, followed up by the F32.9
  office visit 02-10 (day 13) -> window ends 02-27: February 1/1. B's PHQ-2 of 4 on 02-05 is
  positive, no follow-up -> window ends 03-07: March 0/1.
"""

from __future__ import annotations

import json

from ecm_world import PLAN, A, B
from testkit import csv_rows

from phmx import lakehouse
from phmx.feedspec import get_spec
from phmx.tables import MEMBER_MONTH, MEMBER_RISK

C = {"cin": "93456789C", "given_name": "Cleo", "family_name": "Marsh", "birth_date": "1975-07-19"}
PEOPLE = {"BC1": ("F", A), "BC2": ("M", B), "BC3": ("F", C)}


def _enrollment() -> list[str]:
    rows = [{"member_local_id": lid, "cin": p["cin"], "given_name": p["given_name"], "family_name": p["family_name"],
             "birth_date": p["birth_date"].replace("-", ""), "sex": sex, "zip": "94607", "county_fips": "06001",
             "plan_id": PLAN, "aid_code": "1H", "coverage_start": "20240101"} for lid, (sex, p) in PEOPLE.items()]
    return csv_rows(get_spec("enrollment").field_names, rows, sep="|")


def _claims() -> list[str]:
    def line(cid: str, lid: str, day: str, pos: str, dx: str, paid: str, **kw: str) -> dict[str, str]:
        return {"claim_id": cid, "claim_line": "1", "member_local_id": lid, "claim_type": kw.get("type", "P"),
                "service_from": day, "service_to": kw.get("to", day), "place_of_service": pos,
                "cpt_hcpcs": kw.get("cpt", "99213"), "dx1": dx, "plan_id": PLAN, "paid_amount": paid,
                "admit_date": kw.get("admit", ""), "discharge_date": kw.get("disch", ""),
                "revenue_code": kw.get("rev", "")}
    rows = [
        line("A-2406", "BC1", "2024-06-10", "23", "R079", "600.00", cpt="99284"),
        line("A-2411", "BC1", "2024-11-03", "11", "E119", "120.00"),
        line("A-2502", "BC1", "2025-02-10", "11", "F329", "80.00"),
        line("A-2502E", "BC1", "2025-02-14", "23", "R079", "400.00", cpt="99284"),
        line("A-2503I", "BC1", "2025-03-02", "21", "J189", "8000.00", type="I", to="2025-03-06", admit="2025-03-02",
             disch="2025-03-06", rev="0120", cpt=""),
        line("A-2503", "BC1", "2025-03-10", "11", "I10", "100.00"),
        line("B-2503", "BC2", "2025-03-01", "11", "I10", "90.00"),
        line("C-2412", "BC3", "2024-12-15", "11", "J069", "300.00"),
        line("C-2502", "BC3", "2025-02-20", "11", "J069", "200.00"),
        line("C-2503", "BC3", "2025-03-05", "23", "R079", "900.00", cpt="99284"),
    ]
    return csv_rows(get_spec("claims").field_names, rows)


def _fhir() -> tuple[str, str]:
    pats = [{"resourceType": "Patient", "id": pid, "identifier": [{"system": "urn:phmx:medi-cal-cin", "value": p["cin"]}],
             "name": [{"family": p["family_name"], "given": [p["given_name"]]}], "birthDate": p["birth_date"],
             "gender": g} for pid, g, p in (("pa", "female", A), ("pb", "male", B))]
    loinc = "http://loinc.org"

    def obs(oid: str, pid: str, day: str, code: str, value: float | None = None,
            bp: tuple[float, float] | None = None) -> dict[str, object]:
        o: dict[str, object] = {"resourceType": "Observation", "id": oid, "status": "final",
                                "code": {"coding": [{"system": loinc, "code": code}]},
                                "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": day}
        if value is not None and code == "4548-4":
            o["valueQuantity"] = {"value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
        elif value is not None:
            o["valueInteger"] = int(value)
        if bp:
            o["component"] = [{"code": {"coding": [{"system": loinc, "code": c}]},
                               "valueQuantity": {"value": v, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                                                 "code": "mm[Hg]"}} for c, v in zip(("8480-6", "8462-4"), bp, strict=True)]
        return o
    observations = [
        obs("bp1", "pa", "2025-02-01", "85354-9", bp=(150, 95)),
        obs("bp2", "pa", "2025-03-20", "85354-9", bp=(138, 92)),
        obs("bp3", "pa", "2025-03-20", "85354-9", bp=(145, 85)),
        obs("a1", "pa", "2025-02-15", "4548-4", 9.5),
        obs("a2", "pa", "2025-03-25", "4548-4", 8.1),
        obs("phq9", "pa", "2025-01-28", "44261-6", 14),
        obs("phq2", "pb", "2025-02-05", "55758-7", 4),
    ]
    return "\n".join(json.dumps(p) for p in pats) + "\n", "\n".join(json.dumps(o) for o in observations) + "\n"


def _adt() -> str:
    def msg(n: int, ev: str, p: dict[str, str], mr: str, visit: str, when: str, admit: str, disch: str = "") -> str:
        pv1 = ["PV1", "1", "I"] + [""] * 16 + [f"{visit}^^^TESTHOSP^VN"] + [""] * 24 + [admit, disch]
        return "\r".join([
            f"MSH|^~\\&|EHR|TESTHOSP|PHMX|CDPH|{when}||ADT^{ev}^ADT_A01|ECMT-{n}|P|2.5.1",
            f"EVN|{ev}|{when}",
            f"PID|1||{mr}^^^TESTHOSP^MR~{p['cin']}^^^CADHCS^MA||{p['family_name']}^{p['given_name']}||"
            f"{p['birth_date'].replace('-', '')}",
            "|".join(pv1)]) + "\r"
    return "".join([
        msg(1, "A01", A, "H-A", "V-A1", "202503020900", "202503020900"),
        msg(2, "A03", A, "H-A", "V-A1", "202503061200", "202503020900", "202503061200"),
        msg(3, "A01", B, "H-B", "V-B1", "202502180800", "202502180800"),
        msg(4, "A03", B, "H-B", "V-B1", "202502201000", "202502180800", "202502201000"),
    ])


def write_coverage_and_tiers(spark) -> dict[str, str]:  # noqa: ANN001
    """Every member covered 2024-01..2025-04; A high before enrollment, C high every month (hand-written gold)."""
    import datetime as dt

    xw = {r.source_person_id: r.member_id for r in lakehouse.read(spark, "gold.member_xwalk")
          .where("source = 'mcp_bluecoast'").collect()}
    ids = {k: xw[k] for k in PEOPLE}
    months = [dt.date(2024 + (m - 1) // 12, (m - 1) % 12 + 1, 1) for m in range(1, 17)]
    mm = [(ids[k], d) for k in PEOPLE for d in months]
    spark_mm = spark.createDataFrame(mm, "member_id string, month date")
    lakehouse.overwrite(lakehouse.conform_to(spark_mm, MEMBER_MONTH), MEMBER_MONTH)
    risk = [(ids["BC1"], "R12-2024-12", "high", PLAN), (ids["BC1"], "R12-2025-02", "high", PLAN)]
    risk += [(ids["BC3"], f"R12-{m}", "high", PLAN) for m in ("2024-12", "2025-01", "2025-02", "2025-03")]
    df = spark.createDataFrame(risk, "member_id string, period string, risk_tier string, plan_id string")
    lakehouse.overwrite(lakehouse.conform_to(df, MEMBER_RISK), MEMBER_RISK)
    return ids


#: (month, metric id) -> (numerator, denominator, value), from the worked-out sequence above.
CLINICAL_EXPECTED: dict[tuple[str, str], tuple[float, float | None, float | None]] = {
    ("2025-01", "ed_visits_per_1000"): (0, 1, 0.0), ("2025-02", "ed_visits_per_1000"): (1, 1, 1000.0),
    ("2025-03", "ed_visits_per_1000"): (0, 1, 0.0), ("2025-04", "ed_visits_per_1000"): (0, 1, 0.0),
    ("2025-01", "admissions_per_1000"): (0, 1, 0.0), ("2025-02", "admissions_per_1000"): (0, 1, 0.0),
    ("2025-03", "admissions_per_1000"): (1, 1, 1000.0), ("2025-04", "admissions_per_1000"): (0, 1, 0.0),
    ("2025-01", "follow_up_7_days_after_discharge"): (0, 0, None),
    ("2025-02", "follow_up_7_days_after_discharge"): (0, 1, 0.0),
    ("2025-03", "follow_up_7_days_after_discharge"): (1, 1, 1.0),
    ("2025-04", "follow_up_7_days_after_discharge"): (0, 0, None),
    **{(m, "tcoc_pmpm_before_enrollment"): (720, 12, 60.0) for m in ("2025-01", "2025-02", "2025-03", "2025-04")},
    ("2025-01", "tcoc_pmpm_after_enrollment"): (0, 1, 0.0), ("2025-02", "tcoc_pmpm_after_enrollment"): (480, 1, 480.0),
    ("2025-03", "tcoc_pmpm_after_enrollment"): (8100, 1, 8100.0), ("2025-04", "tcoc_pmpm_after_enrollment"): (0, 1, 0.0),
    ("2025-01", "tcoc_pmpm_comparison_after"): (0, 1, 0.0), ("2025-02", "tcoc_pmpm_comparison_after"): (200, 1, 200.0),
    ("2025-03", "tcoc_pmpm_comparison_after"): (900, 1, 900.0), ("2025-04", "tcoc_pmpm_comparison_after"): (0, 1, 0.0),
    ("2025-01", "tcoc_pmpm_comparison_before"): (25, 1, 25.0), ("2025-02", "tcoc_pmpm_comparison_before"): (25, 1, 25.0),
    ("2025-03", "tcoc_pmpm_comparison_before"): (41.67, 1, 41.67),
    ("2025-04", "tcoc_pmpm_comparison_before"): (116.67, 1, 116.67),
    ("2025-01", "cbp"): (0, 0, None), ("2025-02", "cbp"): (0, 0, None),
    ("2025-03", "cbp"): (1, 1, 1.0), ("2025-04", "cbp"): (1, 1, 1.0),
    ("2025-01", "gsd_poor_control"): (1, 1, 1.0), ("2025-02", "gsd_poor_control"): (1, 1, 1.0),
    ("2025-03", "gsd_poor_control"): (0, 1, 0.0), ("2025-04", "gsd_poor_control"): (0, 1, 0.0),
    **{(m, "dsf_screening"): (1, 1, 1.0) for m in ("2025-01", "2025-02", "2025-03", "2025-04")},
    ("2025-01", "dsf_follow_up"): (0, 0, None), ("2025-02", "dsf_follow_up"): (1, 1, 1.0),
    ("2025-03", "dsf_follow_up"): (0, 1, 0.0), ("2025-04", "dsf_follow_up"): (0, 0, None),
}


def land_clinical(land) -> None:  # noqa: ANN001 - the conftest fixture
    """The plan's enrollment and claims, its FHIR Patients and Observations, a hospital's ADT messages."""
    land("mcp_bluecoast", "enrollment", "2025-01", "enr.txt", _enrollment())
    land("mcp_bluecoast", "claims", "2025-03", "claims.csv", _claims())
    patients, observations = _fhir()
    land("mcp_bluecoast", "fhir_patient", "2025-03", "patients.ndjson", patients)
    land("mcp_bluecoast", "fhir_observation", "2025-03", "observations.ndjson", observations)
    land("hosp_test", "adt", "2025-03", "adt.hl7", _adt())
