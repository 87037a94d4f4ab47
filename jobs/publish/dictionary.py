"""The data dictionary shipped in every LHJ package (Markdown for people, CSV for programs)."""

from __future__ import annotations

import csv
import io

import pandas as pd

from jobs.publish.catalog import describe
from jobs.publish.lhj_cube import ONE_WAY, TWO_WAY
from phmx.spreadsheet import escape_cell

MEASURE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("lhj", "string", "Local health jurisdiction (county, or the city of Berkeley, Long Beach or Pasadena) "
                      "where the member lives (gold.member.lhj)."),
    ("measure_id", "string", "Measure identifier (see Measures below)."),
    ("period", "string", "Reporting period of the unit's anchor date: YYYY (year), YYYY-Qn (quarter) or "
                         "YYYY-MM (month)."),
    ("stratifier", "string", "all (the total), a one-way stratifier, or a two-way one written a*b."),
    ("stratum", "string", "all for the total; else the stratum value (two-way: x*y). unknown = attribute missing. "
                          "The strata of a stratifier add up to the total."),
    ("numerator", "integer", "Units meeting the measure. Empty when suppressed (see annotation)."),
    ("denominator", "integer", "Units eligible for the measure. Empty when suppressed."),
    ("rate", "decimal", "numerator / denominator as a proportion (0-1), 6 decimals. Empty when either count is "
                        "suppressed or the denominator is 0."),
    ("ci_low", "decimal", "Lower bound of the 95% confidence interval of the rate (method in manifest.json)."),
    ("ci_high", "decimal", "Upper bound of the 95% confidence interval of the rate."),
    ("annotation", "string", "CalHHS DDG open-data code: 1 small cell (1-10) suppressed; 2 complementary "
                             "suppression; 3 no data (denominator 0). Empty when nothing is withheld."),
)

SERVICE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("lhj", "string", "Local health jurisdiction."),
    ("month", "string", "YYYY-MM of the service."),
    ("source_kind", "string", "plan_medical, plan_pharmacy, county_mh, county_sud, dental, immunization."),
    ("members", "integer", "Distinct members with at least one service of that kind in the month; empty when "
                           "1-10 (suppressed)."),
    ("annotation", "string", "1 when the count is suppressed."),
)

ANNOTATIONS = (("1", "small cell", "a count of 1-10; never published"),
               ("2", "complementary", "suppressed so that a small cell cannot be worked out by subtraction"),
               ("3", "no data", "the denominator is 0"))


def _table(rows: tuple[tuple[str, str, str], ...]) -> list[str]:
    return ["| column | type | meaning |", "|---|---|---|"] + [f"| `{c}` | {t} | {d} |" for c, t, d in rows]


def markdown(measures: pd.DataFrame, *, ci_method: str, suppression_method: str, cells: int | None = None,
             suppressed_cells: int | None = None) -> str:
    """The dictionary as Markdown; ``measures`` has measure_id and sensitive. ``cells`` and
    ``suppressed_cells`` (the package's counts, :func:`jobs.publish.lhj_suppression.suppressed_cells`)
    are stated under the annotation codes when given."""
    out = ["# Data dictionary: LHJ population health measures feed", "",
           "Audience: epidemiologists and analysts at local health jurisdictions.", "",
           "## measures.csv / measures.parquet", "", "One row per cell. Contract: the columns below, in this order.", ""]
    out += _table(MEASURE_COLUMNS)
    out += ["", "## Stratifiers", "", "| stratifier | strata |", "|---|---|",
            "| all | all (the total) |"]
    for name, col in ONE_WAY:
        out.append(f"| {name} | values of `{col}` in the measures stage, plus `unknown` |")
    for a, b in TWO_WAY:
        out.append(f"| {a}*{b} | `x*y` for every {a} x and {b} y |")
    out += ["", "## Measures", "", "| measure_id | name | sensitive | description |", "|---|---|---|---|"]
    for r in measures.drop_duplicates("measure_id").sort_values("measure_id").to_dict("records"):
        name, desc = describe(str(r["measure_id"]))
        out.append(f"| {r['measure_id']} | {name} | {'yes' if r.get('sensitive') else 'no'} | {desc} |")
    out += ["", "Sensitive measures (substance use, serious mental illness): counts below 11 are always "
            "suppressed (CalHHS DDG 5.6.2).", "",
            "## Annotation codes", "", "| code | name | meaning |", "|---|---|---|"]
    out += [f"| {c} | {n} | {d} |" for c, n, d in ANNOTATIONS]
    if cells is not None and suppressed_cells is not None:
        out += ["", f"This package: {suppressed_cells:,} of {cells:,} cells of measures.csv are suppressed "
                "(annotation 1 or 2); manifest.json (content.suppressed_cells) and report.html give the same count."]
    out += ["", "## service_counts.csv", ""] + _table(SERVICE_COLUMNS)
    out += ["", "## Methods", "", f"- Confidence interval: {ci_method} (95%).",
            f"- Suppression: {suppression_method}.",
            "- measure_report.json: the same cells as a FHIR R4 Bundle of summary MeasureReports; suppressed "
            "values are omitted and carry the data-absent-reason extension (masked) and the annotation code.",
            "- Consent: de-identified aggregates to a public health authority (42 CFR 2.54; 45 CFR 164.514(b)); "
            "every package is recorded as a disclosure in the hub's audit ledger.", ""]
    return "\n".join(out)


def csv_text() -> str:
    """Every column of every table as CSV: table, column, type, meaning."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["table", "column", "type", "meaning"])
    for c, t, d in MEASURE_COLUMNS:
        w.writerow([escape_cell(v) for v in ("measures", c, t, d)])
    for c, t, d in SERVICE_COLUMNS:
        w.writerow([escape_cell(v) for v in ("service_counts", c, t, d)])
    return buf.getvalue()
