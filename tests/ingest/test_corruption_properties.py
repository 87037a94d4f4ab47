"""Property tests: random corruption of a file never crashes intake and never loses a record.

For every format, hypothesis flips bytes, truncates, deletes and duplicates lines (segments),
then runs process_file (the whole parse + validate path, no engine). Whatever happens, the
file gets a verdict, landed = accepted + quarantined, and when the corruption only moves whole
lines the number of records landed equals the records the corrupted file really holds,
counted here by a simple independent reading.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phmx.synth.writers.fhir_ndjson import make_writer, patients
from phmx.synth.writers.fixed_width import write_csi_fixed
from phmx.synth.writers.hl7_vxu import write_vxu
from phmx.synth.writers.x12_834 import write_834
from tests.ingest.conftest import synth_rows
from tests.ingest.helpers import assert_conserved, run_file

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# One corruption step: (kind, position in [0, 1), payload byte).
step = st.tuples(st.sampled_from(["flip", "truncate", "delete_line", "duplicate_line", "blank_line"]),
                 st.floats(min_value=0, max_value=0.999), st.integers(min_value=0, max_value=255))


def corrupt(data: bytes, steps: list[tuple[str, float, int]], sep: bytes = b"\n") -> bytes:
    for kind, where, byte in steps:
        if not data:
            break
        if kind == "flip":
            i = int(where * len(data))
            data = data[:i] + bytes([byte]) + data[i + 1:]
        elif kind == "quote":
            i = int(where * len(data))
            data = data[:i] + b'"' + data[i:]
        elif kind == "truncate":
            data = data[: int(where * len(data))]
        else:
            parts = data.split(sep)
            i = int(where * len(parts))
            if kind == "delete_line":
                del parts[i]
            elif kind == "duplicate_line":
                parts.insert(i, parts[i])
            else:
                parts.insert(i, b"")
            data = sep.join(parts)
    return data


def lines_only(steps: list[tuple[str, float, int]], quotes: int = 0) -> bool:
    """Only whole-line edits (and at most ``quotes`` inserted quote characters)."""
    return (all(k in ("delete_line", "duplicate_line", "blank_line", "quote") for k, _, _ in steps)
            and sum(k == "quote" for k, _, _ in steps) <= quotes)


quote_step = st.tuples(st.just("quote"), st.floats(min_value=0, max_value=0.999), st.just(34))


@pytest.fixture(scope="module")
def files(synth_root):
    enr = synth_rows(synth_root, "mcp_bluecoast", "enrollment")[:12]
    imm = synth_rows(synth_root, "cair2", "immunizations")[:14]
    csi = synth_rows(synth_root, "county_06001_bh", "mh_csi")[:14]
    out = {}
    header = "|".join(enr[0].keys())
    out["enrollment"] = (header + "\n" + "\n".join("|".join(r.values()) for r in enr) + "\n").encode()
    for name, writer, rows in (("enrollment_834", write_834, enr), ("immunizations_vxu", write_vxu, imm),
                               ("mh_csi_fixed", write_csi_fixed, csi),
                               ("fhir_patient", make_writer(patients), enr)):
        buf = io.BytesIO()
        if name == "immunizations_vxu":
            writer(rows, buf, line_end="\n")
        else:
            writer(rows, buf)
        out[name] = buf.getvalue()
    return out


SUBMITTER = {"enrollment": "mcp_bluecoast", "enrollment_834": "mcp_bluecoast", "immunizations_vxu": "cair2",
             "mh_csi_fixed": "county_06001_bh", "fhir_patient": "mcp_bluecoast"}


def check(feed: str, data: bytes):
    out = run_file(data, feed, SUBMITTER[feed], chunk_rows=5)
    assert out.receipt.status in ("accepted", "accepted_with_errors", "rejected")
    assert_conserved(out)
    return out.receipt


def nonblank(data: bytes) -> list[bytes]:
    return [ln for ln in data.replace(b"\r", b"").split(b"\n") if ln.strip()]


@SETTINGS
@given(steps=st.lists(st.one_of(step, quote_step), min_size=1, max_size=4))
def test_delimited(files, steps):
    data = corrupt(files["enrollment"], steps)
    r = check("enrollment", data)
    lines = nonblank(data)
    if lines_only(steps, quotes=1) and lines and lines[0].startswith(b"member_local_id|") and r.status != "rejected":
        assert r.rows_landed == len(lines) - 1


@SETTINGS
@given(steps=st.lists(step, min_size=1, max_size=4))
def test_fixed_width(files, steps):
    data = corrupt(files["mh_csi_fixed"], steps, b"\r\n")
    r = check("mh_csi_fixed", data)
    lines = nonblank(data)
    if lines_only(steps) and len(lines) >= 2 and lines[0].startswith(b"H") and lines[-1].startswith(b"T"):
        assert r.rows_landed == len(lines) - 2


@SETTINGS
@given(steps=st.lists(step, min_size=1, max_size=4))
def test_x12_834(files, steps):
    data = corrupt(files["enrollment_834"], steps)
    r = check("enrollment_834", data)
    if lines_only(steps) and data.startswith(b"ISA") and r.file_errors[:1] != [{"rule_id": "x12_isa"}]:
        segs = [s.strip() for s in data.split(b"~")]
        assert r.rows_landed == sum(1 for s in segs if s.startswith(b"INS*"))


def hl7_records(data: bytes) -> int:
    """Records an HL7 file holds, read line by line: RXAs in messages, empty messages, stray runs."""
    count, in_msg, rxa_in_msg, stray = 0, False, 0, False
    for ln in nonblank(data):
        seg = ln.lstrip()[:3]
        if seg == b"MSH":
            count += 1 if in_msg and rxa_in_msg == 0 else 0
            in_msg, rxa_in_msg, stray = True, 0, False
        elif seg in (b"FHS", b"BHS", b"BTS", b"FTS"):
            count += 1 if in_msg and rxa_in_msg == 0 else 0
            in_msg, stray = False, False
        elif in_msg:
            rxa_in_msg += seg == b"RXA"
            count += seg == b"RXA"
        elif not stray:
            count, stray = count + 1, True
    return count + (1 if in_msg and rxa_in_msg == 0 else 0)


@SETTINGS
@given(steps=st.lists(step, min_size=1, max_size=4))
def test_hl7_vxu(files, steps):
    data = corrupt(files["immunizations_vxu"], steps)
    r = check("immunizations_vxu", data)
    if lines_only(steps) and r.file_errors[:1] != [{"rule_id": "file_empty", "message": "the file is empty"}]:
        assert r.rows_landed == hl7_records(data)


@SETTINGS
@given(steps=st.lists(step, min_size=1, max_size=3))
def test_fhir_ndjson(files, steps):
    data = corrupt(files["fhir_patient"], steps)
    r = check("fhir_patient", data)
    if lines_only(steps) and nonblank(data):
        assert r.rows_landed == len(nonblank(data))
