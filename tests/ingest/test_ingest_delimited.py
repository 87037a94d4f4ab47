"""Ingest on hand-built delimited files: conservation, receipts, bad files, resubmission."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs import ingest
from phmx import lakehouse
from phmx.context import RunContext
from phmx.tables import QUARANTINE, SUBMISSIONS

HEADER = ("member_local_id|cin|ssn|given_name|middle_name|family_name|birth_date|sex|address_line|city|state|zip|"
          "county_fips|phone|email|language|race|ethnicity|plan_id|aid_code|coverage_start|coverage_end|maintenance_type")


def enrollment_row(i: int, **over: str) -> str:
    v = {"member_local_id": f"BC{i:06d}", "cin": f"9{i:07d}A", "ssn": "", "given_name": "Testa",
         "middle_name": "", "family_name": f"Person{i}", "birth_date": "19800101", "sex": "F",
         "address_line": "1 Main St", "city": "Oakland", "state": "CA", "zip": "94607", "county_fips": "06001",
         "phone": "510-555-0100", "email": "", "language": "en", "race": "", "ethnicity": "",
         "plan_id": "BC1", "aid_code": "1H", "coverage_start": "20250101", "coverage_end": "", "maintenance_type": "021"}
    v.update(over)
    return "|".join(v[k] for k in HEADER.split("|"))


def land(home: Path, submitter: str, feed: str, period: str, name: str, content: bytes | str) -> Path:
    p = home / "landing" / submitter / feed / period / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content.encode() if isinstance(content, str) else content)
    return p


def receipts(home: Path, submitter: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((home / "outbox" / submitter).rglob("*.json"))]


def test_good_and_bad_rows_are_conserved_and_explained(spark, phmx_home):
    rows = [enrollment_row(1), enrollment_row(2, cin="12345"), enrollment_row(3, birth_date="19801399"),
            enrollment_row(4, given_name=""), enrollment_row(5, coverage_start="20250301", coverage_end="20250201"),
            enrollment_row(6, sex="Q"), enrollment_row(1), "too|few|fields"]
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "enr.txt", "\n".join([HEADER, *rows]) + "\n")
    result = ingest.run(spark, RunContext.new())
    assert result.counts["rows_landed"] == 8
    assert result.counts["rows_accepted"] == 1
    assert result.counts["rows_quarantined"] == 7
    (r,) = receipts(phmx_home, "mcp_bluecoast")
    assert r["status"] == "accepted_with_errors"
    assert r["rows_landed"] == r["rows_accepted"] + r["rows_quarantined"]
    by_rule = {(e["rule_id"], e["field"]): e["rows"] for e in r["errors"]}
    assert by_rule[("cin_shape", "cin")] == [3]
    assert by_rule[("format", "birth_date")] == [4]
    assert by_rule[("required", "given_name")] == [5]
    assert by_rule[("date_order", "")] == [6]
    assert by_rule[("code_set", "sex")] == [7]
    assert by_rule[("duplicate_key", "")] == [8]
    assert by_rule[("column_count", "")] == [9]
    # No submitted value leaks into the receipt.
    text = json.dumps(r)
    assert "12345" not in text and "Person" not in text and "19801399" not in text
    assert lakehouse.read(spark, "bronze.enrollment").count() == 1
    q = lakehouse.read(spark, QUARANTINE)
    assert q.select("row_number").distinct().count() == 7
    html = next((phmx_home / "outbox" / "mcp_bluecoast").rglob("*.html")).read_text()
    assert "accepted_with_errors" in html and "cin_shape" in html


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"", "file_empty"),
        (b"\x00\x01\x02PK\x03\x04binary", "file_binary"),
        (HEADER.replace("|", ",") + "\n" + enrollment_row(1).replace("|", ",") + "\n", "wrong_delimiter"),
        (enrollment_row(1) + "\n" + enrollment_row(2) + "\n", "header_missing"),
    ],
    ids=["empty", "binary", "wrong-delimiter", "missing-header"],
)
def test_bad_file_is_rejected_while_others_go_through(spark, phmx_home, content, rule):
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "bad.txt", content)
    land(phmx_home, "mcp_sierra", "enrollment", "2025-01", "good.txt", HEADER + "\n" + enrollment_row(7) + "\n")
    result = ingest.run(spark, RunContext.new())
    (bad,) = receipts(phmx_home, "mcp_bluecoast")
    (good,) = receipts(phmx_home, "mcp_sierra")
    assert bad["status"] == "rejected"
    assert bad["file_errors"][0]["rule_id"] == rule
    assert bad["rows_landed"] == bad["rows_quarantined"]
    assert good["status"] == "accepted" and good["rows_accepted"] == 1
    assert result.counts["rejected_files"] == 1
    assert lakehouse.read(spark, "bronze.enrollment").count() == 1
    assert list((phmx_home / "lakehouse" / "_quarantine_files").rglob("bad.txt"))


def test_rerun_is_a_noop_and_duplicate_bytes_get_a_duplicate_receipt(spark, phmx_home):
    body = HEADER + "\n" + enrollment_row(1) + "\n" + enrollment_row(2) + "\n"
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "a.txt", body)
    ingest.run(spark, RunContext.new())
    second = ingest.run(spark, RunContext.new())
    assert second.counts["files"] == 0 and second.counts["skipped_already_ingested"] == 1
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-02", "copy.txt", body)
    third = ingest.run(spark, RunContext.new())
    assert third.counts["duplicate_files"] == 1
    statuses = sorted(r["status"] for r in receipts(phmx_home, "mcp_bluecoast"))
    assert statuses == ["accepted", "duplicate"]
    assert lakehouse.read(spark, "bronze.enrollment").count() == 2


def test_corrected_file_replaces_only_its_own_scope(spark, phmx_home):
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v1.txt",
         HEADER + "\n" + enrollment_row(1) + "\n" + enrollment_row(2) + "\n")
    land(phmx_home, "mcp_sierra", "enrollment", "2025-01", "s.txt", HEADER + "\n" + enrollment_row(50) + "\n")
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-02", "feb.txt", HEADER + "\n" + enrollment_row(60) + "\n")
    ingest.run(spark, RunContext.new())
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v2.txt", HEADER + "\n" + enrollment_row(3) + "\n")
    ingest.run(spark, RunContext.new())
    ids = sorted(r.member_local_id for r in lakehouse.read(spark, "bronze.enrollment").collect())
    assert ids == ["BC000003", "BC000050", "BC000060"]
    subs = {r.source_file: r for r in lakehouse.read(spark, SUBMISSIONS).collect()}
    v1 = subs["mcp_bluecoast/enrollment/2025-01/v1.txt"].submission_id
    assert subs["mcp_bluecoast/enrollment/2025-01/v2.txt"].supersedes == v1


def test_latin1_and_crlf_and_quoted_fields(spark, phmx_home):
    row = enrollment_row(1, family_name='"Peña|Ruiz"', city="San José")
    body = (HEADER + "\r\n" + row + "\r\n").encode("latin-1")
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "l1.txt", body)
    ingest.run(spark, RunContext.new())
    (r,) = receipts(phmx_home, "mcp_bluecoast")
    assert r["status"] == "accepted", r
    assert any("latin-1" in n for n in r["notes"])
    got = lakehouse.read(spark, "bronze.enrollment").collect()[0]
    assert got.family_name == "Peña|Ruiz" and got.city == "San José" and got.birth_date == "1980-01-01"


def test_a_monthly_run_ingests_only_its_months_folders(spark, phmx_home):
    # Month by month (PHMX_SCHEDULE=@monthly): a run at 2025-02 reads only the 2025-02 folders, a
    # later run at 2025-01 (a backfill) only 2025-01's, and a repeated month ingests nothing again.
    for i, period in enumerate(("2025-01", "2025-02"), start=1):
        land(phmx_home, "mcp_bluecoast", "enrollment", period, f"m{i}.txt",
             HEADER + "\n" + enrollment_row(i) + "\n" + enrollment_row(10 + i) + "\n")
    feb = ingest.run(spark, RunContext.new(period="2025-02"))
    assert feb.counts["files"] == 1 and feb.counts["rows_accepted"] == 2
    bronze = lakehouse.read(spark, "bronze.enrollment")
    assert sorted(r["period"] for r in bronze.select("period").collect()) == ["2025-02", "2025-02"]
    jan = ingest.run(spark, RunContext.new(period="2025-01"))
    assert jan.counts["files"] == 1 and jan.counts["skipped_already_ingested"] == 0
    again = ingest.run(spark, RunContext.new(period="2025-02"))
    assert again.counts["files"] == 0 and again.counts["skipped_already_ingested"] == 1
    bronze = lakehouse.read(spark, "bronze.enrollment")
    assert sorted(r["period"] for r in bronze.select("period").collect()) == ["2025-01", "2025-01", "2025-02", "2025-02"]
