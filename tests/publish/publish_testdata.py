"""A small hand-built lakehouse for the publish tests (synthetic; no real person).

150 members in three LHJs (Alameda 90, Berkeley 30, Long Beach 30), split between two plans;
claims, county mental health and SUD services, dental, immunizations (some with the CAIR2
protection indicator), a consent that lets one SUD client's records go to one plan, and
gold.measure_event rows for two measures (OEV-CH general, FUM-7 mental health), measurement
year 2025 plus rolling-period rows that must not be double counted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from phmx import lakehouse
from phmx.tables import (
    BH_SERVICE,
    COVERAGE,
    DENTAL_SERVICE,
    ECM_POPULATION_FLAG,
    ENCOUNTER,
    IMMUNIZATION,
    MEASURE_EVENT,
    MEDICATION,
    MEMBER,
    MEMBER_RISK,
    MEMBER_XWALK,
    PERSON,
)

N = 150
COUNTY = "county_06001_bh"
PLANS = ("mcp_bluecoast", "mcp_sierra")
AGE_BANDS = ("0-5", "6-11", "12-17", "21-44", "45-64")
RACES = ("hispanic", "white", "black", "asian", "unknown_source")
NOW = datetime(2025, 12, 1, tzinfo=UTC)


def mid(i: int) -> str:
    return f"m{i:04d}"


def lhj_of(i: int) -> tuple[str, str, str]:
    """(lhj, county_fips, zip)."""
    k = i % 10
    if k <= 5:
        return "Alameda", "06001", "94601"
    if k <= 7:
        return "Berkeley", "06001", "94704"
    return "Long Beach", "06037", "90802"


def plan_of(i: int) -> str:
    return PLANS[i % 2]


def local_id(i: int) -> str:
    return ("BC" if i % 2 == 0 else "SR") + f"{i:05d}"


def _df(spark, table, rows):
    """Rows as the table's frame; columns a contract added at the end since (e.g. a fingerprint) are null."""
    schema = lakehouse.conform_to(spark.createDataFrame([], table.ddl), table).schema
    width = len(schema.fields)
    return spark.createDataFrame([tuple(r) + (None,) * (width - len(r)) for r in rows], schema)


def build(spark) -> None:
    """Write every table the publish stage reads."""
    lin = ("sub-1", "2025-01", 1)
    members, xwalk, person, coverage = [], [], [], []
    enc, bh, dental, imm, meas, med = [], [], [], [], [], []
    risk: list[tuple] = []
    pof: list[tuple] = []
    for i in range(1, N + 1):
        m = mid(i)
        lhj, fips, zip5 = lhj_of(i)
        plan = plan_of(i)
        sex = "F" if i % 3 else "M"
        members.append((m, f"9{i:07d}A", "Synth", f"Person{i}", date(1990, 1, 1), sex, zip5, fips, lhj,
                        None, None, 2, "r0"))
        xwalk.append((plan, local_id(i), m, "exact", 1.0, "r0", NOW))
        person.append((plan, local_id(i), f"9{i:07d}A", None, None, "Synth", None, f"Person{i}", date(1990, 1, 1),
                       sex, None, None, None, "CA", zip5, fips, None, None, None, None, None, None, *lin, [], "general"))
        coverage.append((plan, local_id(i), "BC" if plan == "mcp_bluecoast" else "SR", "01", date(2024, 7, 1), None,
                         *lin))
        month = 1 + i % 6
        enc.append((plan, f"C{i}", local_id(i), "OP", date(2025, month, 10), None, None, "11", ["99213"], ["J459"],
                    "P1", "BC", *lin, [], "general"))
        if i % 15 == 0:  # an ED visit with a substance use code on a plan claim: redacted for plans without consent
            enc.append((plan, f"E{i}", local_id(i), "ED", date(2025, month, 12), None, None, "23", ["99283"],
                        ["F1120", "J459"], "P2", "BC", *lin, ["SUD"], "sud"))
        if i % 7 == 0:
            xwalk.append((f"{COUNTY}:mh", f"CM{i}", m, "exact", 1.0, "r0", NOW))
            bh.append((f"{COUNTY}:mh", f"MH{i}", f"CM{i}", "MH", "S", fips, date(2025, month, 3), None, "15", "30", 1.0,
                       "010001", ["F329"], *lin, ["MH", "PSY"], "mh"))
        if i % 11 == 0:
            xwalk.append((f"{COUNTY}:sud", f"CS{i}", m, "exact", 1.0, "r0", NOW))
            bh.append((f"{COUNTY}:sud", f"SUD{i}", f"CS{i}", "SUD", "A", fips, date(2025, month, 4), None, None, None, None,
                       "010002", ["F1120"], *lin, ["42CFRPart2", "ETH", "SUD"], "sud"))
        if i % 3 == 0:
            dental.append((plan, f"D{i}", local_id(i), date(2025, month, 5), "D1206", None, "DP1", *lin, [], "general"))
        if i % 4 == 0:
            xwalk.append(("cair2", f"R{i}", m, "exact", 1.0, "r0", NOW))
            imm.append(("cair2", f"V{i}", f"R{i}", date(2025, month, 6), "03", "MSD", "LOT1",
                        "Y" if i % 20 == 0 else "N", "IP1", "CP", "A", None, *lin, [], "general"))
        med.append((plan, f"RX{i}", local_id(i), date(2025, month, 8), "00000000000", 30, 30.0, "PR1", "BC", *lin,
                    [], "general"))
        band = AGE_BANDS[i % len(AGE_BANDS)]
        race = RACES[i % len(RACES)]
        anchor = date(2025, month, 15)
        for period in ("2025", "R12-2025-06"):
            meas.append(("OEV-CH", period, m, f"{m}|OEV", anchor, True, i % 3 == 0, None, None, None, 7, lhj, band,
                         sex, race, "BC" if plan == "mcp_bluecoast" else "SR", [], "general", "r0"))
        if i % 5 == 0:  # FUM-7: ED visits for mental illness, sensitive
            meas.append(("FUM-7", "2025", m, f"{m}|ED", anchor, True, i % 10 == 0, None, None, None, 30, lhj,
                         "21-44", sex, race, "BC" if plan == "mcp_bluecoast" else "SR", ["MH"], "mh", "r0"))
    # rolling risk tiers (the latest period, R12-2025-06, goes to the plan feed; R12-2025-03 must not) and
    # populations of focus; members with county SUD records (i % 11 == 0) carry Part 2 labels on both
    for i in range(4, N + 1, 4):
        sud = ["42CFRPart2", "SUD"] if i % 11 == 0 else []
        tier = ("high", "rising", "low")[i % 3]
        for period, as_of in (("R12-2025-03", date(2025, 3, 31)), ("R12-2025-06", date(2025, 6, 30))):
            risk.append((mid(i), period, as_of, tier, 3 + i % 5, 2, 1, 3 if sud else 0, i % 2, 2, 0, sud))
            if i % 8 == 0:
                pof.append((mid(i), period, as_of, "HOMELESS_ADULT", "risk", []))
            if sud:
                pof.append((mid(i), period, as_of, "SMH_SUD", "risk", sud))
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(risk, (
        "member_id string, period string, as_of date, risk_tier string, points int, utilization_points int, "
        "chronic_points int, behavioral_points int, social_points int, ed_visits int, unplanned_admissions int, "
        "security_labels array<string>")), MEMBER_RISK), MEMBER_RISK)
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(pof, (
        "member_id string, period string, as_of date, population string, evidence string, "
        "security_labels array<string>")), ECM_POPULATION_FLAG), ECM_POPULATION_FLAG)
    meas.append(("OEV-CH", "2025", mid(1), "x|excluded", date(2025, 2, 15), False, False, "hospice", None, None, 7,
                 "Alameda", "6-11", "F", "white", "BC", [], "general", "r0"))
    lakehouse.overwrite(_df(spark, MEMBER, members), MEMBER)
    lakehouse.overwrite(_df(spark, MEMBER_XWALK, xwalk), MEMBER_XWALK)
    lakehouse.overwrite(_df(spark, PERSON, person), PERSON)
    lakehouse.overwrite(_df(spark, COVERAGE, coverage), COVERAGE)
    lakehouse.overwrite(_df(spark, ENCOUNTER, enc), ENCOUNTER)
    lakehouse.overwrite(_df(spark, BH_SERVICE, bh), BH_SERVICE)
    lakehouse.overwrite(_df(spark, DENTAL_SERVICE, dental), DENTAL_SERVICE)
    lakehouse.overwrite(_df(spark, IMMUNIZATION, imm), IMMUNIZATION)
    lakehouse.overwrite(_df(spark, MEDICATION, med), MEDICATION)
    assert len(meas[0]) == len(MEASURE_EVENT.columns)
    lakehouse.overwrite(spark.createDataFrame(meas, MEASURE_EVENT.ddl), MEASURE_EVENT)
    write_consent(spark)
    decide_consent(spark)


def decide_consent(spark) -> None:
    """Run the real consent stage: publish reads only its decisions (every plan and LHJ served)."""
    from jobs.consent_decisions import run
    from phmx.context import RunContext

    run(spark, RunContext.new(run_id="consent-fixture"))


FORM_COLS = ["consent_form_id", "client_id", "program", "signed_at", "grantor", "purposes", "recipients",
             "data_classes", "expires_on", "revoked_at", "status", "submission_id", "submitter", "feed",
             "period", "source_file", "source_file_sha256", "row_number", "ingested_at"]


def write_consent(spark) -> None:
    """SUD client CS33 (member m0033, plan mcp_sierra) consents to SUD records going to mcp_sierra for TREAT."""
    from pyspark.sql import functions as F

    from consent import registry

    row = {"consent_form_id": "F1", "client_id": "CS33", "program": "SUD", "signed_at": "2024-01-01T00:00:00",
           "grantor": "self", "purposes": "TREAT", "recipients": "mcp_sierra", "data_classes": "SUD|GENERAL",
           "expires_on": "", "revoked_at": "", "status": "active", "submission_id": "s1", "submitter": COUNTY,
           "feed": "consent_forms", "period": "2024-01", "source_file": "f.csv", "source_file_sha256": "0" * 64,
           "row_number": "1", "ingested_at": "2024-01-02T00:00:00"}
    df = spark.createDataFrame([tuple(row[c] for c in FORM_COLS)], ", ".join(f"{c} string" for c in FORM_COLS))
    df = df.withColumn("row_number", F.col("row_number").cast("bigint")).withColumn(
        "ingested_at", F.to_timestamp("ingested_at"))
    lakehouse.overwrite(df, "bronze.consent_forms")
    registry.refresh(spark)


WITHHELD_FROM_BERKELEY = "m0006"


def write_berkeley_decisions(spark) -> None:
    """lhj_berkeley's PUBHLTH decisions replaced: permit_deidentified, except every class of one member."""
    from datetime import datetime as dt

    from consent.disclosure_policy import load_policy
    from phmx.tables import CONSENT_DECISION

    rows = []
    for i in range(1, N + 1):
        if lhj_of(i)[0] != "Berkeley":
            continue
        for c in sorted(load_policy().classes):
            deny = mid(i) == WITHHELD_FROM_BERKELEY
            rows.append((mid(i), c, "PUBHLTH", "lhj_berkeley", "deny" if deny else "permit_deidentified",
                         ["TEST-DENY"] if deny else ["PART2-2.54-DEID-PUBLIC-HEALTH"], [], dt(1900, 1, 1), None,
                         "2026.1", "r0", dt(2025, 1, 1)))
    lakehouse.overwrite(spark.createDataFrame(rows, CONSENT_DECISION.ddl), CONSENT_DECISION,
                        replace_where="recipient = 'lhj_berkeley'")


def expected_oev(lhj: str) -> tuple[int, int]:
    """(numerator, denominator) of OEV-CH for 2025 in an LHJ (measurement-year rows only)."""
    ids = [i for i in range(1, N + 1) if lhj_of(i)[0] == lhj
           and not (lhj == "Berkeley" and mid(i) == WITHHELD_FROM_BERKELEY)]
    return sum(1 for i in ids if i % 3 == 0), len(ids)
