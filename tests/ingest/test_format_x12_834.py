"""X12 834 5010: round trip, pyx12 agrees with the writer, envelope rules, broken member loops."""

from __future__ import annotations

import io
import json
import re

import pytest

from phmx.synth.writers.x12_834 import write_834
from tests.ingest.conftest import synth_rows
from tests.ingest.helpers import accepted_rows, assert_conserved, run_file

FEED, SUB = "enrollment_834", "mcp_bluecoast"


@pytest.fixture(scope="module")
def enr_rows(synth_root):
    return synth_rows(synth_root, SUB, "enrollment")


def x12(rows: list[dict]) -> str:
    buf = io.BytesIO()
    write_834(rows, buf)
    return buf.getvalue().decode()


def segments(text: str) -> list[str]:
    return [s.strip() for s in text.split("~") if s.strip()]


def join(segs: list[str]) -> bytes:
    return ("~\n".join(segs) + "~\n").encode()


def renumber_se(segs: list[str]) -> list[str]:
    """Fix SE01 after an edit, as a translator would (to test loop-level rules in isolation)."""
    st = next(i for i, s in enumerate(segs) if s.startswith("ST*"))
    se = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    segs[se] = f"SE*{se - st + 1}*0001"
    return segs


def test_round_trip_equals_the_delimited_roster(enr_rows):
    out = run_file(x12(enr_rows).encode(), FEED, SUB)
    assert out.receipt.status == "accepted", out.receipt.errors
    got = accepted_rows(out)
    assert len(got) == len(enr_rows)
    for src, row in zip(enr_rows, got, strict=True):
        for f in ("member_local_id", "cin", "given_name", "family_name", "middle_name", "address_line", "city",
                  "state", "zip", "county_fips", "email", "language", "plan_id", "aid_code", "maintenance_type"):
            assert row[f] == (src[f] or None), f
        assert row["birth_date"].replace("-", "") == src["birth_date"]
        assert row["coverage_start"].replace("-", "") == src["coverage_start"]
        assert (row["coverage_end"] or "").replace("-", "") == src["coverage_end"]
        assert (row["ssn"] or "") == src["ssn"].replace("-", "")
        assert row["sex"] == (src["sex"] if src["sex"] in ("F", "M", "U") else "U")
        assert row["race"] is None  # not carried by the 834 (bronze column of the base feed stays empty)
    # Each record is numbered by the position of its INS segment (ISA = 1).
    segs = segments(x12(enr_rows))
    ins_positions = [i + 1 for i, s in enumerate(segs) if s.startswith("INS*")]
    assert [r["row_number"] for r in got] == ins_positions


def test_pyx12_validates_the_synthetic_834(enr_rows):
    from jobs.ingest.x12strict import pyx12_findings

    ok, findings = pyx12_findings(x12(enr_rows[:40]).encode())
    assert ok, findings


def test_other_separators_are_read_from_the_isa(enr_rows):
    text = x12(enr_rows[:5])
    # Element "|", component ">", segment terminator "'" (a common EDI set).
    swapped = text.replace("*", "|").replace("~", "'").replace("|:'", "|>'", 1)
    out = run_file(swapped.encode(), FEED, SUB)
    assert out.receipt.status == "accepted", out.receipt.file_errors
    assert [r["member_local_id"] for r in accepted_rows(out)] == [r["member_local_id"] for r in enr_rows[:5]]


@pytest.mark.parametrize(("edit", "rule"), [
    (lambda s: [x for x in s if not x.startswith("IEA")], "x12_iea_missing"),
    (lambda s: [x if not x.startswith("IEA") else "IEA*2*" + x.split("*")[2] for x in s], "x12_iea_count"),
    (lambda s: [x if not x.startswith("IEA") else "IEA*1*000000999" for x in s], "x12_iea_control"),
    (lambda s: [x if not x.startswith("GE") else "GE*3*" + x.split("*")[2] for x in s], "x12_ge_count"),
    (lambda s: [x if not x.startswith("GE") else "GE*1*999" for x in s], "x12_ge_control"),
    (lambda s: [x if not x.startswith("GS") else x.replace("GS*BE", "GS*HC") for x in s], "x12_gs"),
    (lambda s: s[: len(s) // 2], "x12_ge_missing"),
    (lambda s: [*s, "INS*Y*18*021"], "x12_trailing_data"),
], ids=["no-iea", "iea-count", "iea-control", "ge-count", "ge-control", "not-834-group", "truncated", "after-iea"])
def test_envelope_errors_reject_the_file_and_conserve_loops(enr_rows, edit, rule):
    segs = edit(segments(x12(enr_rows[:30])))
    out = run_file(join(segs), FEED, SUB)
    r = out.receipt
    assert r.status == "rejected"
    assert r.file_errors[0]["rule_id"] == rule
    assert r.rows_landed == sum(1 for s in segs if s.startswith("INS*")) == r.rows_quarantined
    assert_conserved(out)


def test_a_bad_se_quarantines_only_its_transaction_set(enr_rows):
    segs = segments(x12(enr_rows[:20]))
    st = next(i for i, s in enumerate(segs) if s.startswith("ST*"))
    se = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    first = segs[st:se + 1]
    second = [s.replace("ST*834*0001", "ST*834*0002").replace("SE*", "SE*") for s in first]
    second[-1] = f"SE*{len(second) + 1}*0002"  # wrong count: one segment too many
    body = segs[:st] + first + second + segs[se + 1:]
    body = [f"GE*2*{s.split('*')[2]}" if s.startswith("GE*") else s for s in body]
    out = run_file(join(body), FEED, SUB)
    r = out.receipt
    assert r.status == "accepted_with_errors", r.file_errors
    assert r.rows_accepted == 20 and r.rows_quarantined == 20
    (err,) = r.errors
    assert err["rule_id"] == "x12_se_count" and err["level"] == "transaction"
    assert_conserved(out)


def test_a_broken_member_loop_is_quarantined_without_its_neighbours(enr_rows):
    segs = segments(x12(enr_rows[:10]))
    ins = [i for i, s in enumerate(segs) if s.startswith("INS*")]
    nm1 = next(i for i in range(ins[2], ins[3]) if segs[i].startswith("NM1*IL"))
    del segs[nm1]                                    # loop 3 loses its member name
    ins = [i for i, s in enumerate(segs) if s.startswith("INS*")]
    segs[ins[5] + 1] = "R#F*0F*" + segs[ins[5] + 1].split("*")[2]  # loop 6: a damaged segment id
    segs[ins[7]] = "INS*Q*18*021"                    # loop 8: INS01 unusable
    out = run_file(join(renumber_se(segs)), FEED, SUB)
    r = out.receipt
    by_rule = {e["rule_id"]: e["rows"] for e in r.errors}
    assert by_rule == {"x12_loop": [ins[2] + 1], "x12_segment": [ins[5] + 1], "x12_element": [ins[7] + 1]}
    assert r.rows_accepted == 7 and r.status == "accepted_with_errors"
    assert_conserved(out)
    # The receipt names segment positions and rules, never a member's value.
    text = json.dumps(r.errors)
    assert not re.search(r"BC\d{6,}", text)


def test_x12_strict_findings_never_quote_values(enr_rows):
    from jobs.ingest.x12strict import pyx12_findings

    segs = segments(x12(enr_rows[:5]))
    dmg = next(i for i, s in enumerate(segs) if s.startswith("DMG*"))
    segs[dmg] = "DMG*D8*1978103*Q"
    ok, findings = pyx12_findings(join(segs))
    assert not ok
    text = " ".join(m for _, m in findings)
    assert "DMG02" in text and "invalid date" in text
    assert "1978103" not in text and "(Q)" not in text
