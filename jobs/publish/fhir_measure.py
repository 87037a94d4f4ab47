"""The LHJ table as a FHIR R4 Bundle of summary MeasureReports (validated with fhir.resources R4B).

One MeasureReport per period (year, quarter or month) reporting the hub's PHM measure set
(``Measure/phmx-phm-measures``, one group per measure): populations ``denominator`` and
``numerator``, ``measureScore`` = the rate (a proportion), the 95% interval as an extension, and a
stratifier per published stratifier (two-way ones with stratum components). Suppressed values are
omitted; the element carries the data-absent-reason extension (``masked``, or ``not-applicable``
for no data) and the DDG annotation code (:data:`ANNOTATION_EXT`).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from jobs.publish.catalog import describe
from jobs.publish.lhj_cube import ALL
from phmx import settings

# The canonical base of the hub's FHIR identifiers, code systems and extensions. The default is a
# reserved .example domain: a deployment sets PHMX_FHIR_BASE_URL to the base it publishes its
# Measure, CodeSystem and StructureDefinition resources under, before the first publish (the
# values are stored in every package, so changing it later changes identifiers).
HUB = settings.load().fhir_base_url.rstrip("/")
MEASURE_SET = f"{HUB}/Measure/phmx-phm-measures"
MEASURE_CS = f"{HUB}/CodeSystem/phmx-measure"
STRATIFIER_CS = f"{HUB}/CodeSystem/phmx-stratifier"
ANNOTATION_EXT = f"{HUB}/StructureDefinition/ddg-annotation"
CI_EXT = f"{HUB}/StructureDefinition/confidence-interval-95"
#: indicators.csv's change/change_ci_low/change_ci_high: the rate minus the same period's a year
#: earlier, per 100 or 1,000, with its 95% interval (a complex extension: difference + interval)
CHANGE_EXT = f"{HUB}/StructureDefinition/year-over-year-change"
DAR_EXT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
POP_CS = "http://terminology.hl7.org/CodeSystem/measure-population"
_SAFE_ID = re.compile(r"[^A-Za-z0-9\-.]")


def _num(v: Any) -> float | None:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    return float(v)


def period_bounds(period: str) -> tuple[str, str]:
    """ISO start and end dates of ``2025``, ``2025-Q2`` or ``2025-03``."""
    y = int(period[:4])
    if len(period) == 4:
        return f"{y}-01-01", f"{y}-12-31"
    if "-Q" in period:
        q = int(period[-1])
        start, end_month = date(y, 3 * q - 2, 1), 3 * q
    else:
        start, end_month = date(y, int(period[5:7]), 1), int(period[5:7])
    nxt = date(y + 1, 1, 1) if end_month == 12 else date(y, end_month + 1, 1)
    return start.isoformat(), date.fromordinal(nxt.toordinal() - 1).isoformat()


def _absent(annotation: str | None) -> dict[str, Any]:
    code = "not-applicable" if annotation == "3" else "masked"
    ext = [{"url": DAR_EXT, "valueCode": code}]
    if annotation:
        ext.append({"url": ANNOTATION_EXT, "valueCode": str(annotation)})
    return {"extension": ext}


def _population(kind: str, count: Any, annotation: str | None) -> dict[str, Any]:
    pop: dict[str, Any] = {"code": {"coding": [{"system": POP_CS, "code": kind}]}}
    c = _num(count)
    if c is None:
        pop["_count"] = _absent(annotation)
    else:
        pop["count"] = int(c)
    return pop


def _score(row: dict[str, Any]) -> dict[str, Any]:
    r = _num(row.get("rate"))
    if r is None:
        return _absent(row.get("annotation") or "3")
    q: dict[str, Any] = {"value": round(r, 6), "unit": "proportion", "system": "http://unitsofmeasure.org",
                         "code": "1"}
    lo, hi = _num(row.get("ci_low")), _num(row.get("ci_high"))
    if lo is not None and hi is not None:
        q["extension"] = [{"url": CI_EXT, "valueRange": {"low": {"value": round(lo, 6)},
                                                          "high": {"value": round(hi, 6)}}}]
    return q


def _populations(row: dict[str, Any]) -> list[dict[str, Any]]:
    a = row.get("annotation")
    return [_population("denominator", row.get("denominator"), a), _population("numerator", row.get("numerator"), a)]


def _concept(text: str, system: str | None = None) -> dict[str, Any]:
    if system:
        return {"coding": [{"system": system, "code": text}], "text": text}
    return {"text": text}


def _stratum(row: dict[str, Any]) -> dict[str, Any]:
    s: dict[str, Any] = {"population": _populations(row), "measureScore": _score(row)}
    strat, value = str(row["stratifier"]), str(row["stratum"])
    if "*" in strat:
        s["component"] = [{"code": _concept(d, STRATIFIER_CS), "value": _concept(v)}
                          for d, v in zip(strat.split("*"), value.split("*"), strict=True)]
    else:
        s["value"] = _concept(value)
    if row.get("annotation"):
        s["extension"] = [{"url": ANNOTATION_EXT, "valueCode": str(row["annotation"])}]
    return s


def measure_reports(table: pd.DataFrame, *, lhj: str, recipient: str, generated_at: datetime) -> list[dict[str, Any]]:
    """One summary MeasureReport (as a dict) per period in ``table`` (one LHJ's suppressed rows)."""
    reports = []
    when = generated_at.astimezone(UTC).isoformat(timespec="seconds")
    cols = ["measure_id", "period", "stratifier", "stratum", "numerator", "denominator", "rate", "ci_low", "ci_high",
            "annotation"]
    nested: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for rec in table[cols].astype(object).where(table[cols].notna(), None).to_dict("records"):
        nested.setdefault(str(rec["period"]), {}).setdefault(str(rec["measure_id"]), []).append(rec)
    for period, by_measure in nested.items():
        start, end = period_bounds(str(period))
        groups = []
        for measure, recs in by_measure.items():
            total = next((r for r in recs if r["stratifier"] == ALL), None)
            name, _ = describe(str(measure))
            group: dict[str, Any] = {"id": _SAFE_ID.sub("-", str(measure)),
                                     "code": {"coding": [{"system": MEASURE_CS, "code": str(measure), "display": name}],
                                              "text": name}}
            if total is not None:
                group["population"] = _populations(total)
                group["measureScore"] = _score(total)
            by_strat: dict[str, list[dict[str, Any]]] = {}
            for r in recs:
                if r["stratifier"] != ALL:
                    by_strat.setdefault(str(r["stratifier"]), []).append(r)
            if by_strat:  # FHIR arrays are never empty: no element when a period has the total only
                group["stratifier"] = [{"code": [_concept(d, STRATIFIER_CS) for d in s.split("*")],
                                        "stratum": [_stratum(r) for r in strata]} for s, strata in by_strat.items()]
            groups.append(group)
        reports.append({
            "resourceType": "MeasureReport",
            "id": _SAFE_ID.sub("-", f"{recipient}-{period}")[:64],
            "status": "complete", "type": "summary", "measure": MEASURE_SET,
            "subject": {"display": f"{lhj} local health jurisdiction"},
            "date": when, "reporter": {"display": "phmx statewide PHM hub"},
            "period": {"start": start, "end": end},
            "improvementNotation": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
                                                "code": "increase"}]},
            "group": groups,
        })
    return reports


INDICATOR_SET = f"{HUB}/Measure/phmx-population-indicators"
INDICATOR_CS = f"{HUB}/CodeSystem/phmx-indicator"


def _rate_score(row: dict[str, Any]) -> dict[str, Any]:
    """An indicator's rate per 100 members or 1,000 member-months, with its 95% interval."""
    r = _num(row.get("rate"))
    if r is None:
        return _absent(row.get("annotation") or "3")
    unit = "per 100 members" if int(row.get("per") or 100) == 100 else "per 1,000 member-months"
    q: dict[str, Any] = {"value": round(r, 4), "unit": unit}
    lo, hi = _num(row.get("ci_low")), _num(row.get("ci_high"))
    if lo is not None and hi is not None:
        q["extension"] = [{"url": CI_EXT, "valueRange": {"low": {"value": round(lo, 4)},
                                                          "high": {"value": round(hi, 4)}}}]
    return q


def _change_ext(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The year-over-year change of an indicator row as an extension (none when not published)."""
    d, lo, hi = _num(row.get("change")), _num(row.get("change_ci_low")), _num(row.get("change_ci_high"))
    if d is None or lo is None or hi is None:
        return []
    return [{"url": CHANGE_EXT, "extension": [
        {"url": "difference", "valueDecimal": round(d, 4)},
        {"url": "interval95", "valueRange": {"low": {"value": round(lo, 4)}, "high": {"value": round(hi, 4)}}}]}]


def _indicator_stratum(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"value": _concept(str(r["stratum"])), "population": _populations(r),
                           "measureScore": _rate_score(r)}
    ext = ([{"url": ANNOTATION_EXT, "valueCode": str(r["annotation"])}] if r.get("annotation") else []) + _change_ext(r)
    if ext:
        out["extension"] = ext
    return out


def indicator_reports(table: pd.DataFrame, *, lhj: str, recipient: str, generated_at: datetime) -> list[dict[str, Any]]:
    """One summary MeasureReport per period of the population indicators (indicators.csv rows):
    a group per indicator and rate type (``DIAB-crude``, ``DIAB-age_adjusted``), the rate as the
    score, the strata (ZIPs included) as stratifiers; withheld values carry data-absent-reason."""
    if table is None or table.empty:
        return []
    if "kind" in table:  # population rows (members, member-months) are each group's population, not a group
        table = table[table["kind"] != "population"]
    when = generated_at.astimezone(UTC).isoformat(timespec="seconds")
    cols = ["indicator_id", "indicator", "rate_type", "period", "stratifier", "stratum", "numerator", "denominator",
            "rate", "ci_low", "ci_high", "per", "change", "change_ci_low", "change_ci_high", "annotation"]
    nested: dict[str, dict[tuple[str, str, str], list[dict[str, Any]]]] = {}
    for rec in table[cols].astype(object).where(table[cols].notna(), None).to_dict("records"):
        key = (str(rec["indicator_id"]), str(rec["indicator"]), str(rec["rate_type"]))
        nested.setdefault(str(rec["period"]), {}).setdefault(key, []).append(rec)
    reports = []
    for period, groups_of in nested.items():
        start, end = period_bounds(period)
        groups = []
        for (iid, name, rate_type), recs in groups_of.items():
            group: dict[str, Any] = {"id": _SAFE_ID.sub("-", f"{iid}-{rate_type}"),
                                     "code": {"coding": [{"system": INDICATOR_CS, "code": iid, "display": name}],
                                              "text": f"{name} ({rate_type.replace('_', '-')})"}}
            total = next((r for r in recs if r["stratifier"] == ALL), None)
            if total is not None:
                group["population"] = _populations(total)
                group["measureScore"] = _rate_score(total)
                if _change_ext(total):
                    group["extension"] = _change_ext(total)
            by_strat: dict[str, list[dict[str, Any]]] = {}
            for r in recs:
                if r["stratifier"] != ALL:
                    by_strat.setdefault(str(r["stratifier"]), []).append(r)
            if by_strat:
                group["stratifier"] = [{"code": [_concept(st, STRATIFIER_CS)],
                                        "stratum": [_indicator_stratum(r) for r in rows]} for st, rows in by_strat.items()]
            groups.append(group)
        reports.append({
            "resourceType": "MeasureReport", "id": _SAFE_ID.sub("-", f"{recipient}-ind-{period}")[:64],
            "status": "complete", "type": "summary", "measure": INDICATOR_SET,
            "subject": {"display": f"{lhj} local health jurisdiction"}, "date": when,
            "reporter": {"display": "phmx statewide PHM hub"}, "period": {"start": start, "end": end},
            "group": groups})
    return reports


def _value_class(value: Any) -> Any:
    """``value`` (a stratum as JSON) with each number replaced by what FHIR's validation of it
    depends on: an integer in or out of the 32-bit range, a decimal finite or not, whole or not
    (a bool stays a bool). Strings, codes and the structure are kept as they are."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return "<int>" if -(2**31) <= value < 2**31 else f"<int out of range {value}>"
    if isinstance(value, float):
        return f"<decimal finite={math.isfinite(value)} whole={math.isfinite(value) and value.is_integer()}>"
    if isinstance(value, dict):
        return {k: _value_class(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value_class(v) for v in value]
    return f"<{type(value).__name__} {value!r}>"


def validation_skeleton(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (a Bundle of MeasureReports) with each stratifier's strata reduced to those of a
    kind not seen before in the Bundle, for validating with fhir.resources.

    Why: a stratum validates or fails on its structure, its strings and codes and the class of
    each number (:func:`_value_class`), never on which count or rate it carries; an LHJ's Bundle
    holds thousands of strata (every measure and indicator, by every stratifier, ZIPs included,
    for each month, quarter and year of two years) repeating a few hundred kinds, and validating
    every one was most of an LHJ package's fixed cost. Every group, report and entry is kept
    whole, every stratifier keeps its first stratum (an array is never empty), and a stratum
    with a string or number class found nowhere before is kept: so the skeleton fails whenever
    the whole Bundle would.
    """
    seen: set[str] = set()
    out = {**doc, "entry": []} if "entry" in doc else dict(doc)
    for entry in doc.get("entry", []):
        report = entry["resource"]
        groups = []
        for group in report.get("group", []):
            strats = []
            for strat in group.get("stratifier", []):
                kept = []
                for i, stratum in enumerate(strat.get("stratum", [])):
                    kind = json.dumps(_value_class(stratum), sort_keys=True)
                    if i == 0 or kind not in seen:
                        seen.add(kind)
                        kept.append(stratum)
                strats.append({**strat, "stratum": kept} if "stratum" in strat else strat)
            groups.append({**group, "stratifier": strats} if "stratifier" in group else group)
        out["entry"].append({**entry, "resource": {**report, "group": groups} if "group" in report else report})
    return out


def bundle(table: pd.DataFrame, *, lhj: str, recipient: str, generated_at: datetime, bundle_id: str,
           indicators: pd.DataFrame | None = None) -> bytes:
    """The validated collection Bundle as JSON bytes (raises if any resource does not validate);
    with ``indicators``, their MeasureReports too. Validated as :func:`validation_skeleton`
    (each kind of stratum once; the Bundle written is the whole one)."""
    from fhir.resources.R4B.bundle import Bundle

    reports = measure_reports(table, lhj=lhj, recipient=recipient, generated_at=generated_at)
    if indicators is not None:
        reports += indicator_reports(indicators, lhj=lhj, recipient=recipient, generated_at=generated_at)
    doc = {"resourceType": "Bundle", "id": _SAFE_ID.sub("-", bundle_id)[:64], "type": "collection",
           "timestamp": generated_at.astimezone(UTC).isoformat(timespec="seconds"),
           "entry": [{"fullUrl": f"{HUB}/MeasureReport/{r['id']}", "resource": r} for r in reports]}
    if not doc["entry"]:
        del doc["entry"]  # no measures yet (FHIR arrays are never empty)
    Bundle.model_validate(validation_skeleton(doc))
    return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
