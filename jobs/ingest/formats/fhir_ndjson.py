"""FHIR R4 NDJSON (bulk data export style): one resource per line, one line = one record.

Each feed takes one resource type (``format.resource_type``). A line is parsed with orjson,
its ``resourceType`` checked, and the resource validated with fhir.resources' R4B models
(the R4B models validate R4 content for these resource types; ``format.validate: false``
skips the model validation for trusted bulk loads). Problems quarantine only that line:
not JSON (``fhir_json``), another resource type (``fhir_resource_type``), invalid against the
model (``fhir_invalid``; the message names the element paths and error kinds, never values).

Field paths (``source``) walk the JSON:

``birthDate``                          an element
``name[0].given[1]``                   list index
``identifier(system=urn:x:cin).value`` the first list item whose sub-path equals the value
``contained(resourceType=Patient).name[0].family``   a contained resource
``$``                                  the whole resource as compact JSON (for bronze.fhir_consent)

A list where a single value is expected yields its first item; objects yield nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
from pydantic import ValidationError

from jobs.ingest.formats.base import Chunk, FileRejected, RecordIssue
from jobs.ingest.formats.decode import decode_text
from jobs.ingest.formats.lines import split_lines

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec

_STEP = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\((?P<key>[^=()]+)=(?P<val>[^()]*)\))?(?:\[(?P<idx>\d+)\])?$")

Getter = Callable[[Any], Any]


def _split_path(src: str) -> list[str]:
    """Split on dots that are not inside parentheses (filter values are URLs)."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in src:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


def compile_path(src: str) -> Getter:
    """A function from a resource (dict) to the value at ``src`` (or None)."""
    src = src.strip()
    if src == "$":
        return lambda res: orjson.dumps(res, option=orjson.OPT_SORT_KEYS).decode()
    steps = []
    for part in _split_path(src):
        m = _STEP.match(part)
        if not m:
            raise ValueError(f"{src!r}: step {part!r} is not name, name[i] or name(path=value)")
        key = compile_path(m["key"]) if m["key"] else None
        steps.append((m["name"], key, m["val"], int(m["idx"]) if m["idx"] is not None else None))

    def get(res: Any) -> Any:  # noqa: ANN401 - JSON
        cur = res
        for name, key, val, idx in steps:
            if isinstance(cur, list):
                cur = cur[0] if cur else None
            if not isinstance(cur, dict):
                return None
            cur = cur.get(name)
            if key is not None:
                items = cur if isinstance(cur, list) else [cur] if cur is not None else []
                cur = next((it for it in items if _scalar(key(it)) == val), None)
            if idx is not None:
                cur = cur[idx] if isinstance(cur, list) and len(cur) > idx else None
        return cur

    return get


def _scalar(v: Any) -> str | None:  # noqa: ANN401 - JSON
    if isinstance(v, list):
        v = v[0] if v else None
    if v is None or isinstance(v, dict):
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def check_spec(spec: FeedSpec) -> list[tuple[str, str]]:
    problems = []
    rtype = spec.format.get("resource_type")
    if not rtype:
        problems.append(("format.resource_type", "names the FHIR resource type of the feed (e.g. Patient)"))
    else:
        from fhir.resources.R4B import get_fhir_model_class

        try:
            get_fhir_model_class(str(rtype))
        except (KeyError, ValueError):
            problems.append(("format.resource_type", f"{rtype!r} is not an R4 resource type"))
    for i, f in enumerate(spec.fields):
        try:
            compile_path(str(f.source))
        except ValueError as exc:
            problems.append((f"fields[{i}].source", str(exc)))
    return problems


def _invalid_message(exc: ValidationError, rtype: str) -> str:
    errs = exc.errors()
    parts = sorted({f"{rtype}." + ".".join(str(x) for x in e.get("loc", ()) if x != "__root__") + f" ({e.get('type')})"
                    for e in errs})
    more = f" and {len(parts) - 3} more" if len(parts) > 3 else ""
    return "invalid elements: " + ", ".join(parts[:3]) + more


def parse(data: bytes, spec: FeedSpec, *, file_name: str = "", chunk_rows: int = 100_000) -> Iterator[Chunk]:
    """Parse an NDJSON file of one resource type into chunks (one record per line)."""
    fmt = spec.format
    text, encoding = decode_text(data, fmt.get("encodings", ["utf-8"]))
    notes = [] if encoding == "utf-8" else [f"decoded as {encoding}"]
    rtype = str(fmt.get("resource_type"))
    model = None
    if fmt.get("validate", True):
        from fhir.resources.R4B import get_fhir_model_class

        model = get_fhir_model_class(rtype)
    getters = [(f.name, compile_path(str(f.source))) for f in spec.fields]
    lines = split_lines(text.lstrip("\ufeff"))
    if not any(line.strip() for line in lines):
        raise FileRejected("file_empty", "the file is empty")
    cols: dict[str, list[str | None]] = {n: [] for n, _ in getters}
    rows: list[int] = []
    raw: list[str] = []
    issues: list[RecordIssue] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        row = i + 1
        try:
            res = orjson.loads(line)
        except orjson.JSONDecodeError:
            issues.append(RecordIssue(row, "fhir_json", "", "the line is not valid JSON", line))
            continue
        if not isinstance(res, dict):
            issues.append(RecordIssue(row, "fhir_json", "", "the line is not one JSON object", line))
            continue
        if res.get("resourceType") != rtype:
            issues.append(RecordIssue(row, "fhir_resource_type", "", f"the resource is not a {rtype}", line))
            continue
        if model is not None:
            try:
                model.model_validate(res)
            except ValidationError as exc:
                issues.append(RecordIssue(row, "fhir_invalid", "", _invalid_message(exc, rtype), line))
                continue
            except (ValueError, TypeError, RecursionError) as exc:
                issues.append(RecordIssue(row, "fhir_invalid", "", f"the resource cannot be validated "
                                          f"({type(exc).__name__})", line))
                continue
        for name, get in getters:
            try:
                v = _scalar(get(res))
            except (TypeError, AttributeError, IndexError):
                v = None
            cols[name].append(v.strip() or None if v is not None else None)
        rows.append(row)
        raw.append(line)
        if len(rows) + len(issues) >= chunk_rows:
            yield Chunk({k: pa.array(v, pa.string()) for k, v in cols.items()}, rows, raw, issues, notes)
            cols, rows, raw, issues, notes = {n: [] for n, _ in getters}, [], [], [], []
    yield Chunk({k: pa.array(v, pa.string()) for k, v in cols.items()}, rows, raw, issues, notes)
