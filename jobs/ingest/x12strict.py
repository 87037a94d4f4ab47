"""Full 005010X220A1 validation of an 834 with pyx12, for the offline pre-check only.

pyx12 walks the implementation guide's map (every loop, segment, element, code list) the way
a translator's 999 acknowledgement does. It is thorough and slow (hundreds of member loops a
second), so intake checks the envelope itself and ``phmx validate --x12-strict`` adds this.
Findings name the segment position, the element and pyx12's error code; pyx12's own messages
quote the submitted value, so they are never used, and its logging is silenced during the run.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from typing import Any

# IK3 (segment) and IK4 (element) error codes of the 999 acknowledgement.
SEGMENT_ERRORS = {
    "1": "unrecognized segment", "2": "unexpected segment", "3": "required segment missing",
    "4": "loop occurs over maximum times", "5": "segment exceeds maximum use",
    "6": "segment not in defined transaction set", "7": "segment not in proper sequence",
    "8": "segment has data element errors",
}
ELEMENT_ERRORS = {
    "1": "required data element missing", "2": "conditional required data element missing",
    "3": "too many data elements", "4": "data element too short", "5": "data element too long",
    "6": "invalid character in data element", "7": "invalid code value", "8": "invalid date",
    "9": "invalid time", "10": "exclusion condition violated", "12": "too many repetitions",
    "13": "too many components",
}


def _walk(node: dict[str, Any], out: list[tuple[int, str]]) -> None:
    for seg in node.get("segments") or []:
        pos = int(seg.get("seg_count") or 0)
        sid = str(seg.get("seg_id") or "")
        for e in seg.get("errors") or []:
            code = str(e.get("err_cde"))
            out.append((pos, f"segment {pos} ({sid}, {seg.get('name', '')}): "
                             f"{SEGMENT_ERRORS.get(code, 'segment error')} (IK3 code {code})"))
        for el in seg.get("elements") or []:
            for e in el.get("errors") or []:
                code = str(e.get("err_cde"))
                out.append((pos, f"segment {pos} ({sid}{int(el.get('ele_pos') or 0):02d} {el.get('name', '')}): "
                                 f"{ELEMENT_ERRORS.get(code, 'element error')} (IK4 code {code})"))
    for key in ("interchanges", "groups", "transactions"):
        for child in node.get(key) or []:
            for e in child.get("errors") or []:
                code = str(e.get("err_cde"))
                out.append((0, f"{key[:-1]} error (code {code})"))
            _walk(child, out)


def pyx12_findings(data: bytes) -> tuple[bool, list[tuple[int, str]]]:
    """(valid, [(segment position, message)]) from pyx12's 834 5010 X220A1 validation."""
    import pyx12.params
    import pyx12.x12n_document

    loggers = [logging.getLogger(n) for n in ("pyx12", "")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    fd, path = tempfile.mkstemp(suffix=".x12")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        out = io.StringIO()
        ok = pyx12.x12n_document.x12n_document(param=pyx12.params.params(), src_file=path, fd_997=io.StringIO(),
                                               fd_html=None, fd_xmldoc=None, fd_json=out)
        findings: list[tuple[int, str]] = []
        try:
            _walk(json.loads(out.getvalue() or "{}"), findings)
        except json.JSONDecodeError:
            findings.append((0, "pyx12 could not read the interchange"))
        return bool(ok) and not findings, findings
    finally:
        for lg, lvl in zip(loggers, levels, strict=True):
            lg.setLevel(lvl)
        os.unlink(path)
