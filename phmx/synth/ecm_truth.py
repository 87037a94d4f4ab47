"""The ground truth of every ECM metric in a full synthetic run, read back from the files written.

In a full ``phmx synth --ecm-share`` run the ECM members' clinical, cost and quality metrics are fed
by every submitter that sends something about them: the plans' claims (with paid amounts) and
enrollment, the county's mental health services, the ECM clinical writer's FHIR Observations and
the hospital's ADT messages (phmx.synth.ecm_clinical). So the truth reads the landing files
themselves, in plain Python, and applies the definitions of docs/ecm-guide.md (the metric table and
its "Comparison group and index dates") without the engine or any code of jobs/: each file is parsed
here from its published layout (mappings/feeds/<feed>.yaml and the feed guides), and each record is
tied to its person by the generator's own truth (``ground_truth/person_map.csv`` and
``ground_truth/ecm_clinical_records.csv``), not by the identity stage.

What the truth takes as given (``tiers``): the comparison group is matched on the rolling 12-month
risk tier (gold.member_risk, the measures stage's points model, tested on its own in
tests/measures). The tier and the plan it was computed under are an input here, keyed by person and
the month the 12 months end; without it the two comparison metrics are left out (the truth
``generate_ecm`` writes at synth time, before any stage has run, has every other metric).

Covered months are the months of the generator's calendar in which some coverage span of the
person (any plan) covers a day, as ``gold.member_month`` holds them for the run's measurement
year; months before the data's first month count as not covered (the hub has no claims for them).

Files a full run writes that no ECM metric reads (pharmacy: carved out of Medi-Cal plans; dental,
immunizations, SUD admissions, consent forms) are skipped by name; a landing feed this module does
not know is refused, so a new feed in the generator cannot silently go uncounted.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

from phmx.errors import ConfigError

#: Feeds whose records feed the ECM clinical, cost and quality metrics, and those that feed none.
READ = frozenset({"claims", "enrollment", "mh_csi", "fhir_observation", "fhir_patient", "adt"})
NOT_READ = frozenset({"pharmacy", "dental_claims", "immunizations", "sud_caloms", "consent_forms",
                      "ecm_member_information", "ecm_return_transmission", "ecm_outreach", "ecm_services",
                      "cs_referrals"})
#: ``phmx synth --formats`` variants: the same records as a delimited file also written (enrollment as
#: X12 834 and FHIR Coverage, claims as FHIR Encounters without amounts, county services in the fixed-width
#: layout, ...). They repeat facts the delimited files already give (the same spans, days and diagnoses),
#: so reading the delimited files is reading them.
VARIANTS = frozenset({"enrollment_834", "fhir_coverage", "fhir_encounter", "mh_csi_fixed", "fhir_immunization",
                      "immunizations_vxu", "fhir_consent"})
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"
HBA1C = frozenset({"4548-4", "17856-6", "4549-2"})
PHQ9, PHQ2 = frozenset({"44261-6", "44249-1"}), frozenset({"55758-7"})
FINAL = frozenset({"final", "amended", "corrected"})
COMPARISON = ("tcoc_pmpm_comparison_before", "tcoc_pmpm_comparison_after")
Tiers = Mapping[tuple[str, str], tuple[str, str]]  # (person_id, YYYY-MM the 12 months end) -> (plan_id, tier)


@dataclass
class Visit:
    """One encounter as the hub would hold it: a claim (all its lines) or a hospital visit (its ADT messages)."""

    person: str
    setting: str
    day: date | None
    admit: date | None
    dx: tuple[str, ...]
    paid: Fraction | None


@dataclass
class AdtMessage:
    """One HL7 ADT message of a hospital visit (mappings/feeds/adt.yaml: EVN-2, PV1-2, PV1-44, PV1-45, DG1-3)."""

    pid: str
    event: str
    event_date: date | None
    patient_class: str
    admit: date | None
    discharge: date | None
    dx: tuple[str, ...]


@dataclass
class Person:
    """Everything the files say about one person that an ECM metric reads."""

    visits: list[Visit] = field(default_factory=list)
    discharges: dict[tuple[str, str], date] = field(default_factory=dict)  # (hospital, visit) -> discharge day
    adt_dx: list[tuple[date, str]] = field(default_factory=list)
    readings: list[tuple[date, str, float]] = field(default_factory=list)  # day, LOINC, value
    mh_days: set[date] = field(default_factory=set)
    spans: dict[tuple[str, str, str, str], date | None] = field(default_factory=dict)  # coverage -> end


def _d(text: str | None, fmt: str = "%Y-%m-%d") -> date | None:
    text = (text or "").strip()
    return datetime.strptime(text[: len(datetime(2000, 1, 1).strftime(fmt))], fmt).date() if text else None


def _people_map(root: Path) -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name in ("person_map.csv", "ecm_clinical_records.csv"):
        path = root / "ground_truth" / name
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as fh:
                for r in csv.DictReader(fh):
                    out[(r["submitter"], r["feed"], r["source_person_id"])] = r["person_id"]
    return out


def read_files(root: str | Path, only: set[str] | None = None) -> dict[str, Person]:
    """Every landing file under ``root`` an ECM metric reads, per person (the generator's person id); with
    ``only``, those persons' records alone (the ECM members: all the metrics but the comparison group need)."""
    root = Path(root)
    who = _people_map(root)
    people: dict[str, Person] = defaultdict(Person)
    claims: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    adt: dict[tuple[str, str], list[AdtMessage]] = defaultdict(list)

    def person(sub: str, feed: str, sid: str, path: Path) -> str:
        pid = who.get((sub, feed, sid))
        if pid is None:
            raise ConfigError(f"ecm truth: {path.relative_to(root)}: a record with no person in the ground truth",
                              hint="regenerate: person_map.csv and ecm_clinical_records.csv name every record")
        return pid

    for path in sorted((root / "landing").glob("*/*/*/*")):
        sub, feed = path.parts[-4], path.parts[-3]
        if feed in NOT_READ or feed in VARIANTS:
            continue
        if feed not in READ:
            raise ConfigError(f"ecm truth: {path.relative_to(root)}: feed {feed!r} is not read by the ECM ground truth",
                              hint="add it to phmx/synth/ecm_truth.py (READ with its parser, or NOT_READ)")
        if feed == "claims":
            with path.open(encoding="utf-8", newline="") as fh:
                for r in csv.DictReader(fh):
                    pid = person(sub, "claims", r["member_local_id"], path)
                    if only is None or pid in only:
                        claims[(sub, r["claim_id"])].append({**r, "_pid": pid})
        elif feed == "enrollment":
            if path.suffix != ".txt":
                raise ConfigError(f"ecm truth: {path.relative_to(root)}: only the pipe-delimited enrollment layout is read")
            with path.open(encoding="utf-8", newline="") as fh:
                for r in csv.DictReader(fh, delimiter="|"):
                    pid = person(sub, "enrollment", r["member_local_id"], path)
                    if only is not None and pid not in only:
                        continue
                    p = people[pid]
                    start = _d(r["coverage_start"], "%Y%m%d")
                    if start is not None and (r.get("coverage_type") or "HLT") == "HLT":  # records in file order, files in period order: the latest wins
                        p.spans[(sub, r["member_local_id"], r["plan_id"], r["coverage_start"])] = _d(
                            r["coverage_end"], "%Y%m%d")
        elif feed == "mh_csi":
            with path.open(encoding="utf-8", newline="") as fh:
                county_layout = fh.readline().startswith("REC_TYPE")  # mappings/feeds/mh_csi_06019.yaml
                fh.seek(0)
                for row in csv.DictReader(fh, delimiter="|" if county_layout else ","):
                    r = ({"record_type": row["REC_TYPE"], "client_number": row["CLIENT_NO"],
                          "service_date": row["SVC_DT"]} if county_layout else row)
                    day = _d(r["service_date"], "%m/%d/%Y" if county_layout else "%Y-%m-%d")
                    if r["record_type"] == "S" and day is not None:
                        pid = person(sub, "mh_csi", r["client_number"], path)
                        if only is None or pid in only:
                            people[pid].mh_days.add(day)
        elif feed == "fhir_observation":
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    _observation(json.loads(line), sub, path, people, who, only)
        elif feed == "adt":
            for msg in path.read_bytes().decode("utf-8").split("MSH|")[1:]:  # segments end in CR (not a newline)
                seg = {s.split("|")[0]: s.split("|") for s in re.split(r"[\r\n]+", "MSH|" + msg) if s}
                mr = next(c.split("^")[0] for c in seg["PID"][3].split("~") if c.split("^")[4:5] == ["MR"])
                pv1 = seg["PV1"] + [""] * 50
                dg1 = seg.get("DG1", []) + [""] * 4
                if only is not None and person(sub, "adt", mr, path) not in only:
                    continue
                adt[(sub, pv1[19].split("^")[0])].append(AdtMessage(
                    person(sub, "adt", mr, path), seg["EVN"][1], _d(seg["EVN"][2], "%Y%m%d"), pv1[2],
                    _d(pv1[44], "%Y%m%d"), _d(pv1[45], "%Y%m%d"),
                    (dg1[3].split("^")[0].replace(".", ""),) if dg1[3] else ()))
        # fhir_patient: the Patients only name who the Observations are about (the records file says it)

    for lines in claims.values():  # one encounter per claim (mappings/feeds/claims.yaml)
        ed = any(x["place_of_service"] == "23" or x["revenue_code"].startswith("045") for x in lines)
        ip = any(x["claim_type"] == "I" and x["admit_date"] for x in lines)
        first = min(lines, key=lambda x: int(x["claim_line"]))
        dx = [first["dx1"], *sorted({x[f"dx{k}"] for x in lines for k in range(1, 5) if x[f"dx{k}"]})]
        amounts = [Fraction(x["paid_amount"]) for x in lines if x["paid_amount"]]
        admits = [d for x in lines if (d := _d(x["admit_date"])) is not None]
        froms = [d for x in lines if (d := _d(x["service_from"])) is not None]
        people[lines[0]["_pid"]].visits.append(Visit(
            lines[0]["_pid"], "ED" if ed else "IP" if ip else "OP", min(froms) if froms else None,
            min(admits) if admits else None, tuple(dict.fromkeys(dx)), sum(amounts, Fraction(0)) if amounts else None))
    for (hosp, visit), events in adt.items():  # one encounter per visit, and the discharges
        pid = events[0].pid
        p = people[pid]
        classes = {e.patient_class for e in events}
        days = [d for e in events if (d := e.admit or e.event_date) is not None]
        admits = [e.admit for e in events if e.admit is not None]
        p.visits.append(Visit(pid, "IP" if "I" in classes else "ED" if "E" in classes else "OP",
                              min(days) if days else None, min(admits) if admits else None,
                              tuple(c for e in events for c in e.dx if c), None))
        for e in events:
            when = e.event_date or e.discharge or e.admit
            if when is not None:
                p.adt_dx.extend((when, c) for c in e.dx)
        ends = [d for e in events if e.event == "A03" and e.patient_class == "I"
                if (d := e.discharge or e.event_date) is not None]
        if ends:
            p.discharges[(hosp, visit)] = max(ends)
    return dict(people)


def _observation(res: dict[str, Any], sub: str, path: Path, people: dict[str, Person],
                 who: dict[tuple[str, str, str], str], only: set[str] | None) -> None:
    """A FHIR Observation's LOINC values (its own and its components'), if final, amended or corrected."""
    if (res.get("status") is not None and res.get("status") not in FINAL) or res.get("resourceType") != "Observation":
        return
    day = _d(str(res.get("effectiveDateTime") or "")[:10])
    ref = str(res["subject"]["reference"]).split("/", 1)[1]
    values: list[tuple[str, float]] = []
    for part in [res, *res.get("component", [])]:
        codes = [c["code"] for c in part["code"]["coding"] if c.get("system") == "http://loinc.org"]
        v = part["valueQuantity"].get("value") if "valueQuantity" in part else part.get("valueInteger")
        if codes and v is not None:
            values.append((codes[0], float(v)))
    wanted = [(c, v) for c, v in values if c in {SYSTOLIC, DIASTOLIC} | HBA1C | PHQ9 | PHQ2]
    if not wanted or day is None:
        return  # another measure's reading (the adults' BMI): no ECM metric reads it
    pid = who.get((sub, "fhir_patient", ref))
    if pid is None:
        raise ConfigError(f"ecm truth: {path}: an Observation about a Patient with no person in the ground truth")
    if only is not None and pid not in only:
        return
    people[pid].readings.extend((day, c, v) for c, v in wanted)


def cents(x: Fraction) -> float:
    """An exact amount (>= 0) rounded to the cent, half up (as SQL ``round(x, 2)``). Amounts are kept as exact
    fractions of the files' decimal strings, so a sum landing on a half cent is not decided by float noise."""
    return math.floor(x * 100 + Fraction(1, 2)) / 100


def _midx(d: date) -> int:
    return d.year * 12 + d.month


def _mkey(i: int) -> str:
    y, m = divmod(i - 1, 12)
    return f"{y:04d}-{m + 1:02d}"


def _last(i: int) -> date:
    y, m = divmod(i, 12)  # the first day of the next month, less a day
    return date(y, m + 1, 1) - timedelta(days=1)


def _first(i: int) -> date:
    y, m = divmod(i - 1, 12)
    return date(y, m + 1, 1)


class Facts:
    """The per-person facts the definitions use, from the files: covered months, paid by month, and so on."""

    def __init__(self, people: dict[str, Person], cal: list[tuple[date, date]]) -> None:
        self.people = people
        self.months = [_midx(f) for f, _ in cal]
        self.covered: dict[str, set[int]] = {}
        self.paid: dict[str, dict[int, Fraction]] = {}
        for pid, p in people.items():
            self.covered[pid] = {i for i in self.months for (_, _, _, s), end in p.spans.items()
                                 if _d(s, "%Y%m%d") <= _last(i) and (end is None or end >= _first(i))}  # type: ignore[operator]
            paid: dict[int, Fraction] = defaultdict(Fraction)
            for v in p.visits:
                if v.paid is not None and v.day is not None:
                    paid[_midx(v.day)] += v.paid
            self.paid[pid] = paid

    def paid_covered(self, pid: str, i: int) -> Fraction:
        """Paid in month ``i`` if the person was covered in it (cost counts over covered months only)."""
        return self.paid.get(pid, {}).get(i, Fraction(0)) if i in self.covered.get(pid, set()) else Fraction(0)

    def before(self, pid: str, i: int) -> tuple[Fraction, int]:
        """Paid and covered months in the 12 months before month ``i``."""
        js = [j for j in range(i - 12, i) if j in self.covered.get(pid, set())]
        return sum((self.paid_covered(pid, j) for j in js), Fraction(0)), len(js)


def clinical_metrics(members: list, provs: list, cal: list[tuple[date, date]], people: dict[str, Person],
                     tiers: Tiers | None) -> list[dict[str, object]]:
    """The clinical, financial and quality metrics per provider, plan and month (docs/ecm-guide.md)."""
    from phmx.synth.ecm_submitters import provider_plan_months

    f = Facts(people, cal)
    tiers = tiers or {}
    ecm = {m.person_id for m in members}
    none = Person()

    # the comparison group, per (plan, tier, month): never-ECM members covered in the month, tiered as of the month before
    cmp: dict[tuple[str, str, int], list[Fraction]] = defaultdict(lambda: [Fraction(0)] * 4)  # paid, n, before paid, months
    for pid in people:
        if pid in ecm:
            continue
        for i in f.months:
            t = tiers.get((pid, _mkey(i - 1)))
            if t is None or i not in f.covered[pid]:
                continue
            acc = cmp[(t[0], t[1], i)]
            b_paid, b_months = f.before(pid, i)
            acc[0] += f.paid_covered(pid, i)
            acc[1] += 1
            acc[2] += b_paid
            acc[3] += b_months

    out: list[dict[str, object]] = []
    for npi, plan, first, last, ms, _auth, eng in provider_plan_months(members, provs, cal):
        i = _midx(first)
        r12, dx24 = _first(i - 11), _first(i - 23)
        ed = adm = htn_n = htn_ok = dm_n = dm_poor = screened = 0
        before_paid = after_paid = Fraction(0)
        before_months = after_n = 0
        cmp_a: list[Fraction] = []
        cmp_b: list[Fraction] = []
        for m in eng:
            p = people.get(m.person_id, none)
            ed += len({v.day for v in p.visits if v.setting == "ED" and v.day and first <= v.day <= last})
            adm += len({d for v in p.visits if v.setting == "IP" and (d := v.admit or v.day) and first <= d <= last})
            dxs = [(v.day, c) for v in p.visits if v.day for c in v.dx] + p.adt_dx
            if any(c.startswith("I10") and dx24 <= d <= last for d, c in dxs):
                htn_n += 1
                bp: dict[date, dict[str, float]] = defaultdict(dict)
                for d, code, v in p.readings:
                    if code in (SYSTOLIC, DIASTOLIC) and r12 <= d <= last:
                        bp[d][code] = min(v, bp[d].get(code, v))
                days = [d for d, x in bp.items() if len(x) == 2]
                if days:
                    x = bp[max(days)]
                    htn_ok += x[SYSTOLIC] < 140 and x[DIASTOLIC] < 90
            if any(c.startswith(("E10", "E11", "E13")) and dx24 <= d <= last for d, c in dxs):
                dm_n += 1
                a1c = [(d, v) for d, code, v in p.readings if code in HBA1C and r12 <= d <= last]
                if a1c:
                    latest = max(d for d, _ in a1c)
                    dm_poor += min(v for d, v in a1c if d == latest) > 9.0
                else:
                    dm_poor += 1
            screened += any(code in PHQ9 | PHQ2 and r12 <= d <= last for d, code, _ in p.readings)
            if i in f.covered.get(m.person_id, set()):
                after_paid += f.paid_covered(m.person_id, i)
                after_n += 1
            assert m.enrollment is not None
            e = _midx(m.enrollment)
            bp_, bm_ = f.before(m.person_id, e)
            if bm_ > 0:
                before_paid += bp_
                before_months += bm_
            t = tiers.get((m.person_id, _mkey(e - 1)))
            if t is not None:
                group = cmp.get((plan, t[1], i))
                if group is not None and group[3] > 0:
                    cmp_b.append(group[2] / group[3])
                if group is not None and group[1] > 0 and i in f.covered.get(m.person_id, set()):
                    cmp_a.append(group[0] / group[1])
        disc = fu = pos = pos_fu = 0
        for m in ms:
            p = people.get(m.person_id, none)
            tc = [s[1] for s in m.services if s[2] == "TRANSITIONAL_CARE" and m.authorized_on(s[1])]
            op = [v.day for v in p.visits if v.setting == "OP" and v.day]
            for d in p.discharges.values():
                end = d + timedelta(days=7)
                if m.authorized_on(d) and first <= end <= last:
                    disc += 1
                    fu += any(d < x <= end for x in op + tc)
            dep = [v.day for v in p.visits if v.setting == "OP" and v.day
                   and any(c.startswith(("F32", "F33", "F341")) for c in v.dx)]
            positive = {d for d, code, v in p.readings if (code in PHQ9 and v >= 10) or (code in PHQ2 and v >= 3)}
            for d in positive:
                end = d + timedelta(days=30)
                if m.authorized_on(d) and first <= end <= last:
                    pos += 1
                    pos_fu += any(d <= x <= end for x in [*dep, *p.mh_days])
        n = len(eng)
        rows: list[tuple[str, float, float, float]] = [
            ("ed_visits_per_1000", ed, n, 1000.0), ("admissions_per_1000", adm, n, 1000.0),
            ("follow_up_7_days_after_discharge", fu, disc, 1.0),
            ("tcoc_pmpm_before_enrollment", cents(before_paid), before_months, 1.0),
            ("tcoc_pmpm_after_enrollment", cents(after_paid), after_n, 1.0),
            ("tcoc_pmpm_comparison_before", cents(sum(cmp_b, Fraction(0))), len(cmp_b), 1.0),
            ("tcoc_pmpm_comparison_after", cents(sum(cmp_a, Fraction(0))), len(cmp_a), 1.0),
            ("cbp", htn_ok, htn_n, 1.0), ("gsd_poor_control", dm_poor, dm_n, 1.0),
            ("dsf_screening", screened, n, 1.0), ("dsf_follow_up", pos_fu, pos, 1.0),
        ]
        for mid, num, den, scale in rows:
            value = round(num / den * scale, 6) if den else None
            out.append({"provider_npi": npi, "plan_id": plan, "month": f"{first:%Y-%m}", "metric_id": mid,
                        "numerator": float(num), "denominator": float(den),
                        "value": "" if value is None else value})
    return out


def full_truth(root: str | Path, tiers: Tiers | None = None) -> list[dict[str, object]]:
    """Every metric of mappings/ecm/metrics.yaml per ECM provider, plan and month of the run under ``root``:
    the process metrics from the stories, the others from every file written (see the module docstring).
    Without ``tiers`` the two comparison metrics are left out (they need the hub's risk tiers) and only the
    ECM members' records are read; that is the truth ``generate_ecm`` writes."""
    from phmx.synth.ecm_submitters import provider_month_truth, replay

    members, provs, cal, _seed = replay(root)
    only = None if tiers is not None else {m.person_id for m in members}
    rows = clinical_metrics(members, provs, cal, read_files(root, only), tiers)
    if tiers is None:
        rows = [r for r in rows if r["metric_id"] not in COMPARISON]
    return provider_month_truth(members, provs, cal) + rows
