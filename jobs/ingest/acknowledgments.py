"""Standard acknowledgments for standard submissions: HL7 ACK per VXU message, X12 999 (and TA1) per 834.

Registry and plan interfaces expect the acknowledgment their standard defines, beside the hub's own
receipt: an HL7 v2 ACK for every message (CDC Implementation Guide for Immunization Messaging
release 1.5, ACK profile Z23), an X12 999 implementation acknowledgment for every 834 functional
group and a TA1 when the interchange envelope itself is in error. They are built from the same
verdict as the receipt (the parse and validation of :func:`jobs.ingest.process.process_file`), so
the ACK, the 999 and the receipt never disagree, and they are written to the submitter's outbox
beside the receipt (``<receipt>.ack.hl7``, ``<receipt>.999.x12``, ``<receipt>.ta1.x12``).

Like receipts, acknowledgments never repeat a submitted value other than the control numbers and
application names the standard echoes: ERR-8 carries the hub's message (which names fields, never
values), and 999 IK4 segments leave the copy of bad data element (IK404) empty.

HL7 ACK, per message: MSA-1 ``AR`` when the message itself cannot be taken (unreadable MSH, not
VXU^V04, an unsupported version, a damaged segment, or a file whose batch envelope is broken),
``AE`` when a vaccination in it was quarantined, else ``AA``; one ERR per problem with ERR-2 the
location (segment^sequence^field^repetition^component), ERR-3 the HL7 table 0357 code, ERR-4 the
severity (E error: not loaded, W warning: loaded) and ERR-8 the hub's message.

X12 999, per interchange: AK2/IK5 per transaction set (``R`` for an envelope error of the set,
``E`` when a member loop was quarantined, else ``A``), IK3 (segment, its position in the set, loop)
and IK4 (element, error code) for every quarantined member loop, AK9 for the group.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from jobs.ingest.formats import hl7_vxu, x12_834
from jobs.ingest.formats.base import FileRejected

if TYPE_CHECKING:
    from jobs.ingest.process import FileOutcome
    from phmx.feedspec import FeedSpec

# ---- HL7 -------------------------------------------------------------------------------------------------
# HL7 table 0357 (message error condition codes) per hub rule; rules not listed are 207 (application error).
HL7_ERROR = {
    "required": ("101", "Required field missing"), "code_set": ("103", "Table value not found"),
    "hl7_vaccine_code": ("103", "Table value not found"), "format": ("102", "Data type error"),
    "date_range": ("102", "Data type error"), "date_order": ("102", "Data type error"),
    "max_length": ("102", "Data type error"), "cin_shape": ("102", "Data type error"),
    "duplicate_key": ("205", "Duplicate key identifier"), "hl7_version": ("203", "Unsupported version id"),
    "hl7_message_type": ("200", "Unsupported message type"), "hl7_no_rxa": ("100", "Segment sequence error"),
    "hl7_segment": ("100", "Segment sequence error"),
}
# Where a record-level rule points (segment, field).
HL7_RULE_FIELD = {"hl7_version": ("MSH", 12), "hl7_message_type": ("MSH", 9), "hl7_msh": ("MSH", 2),
                  "hl7_vaccine_code": ("RXA", 5), "hl7_no_rxa": ("RXA", 0), "duplicate_key": ("ORC", 3)}
# Rules that make the whole message unusable (MSA-1 AR rather than AE).
HL7_REJECT = frozenset({"hl7_msh", "hl7_message_type", "hl7_version", "hl7_segment"})


def acknowledge(data: bytes, outcome: FileOutcome, received_at: datetime) -> dict[str, str]:
    """The acknowledgments due for one processed file: {outbox file suffix: content} (empty for other formats)."""
    spec = outcome.spec
    if spec is None or outcome.receipt.status == "duplicate":
        return {}
    if spec.format_type in ("hl7_vxu", "hl7_adt"):
        return {".ack.hl7": hl7_acks(data, spec, outcome, received_at)}
    if spec.format_type == "x12_834":
        return x12_acks(data, spec, outcome, received_at)
    return {}


def _hl7_location(spec: FeedSpec, rule: str, fld: str, seq: int) -> str:
    """ERR-2 (ERL): segment^sequence^field^repetition^component of a finding."""
    rule_fields = {r.id: r.fields for r in spec.rules}
    if not fld and rule in rule_fields and rule not in HL7_RULE_FIELD:
        fld = rule_fields[rule][-1]
    field = next((f for f in spec.fields if f.name == fld), None)
    if field is not None:
        path = hl7_vxu.compile_path(hl7_vxu.sources(field.source)[0])
        order = path.seg in hl7_vxu.ORDER_SEGMENTS
        loc = f"{path.seg}^{seq if order else 1}^{path.field}"
        return loc + (f"^1^{path.comp}" if path.comp else "")
    if rule in HL7_RULE_FIELD:
        seg, num = HL7_RULE_FIELD[rule]
        order = seg in hl7_vxu.ORDER_SEGMENTS
        return f"{seg}^{seq if order else 1}" + (f"^{num}" if num else "")
    return ""


def hl7_acks(data: bytes, spec: FeedSpec, outcome: FileOutcome, received_at: datetime) -> str:
    """One ACK^V04 per message of a VXU file (a batch's ACKs in an FHS/BHS batch), segments ending in CR."""
    lines = hl7_vxu.segment_lines(data, spec)
    msh = [i + 1 for i, ln in enumerate(lines) if ln.lstrip().startswith("MSH")]   # 1-based line numbers
    rxa = [i + 1 for i, ln in enumerate(lines) if ln.lstrip().startswith("RXA")]
    stamp = received_at.strftime("%Y%m%d%H%M%S")
    errs: dict[int, list[tuple[str, str, str, str]]] = defaultdict(list)  # message -> (loc, code, severity, text)
    rejected: set[int] = set()

    def message_of(row: int) -> int:
        return bisect.bisect_right(msh, row) - 1  # the last MSH at or before the row (-1: none)

    def rxa_seq(m: int, row: int) -> int:
        """The record's RXA is the n-th of its message (ERR-2's segment sequence); 1 if not an RXA."""
        i = bisect.bisect_left(rxa, row)
        return i - bisect.bisect_right(rxa, msh[m]) + 1 if i < len(rxa) and rxa[i] == row else 1

    findings = [(q["row_number"], q["rule_id"], q["field"], q["message"], "E") for q in outcome.quarantine]
    findings += [(w[0], w[1], w[2], w[3], "W") for w in outcome.warning_findings]
    # A file refused whole (a broken batch envelope, a submitter or period folder the feed does not take): every
    # message is refused. "no_valid_rows" is no file problem: each message says what was wrong with it.
    file_rejected = any(f["rule_id"] != "no_valid_rows" for f in outcome.receipt.file_errors)
    seen: set[tuple[int, str, str, str]] = set()
    for row, rule, fld, msg, sev in sorted(findings):
        m = message_of(int(row))
        if m < 0:
            continue  # lines outside any message: the receipt lists them; no message to acknowledge
        loc = _hl7_location(spec, rule, fld, rxa_seq(m, int(row)))
        if (m, loc, rule, sev) in seen:
            continue  # one ERR per place and problem (PID-7 missing is one error however many RXAs)
        seen.add((m, loc, rule, sev))
        code, text = HL7_ERROR.get(rule, ("207", "Application internal error"))
        errs[m].append((loc, f"{code}^{text}^HL70357", sev, msg))
        if rule in HL7_REJECT:
            rejected.add(m)
    acks: list[str] = []
    batch = any(ln.lstrip().startswith("FHS") or ln.lstrip().startswith("BHS") for ln in lines)
    for m, line in enumerate(msh):
        f = lines[line - 1].lstrip().split("|")

        def get(k: int, f: list[str] = f) -> str:
            return f[k - 1] if len(f) >= k else ""  # MSH-k is element k-1 (MSH-1 is the separator)

        ack_code = "AR" if m in rejected or file_rejected else "AE" if any(e[2] == "E" for e in errs[m]) else "AA"
        event = get(9).split("^")[1] if "^" in get(9) else "V04"
        segs = [f"MSH|^~\\&|PHMX|CDPH|{get(3)}|{get(4)}|{stamp}||ACK^{event}^ACK|{_control(outcome, m)}|"
                f"{get(11) or 'P'}|2.5.1|||NE|NE|||||Z23^CDCPHINVS",
                f"MSA|{ack_code}|{get(10)}"]
        if file_rejected and not errs[m]:
            segs.append("ERR||" + "|207^Application internal error^HL70357|E||||"
                        + hl7_vxu.escape("; ".join(e["message"] for e in outcome.receipt.file_errors)))
        for loc, code, sev, text in errs[m]:
            segs.append(f"ERR||{loc}|{code}|{sev}||||{hl7_vxu.escape(text)}")
        acks.append("\r".join(segs))
    if batch:
        head = f"|^~\\&|PHMX|CDPH|||{stamp}"
        acks = [f"FHS{head}", f"BHS{head}", *acks, f"BTS|{len(msh)}", "FTS|1"]
    return "\r".join(acks) + "\r" if acks else ""


def _control(outcome: FileOutcome, m: int) -> str:
    """A message control id unique per submission and message (at most 20 characters, HL7 ST)."""
    return f"{_hex(outcome)[:12]}{m + 1:08d}"


def _hex(outcome: FileOutcome) -> str:
    """The hexadecimal part of the submission id (``sub-<hex>``), for control numbers."""
    return outcome.receipt.submission_id.rsplit("-", 1)[-1]


# ---- X12 -------------------------------------------------------------------------------------------------
# TA1 interchange note codes (TA105) per envelope rule; 999 AK905 functional group codes per group rule.
TA1_NOTE = {"x12_iea_control": "001", "x12_iea_count": "021", "x12_iea_missing": "023", "x12_trailing_data": "024",
            "x12_isa": "024"}
AK9_NOTE = {"x12_gs": "1", "x12_ge_missing": "3", "x12_ge_control": "4", "x12_ge_count": "5", "refused": "1"}
IK5_NOTE = {"x12_se_missing": "2", "x12_se_count": "4", "x12_se_control": "3", "x12_st": "1"}
# IK403 element error codes per field rule (1 required data element missing, 5 too long, 6 invalid character,
# 7 invalid code value, 8 invalid date).
IK4_CODE = {"required": "1", "code_set": "7", "format": "8", "date_range": "8", "date_order": "8", "max_length": "5",
            "cin_shape": "6", "formula_text": "6"}
LOOP_OF = {"INS": "2000", "REF": "2000", "HD": "2300", "NM1": "2100A", "PER": "2100A", "N3": "2100A", "N4": "2100A",
           "DMG": "2100A", "EC": "2100A", "ICM": "2100A", "AMT": "2100A", "HLH": "2100A", "LUI": "2100A"}


def _loop(seg: str, els: list[str]) -> str:
    if seg == "DTP":
        return "2300" if len(els) > 1 and els[1] in x12_834.COVERAGE_DATES else "2000"
    return LOOP_OF.get(seg, "")


def x12_acks(data: bytes, spec: FeedSpec, outcome: FileOutcome, received_at: datetime) -> dict[str, str]:
    """A 999 for the interchange's functional group (or a TA1 when its envelope is in error)."""
    try:
        seg = x12_834.read_segments(data, spec)
    except FileRejected:
        return {}  # no readable ISA: nobody to address an acknowledgment to (the receipt says why)
    comp = seg.comp
    env = x12_834.walk_envelope(seg)
    isa = seg.elements(0)
    gs_at = seg.positions(["GS"])
    gs = seg.elements(int(gs_at[0])) if len(gs_at) else []
    ins_at = seg.positions(["INS"])

    def g(e: list[str], k: int) -> str:
        return e[k].strip() if len(e) > k else ""

    date, time = received_at.strftime("%y%m%d"), received_at.strftime("%H%M")
    ctrl = f"{int(_hex(outcome)[:8], 16) % 10**9:09d}"
    # The acknowledgment goes back the way the interchange came: sender and receiver swapped.
    isa_out = (f"ISA*00*{' ' * 10}*00*{' ' * 10}*{g(isa, 7):<2}*{isa[8] if len(isa) > 8 else '':<15}*"
               f"{g(isa, 5):<2}*{isa[6] if len(isa) > 6 else '':<15}*{date}*{time}*^*00501*{ctrl}*0*"
               f"{g(isa, 15) or 'P'}*{comp}")
    out: dict[str, str] = {}
    rule = env.file_error[0] if env.file_error else None
    # A file the hub refused before reading it (submitter or period folder not taken): the group is not accepted.
    refused = next((f["rule_id"] for f in outcome.receipt.file_errors
                    if f["rule_id"] != "no_valid_rows" and not f["rule_id"].startswith("x12_")), None)
    if refused and rule is None:
        rule = "refused"
    if rule in TA1_NOTE:
        ta1 = [isa_out, f"TA1*{g(isa, 13)}*{g(isa, 9)}*{g(isa, 10)}*R*{TA1_NOTE[rule]}", f"IEA*0*{ctrl}"]
        out[".ta1.x12"] = "~\n".join(ta1) + "~\n"
        return out
    body = ["ST*999*0001*005010X231A1", f"AK1*{g(gs, 1) or 'BE'}*{g(gs, 6)}*{g(gs, 8) or x12_834.VERSION}"]
    by_trans: dict[int, list[tuple[int, str, str, str]]] = defaultdict(list)  # t -> (row, rule, field, sev)
    starts = np.array(env.st, dtype=np.int64)
    for q in outcome.quarantine:
        row = int(q["row_number"])
        t = int(np.searchsorted(starts, row - 1, side="right")) - 1  # the last ST before the record
        by_trans[t].append((row, q["rule_id"], q["field"], "E"))
    accepted = 0
    statuses: list[str] = []
    for t, st in enumerate(env.st):
        se = env.se[t] if env.se[t] >= 0 else len(seg) - 1
        st_els = seg.elements(st)
        body.append(f"AK2*834*{g(st_els, 2)}*{g(st_els, 3) or x12_834.VERSION}")
        if rule in AK9_NOTE:  # the whole group is refused: so is each of its transaction sets
            body.append("IK5*R*1")  # IK502 is required with R; 1: the set is not taken as sent
            statuses.append("R")
            continue
        if t in env.trans_error:
            code = IK5_NOTE.get(env.trans_error[t][0], "5")
            body.append(f"IK5*R*{code}")
            statuses.append("R")
            continue
        ins = ins_at[(ins_at > st) & (ins_at < se)].tolist()
        problems = _ik3_ik4(spec, seg, ins, st, se, by_trans.get(t, []))
        body += problems
        status = "E" if problems else "A"
        body.append(f"IK5*{status}" + ("*5" if problems else ""))
        statuses.append(status)
        accepted += 1
    if rule in AK9_NOTE:
        ak9 = f"AK9*R*{len(env.st)}*{len(env.st)}*0*{AK9_NOTE[rule]}"
    else:
        group = "A" if all(s == "A" for s in statuses) else "R" if not accepted else \
            "P" if "R" in statuses else "E"
        ak9 = f"AK9*{group}*{len(env.st)}*{len(env.st)}*{accepted}"
    body.append(ak9)
    body.append(f"SE*{len(body) + 1}*0001")
    gs_ctrl = str(int(ctrl))
    doc = [isa_out, f"GS*FA*{g(gs, 3)}*{g(gs, 2)}*{received_at.strftime('%Y%m%d')}*{time}*{gs_ctrl}*X*005010X231A1",
           *body, f"GE*1*{gs_ctrl}", f"IEA*1*{ctrl}"]
    out[".999.x12"] = "~\n".join(doc) + "~\n"
    return out


def _ik3_ik4(spec: FeedSpec, seg: x12_834.Segments, ins: list[int], st: int, se: int,
             findings: list[tuple[int, str, str, str]]) -> list[str]:
    """IK3 (+ IK4) segments for the quarantined member loops of one transaction set (positions from ST = 1).

    Only the segments of those member loops are split (``seg.elements``), whatever the file's size.
    """
    if not findings:
        return []

    class _Els:  # els[i]: the elements of segment i, split on first use
        def __getitem__(self, i: int) -> list[str]:
            return seg.elements(i)

    els = _Els()
    out: list[str] = []
    done: set[tuple[int, str, str]] = set()
    fields = {f.name: f for f in spec.fields}
    rules = {r.id: r.fields for r in spec.rules}
    for row, rule, fld, _sev in sorted(findings):
        pos = row - 1
        k = bisect.bisect_right(ins, pos) - 1  # the member loop holding the record
        start = ins[k] if k >= 0 else pos
        end = ins[k + 1] if k + 1 < len(ins) else se
        if (start, rule, fld) in done:
            continue
        done.add((start, rule, fld))
        if not fld and rule in rules:
            fld = rules[rule][-1]
        if rule == "x12_loop":
            out.append(f"IK3*NM1*{start - st + 1}*2100A*3")
            continue
        if rule == "x12_segment":
            bad = next((i for i in range(start, end) if els[i][0] not in x12_834.SEGMENTS_834), start)
            out.append(f"IK3*{els[bad][0][:3]}*{bad - st + 1}**1")
            continue
        if rule == "x12_element":
            out += [f"IK3*INS*{start - st + 1}*2000*8", "IK4*1**7"]
            continue
        field = fields.get(fld)
        path = None
        if field is not None and not str(field.source).startswith("header:"):
            path = x12_834.compile_path(str(field.source))
        if path is None:
            out.append(f"IK3*INS*{start - st + 1}*2000*8")
            continue
        hit = next((i for i in range(pos if pos > start else start, end) if els[i][0] == path.seg and all(
            (els[i][k].strip() if len(els[i]) > k else "") in v for k, v in path.conds)), None)
        if hit is None and rule == "required":  # the segment itself is missing (IK304 3)
            qualifier = path.conds[0][1][0] if path.conds else ""
            out.append(f"IK3*{path.seg}*{start - st + 1}*{_loop(path.seg, [path.seg, qualifier])}*3")
            continue
        seg_at = hit if hit is not None else start
        out.append(f"IK3*{els[seg_at][0]}*{seg_at - st + 1}*{_loop(els[seg_at][0], els[seg_at])}*8")
        element_pos = path.element or 0
        out.append(f"IK4*{element_pos}{f':{path.comp}' if path.comp else ''}**{IK4_CODE.get(rule, '7')}")
    return out

