"""Delimited text: comma, pipe or tab; quoted fields; CRLF; UTF-8 or Latin-1; header checks.

Uses the standard library's csv module (C-accelerated), which handles quoting and embedded
delimiters correctly; row numbers are physical line numbers (the header is line 1).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobs.ingest.formats.base import Chunk, FileRejected, RecordIssue
from jobs.ingest.formats.decode import decode_text

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec

_OTHER_DELIMITERS = [",", "|", "\t", ";"]


def _name(d: str) -> str:
    return {"\t": "tab", ",": "comma", "|": "pipe", ";": "semicolon"}.get(d, repr(d))


def parse(data: bytes, spec: FeedSpec, *, file_name: str = "", chunk_rows: int = 100_000) -> Iterator[Chunk]:
    """Parse a delimited file into chunks of field columns keyed by the spec's field names."""
    fmt = spec.format
    delimiter = str(fmt.get("delimiter", ","))
    has_header = bool(fmt.get("header", True))
    text, encoding = decode_text(data, fmt.get("encodings", ["utf-8", "latin-1"]))
    notes = [] if encoding == "utf-8" else [f"decoded as {encoding}"]
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=str(fmt.get("quote", '"')))
    sources = [str(f.source if f.source is not None else f.name) for f in spec.fields]
    if has_header:
        header = next(reader, None)
        while header is not None and not any(h.strip() for h in header):
            header = next(reader, None)
        if header is None:
            raise FileRejected("file_empty", "the file has no header and no records")
        header_norm = [h.strip().lower() for h in header]
        body_records = [(i + 2, line) for i, line in enumerate(lines[1:]) if line.strip()]
        if len(header_norm) == 1 and len(sources) > 1:
            other = next((d for d in _OTHER_DELIMITERS if d != delimiter and d in header[0]), None)
            if other:
                raise FileRejected(
                    "wrong_delimiter",
                    f"the header is separated by {_name(other)}; this feed is {_name(delimiter)}-delimited",
                    records=body_records,
                )
        index = {h: i for i, h in enumerate(header_norm)}
        missing_required = [f.name for f, s in zip(spec.fields, sources, strict=True)
                            if s.lower() not in index and f.required]
        if len(missing_required) == len([f for f in spec.fields if f.required]) and missing_required:
            raise FileRejected("header_missing",
                               "the first line is not the header row this feed requires "
                               f"(expected columns such as {', '.join(sources[:4])})", records=body_records)
        if missing_required:
            raise FileRejected("header_columns",
                               "required columns missing from the header: " + ", ".join(missing_required),
                               records=body_records)
        positions = [index.get(s.lower()) for s in sources]
        unknown = [h for h in header_norm if h not in {s.lower() for s in sources}]
        if unknown:
            notes.append(f"ignored {len(unknown)} column(s) not in the spec: {', '.join(unknown[:10])}")
        width = len(header_norm)
    else:
        positions = list(range(len(sources)))
        width = len(sources)

    names = spec.field_names
    cols: dict[str, list[str | None]] = {n: [] for n in names}
    row_numbers: list[int] = []
    raw: list[str] = []
    issues: list[RecordIssue] = []
    try:
        for rec in reader:
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue
            line_no = reader.line_num
            if len(rec) != width:
                issues.append(RecordIssue(line_no, "column_count", "",
                                          f"expected {width} fields, found {len(rec)}",
                                          _raw(lines, line_no)))
            else:
                for n, pos in zip(names, positions, strict=True):
                    v = rec[pos].strip() if pos is not None else ""
                    cols[n].append(v or None)
                row_numbers.append(line_no)
                raw.append(_raw(lines, line_no))
            if len(row_numbers) + len(issues) >= chunk_rows:
                yield Chunk(cols, row_numbers, raw, issues, notes)
                cols, row_numbers, raw, issues, notes = {n: [] for n in names}, [], [], [], []
    except csv.Error as exc:
        # An unterminated quote swallows the rest of the file: quarantine what is left, line by line.
        start = (row_numbers[-1] if row_numbers else (1 if has_header else 0)) + 1
        for i in range(start, len(lines) + 1):
            if lines[i - 1].strip():
                issues.append(RecordIssue(i, "quoting", "", f"unreadable quoting ({type(exc).__name__})",
                                          lines[i - 1]))
    yield Chunk(cols, row_numbers, raw, issues, notes)


def _raw(lines: list[str], line_no: int) -> str:
    return lines[line_no - 1] if 0 < line_no <= len(lines) else ""
