"""The delimited reader's two paths (Arrow fast path, csv module fallback) give the same answer."""

from __future__ import annotations

import pytest

from jobs.ingest.formats import delimited
from phmx.feedspec import get_spec
from tests.ingest.helpers import accepted_rows, assert_conserved, run_file
from tests.ingest.test_ingest_delimited import HEADER, enrollment_row


def body(*rows: str, end: str = "\n") -> bytes:
    return (end.join([HEADER, *rows]) + end).encode()


CASES = {
    "plain": body(*(enrollment_row(i) for i in range(1, 6))),
    "crlf-blank-lines": body(enrollment_row(1), "", "   ", enrollment_row(2), end="\r\n"),
    "bad-width-twice": body(enrollment_row(1), "a|b|c", enrollment_row(2), "a|b|c", enrollment_row(3)),
    "quoted-delimiter": body(enrollment_row(1, family_name='"Peña|Ruiz"'), enrollment_row(2)),
    "bom": b"\xef\xbb\xbf" + body(enrollment_row(1), enrollment_row(2)),
}


def both_paths(data: bytes, monkeypatch: pytest.MonkeyPatch):
    fast = run_file(data, "enrollment", "mcp_bluecoast")
    monkeypatch.setattr(delimited, "_fast", lambda *a, **k: None)
    slow = run_file(data, "enrollment", "mcp_bluecoast")
    monkeypatch.undo()
    return fast, slow


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_and_slow_paths_agree(case, monkeypatch):
    fast, slow = both_paths(CASES[case], monkeypatch)
    for out in (fast, slow):
        assert_conserved(out)
    assert accepted_rows(fast) == accepted_rows(slow)
    assert fast.receipt.errors == slow.receipt.errors
    assert [q["raw_record"] for q in fast.quarantine] == [q["raw_record"] for q in slow.quarantine]


def test_bad_width_rows_keep_their_line_numbers(monkeypatch):
    fast, _ = both_paths(CASES["bad-width-twice"], monkeypatch)
    (err,) = fast.receipt.errors
    assert err["rule_id"] == "column_count" and err["rows"] == [3, 5]
    assert [r["row_number"] for r in accepted_rows(fast)] == [2, 4, 6]


def test_a_quoted_line_break_falls_back_and_numbers_the_record_by_its_first_line():
    data = body(enrollment_row(1), enrollment_row(2, address_line='"1 Main St\nApt 2"'), enrollment_row(3))
    out = run_file(data, "enrollment", "mcp_bluecoast")
    rows = accepted_rows(out)
    assert [r["row_number"] for r in rows] == [2, 3, 5]
    assert rows[1]["address_line"] == "1 Main St\nApt 2"


def test_an_unclosed_quote_quarantines_the_rest_line_by_line():
    data = body(enrollment_row(1), enrollment_row(2, city='"Oakland'), enrollment_row(3), enrollment_row(4))
    out = run_file(data, "enrollment", "mcp_bluecoast")
    assert_conserved(out)
    assert out.receipt.rows_landed == 4
    assert out.receipt.rows_accepted >= 1


def test_old_mac_line_ends_are_read(monkeypatch):
    data = body(enrollment_row(1), enrollment_row(2), end="\r")
    out = run_file(data, "enrollment", "mcp_bluecoast")
    assert [r["row_number"] for r in accepted_rows(out)] == [2, 3]


def test_fast_path_is_taken_for_ordinary_files():
    spec = get_spec("enrollment")
    chunks = list(delimited.parse(CASES["plain"], spec, chunk_rows=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert not isinstance(chunks[0].columns["cin"], list)  # Arrow arrays, not Python lists
