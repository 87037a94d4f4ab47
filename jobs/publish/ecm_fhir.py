"""FHIR R4 resources of an ECM package, each validated with fhir.resources (R4B) before it is written.

* **RiskAssessment** per member: the rolling-12-month risk tier (``prediction.qualitativeRisk``,
  code system :data:`TIER_CS`), the window it covers (``occurrencePeriod``: the 12 months ending
  ``as_of``), the model (``method``: mappings/measures/risk.yaml's transparent points model) and
  its basis: the points of each component and the ED visits and unplanned admissions behind
  them (``basis`` as display-only references, ``note`` the total).
* **Flag** per member and population of focus (code system :data:`POPULATION_CS`, the codes of
  value set ecm_population_of_focus), ``category`` admin, with the basis (the plan's authorization
  or the hub's data) in the code's text.
* **MeasureReport** (summary) per provider NPI, plan and month: one group per ECM metric
  (gold.ecm_provider_month): numerator and denominator populations and the score.

Only rows the consent gate let through reach here (:mod:`jobs.publish.ecm_feed`). A member is
named by the plan's member id under ``<HUB>/sid/ecm-plan/<plan id>/member-id`` (the identifier
the ECM provider holds from the plan's assignment file), never by the hub's member id. Resources
carrying Part 2 labels have ``meta.security`` R and the package its Part 2 notice.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date
from typing import Any

from jobs.publish.fhir_measure import HUB
from jobs.publish.fhir_sql import (
    ACT_CODE,
    CONFIDENTIALITY,
    FLAG_CATEGORY,
    PART2_CODES,
    POPULATION_CS,
    RESTRICTED_LABELS,
    RISK_METHOD_CS,
    TIER_CS,
)
from phmx.errors import PhmxError

ECM_METRIC_CS = f"{HUB}/CodeSystem/ecm-metric"
ECM_MEASURE_SET = f"{HUB}/Measure/ecm-provider-metrics"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
POP_CS = "http://terminology.hl7.org/CodeSystem/measure-population"
TIER_DISPLAY = {"high": "High risk", "rising": "Rising risk", "low": "Low risk"}
COMPONENTS = ("utilization_points", "chronic_points", "behavioral_points", "social_points")


def member_system(plan_id: str) -> str:
    return f"{HUB}/sid/ecm-plan/{plan_id}/member-id"


def _id(*parts: object) -> str:
    """A stable resource id (64 characters at most, FHIR's limit): a hash of what the resource is about."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:40]


def _none(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _labels(v: Any) -> list[str]:
    return sorted({str(x) for x in v if x}) if v is not None and not isinstance(v, str) else []


def meta(labels: list[str]) -> dict[str, Any]:
    """``meta.security``: the labels as v3-ActCode codings plus confidentiality R or N (as the plan feed)."""
    level = "R" if set(labels) & RESTRICTED_LABELS else "N"
    return {"security": [*({"system": ACT_CODE, "code": x} for x in labels),
                         {"system": CONFIDENTIALITY, "code": level}]}


def part2(labels: list[str]) -> bool:
    return bool(set(labels) & set(PART2_CODES))


def _subject(row: dict[str, Any]) -> dict[str, Any]:
    return {"identifier": {"system": member_system(str(row["plan_id"])), "value": str(row["plan_member_id"])}}


def _day(v: Any) -> str | None:
    if _none(v):
        return None
    return v.isoformat() if isinstance(v, date) else str(v)[:10]


def risk_assessment(row: dict[str, Any], recipient: str) -> dict[str, Any]:
    as_of = _day(row["as_of"])
    period = str(row["period"])
    start = None
    if as_of and period.startswith("R12-"):
        y, m = int(period[4:8]), int(period[9:11])
        start = date(y - 1 + (m == 12), m % 12 + 1, 1).isoformat()
    basis = [{"display": f"{c.replace('_points', '')} points: {int(row[c])}"} for c in COMPONENTS
             if not _none(row.get(c))]
    basis += [{"display": f"{label} in the 12 months: {int(row[c])}"} for c, label in
              (("ed_visits", "ED visits"), ("unplanned_admissions", "unplanned admissions")) if not _none(row.get(c))]
    tier = str(row["risk_tier"])
    res: dict[str, Any] = {
        "resourceType": "RiskAssessment", "id": _id("ra", recipient, row["plan_id"], row["plan_member_id"], period),
        "meta": meta(_labels(row.get("security_labels"))), "status": "final",
        "method": {"coding": [{"system": RISK_METHOD_CS, "code": "phmx-points",
                               "display": "phmx transparent points model (mappings/measures/risk.yaml)"}],
                   "text": f"rolling 12 months, period {period}"},
        "subject": _subject(row),
        "occurrencePeriod": {k: v for k, v in (("start", start), ("end", as_of)) if v},
        "basis": basis or None,
        "prediction": [{"qualitativeRisk": {"coding": [{"system": TIER_CS, "code": tier,
                                                        "display": TIER_DISPLAY.get(tier, tier)}]}}],
        "note": [{"text": f"total points {int(row['points'])}"}] if not _none(row.get("points")) else None,
    }
    return {k: v for k, v in res.items() if v is not None}


def flag(row: dict[str, Any], recipient: str, displays: dict[str, str]) -> dict[str, Any]:
    code = str(row["population"])
    basis = "assigned by the plan" if row.get("basis") == "plan" else "shown by the hub's data"
    return {
        "resourceType": "Flag", "id": _id("flag", recipient, row["plan_id"], row["plan_member_id"], code, row["basis"]),
        "meta": meta(_labels(row.get("security_labels"))), "status": "active",
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": "admin", "display": "Administrative"}]}],
        "code": {"coding": [{"system": POPULATION_CS, "code": code, "display": displays.get(code, code)}],
                 "text": f"ECM population of focus ({basis})"},
        "subject": _subject(row),
    }


def measure_reports(rows: list[dict[str, Any]], recipient: str, titles: dict[str, str]) -> list[dict[str, Any]]:
    """Summary MeasureReports, one per (provider NPI, plan, month) of gold.ecm_provider_month rows."""
    by: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((str(r["provider_npi"]), str(r["plan_id"]), str(r["month"])), []).append(r)
    out = []
    for (npi, plan, month), rs in sorted(by.items()):
        y, m = int(month[:4]), int(month[5:7])
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        groups = []
        for r in sorted(rs, key=lambda x: str(x["metric_id"])):
            pops = [{"code": {"coding": [{"system": POP_CS, "code": "numerator"}]},
                     "count": int(round(float(r["numerator"] or 0)))}]
            if not _none(r.get("denominator")):
                pops.append({"code": {"coding": [{"system": POP_CS, "code": "denominator"}]},
                             "count": int(round(float(r["denominator"])))})
            g: dict[str, Any] = {"id": _id(r["metric_id"])[:16],
                                 "code": {"coding": [{"system": ECM_METRIC_CS, "code": str(r["metric_id"]),
                                                      "display": titles.get(str(r["metric_id"]).split(":")[0],
                                                                            str(r["metric_id"]))}]},
                                 "population": pops}
            if not _none(r.get("value")):
                g["measureScore"] = {"value": float(r["value"])}
            groups.append(g)
        out.append({"resourceType": "MeasureReport", "id": _id("mr", recipient, npi, plan, month),
                    "status": "complete", "type": "summary", "measure": ECM_MEASURE_SET,
                    "subject": {"identifier": {"system": NPI_SYSTEM, "value": npi}, "display": f"plan {plan}"},
                    "date": nxt.isoformat(),
                    "period": {"start": date(y, m, 1).isoformat(),
                               "end": date.fromordinal(nxt.toordinal() - 1).isoformat()},
                    "group": groups})
    return out


def validate(resource: dict[str, Any]) -> None:
    """Parse with fhir.resources (R4B); PhmxError naming the resource type and id when it fails."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as exc:
        raise PhmxError(f"invalid {resource.get('resourceType')} {resource.get('id')}: {type(exc).__name__}",
                        hint="a builder in jobs/publish/ecm_fhir.py made a resource FHIR R4 does not accept") from exc


def ndjson(resources: list[dict[str, Any]]) -> bytes:
    """Validated resources, one JSON object per line, sorted by id."""
    for r in resources:
        validate(r)
    return "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n"
                   for r in sorted(resources, key=lambda r: r["id"])).encode("utf-8")
