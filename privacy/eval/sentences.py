"""Seeded generator of labelled synthetic clinical sentences (JSONL with gold character spans).

Every value is fake (Faker plus our own formats); sentences read like CalAIM referral reasons
and care-coordination notes. Names come half from locales the scrubber's given-name list was
built from (en_US, es_MX) and half from held-out locales (en_GB, en_IN, it_IT, pt_BR), so the
evaluation also shows how the scrubber does on names it has no list for (``meta.name_source``).

Labels: PERSON, ADDRESS (street line with unit), LOCATION (city, county), ZIP, PHONE, EMAIL,
SSN, CIN, MRN, DATE (full dates and month+day), DRIVER_LICENSE, AGE (over 89).
About one sentence in seven has no identifier at all (program jargon that must survive).

Run ``python -m privacy.eval.sentences --out privacy/eval/data/eval_set.jsonl`` (the committed
set was made with the defaults: seed 6, 420 sentences).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from faker import Faker

DEFAULT_OUT = Path(__file__).with_name("data") / "eval_set.jsonl"
IN_LIST_LOCALES = ("en_US", "es_MX")
HELD_OUT_LOCALES = ("en_GB", "en_IN", "it_IT", "pt_BR")
CITIES = ("Fresno", "Oakland", "Sacramento", "Bakersfield", "Stockton", "Modesto", "Salinas", "Riverside",
          "San Bernardino", "Santa Rosa", "Chico", "Redding", "Eureka", "Visalia", "Merced", "Oxnard",
          "Long Beach", "Pasadena", "Berkeley", "El Centro", "Hanford", "Yuba City", "San Jose", "Fontana")
COUNTIES = ("Fresno", "Alameda", "Kern", "San Joaquin", "Stanislaus", "Monterey", "Humboldt", "Tulare",
            "Merced", "Ventura", "Imperial", "Kings", "Shasta", "Butte", "Sonoma", "Riverside")
STREET_SUFFIXES = ("St", "Street", "Ave", "Avenue", "Blvd", "Rd", "Road", "Dr", "Drive", "Ln", "Way",
                   "Ct", "Pl", "Cir", "Hwy", "Pkwy", "Ter", "Trail")
STREET_WORDS = ("Oak", "Pine", "Maple", "Cedar", "Elm", "Olive", "Shaw", "Blackstone", "Kings Canyon",
                "Mission", "El Camino", "Broadway", "Telegraph", "Fruitridge", "Florin", "Chestnut",
                "Palm", "Walnut", "Sierra Vista", "Las Palmas", "Valley View", "Main", "Church", "Lincoln",
                "1st", "5th", "12th", "23rd", "Martin Luther King Jr")
UNITS = ("Apt 4B", "Apt. 12", "Unit 7", "#210", "Suite 300", "Space 14", "Apt 2")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


@dataclass
class Slot:
    text: str
    label: str | None
    # part of ``text`` that is the identifier (for titles like "Dr. " outside the span)
    lead: int = 0


class Gen:
    """Slot fillers; one instance per sentence-set, seeded."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        self.fakers = {loc: Faker(loc) for loc in IN_LIST_LOCALES + HELD_OUT_LOCALES}
        for i, f in enumerate(self.fakers.values()):
            f.seed_instance(seed * 100 + i)
        self.locale = "en_US"

    def pick_locale(self) -> str:
        pool = IN_LIST_LOCALES if self.rng.random() < 0.5 else HELD_OUT_LOCALES
        self.locale = self.rng.choice(pool)
        return self.locale

    @property
    def fk(self) -> Faker:
        return self.fakers[self.locale]

    # --- people --------------------------------------------------------------------------------
    def person(self) -> Slot:
        return Slot(f"{self.fk.first_name()} {self.fk.last_name()}", "PERSON")

    def first(self) -> Slot:
        return Slot(self.fk.first_name(), "PERSON")

    def last(self) -> Slot:
        return Slot(self.fk.last_name(), "PERSON")

    def dr(self) -> Slot:
        name = self.fk.last_name() if self.rng.random() < 0.6 else f"{self.fk.first_name()} {self.fk.last_name()}"
        title = self.rng.choice(("Dr. ", "Dr ", "Nurse ", "NP "))
        return Slot(title + name, "PERSON", lead=len(title))

    def lastfirst(self) -> Slot:
        return Slot(f"{self.fk.last_name().upper()}, {self.fk.first_name().upper()}", "PERSON")

    # --- dates ---------------------------------------------------------------------------------
    def _date(self, start: date, span_days: int) -> date:
        return start + timedelta(days=self.rng.randrange(span_days))

    def _fmt(self, d: date) -> str:
        style = self.rng.randrange(7)
        if style == 0:
            return f"{d.month:02d}/{d.day:02d}/{d.year}"
        if style == 1:
            return f"{d.month}/{d.day}/{d.year % 100:02d}"
        if style == 2:
            return d.isoformat()
        if style == 3:
            return f"{MONTHS[d.month - 1]} {d.day}, {d.year}"
        if style == 4:
            return f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}"
        if style == 5:
            return f"{MONTHS[d.month - 1][:3]}. {d.day}, {d.year}"
        return f"{d.month}/{d.day}/{d.year}"

    def date(self) -> Slot:
        return Slot(self._fmt(self._date(date(2022, 1, 1), 1200)), "DATE")

    def dob(self) -> Slot:
        return Slot(self._fmt(self._date(date(1935, 1, 1), 30000)), "DATE")

    def monthday(self) -> Slot:
        d = self._date(date(2024, 1, 1), 365)
        return Slot(f"{MONTHS[d.month - 1]} {d.day}", "DATE")

    # --- numbers -------------------------------------------------------------------------------
    def cin(self) -> Slot:
        letter = self.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ")
        return Slot(f"9{self.rng.randrange(10**7):07d}{letter}", "CIN")

    def ssn(self) -> Slot:
        area = self.rng.choice([a for a in range(1, 900) if a != 666])
        group, serial = self.rng.randrange(1, 100), self.rng.randrange(1, 10000)
        sep = "-" if self.rng.random() < 0.8 else " "
        return Slot(f"{area:03d}{sep}{group:02d}{sep}{serial:04d}", "SSN")

    def mrn(self) -> Slot:
        style = self.rng.randrange(4)
        if style == 0:
            return Slot(f"{self.rng.randrange(10**8):08d}", "MRN")
        if style == 1:
            return Slot(f"MR{self.rng.randrange(10**7):07d}", "MRN")
        if style == 2:
            return Slot(f"{self.rng.choice(['KP', 'UCD', 'CHO', 'VMC'])}-{self.rng.randrange(10**6, 10**7)}", "MRN")
        return Slot(f"{self.rng.randrange(10**9, 10**10)}", "MRN")

    def phone(self) -> Slot:
        area = self.rng.choice(("559", "510", "916", "661", "209", "831", "707", "213", "909", "530"))
        mid, end = self.rng.randrange(200, 1000), self.rng.randrange(10000)
        style = self.rng.randrange(5)
        text = [f"({area}) {mid}-{end:04d}", f"{area}-{mid}-{end:04d}", f"{area}.{mid}.{end:04d}",
                f"+1 {area} {mid} {end:04d}", f"1-{area}-{mid}-{end:04d}"][style]
        return Slot(text, "PHONE")

    def email(self) -> Slot:
        user = re.sub(r"[^a-z0-9.]", "", f"{self.fk.first_name()}.{self.fk.last_name()}".lower()) or "member"
        dom = self.rng.choice(("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "countyca.gov"))
        return Slot(f"{user}{self.rng.randrange(100)}@{dom}", "EMAIL")

    def dl(self) -> Slot:
        return Slot(f"{self.rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{self.rng.randrange(10**7):07d}", "DRIVER_LICENSE")

    def age90(self) -> Slot:
        n = self.rng.randrange(90, 104)
        return Slot(self.rng.choice((f"{n}-year-old", f"{n} year old", f"{n} y/o", f"age {n}")), "AGE",
                    lead=0)

    # --- places --------------------------------------------------------------------------------
    def address(self) -> Slot:
        num = str(self.rng.randrange(1, 30000))
        if self.rng.random() < 0.4:
            name = self.fk.last_name()
        else:
            name = self.rng.choice(STREET_WORDS)
        direction = self.rng.choice(("", "", "", "N ", "S ", "E ", "W "))
        text = f"{num} {direction}{name} {self.rng.choice(STREET_SUFFIXES)}"
        if self.rng.random() < 0.35:
            text += (", " if self.rng.random() < 0.5 else " ") + self.rng.choice(UNITS)
        return Slot(text, "ADDRESS")

    def city(self) -> Slot:
        return Slot(self.rng.choice(CITIES), "LOCATION")

    def county(self) -> Slot:
        return Slot(f"{self.rng.choice(COUNTIES)} County", "LOCATION")

    def zip(self) -> Slot:
        return Slot(f"9{self.rng.randrange(3000, 6200):04d}", "ZIP")

    # --- no-identifier fillers ----------------------------------------------------------------
    def measure(self) -> Slot:
        return Slot(self.rng.choice(("FUH", "FUM", "FUA", "ECM", "CCM", "TCM", "PHM", "IMA", "CIS-10")), None)

    def days(self) -> Slot:
        return Slot(self.rng.choice(("7", "30", "14", "60", "90")), None)


TEMPLATES: tuple[str, ...] = (
    "Pt {person} (DOB {dob}) was referred for SMI follow-up after an ED visit on {date}.",
    "{person}'s Medi-Cal CIN is {cin}; please verify eligibility in MEDS before the {measure} outreach.",
    "Referral reason: housing instability. Client currently staying at {address}, {city}, CA {zip}.",
    "Please call the member at {phone} or email {email} to schedule the intake.",
    "SSN on file {ssn} does not match the MEDS record for CIN {cin}.",
    "MRN {mrn}; seen by {dr} for depression screening on {date}.",
    "Care manager {person} spoke with the client's mother, {person}, on {date} about transportation.",
    "Member moved to {address}, {city}, CA {zip} and requested a new PCP.",
    "California driver license {dl} was presented as ID at intake on {date}.",
    "{age90} member with dementia, lives alone; daughter {first} is the emergency contact ({phone}).",
    "Discharged from {county} Behavioral Health inpatient unit on {date}; follow-up within {days} days.",
    "Spoke with {first} at {phone}; she confirmed the appointment for {monthday}.",
    "Client {person}, DOB {dob}, CIN {cin}, MRN {mrn}.",
    "Name: {lastfirst}  DOB: {dob}  Phone: {phone}",
    "Referred by {dr} at the {city} clinic for SUD assessment.",
    "Voicemail left at {phone} on {date}; no callback yet.",
    "Member reports an eviction notice for {address}; ECM lead {person} notified.",
    "Outreach letter mailed to {address}, {city}, CA {zip} on {date}.",
    "Please send records for {person} (medical record number {mrn}) to the plan by {monthday}.",
    "{person} was released from {county} jail on {date} and needs a warm handoff to ECM.",
    "Mother {person} can be reached at {email}.",
    "Verified identity with SSN {ssn} and date of birth {dob}.",
    "The {age90} client was admitted to Skilled Nursing on {date}.",
    "Contact {first} {last} at {phone} regarding the prior authorization.",
    "Emergency contact: {person}, brother, {phone}.",
    "Client requests that {first} not be contacted; use {email} instead.",
    "CIN {cin} appears twice in the 834 file with different birth dates.",
    "{dr} noted the member's new address as {address}.",
    "Transportation pickup from {address} on {date} at 9:30 am.",
    "The member, {person}, missed her appointment on {monthday} and asked to reschedule.",
    "Patient ID {mrn} (MRN) was merged with a duplicate record.",
    "Homeless since {date}; last known address {address}, {city}.",
    "Per {person} at {county} DSS, Medi-Cal redetermination is due {date}.",
    "Member {first} {last}, age 34, CIN {cin}, enrolled in ECM on {date}.",
    "Left message for {first} at {phone} and sent a text.",
    "Member gave SSN {ssn} over the phone; eligibility verified against MEDS.",
    "Social security number {ssn} is listed on the 834 enrollment for {person}.",
    "{person} (SS# {ssn}) has two CINs on file: {cin} and {cin}.",
)
NEGATIVES: tuple[str, ...] = (
    "Medi-Cal eligibility confirmed; CIN pending from the county eligibility worker.",
    "Client enrolled in ECM under the SMI population of focus.",
    "Follow-up within 7 days per the FUH measure; no show, outreach attempted twice.",
    "Referred to county behavioral health for a specialty mental health assessment.",
    "PHQ-9 score 17, moderately severe depression; safety plan reviewed.",
    "Member declined CalAIM Community Supports housing navigation at this time.",
    "Needs interpreter services: Spanish. Prefers text messages.",
    "Prior authorization approved for 12 units of targeted case management.",
    "No SSN on file; Medi-Cal BIC card shown at the visit.",
    "Transitional care follow-up completed within 30 days of discharge.",
    "Client reports stable housing and reduced ED utilization this quarter.",
    "Plan to coordinate with the MCP care manager and the county ECM provider.",
    "Dental referral for fluoride varnish; OEV due this year.",
    "Vaccine series incomplete: needs MMR and varicella per CAIR2.",
    "Member is on MAT for opioid use disorder and attends group twice a week.",
)


def make_record(gen: Gen, idx: int) -> dict:
    """One sentence with gold spans."""
    locale = gen.pick_locale()
    if gen.rng.random() < 0.14:
        return {"id": f"s{idx:04d}", "text": gen.rng.choice(NEGATIVES), "spans": [],
                "meta": {"template": "negative", "name_source": None}}
    template = gen.rng.choice(TEMPLATES)
    text, spans = "", []
    for part in re.split(r"(\{\w+\})", template):
        m = re.fullmatch(r"\{(\w+)\}", part)
        if not m:
            text += part
            continue
        slot: Slot = getattr(gen, m.group(1))()
        start = len(text) + slot.lead
        text += slot.text
        if slot.label:
            spans.append({"start": start, "end": len(text), "label": slot.label})
    name_source = ("in_list" if locale in IN_LIST_LOCALES else "held_out") if any(
        s["label"] == "PERSON" for s in spans) else None
    return {"id": f"s{idx:04d}", "text": text, "spans": spans,
            "meta": {"template": TEMPLATES.index(template), "name_source": name_source, "locale": locale}}


def generate(n: int = 420, seed: int = 6) -> list[dict]:
    gen = Gen(seed)
    return [make_record(gen, i) for i in range(n)]


def write(records: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=420)
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    write(generate(args.n, args.seed), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
