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
    ("annotation", "string", "What is hidden (CalHHS DDG open-data codes, the same as indicators.csv): 1 a count "
                             "of 1-10 (numerator or denominator); 4 the numerator, because denominator minus "
                             "numerator is 1-10 (the numerator itself may be large); 2 complementary suppression; "
                             "3 no data (denominator 0). Empty when nothing is withheld."),
)

SERVICE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("lhj", "string", "Local health jurisdiction."),
    ("month", "string", "YYYY-MM of the service."),
    ("source_kind", "string", "plan_medical, plan_pharmacy, county_mh, county_sud, dental, immunization."),
    ("members", "integer", "Distinct members with at least one service of that kind in the month; empty when "
                           "1-10 (suppressed)."),
    ("annotation", "string", "1 when the count is suppressed."),
)

INDICATOR_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("lhj", "string", "The LHJ (or California: the state) where the members lived in the month (utilization) "
                      "or in their last enrolled month of the year (prevalence)."),
    ("indicator_id", "string", "Indicator identifier (see Indicators below), or a population: MEMBERS, "
                               "MEMBER_MONTHS, MEMBERS_BMI (see Populations below)."),
    ("indicator", "string", "Indicator name."),
    ("kind", "string", "prevalence (members with the condition per 100 members enrolled at least 6 months of "
                       "the year), utilization (events per 1,000 member-months) or population (a denominator "
                       "published once: the count in `numerator` and `denominator`, no rate)."),
    ("period", "string", "YYYY; utilization also YYYY-Qn and YYYY-MM (the trend, total only)."),
    ("stratifier", "string", "all, age_band, sex, race_ethnicity, language or zip (each for the year)."),
    ("stratum", "string", "all for the total; else the stratum (a 5-digit ZIP for zip; unknown = missing). "
                          "The strata of a stratifier add up to the total."),
    ("numerator", "integer", "Members with the condition, or events. Empty when withheld (annotation)."),
    ("denominator", "integer", "Members enrolled (prevalence) or member-months (utilization): the count of the "
                               "indicator's population row for the same LHJ, period and stratum, repeated here, "
                               "shown or withheld with it. Empty when withheld."),
    ("denominator_unit", "string", "members or member-months."),
    ("rate_type", "string", "crude, or age_adjusted (direct standardisation to the 2000 U.S. standard population, "
                            "NCHS 11 age groups, over the ages the indicator covers). Two rows per cell; the counts "
                            "repeat. No age_adjusted rows by age band."),
    ("rate", "decimal", "Per `per`: 100 members (a percentage) or 1,000 member-months. Empty when a count is withheld."),
    ("ci_low", "decimal", "Lower 95% limit, gamma method (Fay & Feuer 1997; exact Poisson for crude rates)."),
    ("ci_high", "decimal", "Upper 95% limit, gamma method."),
    ("per", "integer", "100 or 1000 (empty on population rows)."),
    ("state_rate", "decimal", "California's rate of the same type, period and stratum (empty for ZIPs, and where "
                              "the state's counts are withheld)."),
    ("state_ci_low", "decimal", "Lower 95% limit of the state's rate."),
    ("state_ci_high", "decimal", "Upper 95% limit of the state's rate."),
    ("change", "decimal", "Year-over-year change: this rate minus the rate of the same period a year earlier "
                          "(2025 vs 2024, 2025-Q3 vs 2024-Q3, 2025-07 vs 2024-07), same type and stratum, per `per`. "
                          "Empty where either year's counts are withheld or the earlier year is not in the package."),
    ("change_ci_low", "decimal", "Lower 95% limit of the change: difference of two independent rates, normal "
                                 "interval d +/- 1.96 sqrt(v1 + v2) (NCHS's comparison of two age-adjusted rates). "
                                 "An interval containing 0: no change shown at the 5% level."),
    ("change_ci_high", "decimal", "Upper 95% limit of the change."),
    ("age_groups_missing", "integer", "Age groups of the standard the indicator covers with no population in the "
                                      "cell (they count 0 in the adjusted rate: read it with care when above 0)."),
    ("annotation", "string", "What is hidden: 1 a count of 1-10 (numerator, denominator or member-months); 4 the "
                             "numerator, because denominator minus numerator is 1-10; 2 complementary; 3 no data."),
)

ANNOTATIONS = (("1", "small cell", "a count of 1-10 (the numerator or the denominator); never published"),
               ("4", "small complement", "the numerator is hidden because denominator minus numerator (units not "
                                         "meeting the measure) is 1-10; the numerator itself may be large"),
               ("2", "complementary", "suppressed so that a small cell cannot be worked out by subtraction"),
               ("3", "no data", "the denominator is 0"))


def _table(rows: tuple[tuple[str, str, str], ...]) -> list[str]:
    return ["| column | type | meaning |", "|---|---|---|"] + [f"| `{c}` | {t} | {d} |" for c, t, d in rows]


def indicator_section(indicators: pd.DataFrame) -> list[str]:
    """The indicators.csv part of the dictionary: columns, the indicators with their sources, the
    annotation codes and the package's withheld-cell count."""
    from jobs.indicators.catalogue import default
    from jobs.publish.lhj_indicators import ANNOTATIONS as IND_ANN
    from jobs.publish.lhj_indicators import suppressed_cells

    cat, std = default()
    present = set(indicators["indicator_id"]) if len(indicators) else set()
    crude = indicators[indicators["rate_type"] == "crude"] if len(indicators) else indicators
    out = ["", "## indicators.csv / indicators.parquet", "",
           "Population indicators for the community health assessment, one row per cell and rate type. "
           "Definitions and code lists: the hub's mappings/indicators/indicators.yaml (public sources below).", ""]
    out += _table(INDICATOR_COLUMNS)
    out += ["", "### Indicators", "", "| indicator_id | name | kind | sensitivity | source |", "|---|---|---|---|---|"]
    for iid, ind in cat.indicators.items():
        if iid in present:
            out.append(f"| {iid} | {ind.name} | {ind.kind} | {ind.sensitivity} | {ind.source} |")
    pops = indicators[indicators["kind"] == "population"] if len(indicators) else indicators
    if len(pops):
        out += ["", "### Populations", "",
                "Each denominator is published once per LHJ, period and stratum as its own row (kind population) "
                "and suppressed on its own merits; every indicator of that population repeats it as its "
                "`denominator`, shown or withheld with it. An indicator's hidden count hides no other indicator's "
                "rate.", "", "| indicator_id | population |", "|---|---|"]
        for pid, name in pops.drop_duplicates("indicator_id")[["indicator_id", "indicator"]].itertuples(index=False):
            out.append(f"| {pid} | {name} |")
    out += ["", f"Standard population: {std.name} ({std.source}).", "",
            "### Annotation codes of indicators.csv", "", "| code | meaning |", "|---|---|"]
    out += [f"| {c} | {d} |" for c, d in sorted(IND_ANN.items())]
    out += ["", f"This package: {suppressed_cells(indicators):,} of {len(crude):,} indicator cells are withheld "
            "(annotation 1, 2 or 4). Each LHJ's table is suppressed with its relations (ZIPs and strata within the "
            "total, months within quarters within the year) until an attacker's linear program bounds every hidden "
            "count to a range reaching 0 and 11; California's rows show a count only where every LHJ publishes it, "
            "and the state's ZIP rows are not published, so no count is recovered by differencing geographies."]
    return out


def markdown(measures: pd.DataFrame, *, ci_method: str, suppression_method: str, cells: int | None = None,
             suppressed_cells: int | None = None, indicators: pd.DataFrame | None = None) -> str:
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
                "(annotation 1, 2 or 4); manifest.json (content.suppressed_cells) and report.html give the same count."]
    if indicators is not None:
        out += indicator_section(indicators)
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
    for c, t, d in INDICATOR_COLUMNS:
        w.writerow([escape_cell(v) for v in ("indicators", c, t, d)])
    return buf.getvalue()
