"""Synthetic clinical histories for ECM members, and the ground truth of the ECM clinical, cost and
quality metrics computed from them in plain Python.

For each ECM member (a story of phmx.synth.ecm_submitters) it plays out, month by month from 12
months before the first month: office visits (some with hypertension, diabetes or depression
diagnoses), ED visits, inpatient stays (a plan claim and the hospital's ADT admit and discharge
for each), a follow-up visit after most discharges, blood pressure readings for members with
hypertension (two on some days), HbA1c results for members with diabetes, and PHQ-2/PHQ-9
screens with a follow-up visit after most positive ones. Every claim carries a paid amount. ED
visits and stays become rarer once the member is engaged in ECM.

The comparison population (members never in ECM) is described by formulas of the member's index
(``background_paid``, ``tier_of``), so a large population needs no per-member state here and
the engine can build the same rows with SQL.

``clinical_truth`` is a second implementation, in plain Python, of the definitions in
jobs/ecm/outcomes.py and mappings/ecm/metrics.yaml (it shares no code with the Spark one it checks).
Kept in its own module; deterministic for a seed.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from phmx.synth.ecm_submitters import Member, Provider, provider_plan_months

TIERS = ("high", "rising", "low")
#: ground_truth/ file naming the person behind each FHIR Patient id and hospital record number written here
#: (person_map.csv holds the main generator's records).
RECORDS_FILE = "ecm_clinical_records.csv"


@dataclass
class Stay:
    visit: str
    admit: date
    discharge: date
    paid: float


@dataclass
class History:
    """One ECM member's clinical events (dates; paid amounts in US dollars)."""

    htn: bool = False
    dm: bool = False
    office: list[tuple[str, date, tuple[str, ...], float]] = field(default_factory=list)  # id, day, dx, paid
    ed: list[tuple[str, date, float]] = field(default_factory=list)
    stays: list[Stay] = field(default_factory=list)
    bp: list[tuple[str, date, float, float]] = field(default_factory=list)  # id, day, systolic, diastolic
    a1c: list[tuple[str, date, float]] = field(default_factory=list)
    screens: list[tuple[str, date, str, float]] = field(default_factory=list)  # id, day, PHQ9|PHQ2, score


def tier_of(index: int) -> str:
    """A population member's risk tier (the same every month), from its index."""
    return "high" if index % 20 == 0 else "rising" if index % 5 == 0 else "low"


def background_paid(index: int, month_index: int) -> float | None:
    """A non-ECM member's one claim of a month (month_index 0 = the first history month), or None."""
    if (index * 31 + month_index * 17) % 9 != 0:
        return None
    return 20.0 + ((index * 7919 + month_index * 104729) % 50000) / 100.0


def _months(first: date, n: int) -> list[tuple[date, date]]:
    out = []
    y, m = first.year, first.month
    for _ in range(n):
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        out.append((date(y, m, 1), nxt - timedelta(days=1)))
        y, m = nxt.year, nxt.month
    return out


def history_months(cal: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """The months histories cover: 12 before the first calendar month, then the calendar."""
    first = cal[0][0]
    start = date(first.year - 1, first.month, 1)
    return _months(start, 12 + len(cal))


def play(m: Member, seed: int, cal: list[tuple[date, date]], chronic: str | None = None) -> History:
    """One member's history. ``chronic`` is the person's chronic conditions as the main generator drew them
    (people.csv, ``|``-separated): when given, blood pressures follow its hypertension and HbA1c results
    its diabetes, so the readings go to the members whose claims carry the diagnosis; otherwise (the
    benchmark, where the histories are the only data) both are drawn here."""
    rng = random.Random(f"ecm-clinical:{seed}:{m.member_local_id}")  # noqa: S311 - synthetic data
    htn, dm = rng.random() < 0.45, rng.random() < 0.3  # drawn either way: the rest of the stream is unchanged
    if chronic is not None:
        htn, dm = "hypertension" in chronic.split("|"), "diabetes" in chronic.split("|")
    h = History(htn=htn, dm=dm)
    depressed = rng.random() < 0.3
    n = 0

    def nid(kind: str) -> str:
        nonlocal n
        n += 1
        return f"{m.member_local_id}-{kind}{n}"

    def office(day: date, *dx: str) -> None:
        h.office.append((nid("O"), day, dx or ("Z0000",), round(45 + rng.random() * 115, 2)))

    for first, last in history_months(cal):
        days = (last - first).days + 1
        engaged = m.enrollment is not None and m.enrollment <= last
        if rng.random() < 0.35:
            dx = tuple(c for c, on in (("I10", h.htn), ("E119", h.dm), ("F329", depressed and rng.random() < 0.3)) if on)
            office(first + timedelta(days=rng.randrange(days)), *dx)
        if rng.random() < (0.05 if engaged else 0.1):
            h.ed.append((nid("E"), first + timedelta(days=rng.randrange(days)), round(250 + rng.random() * 1150, 2)))
        if rng.random() < (0.02 if engaged else 0.05):
            admit = first + timedelta(days=rng.randrange(days))
            los = rng.randint(1, 7)
            h.stays.append(Stay(nid("V"), admit, admit + timedelta(days=los), round(2000.0 * los, 2)))
            gap = rng.randint(1, 7) if rng.random() < 0.6 else rng.randint(8, 20)
            office(admit + timedelta(days=los + gap))
        if h.htn and rng.random() < 0.5:
            day = first + timedelta(days=rng.randrange(days))
            for _ in range(2 if rng.random() < 0.2 else 1):
                h.bp.append((nid("B"), day, float(rng.randint(112, 168)), float(rng.randint(68, 102))))
        if h.dm and first.month % 3 == 1 and rng.random() < 0.6:
            h.a1c.append((nid("A"), first + timedelta(days=rng.randrange(days)), round(6.0 + rng.random() * 5.5, 1)))
        if first.month in (1, 7) and rng.random() < 0.5:
            day = first + timedelta(days=rng.randrange(days))
            phq9 = rng.random() < 0.5
            score = float(rng.randint(0, 20) if phq9 else rng.randint(0, 6))
            if depressed:
                score = float(rng.randint(10, 24) if phq9 else rng.randint(3, 6))
            h.screens.append((nid("S"), day, "PHQ9" if phq9 else "PHQ2", score))
            if score >= (10 if phq9 else 3) and rng.random() < 0.6:
                office(day + timedelta(days=rng.randint(0, 30) if rng.random() < 0.8 else rng.randint(31, 45)), "F329")
    return h


def _mkey(d: date) -> str:
    return f"{d:%Y-%m}"


def _add_months(d: date, k: int) -> date:
    y, mo = divmod(d.year * 12 + d.month - 1 + k, 12)
    return date(y, mo + 1, 1)


def clinical_truth(members: list[Member], provs: list[Provider], cal: list[tuple[date, date]],
                   histories: dict[str, History], index_of: dict[str, int], population: int
                   ) -> list[dict[str, object]]:
    """The clinical, cost and quality metrics per provider, plan and month, from the definitions. Assumes what
    the benchmark writes: every population member covered every history month, tiers by ``tier_of``, the
    plan of member ``i`` is ``plans[i % 2]``, and non-ECM members' claims by ``background_paid``."""
    hist_months = history_months(cal)
    mindex = {_mkey(f): k for k, (f, _) in enumerate(hist_months)}
    ecm_idx = {index_of[m.member_local_id] for m in members}

    # the comparison group: sums per (plan parity, tier, history month) over never-ECM members
    import numpy as np

    idx = np.arange(population, dtype=np.int64)
    non = np.ones(population, dtype=bool)
    non[list(ecm_idx)] = False
    tier = np.where(idx % 20 == 0, 0, np.where(idx % 5 == 0, 1, 2))
    par = idx % 2
    paid_sum = np.zeros((2, 3, len(hist_months)))
    count = np.zeros((2, 3))
    for p in (0, 1):
        for t in (0, 1, 2):
            count[p, t] = int(np.sum(non & (par == p) & (tier == t)))
    for k in range(len(hist_months)):
        has = ((idx * 31 + k * 17) % 9 == 0) & non
        amount = 20.0 + ((idx * 7919 + k * 104729) % 50000) / 100.0
        for p in (0, 1):
            for t in (0, 1, 2):
                sel = has & (par == p) & (tier == t)
                paid_sum[p, t, k] = float(np.sum(amount[sel]))

    def cmp_after(parity: int, t: str, month: str) -> float | None:
        ti = TIERS.index(t)
        c = count[parity, ti]
        return None if c == 0 else paid_sum[parity, ti, mindex[month]] / c

    def cmp_before(parity: int, t: str, month: str) -> float | None:
        ti, k = TIERS.index(t), mindex[month]
        c = count[parity, ti]
        if c == 0 or k < 1:
            return None
        lo = max(0, k - 12)
        return float(np.sum(paid_sum[parity, ti, lo:k])) / (c * (k - lo))

    def paid_in(h: History, lo: date, hi: date) -> float:
        return (sum(p for _, d, _, p in h.office if lo <= d <= hi) + sum(p for _, d, p in h.ed if lo <= d <= hi)
                + sum(s.paid for s in h.stays if lo <= s.admit <= hi))

    out: list[dict[str, object]] = []
    for npi, plan, first, last, ms, _auth, eng in provider_plan_months(members, provs, cal):
        month = _mkey(first)
        r12 = _add_months(first, -11)
        dx24 = _add_months(first, -23)
        ed = adm = 0
        htn_n = htn_ok = dm_n = dm_poor = screened = 0
        before_paid = before_months = 0.0
        after_paid = 0.0
        cmp_a: list[float] = []
        cmp_b: list[float] = []
        for m in eng:
            h = histories[m.member_local_id]
            ed += len({d for _, d, _ in h.ed if first <= d <= last})
            adm += len({s.admit for s in h.stays if first <= s.admit <= last})
            dxs = [(d, c) for _, d, cs, _ in h.office for c in cs]
            if any(c.startswith("I10") and dx24 <= d <= last for d, c in dxs):
                htn_n += 1
                days: dict[date, list[tuple[float, float]]] = defaultdict(list)
                for _, d, sy, di in h.bp:
                    if r12 <= d <= last:
                        days[d].append((sy, di))
                if days:
                    latest = days[max(days)]
                    htn_ok += min(sy for sy, _ in latest) < 140 and min(di for _, di in latest) < 90
            if any(c[:3] in ("E10", "E11", "E13") and dx24 <= d <= last for d, c in dxs):
                dm_n += 1
                vals: dict[date, list[float]] = defaultdict(list)
                for _, d, v in h.a1c:
                    if r12 <= d <= last:
                        vals[d].append(v)
                dm_poor += (not vals) or min(vals[max(vals)]) > 9.0
            screened += any(r12 <= d <= last for _, d, _, _ in h.screens)
            assert m.enrollment is not None
            e_first = date(m.enrollment.year, m.enrollment.month, 1)
            b_lo = _add_months(e_first, -12)
            covered_from = hist_months[0][0]
            lo = max(b_lo, covered_from)
            months_before = (e_first.year - lo.year) * 12 + e_first.month - lo.month
            if months_before > 0:
                before_paid += paid_in(h, lo, e_first - timedelta(days=1))
                before_months += months_before
            after_paid += paid_in(h, first, last)
            tr = tier_of(index_of[m.member_local_id])
            parity = index_of[m.member_local_id] % 2
            a, b = cmp_after(parity, tr, month), cmp_before(parity, tr, month)
            if a is not None:
                cmp_a.append(a)
            if b is not None:
                cmp_b.append(b)
        # discharges whose 7 days end in the month, inside the span
        disc = fu = 0
        for m in ms:
            h = histories[m.member_local_id]
            tc = [sv[1] for sv in m.services if sv[2] == "TRANSITIONAL_CARE" and m.authorized_on(sv[1])]
            for st in h.stays:
                end = st.discharge + timedelta(days=7)
                if m.authorized_on(st.discharge) and first <= end <= last:
                    disc += 1
                    lo_d, hi_d = st.discharge + timedelta(days=1), end
                    fu += any(lo_d <= d <= hi_d for _, d, _, _ in h.office) or any(lo_d <= d <= hi_d for d in tc)
        # positive screens whose 30 days end in the month, inside the span
        pos = pos_fu = 0
        for m in ms:
            h = histories[m.member_local_id]
            pdays = {d for _, d, inst, sc in h.screens if sc >= (10 if inst == "PHQ9" else 3)}
            for d in pdays:
                end = d + timedelta(days=30)
                if m.authorized_on(d) and first <= end <= last:
                    pos += 1
                    pos_fu += any(d <= v <= end and any(c.startswith(("F32", "F33", "F341")) for c in cs)
                                  for _, v, cs, _ in h.office)
        n = len(eng)
        rows: list[tuple[str, float, float, float]] = [
            ("ed_visits_per_1000", ed, n, 1000.0), ("admissions_per_1000", adm, n, 1000.0),
            ("follow_up_7_days_after_discharge", fu, disc, 1.0),
            ("tcoc_pmpm_before_enrollment", round(before_paid, 2), before_months, 1.0),
            ("tcoc_pmpm_after_enrollment", round(after_paid, 2), n, 1.0),
            ("tcoc_pmpm_comparison_before", round(sum(cmp_b), 2), len(cmp_b), 1.0),
            ("tcoc_pmpm_comparison_after", round(sum(cmp_a), 2), len(cmp_a), 1.0),
            ("cbp", htn_ok, htn_n, 1.0), ("gsd_poor_control", dm_poor, dm_n, 1.0),
            ("dsf_screening", screened, n, 1.0), ("dsf_follow_up", pos_fu, pos, 1.0),
        ]
        for mid, num, den, scale in rows:
            value = round(num / den * scale, 6) if den else None
            out.append({"provider_npi": npi, "plan_id": plan, "month": month, "metric_id": mid,
                        "numerator": float(num), "denominator": float(den),
                        "value": "" if value is None else value})
    return out


def _hl7_adt(n: str, event: str, m: Member, mr: str, st: Stay, when: date) -> str:
    """One HL7 v2.5.1 ADT message (A01 admit or A03 discharge) of an inpatient stay."""
    who = m.who
    admit = f"{st.admit:%Y%m%d}0900"
    disch = f"{st.discharge:%Y%m%d}1200" if event == "A03" else ""
    pv1 = ["PV1", "1", "I", *[""] * 16, f"{st.visit}^^^SYNTHHOSP^VN", *[""] * 24, admit, disch]
    return "\r".join([
        f"MSH|^~\\&|SYNTHEHR|SYNTHHOSP|PHMX|CDPH|{when:%Y%m%d}1200||ADT^{event}^ADT_A01|{n}|P|2.5.1",
        f"EVN|{event}|{when:%Y%m%d}1200",
        f"PID|1||{mr}^^^SYNTHHOSP^MR~{who['cin']}^^^CADHCS^MA||{who['family_name']}^{who['given_name']}||"
        f"{who['birth_date'].replace('-', '')}|{m.sex if m.sex in ('F', 'M') else 'U'}",
        "|".join(pv1)]) + "\r"


def write_files(root: Path, members: list[Member], cal: list[tuple[date, date]], seed: int,
                hospital: str = "hosp_synth_general") -> dict[str, int]:
    """Write the clinical histories' observations and hospital stays as submitters send them: each plan's
    FHIR Patients and Observations (blood pressure panels with systolic and diastolic components, HbA1c,
    PHQ-2/PHQ-9 totals) and one hospital's HL7 v2 ADT admits and discharges, per month of the calendar.
    The plans' claims for these members come from the main generator (with paid amounts), so the
    histories' own claims are not written: the ground truth of a full run reads every file written
    (phmx.synth.ecm_truth); ``clinical_truth`` here is the benchmark's, where the histories are the
    only clinical data. Beside them, ``ground_truth/ecm_clinical_records.csv`` names the person
    behind each Patient id and hospital record number referenced."""
    from phmx.synth.fhir_resources import (
        landing_ndjson,
        merge_ndjson,
        observation,
        patient,
        quantity,
        sent_patient_ids,
    )

    months = {f"{f:%Y-%m}" for f, _ in cal}
    fhir: dict[tuple[str, str, str], list[dict[str, object]]] = defaultdict(list)
    adt: dict[str, list[str]] = defaultdict(list)
    first_period = f"{cal[0][0]:%Y-%m}"
    sent = sent_patient_ids(root)  # a plan's own FHIR Patients: the readings reference them
    with (root / "ground_truth" / "people.csv").open(encoding="utf-8", newline="") as fh:
        people = {r["person_id"]: r for r in csv.DictReader(fh)}
    records: list[dict[str, object]] = []  # the truth of who each record written here is about
    for m in sorted(members, key=lambda x: (x.plan_submitter, x.member_local_id)):
        h = play(m, seed, cal, people[m.person_id]["chronic"] if m.person_id in people else None)
        known = (m.plan_submitter, m.member_local_id) in sent
        pid = m.member_local_id if known else f"pt-{m.member_local_id}"
        records.append({"submitter": m.plan_submitter, "feed": "fhir_patient", "source_person_id": pid,
                        "person_id": m.person_id})
        records.append({"submitter": hospital, "feed": "adt", "source_person_id": f"H{m.member_local_id}",
                        "person_id": m.person_id})
        if not known:
            who = {k: m.who[k] for k in ("cin", "family_name", "given_name", "birth_date")} | {"sex": m.sex}
            fhir[(m.plan_submitter, "fhir_patient", first_period)].append(patient(pid, who))

        items: list[tuple[str, date, str, dict[str, object]]] = []
        for oid, day, sy, di in h.bp:
            items.append((oid, day, "85354-9", {"component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": c}]}, "valueQuantity": quantity(v, "mm[Hg]")}
                for c, v in (("8480-6", sy), ("8462-4", di))]}))
        for oid, day, v in h.a1c:
            items.append((oid, day, "4548-4", {"valueQuantity": quantity(v, "%")}))
        for oid, day, inst, score in h.screens:
            items.append((oid, day, "44261-6" if inst == "PHQ9" else "55758-7", {"valueInteger": int(score)}))
        for oid, day, code, value in items:
            period = f"{day:%Y-%m}"
            if period in months:
                fhir[(m.plan_submitter, "fhir_observation", period)].append(observation(oid, pid, code, day, value))
        for st in h.stays:
            for event, when in (("A01", st.admit), ("A03", st.discharge)):
                period = f"{when:%Y-%m}"
                if period in months:
                    adt[period].append(_hl7_adt(f"{st.visit}-{event}", event, m, f"H{m.member_local_id}", st, when))
    written: dict[str, int] = {}
    # the plans' FHIR files may already hold other resources of the month (the adults' BMI,
    # phmx.synth.bmi): added to, never overwritten, as the hub keeps one file per plan and month
    for (sub, feed, period), resources in sorted(fhir.items()):
        rel = landing_ndjson(sub, feed, period)
        merge_ndjson(root / rel, resources)
        written[rel] = len(resources)
    for period, msgs in sorted(adt.items()):
        rel = f"landing/{hospital}/adt/{period}/{hospital}_adt_{period.replace('-', '')}.hl7"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(msgs), encoding="utf-8")
        written[rel] = len(msgs)
    path = root / "ground_truth" / RECORDS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=("submitter", "feed", "source_person_id", "person_id"), lineterminator="\n")
        w.writeheader()
        w.writerows(records)
    return written
