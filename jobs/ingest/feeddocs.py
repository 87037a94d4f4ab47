"""Submission guides generated from the feed specs: docs/feeds/<feed>.md and .html, and an index.

The spec is the contract; the guide is the spec made readable for county and plan data teams
(where to put the file, the layout, every field with its checks, the rules and how to fix
them, the value sets). ``python -m jobs.ingest.feeddocs`` rewrites docs/feeds/;
``--check`` exits 1 when the committed guides differ from the specs (the test runs it).
Output is deterministic (sorted, no timestamps) so the check is a byte comparison.
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

from markdown_it import MarkdownIt

from jobs.ingest.formats.fixed_width import layout_spans
from jobs.ingest.rules import RULES
from jobs.ingest.specs import load_specs
from jobs.ingest.validate import TYPE_PATTERNS
from phmx.feedspec import FeedSpec, FieldSpec, load_valueset

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs" / "feeds"
MAX_CODES_LISTED = 80
_FORMAT_NAMES = {
    "delimited": "delimited text",
    "fixed_width": "fixed-width records",
    "x12_834": "ASC X12 834 005010X220A1",
    "hl7_vxu": "HL7 v2.5.1 VXU^V04",
    "hl7_adt": "HL7 v2 ADT (A01, A03, A04, A08)",
    "fhir_ndjson": "FHIR R4 NDJSON",
}
_DELIMS = {",": "comma (,)", "|": "pipe (|)", "\t": "tab", ";": "semicolon (;)"}
_SOURCE_HEADING = {
    "delimited": "column",
    "fixed_width": "position",
    "x12_834": "segment path",
    "hl7_vxu": "HL7 field",
    "hl7_adt": "HL7 field",
    "fhir_ndjson": "FHIR path",
}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _code(text: object) -> str:
    t = str(text).replace("|", "\\|")
    return f"`{t}`" if t else ""


def _positions(spec: FeedSpec) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rtype, layout in sorted((spec.format.get("layouts") or {}).items()):
        for name, p in layout.get("fields", {}).items():
            spans = layout_spans(p) or []
            out.setdefault(name, []).append(f"{rtype}: " + " + ".join(f"{a}-{a + n - 1}" for a, n in spans))
    return out


def _source(spec: FeedSpec, f: FieldSpec, positions: dict[str, list[str]]) -> str:
    if spec.format_type == "fixed_width":
        return "<br>".join(positions.get(f.name, ["(not sent)"]))
    if f.constant is not None:
        return f"always {_code(f.constant)} (not in the file)"
    if isinstance(f.source, list | tuple):
        return (" + ".join(_code(s) for s in f.source)
                + (f" joined with {_code(f.separator)}" if f.separator else ""))
    return _code(f.source if f.source is not None else f.name)


def _checks(f: FieldSpec) -> str:
    parts = []
    if f.type in ("date", "timestamp"):
        from jobs.ingest.validate import _FMT_HUMAN

        parts.append(f"{f.type} as {_FMT_HUMAN.get(f.format or '', f.format)}")
    elif f.type in TYPE_PATTERNS:
        parts.append(TYPE_PATTERNS[f.type][1])
    elif f.type not in ("string", "code"):
        parts.append(f.type)
    if f.valueset:
        parts.append(f"value set [{f.valueset}](valuesets.md#{f.valueset})")
    if f.pattern:
        parts.append(f"pattern {_code(f.pattern)}")
    if f.max_length:
        parts.append(f"at most {f.max_length} characters")
    if f.allow:
        parts.append("also allowed: " + ", ".join(_code(a) for a in f.allow))
    if f.value_map:
        parts.append("recoded: " + ", ".join(f"{_code(k)} to {_code(v)}" for k, v in f.value_map.items()))
    if f.take:
        parts.append(f"first {f.take} characters")
    if f.strip_prefix:
        parts.append(f"without the prefix {_code(f.strip_prefix)}")
    return "; ".join(parts)


def _required(f: FieldSpec) -> str:
    if f.required:
        return "yes"
    if f.required_if:
        return "; ".join(f"when {k} is {'/'.join(map(str, v))}" for k, v in f.required_if.items())
    return ""


def _format_section(spec: FeedSpec) -> list[str]:
    fmt = spec.format
    t = spec.format_type
    out = ["## File format", ""]
    encodings = ", ".join(fmt.get("encodings", ["utf-8"]))
    if t == "delimited":
        out += [f"- Delimited text, {_DELIMS.get(fmt.get('delimiter', ','), repr(fmt.get('delimiter')))}-separated.",
                "- The first line is a header with the column names below (any order; letter case and surrounding "
                "spaces do not matter; extra columns are ignored and noted on the receipt)."
                if fmt.get("header", True) else "- No header line: columns in the order below.",
                "- Quote a value that contains the delimiter, a quote or a line break with double quotes; "
                "double a quote inside a quoted value.",
                "- Line ends LF or CRLF. A blank line is skipped."]
    elif t == "fixed_width":
        rt = fmt.get("record_type", {})
        out += [f"- One record per line; the record type is in columns {rt.get('start')}-"
                f"{rt.get('start', 1) + rt.get('length', 1) - 1} and decides the layout.",
                "- Positions are 1-based character columns. Text is left-aligned and padded with spaces; "
                "a line may stop after its last non-blank field, but must not be longer than its layout."]
        if fmt.get("header"):
            out.append(f"- The first record is a header record of type `{fmt['header']['type']}`.")
        if fmt.get("trailer"):
            c = fmt["trailer"].get("count")
            cnt = f" with the number of detail records in columns {c['start']}-{c['start'] + c['length'] - 1}" \
                if isinstance(c, dict) else ""
            out.append(f"- The last record is a trailer record of type `{fmt['trailer']['type']}`{cnt}.")
        out += ["", "| record type | length | fields |", "|---|---|---|"]
        for rtype, layout in sorted(fmt.get("layouts", {}).items()):
            out.append(f"| `{rtype}` | {layout.get('length')} | {', '.join(layout.get('fields', {}))} |")
    elif t == "x12_834":
        out += ["- One ASC X12 interchange (ISA ... IEA) per file, functional group BE, transaction set 834, "
                "implementation guide 005010X220A1.",
                "- Separators are taken from the ISA segment. One coverage is one record: each 2300 loop (HD) of a "
                "2000 member loop, or the member loop itself when it has none; row numbers are the position of its "
                "INS segment (ISA = 1), a member's further HD loops numbered by their HD segment. Fields of HD and "
                "of the 2300 dates (DTP 348, 349) come from the record's own 2300 loop, the others from the member "
                "loop.",
                "- Field paths below: `SEG[Q].NN` is element NN of the first SEG in the member loop whose first "
                "element is Q; `SEG[NN=Q]` tests element NN; `PER[IP].TE` is the value after qualifier TE; "
                "`-C` a component; `header:` reads the transaction header (before the first INS)."]
    elif t == "hl7_vxu":
        out += ["- HL7 v2.5.1 VXU^V04 messages (CDC IG for Immunization Messaging 1.5, CAIR2 profile), as a "
                "batch file (FHS/BHS ... BTS/FTS) or a bare stream of messages.",
                "- One RXA segment is one record, with its patient (PID, PD1) and its order group (ORC before "
                "it, RXR and OBX after it). Row numbers are the line of the RXA; receipts also name the message.",
                "- Field paths below: `PID-5.1` is field 5 component 1; `PID-3[5=SR].1` picks the repetition "
                "whose component 5 is SR (`[5!=SS|MA]`: the first whose component 5 is neither); "
                "`OBX{3.1=64994-7}-5.1` picks the OBX whose field 3.1 is 64994-7.",
                "- MLLP-framed files are accepted; MSH-12 may be 2.3 to 2.8.2. Every message is acknowledged "
                "with an HL7 ACK (AA, AE or AR; ERR segments name segment, field and component) in your outbox."]
    elif t == "hl7_adt":
        types = ", ".join(str(x) for x in fmt.get("message_types", []))
        out += [f"- HL7 v2 ADT messages ({types}), as a batch file (FHS/BHS ... BTS/FTS), a bare stream of "
                "messages or MLLP-framed; MSH-12 2.3 to 2.8.2.",
                "- One message is one record (an event of a visit); row numbers are the line of its MSH segment.",
                "- Field paths below: `PV1-44` is field 44; `PID-3[5!=SS|MA].1` picks the first PID-3 repetition "
                "whose identifier type is neither SS nor MA.",
                "- Every message is acknowledged with an HL7 ACK (AA, AE or AR; ERR segments name segment, field "
                "and component) in your outbox."]
    elif t == "fhir_ndjson":
        out += [f"- Newline-delimited JSON: one FHIR R4 `{fmt.get('resource_type')}` resource per line, UTF-8.",
                "- Every resource is validated against FHIR R4 (fhir.resources R4B models) before the field checks.",
                "- Field paths below walk the JSON: `name[0].family`; `identifier(system=...).value` picks the "
                "first item whose sub-path has that value; `$` is the whole resource."]
    out += [f"- Character encodings accepted: {encodings}.", ""]
    return out


def feed_markdown(spec: FeedSpec, specs: dict[str, FeedSpec]) -> str:
    """The submission guide for one feed, as Markdown."""
    src = Path(spec.path).name
    lines = [f"# {spec.title}", "",
             "Audience: county and plan data teams preparing this feed. "
             f"Generated from `mappings/feeds/{src}` by `python -m jobs.ingest.feeddocs`; do not edit by hand.", ""]
    if spec.description:
        lines += [spec.description.strip(), ""]
    base = f"`bronze.{spec.bronze_table}`" + (f" (shared with the feed [{spec.variant_of}]({spec.variant_of}.md))"
                                               if spec.variant_of else "")
    lines += ["| | |", "|---|---|",
              f"| feed folder | `{spec.feed}` |",
              f"| spec version | {spec.version} |",
              f"| accepted from | submitter ids matching `{spec.submitter_pattern}` |",
              f"| format | {_FORMAT_NAMES.get(spec.format_type, spec.format_type)} |",
              f"| sensitivity | {spec.sensitivity}{' (' + ', '.join(spec.labels) + ')' if spec.labels else ''} |",
              f"| a corrected file for the same period | "
              f"{'replaces the earlier submission' if spec.on_resubmit == 'replace' else 'is added to the earlier ones'} |",
              f"| record key | {', '.join(spec.natural_key) or '-'} |",
              f"| loads into | {base} |", "",
              "## Where to put the file", "",
              f"`landing/<submitter>/{spec.feed}/<YYYY-MM>/<file name>`: your submitter id, this feed's folder, "
              "the reporting period. Check the file first with "
              f"`phmx validate FILE --feed {spec.feed}`; the receipt appears in `outbox/<submitter>/receipts/"
              f"{spec.feed}/<YYYY-MM>/`.", ""]
    lines += _format_section(spec)
    positions = _positions(spec)
    lines += ["## Fields", "",
              f"| field | {_SOURCE_HEADING.get(spec.format_type, 'source')} | required | checks | notes |",
              "|---|---|---|---|---|"]
    for f in spec.fields:
        note = f.description
        if f.severity == "warning":
            note = (note + "; " if note else "") + "problems are warnings (the row loads)"
        if f.identifier:
            note = (note + "; " if note else "") + "identifier (never echoed on receipts)"
        lines.append(f"| `{f.name}` | {_source(spec, f, positions)} | {_required(f)} | {_cell(_checks(f))} | "
                     f"{_cell(note)} |")
    lines.append("")
    if spec.rules:
        lines += ["## Row rules", "", "| rule id | check | fields | severity | problem |", "|---|---|---|---|---|"]
        for r in spec.rules:
            lines.append(f"| `{r.id}` | {r.check} | {', '.join(r.fields)} | {r.severity} | {_cell(r.message)} |")
        lines.append("")
    lines += ["## Rules that can reject a file or a record", "",
              "| rule id | level | meaning | how to fix |", "|---|---|---|---|"]
    for rule in sorted(RULES.values(), key=lambda r: (("file", "transaction", "record", "field", "row").index(r.level),
                                                      r.id)):
        if spec.format_type in rule.formats and rule.level in ("file", "transaction", "record"):
            fix = spec.how_to_fix.get(rule.id, rule.how_to_fix)
            lines.append(f"| `{rule.id}` | {rule.level} | {_cell(rule.meaning)} | {_cell(fix)} |")
    lines += ["", "Field checks (`required`, `format`, `cin_shape`, `code_set`, `max_length`, `date_range`) quarantine "
              "the row unless the field is marked as a warning; see the [submitter guide](../submitter-guide.md).", ""]
    if spec.how_to_fix:
        lines += ["## Feed-specific advice", ""]
        lines += [f"- `{k}`: {v}" for k, v in sorted(spec.how_to_fix.items())]
        lines.append("")
    if spec.notes:
        lines += ["## Notes", ""]
        lines += [f"- {n}" for n in spec.notes]
        lines.append("")
    variants = sorted(s.feed for s in specs.values() if s.variant_of == spec.feed)
    if variants:
        lines += ["## Other formats of this feed", ""]
        lines += [f"- [{v}]({v}.md): {specs[v].title}" for v in variants]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def valuesets_markdown(specs: dict[str, FeedSpec]) -> str:
    from phmx.feedspec import VALUESETS_DIR

    lines = ["# Value sets", "",
             "Audience: submitters and analysts. Generated from `mappings/valuesets/` by "
             "`python -m jobs.ingest.feeddocs`; do not edit by hand.", ""]
    used: dict[str, list[str]] = {}
    for s in specs.values():
        for f in s.fields:
            if f.valueset:
                used.setdefault(f.valueset, []).append(f"{s.feed}.{f.name}")
    for p in sorted(VALUESETS_DIR.glob("*.yaml")):
        vs = load_valueset(p.stem)
        lines += [f"## {vs.name}", "", f"Version {vs.version}. {vs.source}", ""]
        if vs.name in used:
            lines += ["Checked on: " + ", ".join(f"`{u}`" for u in sorted(used[vs.name])), ""]
        else:
            lines += ["Not a submission check: used by the hub's measures and reports.", ""]
        if vs.prefixes:
            lines += ["Codes starting with: " + ", ".join(f"`{x}`" for x in vs.prefixes), ""]
        if vs.patterns:
            lines += ["Codes matching: " + ", ".join(f"`{x}`" for x in vs.patterns), ""]
        codes = sorted(vs.codes)
        if codes:
            lines += ["| code | meaning |", "|---|---|"]
            lines += [f"| `{c}` | {_cell(vs.labels.get(c, ''))} |" for c in codes[:MAX_CODES_LISTED]]
            if len(codes) > MAX_CODES_LISTED:
                lines.append(f"| ... | {len(codes) - MAX_CODES_LISTED} more in `mappings/valuesets/{p.name}` |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def index_markdown(specs: dict[str, FeedSpec]) -> str:
    lines = ["# Feeds", "",
             "Audience: county and plan data teams. Generated from `mappings/feeds/` by "
             "`python -m jobs.ingest.feeddocs`; do not edit by hand. Start with the "
             "[submitter guide](../submitter-guide.md).", "",
             "| feed folder | what | format | from | loads into |", "|---|---|---|---|---|"]
    for name in sorted(specs):
        s = specs[name]
        lines.append(f"| [{name}]({name}.md) | {_cell(s.title)} | {_FORMAT_NAMES.get(s.format_type, s.format_type)} | "
                     f"`{_cell(s.submitter_pattern)}` | `bronze.{s.bronze_table}` |")
    lines += ["", "[Value sets](valuesets.md) used by the checks.", ""]
    return "\n".join(lines)


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;line-height:1.45}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #bbb;padding:.25em .5em;text-align:left;
vertical-align:top}}code{{background:#f3f3f3;padding:0 .2em}}th{{background:#eee}}</style></head>
<body>
{body}</body></html>
"""


def to_html(markdown: str) -> str:
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    title = markdown.splitlines()[0].lstrip("# ").strip()
    body = md.render(markdown.replace(".md)", ".html)").replace(".md#", ".html#"))
    return _HTML.format(title=html.escape(title), body=body)


def render_all() -> dict[str, str]:
    """Every generated file (relative name -> content)."""
    specs = load_specs()
    out: dict[str, str] = {}
    for name, spec in sorted(specs.items()):
        md = feed_markdown(spec, specs)
        out[f"{name}.md"] = md
        out[f"{name}.html"] = to_html(md)
    for name, md in (("index", index_markdown(specs)), ("valuesets", valuesets_markdown(specs))):
        out[f"{name}.md"] = md
        out[f"{name}.html"] = to_html(md)
    return out


def stale(docs_dir: Path = DOCS_DIR) -> list[str]:
    """Generated files that are missing or differ from what the specs produce now."""
    files = render_all()
    bad = [n for n, text in files.items() if not (docs_dir / n).exists()
           or (docs_dir / n).read_text(encoding="utf-8") != text]
    extra = [p.name for p in docs_dir.glob("*.*") if p.suffix in (".md", ".html") and p.name not in files] \
        if docs_dir.exists() else []
    return sorted(bad + extra)


def write_all(docs_dir: Path = DOCS_DIR) -> list[str]:
    docs_dir.mkdir(parents=True, exist_ok=True)
    files = render_all()
    for name, text in files.items():
        (docs_dir / name).write_text(text, encoding="utf-8")
    for p in docs_dir.glob("*.*"):
        if p.suffix in (".md", ".html") and p.name not in files:
            p.unlink()
    return sorted(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.ingest.feeddocs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/feeds/ is not current")
    parser.add_argument("--out", type=Path, default=DOCS_DIR)
    args = parser.parse_args(argv)
    if args.check:
        bad = stale(args.out)
        if bad:
            sys.stderr.write("docs/feeds is stale, run python -m jobs.ingest.feeddocs: " + ", ".join(bad) + "\n")
            return 1
        return 0
    written = write_all(args.out)
    sys.stdout.write(f"wrote {len(written)} files to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
