"""The LHJ MeasureReport Bundle is validated once per kind of stratum, and still refused whenever
any stratum of it would not validate."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from fhir.resources.R4B.bundle import Bundle

from jobs.publish import fhir_measure

ZIPS = [f"9{n:04d}" for n in range(40)]


def _table() -> pd.DataFrame:
    """Twelve months of one measure, its total and forty ZIP strata each, counts all different."""
    rows = []
    for m in range(1, 13):
        period = f"2025-{m:02d}"
        rows.append({"measure_id": "BCS-E", "period": period, "stratifier": "all", "stratum": "all",
                     "numerator": 40 * m, "denominator": 90 * m, "rate": 4 / 9, "ci_low": 0.3, "ci_high": 0.5,
                     "annotation": None})
        for i, z in enumerate(ZIPS):
            small = i % 5 == 0  # a masked cell: counts withheld, annotated
            rows.append({"measure_id": "BCS-E", "period": period, "stratifier": "zip", "stratum": z,
                         "numerator": None if small else i + m, "denominator": None if small else 3 * i + m + 20,
                         "rate": None if small else (i + m) / (3 * i + m + 20),
                         "ci_low": None if small else 0.1, "ci_high": None if small else 0.9,
                         "annotation": "1" if small else None})
    return pd.DataFrame(rows)


def _bundle(table: pd.DataFrame) -> bytes:
    return fhir_measure.bundle(table, lhj="Alameda", recipient="lhj_alameda",
                               generated_at=datetime(2026, 1, 5, tzinfo=UTC), bundle_id="b1")


def test_the_skeleton_holds_each_kind_of_stratum_once_and_the_bundle_written_is_whole():
    doc = json.loads(_bundle(_table()))
    strata = [s for e in doc["entry"] for g in e["resource"]["group"] for st in g["stratifier"] for s in st["stratum"]]
    assert len(strata) == 12 * 40
    skeleton = fhir_measure.validation_skeleton(doc)
    kept = [s for e in skeleton["entry"] for g in e["resource"]["group"] for st in g["stratifier"]
            for s in st["stratum"]]
    # Each ZIP once as a counted and (every fifth) as a masked cell, plus each month's first stratum.
    assert len(kept) < len(strata) / 5
    assert {s["value"]["text"] for s in kept} == set(ZIPS)
    assert len(skeleton["entry"]) == len(doc["entry"]) == 12
    Bundle.model_validate(doc)  # the whole Bundle validates too


@pytest.mark.parametrize(("column", "value"), [("stratum", ""), ("numerator", 2**40), ("ci_high", float("inf"))])
def test_a_bundle_with_one_invalid_stratum_anywhere_is_refused(column, value):
    """The last month's last ZIP cell broken (an empty stratum text, a count beyond FHIR's integer,
    an infinite bound): the skeleton keeps it, since no stratum of its kind came before."""
    table = _table()
    last = table.index[-1]
    table.loc[last, column] = value
    with pytest.raises(ValueError, match="validation error"):
        _bundle(table)
