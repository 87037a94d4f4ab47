"""Identity noise: how one source's copy of a person drifts from the truth.

Why a view per (person, source) rather than noise per row: a county's system holds one client
record and repeats it on every row, stale address and misspelt name included, while another
source holds its own, differently wrong copy. That is what linkage has to untangle. Life events
(moves, marriages, new phones) reach each source with its own lag, some never.
"""

from __future__ import annotations

import datetime as dt
import random
import string

from phmx.synth.config import NoiseRates
from phmx.synth.households import Address, Person
from phmx.synth.identifiers import invalid_ssn
from phmx.synth.names import ACCENTED, NICKNAMES, strip_accents

NEVER = 10_000  # a lag that outlasts any window

KEYBOARD = {
    "a": "qwsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc", "g": "ftyhbv",
    "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop", "m": "njk", "n": "bhjm",
    "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz", "t": "rfgy", "u": "yhji",
    "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}
OCR = (("rn", "m"), ("m", "rn"), ("cl", "d"), ("l", "1"), ("O", "0"), ("o", "0"), ("S", "5"), ("B", "8"),
       ("I", "1"), ("e", "c"), ("u", "v"), ("n", "h"), ("h", "n"), ("a", "o"))


def typo(rng: random.Random, s: str) -> str:
    """One keying or OCR error: insert, delete, transpose, substitute (neighbour key) or OCR swap."""
    if len(s) < 2:
        return s
    op = rng.randrange(5)
    i = rng.randrange(1, len(s))  # the first letter is rarely wrong in practice
    if op == 0:
        return s[:i] + rng.choice(string.ascii_lowercase if s[i - 1].islower() else string.ascii_uppercase) + s[i:]
    if op == 1 and len(s) > 3:
        return s[:i] + s[i + 1 :]
    if op == 2 and i < len(s) - 1:
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    if op == 3:
        near = KEYBOARD.get(s[i].lower())
        if near:
            c = rng.choice(near)
            return s[:i] + (c.upper() if s[i].isupper() else c) + s[i + 1 :]
    for a, b in OCR:
        j = s.find(a, 1)
        if j > 0:
            return s[:j] + b + s[j + len(a) :]
    return s[:i] + s[i + 1 :] if len(s) > 3 else s


def digit_typo(rng: random.Random, s: str) -> str:
    """Substitute one digit or transpose two neighbouring digits of an identifier."""
    digits = [i for i, c in enumerate(s) if c.isdigit()]
    if len(digits) < 2:
        return s
    i = rng.choice(digits[1:-1] or digits)
    if rng.random() < 0.5 and i + 1 < len(s) and s[i + 1].isdigit() and s[i] != s[i + 1]:
        return s[:i] + s[i + 1] + s[i] + s[i + 2 :]
    return s[:i] + str((int(s[i]) + rng.randrange(1, 10)) % 10) + s[i + 1 :]


def dob_typo(rng: random.Random, d: dt.date) -> dt.date:
    for _ in range(4):
        try:
            if rng.random() < 0.5:
                return d.replace(day=d.day + rng.choice((-1, 1)))
            return d.replace(year=d.year + rng.choice((-1, 1)))
        except ValueError:
            continue
    return d


def family_variant(rng: random.Random, family: str, rates: NoiseRates) -> str:
    """Two-part family names lose a part or change separator in some sources."""
    if " " in family or "-" in family:
        sep = "-" if "-" in family else " "
        parts = family.split(sep)
        if family.startswith(("De ", "Dela ")):
            return family if rng.random() > rates.hyphen_changed else family.replace(" ", "")
        if rng.random() < rates.compound_part_dropped:
            return parts[0] if rng.random() < 0.8 else parts[-1]
        if rng.random() < rates.hyphen_changed:
            return family.replace(sep, " " if sep == "-" else "-")
    return family


class SourceView:
    """One source's stable copy of one person (kind: plan, county, dental, registry)."""

    __slots__ = ("p", "given", "middle", "families", "family_lag", "dob", "sex", "ssn", "cin", "addr_lag",
                 "addr_fix", "phone_ok", "swapped", "unicode")

    def __init__(self, p: Person, kind: str, rng: random.Random, rates: NoiseRates) -> None:
        r = rng.random
        self.p = p
        self.unicode = kind in ("county", "registry") and r() < rates.accent_kept
        nick = rates.nickname * (0.1 if kind == "plan" else 1.0)
        given = p.given
        if given in NICKNAMES and r() < nick:
            given = rng.choice(NICKNAMES[given])
        if r() < rates.name_typo:
            given = typo(rng, given)
        self.given = given
        middle = p.middle
        if middle and r() < rates.middle_missing:
            middle = ""
        elif middle and kind == "plan" and r() < 0.5:
            middle = middle[0]
        self.middle = middle
        self.families: dict[str, str] = {}
        for _, fam in p.family_hist:
            v = family_variant(rng, fam, rates)
            if r() < rates.name_typo:
                v = typo(rng, v)
            self.families[fam] = v
        self.family_lag = NEVER if r() < rates.name_change_lag else rng.randrange(0, 2)
        dob = p.dob
        if r() < rates.dob_day_month_swapped and dob.day <= 12 and dob.day != dob.month:
            dob = dob.replace(month=dob.day, day=dob.month)
        elif r() < rates.dob_typo:
            dob = dob_typo(rng, dob)
        self.dob = dob
        self.sex = "U" if r() < rates.sex_unknown else p.sex
        self.ssn = self._ssn(kind, rng, rates)
        self.cin = self._cin(kind, rng, rates)
        self.addr_lag = NEVER if r() < rates.address_stale else rng.randrange(0, 2)
        self.addr_fix = r() < rates.address_typo
        self.phone_ok = r() >= rates.phone_missing
        self.swapped = r() < rates.given_family_swapped

    def _ssn(self, kind: str, rng: random.Random, rates: NoiseRates) -> str:
        ssn = self.p.ssn
        x = rng.random()
        if kind == "plan":
            if not ssn or x >= rates.plan_ssn_full + rates.plan_ssn_last4:
                return ""
            return ssn if x < rates.plan_ssn_full else "XXXXX" + ssn[5:]
        if kind != "county" or x >= rates.county_ssn_present:
            return ""
        y = rng.random()
        if y < rates.county_ssn_invalid:
            return invalid_ssn(rng)
        if y < rates.county_ssn_invalid + rates.county_ssn_relative and self.p.relative_ssn:
            return self.p.relative_ssn
        return ssn

    def _cin(self, kind: str, rng: random.Random, rates: NoiseRates) -> str:
        present = {"plan": rates.plan_cin_present, "county": rates.county_cin_present,
                   "dental": rates.dental_cin_present, "registry": rates.registry_cin_present}[kind]
        if rng.random() >= present:
            return ""
        if kind == "plan" and rng.random() < rates.plan_cin_typo:
            return digit_typo(rng, self.p.cin)
        return self.p.cin

    # ---------------------------------------------------------------- month-dependent parts
    def family(self, m: int) -> str:
        hist = self.p.family_hist
        fam = hist[0][1]
        for start, v in hist[1:]:
            if m >= start + self.family_lag:
                fam = v
        return self.families[fam]

    def address(self, m: int) -> Address:
        hist = self.p.addr_hist
        addr = hist[0][1]
        for start, v in hist[1:]:
            if m >= start + self.addr_lag:
                addr = v
        if self.addr_fix:
            line = addr[0]
            addr = (line.replace(" APT ", " #", 1) if " APT " in line else line.replace(" ST", " STREET"),) + addr[1:]
        return addr

    def phone(self, m: int) -> str:
        return self.p.phone_at(m) if self.phone_ok else ""

    def names(self, m: int) -> tuple[str, str, str]:
        """(given, middle, family) as this source holds them in month ``m`` (canonical case)."""
        fam = self.family(m)
        if self.swapped:
            return fam, self.middle, self.given
        return self.given, self.middle, fam

    def render(self, s: str) -> str:
        """Apply the source's character rules: Unicode sources may keep Spanish accents."""
        if self.unicode:
            return " ".join(ACCENTED.get(w, w) for w in s.split(" "))
        return s


_UPPER: dict[str, str] = {}


def upper_ascii(s: str) -> str:
    """Upper-case ASCII as MEDS-fed plan systems hold names (cached: names repeat a lot)."""
    out = _UPPER.get(s)
    if out is None:
        out = strip_accents(s).upper()
        if len(_UPPER) < 200_000:
            _UPPER[s] = out
    return out
