"""Row validation, vectorised with Arrow compute: every rule runs over a whole chunk at once.

Each failed check yields (row index, rule id, field, message); messages describe what was
expected and never echo the submitted value. Rows with an ``error`` are quarantined; ``warning``
findings are reported on the receipt and the row is accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from phmx.feedspec import FeedSpec, FieldSpec, load_valueset
from phmx.spreadsheet import FORMULA_PATTERN

if TYPE_CHECKING:
    from jobs.ingest.formats import Chunk

# Type -> (regex, human description). Values outside these shapes fail rule "format".
TYPE_PATTERNS: dict[str, tuple[str, str]] = {
    "integer": (r"^-?[0-9]+$", "a whole number"),
    "decimal": (r"^-?[0-9]+(\.[0-9]+)?$", "a number like 12 or 12.5"),
    "cin": (r"^9[0-9]{7}[A-Z]$", "a Medi-Cal CIN: the digit 9, seven digits, then a capital letter"),
    "ssn": (r"^[0-9]{3}-?[0-9]{2}-?[0-9]{4}$", "nine digits, optionally as 123-45-6789"),
    "zip": (r"^[0-9]{5}(-?[0-9]{4})?$", "a 5-digit ZIP code (ZIP+4 allowed)"),
    "phone": (r"^\(?[0-9]{3}\)?[-. ]?[0-9]{3}[-. ]?[0-9]{4}$", "a 10-digit phone number"),
    "npi": (r"^[0-9]{10}$", "a 10-digit NPI"),
    "email": (r"^[^@\s]+@[^@\s]+\.[^@\s]+$", "an email address"),
}
_FMT_HUMAN = {"%Y%m%d": "CCYYMMDD", "%Y-%m-%d": "CCYY-MM-DD", "%m/%d/%Y": "MM/DD/CCYY",
              "%Y-%m-%dT%H:%M:%S": "CCYY-MM-DDThh:mm:ss"}
_ISO = {"date": "%Y-%m-%d", "timestamp": "%Y-%m-%dT%H:%M:%S"}


@dataclass
class Finding:
    """One failed check on one row (index into the chunk)."""

    index: int
    rule_id: str
    field: str
    message: str
    severity: str = "error"


@dataclass
class ValidatedChunk:
    """A chunk split into accepted rows (normalised columns) and findings."""

    accepted: pa.Table
    accepted_rows: np.ndarray
    findings: list[Finding] = field(default_factory=list)


def _indices(mask: pa.ChunkedArray | pa.Array) -> np.ndarray:
    arr = mask.to_numpy(zero_copy_only=False) if hasattr(mask, "to_numpy") else np.asarray(mask)
    return np.flatnonzero(np.asarray(arr, dtype=bool))


def _add(findings: list[Finding], mask: pa.Array, rule: str, f: FieldSpec | None, msg: str,
         severity: str = "error") -> None:
    mask = pc.fill_null(mask, False)
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    if mask.true_count == 0:  # the usual case: skip the bit unpacking
        return
    for i in _indices(mask):
        findings.append(Finding(int(i), rule, f.name if f else "", msg, severity))


_DIRECTIVE_WIDTH = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2, "y": 2}


def compact_width(fmt: str) -> int | None:
    """The exact length of dates in a format made only of fixed-width directives (``%Y%m%d``: 8)."""
    parts = re.findall(r"%(.)|(.)", fmt)
    if any(lit for _, lit in parts) or any(d not in _DIRECTIVE_WIDTH for d, _ in parts):
        return None
    return sum(_DIRECTIVE_WIDTH[d] for d, _ in parts)


def _real_dates(text: pa.Array, parsed: pa.Array, fmt: str) -> pa.Array:
    """Whether each parsed value is the calendar date its text says (Arrow's strptime rolls
    2025-02-30 over to 2025-03-02 and 2025-04-31 to 2025-05-01: those are refused, not moved).

    A value printed back in its own format must give the text sent. The few that do not (an
    impossible day, or a legal unpadded ``1/5/2025``) are settled by Python's strptime, which
    knows month lengths and leap years.
    """
    if len(text) == 0:
        return pa.array([], pa.bool_())
    same = pc.fill_null(pc.equal(pc.strftime(parsed, format=fmt), text), False)
    if same.true_count == len(text) - parsed.null_count:
        return pa.array(np.ones(len(text), dtype=bool))
    ok = np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool).copy()
    valid = np.asarray(pc.is_valid(parsed).to_numpy(zero_copy_only=False), dtype=bool)
    values = text.to_pylist()
    for i in np.flatnonzero(valid & ~ok).tolist():
        try:
            datetime.strptime(values[i], fmt)  # noqa: DTZ007 - calendar check only, no zone involved
            ok[i] = True
        except ValueError:
            ok[i] = False
    ok[~valid] = False
    return pa.array(ok)


def _check_field(f: FieldSpec, arr: pa.Array, columns: dict[str, pa.Array], findings: list[Finding]) -> pa.Array:
    """Check one field; return its normalised array (dates to ISO text)."""
    present = pc.is_valid(arr)
    sev = f.severity
    if f.required:
        _add(findings, pc.invert(present), "required", f, f"{f.name} is required", "error")
    if f.required_if:
        for other, values in f.required_if.items():
            cond = pc.is_in(columns[other], value_set=pa.array([str(v) for v in values]))
            _add(findings, pc.and_(cond, pc.invert(present)), "required", f,
                 f"{f.name} is required when {other} is {'/'.join(map(str, values))}", "error")
    allowed = pc.is_in(arr, value_set=pa.array(list(f.allow), pa.string())) if f.allow else None

    def failing(mask: pa.Array) -> pa.Array:
        mask = pc.and_(present, mask)
        return pc.and_(mask, pc.invert(allowed)) if allowed is not None else mask

    if f.max_length:
        _add(findings, failing(pc.greater(pc.utf8_length(arr), f.max_length)), "max_length", f,
             f"{f.name} is longer than {f.max_length} characters", sev)
    if f.type in TYPE_PATTERNS:
        pattern, human = TYPE_PATTERNS[f.type]
        rule = "cin_shape" if f.type == "cin" else "format"
        _add(findings, failing(pc.invert(pc.match_substring_regex(arr, pattern))), rule, f,
             f"{f.name} must be {human}", sev)
    if f.type == "string":
        # Free text only: typed fields have shapes no formula fits (see phmx.spreadsheet).
        _add(findings, failing(pc.match_substring_regex(arr, FORMULA_PATTERN)), "formula_text", f,
             f"{f.name} starts like a spreadsheet formula (=, +, -, @ followed by text)", "error")
    if f.pattern:
        _add(findings, failing(pc.invert(pc.match_substring_regex(arr, f.pattern))), "format", f,
             f"{f.name} does not match the required pattern {f.pattern}", sev)
    if f.valueset:
        vs = load_valueset(f.valueset)
        member = pc.is_in(arr, value_set=pa.array(sorted(vs.codes), pa.string()))
        for p in vs.prefixes:
            member = pc.or_(member, pc.starts_with(arr, p))
        for p in vs.patterns:
            member = pc.or_(member, pc.match_substring_regex(arr, p))
        _add(findings, failing(pc.invert(member)), "code_set", f,
             f"{f.name} is not a code in value set {vs.name} (version {vs.version})", sev)
    if f.type in ("date", "timestamp"):
        fmt = f.format or _ISO[f.type]
        # Parse each distinct value once: a month's file repeats the same few hundred dates.
        enc = pc.dictionary_encode(arr)
        parsed_d = pc.strptime(enc.dictionary, format=fmt, unit="s", error_is_null=True)
        years_d = pc.year(parsed_d)
        out_of_range_d = pc.or_(pc.less(years_d, 1900), pc.greater(years_d, 2100))
        iso_d = pc.strftime(parsed_d, format=_ISO[f.type])
        ok_d = pc.is_valid(parsed_d)
        width = compact_width(fmt)
        if width:  # CCYYMMDD: a digit short is not a date (strptime would read 1978103 as 1978-10-03)
            ok_d = pc.and_(ok_d, pc.equal(pc.utf8_length(enc.dictionary), width))
        ok_d = pc.and_(ok_d, _real_dates(enc.dictionary, parsed_d, fmt))
        parsed_d = pc.if_else(ok_d, parsed_d, pa.scalar(None, parsed_d.type))
        iso_d = pc.strftime(parsed_d, format=_ISO[f.type])
        parsed_ok = pc.take(ok_d, enc.indices)
        bad = pc.and_(present, pc.invert(pc.fill_null(parsed_ok, False)))
        if allowed is not None:
            bad = pc.and_(bad, pc.invert(allowed))
        _add(findings, bad, "format", f, f"{f.name} must be a valid date as {_FMT_HUMAN.get(fmt, fmt)}", sev)
        _add(findings, pc.take(out_of_range_d, enc.indices), "date_range", f, f"{f.name} is outside 1900-2100", sev)
        # Unparseable values only survive as warnings or allowed codes: keep them as sent.
        return pc.coalesce(pc.take(iso_d, enc.indices), arr)
    return arr




def _as_array(values: list[str | None] | pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values if values.type == pa.string() else values.cast(pa.string())
    return pa.array(values, pa.string())


def _blank_to_null(arr: pa.Array) -> pa.Array:
    from jobs.ingest.formats.arrowtext import blank_to_null

    return blank_to_null(arr)


def apply_transforms(f: FieldSpec, arr: pa.Array) -> pa.Array:
    """The spec's declarative clean-up of one field (``take``, ``strip_prefix``, ``map``), vectorised."""
    if not f.has_transform:
        return arr
    if f.strip_prefix:
        arr = pc.replace_substring_regex(arr, "^" + re.escape(f.strip_prefix), "")
    if f.take:
        arr = pc.utf8_slice_codeunits(arr, 0, f.take)
    if f.value_map:
        keys = pa.array(list(f.value_map), pa.string())
        mapped = pc.take(pa.array(list(f.value_map.values()), pa.string()), pc.index_in(arr, value_set=keys))
        arr = pc.coalesce(mapped, arr)
    return _blank_to_null(arr)


def _field_values(f: FieldSpec, chunk: Chunk, n: int) -> pa.Array:
    """A field's text as read, or its ``constant`` for every record (one place for every format)."""
    if f.constant is not None:
        return pa.repeat(pa.scalar(f.constant, pa.string()), n)
    return _as_array(chunk.columns[f.name])


class KeyTracker:
    """Natural keys seen so far in one file, to flag a record repeating an earlier one (Arrow, no Python loop)."""

    def __init__(self) -> None:
        self._seen: dict[str, list[pa.Array]] = {}

    def duplicates(self, keys: pa.Array, rule_id: str = "") -> list[int]:
        """Indices whose key appeared earlier in this chunk or in an earlier chunk of the file."""
        n = len(keys)
        dup = np.zeros(n, dtype=bool)
        previous = self._seen.setdefault(rule_id, [])
        if previous:
            prev = pa.concat_arrays(previous) if len(previous) > 1 else previous[0]
            dup |= np.asarray(pc.is_in(keys, value_set=prev))
            previous[:] = [prev]
        if pc.count_distinct(keys).as_py() < n:
            ids = np.asarray(pc.index_in(keys, value_set=pc.unique(keys)))
            _, first = np.unique(ids, return_index=True)
            repeat = np.ones(n, dtype=bool)
            repeat[first] = False
            dup |= repeat
        previous.append(keys)
        return np.flatnonzero(dup).tolist()


def _duplicates(keys: list[str], seen_keys: set[str]) -> list[int]:
    """Indices whose key was already seen in this file (earlier in the chunk or an earlier chunk)."""
    unique = set(keys)
    if len(unique) == len(keys) and seen_keys.isdisjoint(unique):
        seen_keys |= unique
        return []
    out = []
    for i, k in enumerate(keys):
        if k in seen_keys:
            out.append(i)
        else:
            seen_keys.add(k)
    return out


def validate_chunk(chunk: Chunk, spec: FeedSpec, seen_keys: KeyTracker | set[str]) -> ValidatedChunk:
    """Run field checks and row rules over one chunk; ``seen_keys`` carries duplicates across chunks
    (a :class:`KeyTracker`, or a plain set of key strings)."""
    n = len(chunk)
    findings: list[Finding] = []
    columns = {f.name: apply_transforms(f, _field_values(f, chunk, n)) for f in spec.fields}
    normalised: dict[str, pa.Array] = {}
    for f in spec.fields:
        normalised[f.name] = _check_field(f, columns[f.name], columns, findings)
    for rule in spec.rules:
        if rule.check == "date_order":
            a, b = (normalised[x] for x in rule.fields)
            _add(findings, pc.and_(pc.and_(pc.is_valid(a), pc.is_valid(b)), pc.greater(a, b)), rule.id, None,
                 rule.message or f"{rule.fields[0]} is after {rule.fields[1]}", rule.severity)
        elif rule.check == "one_of_required":
            anyp = pc.is_valid(normalised[rule.fields[0]])
            for x in rule.fields[1:]:
                anyp = pc.or_(anyp, pc.is_valid(normalised[x]))
            _add(findings, pc.invert(anyp), rule.id, None,
                 rule.message or f"one of {', '.join(rule.fields)} is required", rule.severity)
        elif rule.check == "duplicate_key" and n:
            # Only complete keys can repeat: a row missing a key field is reported by that field's own
            # check (required), never as a duplicate of another row that misses it too.
            complete = pc.is_valid(normalised[rule.fields[0]])
            for x in rule.fields[1:]:
                complete = pc.and_(complete, pc.is_valid(normalised[x]))
            at = _indices(complete)
            joined = pc.binary_join_element_wise(*[pc.take(normalised[x], pa.array(at, pa.int64()))
                                                   for x in rule.fields], "\x1f")
            if isinstance(seen_keys, KeyTracker):
                dups = [int(at[j]) for j in seen_keys.duplicates(joined, rule.id)]
            else:
                dups = [int(at[j]) for j in _duplicates(joined.to_pylist(), seen_keys)]
            for i in dups:
                findings.append(Finding(i, rule.id, "", rule.message or "duplicate record in this file",
                                        rule.severity))
        # within_coverage is a cross-file check: jobs.ingest.coverage runs it after bronze is written.
    bad = np.zeros(n, dtype=bool)
    for fd in findings:
        if fd.severity == "error":
            bad[fd.index] = True
    table = pa.table(normalised) if normalised else pa.table({})
    if not bad.any():
        return ValidatedChunk(accepted=table, accepted_rows=np.arange(n), findings=findings)
    keep = np.flatnonzero(~bad)
    accepted = table.take(pa.array(keep, pa.int64())) if n else table
    return ValidatedChunk(accepted=accepted, accepted_rows=keep, findings=findings)
