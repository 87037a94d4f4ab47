"""Every rule intake can cite, in one catalogue: its level, what it means, and how to fix it.

Receipts take their "how to fix" text from here (a feed spec's ``how_to_fix`` may override it
per feed), and the generated submission guides list the rules that apply to each format.
Levels: ``file`` (the whole file is rejected, every record in it quarantined under the rule),
``transaction`` (an X12 transaction set or HL7 batch: its records are quarantined, the rest
of the file goes on), ``record`` (one record could not be read), ``field`` and ``row`` (one
record failed a check; with severity warning it is accepted and reported).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec, FieldSpec


@dataclass(frozen=True)
class Rule:
    id: str
    level: str
    formats: tuple[str, ...]
    meaning: str
    how_to_fix: str


_ALL = ("delimited", "fixed_width", "x12_834", "hl7_vxu", "hl7_adt", "fhir_ndjson")
_HL7 = ("hl7_vxu", "hl7_adt")
_TEXT = ("delimited", "fixed_width")

RULES: dict[str, Rule] = {r.id: r for r in [
    # ---- file level -------------------------------------------------------------------------
    Rule("file_empty", "file", _ALL, "The file is empty (or only blank lines).",
         "Export again and resend; an empty file loads nothing."),
    Rule("file_binary", "file", _ALL, "The file is not text (a spreadsheet, archive or image).",
         "Send the text export the feed spec names, not a spreadsheet or archive."),
    Rule("file_encoding", "file", _ALL, "The file is not in an accepted character encoding.",
         "Save the file as UTF-8 (or Latin-1 where the spec allows it)."),
    Rule("bad_period", "file", _ALL, "The file is not at landing/<submitter>/<feed>/<YYYY-MM>/<file>.",
         "Put the file in the folder of its reporting period, named YYYY-MM."),
    Rule("unknown_feed", "file", _ALL, "No published feed has this folder name.",
         "Use a feed folder from the published list (see the submitter guide)."),
    Rule("unknown_submitter", "file", _ALL, "This feed is not accepted from this submitter.",
         "Check the submitter folder name; contact the hub operator to be enrolled for the feed."),
    Rule("no_valid_rows", "file", _ALL, "Every record in the file failed validation.",
         "Fix the errors listed and resend the whole file."),
    Rule("internal_error", "file", _ALL, "The hub could not process the file.",
         "The operator has been notified. Resend unchanged later."),
    Rule("join_file_missing", "file", ("delimited",),
         "The feed joins a companion file (e.g. patients.csv) and none was found in the period folder.",
         "Put the companion file the feed guide names in the same period folder as this file, and send both."),
    Rule("join_file", "file", ("delimited",), "The companion file cannot be read (the message says why).",
         "Fix the companion file as the message says and send both files again."),
    Rule("wrong_delimiter", "file", ("delimited",), "The header is separated by another delimiter.",
         "Export with the delimiter the feed spec names."),
    Rule("header_missing", "file", _TEXT, "The header row (or header record) is missing.",
         "Put the header the feed spec lists as the first line."),
    Rule("header_columns", "file", ("delimited",), "Required columns are missing from the header.",
         "Add the missing required columns to the header and every row."),
    Rule("trailer_missing", "file", ("fixed_width",), "The trailer record is missing: the file may be cut short.",
         "Send the complete file, ending with the trailer record."),
    Rule("trailer_count", "file", ("fixed_width",),
         "The trailer's record count differs from the records in the file: records were lost or added.",
         "Regenerate the file so the trailer counts every detail record, and resend it whole."),
    Rule("x12_isa", "file", ("x12_834",), "The file does not start with a valid ISA interchange header.",
         "Send the X12 file as produced by your translator, starting with a 106-character ISA segment."),
    Rule("x12_gs", "file", ("x12_834",),
         "A functional group is not a benefit enrollment group (GS01 BE, GS08 005010X220A1).",
         "Send 834 5010 X220A1 transactions only in this feed."),
    Rule("x12_ge_missing", "file", ("x12_834",), "A functional group has no GE trailer: the file is cut short.",
         "Send the complete interchange."),
    Rule("x12_ge_count", "file", ("x12_834",), "GE01 differs from the number of transaction sets in the group.",
         "Regenerate the interchange with your translator; do not edit X12 files by hand."),
    Rule("x12_ge_control", "file", ("x12_834",), "GE02 differs from the group control number in GS06.",
         "Regenerate the interchange with your translator."),
    Rule("x12_iea_missing", "file", ("x12_834",), "The interchange has no IEA trailer: the file is cut short.",
         "Send the complete interchange."),
    Rule("x12_iea_count", "file", ("x12_834",), "IEA01 differs from the number of functional groups.",
         "Regenerate the interchange with your translator."),
    Rule("x12_iea_control", "file", ("x12_834",), "IEA02 differs from the interchange control number in ISA13.",
         "Regenerate the interchange with your translator."),
    Rule("x12_trailing_data", "file", ("x12_834",), "There is data after the last IEA trailer.",
         "Send one complete interchange per file, with nothing after IEA."),
    Rule("hl7_batch", "file", _HL7, "A batch header (FHS or BHS) has no matching trailer (FTS or BTS).",
         "Send the complete batch file."),
    Rule("hl7_bts_count", "file", _HL7, "BTS-1 differs from the number of messages in the batch.",
         "Regenerate the batch so BTS-1 counts its messages."),
    Rule("hl7_fts_count", "file", _HL7, "FTS-1 differs from the number of batches in the file.",
         "Regenerate the file so FTS-1 counts its batches."),
    # ---- transaction level --------------------------------------------------------------------
    Rule("x12_st", "transaction", ("x12_834",), "A transaction set is not an 834 (ST01) for 005010X220A1 (ST03).",
         "Send only 834 transaction sets in this feed."),
    Rule("x12_se_missing", "transaction", ("x12_834",), "A transaction set has no SE trailer.",
         "Regenerate the transaction set; every member loop in it was quarantined."),
    Rule("x12_se_count", "transaction", ("x12_834",),
         "SE01 differs from the number of segments in the transaction set: segments were lost or added.",
         "Regenerate the transaction set; every member loop in it was quarantined."),
    Rule("x12_se_control", "transaction", ("x12_834",), "SE02 differs from the control number in ST02.",
         "Regenerate the transaction set; every member loop in it was quarantined."),
    # ---- record level -------------------------------------------------------------------------
    Rule("column_count", "record", ("delimited",), "The row has a different number of fields than the header.",
         "Check delimiters and quotes in the listed rows."),
    Rule("quoting", "record", ("delimited",), "A quote is not closed, so the rest of the file cannot be split.",
         "Quote fields that contain the delimiter or a line break, and close every quote."),
    Rule("field_size", "record", ("delimited",),
         "A field holds more than 131,072 characters: almost always a lost quote or delimiter that ran the "
         "rest of a line into one value. Only that record is quarantined.",
         "Check the listed line for an unclosed quote or a missing delimiter; no field may exceed 131,072 "
         "characters."),
    Rule("join_unmatched", "record", ("delimited",),
         "The record's join key (e.g. its patient id) has no row in the companion file.",
         "Send the companion file with a row for every key this file uses (both files from the same export)."),
    Rule("join_ambiguous", "record", ("delimited",),
         "The record's join key is in the companion file twice, so which row is meant cannot be known.",
         "Send each key once in the companion file."),
    Rule("record_type", "record", ("fixed_width",), "The record type in the first columns is not one the layout defines.",
         "Use one of the record types of the layout."),
    Rule("record_length", "record", ("fixed_width",), "The record is longer than its layout.",
         "Pad or cut each record to the layout's length; check that no field shifted."),
    Rule("x12_segment", "record", ("x12_834",), "A member loop holds a segment that is not an 834 segment.",
         "Check the listed member loop for a damaged segment identifier."),
    Rule("x12_loop", "record", ("x12_834",), "A member loop lacks a segment it requires (e.g. NM1*IL).",
         "Send every required segment of the member loop."),
    Rule("x12_element", "record", ("x12_834",), "An INS segment's required elements are missing or invalid.",
         "INS01 is Y or N and INS02 a relationship code."),
    Rule("hl7_msh", "record", _HL7, "A message header (MSH) cannot be read.",
         "Start each message with MSH|^~\\&| and the fields of the CAIR2 guide."),
    Rule("hl7_segment", "record", _HL7, "A message holds a segment line that cannot be read, or "
         "segments appear outside any message.", "Check the listed message for a damaged or stray segment."),
    Rule("hl7_message_type", "record", _HL7, "The message is not of a type the feed takes (VXU^V04; ADT "
         "A01, A03, A04, A08).", "Send only the message types the feed's guide lists to its folder."),
    Rule("hl7_no_rxa", "record", ("hl7_vxu",), "The message holds no RXA (no vaccination).",
         "Each VXU message needs at least one ORC/RXA group."),
    Rule("hl7_version", "record", _HL7, "MSH-12 names an HL7 version before 2.3, whose VXU structure "
         "differs from the CDC guide's 2.5.1.", "Send MSH-12 2.5.1 messages built to the CDC Implementation Guide "
         "release 1.5 (versions 2.3 to 2.8.2 are also read)."),
    Rule("hl7_vaccine_code", "record", ("hl7_vxu",), "RXA-5 holds neither a CVX nor an NDC found in the CDC "
         "NDC-to-CVX crosswalk.", "Send RXA-5 as CVX^name^CVX, or an NDC of the CDC crosswalk as NDC^name^NDC "
         "(optionally with the CVX as the alternate code RXA-5.4, RXA-5.6 CVX)."),
    Rule("fhir_json", "record", ("fhir_ndjson",), "The line is not one JSON object.",
         "Write one resource per line as compact JSON."),
    Rule("fhir_resource_type", "record", ("fhir_ndjson",), "The resource is not of the type this feed takes.",
         "Send each resource type to its own feed folder."),
    Rule("fhir_invalid", "record", ("fhir_ndjson",), "The resource does not validate against FHIR R4.",
         "Fix the listed elements; validate with a FHIR R4 validator before sending."),
    Rule("fhir_unresolved_reference", "record", ("fhir_ndjson",),
         "A reference the hub must follow (e.g. Immunization.patient) points at a resource that is neither "
         "contained nor in the same submission (hub rule: the hub needs the person's identifying details).",
         "Send the referenced resource in the same Bulk Data export (its own NDJSON file), or contain it."),
    Rule("fhir_not_taken", "record", ("fhir_ndjson",),
         "The resource's status says it is not an event the hub counts (e.g. an Immunization not-done or "
         "entered-in-error, a cancelled Encounter): a documented exclusion, not an error in the file.",
         "Nothing to fix if the status is right; the record is kept out of the hub's tables."),
    Rule("fhir_type_not_taken", "file", ("fhir_ndjson",),
         "A file of a FHIR Bulk Data export holds a resource type the hub has no feed for (e.g. Practitioner): "
         "its records are kept in quarantine, not loaded (not an error in the file).",
         "Nothing to fix; leave such types out of the export to the hub if you prefer."),
    Rule("fhir_bulk_manifest", "file", ("fhir_ndjson",), "The .json file of a Bulk Data export folder is not an "
         "export manifest (an object with an output list).", "Send the manifest the $export status request returned."),
    Rule("fhir_bulk_missing_file", "file", ("fhir_ndjson",), "Files listed in a Bulk Data export manifest did not "
         "arrive with it.", "Send every file the manifest lists in the same folder."),
    Rule("fhir_date_precision", "record", ("fhir_ndjson",),
         "A date the hub needs to the day has year or month precision only (FHIR allows it; hub rule: an "
         "event must fall on a day to be counted in a period).",
         "Send the full date (YYYY-MM-DD) or a dateTime."),
    # ---- field and row level -------------------------------------------------------------------
    Rule("required", "field", _ALL, "A required field is empty.", "Fill in the field for every listed row."),
    Rule("format", "field", _ALL, "A value does not have the field's format.",
         "Correct the value to the format the feed spec gives for this field."),
    Rule("cin_shape", "field", _ALL,
         "A Medi-Cal CIN is 9 characters: the digit 9, seven digits, a capital letter.",
         "Correct the CIN, or leave it empty if unknown."),
    Rule("code_set", "field", _ALL, "A code is not in the field's value set.",
         "Use a code from the value set named in the feed spec."),
    Rule("max_length", "field", _ALL, "A value is longer than the spec allows.",
         "Shorten the value to the spec's maximum length."),
    Rule("formula_text", "field", _ALL,
         "A text value starts like a spreadsheet formula (=, +, - or @ followed by text): it could run when "
         "a recipient opens a CSV, so it is never loaded.",
         "Send the value without the leading =, +, - or @ (a number such as -12.5 is fine); check the export "
         "is not writing spreadsheet formulas into text fields."),
    Rule("date_range", "field", _ALL, "A date is outside 1900-2100.", "Check the year."),
    Rule("date_order", "row", _ALL, "Two dates are in the wrong order (e.g. an end before its start).",
         "Correct the dates so the later one is not before the earlier one."),
    Rule("duplicate_key", "row", _ALL, "The record's natural key repeats an earlier record in the same file.",
         "Send each record once per file."),
    Rule("one_of_required", "row", _ALL, "None of a group of fields is filled.", "Fill at least one of them."),
    Rule("service_within_coverage", "row", ("delimited",),
         "The service date is not inside any coverage span of the member with the same plan in the enrollment "
         "the hub holds (a warning: the row is accepted).",
         "Check the member id, plan id and service date; send the enrollment that covers the service."),
    Rule("x12_999", "field", ("x12_834",),
         "pyx12's full 005010X220A1 validation found a problem (phmx validate --x12-strict only; intake does not "
         "apply it).", "Fix the segment or element as the implementation guide requires."),
    Rule("period_withdrawn", "file", _ALL,
         "A warning: the file holds a header but no records. In a feed whose resubmissions replace, it replaces "
         "every record sent earlier for the period with nothing.",
         "If you did not mean to withdraw the period, send the complete file again."),
    Rule("no_records", "file", _ALL, "A note: the file holds a header but no records; nothing was added.",
         "Nothing to fix if the period had nothing to report."),
    Rule("duplicate", "file", _ALL, "The same bytes were received before; nothing was changed.",
         "Nothing to fix. To correct a submission, send a changed file for the same period."),
]}


def how_to_fix(rule_id: str, overrides: dict[str, str] | None = None) -> str:
    """The fix text for a rule id (a spec's own text first, then the catalogue)."""
    if overrides and rule_id in overrides:
        return overrides[rule_id]
    rule = RULES.get(rule_id)
    return rule.how_to_fix if rule else "See the feed spec for this rule."


# Formats whose field sources are segment paths a submitter's interface analyst reads directly.
_PATH_FORMATS = {"hl7_vxu": "HL7", "hl7_adt": "HL7", "x12_834": "X12"}
_DATE_TEXT = {"%Y%m%d": "YYYYMMDD", "%Y-%m-%d": "YYYY-MM-DD", "%m/%d/%Y": "MM/DD/YYYY",
              "%Y-%m-%dT%H:%M:%S": "YYYY-MM-DDThh:mm:ss"}
# An example value of each typed field (never a submitted value: these are made up).
_TYPE_EXAMPLES = {"integer": "12", "decimal": "12.5", "cin": "90000001A", "ssn": "078-05-1120", "zip": "94607",
                  "phone": "510-555-0100", "npi": "1003000126", "email": "name@example.org",
                  "county_fips": "06001"}
_EXAMPLE_DATE = datetime(2025, 1, 31, 14, 5, 0)  # noqa: DTZ001 - an example, shown as text only


def where(spec: FeedSpec, f: FieldSpec) -> str:
    """Where a field is in the submitter's file, in their terms: a column, a path, record positions."""
    if f.constant is not None:
        return f"{f.name} (not read from the file: always {f.constant!r})"
    if spec.format_type == "fixed_width":
        spans = []
        for rtype, layout in (spec.format.get("layouts") or {}).items():
            entry = (layout.get("fields") or {}).get(f.name) if isinstance(layout, dict) else None
            if entry is None:
                continue
            from jobs.ingest.formats.fixed_width import layout_spans

            cols = " + ".join(f"{a}-{a + n - 1}" for a, n in layout_spans(entry) or [])
            spans.append(f"columns {cols} of {rtype} records")
        return f"{f.name} ({'; '.join(spans)})" if spans else f.name
    if spec.format_type == "delimited":
        joins = spec.format.get("join") or {}
        parts = []
        for src in f.sources:
            comp, _, col = src.partition(".")
            if col and comp in joins:
                parts.append(f"column {col} of {joins[comp].get('file', comp)}")
            else:
                parts.append(f"column {src}")
        return " + ".join(parts)
    if spec.format_type == "fhir_ndjson":
        from jobs.ingest.formats.fhir_ndjson import field_elements

        return field_elements(spec).get(f.name, f.name)
    return " + ".join(f.sources) or f.name


def _example(f: FieldSpec) -> str:
    """An example of a value the field accepts, when one can be given (``""`` otherwise)."""
    from phmx.feedspec import load_valueset

    if f.example is not None:
        return f.example
    if f.type in ("date", "timestamp") and f.format:
        try:
            return _EXAMPLE_DATE.strftime(f.format)
        except ValueError:
            return ""
    if f.valueset:
        codes = sorted(load_valueset(f.valueset).codes)
        return codes[0] if codes else ""
    if f.allow and not f.pattern:
        return f.allow[0]
    return _TYPE_EXAMPLES.get(f.type, "")


def field_fixes(spec: FeedSpec) -> dict[str, str]:
    """Per-field fix texts (``"<rule>.<field>"``) naming the exact place, the expected value and an example.

    The place is the column (delimited, with the companion file for a joined field), the record
    positions (fixed-width) or the segment, field and component (HL7 v2 ``PID-7``, X12
    ``DMG[D8].02``, FHIR element paths); a receipt shows these instead of the rule's generic text.
    """
    from jobs.ingest.validate import TYPE_PATTERNS
    from phmx.feedspec import load_valueset

    out: dict[str, str] = {}
    for f in spec.fields:
        at = where(spec, f)
        what = f" ({f.description})" if f.description else ""
        ex = _example(f)
        eg = f", e.g. {ex}" if ex else ""
        out[f"required.{f.name}"] = f"Fill in {at}{what}: it is required for every record{eg}."
        if f.format:
            out[f"format.{f.name}"] = (f"Send {at} as a real calendar date in the form "
                                       f"{_DATE_TEXT.get(str(f.format), str(f.format))}{eg}.")
            out[f"date_range.{f.name}"] = f"Send in {at} a date between 1900 and 2100{eg}; check the year."
        elif f.pattern:
            out[f"format.{f.name}"] = f"Send in {at} a value matching {f.pattern}{eg}."
        elif f.type in TYPE_PATTERNS:
            out[f"format.{f.name}"] = f"Send in {at} {TYPE_PATTERNS[f.type][1]}{eg}."
        if f.max_length:
            out[f"max_length.{f.name}"] = f"Send at most {f.max_length} characters in {at}."
        if f.valueset:
            vs = load_valueset(f.valueset)
            codes = sorted(vs.codes)
            listed = (f"one of {', '.join(codes)}" if 0 < len(codes) <= 12
                      else f"a code of value set {vs.name} (version {vs.version}; see the feed guide){eg}")
            out[f"code_set.{f.name}"] = f"Send in {at} {listed}."
        if f.type == "cin":
            out[f"cin_shape.{f.name}"] = (f"Send in {at} the 9-character Medi-Cal CIN (9, seven digits, a "
                                          "capital letter, e.g. 90000001A), or leave it empty.")
        if f.type == "string":
            out[f"formula_text.{f.name}"] = (f"Send {at} as plain text, without a leading =, +, - or @ "
                                             "(a number such as -12.5 is fine).")
    kind = _PATH_FORMATS.get(spec.format_type)
    if kind is not None:  # segment formats: the analyst's own words for a missing element
        for f in spec.fields:
            out[f"required.{f.name}"] = (f"Send {where(spec, f)}"
                                         f"{f' ({f.description})' if f.description else ''}: it is required for "
                                         "every record.")
    return out
