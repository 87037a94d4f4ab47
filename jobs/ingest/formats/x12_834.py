"""X12 834 5010 (005010X220A1) benefit enrollment: envelopes checked, one member loop = one record.

Separators come from the ISA segment itself (element separator at position 4, repetition
separator ISA11, component separator ISA16, segment terminator right after ISA16), never
assumed. The envelope is checked the way X12 acknowledgements do:

* file level (the file is rejected, every member loop quarantined under the rule): ISA
  unreadable (``x12_isa``), a group that is not benefit enrollment 005010X220A1 (``x12_gs``),
  GE or IEA missing (``x12_ge_missing``, ``x12_iea_missing``), GE01 / IEA01 counts
  (``x12_ge_count``, ``x12_iea_count``), GE02 / IEA02 control numbers (``x12_ge_control``,
  ``x12_iea_control``), data after the last IEA (``x12_trailing_data``);
* transaction level (that ST..SE's member loops are quarantined, other transaction sets go
  on): not an 834 (``x12_st``), SE missing (``x12_se_missing``), SE01 segment count
  (``x12_se_count``), SE02 control number (``x12_se_control``);
* record level: a member loop (2000 INS up to the next INS or SE) with a segment that is not
  an 834 segment (``x12_segment``), without its member name NM1*IL or NM1*74 (``x12_loop``) or
  with INS01/INS02 unusable (``x12_element``) is quarantined; its neighbours go on.

A record is one coverage: each 2300 loop (an HD segment up to the next HD or the end of the
member loop) of a member loop, or the member loop itself when it has no HD (an 001 change of
the name or address, a dependent added under the subscriber's coverage). Member-level fields
come from the whole member loop; fields of HD and of the 2300 dates (DTP 348, 349, 303, 343,
695) from the record's own 2300 loop, so HLT, DEN and VIS coverages of one member stay three
records. Maintenance transactions (INS03 001, 021, 024, 025, 030) need only what the TR3
requires of them (no DMG or DTP*348 on a 024 termination); how they apply to silver is the
enrollment spec's conform expressions. ``format.dependent_key`` tells a dependent from its
subscriber when both carry the subscriber's REF*0F, as the TR3 has it; ``format.home_state``
notes members with an address in another state (their N406 county is not a California one).

Records are numbered by the position of their INS segment in the file (ISA = 1, counting
non-empty segments), a member loop's second and later coverages by their HD segment. Field
values come from segment paths in the spec (``source``):

``SEG.NN``             element NN of the first SEG in the member loop (``DMG.02``)
``SEG[Q].NN``          ... of the first SEG whose first element is Q (``REF[0F].02``)
``SEG[NN=Q,...].NN``   ... whose element NN is Q, for every condition (``NM1[IL,08=34].09``)
``SEG[Q|R].NN``        ... whose first element is Q or R (``NM1[IL|74].03``)
``SEG[Q].TE``          the element after the qualifier TE among the pairs (``PER[IP].TE``)
``....NN-C``           component C of a composite element
``header:SEG...``      from the transaction's header (before the first INS), e.g. the payer's
                       ``header:N1[IN].04``

Everything runs vectorised with Arrow: segments are split by type in bulk and each field is a
handful of array operations, so a million member loops parse in seconds.
pyx12 (whose 834 5010 X220A1 map is the reference) validates files offline in ``phmx validate
--x12-strict``; it is too slow for bulk intake, so intake checks the envelope itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.ingest.formats.arrowtext import (
    blank_to_null,
    element,
    first_per_group,
    group_of,
    split,
    split_segments,
)
from jobs.ingest.formats.base import Chunk, FileRejected, LazyRaw, RecordIssue, indexed
from jobs.ingest.formats.decode import decode_text

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec

# Segments that may appear in an 834 005010X220A1 transaction set (implementation guide).
SEGMENTS_834 = frozenset({
    "ST", "BGN", "REF", "DTP", "QTY", "N1", "N2", "N3", "N4", "PER", "ACT", "INS", "NM1", "DMG", "EC", "ICM",
    "AMT", "HLH", "LUI", "HD", "IDC", "COB", "LX", "PLA", "LS", "LE", "SE",
})
ENVELOPE = ("ISA", "IEA", "GS", "GE", "ST", "SE")
BOUNDARY = ("INS", "ISA", "IEA", "GS", "GE", "ST", "SE")
VERSION = "005010X220A1"

_PATH = re.compile(
    r"^(?:(?P<scope>header):)?(?P<seg>[A-Z][A-Z0-9]{1,2})(?:\[(?P<conds>[^\]]+)\])?"
    r"\.(?P<el>[0-9]{2}|[A-Z0-9]{2,3})(?:-(?P<comp>[0-9]+))?$"
)
_COND = re.compile(r"^(?:(?P<k>[0-9]{2})=)?(?P<v>[A-Za-z0-9 |]+)$")


@dataclass(frozen=True)
class SegPath:
    """A compiled ``source`` path into a member loop (or the transaction header)."""

    header: bool
    seg: str
    conds: tuple[tuple[int, tuple[str, ...]], ...]   # (element, accepted values)
    element: int | None
    pair: str | None
    comp: int | None


def compile_path(src: str) -> SegPath:
    m = _PATH.match(src.strip())
    if not m:
        raise ValueError(f"{src!r} is not a segment path like REF[0F].02 or NM1[IL].03")
    conds = []
    for c in (m["conds"] or "").split(","):
        if not c.strip():
            continue
        cm = _COND.match(c.strip())
        if not cm:
            raise ValueError(f"bad condition {c!r} in {src!r}")
        conds.append((int(cm["k"] or 1), tuple(cm["v"].split("|"))))
    el = m["el"]
    return SegPath(bool(m["scope"]), m["seg"], tuple(conds), int(el) if el.isdigit() else None,
                   None if el.isdigit() else el, int(m["comp"]) if m["comp"] else None)


def check_spec(spec: FeedSpec) -> list[tuple[str, str]]:
    problems = []
    for i, f in enumerate(spec.fields):
        try:
            compile_path(str(f.source))
        except ValueError as exc:
            problems.append((f"fields[{i}].source", str(exc)))
    return problems


class _Records(Sequence[tuple[int, str]]):
    """Every member loop as (row number, raw text), built lazily for a rejected file."""

    def __init__(self, rows: np.ndarray, raw: LazyRaw) -> None:
        self._rows, self._raw = rows, raw

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i):  # noqa: ANN001, ANN204 - Sequence protocol
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return int(self._rows[i]), self._raw[i]


def _separators(text: str) -> tuple[str, str, str, str]:
    """(element, component, repetition, segment terminator) from the ISA segment."""
    if not text.startswith("ISA") or len(text) < 106:
        raise FileRejected("x12_isa", "the file does not start with a complete ISA interchange header")
    elem, comp, term, rep = text[3], text[104], text[105], text[82]
    parts = text[:105].split(elem)
    if len(parts) != 17 or elem.isalnum() or term.isalnum() or comp.isalnum() or len({elem, comp, term}) < 3:
        raise FileRejected("x12_isa", "the ISA segment is not 106 characters with 16 elements; separators "
                           "cannot be read")
    return elem, comp, rep, term


class _Envelope:
    """The ISA/GS/ST nesting, checked in one pass over the envelope segments (few of them)."""

    def __init__(self) -> None:
        self.file_error: tuple[str, str] | None = None
        self.st: list[int] = []          # ST positions (index into segments)
        self.se: list[int] = []          # matching SE positions (-1 when missing)
        self.trans_error: dict[int, tuple[str, str]] = {}

    def fail(self, rule: str, msg: str) -> None:
        if self.file_error is None:
            self.file_error = (rule, msg)

    def walk(self, positions: list[int], parts: list[list[str]], n_segments: int) -> None:
        isa = gs = st = None  # (position, elements)
        gs_count = st_count = 0
        for pos, el in zip(positions, parts, strict=True):
            sid = el[0]
            if sid == "ISA":
                if isa is not None:
                    self.fail("x12_iea_missing", f"the interchange starting at segment {isa[0] + 1} has no IEA")
                isa, gs_count = (pos, el), 0
            elif sid == "GS":
                if isa is None:
                    self.fail("x12_isa", f"GS at segment {pos + 1} is outside an interchange")
                if gs is not None:
                    self.fail("x12_ge_missing", f"the group starting at segment {gs[0] + 1} has no GE")
                gs, st_count = (pos, el), 0
                gs_count += 1
                if _get(el, 1) != "BE" or not _get(el, 8).startswith("005010X220"):
                    self.fail("x12_gs", f"the group at segment {pos + 1} is not benefit enrollment (GS01 BE, "
                              f"GS08 {VERSION})")
            elif sid == "ST":
                if gs is None:
                    self.fail("x12_gs", f"ST at segment {pos + 1} is outside a functional group")
                if st is not None:
                    self._close_st(st, None, "x12_se_missing", "the transaction set has no SE trailer")
                st = (pos, el)
                st_count += 1
                self.st.append(pos)
                self.se.append(-1)
                if _get(el, 1) != "834" or (_get(el, 3) and _get(el, 3) != VERSION):
                    self.trans_error[len(self.st) - 1] = ("x12_st", f"the transaction set at segment {pos + 1} is "
                                                          f"not an 834 {VERSION}")
            elif sid == "SE":
                if st is None:
                    self.fail("x12_gs", f"SE at segment {pos + 1} has no ST")
                    continue
                self._close_st(st, (pos, el), "", "")
                st = None
            elif sid == "GE":
                if st is not None:
                    self._close_st(st, None, "x12_se_missing", "the transaction set has no SE trailer")
                    st = None
                if gs is None:
                    self.fail("x12_gs", f"GE at segment {pos + 1} has no GS")
                    continue
                if _get(el, 1) != str(st_count):
                    self.fail("x12_ge_count", f"GE01 at segment {pos + 1} does not equal the {st_count} "
                              "transaction set(s) in the group")
                if _get(el, 2) != _get(gs[1], 6):
                    self.fail("x12_ge_control", f"GE02 at segment {pos + 1} does not match GS06")
                gs = None
            elif sid == "IEA":
                if gs is not None:
                    self.fail("x12_ge_missing", f"the group starting at segment {gs[0] + 1} has no GE")
                    gs = None
                if isa is None:
                    self.fail("x12_isa", f"IEA at segment {pos + 1} has no ISA")
                    continue
                if _get(el, 1) != str(gs_count):
                    self.fail("x12_iea_count", f"IEA01 at segment {pos + 1} does not equal the {gs_count} "
                              "functional group(s)")
                if _get(el, 2) != _get(isa[1], 13):
                    self.fail("x12_iea_control", f"IEA02 at segment {pos + 1} does not match ISA13")
                isa = None
                if pos != n_segments - 1:
                    self.fail("x12_trailing_data", f"segments follow the IEA at segment {pos + 1}")
        if st is not None:
            self._close_st(st, None, "x12_se_missing", "the transaction set has no SE trailer")
        if gs is not None:
            self.fail("x12_ge_missing", "the last functional group has no GE trailer: the file is cut short")
        if isa is not None:
            self.fail("x12_iea_missing", "the interchange has no IEA trailer: the file is cut short")

    def _close_st(self, st: tuple[int, list[str]], se: tuple[int, list[str]] | None, rule: str, msg: str) -> None:
        t = len(self.st) - 1
        if se is None:
            self.trans_error.setdefault(t, (rule, f"{msg} (ST at segment {st[0] + 1})"))
            return
        self.se[t] = se[0]
        count = se[0] - st[0] + 1
        if _get(se[1], 1) != str(count):
            self.trans_error.setdefault(t, ("x12_se_count", f"SE01 at segment {se[0] + 1} does not equal the "
                                            f"{count} segments of the transaction set"))
        elif _get(se[1], 2) != _get(st[1], 2):
            self.trans_error.setdefault(t, ("x12_se_control", f"SE02 at segment {se[0] + 1} does not match ST02"))


def _get(el: list[str], k: int) -> str:
    return el[k].strip() if len(el) > k else ""


@dataclass
class Segments:
    """An interchange's segments (Arrow strings, whitespace between segments dropped) and their ids.

    Elements are split only for the segments asked for (:meth:`elements`), so an acknowledgment that
    looks at a few segments of a million-segment file costs what those few cost.
    """

    segs: pa.Array
    ids: pa.Array
    elem: str
    comp: str
    term: str
    encoding: str
    _cache: dict[int, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.segs)

    def positions(self, names: Sequence[str]) -> np.ndarray:
        return np.flatnonzero(np.asarray(pc.fill_null(pc.is_in(self.ids, value_set=pa.array(list(names))), False)))

    def elements(self, i: int) -> list[str]:
        if i not in self._cache:
            self._cache[i] = str(self.segs[i].as_py()).split(self.elem)
        return self._cache[i]


def read_segments(data: bytes, spec: FeedSpec) -> Segments:
    """The segments of an 834 file, with the separators its ISA declares (FileRejected if unreadable)."""
    text, encoding = decode_text(data, spec.format.get("encodings", ["utf-8", "latin-1"]))
    text = text.lstrip("\ufeff \t\r\n")
    elem, comp, _rep, term = _separators(text)
    stripped = data.lstrip()
    body = stripped if encoding == "utf-8" and stripped.startswith(b"ISA") else text.encode("utf-8")
    segs = pc.utf8_trim(split_segments(body, term), characters=" \t\r\n")
    segs = segs.filter(pc.greater(pc.binary_length(segs), 0))
    # Segment ids are at most 3 characters before the first element separator.
    ids = element(pc.split_pattern(pc.utf8_slice_codeunits(segs, 0, 4), pattern=elem, max_splits=1), 0)
    return Segments(segs, ids, elem, comp, term, encoding)


def walk_envelope(seg: Segments) -> _Envelope:
    """The ISA/GS/ST nesting of the segments, checked."""
    env_pos = seg.positions(ENVELOPE)
    env = _Envelope()
    env.walk(env_pos.tolist(), [seg.elements(int(i)) for i in env_pos], len(seg))
    return env


def parse(data: bytes, spec: FeedSpec, *, file_name: str = "", chunk_rows: int = 100_000) -> Iterator[Chunk]:
    """Parse an 834 interchange into chunks of member loops (one record each)."""
    seg = read_segments(data, spec)
    notes = [] if seg.encoding == "utf-8" else [f"decoded as {seg.encoding}"]
    segs, ids, elem, comp, term = seg.segs, seg.ids, seg.elem, seg.comp, seg.term
    n = len(segs)

    positions_of = seg.positions
    env = walk_envelope(seg)
    ins = positions_of(["INS"])
    bounds = positions_of(BOUNDARY)
    nxt = np.searchsorted(bounds, ins, side="right")
    rec_end = np.where(nxt < len(bounds), bounds[np.minimum(nxt, len(bounds) - 1)], n)
    n_rec = len(ins)
    rows = ins + 1

    def raw_of(i: int) -> str:
        return term.join(segs.slice(int(ins[i]), int(rec_end[i] - ins[i])).to_pylist()) + term

    raw = LazyRaw(n_rec, raw_of)
    if env.file_error:
        raise FileRejected(*env.file_error, records=_Records(rows, raw))

    # Transaction of each member loop (and whether the loop sits inside an ST..SE at all).
    st = np.array(env.st, dtype=np.int64)
    se = np.array([s if s >= 0 else n for s in env.se], dtype=np.int64)
    rec_trans = group_of(ins, st, se + 1)
    # Which member loop each segment belongs to.
    seg_rec = group_of(np.arange(n), ins, rec_end)

    issue_rule: dict[int, tuple[str, str]] = {}
    for r in np.flatnonzero(rec_trans < 0).tolist():
        issue_rule[r] = ("x12_st", "the member loop is outside an ST..SE transaction set")
    for t, err in env.trans_error.items():
        for r in np.flatnonzero(rec_trans == t).tolist():
            issue_rule.setdefault(r, err)
    in_loop = seg_rec >= 0
    known = np.asarray(pc.fill_null(pc.is_in(ids, value_set=pa.array(sorted(SEGMENTS_834))), False))
    bad_seg = np.flatnonzero(in_loop & ~known)
    for p in bad_seg.tolist():
        issue_rule.setdefault(int(seg_rec[p]), ("x12_segment", f"segment {p + 1} is not an 834 segment"))
    cache: dict[str, tuple[np.ndarray, pa.Array]] = {}

    def segments(seg_id: str) -> tuple[np.ndarray, pa.Array]:
        if seg_id not in cache:
            pos = np.flatnonzero(np.asarray(pc.fill_null(pc.equal(ids, seg_id), False)))
            cache[seg_id] = (pos, split(segs.take(pa.array(pos)), elem))
        return cache[seg_id]

    ins_els = segments("INS")[1]
    ins01, ins02 = element(ins_els, 1), element(ins_els, 2)
    ins_ok = np.asarray(pc.fill_null(pc.and_(pc.is_in(ins01, value_set=pa.array(["Y", "N"])),
                                             pc.greater(pc.binary_length(ins02), 0)), False))
    for r in np.flatnonzero(~ins_ok).tolist():
        issue_rule.setdefault(r, ("x12_element", "INS01 must be Y or N and INS02 a relationship code"))
    nm1_pos, nm1_els = segments("NM1")
    has_il = np.zeros(n_rec, dtype=bool)
    il = np.asarray(pc.fill_null(pc.is_in(element(nm1_els, 1), value_set=pa.array(list(MEMBER_NAME))), False))
    g = seg_rec[nm1_pos[il]] if len(nm1_pos) else np.array([], dtype=np.int64)
    has_il[g[g >= 0]] = True
    for r in np.flatnonzero(~has_il).tolist():
        issue_rule.setdefault(r, ("x12_loop", "the member loop has no member name segment (2100A NM1*IL or NM1*74)"))

    # Header (ST to first INS) values per transaction, looked up in Python: there are few.
    header_cache: dict[int, list[list[str]]] = {}

    def header_segments(t: int) -> list[list[str]]:
        if t not in header_cache:
            first_ins = ins[rec_trans == t]
            stop = int(first_ins[0]) if len(first_ins) else int(se[t])
            header_cache[t] = [s.split(elem) for s in segs.slice(int(st[t]), stop - int(st[t])).to_pylist()]
        return header_cache[t]

    # ---- 2300 health coverage loops: each HD up to the next HD or the end of its member loop.
    hd_pos = positions_of(["HD"])
    hd_loop = seg_rec[hd_pos] if len(hd_pos) else np.zeros(0, np.int64)
    hd_pos, hd_loop = hd_pos[hd_loop >= 0], hd_loop[hd_loop >= 0]
    cov_end = np.minimum(np.append(hd_pos[1:], n), rec_end[hd_loop]) if len(hd_pos) else np.zeros(0, np.int64)

    def values(path: SegPath, starts: np.ndarray, ends: np.ndarray, n_groups: int) -> pa.Array:
        """The path's value in each group of segments [starts[g], ends[g])."""
        pos, els = segments(path.seg)
        groups = group_of(pos, starts, ends) if len(pos) else np.array([], dtype=np.int64)
        ok = groups >= 0
        for k, v in path.conds:
            ok &= np.asarray(pc.fill_null(pc.is_in(element(els, k), value_set=pa.array(list(v))), False))
        val = _pair_value(els, path.pair) if path.pair is not None else element(els, path.element or 0)
        if path.comp is not None:
            val = element(split(val, comp), path.comp - 1)
        return blank_to_null(pc.utf8_trim_whitespace(first_per_group(np.where(ok, groups, -1), n_groups, val)))

    member_cols: dict[str, pa.Array] = {}
    coverage_cols: dict[str, pa.Array] = {}
    for f in spec.fields:
        path = compile_path(str(f.source))
        if path.header:
            per_t = {t: _header_value(header_segments(t), path, comp) for t in range(len(st))}
            member_cols[f.name] = pa.array([per_t.get(int(t)) if t >= 0 else None for t in rec_trans], pa.string())
        elif _coverage_level(path):
            coverage_cols[f.name] = values(path, hd_pos, cov_end, len(hd_pos))
        else:
            member_cols[f.name] = values(path, ins, rec_end, n_rec)
    dependents = spec.format.get("dependent_key")
    if dependents and n_rec:
        _dependent_keys(dependents, member_cols, [str(x or "") for x in ins01.to_pylist()],
                        [str(x or "") for x in ins02.to_pylist()], rec_trans)
    home = spec.format.get("home_state")
    if home and n_rec:
        state = values(compile_path("N4.02"), ins, rec_end, n_rec).to_pylist()
        county = values(compile_path("N4[05=CY].06"), ins, rec_end, n_rec).to_pylist()
        away = sum(1 for st_, cy in zip(state, county, strict=True) if cy and st_ and st_ != home)
        if away:
            notes.append(f"{away} member loop(s) have an address outside {home}: their N406 county is not read "
                         "(county_fips is left empty); the members are loaded")

    # ---- records: one per 2300 loop (HD), or one per member loop that has none, in file order. The first
    # coverage of a member loop is numbered by its INS segment, each further one by its HD segment.
    no_hd = np.setdiff1d(np.arange(n_rec), hd_loop)
    rec_loop = np.concatenate((no_hd, hd_loop)).astype(np.int64)
    rec_hd = np.concatenate((np.full(len(no_hd), -1), np.arange(len(hd_pos)))).astype(np.int64)
    first_hd = np.ones(len(hd_pos), dtype=bool)
    first_hd[1:] = hd_loop[1:] != hd_loop[:-1]
    at = np.where(rec_hd >= 0, hd_pos[np.maximum(rec_hd, 0)] if len(hd_pos) else 0, ins[rec_loop])
    order = np.argsort(at, kind="stable")
    rec_loop, rec_hd = rec_loop[order], rec_hd[order]
    numbered_by_ins = (rec_hd < 0) | first_hd[np.maximum(rec_hd, 0)] if len(hd_pos) else rec_hd < 0
    rec_rows = np.where(numbered_by_ins, ins[rec_loop] + 1, (hd_pos[np.maximum(rec_hd, 0)] + 1) if len(hd_pos)
                        else 0).astype(np.int64)
    n_out = len(rec_loop)
    cols: dict[str, pa.Array] = {}
    loop_take = pa.array(rec_loop)
    hd_take = pa.array(np.maximum(rec_hd, 0), mask=rec_hd < 0)
    for f in spec.fields:
        if f.name in coverage_cols:
            cols[f.name] = coverage_cols[f.name].take(hd_take) if len(hd_pos) else pa.nulls(n_out, pa.string())
        else:
            cols[f.name] = member_cols[f.name].take(loop_take)

    def rec_raw(i: int) -> str:
        return raw[int(rec_loop[i])]

    bad = np.isin(rec_loop, np.array(sorted(issue_rule), dtype=np.int64))
    issues = []
    for i in np.flatnonzero(bad).tolist():
        rule, msg = issue_rule[int(rec_loop[i])]
        issues.append(RecordIssue(int(rec_rows[i]), rule, "", msg, rec_raw(i)))
    keep = np.flatnonzero(~bad)
    if len(keep) < n_out:
        take = pa.array(keep)
        cols = {k: v.take(take) for k, v in cols.items()}
    kept_rows = rec_rows[keep]
    total = len(kept_rows)
    for off in range(0, max(total, 1), chunk_rows):
        m = min(chunk_rows, total - off)
        idx = keep[off:off + m]
        yield Chunk({k: v.slice(off, m) for k, v in cols.items()}, kept_rows[off:off + m],
                    LazyRaw(m, indexed(rec_raw, idx)), issues if off == 0 else [],
                    notes if off == 0 else [])


# DTP qualifiers of the 2300 health coverage loop (benefit begin/end, enrollment signature, maintenance
# effective, last premium paid): fields with these belong to one coverage, not to the member.
COVERAGE_DATES = frozenset({"348", "349", "303", "343", "695"})
# 2100A member name: IL insured or 74 corrected insured (a 001 change that corrects the name).
MEMBER_NAME = ("IL", "74")


def _coverage_level(path: SegPath) -> bool:
    """Whether a field comes from the 2300 coverage loop (one value per HD) rather than the member loop."""
    if path.seg == "HD":
        return True
    return path.seg == "DTP" and bool(path.conds) and all(
        k == 1 and set(v) <= COVERAGE_DATES for k, v in path.conds)


def _dependent_keys(cfg: dict, cols: dict[str, pa.Array], ins01: list[str], ins02: list[str],
                    trans: np.ndarray) -> None:
    """Tell a dependent from its subscriber when both carry the subscriber's REF*0F (as the TR3 has it).

    ``cfg``: ``{field, own_id}``: the key field (REF*0F) and the fields holding the dependent's own id (the
    CIN in REF*23, ...). A dependent (INS01 N) whose key equals its subscriber's (the INS01 Y loop before it
    in the same transaction) gets ``<key>-<own id>``, or ``<key>-<INS02><n>`` (the n-th dependent with that
    relationship) when it has no own id.
    """
    key_field = str(cfg.get("field", "member_local_id"))
    keys = cols[key_field].to_pylist()
    own = [cols[f].to_pylist() for f in cfg.get("own_id", []) if f in cols]
    subscriber: str | None = None
    sub_trans = -2
    seen: dict[str, int] = {}
    out = list(keys)
    for i, k in enumerate(keys):
        if ins01[i] == "Y" or trans[i] != sub_trans:
            subscriber, sub_trans, seen = (k if ins01[i] == "Y" else None), int(trans[i]), {}
            if ins01[i] == "Y":
                continue
        if ins01[i] != "N" or k is None or k != subscriber:
            continue
        suffix = next((o[i] for o in own if o[i]), None)
        if suffix is None:
            seen[ins02[i]] = seen.get(ins02[i], 0) + 1
            suffix = f"{ins02[i]}{seen[ins02[i]]}"
        out[i] = f"{k}-{suffix}"
    cols[key_field] = pa.array(out, pa.string())


def _pair_value(els: pa.Array, qualifier: str) -> pa.Array:
    """The element following ``qualifier`` among the pairs 03/04, 05/06, 07/08 (PER)."""
    out = pa.nulls(len(els), pa.string())
    for k in (7, 5, 3):
        hit = pc.fill_null(pc.equal(element(els, k), qualifier), False)
        out = pc.if_else(hit, element(els, k + 1), out)
    return out


def _header_value(segments: list[list[str]], path: SegPath, comp: str) -> str | None:
    for el in segments:
        if el[0] != path.seg or any(_get(el, k) not in v for k, v in path.conds):
            continue
        if path.pair is not None:
            v = next((_get(el, k + 1) for k in (3, 5, 7) if _get(el, k) == path.pair), "")
        else:
            v = _get(el, path.element or 0)
        if path.comp is not None:
            parts = v.split(comp)
            v = parts[path.comp - 1].strip() if len(parts) >= path.comp else ""
        return v or None
    return None
