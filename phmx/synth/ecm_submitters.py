"""Synthetic ECM submitters: plan assignments and ECM providers' returns, with ground truth.

A post-pass over a generated population (``generate()`` output): from the plans' enrollment
files it picks a share of members with a CIN (5% by default), authorizes each for ECM with one
of ``providers`` ECM providers, and plays out what happens next, day by day: outreach attempts
(method, outcome) until the member enrolls, declines or cannot be reached; enrollment, the
comprehensive assessment, the care plan and the lead care manager; ECM services by core
service; Community Supports referrals through their closed loop; and some discontinuations.
It writes what each party would send (``ecm_member_information`` per plan and month;
``ecm_return_transmission``, ``ecm_outreach``, ``ecm_services`` and ``cs_referrals`` per
provider and month) and, beside them, the truth:

* ``ground_truth/ecm_members.csv``: each ECM member's story (dates, outcome), by person id;
* ``ground_truth/ecm_provider_month.csv``: every metric of mappings/ecm/metrics.yaml per
  provider NPI, plan and month but the two comparison-group ones, computed in plain Python (an
  implementation independent of the Spark one it checks): the process metrics here from the
  events themselves, the clinical, cost and quality ones by phmx.synth.ecm_truth from every file
  written for the members (it also computes the comparison metrics, given the hub's risk tiers).

Kept in its own module (the generator's other submitters are untouched) and deterministic: the
same population, seed and arguments give byte-identical files.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from phmx.errors import ConfigError

FEEDS = ("ecm_member_information", "ecm_return_transmission", "ecm_outreach", "ecm_services", "cs_referrals")
METHODS = (("PHONE", 45), ("TEXT", 15), ("IN_PERSON", 20), ("EMAIL", 5), ("VIDEO", 3), ("MAIL", 7),
           ("OTHER_ELECTRONIC", 5))
CORE = (("OUTREACH_ENGAGEMENT", 5), ("ASSESSMENT_CARE_PLAN", 10), ("CARE_COORDINATION", 35),
        ("HEALTH_PROMOTION", 15), ("TRANSITIONAL_CARE", 10), ("MEMBER_FAMILY_SUPPORT", 15),
        ("COMMUNITY_REFERRAL", 10))
CS = ("HOUSING_NAVIGATION", "HOUSING_TENANCY", "MEDICALLY_TAILORED_MEALS", "RECUPERATIVE_CARE",
      "PERSONAL_CARE_HOMEMAKER", "RESPITE", "SOBERING_CENTERS", "ASTHMA_REMEDIATION")
MIF_FIELDS = ("member_local_id", "cin", "given_name", "family_name", "birth_date", "sex", "plan_id", "ecm_provider_npi",
              "population_of_focus_1", "population_of_focus_2", "population_of_focus_3", "referral_date",
              "authorization_start", "authorization_end", "end_reason")
WHO = ("cin", "given_name", "family_name", "birth_date")
RTF_FIELDS = (*WHO, "plan_id", "ecm_provider_npi", "status_date", "benefit_status", "enrollment_date",
              "assessment_date", "care_plan_date", "care_plan_review_date", "lead_care_manager_id",
              "lead_care_manager_start", "end_date", "end_reason")
OTF_FIELDS = ("outreach_id", *WHO, "plan_id", "ecm_provider_npi", "attempt_date", "method", "outcome")
SVC_FIELDS = ("service_id", *WHO, "plan_id", "ecm_provider_npi", "service_date", "core_service", "contact_mode",
              "minutes", "lead_care_manager_id", "hcpcs", "hcpcs_modifier")
CSR_FIELDS = ("referral_id", *WHO, "plan_id", "ecm_provider_npi", "cs_service", "cs_provider_id", "referral_date",
              "status", "accepted_date", "delivered_date", "closed_date", "close_reason")
MEMBER_TRUTH_FIELDS = ("person_id", "plan_submitter", "member_local_id", "plan_id", "provider_npi", "provider",
                       "authorization_start", "authorization_end", "end_reason", "outcome", "enrollment_date",
                       "assessment_date", "care_plan_date", "lead_care_manager_id", "attempts", "successful_attempts",
                       "services", "referrals")
PARAMS_FILE = "ecm_params.json"
TRUTH_FIELDS = ("provider_npi", "plan_id", "month", "metric_id", "numerator", "denominator", "value")


@dataclass
class Referral:
    """A Community Supports referral and the milestones it reached (None: not reached by the data's end)."""

    id: str
    service: str
    made: date
    accepted: date | None = None
    delivered: date | None = None
    closed: date | None = None
    reason: str = ""

    def on(self, status: str) -> date | None:
        """The day the referral reached ``status`` (MADE, ACCEPTED, DELIVERED, CLOSED)."""
        return {"MADE": self.made, "ACCEPTED": self.accepted, "DELIVERED": self.delivered,
                "CLOSED": self.closed}[status]


@dataclass
class Member:
    """One ECM member's story as the generator plays it out."""

    person_id: str
    plan_submitter: str
    member_local_id: str
    plan_id: str
    who: dict[str, str]
    sex: str
    provider: int
    pofs: list[str]
    referral_date: date
    auth_start: date
    auth_end: date | None = None
    end_reason: str = ""
    outcome: str = "PENDING"
    attempts: list[tuple[str, date, str, str]] = field(default_factory=list)  # id, date, method, outcome
    enrollment: date | None = None
    assessment: date | None = None
    care_plan: date | None = None
    care_plan_review: date | None = None
    lcm: str = ""
    services: list[tuple[str, date, str, str, int]] = field(default_factory=list)  # id, date, core, mode, min
    referrals: list[Referral] = field(default_factory=list)
    decided: date | None = None  # the day the member declined or outreach was closed as unreachable

    def authorized_on(self, d: date) -> bool:
        """Whether the ECM authorization covers day ``d``."""
        return self.auth_start <= d and (self.auth_end is None or d <= self.auth_end)

    def authorized_during(self, first: date, last: date) -> bool:
        """Whether the authorization covers some day of the month ``first``..``last``."""
        return self.auth_start <= last and (self.auth_end is None or self.auth_end >= first)

    def engaged_during(self, first: date, last: date) -> bool:
        """Engaged in the month (the PMPM basis): enrolled by its end and not discontinued before it
        began. Meaningful for a member authorized during the month."""
        return (self.enrollment is not None and self.enrollment <= last
                and not (self.outcome == "DISCONTINUED" and self.auth_end is not None and self.auth_end < first))


@dataclass(frozen=True)
class Provider:
    submitter: str
    npi: str
    lcms: tuple[str, ...]


def _npi(i: int) -> str:
    """A 10-digit NPI with a valid check digit (the Luhn formula over 80840 + the first nine digits)."""
    base = f"1{900000000 + i * 7919:09d}"[:9]
    digits = [int(c) for c in "80840" + base]
    total = 0
    for k, d in enumerate(reversed(digits)):
        if k % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return base + str((10 - total % 10) % 10)


def months_of(start: str, months: int) -> list[tuple[date, date]]:
    y, m = (int(x) for x in start.split("-"))
    out = []
    for _ in range(months):
        first = date(y, m, 1)
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        out.append((first, nxt - timedelta(days=1)))
        y, m = nxt.year, nxt.month
    return out


def _iso(d: date | None) -> str:
    return d.isoformat() if d else ""


def _weighted(rng: random.Random, items: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in items], weights=[w for _, w in items])[0]


def _plan_members(root: Path, last_period: str) -> list[dict[str, str]]:
    """Every plan member with a CIN in the plans' enrollment files of the last month, with the plan's submitter."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for path in sorted((root / "landing").glob(f"mcp_*/enrollment/{last_period}/*")):
        submitter = path.parts[-4]
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="|"):
                if row.get("cin") and (submitter, row["member_local_id"]) not in out:
                    out[(submitter, row["member_local_id"])] = {**row, "submitter": submitter}
    return [out[k] for k in sorted(out)]


def _person_ids(root: Path) -> dict[tuple[str, str], str]:
    path = root / "ground_truth" / "person_map.csv"
    out: dict[tuple[str, str], str] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["feed"] == "enrollment":
                out[(row["submitter"], row["source_person_id"])] = row["person_id"]
    return out


def _people_flags(root: Path) -> dict[str, dict[str, str]]:
    with (root / "ground_truth" / "people.csv").open(encoding="utf-8", newline="") as fh:
        return {r["person_id"]: r for r in csv.DictReader(fh)}


def _pofs(flags: dict[str, str], rng: random.Random) -> list[str]:
    out = []
    if flags.get("homeless") == "1":
        out.append("HOMELESS_ADULT")
    if flags.get("smi") == "1" or flags.get("sud") == "1":
        out.append("SMH_SUD")
    if not out or rng.random() < 0.4:
        out.append("AVOIDABLE_UTILIZATION")
    return out[:3]


def _play(m: Member, p: Provider, rng: random.Random, end: date) -> None:
    """Outreach, enrollment, care plan, services, referrals and ending, up to the data's last day ``end``."""
    day = m.auth_start + timedelta(days=rng.randint(1, 20))
    n = 0
    while day <= end and m.enrollment is None and m.decided is None and n < 8:
        n += 1
        method = _weighted(rng, METHODS)
        contact = method != "MAIL" and rng.random() < (0.5 if method == "IN_PERSON" else 0.3)
        if contact:
            r = rng.random()
            outcome = "CONTACT_ENROLLED" if r < 0.7 else "CONTACT_DECLINED" if r < 0.85 else "CONTACT_FOLLOW_UP"
        else:
            outcome = "BAD_CONTACT_INFO" if rng.random() < 0.1 else "NO_CONTACT"
        m.attempts.append((f"O{m.provider:03d}-{m.member_local_id}-{n}", day, method, outcome))
        if outcome == "CONTACT_ENROLLED":
            m.enrollment = day
        elif outcome == "CONTACT_DECLINED":
            m.decided, m.outcome, m.end_reason = day, "DECLINED", "DECLINED"
        day += timedelta(days=rng.randint(3, 12))
    if m.enrollment is None and m.decided is None and n >= 8 and day <= end:
        m.decided, m.outcome, m.end_reason = day, "UNREACHABLE", "UNREACHABLE"
    if m.decided is not None:
        m.auth_end = m.decided
        return
    if m.enrollment is None:
        return
    m.outcome = "ENROLLED"
    m.lcm = rng.choice(p.lcms)
    a = m.enrollment + timedelta(days=rng.randint(3, 45))
    m.assessment = a if a <= end else None
    c = m.enrollment + timedelta(days=rng.choice([rng.randint(10, 80)] * 4 + [rng.randint(91, 150)]))
    m.care_plan = c if c <= end else None
    if m.care_plan and rng.random() < 0.5:
        review = m.care_plan + timedelta(days=rng.randint(60, 120))
        m.care_plan_review = review if review <= end else None
    stop = end
    if rng.random() < 0.2:
        e = m.enrollment + timedelta(days=rng.randint(60, 300))
        if e <= end:
            stop = e
            m.outcome = "DISCONTINUED"
            m.end_reason = rng.choice(("GOALS_MET", "GOALS_MET", "MOVED", "INELIGIBLE", "OTHER"))
            m.auth_end = e
    d, k = m.enrollment, 0
    while True:
        d += timedelta(days=rng.randint(4, 16))
        if d > stop:
            break
        k += 1
        mode = rng.choice(("IN_PERSON", "IN_PERSON", "PHONE", "VIDEO"))
        m.services.append((f"S{m.provider:03d}-{m.member_local_id}-{k}", d, _weighted(rng, CORE), mode,
                           rng.choice((15, 30, 45, 60, 90))))
    if rng.random() < 0.35:
        rd = m.enrollment + timedelta(days=rng.randint(5, 60))
        if rd <= stop:
            ref = Referral(f"R{m.provider:03d}-{m.member_local_id}-1", rng.choice(CS), rd)
            draw = rng.random()
            acc = rd + timedelta(days=rng.randint(1, 10))
            if draw < 0.6 and acc <= end:
                ref.accepted = acc
                dl = acc + timedelta(days=rng.randint(3, 40))
                if rng.random() < 0.75 and dl <= end:
                    ref.delivered = dl
            elif draw < 0.8:
                cl = rd + timedelta(days=rng.randint(2, 30))
                if cl <= end:
                    ref.closed = cl
                    ref.reason = rng.choice(("MEMBER_DECLINED", "NOT_ELIGIBLE", "NO_CAPACITY", "UNABLE_TO_REACH"))
            m.referrals.append(ref)


def _status_on(m: Member, day: date) -> dict[str, str] | None:
    """The return-transmission row the provider sends for ``m`` on ``day`` (None before assignment)."""
    if day < m.auth_start:
        return None
    known = lambda d: d if d is not None and d <= day else None  # noqa: E731
    enr = known(m.enrollment)
    row = {"status_date": _iso(day), "benefit_status": "PENDING"}
    if m.decided is not None and m.decided <= day:
        row.update(benefit_status=m.outcome, end_reason=m.end_reason)
        return row
    if enr is None:
        return row
    ended = m.outcome == "DISCONTINUED" and m.auth_end is not None and m.auth_end <= day
    row.update(benefit_status="DISCONTINUED" if ended else "ENROLLED", enrollment_date=_iso(enr),
               assessment_date=_iso(known(m.assessment)), care_plan_date=_iso(known(m.care_plan)),
               care_plan_review_date=_iso(known(m.care_plan_review)), lead_care_manager_id=m.lcm,
               lead_care_manager_start=_iso(enr))
    if ended:
        row.update(end_date=_iso(m.auth_end), end_reason=m.end_reason)
    return row


def stories(candidates: Iterable[dict[str, str]], *, seed: int, share: float, providers: int,
            cal: list[tuple[date, date]], pids: dict[tuple[str, str], str] | None = None,
            flags: dict[str, dict[str, str]] | None = None) -> tuple[list[Member], list[Provider]]:
    """Choose ``share`` of the ``candidates`` (plan members: submitter, member_local_id, cin, names,
    birth_date YYYYMMDD, sex, plan_id), authorize each with one of ``providers`` ECM providers and play
    their stories out over the months ``cal``. Deterministic for a seed."""
    if not 0 < share <= 1 or providers < 1:
        raise ConfigError("synth ecm: share must be in (0, 1] and providers at least 1")
    pids = pids or {}
    flags = flags or {}
    first, end = cal[0][0], cal[-1][1]
    rng = random.Random(f"ecm:{seed}")  # noqa: S311 - synthetic data, not security
    provs = [Provider(f"ecm_p{i:03d}", _npi(i), tuple(f"LCM{i:03d}{k}" for k in range(rng.randint(2, 5))))
             for i in range(1, providers + 1)]
    chosen = [c for c in candidates if rng.random() < share]
    members: list[Member] = []
    for c in chosen:
        pid = pids.get((c["submitter"], c["member_local_id"]), "")
        bd = c["birth_date"]
        who = {"cin": c["cin"], "given_name": c["given_name"], "family_name": c["family_name"],
               "birth_date": f"{bd[:4]}-{bd[4:6]}-{bd[6:8]}"}
        # authorized in the first three quarters of the window, so most stories have time to unfold
        auth = first + timedelta(days=rng.randint(0, max(1, int((end - first).days * 0.75))))
        m = Member(pid, c["submitter"], c["member_local_id"], c["plan_id"], who, c.get("sex", ""),
                   rng.randint(0, providers - 1), _pofs(flags.get(pid, {}), rng),
                   auth - timedelta(days=rng.randint(0, 20)), auth)
        _play(m, provs[m.provider], rng, end)
        members.append(m)
    return members, provs


class _Files:
    """CSV files under the output root, one per (submitter, feed, month), in a fixed order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: dict[tuple[str, str, str], list[dict[str, object]]] = defaultdict(list)

    def add(self, submitter: str, feed: str, period: str, row: dict[str, object]) -> None:
        self.rows[(submitter, feed, period)].append(row)

    def write(self) -> dict[str, int]:
        fields = {"ecm_member_information": MIF_FIELDS, "ecm_return_transmission": RTF_FIELDS,
                  "ecm_outreach": OTF_FIELDS, "ecm_services": SVC_FIELDS, "cs_referrals": CSR_FIELDS}
        written: dict[str, int] = {}
        for (submitter, feed, period), rows in sorted(self.rows.items()):
            rel = f"landing/{submitter}/{feed}/{period}/{submitter}_{feed}_{period.replace('-', '')}.csv"
            _write_csv(self.root / rel, fields[feed], rows)
            written[rel] = len(rows)
        return written


def _write_csv(path: Path, header: tuple[str, ...], rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, extrasaction="raise", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})


def generate_ecm(root: str | Path, *, seed: int, share: float = 0.05, providers: int = 4,
                 start: str | None = None, months: int | None = None) -> dict[str, int]:
    """Write the ECM submitters' files and truth under ``root`` (a ``generate()`` output). Returns rows per file."""
    import json

    root = Path(root)
    manifest = json.loads((root / "ground_truth" / "manifest.json").read_text())
    start = start or str(manifest["start"])
    months = months or int(manifest["months"])
    params = {"seed": seed, "share": share, "providers": providers, "start": start, "months": months}
    members, provs, cal = _stories_of(root, params)

    files = _Files(root)
    for first, last in cal:
        period = f"{first:%Y-%m}"
        for m in members:
            p = provs[m.provider]
            base = {**m.who, "plan_id": m.plan_id, "ecm_provider_npi": p.npi}
            if m.auth_start <= last:  # the plan's whole current list every month
                ended = m.auth_end is not None and m.auth_end <= last
                pof = [*m.pofs, "", "", ""]
                files.add(m.plan_submitter, "ecm_member_information", period, {
                    "member_local_id": m.member_local_id, **m.who, "sex": m.sex, "plan_id": m.plan_id,
                    "ecm_provider_npi": p.npi, "population_of_focus_1": pof[0], "population_of_focus_2": pof[1],
                    "population_of_focus_3": pof[2], "referral_date": _iso(m.referral_date),
                    "authorization_start": _iso(m.auth_start), "authorization_end": _iso(m.auth_end) if ended else "",
                    "end_reason": m.end_reason if ended else ""})
            row = _status_on(m, last)
            if row is not None:
                files.add(p.submitter, "ecm_return_transmission", period, {**base, **row})
            for oid, d, method, outcome in m.attempts:
                if first <= d <= last:
                    files.add(p.submitter, "ecm_outreach", period, {"outreach_id": oid, **base,
                              "attempt_date": _iso(d), "method": method, "outcome": outcome})
            for sid, d, core, mode, minutes in m.services:
                if first <= d <= last:
                    files.add(p.submitter, "ecm_services", period, {
                        "service_id": sid, **base, "service_date": _iso(d), "core_service": core,
                        "contact_mode": mode, "minutes": minutes, "lead_care_manager_id": m.lcm,
                        "hcpcs": "G9008", "hcpcs_modifier": "U1" if mode == "IN_PERSON" else "U2"})
            for ref in m.referrals:
                for status in ("MADE", "ACCEPTED", "DELIVERED", "CLOSED"):
                    when = ref.on(status)
                    if when is not None and first <= when <= last:
                        files.add(p.submitter, "cs_referrals", period, {
                            "referral_id": ref.id, **base, "cs_service": ref.service, "cs_provider_id": "",
                            "referral_date": _iso(ref.made), "status": status,
                            "accepted_date": _iso(when) if status == "ACCEPTED" else "",
                            "delivered_date": _iso(when) if status == "DELIVERED" else "",
                            "closed_date": _iso(when) if status == "CLOSED" else "",
                            "close_reason": ref.reason if status == "CLOSED" else ""})
    written = files.write()
    from phmx.synth.ecm_clinical import write_files  # the members' observations and hospital stays

    written.update(write_files(root, members, cal, seed))
    # what replays the stories (phmx.synth.ecm_truth reads it to compute the truth of a full run)
    (root / "ground_truth" / PARAMS_FILE).write_text(json.dumps(params, sort_keys=True, indent=1) + "\n")
    _write_csv(root / "ground_truth" / "ecm_members.csv", MEMBER_TRUTH_FIELDS, [
        {"person_id": m.person_id, "plan_submitter": m.plan_submitter, "member_local_id": m.member_local_id,
         "plan_id": m.plan_id, "provider_npi": provs[m.provider].npi, "provider": provs[m.provider].submitter,
         "authorization_start": _iso(m.auth_start), "authorization_end": _iso(m.auth_end), "end_reason": m.end_reason,
         "outcome": m.outcome, "enrollment_date": _iso(m.enrollment), "assessment_date": _iso(m.assessment),
         "care_plan_date": _iso(m.care_plan), "lead_care_manager_id": m.lcm, "attempts": len(m.attempts),
         "successful_attempts": sum(o.startswith("CONTACT_") for *_, o in m.attempts),
         "services": len(m.services), "referrals": len(m.referrals)} for m in members])
    from phmx.synth.ecm_truth import full_truth  # every metric, from every file written for these members

    truth = full_truth(root)
    _write_csv(root / "ground_truth" / "ecm_provider_month.csv", TRUTH_FIELDS, truth)
    written["ground_truth/ecm_members.csv"] = len(members)
    written["ground_truth/ecm_provider_month.csv"] = len(truth)
    return written



def _stories_of(root: Path, params: dict[str, object]) -> tuple[list[Member], list[Provider], list[tuple[date, date]]]:
    """The ECM stories ``generate_ecm`` plays for ``params`` over the population under ``root``."""
    cal = months_of(str(params["start"]), int(str(params["months"])))
    months = int(str(params["months"]))
    candidates = _plan_members(root, str(params["start"]) if months < 1 else f"{cal[-1][0]:%Y-%m}")
    members, provs = stories(candidates, seed=int(str(params["seed"])), share=float(str(params["share"])),
                             providers=int(str(params["providers"])), cal=cal,
                             pids=_person_ids(root), flags=_people_flags(root))
    return members, provs, cal


def replay(root: str | Path) -> tuple[list[Member], list[Provider], list[tuple[date, date]], int]:
    """The stories, providers, calendar and seed ``generate_ecm`` wrote under ``root`` (deterministic:
    the same population and parameters give the same stories), from ``ground_truth/ecm_params.json``."""
    import json

    root = Path(root)
    path = root / "ground_truth" / PARAMS_FILE
    if not path.is_file():
        raise ConfigError(f"synth ecm: {path} is missing", hint="run generate_ecm (phmx synth --ecm-share) first")
    params = json.loads(path.read_text(encoding="utf-8"))
    members, provs, cal = _stories_of(root, params)
    return members, provs, cal, int(params["seed"])


def provider_plan_months(members: list[Member], provs: list[Provider], cal: list[tuple[date, date]]
                         ) -> Iterator[tuple[str, str, date, date, list[Member], list[Member], list[Member]]]:
    """Each (provider NPI, plan, month) the ground truths report on, in order, with its members, those
    authorized in the month (a row needs at least one) and those engaged in it (the PMPM basis)."""
    groups: dict[tuple[str, str], list[Member]] = defaultdict(list)
    for m in members:
        groups[(provs[m.provider].npi, m.plan_id)].append(m)
    for (npi, plan), ms in sorted(groups.items()):
        for first, last in cal:
            auth = [m for m in ms if m.authorized_during(first, last)]
            if auth:
                yield npi, plan, first, last, ms, auth, [m for m in auth if m.engaged_during(first, last)]

def provider_month_truth(members: list[Member], provs: list[Provider],
                         cal: list[tuple[date, date]]) -> list[dict[str, object]]:
    """Every metric per provider, plan and month, straight from the stories (mappings/ecm/metrics.yaml says
    what each means; this is a second implementation of those words, in plain Python)."""
    from phmx.feedspec import load_valueset

    methods = sorted(load_valueset("ecm_outreach_method").codes - {"MAIL"})
    cores = sorted(load_valueset("ecm_core_service").codes)
    out: list[dict[str, object]] = []
    for npi, plan, first, last, ms, auth, eng in provider_plan_months(members, provs, cal):
        att = [(m, a) for m in ms for a in m.attempts
               if a[2] != "MAIL" and first <= a[1] <= last and m.authorized_on(a[1])]
        firsts = []
        for m in ms:
            counted = [a[1] for a in m.attempts if a[2] != "MAIL" and m.authorized_on(a[1])]
            if counted and first <= min(counted) <= last:
                firsts.append((min(counted) - m.auth_start).days)
        enrolled = [(m.enrollment - m.auth_start).days for m in ms
                    if m.enrollment is not None and first <= m.enrollment <= last]
        due = [m for m in ms if m.enrollment is not None and first <= m.enrollment + timedelta(days=90) <= last]
        cp90 = [m for m in due if m.care_plan is not None and m.enrollment is not None
                and m.care_plan <= m.enrollment + timedelta(days=90)]
        lcms = {m.lcm for m in eng if m.lcm}
        svc = [(m, s) for m in ms for s in m.services if first <= s[1] <= last and m.authorized_on(s[1])]
        refs = [r for m in ms for r in m.referrals if first <= r.made <= last and m.authorized_on(r.made)]
        closed = [r for r in refs if r.delivered is not None or r.closed is not None]
        month = f"{first:%Y-%m}"
        rows: list[tuple[str, float, float | None]] = [
            ("authorized_members", len(auth), None),
            ("engaged_members", len(eng), None),
            ("outreach_attempts", len(att), None),
            ("successful_outreach", sum(a[3].startswith("CONTACT_") for _, a in att), None),
            ("days_to_first_outreach", sum(firsts), len(firsts)),
            ("days_to_enrollment", sum(enrolled), len(enrolled)),
            ("care_plan_within_90_days", len(cp90), len(due)),
            ("caseload_per_lead_care_manager", len(eng), len(lcms)),
            ("services_per_engaged_member", len(svc), len(eng)),
            ("cs_closed_loop_rate", len(closed), len(refs)),
        ]
        rows += [(f"outreach_attempts:{k}", sum(a[2] == k for _, a in att), None) for k in methods]
        rows += [(f"successful_outreach:{k}", sum(a[2] == k and a[3].startswith("CONTACT_") for _, a in att), None)
                 for k in methods]
        rows += [(f"services_per_engaged_member:{k}", sum(s[2] == k for _, s in svc), len(eng)) for k in cores]
        for mid, num, den in rows:
            value = float(num) if den is None else (round(num / den, 6) if den else None)
            out.append({"provider_npi": npi, "plan_id": plan, "month": month, "metric_id": mid,
                        "numerator": num, "denominator": "" if den is None else den,
                        "value": "" if value is None else value})
    return out
