"""HL7 v2.5.1 VXU^V04 immunization messages (CDC IG 1.5, CAIR2): one RXA = one record.

Files are batches (FHS/BHS ... BTS/FTS) or bare message streams; segments end with CR (LF and
CRLF are accepted too), so a segment is a line and a record is numbered by the line of its RXA
segment, with its message number as the locator (``message 12``).

Which segment a field comes from: message-level segments (MSH, PID, PD1, NK1, ...) are read
from the record's message; order-level segments (ORC, RXA, RXR, OBX, NTE) from the record's own
ORC/RXA group: the ORC just before its RXA, and the RXR/OBX after it up to the next ORC or RXA.

Field paths (``source``), 1-based as in the HL7 standard:

``PID-5.1``            field 5, component 1 (MSH-n counts MSH-1 as the field separator)
``PID-3[5=MR].1``      the repetition of field 3 whose component 5 is MR, component 1
``PID-3[5!=SS|MA].1``  the first repetition whose component 5 is neither SS nor MA (``=A|B``: either)
``OBX{3.1=64994-7}-5.1``  the first OBX whose field 3 component 1 is 64994-7, field 5 comp 1
``[PID-13.6, PID-13.7]``  a list of paths is concatenated (area code + local number)

Checks, each quarantining only the records concerned: a message header that does not use the
required separators ``|^~\\&`` (``hl7_msh``), a message that is not VXU^V04
(``hl7_message_type``), an HL7 version (MSH-12) whose VXU structure differs from 2.5.1
(``hl7_version``: before 2.3; 2.3 to 2.8.2 share the segments and fields read here), a message
without RXA (``hl7_no_rxa``; counted as one record), an unreadable segment line or segments
outside any message (``hl7_segment``), an RXA-5 vaccine code that is neither CVX nor an NDC of
the CDC NDC-to-CVX crosswalk (``hl7_vaccine_code``). Batch envelopes:
FHS/BHS without FTS/BTS (``hl7_batch``), BTS-1 and FTS-1 counts (``hl7_bts_count``,
``hl7_fts_count``) reject the file, as a broken envelope means messages were lost.

MLLP framing (each message between a vertical tab 0x0B and a file separator 0x1C, as interface
engines write a captured stream to a file) is removed before parsing and noted on the receipt.

The vaccine (RXA-5, CE/CWE): the CVX is RXA-5.1 when RXA-5.3 is CVX (or empty), else RXA-5.4
when the alternate coding system RXA-5.6 is CVX; an NDC (RXA-5.3 or RXA-5.6 NDC) is kept as
sent and, when no CVX came with it, mapped to its CVX with the CDC NDC-to-CVX crosswalk
(``format.vaccine_code`` in the spec names the fields and the crosswalk value set).

Parsing is vectorised with Arrow (segments of one type split in bulk); python-hl7 is used for
what it does best here, resolving escape sequences (``\\F\\``, ``\\S\\``, ``\\T\\``...) in the
few values that carry them. (Its full parser builds an object per component and ran at a few
hundred messages a second on our machines: too slow for registry volumes.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import hl7
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.ingest.formats.arrowtext import (
    blank_to_null,
    element,
    first_per_group,
    group_of,
    physical_lines,
    split,
    trim,
)
from jobs.ingest.formats.base import Chunk, FileRejected, LazyRaw, RecordIssue, indexed
from jobs.ingest.formats.decode import decode_text

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec

ORDER_SEGMENTS = frozenset({"ORC", "RXA", "RXR", "OBX", "NTE", "TQ1", "TQ2"})
BATCH_SEGMENTS = ("FHS", "BHS", "BTS", "FTS")
ENCODING = "|^~\\&"
# HL7 versions whose VXU^V04 carries the segments and field positions read here (the CDC guide's 2.5.1,
# the 2.3.1 and 2.4 registries still send, and the later 2.x releases, which only add fields at the end).
SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2")
MLLP_START, MLLP_END = b"\x0b", b"\x1c"
_PATH = re.compile(
    r"^(?P<seg>[A-Z][A-Z0-9]{2})(?:\{(?P<cf>\d+)(?:\.(?P<cc>\d+))?=(?P<cv>[^}]*)\})?-(?P<f>\d+)"
    r"(?:\[(?P<rc>\d+)(?P<rop>!?=)(?P<rv>[^\]]*)\])?(?:\.(?P<c>\d+)(?:\.(?P<s>\d+))?)?$"
)
_SEG_ID = re.compile(r"^[A-Z][A-Z0-9]{2}(\||$)")
_UNESCAPE = hl7.parse("MSH|^~\\&|PHMX|PHMX|PHMX|PHMX|20250101||VXU^V04^VXU_V04|1|P|2.5.1")


@dataclass(frozen=True)
class FieldPath:
    """A compiled HL7 field path."""

    seg: str
    cond: tuple[int, int, str] | None   # (field, component, value) selecting the segment
    field: int
    # (component, accepted values, negate) selecting the repetition: [5=MR] or [5!=SS|MA]
    rep: tuple[int, tuple[str, ...], bool] | None
    comp: int | None
    sub: int | None


def compile_path(src: str) -> FieldPath:
    m = _PATH.match(src.strip())
    if not m:
        raise ValueError(f"{src!r} is not an HL7 path like PID-5.1 or PID-3[5=MR].1")
    cond = (int(m["cf"]), int(m["cc"] or 1), m["cv"]) if m["cf"] else None
    rep = (int(m["rc"]), tuple(m["rv"].split("|")), m["rop"] == "!=") if m["rc"] else None
    return FieldPath(m["seg"], cond, int(m["f"]), rep, int(m["c"]) if m["c"] else None,
                     int(m["s"]) if m["s"] else None)


def sources(src: Any) -> list[str]:  # noqa: ANN401 - YAML value
    return [str(s) for s in src] if isinstance(src, list | tuple) else [str(src)]


def check_spec(spec: FeedSpec) -> list[tuple[str, str]]:
    problems = []
    for i, f in enumerate(spec.fields):
        for s in sources(f.source):
            try:
                compile_path(s)
            except ValueError as exc:
                problems.append((f"fields[{i}].source", str(exc)))
    return problems


def _index(path: FieldPath) -> int:
    """Position of field n in the split segment (MSH-1 is the separator itself)."""
    return path.field - 1 if path.seg == "MSH" else path.field


def _select(values: pa.Array, sep: str, n: int | None) -> pa.Array:
    return values if n is None else element(split(values, sep), n - 1)


def _field_value(els: pa.Array, path: FieldPath, cache: dict | None = None) -> pa.Array:
    """The path's value in every segment of its type (before choosing the segment per record).

    ``cache`` keeps each field's repetition and component split, so PID-5.1, PID-5.2 and PID-5.3
    split PID-5 once.
    """
    cache = {} if cache is None else cache
    key = (path.seg, path.field, path.rep)
    if key not in cache:
        fld = element(els, _index(path))
        if path.rep is None:
            val = element(split(fld, "~"), 0)
        else:
            reps = split(fld, "~")
            offsets = np.asarray(reps.offsets)
            parent = np.repeat(np.arange(len(reps)), np.diff(offsets))
            flat = reps.values
            comp, accepted, negate = path.rep
            code = pc.utf8_trim_whitespace(element(split(flat, "^"), comp - 1))
            member = pc.is_in(code, value_set=pa.array(list(accepted)))
            # [5!=SS|MA]: a repetition with an id and a type other than those (an empty type counts too).
            has_id = pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(element(split(flat, "^"), 0))), 0)
            hit = np.asarray(pc.fill_null(pc.and_(pc.invert(member), has_id) if negate else member, False))
            val = first_per_group(np.where(hit, parent, -1), len(reps), flat)
        cache[key] = (val, split(val, "^"))
    val, comps = cache[key]
    if path.comp is None:
        return val
    return _select(element(comps, path.comp - 1), "&", path.sub)


def _unescape(arr: pa.Array) -> pa.Array:
    has = np.flatnonzero(np.asarray(pc.fill_null(pc.match_substring(arr, "\\"), False)))
    if not len(has):
        return arr
    values = arr.to_pylist()
    for i in has.tolist():
        values[i] = str(_UNESCAPE.unescape(values[i]))
    return pa.array(values, pa.string())


def unframe(data: bytes) -> tuple[bytes, bool]:
    """The bytes without MLLP framing, and whether there was any.

    An interface engine's capture holds <VT>message<FS><CR> per message. The frame bytes are no part of
    any segment, so they are dropped (a <FS> always ends a message, so it ends a segment too).
    """
    if MLLP_START not in data and MLLP_END not in data:
        return data, False
    return data.replace(MLLP_START, b"").replace(MLLP_END + b"\r", b"\r").replace(MLLP_END, b"\r"), True


def segment_lines(data: bytes, spec: FeedSpec) -> list[str]:
    """Every physical line of a VXU file as parse() numbers them (line n is element n - 1)."""
    data, _ = unframe(data)
    text, encoding = decode_text(data, spec.format.get("encodings", ["utf-8", "latin-1"]))
    raw = data if encoding == "utf-8" else text.encode("utf-8")
    raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    return [str(x) for x in physical_lines(raw).to_pylist()]


def escape(text: str) -> str:
    """Text as an HL7 field value (separators as escape sequences \\F\\, \\S\\, \\T\\, \\R\\, \\E\\)."""
    return str(_UNESCAPE.escape(text))


def parse(data: bytes, spec: FeedSpec, *, file_name: str = "", chunk_rows: int = 100_000) -> Iterator[Chunk]:
    """Parse a VXU batch or message stream into chunks of vaccinations (one per RXA)."""
    notes: list[str] = []
    data, framed = unframe(data)
    if framed:
        notes.append("MLLP framing (0x0B ... 0x1C) removed")
    text, encoding = decode_text(data, spec.format.get("encodings", ["utf-8", "latin-1"]))
    if encoding != "utf-8":
        notes.append(f"decoded as {encoding}")
    raw_bytes = data if encoding == "utf-8" else text.encode("utf-8")
    lines = physical_lines(raw_bytes[3:] if raw_bytes.startswith(b"\xef\xbb\xbf") else raw_bytes)
    nonblank = np.asarray(pc.greater(pc.binary_length(trim(lines)), 0))
    seg_line = np.flatnonzero(nonblank)             # line index of each segment
    if not len(seg_line):
        raise FileRejected("file_empty", "the file is empty")
    segs = pc.utf8_ltrim_whitespace(lines.take(pa.array(seg_line)))
    del lines
    n = len(segs)
    ids = pc.utf8_slice_codeunits(segs, 0, 3)

    def where(*names: str) -> np.ndarray:
        return np.flatnonzero(np.asarray(pc.fill_null(pc.is_in(ids, value_set=pa.array(list(names))), False)))

    msh = where("MSH")
    batch_pos = where(*BATCH_SEGMENTS)
    ends = np.sort(np.concatenate((msh, batch_pos, [n])))
    msg_end = ends[np.searchsorted(ends, msh, side="right")]
    seg_msg = group_of(np.arange(n), msh, msg_end)
    n_msg = len(msh)
    # The segment that makes a record: RXA for VXU (one vaccination each); MSH where a message is one record (ADT).
    record_seg = str(spec.format.get("record_segment", "RXA"))
    allowed_types = [str(t) for t in spec.format.get("message_types", ["VXU^V04"])]
    rxa = where(record_seg)

    def msg_raw(m: int) -> str:
        return "\r".join(segs.slice(int(msh[m]), int(msg_end[m] - msh[m])).to_pylist())

    # ---- records, in file order: each RXA inside a message; each message without any RXA; each run
    # of stray lines outside any message (the last two are quarantined, so nothing goes uncounted).
    msg_has_rxa = np.zeros(n_msg, dtype=bool)
    rxa_in = rxa[seg_msg[rxa] >= 0]
    msg_has_rxa[seg_msg[rxa_in]] = True
    outside = seg_msg < 0
    outside[batch_pos] = False
    prev = np.concatenate(([False], outside[:-1]))
    stray_start = np.flatnonzero(outside & ~prev)
    stray_stop = np.flatnonzero(outside & ~np.concatenate((outside[1:], [False]))) + 1
    empty_msg = msh[~msg_has_rxa]
    rec_pos = np.concatenate((rxa_in, empty_msg, stray_start))
    kind = np.concatenate((np.zeros(len(rxa_in), np.int8), np.ones(len(empty_msg), np.int8),
                           np.full(len(stray_start), 2, np.int8)))
    order = np.argsort(rec_pos, kind="stable")
    rec_pos, kind = rec_pos[order], kind[order]
    n_rec = len(rec_pos)
    rows_np = seg_line[rec_pos] + 1
    rec_msg_np = np.where(kind == 2, -1, seg_msg[rec_pos] if n_rec else np.zeros(0, np.int64)).astype(np.int64)
    rec_rxa_np = np.where(kind == 0, rec_pos, -1).astype(np.int64)
    stray_len = dict(zip(stray_start.tolist(), (stray_stop - stray_start).tolist(), strict=True))
    issue: dict[int, tuple[str, str]] = {}
    for i in np.flatnonzero(kind == 1).tolist():
        issue[i] = ("hl7_no_rxa", f"the message holds no {record_seg} segment")
    for i in np.flatnonzero(kind == 2).tolist():
        issue[i] = ("hl7_segment", f"{stray_len[int(rec_pos[i])]} segment line(s) outside any message (no MSH)")

    def raw_of(i: int) -> str:
        m = int(rec_msg_np[i])
        if m >= 0:
            return msg_raw(m)
        a = int(rec_pos[i])
        return "\r".join(segs.slice(a, stray_len[a]).to_pylist())

    raw = LazyRaw(n_rec, raw_of)
    locators = LazyRaw(n_rec, lambda i: f"message {int(rec_msg_np[i]) + 1}" if rec_msg_np[i] >= 0
                       else "outside any message")
    _check_batches(segs, ids, batch_pos, msh, rows_np, raw)

    # ---- message-level problems
    msh_text = segs.take(pa.array(msh)) if n_msg else pa.array([], pa.string())
    bad_msh = np.asarray(pc.invert(pc.fill_null(pc.starts_with(msh_text, "MSH" + ENCODING + "|"), False))) \
        if n_msg else np.zeros(0, bool)
    msh_els = split(msh_text, "|")
    mtype = element(split(element(msh_els, 8), "^"), 0)
    mevent = element(split(element(msh_els, 8), "^"), 1)
    mkind = pc.binary_join_element_wise(pc.fill_null(mtype, ""), pc.fill_null(mevent, ""), "^") if n_msg else mtype
    not_vxu = np.asarray(pc.invert(pc.fill_null(pc.is_in(mkind, value_set=pa.array(allowed_types)), False))) \
        if n_msg else np.zeros(0, bool)
    versions = [str(v or "").strip() for v in element(split(element(msh_els, 11), "^"), 0).to_pylist()] \
        if n_msg else []
    bad_line = np.asarray(pc.invert(pc.fill_null(pc.match_substring_regex(segs, _SEG_ID.pattern), False)))
    msg_bad_seg = np.zeros(n_msg, dtype=bool)
    msg_bad_seg[seg_msg[np.flatnonzero(bad_line & (seg_msg >= 0))]] = True
    in_msg = rec_msg_np >= 0
    m_of = np.maximum(rec_msg_np, 0)
    if n_msg:
        for i in np.flatnonzero(in_msg).tolist():
            v = versions[int(m_of[i])]
            if v not in SUPPORTED_VERSIONS:
                named = v if re.fullmatch(r"\d{1,2}(\.\d{1,2}){0,3}", v) else "(empty or unreadable)"
                issue[i] = ("hl7_version", f"MSH-12 names HL7 version {named}, whose VXU structure the hub "
                            f"does not read: send version 2.5.1 (CDC IG release 1.5); "
                            f"{', '.join(SUPPORTED_VERSIONS)} are also accepted")
        for i in np.flatnonzero(in_msg & not_vxu[m_of]).tolist():
            issue[i] = ("hl7_message_type", f"MSH-9 is not {' or '.join(allowed_types)}: send only those messages "
                        "in this feed")
        for i in np.flatnonzero(in_msg & msg_bad_seg[m_of]).tolist():
            issue[i] = ("hl7_segment", "the message holds a segment line that cannot be read")
        for i in np.flatnonzero(in_msg & bad_msh[m_of]).tolist():
            issue[i] = ("hl7_msh", f"the MSH segment does not start with MSH{ENCODING}| (required separators)")

    # ---- the order group of each RXA record: its ORC (just before) and RXR/OBX/NTE (after, up to next ORC/RXA)
    orc = where("ORC")
    grp_bounds = np.sort(np.concatenate((orc, rxa, msh, batch_pos, [n])))
    rxa_recs = np.flatnonzero(rec_rxa_np >= 0)      # records are in file order, so RXA positions ascend
    rec_rxa_sorted = rec_rxa_np[rxa_recs]
    grp_end = grp_bounds[np.searchsorted(grp_bounds, rec_rxa_sorted, side="right")] if len(rec_rxa_sorted) else \
        np.zeros(0, np.int64)
    # ORC: the record of the next RXA if nothing else lies between them in the message.
    orc_rec = np.full(len(orc), -1, dtype=np.int64)
    if len(orc) and len(rec_rxa_sorted):
        k = np.searchsorted(rec_rxa_sorted, orc, side="right")
        ok = k < len(rec_rxa_sorted)
        nxt = rec_rxa_sorted[np.minimum(k, len(rec_rxa_sorted) - 1)]
        nb = grp_bounds[np.searchsorted(grp_bounds, orc, side="right")]
        ok &= nb == nxt
        orc_rec[ok] = rxa_recs[np.minimum(k, len(rec_rxa_sorted) - 1)[ok]]

    cache: dict[str, tuple[np.ndarray, pa.Array]] = {}

    def seg_type(seg_id: str) -> tuple[np.ndarray, pa.Array]:
        if seg_id not in cache:
            pos = where(seg_id)
            cache[seg_id] = (pos, split(segs.take(pa.array(pos)), "|"))
        return cache[seg_id]

    def record_groups(path: FieldPath, pos: np.ndarray) -> np.ndarray:
        """The record each candidate segment serves (-1 none)."""
        if path.seg == "ORC":
            return orc_rec.copy()
        if path.seg in ORDER_SEGMENTS:
            g = group_of(pos, rec_rxa_sorted, grp_end)
            return np.where(g >= 0, rxa_recs[np.maximum(g, 0)], -1) if len(rxa_recs) else np.full(len(pos), -1)
        return seg_msg[pos] if len(pos) else np.zeros(0, np.int64)

    cols: dict[str, pa.Array] = {}
    field_cache: dict = {}

    def record_value(src: str) -> pa.Array:
        """The value of one field path for every record (null where the record has none)."""
        path = compile_path(src)
        pos, els = seg_type(path.seg)
        groups = record_groups(path, pos)
        if path.cond:
            cf, cc, cv = path.cond
            hit = pc.equal(element(split(element(els, cf - 1 if path.seg == "MSH" else cf), "^"), cc - 1), cv)
            groups = np.where(np.asarray(pc.fill_null(hit, False)), groups, -1)
        val = _field_value(els, path, field_cache)
        if path.seg in ORDER_SEGMENTS:
            return first_per_group(groups, n_rec, val)
        per_msg = first_per_group(groups, n_msg, val)
        idx = pa.array(np.maximum(rec_msg_np, 0), mask=rec_msg_np < 0)
        return per_msg.take(idx) if n_msg else pa.nulls(n_rec, pa.string())

    for f in spec.fields:
        parts = [record_value(src) for src in sources(f.source)]
        if len(parts) == 1:
            value = parts[0]
        else:
            value = pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], "")
        cols[f.name] = blank_to_null(pc.utf8_trim_whitespace(_unescape(value)))
    vaccine = spec.format.get("vaccine_code")
    if vaccine:
        _vaccine_codes(vaccine, record_value, cols, issue, kind)

    issues = [RecordIssue(int(rows_np[i]), rule, "", msg, raw[i], locators[i]) for i, (rule, msg) in sorted(issue.items())]
    bad = np.zeros(n_rec, dtype=bool)
    bad[list(issue)] = True
    good = np.flatnonzero(~bad)
    take = pa.array(good)
    cols = {k: v.take(take) for k, v in cols.items()}
    total = len(good)
    for off in range(0, max(total, 1), chunk_rows):
        m = min(chunk_rows, total - off)
        idx = good[off:off + m]
        yield Chunk({k: v.slice(off, m) for k, v in cols.items()}, rows_np[idx],
                    LazyRaw(m, indexed(raw.__getitem__, idx)), issues if off == 0 else [],
                    notes if off == 0 else [], LazyRaw(m, indexed(locators.__getitem__, idx)))


def _vaccine_codes(cfg: dict[str, Any], record_value: Callable[[str], pa.Array], cols: dict[str, pa.Array],
                   issue: dict[int, tuple[str, str]], kind: np.ndarray) -> None:
    """RXA-5 as CVX and NDC: the CVX sent (first or alternate triplet), else the NDC's CVX from the crosswalk.

    ``cfg``: ``{cvx_field, ndc_field, crosswalk}`` (field names in the spec; crosswalk = a value set whose
    codes are 11-digit NDCs labelled with their CVX).
    """
    from phmx.codes import ndc11, ndc_to_cvx

    def comp(k: int) -> list[str]:
        return [str(v or "").strip() for v in record_value(f"RXA-5.{k}").to_pylist()]

    code1, sys1, code2, sys2 = comp(1), [s.upper() for s in comp(3)], comp(4), [s.upper() for s in comp(6)]
    crosswalk = ndc_to_cvx(str(cfg.get("crosswalk", "ndc_cvx")))
    cvx: list[str | None] = []
    ndc: list[str | None] = []
    for i in range(len(code1)):
        c = n = None
        if code1[i] and sys1[i] in ("CVX", ""):
            c = code1[i]
        elif code2[i] and sys2[i] == "CVX":
            c = code2[i]
        if sys1[i] == "NDC" and code1[i]:
            n = code1[i]
        elif sys2[i] == "NDC" and code2[i]:
            n = code2[i]
        if c is None and n is not None:
            c = crosswalk.get(ndc11(n) or "")
            if c is None and kind[i] == 0:
                issue.setdefault(i, ("hl7_vaccine_code", "RXA-5 carries an NDC that is not in the CDC NDC-to-CVX "
                                     "crosswalk: send the CVX in RXA-5.1 with RXA-5.3 CVX (or as the alternate "
                                     "code RXA-5.4 with RXA-5.6 CVX)"))
        elif c is None and code1[i] and kind[i] == 0:
            issue.setdefault(i, ("hl7_vaccine_code", "RXA-5.3 names a coding system other than CVX or NDC: send "
                                 "the vaccine as CVX (RXA-5.3 CVX) or NDC (RXA-5.3 NDC)"))
        cvx.append(c)
        ndc.append(n)
    cols[str(cfg.get("cvx_field", "cvx"))] = pa.array(cvx, pa.string())
    if cfg.get("ndc_field"):
        cols[str(cfg["ndc_field"])] = pa.array(ndc, pa.string())


def _check_batches(segs: pa.Array, ids: pa.Array, batch_pos: np.ndarray, msh: np.ndarray, rows: np.ndarray,
                   raw: LazyRaw) -> None:
    """FHS/BHS/BTS/FTS nesting and counts; a broken batch envelope rejects the file."""
    if not len(batch_pos):
        return
    def reject(rule: str, msg: str) -> None:
        raise FileRejected(rule, msg, records=[(int(rows[i]), raw[i]) for i in range(len(rows))])

    kinds = [str(x) for x in ids.take(pa.array(batch_pos)).to_pylist()]
    texts = [str(x) for x in segs.take(pa.array(batch_pos)).to_pylist()]
    open_file = open_batch = False
    batches = 0
    batch_start = -1
    for pos, kind, text in zip(batch_pos.tolist(), kinds, texts, strict=True):
        if kind == "FHS":
            if open_file:
                reject("hl7_batch", f"a second FHS at segment {pos + 1} before FTS")
            open_file, batches = True, 0
        elif kind == "BHS":
            if open_batch:
                reject("hl7_batch", f"a BHS at segment {pos + 1} before the previous batch's BTS")
            open_batch, batch_start = True, pos
            batches += 1
        elif kind == "BTS":
            if not open_batch:
                reject("hl7_batch", f"BTS at segment {pos + 1} without BHS")
            count = int(np.count_nonzero((msh > batch_start) & (msh < pos)))
            value = text.split("|")[1].strip() if "|" in text else ""
            if value != str(count):
                reject("hl7_bts_count", f"BTS-1 at segment {pos + 1} does not equal the {count} message(s) in the batch")
            open_batch = False
        elif kind == "FTS":
            if not open_file:
                reject("hl7_batch", f"FTS at segment {pos + 1} without FHS")
            if open_batch:
                reject("hl7_batch", "the last batch has no BTS: the file is cut short")
            value = text.split("|")[1].strip() if "|" in text else ""
            if value != str(batches):
                reject("hl7_fts_count", f"FTS-1 at segment {pos + 1} does not equal the {batches} batch(es) in the file")
            open_file = False
    if open_batch:
        reject("hl7_batch", "the batch has no BTS trailer: the file is cut short")
    if open_file:
        reject("hl7_batch", "the file has no FTS trailer: the file is cut short")
