"""The true population of one chunk: households, people, and their life events in the window.

Why households: real linkage errors come from people who share a family name, an address, a
phone, sometimes a birth date (twins) and even an SSN (a parent's on a child's record). Building
people household by household makes those collisions happen at natural rates.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
from collections import Counter

from phmx.synth.config import PopulationRates
from phmx.synth.identifiers import make_cin, make_ssn
from phmx.synth.names import name_pools
from phmx.synth.reference import AID_ADULT, AID_CHILD, AID_SENIOR, GROUPS, PLANS, SHELTERS, STREET_SUFFIXES
from phmx.synth.world import World

GROUP_NAMES = tuple(g for g, _ in GROUPS)
GROUP_CUM = tuple(itertools.accumulate(w for _, w in GROUPS))
PLAN_IDS = dict(PLANS)

Address = tuple[str, str, str, str]  # line, city, zip, county fips


class Person:
    """One true person. ``*_hist`` lists hold (first window month, value), sorted."""

    __slots__ = (
        "idx", "pid", "hh", "twin_of", "group", "sex", "dob", "dod", "given", "middle", "family_hist",
        "mother_maiden", "cin", "ssn", "relative_ssn", "addr_hist", "phone_hist", "email", "plan_months",
        "cov_start", "aid", "homeless", "smi", "mh", "sud", "chronic", "language", "race_pick", "lookalike_of",
    )
    # Declared for the type checker; set by Population as each person is built.
    idx: int
    pid: str
    hh: str
    group: str
    sex: str
    dob: dt.date
    given: str
    middle: str
    family_hist: list[tuple[int, str]]
    mother_maiden: str
    cin: str
    ssn: str
    addr_hist: list[tuple[int, Address]]
    phone_hist: list[tuple[int, str]]
    plan_months: list[str | None]
    cov_start: dt.date
    aid: str
    language: str
    race_pick: float

    def __init__(self) -> None:
        self.twin_of = ""
        self.lookalike_of = ""
        self.dod: dt.date | None = None
        self.relative_ssn = ""
        self.homeless = self.smi = self.mh = self.sud = False
        self.chronic: tuple[str, ...] = ()
        self.email = ""

    def family_at(self, m: int) -> str:
        return _at(self.family_hist, m)

    def addr_at(self, m: int) -> Address:
        return _at(self.addr_hist, m)

    def phone_at(self, m: int) -> str:
        return _at(self.phone_hist, m)

    def age_at(self, d: dt.date) -> int:
        return d.year - self.dob.year - ((d.month, d.day) < (self.dob.month, self.dob.day))

    def alive_on(self, d: dt.date) -> bool:
        return self.dob <= d and (self.dod is None or d <= self.dod)

    @property
    def county_first(self) -> str:
        return self.addr_hist[0][1][3]


def _at(hist: list, m: int):  # noqa: ANN001, ANN202 - small generic helper
    value = hist[0][1]
    for start, v in hist:
        if start <= m:
            value = v
        else:
            break
    return value


def _pick(rng: random.Random, pool) -> str:  # noqa: ANN001 - names.Pool
    return rng.choices(pool.values, cum_weights=pool.cum)[0]


class PopulationBuilder:
    """Builds households for one chunk with that chunk's RNG."""

    def __init__(self, world: World, rates: PopulationRates, rng: random.Random) -> None:
        self.w, self.r, self.rng = world, rates, rng
        self.pools = name_pools()
        self.nmonths = len(world.months)

    # ------------------------------------------------------------------ small draws
    def _address(self, fips: str) -> Address:
        r = self.rng
        geo = self.w.county(fips)
        city, zip5 = r.choice(geo.city_zips)
        line = f"{r.randrange(100, 9999)} {r.choice(self.w.streets[fips])} {r.choice(STREET_SUFFIXES)}"
        if r.random() < 0.35:
            line += f" APT {r.randrange(1, 40)}{r.choice('ABCD') if r.random() < 0.3 else ''}"
        return (line, city, zip5, fips)

    def _phone(self, fips: str) -> str:
        r = self.rng
        return f"{r.choice(self.w.county(fips).area_codes)}{r.randrange(200, 999)}{r.randrange(10000):04d}"

    def _given(self, group: str, sex: str) -> str:
        names = self.pools[group]
        return _pick(self.rng, names.male if sex == "M" else names.female)

    def _family(self, group: str) -> str:
        return _pick(self.rng, self.pools[group].family)

    def _dob(self, age: int) -> dt.date:
        ref = self.w.start  # the 1st of a month, so the anchor always exists
        return dt.date(ref.year - age, ref.month, 1) - dt.timedelta(days=self.rng.randrange(1, 366))

    # ------------------------------------------------------------------ households
    def household(self, hh_id: str, first_idx: int, limit: int) -> list[Person]:
        """One household of at most ``limit`` people, indices from ``first_idx``."""
        r = self.rng
        fips = r.choices([c.fips for c in self.w.counties], weights=self.w.county_weights)[0]
        group = GROUP_NAMES[bisect.bisect(GROUP_CUM, r.random() * GROUP_CUM[-1])]
        group = group if group in self.pools else "other"
        kind = r.choices(("single", "couple", "family", "extended", "senior"), weights=(30, 10, 45, 7, 8))[0]
        address, phone = self._address(fips), self._phone(fips)
        father_family, mother_family = self._family(group), self._family(group)
        specs: list[tuple[str, str, int]] = []  # role, sex, age
        if kind == "single":
            specs.append(("adult", r.choice("MF"), r.randrange(19, 64)))
        elif kind == "senior":
            specs.append(("adult", r.choice("MFF"), r.randrange(65, 95)))
        else:
            pa = r.randrange(21, 52) if kind != "couple" else r.randrange(19, 80)
            specs.append(("father", "M", pa))
            if r.random() < 0.7 or kind == "couple":
                specs.append(("mother", "F", max(18, pa + r.randrange(-6, 4))))
            elif specs[0][0] == "father":
                specs[0] = ("mother", "F", pa)
            if kind in ("family", "extended"):
                max_child_age = min(20, pa - 17)
                for _ in range(r.choices((1, 2, 3, 4), weights=(35, 35, 20, 10))[0]):
                    specs.append(("child", r.choice("MF"), r.randrange(0, max(1, max_child_age + 1))))
                if r.random() < self.r.twin_rate:
                    age = r.randrange(0, max(1, max_child_age + 1))
                    specs.append(("twin", r.choice("MF"), age))
                    specs.append(("twin", r.choice("MF"), age))
            if kind == "extended":
                specs.append(("grand", r.choice("MF"), r.randrange(max(60, pa + 18), 92)))
        specs = specs[:limit]
        people: list[Person] = []
        parents_ssn = ""
        twin_dob: dt.date | None = None
        twin_first: Person | None = None
        hispanic = group == "hispanic"
        compound_kids = hispanic and r.random() < 0.4
        hyphen = r.random() < 0.4
        for k, (role, sex, age) in enumerate(specs):
            p = Person()
            p.idx = first_idx + k
            p.pid = f"P{p.idx:09d}"
            p.hh, p.group, p.sex = hh_id, group, sex
            if role == "twin" and twin_dob is not None:
                p.dob = twin_dob
            else:
                p.dob = self._dob(age)
                if role == "twin":
                    twin_dob = p.dob
            if role == "father" or (role == "adult" and sex == "M") or role == "grand":
                family = father_family
            elif role == "mother":
                family = mother_family if hispanic or r.random() < 0.3 else father_family
            elif role == "adult":
                family = father_family
            else:
                family = father_family
                if compound_kids and mother_family != father_family:
                    family = f"{father_family}{'-' if hyphen else ' '}{mother_family}"
            p.given = self._given(group, sex)
            if role in ("child", "twin") and sex == "M" and people and people[0].sex == "M" \
                    and r.random() < self.r.junior_rate:
                p.given = people[0].given  # a son named after his father: same name, same address
            if role == "twin" and twin_first is not None:
                # twins: different given names, often the same initial (hard for linkage)
                for _ in range(8):
                    if p.given != twin_first.given and (r.random() < 0.5 or p.given[0] == twin_first.given[0]):
                        break
                    p.given = self._given(group, sex)
                if p.given == twin_first.given:
                    p.given = p.given + "a" if sex == "F" else p.given + "o"
                p.twin_of = twin_first.pid
            elif role == "twin":
                twin_first = p
            p.middle = self._given(group, sex) if r.random() < (0.6 if group in ("white", "hispanic", "black") else 0.2) else ""
            if p.middle == p.given:
                p.middle = ""
            p.family_hist = [(0, family)]
            p.mother_maiden = mother_family if role in ("child", "twin") else self._family(group)
            p.cin = make_cin(self.w.scramblers["cin"](p.idx), r)
            p.ssn = make_ssn(r) if r.random() < (0.9 if age < 18 else 0.82) else ""
            if role in ("father", "mother", "adult") and p.ssn and not parents_ssn:
                parents_ssn = p.ssn
            elif parents_ssn:
                p.relative_ssn = parents_ssn
            p.addr_hist = [(0, address)]
            p.phone_hist = [(0, phone if r.random() < 0.85 else "")]
            if age >= 16 and r.random() < 0.4:
                p.email = f"{p.given.lower()}.{family.split()[0].split('-')[0].lower()}{r.randrange(1, 999)}@example.com"
            p.language = group
            p.race_pick = r.random()
            p.aid = r.choice(AID_CHILD if age < 19 else AID_SENIOR if age >= 65 else AID_ADULT)
            people.append(p)
        self._births(people, specs, hh_id, first_idx, limit)
        for p in people:
            self._life_events(p)
        return people

    def _births(self, people: list[Person], specs: list, hh_id: str, first_idx: int, limit: int) -> None:
        """A baby born during the window to a mother of child-bearing age."""
        mothers = [p for p, s in zip(people, specs, strict=False) if s[0] == "mother" and 18 <= p.age_at(self.w.start) <= 42]
        # About half the population lives with a mother of child-bearing age, so this gives
        # roughly birth_rate births per person-year overall.
        chance = min(0.6, self.r.birth_rate * 2 * len(people) * self.nmonths / 12)
        if not mothers or len(people) >= limit or self.rng.random() >= chance:
            return
        mom, r = mothers[0], self.rng
        dad = next((p for p in people if p.hh == hh_id and p.sex == "M" and p.age_at(self.w.start) >= 18), None)
        baby = Person()
        baby.idx = first_idx + len(people)
        baby.pid = f"P{baby.idx:09d}"
        baby.hh, baby.group, baby.sex = hh_id, mom.group, r.choice("MF")
        baby.dob = self.w.start + dt.timedelta(days=r.randrange((self.w.end - self.w.start).days + 1))
        baby.given = self._given(mom.group, baby.sex)
        baby.middle = ""
        baby.family_hist = [(0, dad.family_at(0) if dad else mom.family_at(0))]
        baby.mother_maiden = mom.family_at(0)
        baby.cin = make_cin(self.w.scramblers["cin"](baby.idx), r)
        baby.ssn = make_ssn(r) if r.random() < 0.7 else ""
        baby.relative_ssn = mom.ssn
        baby.addr_hist = list(mom.addr_hist)
        baby.phone_hist = [(0, mom.phone_at(0))]
        baby.language, baby.race_pick = mom.language, mom.race_pick
        baby.aid = "0C"
        people.append(baby)

    # ------------------------------------------------------------------ life events
    def _life_events(self, p: Person) -> None:
        r, rates, n = self.rng, self.r, self.nmonths
        start_age = p.age_at(self.w.start)
        # deaths: rare, more at older ages
        death_rate = 0.002 if start_age < 65 else 0.02 if start_age < 80 else 0.07
        if n > 1 and r.random() < death_rate * n / 12:
            d = self.w.start + dt.timedelta(days=r.randrange((self.w.end - self.w.start).days))
            if d > p.dob:
                p.dod = d
        # moves
        if n > 1 and r.random() < rates.move_within_county + rates.move_between_counties:
            m = r.randrange(1, n)
            fips = p.county_first
            if len(self.w.counties) > 1 and r.random() < rates.move_between_counties / (
                    rates.move_within_county + rates.move_between_counties):
                fips = r.choice([c.fips for c in self.w.counties if c.fips != fips])
            p.addr_hist.append((m, self._address(fips)))
        if n > 1 and r.random() < rates.phone_change:
            p.phone_hist.append((r.randrange(1, n), self._phone(p.addr_at(n - 1)[3])))
        # marriage name change
        if n > 1 and p.sex == "F" and 18 <= start_age <= 45 and r.random() < rates.name_change:
            old = p.family_at(0)
            new = self._family(p.group)
            p.family_hist.append((r.randrange(1, n), f"{old}-{new}" if r.random() < 0.2 else new))
        self._enrollment(p, start_age)

    def _enrollment(self, p: Person, start_age: int) -> None:
        r, rates, n, w = self.rng, self.r, self.nmonths, self.w
        plan = "mcp_sierra" if r.random() < rates.sierra_share else "mcp_bluecoast"
        months: list[str | None] = [plan] * n
        birth_m = w.month_of(p.dob)
        if r.random() < rates.never_enrolled:
            months = [None] * n
        else:
            x = r.random()
            if n > 2 and x < rates.enrollment_gap:
                g0 = r.randrange(1, n - 1)
                for m in range(g0, min(n - 1, g0 + r.randrange(1, 4))):
                    months[m] = None
            elif n > 1 and x < rates.enrollment_gap + rates.plan_switch:
                other = "mcp_bluecoast" if plan == "mcp_sierra" else "mcp_sierra"
                for m in range(r.randrange(1, n), n):
                    months[m] = other
            elif n > 1 and x < rates.enrollment_gap + rates.plan_switch + rates.late_start:
                for m in range(r.randrange(1, n)):
                    months[m] = None
            elif n > 1 and x < rates.enrollment_gap + rates.plan_switch + rates.late_start + rates.early_end:
                for m in range(r.randrange(1, n), n):
                    months[m] = None
        for m in range(n):
            if m < birth_m or (p.dod is not None and w.months[m].first > p.dod):
                months[m] = None
        p.plan_months = months
        if birth_m >= 0:
            p.cov_start = p.dob.replace(day=1)
        else:
            years = r.randrange(0, max(1, min(10, start_age + 1)))
            cs = dt.date(w.start.year - years, r.randrange(1, 13), 1)
            p.cov_start = max(cs, p.dob.replace(day=1))
            if p.cov_start > w.start:
                p.cov_start = w.start


def make_lookalikes(people: list[Person], rng: random.Random, rate: float) -> None:
    """Unrelated people who share given name, family name and birth date with someone else.

    In a state of 15 million, two Maria Garcias born on the same day exist; only the CIN, the
    address and the SSN tell them apart. Copies the identity of an adult in another household
    onto a single adult, leaving everything else (CIN, address, clinical history) their own.
    """
    sizes = Counter(p.hh for p in people)
    singles = [p for p in people if sizes[p.hh] == 1 and len(p.family_hist) == 1 and not p.twin_of]
    n = int(len(people) * rate + rng.random())
    for _ in range(n):
        if len(singles) < 2:
            return
        a, b = rng.sample(singles, 2)
        if a.hh == b.hh or a.dob.year < 1930 or b.lookalike_of or a.lookalike_of:
            continue
        b.given, b.sex, b.dob = a.given, a.sex, a.dob
        b.family_hist = [(0, a.family_at(0))]
        b.group = a.group
        b.lookalike_of = a.pid
        b.cov_start = max(b.cov_start, b.dob.replace(day=1))


def assign_conditions(p: Person, rng: random.Random, rates: PopulationRates, start: dt.date) -> None:
    """Condition and social flags by age (homelessness more likely with SMI or SUD)."""
    age = p.age_at(start)
    r = rng.random
    if age >= 18:
        p.smi = r() < 0.035
    elif age >= 6:
        p.smi = r() < 0.03
    p.mh = (not p.smi) and age >= 6 and r() < 0.10
    if 13 <= age < 18:
        p.sud = r() < 0.02
    elif age >= 18:
        p.sud = r() < 0.06
    chronic = []
    if age >= 18 and r() < (0.04 if age < 45 else 0.15 if age < 65 else 0.22):
        chronic.append("diabetes")
    if age >= 18 and r() < (0.08 if age < 45 else 0.30 if age < 65 else 0.55):
        chronic.append("hypertension")
    if r() < (0.08 if age < 18 else 0.07):
        chronic.append("asthma")
    if age >= 45 and r() < 0.06:
        chronic.append("copd")
    if age >= 55 and r() < (0.04 if age < 70 else 0.08):
        chronic.append("chf")
    p.chronic = tuple(chronic)
    if age >= 18:
        risk = rates.homeless_base + (0.18 if p.sud else 0) + (0.12 if p.smi else 0)
        p.homeless = r() < risk
    if p.homeless:
        line, city, zip5, fips = p.addr_hist[0][1]
        p.addr_hist = [(0, (rng.choice(SHELTERS), city, zip5, fips))]
        p.phone_hist = [(0, "" if r() < 0.5 else p.phone_hist[0][1])]


def plan_id(submitter: str) -> str:
    return PLAN_IDS[submitter]
