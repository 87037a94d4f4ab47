"""The default delimited writers: header of lowercase field names, then one line per row.

The dialect (delimiter per feed, minimal quoting, "\\n" line ends, UTF-8 without BOM) lives
here only; the generator appends chunks through ``csv_writer`` so every delimited byte comes
from this module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import IO, Any, BinaryIO

from phmx.synth.layouts import LAYOUTS
from phmx.synth.writers import Writer, register_writer

LINE_END = "\n"


def csv_writer(text_fh: IO[str], feed: str) -> Any:  # noqa: ANN401 - csv writer objects have no public type
    """A csv.writer with the feed's dialect, writing to a text stream."""
    return csv.writer(text_fh, delimiter=LAYOUTS[feed].delimiter, lineterminator=LINE_END,
                      quoting=csv.QUOTE_MINIMAL)


def format_row(row: Sequence[str], delimiter: str) -> str:
    """One row as a line, byte-identical to ``csv_writer``'s output but without its per-field cost.

    Rows needing quoting (a delimiter, quote or line break inside a value) go through csv itself.
    """
    line = delimiter.join(row)
    if '"' in line or "\n" in line or "\r" in line or line.count(delimiter) != len(row) - 1 or len(row) < 2:
        buf = io.StringIO()
        csv.writer(buf, delimiter=delimiter, lineterminator=LINE_END, quoting=csv.QUOTE_MINIMAL).writerow(row)
        return buf.getvalue()
    return line + LINE_END


def header_line(feed: str) -> str:
    buf = io.StringIO()
    csv_writer(buf, feed).writerow(LAYOUTS[feed].fields)
    return buf.getvalue()


def make_writer(feed: str) -> Writer:
    """A Writer for ``feed`` that writes the header and then every row's fields in layout order."""
    fields = LAYOUTS[feed].fields

    def write(rows: Iterable[dict[str, str]], fh: BinaryIO) -> int:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
        try:
            w = csv_writer(text, feed)
            w.writerow(fields)
            n = 0
            for row in rows:
                w.writerow([row.get(f, "") for f in fields])
                n += 1
            text.flush()
            return n
        finally:
            text.detach()

    write.__name__ = f"write_{feed}_delimited"
    return write


for _feed, _layout in LAYOUTS.items():
    register_writer(_feed, "delimited", make_writer(_feed), file_suffix=_layout.suffix, feed_name=_feed)
