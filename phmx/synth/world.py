"""The fixed world of one run: calendar window, counties, streets, providers, id scramblers.

Built once per (seed, counties, window) in every process that generates chunks, so workers
need nothing but these parameters to reproduce the same world.
"""

from __future__ import annotations

import calendar
import datetime as dt
import string
from dataclasses import dataclass
from functools import lru_cache

from faker import Faker

from phmx.synth.identifiers import Scrambler, derive_seed, luhn_npi, rng_for
from phmx.synth.reference import CVX_MVX, CountyGeo, county_geo

# Relative Medi-Cal populations (rough) to weight where households live.
COUNTY_WEIGHT = {"06037": 10.0, "06001": 1.7, "06013": 1.1, "06075": 0.9, "06059": 2.4, "06073": 2.3,
                 "06085": 1.2, "06067": 1.6, "06019": 1.4}


@dataclass(frozen=True)
class Month:
    index: int
    period: str  # YYYY-MM
    first: dt.date
    last: dt.date


@dataclass(frozen=True)
class Providers:
    """NPIs per county and role, CalOMS facility ids, CAIR provider ids."""

    pcp: tuple[str, ...]
    hospital: tuple[str, ...]
    bh: tuple[str, ...]
    dentist: tuple[str, ...]
    prescriber: tuple[str, ...]
    caloms: tuple[str, ...]
    cair: tuple[str, ...]


@dataclass(frozen=True)
class World:
    seed: int
    counties: tuple[CountyGeo, ...]
    county_weights: tuple[float, ...]
    months: tuple[Month, ...]
    streets: dict[str, tuple[str, ...]]
    providers: dict[str, Providers]
    scramblers: dict[str, Scrambler]
    lots: dict[str, tuple[str, ...]]

    @property
    def start(self) -> dt.date:
        return self.months[0].first

    @property
    def end(self) -> dt.date:
        return self.months[-1].last

    def month_of(self, d: dt.date) -> int:
        """Index of the window month holding ``d`` (may be <0 or >= len(months))."""
        m0 = self.months[0].first
        return (d.year - m0.year) * 12 + d.month - m0.month

    def county(self, fips: str) -> CountyGeo:
        for c in self.counties:
            if c.fips == fips:
                return c
        raise KeyError(fips)


def parse_month(start: str) -> tuple[int, int]:
    year, month = start.split("-")
    return int(year), int(month)


def build_months(start: str, months: int) -> tuple[Month, ...]:
    y, m = parse_month(start)
    out = []
    for i in range(months):
        yy, mm = y + (m - 1 + i) // 12, (m - 1 + i) % 12 + 1
        last = calendar.monthrange(yy, mm)[1]
        out.append(Month(i, f"{yy:04d}-{mm:02d}", dt.date(yy, mm, 1), dt.date(yy, mm, last)))
    return tuple(out)


def _streets(seed: int, fips: str, n: int = 400) -> tuple[str, ...]:
    fake = Faker("en_US")
    fake.seed_instance(derive_seed(seed, "streets", fips))
    return tuple(sorted({fake.street_name().upper() for _ in range(n)}))


def _providers(seed: int, geo: CountyGeo) -> Providers:
    r = rng_for(seed, "providers", geo.fips)

    def npis(prefix: str, k: int) -> tuple[str, ...]:
        return tuple(luhn_npi(prefix + f"{r.randrange(10**8):08d}") for _ in range(k))

    return Providers(
        pcp=npis("1", 120), hospital=npis("1", 12), bh=npis("1", 40), dentist=npis("1", 40),
        prescriber=npis("1", 80), caloms=tuple(f"{geo.code}{r.randrange(1, 10000):04d}" for _ in range(8)),
        cair=tuple(f"{r.randrange(10000, 99999)}" for _ in range(30)),
    )


def _lots(seed: int) -> dict[str, tuple[str, ...]]:
    """Vaccine lot numbers per CVX: real lots are shared by many doses, so draw from a pool."""
    r = rng_for(seed, "lots")
    alphabet = string.ascii_uppercase + string.digits
    return {cvx: tuple("".join(r.choice(alphabet) for _ in range(r.randrange(6, 9))) for _ in range(25))
            for cvx in sorted(CVX_MVX)}


@lru_cache(maxsize=4)
def build_world(seed: int, counties: tuple[str, ...], start: str, months: int) -> World:
    geos = tuple(county_geo(f) for f in counties)
    return World(
        seed=seed,
        counties=geos,
        county_weights=tuple(COUNTY_WEIGHT.get(g.fips, 1.0) for g in geos),
        months=build_months(start, months),
        streets={g.fips: _streets(seed, g.fips) for g in geos},
        providers={g.fips: _providers(seed, g) for g in geos},
        lots=_lots(seed),
        scramblers={name: Scrambler(seed, name, digits) for name, digits in (
            ("cin", 7), ("plan", 9), ("county_mh", 8), ("county_sud", 8), ("dental", 10), ("registry", 9),
        )},
    )
