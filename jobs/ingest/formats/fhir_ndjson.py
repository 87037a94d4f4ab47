"""FHIR R4 NDJSON (bulk data export style): one resource per line, one line = one record.

Each feed takes one resource type (``format.resource_type``). A line is parsed with orjson,
its ``resourceType`` checked, and the resource validated with fhir.resources' R4B models
(the R4B models validate R4 content for these resource types; ``format.validate: false``
skips the model validation for trusted bulk loads). Problems quarantine only that line:
not JSON (``fhir_json``), another resource type (``fhir_resource_type``), invalid against the
model (``fhir_invalid``; the message names the element paths and error kinds, never values),
a reference the hub must follow that leads nowhere (``fhir_unresolved_reference``), a date the
hub needs to the day sent with year or month precision only (``fhir_date_precision``), a
resource whose status the hub does not take (``format.take_only``, e.g. an Immunization that is
``not-done``: ``fhir_not_taken``, a documented exclusion, not an error in the file).

Field paths (``source``) walk the JSON:

``birthDate``                          an element
``name[0].given[1]``                   list index
``identifier(system=urn:x:cin).value`` the list items whose sub-path equals the value
``contained(resourceType=Patient).name[0].family``   a contained resource
``patient.@resolve.birthDate``         the resource a Reference points at: contained (``#p``) or
                                       another resource of the same submission (``Patient/123``,
                                       ``urn:uuid:123``; see ``companions`` of :func:`parse`)
``subject.@ref_id``                    the id of a literal reference (``Patient/123`` -> ``123``);
                                       ``@ref_id(Patient)`` only if it references a Patient
``performer.actor.@identifier(http://hl7.org/fhir/sid/us-npi)``
                                       a Reference's identifier of that system: its ``identifier``
                                       element or a conditional reference
                                       (``Practitioner?identifier=<system>|<value>``)
``code.coding.@token``                 a Coding as a FHIR token ``<system>|<code>``
``component.@component``               an Observation component as JSON {code, value, unit,
                                       value_code} (with ``all: true``: blood pressure's two readings)
``a || b``                             the first of the alternatives that has a value
``$``                                  the whole resource as compact JSON (for bronze.fhir_consent)

A path yields every match in document order; a field takes the first, unless the field says
``all: true``: then it holds every distinct match as a JSON array of strings (the codings of a
CodeableConcept, all of them, with their code systems). Objects yield nothing.

Dates follow FHIR, not a strptime format: a ``date`` field takes ``YYYY-MM-DD`` or the date part of
a ``dateTime``/``instant`` as recorded (the local date of the offset the sender gave, which is the
day the event happened where it happened); a ``timestamp`` field takes a ``dateTime`` converted to
UTC (an offset is applied, never cut off; a date-only value is midnight). A date with year or month
precision (``2015``, ``2015-02``), which FHIR allows, cannot place an event in a day: it is
quarantined under ``fhir_date_precision`` (a hub rule, documented in the feed guides).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import orjson
import pyarrow as pa
from pydantic import ValidationError

from jobs.ingest.formats.base import Chunk, FileRejected, RecordIssue
from jobs.ingest.formats.decode import decode_text
from jobs.ingest.formats.lines import split_lines

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec, FieldSpec

_STEP = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:\((?P<key>[^=()]+)=(?P<val>[^()]*)\))?(?:\[(?P<idx>\d+)\])?$")
_FN = re.compile(r"^@(?P<fn>resolve|ref_id|identifier|token|component)(?:\((?P<arg>[^()]*)\))?$")
# FHIR date / dateTime / instant (http://hl7.org/fhir/R4/datatypes.html#dateTime).
_FHIR_DATE = re.compile(
    r"^(?P<y>[0-9]{4})(?:-(?P<m>0[1-9]|1[0-2])(?:-(?P<d>0[1-9]|[12][0-9]|3[01])"
    r"(?:T(?P<t>[01][0-9]|2[0-3]):(?P<mi>[0-5][0-9]):(?P<s>[0-5][0-9]|60)(?:\.[0-9]+)?"
    r"(?P<tz>Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00))?)?)?$")
# The resource types a reference may be resolved to inside one submission.
RESOLVABLE = ("Patient",)


@dataclass
class Ctx:
    """What a path needs beyond the resource: the submission's other resources, and what failed."""

    root: dict[str, Any]
    index: Mapping[str, dict[str, Any]]
    unresolved: list[str] = field(default_factory=list)


Getter = Callable[[Any, Ctx], list[Any]]


def _split_top(src: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not inside parentheses (filter values are URLs)."""
    out: list[str] = []
    cur: list[str] = []
    depth = i = 0
    while i < len(src):
        ch = src[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0 and src.startswith(sep, i):
            out.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def _items(v: Any) -> list[Any]:  # noqa: ANN401 - JSON
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def _resolve(ref: Any, ctx: Ctx) -> list[Any]:  # noqa: ANN401 - JSON
    if not isinstance(ref, dict):
        return []
    target = ref.get("reference")
    if not isinstance(target, str) or not target:
        return []
    if target.startswith("#"):
        found = [c for c in _items(ctx.root.get("contained")) if isinstance(c, dict) and c.get("id") == target[1:]]
    else:
        key = _literal_key(target)
        found = [ctx.index[key]] if key and key in ctx.index else []
    if not found:
        ctx.unresolved.append(target.split("?")[0].split("/")[0] if not target.startswith("#") else "contained")
    return found


def _literal_key(target: str) -> str | None:
    """``Type/id`` of a literal reference (relative, absolute or ``urn:uuid:``), else None."""
    if "?" in target:
        return None
    if target.startswith("urn:uuid:"):
        return "urn:uuid:" + target[9:]
    parts = [p for p in target.split("/") if p]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return f"{parts[-2]}/{parts[-1]}" if len(parts) >= 2 else None


def _ref_id(ref: Any, rtype: str | None = None) -> list[Any]:  # noqa: ANN401 - JSON
    """The id of a literal reference (of type ``rtype`` when given; a ``urn:uuid:`` reference has no type)."""
    target = ref.get("reference") if isinstance(ref, dict) else None
    key = _literal_key(target) if isinstance(target, str) else None
    if not key:
        return []
    if key.startswith("urn:uuid:"):
        return [key[9:]]
    kind, _, rid = key.partition("/")
    return [rid] if rtype is None or kind == rtype else []


def _identifier(ref: Any, system: str) -> list[Any]:  # noqa: ANN401 - JSON
    """A Reference's identifier of ``system``: ``identifier`` or a conditional reference."""
    if not isinstance(ref, dict):
        return []
    ident = ref.get("identifier")
    if isinstance(ident, dict) and ident.get("system") == system and ident.get("value") is not None:
        return [ident["value"]]
    target = ref.get("reference")
    if isinstance(target, str) and "?" in target:
        for param in target.split("?", 1)[1].split("&"):
            name, _, value = param.partition("=")
            if name == "identifier":
                sys_, bar, val = unquote(value).partition("|")
                if bar and sys_ == system and val:
                    return [val]
    return []


def _token(coding: Any) -> list[Any]:  # noqa: ANN401 - JSON
    if not isinstance(coding, dict) or not isinstance(coding.get("code"), str) or not coding["code"].strip():
        return []
    return [f"{coding.get('system') or ''}|{coding['code'].strip()}"]


def _component(comp: Any) -> list[Any]:  # noqa: ANN401 - JSON
    """An Observation component as compact JSON ``{code, value, unit, value_code}`` (codes as tokens)."""
    if not isinstance(comp, dict):
        return []
    codings = [t for c in _items((comp.get("code") or {}).get("coding")) for t in _token(c)]
    raw_qty = comp.get("valueQuantity")
    qty: dict[str, Any] = raw_qty if isinstance(raw_qty, dict) else {}
    value = qty.get("value", comp.get("valueInteger"))
    value_codes = [t for c in _items((comp.get("valueCodeableConcept") or {}).get("coding")) for t in _token(c)]
    if not codings:
        return []
    part = {"code": codings[0], "value": value if isinstance(value, int | float) and not isinstance(value, bool)
            else None, "unit": qty.get("code") or qty.get("unit"), "value_code": value_codes[0] if value_codes else None}
    return [orjson.dumps(part).decode()]


def compile_path(src: str) -> Getter:
    """A function from a resource (dict) and its context to every value at ``src``, in order."""
    src = src.strip()
    if src == "$":
        return lambda res, ctx: [orjson.dumps(res, option=orjson.OPT_SORT_KEYS).decode()]
    alternatives = [a.strip() for a in _split_top(src, "||")]
    if len(alternatives) > 1:
        getters = [compile_path(a) for a in alternatives]

        def first_of(res: Any, ctx: Ctx) -> list[Any]:  # noqa: ANN401 - JSON
            for g in getters:
                vals = [v for v in g(res, ctx) if _scalar(v) is not None]
                if vals:
                    return vals
            return []

        return first_of
    steps: list[Callable[[list[Any], Ctx], list[Any]]] = []
    for part in _split_top(src, "."):
        fn = _FN.match(part)
        if fn:
            steps.append(_fn_step(fn["fn"], fn["arg"], src))
            continue
        m = _STEP.match(part)
        if not m:
            raise ValueError(f"{src!r}: step {part!r} is not name, name[i], name(path=value) or an @ function "
                             "(@resolve, @ref_id, @identifier(system), @token, @component)")
        steps.append(_name_step(m["name"], compile_path(m["key"]) if m["key"] else None, m["val"],
                                int(m["idx"]) if m["idx"] is not None else None))

    def get(res: Any, ctx: Ctx) -> list[Any]:  # noqa: ANN401 - JSON
        cur = [res]
        for step in steps:
            cur = step(cur, ctx)
            if not cur:
                return []
        return cur

    return get


def _name_step(name: str, key: Getter | None, val: str | None,
               idx: int | None) -> Callable[[list[Any], Ctx], list[Any]]:
    def step(values: list[Any], ctx: Ctx) -> list[Any]:
        out: list[Any] = []
        for v in values:
            if not isinstance(v, dict):
                continue
            items = _items(v.get(name))
            if key is not None:
                items = [it for it in items if _scalar(next(iter(key(it, ctx)), None)) == val]
            if idx is not None:
                items = items[idx: idx + 1]
            out.extend(items)
        return out

    return step


def _fn_step(fn: str, arg: str | None, src: str) -> Callable[[list[Any], Ctx], list[Any]]:
    if fn == "identifier" and not arg:
        raise ValueError(f"{src!r}: @identifier needs the identifier system, e.g. @identifier(http://hl7.org/fhir/sid/us-npi)")

    def step(values: list[Any], ctx: Ctx) -> list[Any]:
        out: list[Any] = []
        for v in values:
            if fn == "resolve":
                out.extend(_resolve(v, ctx))
            elif fn == "ref_id":
                out.extend(_ref_id(v, arg))
            elif fn == "identifier":
                out.extend(_identifier(v, str(arg)))
            elif fn == "component":
                out.extend(_component(v))
            else:
                out.extend(_token(v))
        return out

    return step


def _scalar(v: Any) -> str | None:  # noqa: ANN401 - JSON
    if isinstance(v, list):
        v = v[0] if v else None
    if v is None or isinstance(v, dict):
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        s = repr(v)
        return format(Decimal(s), "f") if "e" in s or "E" in s else s
    s = str(v).strip()
    return s or None


def fhir_date(value: str, kind: str) -> tuple[str | None, str | None]:
    """(normalised value, problem) of a FHIR date/dateTime/instant for a ``date`` or ``timestamp`` field.

    ``date``: the recorded local date (``YYYY-MM-DD``). ``timestamp``: UTC ``YYYY-MM-DDTHH:MM:SS``
    (a date-only value is midnight; a time without an offset is taken as UTC). Values that are not
    FHIR dates are returned unchanged for the field checks to report.
    """
    m = _FHIR_DATE.match(value)
    if not m:
        return value, None
    if m["d"] is None:
        return None, "year or month precision only"
    day = f"{m['y']}-{m['m']}-{m['d']}"
    if kind == "date":
        return day, None
    if m["t"] is None:
        return f"{day}T00:00:00", None
    sec = min(int(m["s"]), 59)
    stamp = f"{day}T{m['t']}:{m['mi']}:{sec:02d}"
    tz = m["tz"]
    if tz and tz != "Z":
        try:
            dt = datetime.fromisoformat(stamp + tz).astimezone(UTC)
        except ValueError:
            return value, None
        stamp = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return stamp, None


def check_spec(spec: FeedSpec) -> list[tuple[str, str]]:
    problems = []
    rtype = spec.format.get("resource_type")
    take_only = spec.format.get("take_only") or {}
    if not isinstance(take_only, dict) or not all(isinstance(v, list) and v for v in take_only.values()):
        problems.append(("format.take_only", "maps an element path to the list of values the hub takes"))
    else:
        for element in take_only:
            try:
                compile_path(str(element))
            except ValueError as exc:
                problems.append((f"format.take_only.{element}", str(exc)))
    if not rtype:
        problems.append(("format.resource_type", "names the FHIR resource type of the feed (e.g. Patient)"))
    else:
        from fhir.resources.R4B import get_fhir_model_class

        try:
            get_fhir_model_class(str(rtype))
        except (KeyError, ValueError):
            problems.append(("format.resource_type", f"{rtype!r} is not an R4 resource type"))
    companions = spec.format.get("companions")
    if companions is not None and (not isinstance(companions, list) or not all(isinstance(c, str) for c in companions)):
        problems.append(("format.companions", "a list of file name patterns, e.g. [\"Patient*.ndjson\"]"))
    for i, f in enumerate(spec.fields):
        try:
            compile_path(str(f.source))
        except ValueError as exc:
            problems.append((f"fields[{i}].source", str(exc)))
        if f.all_matches and f.type != "string":
            problems.append((f"fields[{i}].all", "only a string field can hold every match (a JSON array)"))
    return problems


def _one_invalid(e: Any, rtype: str) -> str:  # noqa: ANN401 - a pydantic error dict
    """One validation error as element path and kind; a resource-level error (no path, e.g. a choice
    element like occurrence[x] missing) keeps the model's sentence, which names elements, not values."""
    loc = ".".join(str(x) for x in e.get("loc", ()) if x != "__root__")
    if loc:
        return f"{rtype}.{loc} ({e.get('type')})"
    msg = re.sub(r"\s+", " ", str(e.get("msg", ""))).strip()
    msg = re.sub(r"^Value error, ", "", msg)[:200]
    return f"{rtype}: {msg}" if msg else f"{rtype} ({e.get('type')})"


def _invalid_message(exc: ValidationError, rtype: str) -> str:
    errs = exc.errors()
    parts = sorted({_one_invalid(e, rtype) for e in errs})
    more = f" and {len(parts) - 3} more" if len(parts) > 3 else ""
    return "invalid elements: " + ", ".join(parts[:3]) + more


def companion_index(companions: Mapping[str, bytes] | None, types: tuple[str, ...] = RESOLVABLE) -> dict[str, Any]:
    """``Type/id`` (and ``urn:uuid:id``) -> resource, for the resources of ``types`` in the other
    NDJSON files of the submission. Lines that are not such resources are skipped here: each
    file is checked on its own when it is processed."""
    index: dict[str, Any] = {}
    wanted = {t.encode() for t in types}
    for data in (companions or {}).values():
        for line in data.splitlines():
            if not line.strip() or not any(b'"' + t + b'"' in line for t in wanted):
                continue
            try:
                res = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(res, dict) and res.get("resourceType") in types and isinstance(res.get("id"), str):
                index[f"{res['resourceType']}/{res['id']}"] = res
                index[f"urn:uuid:{res['id']}"] = res
    return index


@dataclass(frozen=True)
class _Field:
    name: str
    get: Getter
    kind: str          # date | timestamp | other
    all: bool
    required: bool
    element: str       # the FHIR element path, for messages


def _fields(spec: FeedSpec, rtype: str) -> list[_Field]:
    def kind(f: FieldSpec) -> str:
        return f.type if f.type in ("date", "timestamp") and str(f.source).strip() != "$" else "other"

    return [_Field(f.name, compile_path(str(f.source)), kind(f), f.all_matches, f.required,
                   f"{rtype}.{str(f.source).split('||')[0].strip()}") for f in spec.fields]


_SHOW = [(re.compile(r"\.@resolve\."), " -> the referenced resource's "), (re.compile(r"\.@identifier\(([^()]*)\)"), r".identifier (system \1)"),
         (re.compile(r"\.@ref_id(\([^()]*\))?"), ".reference"), (re.compile(r"\.@(token|component)"), "")]


def field_elements(spec: FeedSpec) -> dict[str, str]:
    """Each field's FHIR element as a sender reads it (``Immunization.occurrenceDateTime``), for receipts."""
    rtype = str(spec.format.get("resource_type"))
    out = {}
    for f in spec.fields:
        src = str(f.source).strip()
        if src == "$":
            continue
        shown = []
        for alt in _split_top(src, "||"):
            alt = alt.strip()
            for pat, rep in _SHOW:
                alt = pat.sub(rep, alt)
            shown.append(f"{rtype}.{alt}")
        out[f.name] = " or ".join(shown)
    return out


def parse(data: bytes, spec: FeedSpec, *, file_name: str = "", chunk_rows: int = 100_000,
          companions: Mapping[str, bytes] | None = None) -> Iterator[Chunk]:
    """Parse an NDJSON file of one resource type into chunks (one record per line).

    ``companions``: the other NDJSON files of the same submission (a Bulk Data export), by file
    name; references to their Patient resources are resolved.
    """
    fmt = spec.format
    text, encoding = decode_text(data, fmt.get("encodings", ["utf-8"]))
    notes = [] if encoding == "utf-8" else [f"decoded as {encoding}"]
    rtype = str(fmt.get("resource_type"))
    model = None
    if fmt.get("validate", True):
        from fhir.resources.R4B import get_fhir_model_class

        model = get_fhir_model_class(rtype)
    fields = _fields(spec, rtype)
    take_only = [(element, compile_path(element), {None if v is None else str(v) for v in values})
                 for element, values in (fmt.get("take_only") or {}).items()]
    index = companion_index(companions)
    lines = split_lines(text.lstrip("\ufeff"))
    if not any(line.strip() for line in lines):
        raise FileRejected("file_empty", "the file is empty")
    cols: dict[str, list[str | None]] = {f.name: [] for f in fields}
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
        excluded = _excluded(res, take_only, rtype, index)
        if excluded:
            issues.append(RecordIssue(row, "fhir_not_taken", "", excluded, line))
            continue
        values, issue = _extract(res, fields, index, row, line)
        if issue is not None:
            issues.append(issue)
            continue
        for f in fields:
            cols[f.name].append(values[f.name])
        rows.append(row)
        raw.append(line)
        if len(rows) + len(issues) >= chunk_rows:
            yield Chunk({k: pa.array(v, pa.string()) for k, v in cols.items()}, rows, raw, issues, notes)
            cols, rows, raw, issues, notes = {f.name: [] for f in fields}, [], [], [], []
    yield Chunk({k: pa.array(v, pa.string()) for k, v in cols.items()}, rows, raw, issues, notes)


def _excluded(res: dict[str, Any], take_only: list[tuple[str, Getter, set[str | None]]], rtype: str,
              index: Mapping[str, Any]) -> str | None:
    """Why the hub does not take this resource (``format.take_only``), or None."""
    for element, get, values in take_only:
        found = [s for s in map(_scalar, get(res, Ctx(res, index))) if s is not None]
        v = found[0] if found else None
        if v not in values:
            shown = v if v is not None and re.fullmatch(r"[a-z-]{1,40}", v) else "absent"
            taken = " / ".join(sorted("(absent)" if x is None else x for x in values))
            return (f"{rtype}.{element} is {shown}: the hub takes only {taken} "
                    "(hub rule; nothing to fix if the record is right)")
    return None


def _extract(res: dict[str, Any], fields: list[_Field], index: Mapping[str, Any], row: int,
             line: str) -> tuple[dict[str, str | None], RecordIssue | None]:
    """One resource's field values, or the one issue that quarantines it."""
    ctx = Ctx(res, index)
    out: dict[str, str | None] = {}
    for f in fields:
        ctx.unresolved.clear()
        try:
            found = f.get(res, ctx)
        except (TypeError, AttributeError, IndexError, RecursionError):
            found = []
        if f.all:
            distinct = list(dict.fromkeys(s for s in map(_scalar, found) if s is not None))
            out[f.name] = orjson.dumps(distinct).decode() if distinct else None
            continue
        v = _scalar(found[0]) if found else None
        if v is None and f.required and ctx.unresolved:
            kind = ctx.unresolved[0]
            what = "a contained resource that is not there" if kind == "contained" else \
                f"a {kind} that is neither contained nor in this submission"
            return out, RecordIssue(row, "fhir_unresolved_reference", f.name,
                                    f"{f.element}: the reference points at {what}; send that resource in the "
                                    "same export (its own NDJSON file) or as a contained resource", line)
        if v is not None and f.kind != "other":
            v, problem = fhir_date(v, f.kind)
            if problem:
                return out, RecordIssue(row, "fhir_date_precision", f.name,
                                        f"{f.element}: a date with {problem}; the hub needs the day "
                                        "(YYYY-MM-DD, or a dateTime)", line)
        out[f.name] = v
    return out, None
