"""Fault injection on intake: each case a bad input a real sender (or an attacker) produced.

Every test here failed before its fix: impossible dates rolled over, one huge field sent the
rest of the file to quarantine, a symlink read a file outside the landing zone, a misplaced copy
got a ``duplicate`` receipt, a formula reached bronze, a missing optional column and a header-only
file went unremarked, and ``phmx validate`` named a month the sender never gave.
"""

from __future__ import annotations

import csv
import io
import os

import pandas as pd

from jobs import ingest
from jobs.ingest.cli import precheck
from jobs.ingest.landing import scan
from jobs.ingest.receipts import next_steps, render_html
from jobs.ingest.specs import load_specs
from jobs.publish.lhj_feed import _csv
from phmx import storage
from phmx.context import RunContext
from phmx.spreadsheet import escape_cell
from tests.ingest.helpers import accepted_rows, assert_conserved, land, receipts, run_file
from tests.ingest.test_ingest_delimited import HEADER, enrollment_row

CLAIMS = ("claim_id,claim_line,member_local_id,cin,claim_type,service_from,service_to,admit_date,discharge_date,"
          "place_of_service,revenue_code,cpt_hcpcs,dx1,dx2,dx3,dx4,provider_npi,plan_id")


def claim(claim_id: str, service_from: str = "2025-01-05") -> str:
    return f"{claim_id},1,M1,,P,{service_from},,,,11,,99213,E119,,,,,P1"


def claims_file(*rows: str, header: str = CLAIMS) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def test_impossible_dates_are_refused_not_rolled_over():
    out = run_file(claims_file(claim("C1", "2025-02-30"), claim("C2", "2025-04-31"), claim("C3", "2024-02-29"),
                               claim("C4", "2025-02-29"), claim("C5", "2025-02-28")), "claims", "mcp_bluecoast")
    assert_conserved(out)
    assert {(q["row_number"], q["rule_id"], q["field"]) for q in out.quarantine} == {
        (2, "format", "service_from"), (3, "format", "service_from"), (5, "format", "service_from")}
    assert [r["service_from"] for r in accepted_rows(out)] == ["2024-02-29", "2025-02-28"]


def test_impossible_dates_in_a_compact_and_an_american_format():
    out = run_file((HEADER + "\n" + enrollment_row(1, birth_date="19800230") + "\n"
                    + enrollment_row(2, birth_date="19800229") + "\n").encode(), "enrollment", "mcp_bluecoast")
    assert [(q["row_number"], q["field"]) for q in out.quarantine] == [(2, "birth_date")]
    assert [r["birth_date"] for r in accepted_rows(out)] == ["1980-02-29"]


def test_one_100_mb_field_quarantines_its_own_line_only():
    big = claim("C2" + "x" * 100_000_000)
    out = run_file(claims_file(claim("C1"), big, claim("C3"), claim("C4")), "claims", "mcp_bluecoast")
    assert_conserved(out)
    assert [(q["row_number"], q["rule_id"]) for q in out.quarantine] == [(3, "field_size")]
    assert len(out.quarantine[0]["raw_record"]) < 10_000  # the quarantine keeps a clipped copy
    assert [r["claim_id"] for r in accepted_rows(out)] == ["C1", "C3", "C4"]
    assert out.receipt.status == "accepted_with_errors"


def test_an_oversized_field_in_a_file_read_line_by_line():
    # A quoted line break sends the file to the line-by-line reader; its field limit applies there too.
    multi = 'C5,1,M1,,P,2025-01-05,,,,11,,99213,E119,,,,,"P\n1"'
    out = run_file(claims_file(claim("C1"), claim("C2" + "y" * 200_000), multi, claim("C3")), "claims",
                   "mcp_bluecoast")
    assert_conserved(out)
    assert [(q["row_number"], q["rule_id"]) for q in out.quarantine] == [(3, "field_size")]
    assert [r["claim_id"] for r in accepted_rows(out)] == ["C1", "C5", "C3"]


def test_symlinks_never_lead_outside_the_landing_root(tmp_path):
    root = tmp_path / "landing"
    outside = tmp_path / "secret.txt"
    outside.write_text("not a submission\n")
    period = root / "mcp_bluecoast" / "claims" / "2025-01"
    period.mkdir(parents=True)
    (period / "real.csv").write_bytes(claims_file(claim("C1")))
    os.symlink(outside, period / "link.csv")
    os.symlink(tmp_path, root / "mcp_bluecoast" / "claims" / "2025-02")  # a folder link, to outside
    os.symlink(period / "real.csv", period / "inside.csv")  # a link within the root is fine
    listed = [f.relpath for f in storage.list_files(str(root))]
    assert listed == ["mcp_bluecoast/claims/2025-01/inside.csv", "mcp_bluecoast/claims/2025-01/real.csv"]
    assert [lf.name for lf in scan(str(root))] == ["inside.csv", "real.csv"]


def test_a_misplaced_copy_gets_the_path_error_not_duplicate(spark, phmx_home):
    body = HEADER + "\n" + enrollment_row(1) + "\n"
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "a.txt", body)
    ingest.run(spark, RunContext.new())
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-13", "a.txt", body)
    land(phmx_home, "mcp_bluecoast", "enrollment", "january", "a.txt", body)
    result = ingest.run(spark, RunContext.new())
    assert result.counts["duplicate_files"] == 0 and result.counts["rejected_files"] == 2
    bad = [r for r in receipts(phmx_home, "mcp_bluecoast") if r["period"] != "2025-01"]
    assert sorted(r["file_errors"][0]["rule_id"] for r in bad) == ["bad_period", "bad_period"]


def test_spreadsheet_formulas_never_reach_bronze():
    out = run_file(claims_file(claim('"=HYPERLINK(""http://x.invalid"",""a"")"'), claim("@SUM(A1)"),
                               claim("+cmd"), claim("-2"), claim("C5")), "claims", "mcp_bluecoast")
    assert_conserved(out)
    assert {(q["row_number"], q["rule_id"], q["field"]) for q in out.quarantine} == {
        (2, "formula_text", "claim_id"), (3, "formula_text", "claim_id"), (4, "formula_text", "claim_id")}
    assert [r["claim_id"] for r in accepted_rows(out)] == ["-2", "C5"]
    fix = next(e for e in out.receipt.errors if e["rule_id"] == "formula_text")["how_to_fix"]
    assert "leading =" in fix


def test_every_csv_we_write_escapes_formula_text():
    df = pd.DataFrame({"measure": ["=1+1", "@x", "-y", "ok", "-"], "value": [-1.5, 2.0, 3.0, 4.0, 5.0]})
    rows = list(csv.reader(io.StringIO(_csv(df).decode())))
    assert [r[0] for r in rows[1:]] == ["'=1+1", "'@x", "'-y", "ok", "-"]
    assert [r[1] for r in rows[1:]] == ["-1.5", "2.0", "3.0", "4.0", "5.0"]
    assert escape_cell(-3) == -3 and escape_cell("+1 555 0100") == "+1 555 0100"


def test_a_missing_optional_column_is_accepted_with_a_note():
    header = CLAIMS.replace(",dx4", "").replace(",revenue_code", "")
    row = claim("C1").split(",")
    del row[15], row[10]
    out = run_file(claims_file(",".join(row), header=header), "claims", "mcp_bluecoast")
    assert out.receipt.status == "accepted"
    assert any("not in the file" in n and "revenue_code" in n and "dx4" in n for n in out.receipt.notes)


def test_a_header_only_file_warns_that_it_withdraws_the_period(spark, phmx_home):
    out = run_file(claims_file(), "claims", "mcp_bluecoast")
    assert out.receipt.status == "accepted" and out.receipt.rows_landed == 0
    (w,) = out.receipt.file_warnings
    assert w["rule_id"] == "period_withdrawn" and "2025-01" in w["message"]
    assert "period_withdrawn" in render_html(out.receipt)
    spec = load_specs()["consent_forms"]
    header = spec.format.get("delimiter", ",").join(str(f.source) for f in spec.fields)
    append = run_file(header.encode() + b"\n", "consent_forms", "county_06001_bh")
    assert append.receipt.status == "accepted"
    assert [w["rule_id"] for w in append.receipt.file_warnings] == ["no_records"]


def test_validate_without_period_names_no_month():
    partial = (HEADER + "\n" + enrollment_row(1) + "\n" + enrollment_row(2, birth_date="19801399") + "\n").encode()
    r = precheck(partial, "enrollment", name="partial.txt")
    assert r.period == "" and r.status == "accepted_with_errors"
    text = " ".join(next_steps(r))
    assert "for period" not in text and "folder of its reporting period" in text
    empty = precheck(HEADER.encode() + b"\n", "enrollment", name="empty.txt")
    assert "0000" not in empty.file_warnings[0]["message"]
    dated = precheck(partial, "enrollment", name="partial.txt", period="2025-03")
    assert "2025-03" in " ".join(next_steps(dated))
