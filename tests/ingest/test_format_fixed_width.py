"""Fixed-width CSI-like records: round trip with the synthetic writer, header/trailer rules, bad records."""

from __future__ import annotations

import io

import pytest

from phmx.synth.writers.fixed_width import write_csi_fixed
from tests.ingest.conftest import synth_rows
from tests.ingest.helpers import accepted_rows, assert_conserved, run_file

FEED, SUB = "mh_csi_fixed", "county_06001_bh"


@pytest.fixture(scope="module")
def csi_rows(synth_root):
    return synth_rows(synth_root, SUB, "mh_csi")


def fixed(rows: list[dict]) -> bytes:
    buf = io.BytesIO()
    write_csi_fixed(rows, buf)
    return buf.getvalue()


def test_round_trip_matches_the_delimited_rows(csi_rows):
    out = run_file(fixed(csi_rows), FEED, SUB)
    assert out.receipt.status == "accepted", out.receipt.errors
    got = accepted_rows(out)
    assert len(got) == len(csi_rows)
    layout_fields = {"C": {"county_code", "client_number", "cin", "ssn", "given_name", "family_name", "birth_date",
                           "sex", "race", "ethnicity", "zip"},
                     "S": {"county_code", "client_number", "service_date", "mode_of_service", "service_function",
                           "units_of_service", "units_of_time", "diagnosis"},
                     "P": {"county_code", "client_number", "service_date", "living_arrangement", "employment",
                           "education"}}
    for src, row in zip(csi_rows, got, strict=True):
        assert row["record_type"] == src["record_type"]
        for f in layout_fields[src["record_type"]]:
            want = src[f] or None
            if f in ("units_of_service", "units_of_time") and want:
                assert float(row[f]) == float(want)
            else:
                assert row[f] == want, f
    # Row numbers are physical lines: the header is line 1, details follow.
    assert [r["row_number"] for r in got] == list(range(2, len(csi_rows) + 2))


def test_trailer_count_mismatch_rejects_and_quarantines_every_record(csi_rows):
    lines = fixed(csi_rows).decode().splitlines()
    del lines[3]  # a detail record lost in transit
    out = run_file("\r\n".join(lines).encode(), FEED, SUB)
    assert out.receipt.status == "rejected"
    assert out.receipt.file_errors[0]["rule_id"] == "trailer_count"
    assert out.receipt.rows_landed == len(csi_rows) - 1 == out.receipt.rows_quarantined
    assert_conserved(out)


@pytest.mark.parametrize(("mutate", "rule"), [
    (lambda ls: ls[:-1], "trailer_missing"),
    (lambda ls: ls[1:], "header_missing"),
], ids=["no-trailer", "no-header"])
def test_missing_header_or_trailer_rejects(csi_rows, mutate, rule):
    lines = mutate(fixed(csi_rows).decode().splitlines())
    out = run_file("\n".join(lines).encode(), FEED, SUB)
    assert out.receipt.file_errors[0]["rule_id"] == rule
    assert_conserved(out)


def test_bad_records_are_quarantined_and_neighbours_load(csi_rows):
    lines = fixed(csi_rows).decode().splitlines()
    lines[2] = "X" + lines[2][1:]            # unknown record type
    lines[3] = lines[3].ljust(140) + "Z"      # longer than any layout: a shifted field
    s_line = next(i for i, ln in enumerate(lines) if ln.startswith("S") and i > 3)
    lines[s_line] = lines[s_line][:23] + "20251399" + lines[s_line][31:]  # impossible service date
    out = run_file("\n".join(lines).encode(), FEED, SUB)
    r = out.receipt
    assert r.status == "accepted_with_errors"
    by_rule = {(e["rule_id"], e["field"]): e["rows"] for e in r.errors}
    assert by_rule[("record_type", "")] == [3]
    assert by_rule[("record_length", "")] == [4]
    assert by_rule[("format", "service_date")] == [s_line + 1]
    assert r.rows_accepted == len(csi_rows) - 3
    assert_conserved(out)
    assert "20251399" not in str(r.errors)


def test_layout_errors_in_a_spec_name_the_key():

    from jobs.ingest.formats.fixed_width import check_spec
    from phmx.feedspec import get_spec

    spec = get_spec(FEED)
    fmt = dict(spec.format)
    fmt["layouts"] = {**fmt["layouts"], "S": {"length": 60, "fields": {"record_type": [1, 1], "client_number": [1, 20],
                                                                       "nonsense": [30, 2]}}}
    problems = dict(check_spec(spec.model_copy(update={"format": fmt})))
    assert "format.layouts.S.fields.nonsense" in problems
    assert "overlap" in problems["format.layouts.S.fields"]
