"""Receipts name the exact fix (where in the file, the expected form, an example) and summarise by rule."""

from __future__ import annotations

import argparse
import json

from jobs.ingest.cli import register
from jobs.ingest.receipts import percent, render_html
from tests.ingest.helpers import run_file
from tests.ingest.test_fault_injection import claim, claims_file


def _fix(receipt, rule: str, field: str) -> str:
    return next(g["how_to_fix"] for g in receipt.errors if (g["rule_id"], g["field"]) == (rule, field))


def _bad_claims() -> bytes:
    rows = [claim(f"C{i}") for i in range(1, 9)]
    rows[1] = claim("C2", "2025-02-30")
    rows[2] = claim("C3", "01/05/2025")
    rows[3] = claim("=C4")
    rows[4] = rows[4].replace(",P,", ",X,")
    rows[5] = rows[5].replace(",E119,", ",E11.9,")
    return claims_file(*rows)


def test_each_error_names_the_column_the_form_and_an_example():
    r = run_file(_bad_claims(), "claims", "mcp_bluecoast").receipt
    assert _fix(r, "format", "service_from") == (
        "Send column service_from as a real calendar date in the form YYYY-MM-DD, e.g. 2025-01-31.")
    assert _fix(r, "code_set", "claim_type") == "Send in column claim_type one of I, P."
    assert "column dx1" in _fix(r, "format", "dx1") and "e.g. E119" in _fix(r, "format", "dx1")
    assert "column claim_id" in _fix(r, "formula_text", "claim_id")
    assert "=C4" not in json.dumps(r.errors)  # fixes never echo what was sent


def test_fixed_width_fixes_name_the_record_positions(synth_root):
    from tests.ingest.conftest import synth_rows
    from tests.ingest.test_format_fixed_width import fixed

    rows = synth_rows(synth_root, "county_06001_bh", "mh_csi")
    lines = fixed(rows).decode().splitlines()
    c = next(i for i, ln in enumerate(lines) if ln.startswith("C"))
    lines[c] = lines[c][:91] + "19800230" + lines[c][99:]  # an impossible birth date
    out = run_file("\n".join(lines).encode() + b"\n", "mh_csi_fixed", "county_06001_bh")
    fix = _fix(out.receipt, "format", "birth_date")
    assert fix == ("Send birth_date (columns 92-99 of C records) as a real calendar date in the form YYYYMMDD, "
                   "e.g. 20250131.")


def test_a_summary_by_rule_gives_each_rule_its_share_of_records():
    r = run_file(_bad_claims(), "claims", "mcp_bluecoast").receipt
    summary = {x["rule_id"]: x for x in r.rule_summary}
    assert r.rows_landed == 8
    assert summary["format"]["records"] == 3 and summary["format"]["share"] == 0.375  # two dates and a dx
    assert summary["formula_text"]["share"] == summary["code_set"]["share"] == 0.125
    assert {x["severity"] for x in r.rule_summary} == {"error"}
    assert "Summary by rule" in render_html(r) and "37.5%" in render_html(r)
    assert percent(0.0004) == "<0.1%" and percent(1.0) == "100%"


def test_phmx_validate_prints_the_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one line per table row, as in a wide terminal
    f = tmp_path / "claims.csv"
    f.write_bytes(_bad_claims())
    parser = argparse.ArgumentParser(prog="phmx")
    register(parser.add_subparsers())
    args = parser.parse_args(["validate", str(f), "--feed", "claims"])
    assert args.func(args) == 21
    out = capsys.readouterr().out
    assert "Summary by rule" in out and "37.5%" in out and "e.g. 2025-01-31" in out
    args = parser.parse_args(["validate", str(f), "--feed", "claims", "--json"])
    args.func(args)
    doc = json.loads(capsys.readouterr().out)
    assert {x["rule_id"]: x["share"] for x in doc["rule_summary"]}["code_set"] == 0.125
