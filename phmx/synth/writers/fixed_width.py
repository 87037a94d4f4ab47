"""County mental health rows (mh_csi) in the legacy CSI-like fixed-width layout.

The layout is not repeated here: it is read from the intake spec
``mappings/feeds/mh_csi_fixed.yaml`` (record type in column 1, one layout per record type,
header record H, trailer record T counting the detail records), so the writer and the parser
can never disagree. Dates are written CCYYMMDD, numbers right-aligned with leading zeros,
text left-aligned and space-padded (and cut to the field width, as legacy systems do).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import BinaryIO

from phmx.feedspec import get_spec
from phmx.synth.writers import register_writer

FEED = "mh_csi_fixed"
LINE_END = "\r\n"


def _pos(v: dict[str, int] | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(v, dict):
        return int(v["start"]), int(v["length"])
    start, length = v
    return int(start), int(length)


def record(row: dict[str, str], layout: dict, types: dict[str, str]) -> str:
    """One fixed-width line for ``row`` with ``layout`` (``{length, fields: {name: [start, length]}}``)."""
    buf = [" "] * int(layout["length"])
    for name, p in layout["fields"].items():
        start, length = _pos(p)
        value = (row.get(name) or "").strip()
        if types.get(name) == "date":
            value = value.replace("-", "")
        if value and types.get(name) in ("integer", "decimal"):
            value = value.rjust(length, "0")
        value = value[:length].ljust(length)
        buf[start - 1:start - 1 + length] = value
    return "".join(buf).rstrip()


def write_csi_fixed(rows: Iterable[dict[str, str]], fh: BinaryIO, *, period: str | None = None) -> int:
    """Write header, one record per row (layout by record type), trailer; returns detail records."""
    spec = get_spec(FEED)
    fmt = spec.format
    layouts = {str(k): v for k, v in fmt["layouts"].items()}
    types = {f.name: f.type for f in spec.fields}
    lines: list[str] = []
    county = ""
    months: set[str] = set()
    for row in rows:
        layout = layouts.get((row.get("record_type") or "").strip())
        if layout is None:
            continue
        county = county or (row.get("county_code") or "").strip()
        if row.get("service_date"):
            months.add(row["service_date"].replace("-", "")[:6])
        lines.append(record(row, layout, types))
    per = (period or (max(months) if months else "")).replace("-", "")[:6]
    header = f"{fmt['header']['type']}{county[:2]:<2}{per:<6}"
    trailer_cfg = fmt["trailer"]
    start, length = _pos(trailer_cfg["count"])
    trailer = (str(trailer_cfg["type"]) + " " * (start - 2) + str(len(lines)).rjust(length, "0"))
    fh.write(LINE_END.join([header, *lines, trailer]).encode("utf-8") + LINE_END.encode())
    return len(lines)


register_writer("mh_csi", "fixed_width", write_csi_fixed, file_suffix=".dat", feed_name=FEED)
