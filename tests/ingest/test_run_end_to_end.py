"""Through jobs.ingest.run(): every format in one run, cross-file coverage check, rejected files kept."""

from __future__ import annotations

import shutil

from jobs import ingest
from phmx import lakehouse
from phmx.context import RunContext
from phmx.tables import QUARANTINE, SUBMISSIONS
from tests.ingest.helpers import land, receipts
from tests.ingest.test_ingest_delimited import HEADER, enrollment_row

CLAIMS_HEADER = ("claim_id,claim_line,member_local_id,cin,claim_type,service_from,service_to,admit_date,discharge_date,"
                 "place_of_service,revenue_code,cpt_hcpcs,dx1,dx2,dx3,dx4,provider_npi,plan_id")


def claim(cid: str, member: str, day: str, plan: str = "BC1") -> str:
    return f"{cid},1,{member},,P,{day},{day},,,11,,99213,F329,,,,1234567893,{plan}"


def test_every_format_in_one_run(spark, phmx_home, synth_root):
    shutil.copytree(synth_root, phmx_home / "landing")
    # One broken file per segment format: a truncated 834 and a VXU batch with a wrong BTS count.
    x12 = next((phmx_home / "landing" / "mcp_sierra" / "enrollment_834").rglob("*.x12"))
    x12.write_bytes(x12.read_bytes()[: len(x12.read_bytes()) // 2])
    hl7 = next((phmx_home / "landing" / "cair2" / "immunizations_vxu").rglob("*.hl7"))
    hl7.write_bytes(hl7.read_bytes().replace(b"BTS|", b"BTS|9"))
    result = ingest.run(spark, RunContext.new())
    c = result.counts
    assert c["rows_landed"] == c["rows_accepted"] + c["rows_quarantined"]
    assert c["rejected_files"] == 2 and result.details["statuses"].get("rejected") == 2
    per_feed = result.details["per_feed"]
    assert set(per_feed) >= {"enrollment", "enrollment_834", "immunizations_vxu", "mh_csi_fixed", "fhir_patient",
                             "fhir_coverage", "fhir_encounter", "fhir_immunization", "fhir_consent"}
    # Variants land in their base feed's bronze table, told apart by the feed lineage column.
    enr = lakehouse.read(spark, "bronze.enrollment")
    by_feed = {r.feed: r["count"] for r in enr.groupBy("feed").count().collect()}
    assert by_feed["enrollment_834"] == per_feed["enrollment_834"]["accepted"]
    assert by_feed["enrollment"] == per_feed["enrollment"]["accepted"]
    mh = {r.feed: r["count"] for r in lakehouse.read(spark, "bronze.mh_csi").groupBy("feed").count().collect()}
    assert mh["mh_csi_fixed"] == mh["mh_csi"] == per_feed["mh_csi"]["accepted"]
    for table in ("fhir_patient", "fhir_coverage", "fhir_encounter", "fhir_consent"):
        assert lakehouse.read(spark, f"bronze.{table}").count() == per_feed[table]["accepted"]
    # Rejected files: receipt, quarantine rows under the file rule, and a copy of the file.
    rejected = [r for s in ("mcp_sierra", "cair2") for r in receipts(phmx_home, s) if r["status"] == "rejected"]
    assert {r["file_errors"][0]["rule_id"] for r in rejected} == {"x12_ge_missing", "hl7_bts_count"}
    q = lakehouse.read(spark, QUARANTINE)
    for r in rejected:
        assert q.where(f"submission_id = '{r['submission_id']}'").count() == r["rows_quarantined"] > 0
        assert list((phmx_home / "lakehouse" / "_quarantine_files" / r["submission_id"]).iterdir())
    assert lakehouse.read(spark, SUBMISSIONS).count() == c["files"]
    # Receipts for HL7 name messages; for X12 they count segments.
    vxu = next(r for r in receipts(phmx_home, "cair2") if r["feed"] == "immunizations_vxu")
    assert vxu["record_unit"] == "line" and vxu["format"] == "hl7_vxu"


def test_claims_outside_coverage_are_warned_about(spark, phmx_home):
    land(phmx_home, "mcp_bluecoast", "claims", "2025-01", "c.csv",
         "\n".join([CLAIMS_HEADER, claim("A1", "BC000001", "2025-01-10"), claim("A2", "BC000001", "2024-12-01"),
                    claim("A3", "BC000009", "2025-01-10"), claim("A4", "BC000001", "2025-01-12", plan="OTHER")]) + "\n")
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "e.txt",
         HEADER + "\n" + enrollment_row(1, coverage_start="20250101") + "\n")
    ingest.run(spark, RunContext.new())
    claims = next(r for r in receipts(phmx_home, "mcp_bluecoast") if r["feed"] == "claims")
    assert claims["status"] == "accepted" and claims["rows_accepted"] == 4
    (w,) = [w for w in claims["warnings"] if w["rule_id"] == "service_within_coverage"]
    assert w["rows"] == [3, 4, 5]
    assert lakehouse.read(spark, "bronze.claims").count() == 4


def test_coverage_warnings_go_to_the_file_that_has_the_rows(spark, phmx_home):
    # Two claims files of one batch (two periods) are checked in one join; each receipt gets only its own rows.
    land(phmx_home, "mcp_bluecoast", "claims", "2025-01", "c1.csv",
         "\n".join([CLAIMS_HEADER, claim("A1", "BC000001", "2025-01-10"), claim("A2", "BC000001", "2024-12-01")]) + "\n")
    land(phmx_home, "mcp_bluecoast", "claims", "2025-02", "c2.csv",
         "\n".join([CLAIMS_HEADER, claim("B1", "BC000009", "2025-02-10"), claim("B2", "BC000001", "2025-02-11"),
                    claim("B3", "BC000001", "2025-02-12", plan="OTHER")]) + "\n")
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "e.txt",
         HEADER + "\n" + enrollment_row(1, coverage_start="20250101") + "\n")
    ingest.run(spark, RunContext.new())
    by_file = {r["source_file"].rsplit("/", 1)[-1]: r for r in receipts(phmx_home, "mcp_bluecoast") if r["feed"] == "claims"}
    rows = {name: [w["rows"] for w in r["warnings"] if w["rule_id"] == "service_within_coverage"]
            for name, r in by_file.items()}
    assert rows == {"c1.csv": [[3]], "c2.csv": [[2, 4]]}


def test_claims_without_any_enrollment_say_the_check_was_skipped(spark, phmx_home):
    land(phmx_home, "mcp_bluecoast", "claims", "2025-01", "c.csv",
         CLAIMS_HEADER + "\n" + claim("A1", "BC000001", "2025-01-10") + "\n")
    ingest.run(spark, RunContext.new())
    (r,) = receipts(phmx_home, "mcp_bluecoast")
    assert any("service_within_coverage not checked" in n for n in r["notes"]) and not r["warnings"]


def test_a_corrected_834_replaces_only_its_own_feed_scope(spark, phmx_home, synth_root):
    from tests.ingest.conftest import synth_rows
    from tests.ingest.test_format_x12_834 import x12

    rows = synth_rows(synth_root, "mcp_bluecoast", "enrollment")
    land(phmx_home, "mcp_bluecoast", "enrollment_834", "2025-01", "v1.x12", x12(rows[:10]))
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "e.txt", HEADER + "\n" + enrollment_row(1) + "\n")
    ingest.run(spark, RunContext.new())
    land(phmx_home, "mcp_bluecoast", "enrollment_834", "2025-01", "v2.x12", x12(rows[10:14]))
    ingest.run(spark, RunContext.new())
    enr = lakehouse.read(spark, "bronze.enrollment")
    assert enr.where("feed = 'enrollment_834'").count() == 4
    assert enr.where("feed = 'enrollment'").count() == 1
    v2 = next(r for r in receipts(phmx_home, "mcp_bluecoast") if r["source_file"].endswith("v2.x12"))
    v1 = next(r for r in receipts(phmx_home, "mcp_bluecoast") if r["source_file"].endswith("v1.x12"))
    assert v2["supersedes"] == [v1["submission_id"]]


def test_an_empty_corrected_file_withdraws_the_period(spark, phmx_home):
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v1.txt",
         HEADER + "\n" + enrollment_row(1) + "\n" + enrollment_row(2) + "\n")
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-02", "feb.txt", HEADER + "\n" + enrollment_row(3) + "\n")
    ingest.run(spark, RunContext.new())
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v2.txt", HEADER + "\n")
    ingest.run(spark, RunContext.new())
    v2 = next(r for r in receipts(phmx_home, "mcp_bluecoast") if r["source_file"].endswith("v2.txt"))
    assert v2["status"] == "accepted" and v2["rows_landed"] == 0 and len(v2["supersedes"]) == 1
    left = lakehouse.read(spark, "bronze.enrollment").collect()
    assert [r.member_local_id for r in left] == ["BC000003"]
