"""Property tests for intake of the text formats (every delimited and fixed-width feed spec).

1. Arbitrary bytes never make intake raise: every file gets a verdict and every record it holds
   ends accepted or quarantined with a rule (row conservation).
2. Arbitrary rows that are valid by the feed's schema (each value drawn from what its field
   accepts: its type, pattern, value set, length, date format) are never quarantined by a field
   rule; a row is only ever refused for a rule across fields or rows (date order, duplicate key),
   and then with its reason.

Both run process_file, the exact path of ``phmx validate`` and of intake (no engine).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.ingest import join
from jobs.ingest.formats.fixed_width import layout_spans
from jobs.ingest.landing import LandedFile
from jobs.ingest.process import process_file
from jobs.ingest.rules import RULES
from jobs.ingest.specs import load_specs
from jobs.ingest.validate import TYPE_PATTERNS
from phmx.feedspec import FeedSpec, FieldSpec, load_valueset
from phmx.spreadsheet import looks_like_formula
from tests.ingest.helpers import RECEIVED, assert_conserved

SPECS = load_specs()
TEXT_FEEDS = sorted(k for k, s in SPECS.items() if s.format_type in ("delimited", "fixed_width"))
FIELD_RULES = {"required", "format", "code_set", "max_length", "cin_shape", "formula_text", "date_range",
               "field_size", "column_count", "quoting", "record_type", "record_length"}
SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ASCII = st.characters(min_codepoint=32, max_codepoint=126)
TEXT = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"))


def _submitter(spec: FeedSpec) -> str:
    for candidate in ("mcp_bluecoast", "county_06001_bh", "county_06019_bh", "cair2", "dental_delta",
                      "registry_synthea", "pharmacy_x", "ecm_harbor"):
        if spec.accepts_submitter(candidate):
            return candidate
    pytest.skip(f"no sample submitter for {spec.feed}")
    return ""


def _run(spec: FeedSpec, data: bytes, companions: dict[str, bytes] | None = None):
    sub = _submitter(spec)
    lf = LandedFile(uri="f", relpath=f"{sub}/{spec.feed}/2025-01/f.txt", submitter=sub, feed=spec.feed,
                    period="2025-01", name="f.txt", size=len(data), layout_ok=True)
    return process_file(lf, data, SPECS, received_at=RECEIVED, companions=companions)


def _check_verdict(out, spec: FeedSpec) -> None:
    assert_conserved(out)
    known = set(RULES) | {r.id for r in spec.rules}
    assert all(q["rule_id"] in known for q in out.quarantine), {q["rule_id"] for q in out.quarantine} - known
    assert out.receipt.status in ("accepted", "accepted_with_errors", "rejected")


@pytest.mark.parametrize("feed", TEXT_FEEDS)
@SETTINGS
@given(data=st.binary(max_size=3000), companion=st.binary(max_size=500))
def test_arbitrary_bytes_never_raise_and_every_record_is_accounted_for(feed, data, companion):
    spec = SPECS[feed]
    out = _run(spec, data, {"patients.csv": companion} if join.joins(spec) else None)
    _check_verdict(out, spec)


# ---- valid-by-schema values -------------------------------------------------------------------
def _fits(f: FieldSpec, width: int | None) -> int:
    limits = [x for x in (f.max_length, width) if x]
    return min(limits) if limits else 24


def value_of(f: FieldSpec, width: int | None = None, *, ascii_only: bool = False) -> st.SearchStrategy[str]:
    """Values a field accepts as submitted (before its ``map``), fitting ``width`` characters
    (fixed-width records count characters by position, so their text is ASCII)."""
    n = _fits(f, width)
    if f.type in ("date", "timestamp"):
        fmt = str(f.format)
        if f.type == "date":
            return st.dates(date(1900, 1, 1), date(2100, 12, 31)).map(lambda d: d.strftime(fmt))
        return st.datetimes(datetime(1900, 1, 1), datetime(2100, 12, 31)).map(lambda d: d.strftime(fmt))
    if f.valueset:
        vs = load_valueset(f.valueset)
        accepted = sorted(c for c in vs.codes | set(f.value_map) if len(c) <= n
                          and (not f.value_map or c in f.value_map or c in vs.codes))
        return st.sampled_from(accepted)
    pattern = f.pattern or (TYPE_PATTERNS[f.type][0] if f.type in TYPE_PATTERNS else None)
    if pattern:
        return st.from_regex(pattern, fullmatch=True, alphabet=ASCII).filter(
            lambda v: len(v) <= n and v == v.strip() and not looks_like_formula(v))
    if f.type in ("county_fips",):
        return st.sampled_from(["06001", "06019"])
    return st.text(ASCII if ascii_only else TEXT, min_size=1, max_size=n).filter(
        lambda v: v == v.strip() and bool(v) and not looks_like_formula(v) and "\ufeff" not in v)


def _row_values(spec: FeedSpec, width_of: dict[str, int] | None = None) -> st.SearchStrategy[dict[str, str]]:
    fields = {f.name: value_of(f, (width_of or {}).get(f.name)) for f in spec.fields
              if f.constant is None and f.name not in (width_of or {}).get("_skip", ())}
    return st.fixed_dictionaries(fields)


def _delimited_file(spec: FeedSpec, rows: list[dict[str, str]]) -> tuple[bytes, dict[str, bytes] | None]:
    """The rows as the feed's delimited file (and its companion files for a joined feed)."""
    delim = str(spec.format.get("delimiter", ","))
    joins = join.joins(spec)
    header: list[str] = []
    for f in spec.fields:
        header += [s for s in f.sources if s.split(".", 1)[0] not in joins or "." not in s]
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator="\n")
    w.writerow(header)
    companions: dict[str, list[list[str]]] = {}
    for i, row in enumerate(rows):
        cells: dict[str, str] = {}
        for f in spec.fields:
            if f.constant is not None:
                continue
            value = row[f.name]
            parts = value.split(f.separator) if f.is_composite and f.separator else [value]
            if f.is_composite and len(parts) != len(f.sources):
                parts = [f"{value}{k}" for k in range(len(f.sources))]
                row[f.name] = f.separator.join(parts)
            for s, p in zip(f.sources, parts, strict=True):
                cells[s] = p
        for name, j in joins.items():
            key = f"K{i}"
            for k in j["key"]:
                cells[SPECS[spec.feed].field(k).sources[0]] = key
            cols = [*j["companion_key"], *sorted({s.split(".", 1)[1] for f in spec.fields for s in f.sources
                                                  if s.startswith(f"{name}.")})]
            companions.setdefault(name, [cols]).append([key] + [cells.get(f"{name}.{c}", "") for c in cols[1:]])
        w.writerow([cells.get(h, "") for h in header])
    files = None
    if joins:
        files = {}
        for name, table in companions.items() if rows else [(n, [["Id"]]) for n in joins]:
            cb = io.StringIO()
            csv.writer(cb, delimiter=delim, lineterminator="\n").writerows(table)
            files[str(joins[name]["file"]).replace("*", "")] = cb.getvalue().encode()
    return buf.getvalue().encode(), files


def _fixed_records(spec: FeedSpec) -> st.SearchStrategy[list[str]]:
    layouts = spec.format["layouts"]

    def record(rtype: str) -> st.SearchStrategy[str]:
        layout = layouts[rtype]
        spans = {name: layout_spans(p) or [] for name, p in layout["fields"].items()}
        width = {name: sum(n for _, n in ps) for name, ps in spans.items()}
        fields = {f.name: (st.just(rtype) if f.name == "record_type" else value_of(f, width[f.name], ascii_only=True))
                  for f in spec.fields if f.name in spans}

        def build(values: dict[str, str]) -> str:
            line = [" "] * int(layout["length"])
            for name, ps in spans.items():
                text = values[name]
                for start, n in ps:
                    piece, text = text[:n], text[n:]
                    line[start - 1:start - 1 + n] = list(piece.ljust(n))
            return "".join(line)

        return st.fixed_dictionaries(fields).map(build)

    return st.lists(st.sampled_from(sorted(layouts)).flatmap(record), max_size=12)


@pytest.mark.parametrize("feed", TEXT_FEEDS)
@SETTINGS
@given(data=st.data())
def test_rows_valid_by_schema_are_never_refused_by_a_field_rule(feed, data):
    spec = SPECS[feed]
    if spec.format_type == "fixed_width":
        lines = data.draw(_fixed_records(spec))
        body = [str(spec.format["header"]["type"]) + "10202501"] if spec.format.get("header") else []
        body += lines
        if spec.format.get("trailer"):
            t = spec.format["trailer"]
            start, n = t["count"]["start"], t["count"]["length"]
            body.append(str(t["type"]) + " " * (start - 2) + str(len(lines)).zfill(n))
        out = _run(spec, ("\n".join(body) + "\n").encode())
        expected = len(lines)
    else:
        rows = data.draw(st.lists(_row_values(spec), max_size=12))
        raw, companions = _delimited_file(spec, rows)
        out = _run(spec, raw, companions)
        expected = len(rows)
    _check_verdict(out, spec)
    assert out.receipt.rows_landed == expected
    field_level = [(q["row_number"], q["rule_id"], q["field"]) for q in out.quarantine if q["rule_id"] in FIELD_RULES
                   and not (q["rule_id"] == "required" and _required_if(spec, q["field"]))]
    assert field_level == [], field_level


def _required_if(spec: FeedSpec, name: str) -> bool:
    """Fields required only for some record types (a generated S record has no client name)."""
    return bool(name) and spec.field(name).required_if is not None


def test_the_value_generators_cover_every_field_type():
    types = {f.type for feed in TEXT_FEEDS for f in SPECS[feed].fields}
    assert types <= {"string", "integer", "decimal", "date", "timestamp", "code", "cin", "ssn", "zip", "phone",
                     "npi", "county_fips", "email"}
    assert all(re.compile(p) for p, _ in TYPE_PATTERNS.values())
