"""HL7 v2.5.1 VXU: batch and bare streams, python-hl7 as an independent reader, batch rules, bad messages."""

from __future__ import annotations

import io
import json
from pathlib import Path

import hl7
import pytest

from jobs.ingest.process import FileOutcome
from phmx.synth.writers.hl7_vxu import write_vxu
from tests.ingest.conftest import synth_rows
from tests.ingest.helpers import accepted_rows, assert_conserved, run_file

FEED, SUB = "immunizations_vxu", "cair2"


@pytest.fixture(scope="module")
def imm_rows(synth_root):
    return synth_rows(synth_root, SUB, "immunizations")


def vxu(rows: list[dict], **kw) -> str:
    buf = io.BytesIO()
    write_vxu(rows, buf, **kw)
    return buf.getvalue().decode()


@pytest.mark.parametrize(("batch", "line_end"), [(True, "\r"), (False, "\r\n"), (False, "\n")],
                         ids=["batch-cr", "stream-crlf", "stream-lf"])
def test_round_trip_equals_the_csv_rows(imm_rows, batch, line_end):
    out = run_file(vxu(imm_rows, batch=batch, line_end=line_end).encode(), FEED, SUB)
    assert out.receipt.status == "accepted", (out.receipt.errors, out.receipt.file_errors)
    got = accepted_rows(out)
    assert len(got) == len(imm_rows)
    for src, row in zip(imm_rows, got, strict=True):
        for f, v in src.items():
            want = v or None
            if f == "phone" and want:
                want = "".join(c for c in want if c.isdigit())
            assert row[f] == want, f


def test_fields_agree_with_python_hl7(imm_rows):
    """python-hl7's own parser, run on each message, finds the same values as the vectorised reader."""
    text = vxu(imm_rows[:60], batch=False)
    got = accepted_rows(run_file(text.encode(), FEED, SUB))
    messages = ["MSH" + m for m in text.split("MSH")[1:]]
    by_vacc = {r["vaccination_id"]: r for r in got}
    checked = 0
    for m in messages:
        msg = hl7.parse(m.replace("\n", "\r").strip())
        pid = msg.segment("PID")
        for orc, rxa in zip(msg.segments("ORC"), msg.segments("RXA"), strict=True):
            row = by_vacc[str(orc[3][0][0])]
            assert row["family_name"] == (str(pid[5][0][0]) or None)
            assert row["birth_date"].replace("-", "") == str(pid[7])
            assert row["cvx"] == str(rxa[5][0][0])
            assert row["admin_date"].replace("-", "") == str(rxa[3])[:8]
            assert row["lot_number"] == (str(rxa[15]) or None)
            checked += 1
    assert checked == len(got)


def test_escape_sequences_are_resolved(imm_rows):
    row = dict(imm_rows[0], family_name="Smith & Jones|Co", address_line="1 A^B St")
    out = run_file(vxu([row], batch=False).encode(), FEED, SUB)
    (got,) = accepted_rows(out)
    assert got["family_name"] == "Smith & Jones|Co" and got["address_line"] == "1 A^B St"


def test_two_vaccinations_in_one_message_are_two_records_numbered_by_line(imm_rows):
    pid = imm_rows[0]["registry_patient_id"]
    rows = [dict(imm_rows[0], vaccination_id="VA1"), dict(imm_rows[0], vaccination_id="VA2", cvx="21")]
    assert rows[0]["registry_patient_id"] == rows[1]["registry_patient_id"] == pid
    text = vxu(rows, batch=False, line_end="\n")
    out = run_file(text.encode(), FEED, SUB)
    got = accepted_rows(out)
    lines = text.split("\n")
    assert [r["row_number"] for r in got] == [i + 1 for i, ln in enumerate(lines) if ln.startswith("RXA|")]
    assert [r["vaccination_id"] for r in got] == ["VA1", "VA2"]


@pytest.mark.parametrize(("edit", "rule"), [
    (lambda ls: [("BTS|999" if ln.startswith("BTS") else ln) for ln in ls], "hl7_bts_count"),
    (lambda ls: [("FTS|7" if ln.startswith("FTS") else ln) for ln in ls], "hl7_fts_count"),
    (lambda ls: [ln for ln in ls if not ln.startswith("BTS")], "hl7_batch"),
    (lambda ls: ls[: len(ls) // 2], "hl7_batch"),
], ids=["bts-count", "fts-count", "no-bts", "truncated"])
def test_broken_batch_envelope_rejects_the_file(imm_rows, edit, rule):
    lines = edit(vxu(imm_rows[:50], line_end="\n").split("\n"))
    out = run_file("\n".join(lines).encode(), FEED, SUB)
    r = out.receipt
    assert r.status == "rejected" and r.file_errors[0]["rule_id"] == rule
    assert r.rows_landed == sum(1 for ln in lines if ln.startswith("RXA|"))
    assert_conserved(out)


def test_bad_messages_are_quarantined_and_the_others_load(imm_rows):
    text = vxu(imm_rows[:40], batch=False, line_end="\n")
    msgs = ["MSH" + m for m in text.split("MSH")[1:]]
    n_rxa = [m.count("\nRXA|") for m in msgs]
    msgs[1] = msgs[1].replace("VXU^V04^VXU_V04", "ADT^A04^ADT_A01", 1)           # not a VXU
    msgs[2] = "\n".join(ln for ln in msgs[2].split("\n") if not ln.startswith(("ORC", "RXA", "RXR", "OBX")))
    msgs[3] = msgs[3].replace("\nPD1|", "\nP@1|", 1)                               # damaged segment id
    msgs[4] = msgs[4].replace("MSH|^~\\&|", "MSH|^~\\#|", 1)                        # wrong separators
    stray = "PID|1||X^^^CAIR2^SR\n"
    out = run_file((stray + "".join(msgs)).encode(), FEED, SUB)
    r = out.receipt
    rules = {e["rule_id"]: e for e in r.errors}
    counts: dict[str, int] = {}
    for e in r.errors:
        counts[e["rule_id"]] = counts.get(e["rule_id"], 0) + e["count"]
    assert counts["hl7_message_type"] == n_rxa[1]
    assert counts["hl7_no_rxa"] == 1
    assert counts["hl7_segment"] == n_rxa[3] + 1   # the damaged message's RXAs and the stray line
    assert counts["hl7_msh"] == n_rxa[4]
    assert rules["hl7_message_type"]["locations"][0] == "message 2"
    assert r.rows_landed == sum(n_rxa) - n_rxa[2] + 1 + 1
    assert r.rows_accepted == sum(n_rxa) - sum(n_rxa[1:5])
    assert_conserved(out)


# ---- the CDC IG as real senders use it (corpus: tests/conformance/hl7v2_vxu) ----------------------------
CORPUS = Path(__file__).resolve().parents[1] / "conformance" / "hl7v2_vxu"


def _corpus(name: str) -> FileOutcome:
    out = run_file((CORPUS / name).read_bytes(), FEED, SUB)
    assert_conserved(out)
    return out


def test_pid3_of_any_identifier_type_is_kept_with_its_type_and_authority():
    got = accepted_rows(_corpus("ours_batch_mr_ss_ma.hl7"))
    assert [(r["registry_patient_id"], r["patient_id_type"], r["patient_id_authority"], r["cin"]) for r in got] == [
        ("OURS-2001", "MR", "TESTCLINIC", "91234567A"),  # MR chosen, SS never, MA is the CIN
        ("OURS-2002", "PI", "TESTCLINIC", None),
    ]
    (nist,) = accepted_rows(_corpus("nist_iz_001.hl7"))
    assert (nist["registry_patient_id"], nist["patient_id_type"], nist["patient_id_authority"]) == (
        "D26376273", "MR", "NIST MPI")


def test_completion_status_and_action_code_are_kept_and_ndc_maps_to_cvx():
    out = _corpus("ours_status_ndc.hl7")
    got = {(r["vaccination_id"], r["action_code"]): r for r in accepted_rows(out)}
    assert {k: (r["completion_status"], r["cvx"], r["ndc"]) for k, r in got.items()} == {
        ("OURS-V1", "A"): ("CP", "20", None),
        ("OURS-V2", "A"): ("RE", "94", None),
        ("OURS-V3", "A"): ("NA", "998", None),
        ("OURS-V4", "A"): ("PA", "10", None),
        ("OURS-V5", "A"): ("CP", "48", "49281-0545-03"),    # unit-of-sale NDC of ActHIB -> CVX 48 (CDC crosswalk)
        ("OURS-V6", "A"): ("CP", "116", "00006-4047-41"),   # NDC with the CVX as alternate code: the CVX sent wins
        ("OURS-V1", "D"): ("CP", "20", None),               # the deletion of OURS-V1, not a duplicate
    }
    (bad,) = out.receipt.errors
    assert bad["rule_id"] == "hl7_vaccine_code" and "crosswalk" in bad["message"]
    assert "99999" not in json.dumps(out.receipt.errors)  # the NDC sent is never echoed


def test_mllp_framing_is_removed_and_noted():
    out = _corpus("ours_mllp_framed.hl7")
    assert out.receipt.status == "accepted" and out.receipt.rows_accepted == 2
    assert any("MLLP" in n for n in out.receipt.notes)
    plain = _corpus("ours_batch_mr_ss_ma.hl7")
    strip = ("row_number", "source_file", "source_file_sha256", "submission_id")
    assert [{k: v for k, v in r.items() if k not in strip} for r in accepted_rows(out)] == \
        [{k: v for k, v in r.items() if k not in strip} for r in accepted_rows(plain)]


def test_versions_2_3_to_2_8_are_read_and_an_older_one_is_named():
    assert _corpus("ours_v231.hl7").receipt.status == "accepted"
    out = _corpus("ours_v22.hl7")
    (err,) = out.receipt.errors
    assert err["rule_id"] == "hl7_version" and "version 2.2" in err["message"] and "2.5.1" in err["message"]


def test_receipts_name_the_segment_field_and_expected_value():
    out = _corpus("lfh_multiple_orders.hl7")
    fixes = {(e["rule_id"], e["field"]): e["how_to_fix"] for e in out.receipt.errors}
    assert fixes[("required", "birth_date")].startswith("Send PID-7 ")
    assert fixes[("code_set", "action_code")] == "Send in RXA-21 one of A, D, U."
