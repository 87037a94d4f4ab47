"""What happens to one person clinically in the window, independent of who reports it.

Why plant index events first: the follow-up measures (FUM, FUA, FUH, transitional care) are
only testable if the generator knows, for each ED visit or discharge, whether a follow-up was
meant to happen within 7 days, within 8-30 days, or not at all. Index events are planted with a
category, routine care is then generated around them with "blackout" windows so it cannot
accidentally turn a planted "none" into a follow-up. The plan is written to
ground_truth/index_events.csv for the measure tests.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

from phmx.synth import reference as ref
from phmx.synth.config import ClinicalRates
from phmx.synth.households import Person
from phmx.synth.world import World

DAY = dt.timedelta(days=1)


@dataclass(slots=True)
class Claim:
    """A plan claim (one or more lines). kind: ed, ip, office, mh_office, sud_office."""

    kind: str
    start: dt.date
    end: dt.date
    pos: str
    lines: list[tuple[str, str]]  # (revenue_code, cpt_hcpcs)
    dx: tuple[str, ...]
    institutional: bool = False
    professional_too: bool = False


@dataclass(slots=True)
class MhService:
    date: dt.date
    mode: str
    function: str
    units: int
    minutes: int
    dx: str


@dataclass(slots=True)
class SudEpisode:
    admit: dt.date
    discharge: dt.date | None
    drug: str
    service_type: str
    status: str
    dx: str


@dataclass(slots=True)
class IndexEvent:
    kind: str  # ed_mh, ed_sud, ip_mh, ip_acute
    date: dt.date
    discharge: dt.date | None
    age: int
    planned: str  # 7, 30, none
    followup: dt.date | None = None
    source: str = ""


@dataclass(slots=True)
class Clinical:
    """Everything that happens to one person; feeds decide who reports what."""

    claims: list[Claim] = field(default_factory=list)
    rx: list[tuple[dt.date, str, int, int]] = field(default_factory=list)
    mh: list[MhService] = field(default_factory=list)
    sud: list[SudEpisode] = field(default_factory=list)
    dental: list[tuple[dt.date, str, str]] = field(default_factory=list)
    imm: list[tuple[dt.date, str]] = field(default_factory=list)
    index: list[IndexEvent] = field(default_factory=list)
    county_mh_client: bool = False
    county_sud_client: bool = False
    blackout: dict[str, list[tuple[dt.date, dt.date]]] = field(default_factory=dict)

    def blocked(self, cat: str, d: dt.date) -> bool:
        return any(a <= d <= b for a, b in self.blackout.get(cat, ()))


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, prod = math.exp(-lam), 0, rng.random()
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def _rand_date(rng: random.Random, a: dt.date, b: dt.date) -> dt.date:
    return a + dt.timedelta(days=rng.randrange((b - a).days + 1)) if b >= a else a


class ClinicalBuilder:
    def __init__(self, world: World, rates: ClinicalRates, rng: random.Random) -> None:
        self.w, self.c, self.rng = world, rates, rng
        self.years = len(world.months) / 12

    def enrolled(self, p: Person, d: dt.date) -> bool:
        m = self.w.month_of(d)
        return 0 <= m < len(p.plan_months) and p.plan_months[m] is not None and p.alive_on(d)

    def enrolled_through(self, p: Person, a: dt.date, b: dt.date) -> bool:
        """Enrolled (any plan) and alive every month from ``a`` to ``b``: follow-up stays visible."""
        if not (p.alive_on(a) and p.alive_on(b)):
            return False
        m0, m1 = self.w.month_of(a), self.w.month_of(b)
        if m0 < 0 or m1 >= len(p.plan_months):
            return False
        return all(p.plan_months[m] is not None for m in range(m0, m1 + 1))

    def build(self, p: Person) -> Clinical:
        cl = Clinical()
        r = self.rng
        cl.county_mh_client = p.smi or (p.mh and r.random() < self.c.mild_mh_county)
        cl.county_sud_client = p.sud and r.random() < self.c.sud_in_treatment
        self._index_events(p, cl)
        self._routine(p, cl)
        self._pharmacy(p, cl)
        if cl.county_mh_client:
            self._county_mh(p, cl)
        if cl.county_sud_client:
            self._caloms(p, cl)
        self._dental(p, cl)
        self._immunizations(p, cl)
        return cl

    # ------------------------------------------------------------------ index events
    def _index_events(self, p: Person, cl: Clinical) -> None:
        c, y = self.c, self.years
        wanted: list[str] = []
        wanted += ["ed_mh"] * poisson(self.rng, y * (c.ed_mh_smi if p.smi else c.ed_mh_mild if p.mh else c.ed_mh_other))
        wanted += ["ed_sud"] * poisson(self.rng, y * (c.ed_sud if p.sud else c.ed_sud_other))
        wanted += ["ip_mh"] * poisson(self.rng, y * (c.ip_mh_smi if p.smi else 0.01 if p.mh else 0))
        wanted += ["ip_acute"] * poisson(self.rng, y * (c.ip_general_chronic if p.chronic else c.ip_general_other))
        for kind in wanted:
            self._plant(p, cl, kind)

    def _plant(self, p: Person, cl: Clinical, kind: str) -> None:
        r, w = self.rng, self.w
        last_ok = w.end - dt.timedelta(days=45)
        if last_ok <= w.start:
            return
        for _ in range(6):
            d = _rand_date(r, w.start, last_ok)
            los = r.randrange(2, 12) if kind.startswith("ip") else 0
            dis = d + dt.timedelta(days=los)
            age = p.age_at(d)
            if age < (13 if kind == "ed_sud" else 6 if kind in ("ed_mh", "ip_mh") else 0):
                return
            if not self.enrolled_through(p, d, dis + dt.timedelta(days=31)):
                continue
            if any(abs((e.date - d).days) < 60 for e in cl.index):
                continue
            break
        else:
            return
        x = r.random()
        if kind == "ip_acute":
            planned = "30" if x < self.c.ip_followup_30 else "none"
        else:
            planned = "7" if x < self.c.followup_7 else "30" if x < self.c.followup_7 + self.c.followup_30 else "none"
        ev = IndexEvent(kind, d, dis if los else None, age, planned)
        cat = {"ed_mh": "mh", "ip_mh": "mh", "ed_sud": "sud", "ip_acute": "amb"}[kind]
        # No qualifying care from the visit until the planted follow-up (or through day 31).
        if planned == "none":
            cl.blackout.setdefault(cat, []).append((d, dis + dt.timedelta(days=31)))
        else:
            lo, hi = (1, 8) if planned == "7" else (8, 31) if kind != "ip_acute" else (1, 31)
            ev.followup = dis + dt.timedelta(days=r.randrange(lo, hi))
            cl.blackout.setdefault(cat, []).append((d, ev.followup - DAY))
        self._index_claims(p, cl, ev)
        cl.index.append(ev)

    def _index_claims(self, p: Person, cl: Clinical, ev: IndexEvent) -> None:
        r = self.rng
        homeless_dx: tuple[str, ...] = (r.choice(ref.DX_HOMELESS),) if p.homeless and r.random() < 0.6 else ()
        dx: tuple[str, ...]
        if ev.kind == "ed_mh":
            dx = (r.choice(ref.DX_SMI if p.smi and r.random() < 0.5 else ref.DX_MH_ED),)
            if dx[0] == "T1491XA":
                dx += (r.choice(ref.DX_SELF_HARM_CAUSE),)
            dx += homeless_dx
            cl.claims.append(Claim("ed", ev.date, ev.date, "23", [(ref.REV_ED, r.choice(ref.CPT_ED))], dx,
                                   institutional=True, professional_too=r.random() < 0.5))
        elif ev.kind == "ed_sud":
            if r.random() < 0.4:
                dx = (r.choice(ref.DX_OVERDOSE), r.choice(ref.DX_SUD_OPIOID)) + homeless_dx
            else:
                dx = (r.choice(ref.DX_SUD),) + homeless_dx
            cl.claims.append(Claim("ed", ev.date, ev.date, "23", [(ref.REV_ED, r.choice(ref.CPT_ED)), ("0300", "80305")],
                                   dx, institutional=True, professional_too=r.random() < 0.5))
        elif ev.kind == "ip_mh":
            dx = (r.choice(ref.DX_SMI if p.smi else ref.DX_MH_ED),) + homeless_dx
            cl.claims.append(Claim("ip", ev.date, ev.discharge or ev.date, "21",
                                   [(r.choice(ref.REV_IP_PSYCH), ""), ("0250", "")], dx, institutional=True,
                                   professional_too=True))
        else:
            chronic = [d for c in p.chronic for d in ref.DX_CHRONIC[c][:1]]
            dx = (r.choice(ref.DX_IP_GENERAL),) + tuple(chronic[:2]) + homeless_dx
            cl.claims.append(Claim("ip", ev.date, ev.discharge or ev.date, "21",
                                   [(r.choice(ref.REV_IP_GENERAL), ""), ("0250", ""), ("0300", "")], dx[:4],
                                   institutional=True, professional_too=True))
        if ev.followup is None:
            return
        f = ev.followup
        if ev.kind in ("ed_mh", "ip_mh"):
            if cl.county_mh_client and r.random() < 0.5:
                mode, fn, lo, hi = r.choice(ref.CSI_FOLLOWUP)
                cl.mh.append(MhService(f, mode, fn, 1, r.randrange(lo, hi + 1), r.choice(ref.DX_SMI if p.smi else ref.DX_MH_MILD)))
                ev.source = "county_mh"
            else:
                cl.claims.append(Claim("mh_office", f, f, r.choice(ref.POS_MH_FOLLOWUP), [("", r.choice(ref.CPT_MH_OUTPT))],
                                       (r.choice(ref.DX_SMI if p.smi else ref.DX_MH_MILD),)))
                ev.source = "plan_claim"
        elif ev.kind == "ed_sud":
            x = r.random()
            if cl.county_sud_client and x < 0.4:
                drug, sud_dx = r.choice(ref.CALOMS_DRUG_DX)
                cl.sud.append(SudEpisode(f, None, drug, r.choice(ref.CALOMS_SERVICE_TYPES), "", sud_dx))
                ev.source = "county_sud"
            elif x < 0.6:
                ndc, days, qty = ref.NDC["moud"][0]
                cl.rx.append((f, ndc, days, qty))
                ev.source = "pharmacy"
            else:
                cl.claims.append(Claim("sud_office", f, f, r.choice(ref.POS_SUD_FOLLOWUP), [("", r.choice(ref.CPT_SUD_OUTPT))],
                                       (r.choice(ref.DX_SUD),)))
                ev.source = "plan_claim"
        else:
            cl.claims.append(Claim("office", f, f, "11", [("", r.choice(("99495", "99496", "99214", "99213")))],
                                   (r.choice(ref.DX_ROUTINE),)))
            ev.source = "plan_claim"

    # ------------------------------------------------------------------ routine care
    def _routine(self, p: Person, cl: Clinical) -> None:
        r, w, y = self.rng, self.w, self.years
        office_p = min(0.65, 0.18 + 0.15 * len(p.chronic))
        food = _food_insecurity_code(w.seed, p)
        for month in w.months:
            if r.random() < office_p:
                d = _rand_date(r, month.first, month.last)
                if self.enrolled(p, d) and not cl.blocked("amb", d):
                    dx = tuple(ref.DX_CHRONIC[c][0] if r.random() < 0.7 else r.choice(ref.DX_CHRONIC[c]) for c in p.chronic[:3])
                    dx = dx or (r.choice(ref.DX_ROUTINE),)
                    if p.homeless and r.random() < 0.5:
                        dx = dx[:3] + (r.choice(ref.DX_HOMELESS),)
                    if food:
                        dx = dx + (food,) if len(dx) < 4 else dx[:3] + (food,)
                        food = ""  # coded once a year, at the first visit
                    lines = [("", r.choice(ref.CPT_OFFICE))]
                    if r.random() < 0.35:  # labs billed on the same professional claim
                        lines += [("", "36415"), ("", "83036" if "diabetes" in p.chronic else r.choice(("80053", "80061", "85025")))]
                    cl.claims.append(Claim("office", d, d, "11", lines, dx))
            if p.mh and r.random() < 0.3:
                d = _rand_date(r, month.first, month.last)
                if self.enrolled(p, d) and not cl.blocked("mh", d) and not cl.blocked("amb", d):
                    cl.claims.append(Claim("mh_office", d, d, r.choice(("11", "02", "10")),
                                           [("", r.choice(ref.CPT_MH_OUTPT[:4]))], (r.choice(ref.DX_MH_MILD),)))
            if p.sud and not cl.county_sud_client and r.random() < 0.15:
                d = _rand_date(r, month.first, month.last)
                if self.enrolled(p, d) and not cl.blocked("sud", d) and not cl.blocked("amb", d):
                    cl.claims.append(Claim("sud_office", d, d, r.choice(ref.POS_SUD_FOLLOWUP),
                                           [("", r.choice(ref.CPT_SUD_OUTPT))], (r.choice(ref.DX_SUD),)))
        age = p.age_at(w.start)
        if r.random() < (0.6 if age < 21 else 0.3):
            d = _rand_date(r, w.start, w.end)
            if self.enrolled(p, d) and not cl.blocked("amb", d):
                cpt = r.choice(ref.CPT_WELL_CHILD if age < 21 else ref.CPT_WELL_ADULT)
                cl.claims.append(Claim("office", d, d, "11", [("", cpt)], ("Z00129" if age < 18 else "Z0000",)))
        for _ in range(poisson(r, y * ref_ed_rate(p, self.c.ed_general))):
            d = _rand_date(r, w.start, w.end)
            if self.enrolled(p, d):
                dx = (r.choice(ref.DX_ED_GENERAL),) + ((r.choice(ref.DX_HOMELESS),) if p.homeless else ())
                cl.claims.append(Claim("ed", d, d, "23", [(ref.REV_ED, r.choice(ref.CPT_ED))], dx,
                                       institutional=True, professional_too=r.random() < 0.4))

    def _pharmacy(self, p: Person, cl: Clinical) -> None:
        r, w = self.rng, self.w
        therapies = [(c, 0.8) for c in p.chronic]
        if p.mh:
            therapies.append(("mh", 0.6))
        if p.smi:
            therapies.append(("smi", 0.75))
        opioid = p.sud and r.random() < 0.45
        if opioid and r.random() < 0.5:
            therapies.append(("moud", 0.6))
        picks = {t: r.choice(ref.NDC[t]) for t, _ in therapies}
        for month in w.months:
            for t, prob in therapies:
                if r.random() < prob:
                    d = _rand_date(r, month.first, month.last)
                    if not self.enrolled(p, d) or (t == "moud" and cl.blocked("sud", d)):
                        continue
                    ndc, days, qty = picks[t]
                    cl.rx.append((d, ndc, days, qty))
        if p.sud and r.random() < 0.3:
            d = _rand_date(r, w.start, w.end)
            if self.enrolled(p, d):
                cl.rx.append((d, *ref.NDC["naloxone"][0]))
        for claim in list(cl.claims):
            if claim.kind in ("ed", "office") and r.random() < 0.15 and self.enrolled(p, claim.end):
                cl.rx.append((claim.end, *r.choice(ref.NDC["acute"])))
        cl.rx.sort()

    # ------------------------------------------------------------------ county BH
    def _county_mh(self, p: Person, cl: Clinical) -> None:
        r, w = self.rng, self.w
        per_month = (2, 6) if p.smi else (0, 2)
        dxs = ref.DX_SMI if p.smi else ref.DX_MH_MILD
        dx = r.choice(dxs)
        for month in w.months:
            for _ in range(r.randrange(per_month[0], per_month[1] + 1)):
                d = _rand_date(r, month.first, month.last)
                if not p.alive_on(d) or cl.blocked("mh", d):
                    continue
                if r.random() < 0.06:
                    mode, fn, lo, hi = ref.CSI_CRISIS
                elif r.random() < 0.05:
                    mode, fn, lo, hi = r.choice(ref.CSI_OTHER)
                else:
                    mode, fn, lo, hi = r.choice(ref.CSI_OUTPATIENT)
                minutes = r.randrange(lo, hi + 1) if hi else 0
                units = 1 if minutes else r.randrange(1, 8)
                cl.mh.append(MhService(d, mode, fn, units, minutes, dx))
        # one service per (date, mode, function): CSI treats a repeat as a duplicate record
        seen: set[tuple] = set()
        unique = []
        for s in sorted(cl.mh, key=lambda s: s.date):
            k = (s.date, s.mode, s.function)
            if k not in seen:
                seen.add(k)
                unique.append(s)
        cl.mh = unique

    def _caloms(self, p: Person, cl: Clinical) -> None:
        r, w = self.rng, self.w
        drug, dx = r.choice(ref.CALOMS_DRUG_DX)
        if r.random() < 0.4:  # episode already open at the window start
            admit = w.start - dt.timedelta(days=r.randrange(20, 300))
        else:
            admit = _rand_date(r, w.start, w.end)
            if cl.blocked("sud", admit):
                return
        if p.age_at(admit) < 12:
            return
        service_type = r.choice(ref.CALOMS_SERVICE_TYPES)
        # narcotic treatment programs run for years (hence CalOMS annual updates); the rest weeks to months
        los = r.randrange(200, 900) if service_type == "5" else r.randrange(20, 240)
        if service_type == "5" and admit < w.start:
            admit = w.start - dt.timedelta(days=r.randrange(20, 700))
        dis = admit + dt.timedelta(days=los)
        status = r.choice(ref.CALOMS_DISCHARGE)
        if p.dod is not None and dis >= p.dod:
            dis, status = p.dod, "7"
        cl.sud.append(SudEpisode(admit, dis if dis <= w.end else None, drug, service_type,
                                 status if dis <= w.end else "", dx))
        cl.sud.sort(key=lambda e: e.admit)

    # ------------------------------------------------------------------ dental and immunizations
    def _dental(self, p: Person, cl: Clinical) -> None:
        r, w = self.rng, self.w
        age = p.age_at(w.start)
        child = age < 21
        if r.random() >= (self.c.dental_child_use if child else self.c.dental_adult_use):
            return
        visits = r.choices((1, 2, 3), weights=(50, 35, 15))[0]
        fluoride = r.choices((0, 1, 2, 3), weights=(35, 30, 25, 10))[0] if 1 <= age <= 20 else 0
        dates = sorted(_rand_date(r, w.start, w.end) for _ in range(max(visits, fluoride)))
        first = True
        for i, d in enumerate(dates):
            if not self.enrolled(p, d):
                continue
            a = p.age_at(d)
            if a < 1:
                continue
            if first or r.random() < 0.6:
                code = ref.CDT_EVAL["under3"] if a < 3 else ref.CDT_EVAL["comprehensive" if first and r.random() < 0.2 else "periodic"]
                cl.dental.append((d, code, ""))
            first = False
            if i < fluoride:
                cl.dental.append((d, ref.CDT_FLUORIDE_VARNISH if a < 6 or r.random() < 0.5 else ref.CDT_FLUORIDE_TOPICAL, ""))
            for _ in range(r.randrange(0, 3)):
                code = r.choice(ref.CDT_OTHER_CHILD if a < 21 else ref.CDT_OTHER_ADULT)
                tooth = ""
                if code in ref.TOOTH_NEEDED:
                    tooth = r.choice(ref.PRIMARY_TEETH if a < 6 else ref.PERMANENT_TEETH)
                cl.dental.append((d, code, tooth))

    def _immunizations(self, p: Person, cl: Clinical) -> None:
        r, w, c = self.rng, self.w, self.c
        horizon = dt.date(w.start.year - c.imm_history_years, w.start.month, 1)
        age_start = p.age_at(w.start)
        doses: list[tuple[dt.date, str]] = []
        if age_start < 19:
            x = r.random()
            keep = 1.0 if x < c.imm_adherent else 0.6 if x < c.imm_adherent + c.imm_partial else \
                0.2 if x < c.imm_adherent + c.imm_partial + c.imm_sparse else 0.0
            delay = 0 if x < c.imm_adherent else 60
            for days, cvx in child_schedule(r):
                if r.random() < keep:
                    d = p.dob + dt.timedelta(days=days + (r.randrange(0, delay) if delay else r.randrange(0, 20)))
                    doses.append((d, cvx))
        if r.random() < c.flu_shot:
            season = dt.date(w.start.year if w.start.month >= 9 else w.start.year - 1, 9, 15)
            for k in range(2):
                d = season.replace(year=season.year + k) + dt.timedelta(days=r.randrange(0, 100))
                doses.append((d, r.choice(ref.FLU_CVX)))
        end = w.end if p.dod is None else min(w.end, p.dod)
        for d, cvx in sorted(doses):
            if horizon <= d <= end and d >= p.dob and (p.age_at(d) >= 0):
                if cvx in ref.FLU_CVX and p.age_at(d) < 1 and (d - p.dob).days < 183:
                    continue
                cl.imm.append((d, cvx))


def ref_ed_rate(p: Person, base: float) -> float:
    return base * (3.0 if p.homeless else 1.0) * (1.5 if p.chronic else 1.0)


def child_schedule(r: random.Random) -> list[tuple[int, str]]:
    """Doses by age in days for one child, choosing between combination products."""
    dtap_brand = r.choice(("20", "106", "110", "120"))
    hib = r.choice(("49", "48", "17"))
    pcv = r.choice(("133", "215", "216", "152"))
    rv = r.choice(("116", "119"))
    out: list[tuple[int, str]] = [(r.randrange(0, 3), "08")]
    for k, age in enumerate((61, 122, 183)):
        if dtap_brand == "110":
            out.append((age, "110"))  # DTaP-HepB-IPV
            if hib != "49" or k < 2:
                out.append((age, hib))
        elif dtap_brand == "120":
            out.append((age, "120"))  # DTaP-Hib-IPV
            if k == 2:
                out.append((age, "08"))
        else:
            out.append((age, dtap_brand))
            if k < 2 or r.random() < 0.6:
                out.append((age, "10"))
            if hib != "49" or k < 2:
                out.append((age, hib))
            if k == 2:
                out.append((age, "08"))
        out.append((age, pcv))
        if rv == "116" or k < 2:
            out.append((age, rv))
    out.append((r.randrange(365, 456), pcv))
    out.append((r.randrange(365, 456), hib if hib != "17" else "48"))
    out.append((r.randrange(365, 456), "03" if r.random() < 0.85 else "94"))
    out.append((r.randrange(365, 456), "21"))
    out.append((r.randrange(365, 547), "83"))
    out.append((r.randrange(547, 700), "83"))
    out.append((r.randrange(456, 548), "20" if dtap_brand in ("20", "110") else "106"))
    booster = r.randrange(1461, 2190)
    out.append((booster, "130" if r.random() < 0.5 else "20"))
    out.append((booster, "94" if r.random() < 0.3 else "03"))
    out.append((booster + r.randrange(0, 30), "21"))
    teen = r.randrange(4015, 4750)
    out.append((teen, "115"))
    out.append((teen, r.choice(("114", "136"))))
    out.append((teen, "165"))
    out.append((teen + r.randrange(180, 400), "165"))
    return out


def _food_insecurity_code(seed: int, p: Person) -> str:
    """The Z59.4x code a provider records for this member's food insecurity ("" for none).

    Drawn from its own seed (the world's seed and the person), not from the generator's stream, so
    adding it left every other value of a seed's output unchanged; deterministic per seed."""
    from phmx.synth.identifiers import derive_seed

    u = derive_seed(seed, "food-insecurity", p.pid) / 2.0**64
    rate = ref.FOOD_INSECURITY_CODED_HOMELESS if p.homeless else ref.FOOD_INSECURITY_CODED
    if u >= rate:
        return ""
    return ref.DX_FOOD_INSECURITY[int(u / rate * len(ref.DX_FOOD_INSECURITY))]
