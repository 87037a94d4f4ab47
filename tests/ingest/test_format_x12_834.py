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


# ---- maintenance, dependents and coverage loops as the TR3 allows them ------------------------------------
def _member(enr_rows: list[dict], segs: list[str], k: int = 0) -> tuple[int, int]:
    """(first, end) segment indexes of the k-th member loop."""
    ins = [i for i, s in enumerate(segs) if s.startswith("INS*")]
    end = ins[k + 1] if k + 1 < len(ins) else next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    return ins[k], end


def test_dependents_with_the_subscribers_ref0f_are_keyed_apart(enr_rows):
    segs = segments(x12(enr_rows[:1]))
    a, b = _member(enr_rows, segs)
    loop = segs[a:b]
    deps = []
    for rel in ("19", "19", "01"):  # two children and a spouse, no CIN: keyed by relationship and order
        dep = [s for s in loop if not s.startswith("REF*23")]
        dep[0] = f"INS*N*{rel}*021*28*A***FT"
        deps += dep
    segs = renumber_se(segs[:b] + deps + segs[b:])
    out = run_file(join(segs), FEED, SUB)
    assert_conserved(out)
    assert out.receipt.status == "accepted", out.receipt.errors
    sub = enr_rows[0]["member_local_id"]
    assert [r["member_local_id"] for r in accepted_rows(out)] == [sub, f"{sub}-191", f"{sub}-192", f"{sub}-011"]


def test_each_hd_loop_is_one_coverage_numbered_by_its_hd(enr_rows):
    segs = segments(x12(enr_rows[:1]))
    a, b = _member(enr_rows, segs)
    hd = next(i for i in range(a, b) if segs[i].startswith("HD*"))
    extra = ["HD*021**DEN", "DTP*348*D8*20250201", "HD*021**VIS", "DTP*348*D8*20250301"]
    segs = renumber_se(segs[:b] + extra + segs[b:])
    out = run_file(join(segs), FEED, SUB)
    rows = accepted_rows(out)
    assert [(r["coverage_type"], r["coverage_start"]) for r in rows][1:] == [("DEN", "2025-02-01"),
                                                                            ("VIS", "2025-03-01")]
    assert rows[0]["coverage_type"] == segs[hd].split("*")[3]
    assert [r["row_number"] for r in rows] == [a + 1, b + 1, b + 3]  # INS, then each further HD
    assert len({r["member_local_id"] for r in rows}) == 1 and rows[1]["birth_date"] == rows[0]["birth_date"]


def test_a_termination_needs_no_dmg_or_benefit_begin(enr_rows):
    segs = segments(x12(enr_rows[:1]))
    a, b = _member(enr_rows, segs)
    segs[a] = "INS*Y*18*024*07*T***TE"
    segs = [s for i, s in enumerate(segs) if not (a < i < b and (s.startswith("DMG*") or s.startswith("DTP*348")))]
    b = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    segs = renumber_se(segs[:b] + ["DTP*349*D8*20250131"] + segs[b:])
    out = run_file(join(segs), FEED, SUB)
    assert out.receipt.status == "accepted", out.receipt.errors
    (row,) = accepted_rows(out)
    assert (row["maintenance_type"], row["birth_date"], row["coverage_start"], row["coverage_end"]) == (
        "024", None, None, "2025-01-31")
    segs[a] = "INS*Y*18*021*28*A***FT"  # an addition still needs its DMG (birth date and sex identify people)
    out = run_file(join(segs), FEED, SUB)
    assert {(e["rule_id"], e["field"]) for e in out.receipt.errors} == {("required", "birth_date"), ("required", "sex")}
    assert {e["how_to_fix"] for e in out.receipt.errors} >= {
        "Send DMG[D8].02 (DMG02; required when INS03 is 021 or 030): it is required for every record."}


def test_an_out_of_state_county_is_noted_not_quarantined(enr_rows):
    segs = segments(x12(enr_rows[:1]))
    i = next(i for i, s in enumerate(segs) if s.startswith("N4*"))
    segs[i] = "N4*RENO*NV*89501**CY*32031"
    out = run_file(join(segs), FEED, SUB)
    assert out.receipt.status == "accepted", out.receipt.errors
    (row,) = accepted_rows(out)
    assert (row["state"], row["county_fips"]) == ("NV", None)
    assert any("outside CA" in n for n in out.receipt.notes)
