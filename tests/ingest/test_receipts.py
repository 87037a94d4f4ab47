"""Receipts say what happened in the submitter's terms: rule, rows (and messages), how to fix, next steps."""

from __future__ import annotations

import io

from jobs.ingest.receipts import render_html
from phmx.synth.writers.hl7_vxu import write_vxu
from tests.ingest.conftest import synth_rows
from tests.ingest.helpers import run_file
from tests.ingest.test_ingest_delimited import HEADER, enrollment_row


def test_hl7_receipt_names_messages_and_explains_row_numbers(synth_root):
    rows = synth_rows(synth_root, "cair2", "immunizations")[:6]
    rows[2] = dict(rows[2], cvx="9999")
    buf = io.BytesIO()
    write_vxu(rows, buf, line_end="\n")
    r = run_file(buf.getvalue(), "immunizations_vxu", "cair2").receipt
    (err,) = r.errors
    assert err["rule_id"] == "code_set" and err["field"] == "cvx" and err["level"] == "field"
    assert err["locations"][0].startswith("message ")
    html = render_html(r)
    assert f"{err['rows'][0]} ({err['locations'][0]})" in html
    assert "line of the RXA" in html and "What to do next" in html and "9999" not in html


def test_rejected_receipt_explains_the_fix_and_the_resend():
    data = (HEADER.replace("|", ";") + "\n" + enrollment_row(1).replace("|", ";") + "\n").encode()
    r = run_file(data, "enrollment", "mcp_bluecoast").receipt
    assert r.status == "rejected" and r.file_errors[0]["rule_id"] == "wrong_delimiter"
    assert r.errors[0]["rule_id"] == "wrong_delimiter" and r.errors[0]["rows"] == [2]
    html = render_html(r)
    assert "Export with the delimiter the feed spec names" in html
    assert "phmx validate FILE --feed enrollment" in html


def test_spec_rules_get_their_checks_advice_and_feed_overrides_win():
    rows = [enrollment_row(1, coverage_start="20250301", coverage_end="20250201"), enrollment_row(2, birth_date="1980")]
    r = run_file(("\n".join([HEADER, *rows]) + "\n").encode(), "enrollment", "mcp_bluecoast").receipt
    fixes = {e["rule_id"]: e["how_to_fix"] for e in r.errors}
    assert "later one is not before" in fixes["date_order"]
    # a field's own fix names its column, the expected form and an example, not the generic advice
    assert fixes["format"] == ("Send column birth_date as a real calendar date in the form YYYYMMDD, "
                               "e.g. 20250131.")
    assert r.unit_text.startswith("Row numbers are line numbers")
