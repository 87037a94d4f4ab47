"""Fixed-width records: county legacy layouts where the record type decides the layout.

A CSI-like file holds client (C), service (S) and periodic (P) records, each with its own
field positions, optionally between a header record and a trailer record that counts the
detail records. The spec says it all as data::

    format:
      type: fixed_width
      record_type: {start: 1, length: 1}
      header: {type: H}                                   # optional: first record
      trailer: {type: T, count: {start: 2, length: 9}}    # optional: last record, detail count
      layouts:
        C: {length: 125, fields: {record_type: [1, 1], client_number: [4, 20], ...}}

Positions are 1-based ``[start, length]`` in characters. Slicing is vectorised with Arrow
(``utf8_slice_codeunits`` on every line of a record type at once). Blank lines are skipped; a
record longer than its layout is quarantined as ``record_length`` (a shifted field would load
wrong values); a shorter one is read with the missing tail blank, since many tools trim trailing
spaces. A missing trailer or a trailer count that does not match rejects the file: records were
lost or added in transit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.ingest.formats.arrowtext import blank_to_null, physical_lines, trim
from jobs.ingest.formats.base import Chunk, FileRejected, LazyRaw, RecordIssue, indexed
from jobs.ingest.formats.decode import decode_text
from jobs.ingest.formats.delimited import compose

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec



def _pos(v: Any) -> tuple[int, int] | None:
    if isinstance(v, dict):
        v = [v.get("start"), v.get("length")]
    if (isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
            and v[0] >= 1 and v[1] >= 1):
        return int(v[0]), int(v[1])
    return None


def layout_spans(v: Any) -> list[tuple[int, int]] | None:  # noqa: ANN401 - YAML value
    """A layout entry's spans: ``[start, length]`` (one), or a list of them (a composite field,
    its parts joined with the field's ``separator``)."""
    if isinstance(v, list) and v and all(isinstance(x, list | dict) for x in v):
        spans = [_pos(x) for x in v]
        return None if any(p is None for p in spans) else [p for p in spans if p is not None]
    p = _pos(v)
    return None if p is None else [p]


def check_spec(spec: FeedSpec) -> list[tuple[str, str]]:
    """Layout problems: unknown fields, bad or overlapping positions, fields past the record length."""
    fmt = spec.format
    problems: list[tuple[str, str]] = []
    if _pos(fmt.get("record_type")) is None:
        problems.append(("format.record_type", "needs {start, length} (1-based)"))
    layouts = fmt.get("layouts")
    if not isinstance(layouts, dict) or not layouts:
        return [*problems, ("format.layouts", "needs one layout per record type")]
    names = set(spec.field_names)
    problems += [(f"fields[{i}].source", "fixed-width fields are read at their format.layouts positions (a list of "
                  "[start, length] for a composite); source is not used") for i, f in enumerate(spec.fields)
                 if f.source is not None and f.source != f.name]
    for rtype, layout in layouts.items():
        key = f"format.layouts.{rtype}"
        if not isinstance(layout, dict) or not isinstance(layout.get("fields"), dict):
            problems.append((key, "needs length and fields"))
            continue
        length = layout.get("length")
        spans = []
        for fname, raw in layout["fields"].items():
            ps = layout_spans(raw)
            if fname not in names:
                problems.append((f"{key}.fields.{fname}", "not a field of this spec"))
            elif spec.field(fname).constant is not None:
                problems.append((f"{key}.fields.{fname}", "a constant field is not read from the record"))
            if ps is None:
                problems.append((f"{key}.fields.{fname}", "needs [start, length] (1-based), or a list of them "
                                 "for a composite"))
                continue
            for p in ps:
                spans.append((p[0], p[0] + p[1] - 1, fname))
                if isinstance(length, int) and p[0] + p[1] - 1 > length:
                    problems.append((f"{key}.fields.{fname}", f"ends past the record length {length}"))
        spans.sort()
        for (_, e1, a), (s2, _, b) in zip(spans, spans[1:], strict=False):
            if s2 <= e1:
                problems.append((f"{key}.fields", f"{a} and {b} overlap"))
        if not isinstance(length, int) or length < 1:
            problems.append((f"{key}.length", "needs the record length in characters"))
    for part in ("header", "trailer"):
        cfg = fmt.get(part)
        if cfg is None:
            continue
        if not isinstance(cfg, dict) or not cfg.get("type"):
            problems.append((f"format.{part}", "needs the record type"))
        elif str(cfg["type"]) in {str(k) for k in layouts}:
            problems.append((f"format.{part}.type", "must differ from every detail record type"))
    trailer = fmt.get("trailer")
    if isinstance(trailer, dict) and trailer.get("count") is not None and _pos(trailer["count"]) is None:
        problems.append(("format.trailer.count", "needs {start, length}"))
    return problems


def parse(data: bytes, spec: FeedSpec, *, file_name: str = "", chunk_rows: int = 100_000) -> Iterator[Chunk]:
    """Parse a fixed-width file into chunks, one record type at a time."""
    fmt = spec.format
    text, encoding = decode_text(data, fmt.get("encodings", ["utf-8", "latin-1"]))
    notes = [] if encoding == "utf-8" else [f"decoded as {encoding}"]
    raw_bytes = data if encoding == "utf-8" else text.encode("utf-8")
    all_lines = physical_lines(raw_bytes[3:] if raw_bytes.startswith(b"\xef\xbb\xbf") else raw_bytes)
    rt_start, rt_len = _pos(fmt["record_type"]) or (1, 1)
    nonblank = np.flatnonzero(np.asarray(pc.greater(pc.binary_length(trim(all_lines)), 0)))
    if not len(nonblank):
        raise FileRejected("file_empty", "the file is empty")
    header_cfg, trailer_cfg = fmt.get("header"), fmt.get("trailer")

    def line(i: int) -> str:
        return str(all_lines[int(i)].as_py())

    def rtype(i: int) -> str:
        return line(i)[rt_start - 1:rt_start - 1 + rt_len].strip()

    def records(idx: np.ndarray) -> list[tuple[int, str]]:
        return list(zip((idx + 1).tolist(), all_lines.take(pa.array(idx)).to_pylist(), strict=True))

    detail = nonblank
    if header_cfg:
        if rtype(detail[0]) != str(header_cfg["type"]):
            raise FileRejected("header_missing", f"the first record is not the header record "
                               f"(type {header_cfg['type']})", records=records(detail))
        detail = detail[1:]
    if trailer_cfg:
        if not len(detail) or rtype(detail[-1]) != str(trailer_cfg["type"]):
            raise FileRejected("trailer_missing", f"the last record is not the trailer record "
                               f"(type {trailer_cfg['type']}): the file may be cut short", records=records(detail))
        trailer_line = line(detail[-1])
        detail = detail[:-1]
        cnt = _pos(trailer_cfg.get("count"))
        if cnt:
            value = trailer_line[cnt[0] - 1:cnt[0] - 1 + cnt[1]].strip()
            if not value.isdigit() or int(value) != len(detail):
                counted = value if value.isdigit() else "an unreadable number of"
                raise FileRejected("trailer_count", f"the trailer counts {counted} records but the file holds "
                                   f"{len(detail)}", records=records(detail))
    if not len(detail):
        yield Chunk({f.name: [] for f in spec.fields}, [], [], [], notes)
        return
    layouts = {str(k): v for k, v in fmt["layouts"].items()}
    idx = detail.astype(np.int64)
    arr = all_lines.take(pa.array(idx))
    types = pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(arr, rt_start - 1, rt_start - 1 + rt_len))
    issues: list[RecordIssue] = []
    known = pa.array(sorted(layouts), pa.string())
    unknown = np.flatnonzero(~np.asarray(pc.fill_null(pc.is_in(types, value_set=known), False)))
    for j in unknown.tolist():
        issues.append(RecordIssue(int(idx[j]) + 1, "record_type", "",
                                  f"record type is not one of {', '.join(sorted(layouts))}", line(idx[j])))
    selected: list[tuple[dict, np.ndarray]] = []
    for t, layout in sorted(layouts.items()):
        sel = np.flatnonzero(np.asarray(pc.fill_null(pc.equal(types, t), False)))
        if not len(sel):
            continue
        recs = arr.take(pa.array(sel))
        too_long = np.asarray(pc.greater(pc.utf8_length(pc.utf8_rtrim_whitespace(recs)), int(layout["length"])))
        for j in np.flatnonzero(too_long).tolist():
            issues.append(RecordIssue(int(idx[sel[j]]) + 1, "record_length", "",
                                      f"record type {t} is longer than its layout ({layout['length']} characters)",
                                      str(arr[int(sel[j])].as_py())))
        selected.append((layout, sel[~too_long]))
    # Every issue is known before the first chunk goes out (they travel with it).
    first = True
    for layout, keep in selected:
        recs = arr.take(pa.array(keep))
        positions = {name: layout_spans(p) for name, p in layout["fields"].items()}
        for off in range(0, len(keep), chunk_rows):
            part = recs.slice(off, chunk_rows)
            cols: dict[str, pa.Array] = {}
            for f in spec.fields:
                ps = positions.get(f.name)
                if not ps:
                    cols[f.name] = pa.nulls(len(part), pa.string())
                    continue
                cols[f.name] = compose([blank_to_null(trim(pc.utf8_slice_codeunits(part, p[0] - 1, p[0] - 1 + p[1])))
                                        for p in ps], f.separator)
            rows = idx[keep[off:off + chunk_rows]] + 1
            yield Chunk(cols, rows, LazyRaw(len(rows), indexed(line, rows - 1)),
                        issues if first else [], notes if first else [])
            first = False
    if first:
        yield Chunk({f.name: [] for f in spec.fields}, [], [], issues, notes)
