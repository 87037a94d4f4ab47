"""Synthetic person records with known truth, for the identity tests and benchmarks.

All values are made up (Faker name pools, random numbers); no real person is represented. The
generator mimics what hurts linkage in CalAIM data: four kinds of submitter with different
fields (plans: CIN, SSN, address; county behavioral health: CIN, some SSN, ZIP; dental: CIN,
ZIP; the immunization registry: no CIN or SSN, address and phone), households sharing family
name, address and phone, twins, nicknames, typos, day/month transpositions, hyphenated family
names, moves, and duplicate records within a source.

The project's full generator is ``phmx.synth``; this one is small, fast, and self-contained so
the identity tests do not depend on another package's layout.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from jobs.identity import config

PERSON_COLUMNS = ["source", "source_person_id", "cin", "ssn", "given_name", "middle_name", "family_name",
                  "birth_date", "sex", "address_line", "city", "state", "zip", "county_fips", "phone",
                  "record_date", "address_history"]

# (zip, county_fips, city): a handful of California places, including the three city LHJs.
PLACES = [
    ("94703", "06001", "Berkeley"), ("94601", "06001", "Oakland"), ("94538", "06001", "Fremont"),
    ("90802", "06037", "Long Beach"), ("91101", "06037", "Pasadena"), ("90011", "06037", "Los Angeles"),
    ("90201", "06037", "Bell"), ("91331", "06037", "Pacoima"), ("95112", "06085", "San Jose"),
    ("95020", "06085", "Gilroy"), ("93706", "06019", "Fresno"), ("92101", "06073", "San Diego"),
    ("92114", "06073", "San Diego"), ("95814", "06067", "Sacramento"), ("92501", "06065", "Riverside"),
    ("92401", "06071", "San Bernardino"), ("93301", "06029", "Bakersfield"), ("95521", "06023", "Arcata"),
    ("96001", "06089", "Redding"), ("95901", "06115", "Marysville"),
]
SUFFIXES = [("Street", "St"), ("Avenue", "Ave"), ("Boulevard", "Blvd"), ("Drive", "Dr"), ("Court", "Ct"),
            ("Lane", "Ln"), ("Road", "Rd"), ("Way", "Way"), ("Place", "Pl")]


@dataclass
class Rates:
    """How often each kind of error or variation happens (per record)."""

    nickname: float = 0.08
    given_typo: float = 0.04
    family_typo: float = 0.04
    family_hyphen: float = 0.02
    dob_transposed: float = 0.015
    dob_typo: float = 0.02
    sex_missing: float = 0.02
    cin_typo: float = 0.005
    ssn_typo: float = 0.01
    moved: float = 0.10
    phone_changed: float = 0.10
    dup_in_source: float = 0.03
    household: float = 0.25
    twins: float = 0.01


@lru_cache(maxsize=4)
def _pools(seed: int) -> tuple[list[str], list[str], list[str], list[str]]:
    from faker import Faker

    fk = Faker(["en_US", "es_MX"])
    fk.seed_instance(seed)
    male = sorted({fk.first_name_male() for _ in range(4000)})
    female = sorted({fk.first_name_female() for _ in range(4000)})
    family = sorted({fk.last_name() for _ in range(9000)})
    streets = sorted({fk.street_name().split(" ")[0] for _ in range(3000)})
    return male, female, family, streets


def _unique_ssns(n: int, rng: np.random.Generator) -> list[str]:
    """Distinct SSNs in the valid ranges (area 001-665, group 01-99, serial 0001-9999)."""
    out: set[int] = set()
    while len(out) < n:
        k = n - len(out)
        nums = rng.integers(1, 666, k) * 1_000_000 + rng.integers(1, 100, k) * 10_000 + rng.integers(1, 10_000, k)
        out.update(int(x) for x in nums)
    return [f"{x:09d}" for x in sorted(out)[:n]] if len(out) == n else [f"{x:09d}" for x in list(out)[:n]]


def _zipf(n: int, size: int, rng: np.random.Generator, a: float = 1.05) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** a
    return rng.choice(n, size=size, p=w / w.sum())


def _typo(s: str, r: random.Random) -> str:
    if len(s) < 3:
        return s
    i = r.randrange(1, len(s))
    op = r.random()
    letters = string.ascii_lowercase if s[i].islower() else string.ascii_uppercase
    if op < 0.35:
        return s[:i] + r.choice(letters) + s[i + 1:]
    if op < 0.6:
        return s[:i] + s[i + 1:]
    if op < 0.8 and i < len(s) - 1:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]
    return s[:i] + r.choice(letters) + s[i:]


def _digit_typo(s: str, r: random.Random) -> str:
    i = r.randrange(len(s))
    return s[:i] + str((int(s[i]) + r.randrange(1, 10)) % 10) + s[i + 1:]


def _case(s: str, r: random.Random) -> str:
    x = r.random()
    return s.upper() if x < 0.4 else (s.lower() if x < 0.5 else s)


def generate(members: int, seed: int = 7, rates: Rates | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(person, truth)``: silver.person-shaped records and (source, source_person_id, person_id)."""
    rates = rates or Rates()
    rng = np.random.default_rng(seed)
    r = random.Random(seed)  # noqa: S311 - synthetic test data, not security
    male, female, family, streets = _pools(seed)
    inverse_nick: dict[str, list[str]] = {}
    # The curated table only: the records' nicknames do not grow with the linker's public list.
    for nick, groups in config.nicknames(public=False).items():
        for canon in groups:
            if nick != canon:
                inverse_nick.setdefault(canon, []).append(nick)

    n = members
    sex = np.where(rng.random(n) < 0.5, "M", "F")
    gi_m, gi_f = _zipf(len(male), n, rng), _zipf(len(female), n, rng)
    given = np.where(sex == "M", np.array(male, dtype=object)[gi_m], np.array(female, dtype=object)[gi_f])
    mid_m, mid_f = rng.integers(0, len(male), n), rng.integers(0, len(female), n)
    middle = np.where(sex == "M", np.array(male, dtype=object)[mid_m], np.array(female, dtype=object)[mid_f])
    middle = np.where(rng.random(n) < 0.6, middle, np.full(n, None, dtype=object))
    fam = np.array(family, dtype=object)[_zipf(len(family), n, rng, 0.9)]
    start = dt.date(1935, 1, 1).toordinal()
    dob = np.array([dt.date.fromordinal(start + int(x)) for x in rng.integers(0, 32000, n)], dtype=object)
    cin_nums = rng.choice(10_000_000, size=n, replace=False)
    cin = np.array([f"9{x:07d}{string.ascii_uppercase[int(k)]}" for x, k in zip(cin_nums, rng.integers(0, 26, n), strict=True)],
                   dtype=object)
    ssn = np.array(_unique_ssns(n, rng), dtype=object)
    ssn = np.where(rng.random(n) < 0.85, ssn, np.full(n, None, dtype=object))
    place = rng.integers(0, len(PLACES), n)
    house = rng.integers(1, 9999, n)
    street = np.array(streets, dtype=object)[rng.integers(0, len(streets), n)]
    suffix = rng.integers(0, len(SUFFIXES), n)
    unit = np.where(rng.random(n) < 0.2, rng.integers(1, 40, n), 0)
    phone = np.array([f"{a}{b}{c:04d}" for a, b, c in zip(rng.integers(200, 999, n), rng.integers(200, 999, n),
                                                          rng.integers(0, 9999, n), strict=True)], dtype=object)
    # Households (share family name, address, phone) and twins (also share birth date).
    for i in range(1, n):
        x = r.random()
        if x < rates.household + rates.twins:
            j = r.randrange(max(0, i - 50), i)
            fam[i], place[i], house[i], street[i], suffix[i], unit[i], phone[i] = \
                fam[j], place[j], house[j], street[j], suffix[j], unit[j], phone[j]
            if x < rates.twins:
                dob[i] = dob[j]
                while given[i] == given[j]:
                    given[i] = r.choice(male if sex[i] == "M" else female)

    rows: list[list[object]] = []
    truth: list[tuple[str, str, int]] = []
    counters: dict[str, int] = {}

    def emit(pid: int, source: str, fields: set[str]) -> None:
        counters[source] = counters.get(source, 0) + 1
        prefix = "".join(part[:2] for part in source.split("_")).upper()
        spid = f"{prefix}{counters[source]:08d}"
        g = str(given[pid])
        if r.random() < rates.nickname and g.upper() in inverse_nick:
            g = r.choice(inverse_nick[g.upper()]).title()
        if r.random() < rates.given_typo:
            g = _typo(g, r)
        f = str(fam[pid])
        if r.random() < rates.family_hyphen:
            f = f + "-" + r.choice(family)
        if r.random() < rates.family_typo:
            f = _typo(f, r)
        d = dob[pid]
        if r.random() < rates.dob_transposed and d.day <= 12 and d.day != d.month:
            d = dt.date(d.year, d.day, d.month)
        elif r.random() < rates.dob_typo:
            s = _digit_typo(d.strftime("%Y%m%d")[2:], r)
            try:
                d = dt.datetime.strptime(d.strftime("%Y%m%d")[:2] + s, "%Y%m%d").date()
            except ValueError:
                pass
        s_ = None if r.random() < rates.sex_missing else str(sex[pid])
        c = str(cin[pid]) if "cin" in fields and r.random() < 0.95 else None
        if c and r.random() < rates.cin_typo:
            c = c[0] + _digit_typo(c[1:8], r) + c[8]
        sn = ssn[pid] if "ssn" in fields and r.random() < 0.8 else None
        if sn and r.random() < rates.ssn_typo:
            sn = _digit_typo(sn, r)
        if sn and r.random() < 0.5:
            sn = f"{sn[:3]}-{sn[3:5]}-{sn[5:]}"
        moved = r.random() < rates.moved
        pl = PLACES[r.randrange(len(PLACES))] if moved else PLACES[place[pid]]
        hn = r.randrange(1, 9999) if moved else int(house[pid])
        st = r.choice(streets) if moved else str(street[pid])
        sfx = SUFFIXES[r.randrange(len(SUFFIXES)) if moved else int(suffix[pid])][int(r.random() < 0.5)]
        un = int(unit[pid]) if not moved else 0
        addr = f"{hn} {st} {sfx}" + (f" {r.choice(['Apt', '#', 'Unit'])} {un}" if un else "")
        ph = str(phone[pid])
        if r.random() < rates.phone_changed:
            ph = f"{r.randrange(200, 999)}{r.randrange(200, 999)}{r.randrange(0, 9999):04d}"
        if r.random() < 0.3:
            ph = f"({ph[:3]}) {ph[3:6]}-{ph[6:]}"
        mid = middle[pid] if "middle_name" in fields else None
        rows.append([
            source, spid, c, sn, _case(g, r), _case(str(mid), r) if mid else None, _case(f, r), d, s_,
            _case(addr, r) if "address_line" in fields else None,
            pl[2] if "address_line" in fields else None, "CA", pl[0],
            pl[1] if "county_fips" in fields else None,
            ph if "phone" in fields and r.random() < 0.85 else None,
            dt.date(2024, 1, 1) + dt.timedelta(days=r.randrange(0, 365)),
        ])
        truth.append((source, spid, pid))

    plan_fields = {"cin", "ssn", "middle_name", "address_line", "county_fips", "phone"}
    bh_fields = {"cin", "ssn", "county_fips"}
    dental_fields = {"cin"}
    cair_fields = {"middle_name", "address_line", "phone"}
    for pid in range(n):
        sources = []
        if r.random() < 0.95:
            sources.append(("mcp_bluecoast" if r.random() < 0.6 else "mcp_goldstate", plan_fields))
        if r.random() < 0.2:
            sources.append(("county_06001_bh", bh_fields))
        if r.random() < 0.4:
            sources.append(("dental_medical", dental_fields))
        if r.random() < 0.6:
            sources.append(("cair2", cair_fields))
        if not sources:
            sources.append(("cair2", cair_fields))
        for src, fields in sources:
            emit(pid, src, fields)
            # Plans and dental keep one record per member; counties and the registry duplicate.
            if src.startswith(("county_", "cair2")) and r.random() < rates.dup_in_source:
                emit(pid, src, fields)
    # One version per record here, so no address history (the column stays null).
    person = pd.DataFrame(rows, columns=[c for c in PERSON_COLUMNS if c != "address_history"])
    return person.reindex(columns=PERSON_COLUMNS), pd.DataFrame(truth, columns=["source", "source_person_id", "person_id"])


def to_spark(spark, person: pd.DataFrame):  # noqa: ANN001, ANN201 - pyspark types
    """A silver.person-shaped DataFrame from :func:`generate`-like output (absent columns null)."""
    from phmx import lakehouse, tables

    person = person.reindex(columns=PERSON_COLUMNS)  # missing columns are null
    df = spark.createDataFrame(person.astype(object).where(person.notna(), None),
                               "source string, source_person_id string, cin string, ssn string, given_name string,"
                               " middle_name string, family_name string, birth_date date, sex string,"
                               " address_line string, city string, state string, zip string, county_fips string,"
                               " phone string, record_date date, address_history string")
    return lakehouse.conform_to(df, tables.PERSON)


def write_person(spark, person) -> None:  # noqa: ANN001 - a pandas or pyspark DataFrame
    """Replace silver.person with ``person`` (pandas from :func:`generate`, or a silver.person-
    shaped engine frame), its direct identifiers encrypted as conform writes them: the identity
    stage refuses plaintext in silver.person. For tests and benchmarks."""
    from phmx import lakehouse, tables
    from privacy.crypto import encrypt_for_write
    from privacy.keys import get_provider

    df = to_spark(spark, person) if isinstance(person, pd.DataFrame) else lakehouse.conform_to(person, tables.PERSON)
    enc = encrypt_for_write(df, tables.PERSON.fqn, get_provider(), keys=tables.PERSON.keys)
    lakehouse.overwrite(lakehouse.conform_to(enc, tables.PERSON), tables.PERSON, schema=True)
