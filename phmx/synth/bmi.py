"""Body mass index (LOINC 39156-5, kg/m2) for the plans' adult members, sent as FHIR Observations.

Why: the obesity indicator (OBES in mappings/indicators/indicators.yaml) counts adults whose latest
BMI of the year is 30 or more among adults with a BMI recorded, and without BMI in the synthetic
data it had no cells. A plan sends the BMIs its network recorded as Observation NDJSON
(``fhir_observation``), with the Patient resources they reference (``fhir_patient``), as a Bulk
Data export would; these are the feeds the hub already takes from a plan, with their receipts.

Who and how often: a member 18 or older on the day has, per calendar year and plan, a BMI recorded
with probability :data:`RECORDED_SHARE` (a visit with vitals), a second one later that year with
probability :data:`SECOND_SHARE`. Each member has one underlying BMI; a reading is it plus a little
noise. Obesity (BMI >= 30) in :data:`OBESE_SHARE` of members, close to low-income US adults'
(CDC, Ogden CL et al., "Prevalence of Obesity Among Adults, by Household Income and Education -
United States, 2011-2014", MMWR 2017;66(50):1369-1373, doi:10.15585/mmwr.mm6650a1: age-adjusted
39.0% of adults at or below 130% of the federal poverty level; in the lowest income group women
45.2%, men 31.5%).

Randomness from its own stream (``bmi:<seed>:<plan>:<member id>``), and the step runs after
every other file is written, reading the plans' enrollment files: nothing else in a seed's output
changes. ``ground_truth/bmi.csv`` lists every reading written, with the person it belongs to.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

from phmx.synth.fhir_resources import (
    landing_ndjson,
    merge_ndjson,
    observation,
    patient,
    quantity,
    sent_patient_ids,
)

BMI_LOINC = "39156-5"
RECORDED_SHARE = 0.6
SECOND_SHARE = 0.25
OBESE_SHARE = 0.38
ADULT_AGE = 18
TRUTH = "ground_truth/bmi.csv"
TRUTH_FIELDS = ("person_id", "submitter", "patient_id", "observation_id", "effective_date", "bmi")


def _month_end(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1) - timedelta(days=1)


def _age(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _covered(row: dict[str, str], first: date, last: date) -> bool:
    """The roster row's coverage span overlaps the month (CCYYMMDD or CCYY-MM-DD dates)."""
    def d(v: str) -> date | None:
        v = v.strip().replace("-", "")
        return date(int(v[:4]), int(v[4:6]), int(v[6:8])) if len(v) == 8 and v.isdigit() else None

    start, end = d(row.get("coverage_start", "")), d(row.get("coverage_end", ""))
    return (start is None or start <= last) and (end is None or end >= first)


def _underlying(rng: random.Random) -> float:
    """One member's BMI: obese with OBESE_SHARE (30-48, skewed low), else 17.5-29.9."""
    if rng.random() < OBESE_SHARE:
        return 30.0 + rng.triangular(0.0, 18.0, 1.0)
    return rng.triangular(17.5, 29.9, 26.0)


def write_bmi(root: Path, seed: int) -> dict[str, int]:
    """Write the BMI Observations (and the Patients they reference) beside the plans' enrollment
    files under ``root``; returns {relative path: lines} of the files written, truth included.

    One plan at a time, each roster row cut to what a Patient needs: at 1,000,000 members the whole
    roster as row dicts held about 4 GB (docs/scaling.md section 8). The output is the same.
    """
    sent = sent_patient_ids(root)  # a plan's own FHIR Patients: the readings reference them
    truth: list[tuple[str, ...]] = []
    written: dict[str, int] = {}
    plans = sorted({p.parts[-4] for p in (root / "landing").glob("mcp_*/enrollment/*/*.txt")})
    for plan in plans:
        for rel, n in _write_plan(root, seed, plan, sent, truth).items():
            written[rel] = n
    with (root / TRUTH).open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(TRUTH_FIELDS)
        w.writerows(truth)
    written[TRUTH] = len(truth)
    return written


#: The roster fields a Patient is built from (:func:`phmx.synth.fhir_resources.patient`).
_PATIENT_FIELDS = ("cin", "family_name", "given_name", "birth_date", "sex", "city", "state", "zip", "county_fips",
                   "address_line")


def _write_plan(root: Path, seed: int, plan: str, sent: set[tuple[str, str]],
                truth: list[tuple[str, ...]]) -> dict[str, int]:
    """One plan's readings (appended to ``truth``) and its NDJSON files written."""
    rosters: dict[tuple[str, str], dict[str, str]] = {}  # (plan, member id) -> first roster row's Patient fields
    months: dict[tuple[str, str], list[str]] = defaultdict(list)  # covered months (YYYY-MM)
    person_of: dict[tuple[str, str], str] = {}
    with (root / "ground_truth" / "person_map.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["feed"] == "enrollment" and r["submitter"] == plan:
                person_of[(r["submitter"], r["source_person_id"])] = r["person_id"]
    for path in sorted((root / "landing").glob(f"{plan}/enrollment/*/*.txt")):
        submitter, period = path.parts[-4], path.parts[-2]
        first = date(int(period[:4]), int(period[5:7]), 1)
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="|"):
                key = (submitter, row["member_local_id"])
                if not _covered(row, first, _month_end(first)) or period in months[key]:
                    continue
                months[key].append(period)
                if key not in rosters:
                    rosters[key] = {f: row[f] for f in _PATIENT_FIELDS if f in row} | {"_period": period}
    fhir: dict[tuple[str, str, str], list[dict[str, object]]] = defaultdict(list)
    for (submitter, local_id), periods in sorted(months.items()):
        row = rosters[(submitter, local_id)]
        digits = row["birth_date"].replace("-", "")
        try:
            birth = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        except ValueError:
            continue  # a roster row without a usable birth date: no vitals for it
        rng = random.Random(f"bmi:{seed}:{submitter}:{local_id}")  # noqa: S311 - synthetic data
        base = _underlying(rng)
        known = (submitter, local_id) in sent
        pid = local_id if known else f"pt-{local_id}"
        readings: list[tuple[date, float]] = []
        for year in sorted({p[:4] for p in periods}):
            in_year = [p for p in periods if p[:4] == year]
            for _ in range(1 + (rng.random() < SECOND_SHARE)) if rng.random() < RECORDED_SHARE else ():
                p = rng.choice(in_year)
                first = date(int(p[:4]), int(p[5:7]), 1)
                day = first + timedelta(days=rng.randrange(_month_end(first).day))
                value = round(base + rng.uniform(-0.6, 0.6), 1)
                if _age(birth, day) >= ADULT_AGE:
                    readings.append((day, value))
        if not readings:
            continue
        if not known:
            fhir[(submitter, "fhir_patient", row["_period"])].append(patient(pid, row | {"birth_date": birth.isoformat()}))
        for n, (day, value) in enumerate(sorted(readings), 1):
            oid = f"{local_id}-BMI{n}"
            fhir[(submitter, "fhir_observation", f"{day:%Y-%m}")].append(
                observation(oid, pid, BMI_LOINC, day, {"valueQuantity": quantity(value, "kg/m2")}))
            truth.append((person_of.get((submitter, local_id), ""), submitter, pid, oid, day.isoformat(), f"{value}"))
    written: dict[str, int] = {}
    for (submitter, feed, period), resources in sorted(fhir.items()):
        rel = landing_ndjson(submitter, feed, period)
        written[rel] = merge_ndjson(root / rel, resources)
    return written
