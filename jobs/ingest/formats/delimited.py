"""Delimited text: comma, pipe or tab; quoted fields; CRLF; UTF-8 or Latin-1; header checks.

Two readers, one result. The fast path reads the body with Arrow's C++ CSV reader (pyarrow.csv)
and maps records back to physical line numbers with numpy; it applies whenever every record
sits on one line (no quoted line breaks, no lone CR line endings), which is nearly every file
submitters send. Anything else (a quoted field spanning lines, a quote left open, old Mac line
endings) goes through the standard library's csv module, which handles every quoting corner
and counts lines as it goes. Both yield the same chunks: row numbers are physical line numbers
(the header is line 1), a row with the wrong number of fields is quarantined as
``column_count`` and an unterminated quote as ``quoting``, and their neighbours go on.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from jobs.ingest.formats.arrowtext import blank_to_null, trim
from jobs.ingest.formats.base import Chunk, FileRejected, LazyRaw, RecordIssue, indexed
from jobs.ingest.formats.decode import check_text_bytes, decode_text

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec, FieldSpec

_OTHER_DELIMITERS = [",", "|", "\t", ";"]
# The longest value one field may hold (the csv module's default limit, applied by both readers):
# a longer one is almost always a lost quote or delimiter, and only its own record is quarantined.
FIELD_LIMIT = 131_072
# Raw text kept for a quarantined record (the quarantine table is no place for a 100 MB line).
RAW_LIMIT = 8_192


def _clip(text: str) -> str:
    return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT] + f"... [{len(text) - RAW_LIMIT:,} more characters]"

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _name(d: str) -> str:
    return {"\t": "tab", ",": "comma", "|": "pipe", ";": "semicolon"}.get(d, repr(d))


class _Header:
    """Where the header is, and which column(s) feed each spec field.

    ``positions[i]`` lists the column index of each source of field i: one for a plain field,
    several for a composite (a list ``source``, joined with the field's ``separator``), none for a
    ``constant`` field (validation fills it in); ``None`` for a source column the file lacks.
    """

    def __init__(self, spec: FeedSpec, text: str, delimiter: str, quote: str, has_header: bool,
                 notes: list[str], full_text: Callable[[], str] | None = None) -> None:
        self.line_no = 0  # physical line of the header (0: no header)
        mine = {f.name for f in spec.fields if from_this_file(spec, f)}
        if not has_header:
            self.positions: list[list[int | None]] = []
            pos = 0
            for f in spec.fields:
                self.positions.append([pos] if f.name in mine else [])
                pos += 1 if f.name in mine else 0
            self.width = pos
            return
        found = next(((i, line) for i, line in enumerate(_iter_lines(text)) if line.strip()), None)
        if found is None:
            raise FileRejected("file_empty", "the file has no header and no records")
        idx, line = found
        self.line_no = idx + 1
        header = next(csv.reader([line], delimiter=delimiter, quotechar=quote), [])
        header_norm = [h.strip().lower() for h in header]
        read = [f for f in spec.fields if f.name in mine]

        def body() -> list[tuple[int, str]]:
            whole = full_text() if full_text else text
            return [(i + 1, ln) for i, ln in enumerate(_LINE_BREAK.split(whole)) if i > idx and ln.strip()]

        if len(header_norm) == 1 and sum(len(f.sources) for f in read) > 1:
            other = next((d for d in _OTHER_DELIMITERS if d != delimiter and d in header[0]), None)
            if other:
                raise FileRejected(
                    "wrong_delimiter",
                    f"the header is separated by {_name(other)}; this feed is {_name(delimiter)}-delimited",
                    records=body(),
                )
        index = {h: i for i, h in enumerate(header_norm)}
        required = [f for f in read if f.required]
        missing = [s for f in required for s in f.sources if s.lower() not in index]
        if missing and all(all(s.lower() not in index for s in f.sources) for f in required):
            expected = [s for f in read for s in f.sources][:4]
            raise FileRejected("header_missing",
                               "the first line is not the header row this feed requires "
                               f"(expected columns such as {', '.join(expected)})", records=body())
        if missing:
            raise FileRejected("header_columns", "required columns missing from the header: " + ", ".join(missing),
                               records=body())
        self.positions = [[index.get(s.lower()) for s in f.sources] if f.name in mine else [] for f in spec.fields]
        absent = [s for f in read for s in f.sources if s.lower() not in index]
        if absent:
            notes.append(f"optional column(s) not in the file, loaded as empty: {', '.join(absent[:10])}"
                         + (f" and {len(absent) - 10} more" if len(absent) > 10 else ""))
        known = {s.lower() for f in read for s in f.sources}
        unknown = [h for h in header_norm if h not in known]
        if unknown:
            notes.append(f"ignored {len(unknown)} column(s) not in the spec: {', '.join(unknown[:10])}")
        self.width = len(header_norm)


def from_this_file(spec: FeedSpec, f: FieldSpec) -> bool:
    """Whether a field is read from the submitted file (not constant, not from a joined companion)."""
    joins = spec.format.get("join") or {}
    return bool(f.sources) and not any(s.split(".", 1)[0] in joins and "." in s for s in f.sources)


def check_spec(spec: FeedSpec) -> list[tuple[str, str]]:
    """A composite (list ``source``) names columns, so it needs a header row; joins are checked too."""
    from jobs.ingest.join import check_join

    problems = check_join(spec)
    if not spec.format.get("header", True):
        problems += [(f"fields[{i}].source", "a list source names header columns; this feed's files have no header")
                     for i, f in enumerate(spec.fields) if f.is_composite]
    return problems


def compose(parts: list[pa.Array], separator: str) -> pa.Array:
    """A composite field: its parts joined with ``separator``; null when any part is empty (a key
    with a part missing is no key, and the field's ``required`` check then says so)."""
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, separator)


def parse(data: bytes, spec: FeedSpec, *, file_name: str = "", chunk_rows: int = 100_000) -> Iterator[Chunk]:
    """Parse a delimited file into chunks of field columns keyed by the spec's field names."""
    fmt = spec.format
    delimiter = str(fmt.get("delimiter", ","))
    quote = str(fmt.get("quote", '"'))
    encodings = fmt.get("encodings", ["utf-8", "latin-1"])
    has_header = bool(fmt.get("header", True))
    check_text_bytes(data)
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    lone_cr = b"\r" in data and data.count(b"\r") != data.count(b"\r\n")
    if "utf-8" in encodings and not lone_cr:
        # Fast path on the bytes as sent (no decoded copy of the file); Arrow checks the UTF-8.
        head = _utf8_head(data, start)
        if head is not None:
            notes: list[str] = []
            header = _Header(spec, head, delimiter, quote, has_header, notes,
                             full_text=lambda: decode_text(data, encodings)[0])
            fast = _fast(memoryview(data)[start:], data, start, header, spec, delimiter, quote, chunk_rows)
            if fast is not None:
                fast[0].notes = notes
                yield from fast
                return
    text, encoding = decode_text(data, encodings)
    notes = [] if encoding == "utf-8" else [f"decoded as {encoding}"]
    header = _Header(spec, text, delimiter, quote, has_header, notes)
    yield from _slow(text, header, spec, delimiter, quote, chunk_rows, notes)


def _utf8_head(data: bytes, start: int, size: int = 1 << 20) -> str | None:
    """The first megabyte as text (to find the header), or None when it is not UTF-8."""
    chunk = data[start:start + size]
    if len(data) > start + size:
        cut = chunk.rfind(b"\n")
        chunk = chunk[:cut + 1] if cut >= 0 else chunk
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:
        return None


# ---- fast path: Arrow's CSV reader ----------------------------------------------------------
def _fast(body_all: memoryview, data: bytes, start: int, header: _Header, spec: FeedSpec, delimiter: str,
          quote: str, chunk_rows: int) -> list[Chunk] | None:
    """Read the body with pyarrow.csv; None when the file needs the line-by-line reader.

    Works on the submitted bytes through a memoryview: no copy of the file is made.
    """
    if header.width < 2:
        return None
    cut = start
    for _ in range(header.line_no):
        nl = data.find(b"\n", cut)
        cut = len(data) if nl < 0 else nl + 1
    body = body_all[cut - start:]
    first_line = header.line_no + 1
    n = len(body)
    if n == 0:
        return [_empty_chunk(spec)]
    lines = _Lines(body, data, cut)
    qcode = ord(quote)
    if qcode < 128 and data.find(quote.encode(), cut) >= 0 and lines.quote_parity_odd(qcode):
        return None  # a quoted field spans lines, or a quote is left open
    bad_rows: list[tuple[str, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad_rows.append((row.text, row.actual_columns))
        return "skip"

    width = header.width
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(body)),
            read_options=pacsv.ReadOptions(column_names=[f"c{i}" for i in range(width)], use_threads=True,
                                           block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=quote, double_quote=True,
                                             newlines_in_values=False, ignore_empty_lines=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={f"c{i}": pa.string() for i in range(width)},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None
    issues: list[RecordIssue] = []
    if not bad_rows and table.num_rows == lines.count:
        # Every physical line is a record (the usual file): no per-line bookkeeping needed.
        line_idx = np.arange(lines.count, dtype=np.int64)
    else:
        # Records are the non-empty lines, less whitespace-only lines and lines of the wrong width,
        # both of which Arrow hands to on_invalid (found again here by their length, then text).
        length = lines.length
        skip: set[int] = set()
        if bad_rows:
            wanted: dict[str, int] = {}
            for t, ncols in bad_rows:
                wanted[t.rstrip("\r")] = ncols
            lengths = np.array(sorted({len(t.encode("utf-8")) for t in wanted}), dtype=np.int64)
            found = 0
            for i in np.flatnonzero(np.isin(length, lengths) & (length > 0)).tolist():
                t = lines.text(i)
                if t in wanted:
                    skip.add(i)
                    found += 1
                    if t.strip():
                        issues.append(RecordIssue(first_line + i, "column_count", "",
                                                  f"expected {width} fields, found {wanted[t]}", t))
            if found != len(bad_rows):
                return None
        line_idx = np.flatnonzero(length > 0)
        if skip:
            line_idx = line_idx[~np.isin(line_idx, np.fromiter(skip, dtype=np.int64))]
        if len(line_idx) != table.num_rows:
            return None
    long_rows = _long_rows(table)
    if len(long_rows):
        for j in long_rows.tolist():
            i = int(line_idx[j])
            issues.append(RecordIssue(first_line + i, "field_size", "",
                                      f"a field is longer than {FIELD_LIMIT:,} characters", _clip(lines.text(i))))
        keep = np.setdiff1d(np.arange(table.num_rows), long_rows)
        table, line_idx = table.take(pa.array(keep, pa.int64())), line_idx[keep]
    line_text = lines.text
    cols: dict[str, pa.Array] = {}
    for f, pos in zip(spec.fields, header.positions, strict=True):
        if not pos or any(p is None for p in pos):
            cols[f.name] = pa.nulls(table.num_rows, pa.string())
            continue
        cols[f.name] = compose([blank_to_null(trim(table.column(p))) for p in pos if p is not None], f.separator)
    row_numbers = line_idx + first_line
    out: list[Chunk] = []
    n = table.num_rows
    for off in range(0, max(n, 1), chunk_rows):
        m = min(chunk_rows, n - off)
        idx = line_idx[off:off + m]
        out.append(Chunk({k: v.slice(off, m) for k, v in cols.items()}, row_numbers[off:off + m],
                         LazyRaw(m, indexed(line_text, idx)), issues if off == 0 else []))
    return out


def _long_rows(table: pa.Table) -> np.ndarray:
    """Indices of rows with a value over :data:`FIELD_LIMIT` characters (the slow reader's limit too)."""
    bad = None
    for col in table.columns:
        if (pc.max(pc.binary_length(col)).as_py() or 0) <= FIELD_LIMIT:  # bytes >= characters: the usual exit
            continue
        over = pc.fill_null(pc.greater(pc.utf8_length(col), FIELD_LIMIT), False)
        bad = over if bad is None else pc.or_(bad, over)
    if bad is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.asarray(bad.to_numpy(zero_copy_only=False), dtype=bool))


class _Lines:
    """Physical lines of the body, located lazily (most files never need more than their count)."""

    def __init__(self, body: memoryview, data: bytes, cut: int) -> None:
        self.body = body
        n = len(body)
        breaks = data.count(b"\n", cut)
        self.count = breaks + (1 if n and data[-1:] != b"\n" else 0)
        self._starts: np.ndarray | None = None

    def _locate(self) -> None:
        b = np.frombuffer(self.body, dtype=np.uint8)
        nl = np.flatnonzero(b == 10)
        starts = np.concatenate(([0], nl + 1))
        ends = np.concatenate((nl, [len(b)]))
        if len(starts) and starts[-1] == len(b):  # the file ends with a line break: no empty last line
            starts, ends = starts[:-1], ends[:-1]
        has_cr = np.zeros(len(ends), dtype=bool)
        nonempty = ends > starts
        has_cr[nonempty] = b[ends[nonempty] - 1] == 13
        self._starts, self._ends, self._length = starts, ends, ends - starts - has_cr

    @property
    def starts(self) -> np.ndarray:
        if self._starts is None:
            self._locate()
        assert self._starts is not None  # _locate sets it
        return self._starts

    @property
    def length(self) -> np.ndarray:
        self.starts  # noqa: B018 - locate on first use
        return self._length

    def text(self, i: int) -> str:
        s = int(self.starts[i])
        return bytes(self.body[s:s + int(self._length[i])]).decode("utf-8")

    def quote_parity_odd(self, qcode: int) -> bool:
        """Whether some line holds an odd number of quote characters."""
        b = np.frombuffer(self.body, dtype=np.uint8)
        qmask = (b == qcode).view(np.uint8)
        starts = self.starts[self._ends > self.starts]
        return bool(len(starts) and np.bitwise_xor.reduceat(qmask, starts).any())


def _iter_lines(text: str) -> Iterator[str]:
    """Physical lines without their line breaks, lazily (CRLF, LF or CR)."""
    pos = 0
    for m in _LINE_BREAK.finditer(text):
        yield text[pos:m.start()]
        pos = m.end()
    if pos < len(text):
        yield text[pos:]


def _empty_chunk(spec: FeedSpec) -> Chunk:
    return Chunk({f.name: [] for f in spec.fields}, [], [])


# ---- slow path: the standard library's csv reader -------------------------------------------
def _slow(text: str, header: _Header, spec: FeedSpec, delimiter: str, quote: str, chunk_rows: int,
          notes: list[str]) -> Iterator[Chunk]:
    """Line-by-line reading for files the fast path cannot map to lines."""
    lines = _LINE_BREAK.split(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote)
    for _ in range(header.line_no):
        next(reader, None)
    names = spec.field_names
    positions, width = header.positions, header.width
    separators = [f.separator for f in spec.fields]
    cols: dict[str, list[str | None]] = {n: [] for n in names}
    row_numbers: list[int] = []
    raw: list[str] = []
    issues: list[RecordIssue] = []
    last_line = header.line_no
    for rec, line_no in _records(reader, lines, header.line_no):
        if rec is None:
            first = last_line + 1
            while first < line_no and not lines[first - 1].strip():
                first += 1
            if line_no > first:  # a quote left open to the end of the file: each line on its own
                issues.extend(RecordIssue(i, "quoting", "", "a quote is not closed on this or an earlier line, so "
                                          "the line cannot be split into fields", _clip(lines[i - 1]))
                              for i in range(first, line_no + 1) if lines[i - 1].strip())
            else:
                issues.append(RecordIssue(first, "field_size", "", f"a field is longer than {FIELD_LIMIT:,} "
                                          "characters", _clip(lines[first - 1])))
            last_line = line_no
        else:
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                last_line = line_no
                continue
            first = last_line + 1
            while first < line_no and not lines[first - 1].strip():
                first += 1
            text_of = "\n".join(lines[first - 1:line_no])
            if len(rec) != width and line_no > first:
                # A quote left open swallowed the following lines into one bad record: quarantine each
                # physical line, so no line of the file goes uncounted.
                for i in range(first, line_no + 1):
                    if lines[i - 1].strip():
                        issues.append(RecordIssue(i, "quoting", "", "a quote is not closed on this or an earlier "
                                                  "line, so the line cannot be split into fields", lines[i - 1]))
            elif len(rec) != width:
                issues.append(RecordIssue(first, "column_count", "", f"expected {width} fields, found {len(rec)}",
                                          text_of))
            else:
                for n, pos, sep in zip(names, positions, separators, strict=True):
                    parts = [rec[p].strip() if p is not None else "" for p in pos]
                    cols[n].append(sep.join(parts) if parts and all(parts) else None)
                row_numbers.append(first)
                raw.append(text_of)
            last_line = line_no
        if len(row_numbers) + len(issues) >= chunk_rows:
            yield Chunk(cols, row_numbers, raw, issues, notes)
            cols, row_numbers, raw, issues, notes = {n: [] for n in names}, [], [], [], []
    yield Chunk(cols, row_numbers, raw, issues, notes)


def _records(reader: Iterator[list[str]], lines: list[str], start_line: int) -> Iterator[tuple[list[str] | None, int]]:
    """``(record, last physical line)`` from a csv reader; ``None`` for a record the reader refused
    (a field over :data:`FIELD_LIMIT`, or quoting it cannot read): only that record is lost, as the
    reader goes on at the next line, so one oversized value never takes its neighbours with it."""
    last = start_line
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            return
        except csv.Error:
            line_no = getattr(reader, "line_num", last + 1)
            if line_no <= last:  # the reader made no progress: nothing more can be read
                return
            last = line_no
            yield None, line_no
            continue
        last = getattr(reader, "line_num", last + 1)
        yield rec, last
