"""HL7 ACKs and X12 999/TA1 for the conformance corpus, read back with python-hl7 and pyx12.

Each acknowledgment is parsed by the standard's own library, not by string matching: python-hl7
reads every ACK (or the FHS/BHS batch of them), pyx12 validates every 999 against its
005010X231A1 map and reads the AK2/IK3/IK5/AK9 values back.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import hl7
import pytest
import pyx12.x12file

from jobs import ingest
from jobs.ingest.acknowledgments import acknowledge
from jobs.ingest.x12strict import pyx12_findings
from phmx.context import RunContext
from tests.ingest.helpers import run_file

CORPUS = Path(__file__).resolve().parents[1] / "conformance"
AT = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)


def _acks(name: str) -> tuple[list[hl7.Message], list[str]]:
    data = (CORPUS / "hl7v2_vxu" / name).read_bytes()
    text = acknowledge(data, run_file(data, "immunizations_vxu", "cair2"), AT)[".ack.hl7"]
    parsed = hl7.parse_hl7(text)
    if isinstance(parsed, hl7.File):
        messages = [m for batch in parsed for m in batch]
    else:
        messages = [hl7.parse(m) for m in hl7.split_file(text)] if text.count("MSH|") > 1 else [parsed]
    originals = [ln.split("|")[9] for ln in data.replace(b"\x0b", b"").replace(b"\x1c", b"").decode().replace(
        "\n", "\r").split("\r") if ln.startswith("MSH|")]
    return messages, originals


def _errs(msg: hl7.Message) -> list[tuple[str, str, str]]:
    return [(str(e[2]), str(e[3][0][0]), str(e[4])) for e in msg.segments("ERR")] if any(
        s[0][0] == "ERR" for s in msg) else []


@pytest.mark.parametrize(("name", "codes", "errors"), [
    ("nist_iz_001.hl7", ["AA"], [[]]),
    ("ours_batch_mr_ss_ma.hl7", ["AA", "AA"], [[], []]),
    ("ours_mllp_framed.hl7", ["AA", "AA"], [[], []]),
    ("ours_status_ndc.hl7", ["AE"], [[("RXA^8^5", "103", "E")]]),
    ("ours_v22.hl7", ["AR"], [[("MSH^1^12", "203", "E")]]),
    ("lfh_multiple_orders.hl7", ["AE"], [[("PID^1^7", "101", "E"), ("RXA^3^21", "103", "E")]]),
])
def test_one_ack_per_vxu_message_read_back_with_python_hl7(name, codes, errors):
    messages, originals = _acks(name)
    assert [str(m.segment("MSH")[9]) for m in messages] == ["ACK^V04^ACK"] * len(originals)
    assert [str(m.segment("MSA")[2]) for m in messages] == originals  # MSA-2 = the message's MSH-10
    assert [str(m.segment("MSA")[1]) for m in messages] == codes
    assert [_errs(m) for m in messages] == errors
    assert [str(m.segment("MSH")[21]) for m in messages] == ["Z23^CDCPHINVS"] * len(originals)


def test_a_batch_is_acknowledged_in_a_batch():
    data = (CORPUS / "hl7v2_vxu" / "ours_batch_mr_ss_ma.hl7").read_bytes()
    text = acknowledge(data, run_file(data, "immunizations_vxu", "cair2"), AT)[".ack.hl7"]
    parsed = hl7.parse_hl7(text)
    assert isinstance(parsed, hl7.File) and len(parsed) == 1 and len(parsed[0]) == 2
    assert str(parsed[0].trailer[1]) == "2"  # BTS-1 counts the ACKs


def _x12(name: str) -> dict[str, str]:
    data = (CORPUS / "x12_834" / name).read_bytes()
    return acknowledge(data, run_file(data, "enrollment_834", "mcp_test"), AT)


def _read(text: str, ids: tuple[str, ...]) -> list[str]:
    return [s.format() for s in pyx12.x12file.X12Reader(io.StringIO(text)) if s.get_seg_id() in ids]


@pytest.mark.parametrize(("name", "expected"), [
    ("834_deident_family.txt", ["IK5*A~", "AK9*A*1*1*1~"]),
    ("834_deident_term.txt", ["IK5*A~", "AK9*A*1*1*1~"]),
    ("multiple_st_loops.txt", ["IK5*A~"] * 4 + ["AK9*A*4*4*4~"]),
    ("834_ls_le_ls.txt", ["IK3*REF*8*2000*8~", "IK4*2**6~", "IK5*E*5~", "AK9*E*1*1*1~"]),
    ("ours_maintenance_025_001_multi_hd.x12", ["IK5*A~", "AK9*A*1*1*1~"]),
])
def test_a_999_per_834_interchange_valid_for_pyx12(name, expected):
    acks = _x12(name)
    assert set(acks) == {".999.x12"}
    ok, findings = pyx12_findings(acks[".999.x12"].encode())
    assert ok, findings
    assert _read(acks[".999.x12"], ("IK3", "IK4", "IK5", "AK9")) == expected


def test_an_envelope_error_gets_a_ta1():
    acks = _x12("ours_bad_iea_control.x12")
    assert set(acks) == {".ta1.x12"}
    assert _read(acks[".ta1.x12"], ("TA1",)) == ["TA1*000000103*250110*0930*R*001~"]  # 001: control numbers differ


def test_a_bad_se_rejects_its_transaction_set_in_the_999():
    data = (CORPUS / "x12_834" / "multiple_st_loops.txt").read_bytes().replace(b"SE*20*0002~", b"SE*19*0002~")
    acks = acknowledge(data, run_file(data, "enrollment_834", "mcp_test"), AT)
    assert pyx12_findings(acks[".999.x12"].encode())[0]
    assert _read(acks[".999.x12"], ("IK5", "AK9")) == ["IK5*A~", "IK5*R*4~", "IK5*A~", "IK5*A~", "AK9*P*4*4*3~"]


def test_intake_writes_the_acknowledgments_beside_the_receipts(spark, phmx_home, land):
    land("cair2", "immunizations_vxu", "2025-01", "v.hl7", (CORPUS / "hl7v2_vxu" / "ours_status_ndc.hl7").read_bytes())
    land("mcp_test", "enrollment_834", "2025-01", "e.x12", (CORPUS / "x12_834" / "834_deident_term.txt").read_bytes())
    ingest.run(spark, RunContext.new())
    for sub, suffix in (("cair2", ".ack.hl7"), ("mcp_test", ".999.x12")):
        receipts = sorted((phmx_home / "outbox" / sub).rglob("*.json"))
        assert len(receipts) == 1
        ack = receipts[0].with_name(receipts[0].name.removesuffix(".json") + suffix)
        assert ack.exists(), sorted(p.name for p in receipts[0].parent.iterdir())


def test_adt_messages_get_acks_of_their_event():
    data = (CORPUS / "hl7v2_adt" / "ours_mllp_a03_without_discharge.hl7").read_bytes()
    text = acknowledge(data, run_file(data, "adt", "hosp_test"), AT)[".ack.hl7"]
    messages = [hl7.parse(m) for m in hl7.split_file(text)]
    assert [(str(m.segment("MSH")[9]), str(m.segment("MSA")[1]), str(m.segment("MSA")[2])) for m in messages] == [
        ("ACK^A03^ACK", "AE", "OURS-ADT-6"), ("ACK^R01^ACK", "AR", "OURS-ADT-7"), ("ACK^A01^ACK", "AA", "OURS-ADT-8")]
    assert _errs(messages[0]) == [("PV1^1^45", "101", "E")] and _errs(messages[1])[0][:2] == ("MSH^1^9", "200")


def test_a_file_refused_whole_refuses_every_message_and_transaction_set():
    data = (CORPUS / "hl7v2_vxu" / "ours_batch_mr_ss_ma.hl7").read_bytes()
    out = run_file(data, "immunizations_vxu", "mcp_not_a_registry")  # the feed does not take this submitter
    assert out.receipt.status == "rejected"
    messages = [m for batch in hl7.parse_hl7(acknowledge(data, out, AT)[".ack.hl7"]) for m in batch]
    assert [str(m.segment("MSA")[1]) for m in messages] == ["AR", "AR"]
    data = (CORPUS / "x12_834" / "834_deident_term.txt").read_bytes()
    acks = acknowledge(data, run_file(data, "enrollment_834", "cair2"), AT)
    assert pyx12_findings(acks[".999.x12"].encode())[0]
    assert _read(acks[".999.x12"], ("IK5", "AK9")) == ["IK5*R*1~", "AK9*R*1*1*0*1~"]


def test_a_group_trailer_error_rejects_the_group_in_the_999():
    data = (CORPUS / "x12_834" / "multiple_st_loops.txt").read_bytes().replace(b"GE*4*13360001~", b"GE*4*13360002~")
    acks = acknowledge(data, run_file(data, "enrollment_834", "mcp_test"), AT)
    assert pyx12_findings(acks[".999.x12"].encode())[0]
    assert _read(acks[".999.x12"], ("IK5", "AK9")) == ["IK5*R*1~"] * 4 + ["AK9*R*4*4*0*4~"]  # 4: GE02 differs
