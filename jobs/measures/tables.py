"""Table contracts owned by the measures stage, to be folded into ``phmx/tables.py``.

They use :class:`phmx.tables.Table` so the lakehouse helpers (read, overwrite, merge, conform_to)
work on them unchanged.
"""

from __future__ import annotations

from phmx.tables import Table


def _t(layer: str, name: str, cols: str, keys: str = "", doc: str = "") -> Table:
    parsed = []
    for part in cols.split(","):
        part = part.strip()
        if part:
            c, t = part.split(None, 1)
            parsed.append((c, t.replace(";", ",")))
    return Table(layer, name, tuple(parsed), tuple(k for k in keys.split() if k), doc)


MEASURE_EVENT = _t(
    "gold",
    "measure_event",
    "measure_id string, period string, member_id string, unit_id string, anchor_date date,"
    "in_denominator boolean, in_numerator boolean, exclusion_reason string, numerator_date date,"
    "numerator_source string, age_on_anchor int, lhj string, age_band string, sex string,"
    "race_ethnicity string, plan_id string, security_labels array<string>, sensitivity string,"
    "run_id string",
    keys="measure_id period unit_id",
    doc="One row per measure denominator unit (an ED visit, a discharge, a member-year). "
        "period: 'YYYY' (measurement year) or 'R12-YYYY-MM' (12 months ending that month). "
        "Rows with in_denominator false carry the exclusion_reason. security_labels: the labels of "
        "the index event and of the evidence that met the numerator; sensitivity sud > mh > general "
        "(never below the measure's own). Stratifiers: lhj, age_band, sex, race_ethnicity, plan_id "
        "(on the anchor date, or 'none').",
)

MEMBER_RISK = _t(
    "gold",
    "member_risk",
    "member_id string, period string, as_of date, risk_tier string, points int,"
    "utilization_points int, chronic_points int, behavioral_points int, social_points int,"
    "ed_visits int, unplanned_admissions int, chronic_conditions array<string>, smi boolean,"
    "sud boolean, homeless boolean, ecm_homeless boolean, ecm_high_utilizer boolean,"
    "ecm_smi_sud boolean, plan_id string, lhj string, security_labels array<string>,"
    "sensitivity string, run_id string",
    keys="member_id period",
    doc="Risk tier (high / rising / low) from the transparent points model in "
        "mappings/measures/risk.yaml over the 12 months ending as_of, with every component and "
        "the ECM population-of-focus flags. security_labels: of the evidence behind the flags.",
)

ALL: tuple[Table, ...] = (MEASURE_EVENT, MEMBER_RISK)
