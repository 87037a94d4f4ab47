"""Enrollment rows as an X12 834 5010 (005010X220A1) benefit enrollment interchange.

One interchange per file: ISA/GS/ST, the transaction header (BGN, REF*38 master policy,
DTP*007, N1*P5 sponsor, N1*IN payer with the plan id), then one 2000 member loop per row: INS,
REF*0F (member id), REF*23 (CIN), REF*17 (aid code), NM1*IL (name, SSN), PER*IP (phone,
email), N3/N4 (address, county FIPS), DMG (birth date, sex), LUI (language), 2300 HD with
DTP*348/349 (coverage dates); then SE/GE/IEA with their counts and control numbers.
The ingest spec ``mappings/feeds/enrollment_834.yaml`` reads exactly these paths, and the
output validates against pyx12's 834 5010 X220A1 map.

Lossy by the standard: DMG03 knows only F, M and U, so sex X is written as U; race and
ethnicity are not sent (DMG05 needs the CDC race code list qualifier; the plans' 834s leave it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import BinaryIO

from phmx.synth.writers import register_writer

ELEM, COMP, REP, TERM = "*", ":", "^", "~"
_BAD = str.maketrans({c: " " for c in ELEM + COMP + REP + TERM + "\r\n"})


def clean(value: str | None) -> str:
    """A value safe inside an element (no separators), trimmed."""
    return (value or "").translate(_BAD).strip()


def d8(value: str | None) -> str:
    """CCYYMMDD from CCYYMMDD or CCYY-MM-DD."""
    return (value or "").replace("-", "").strip()


def segment(*elements: str) -> str:
    """One segment, trailing empty elements dropped (X12 syntax)."""
    els = list(elements)
    while len(els) > 1 and els[-1] == "":
        els.pop()
    return ELEM.join(els) + TERM + "\n"


def member_loop(row: dict[str, str]) -> list[str]:
    """The 2000 loop of one enrollment row, as segments."""
    maint = clean(row.get("maintenance_type")) or "030"
    segs = [segment("INS", "Y", "18", maint, "XN" if maint == "030" else "28", "A", "", "", "AC")]
    segs.append(segment("REF", "0F", clean(row.get("member_local_id"))))
    if clean(row.get("cin")):
        segs.append(segment("REF", "23", clean(row.get("cin"))))
    if clean(row.get("aid_code")):
        segs.append(segment("REF", "17", clean(row.get("aid_code"))))
    ssn = clean(row.get("ssn")).replace("-", "")
    nm1 = ["NM1", "IL", "1", clean(row.get("family_name")), clean(row.get("given_name")),
           clean(row.get("middle_name")), "", ""]
    segs.append(segment(*nm1, "34", ssn) if ssn else segment(*nm1))
    phone, email = clean(row.get("phone")), clean(row.get("email"))
    if phone or email:
        per = ["PER", "IP", ""]
        if phone:
            per += ["TE", phone]
        if email:
            per += ["EM", email]
        segs.append(segment(*per))
    if clean(row.get("address_line")):
        segs.append(segment("N3", clean(row.get("address_line"))))
    if clean(row.get("city")):
        county = clean(row.get("county_fips"))
        n4 = ["N4", clean(row.get("city")), clean(row.get("state")), clean(row.get("zip"))]
        segs.append(segment(*n4, "", "CY", county) if county else segment(*n4))
    sex = clean(row.get("sex"))
    segs.append(segment("DMG", "D8", d8(row.get("birth_date")), sex if sex in ("F", "M", "U") else "U"))
    if clean(row.get("language")):
        segs.append(segment("LUI", "LE", clean(row.get("language")), "", "7"))
    segs.append(segment("HD", maint, "", "HLT", clean(row.get("plan_id"))))
    segs.append(segment("DTP", "348", "D8", d8(row.get("coverage_start"))))
    if d8(row.get("coverage_end")):
        segs.append(segment("DTP", "349", "D8", d8(row.get("coverage_end"))))
    return segs


def _control(seed: str) -> int:
    return int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % 900_000_000 + 1


def write_834(rows: Iterable[dict[str, str]], fh: BinaryIO, *, sender: str = "PLAN", receiver: str = "PHMXHUB",
              created: str = "20250101", time: str = "1200") -> int:
    """Write one 834 interchange for ``rows`` to ``fh``; returns the number of member loops.

    Control numbers are derived from the first row's plan and the date, so the same rows give
    the same bytes (the generator's byte-identical promise).
    """
    it = iter(rows)
    first = next(it, None)
    plan = clean(first.get("plan_id")) if first else "PLAN"
    start = d8(first.get("coverage_start")) if first else created
    ctrl = _control(f"{plan}:{start}")
    sender = clean(sender) or plan
    isa = (f"ISA*00*{'':10}*00*{'':10}*ZZ*{sender[:15]:<15}*ZZ*{receiver[:15]:<15}*{created[2:]}*{time}*"
           f"{REP}*00501*{ctrl:09d}*0*P*{COMP}{TERM}\n")
    out = [isa, segment("GS", "BE", sender, receiver, created, time, str(ctrl % 1_000_000), "X", "005010X220A1")]
    st = [segment("ST", "834", "0001", "005010X220A1"),
          segment("BGN", "00", f"{plan}{created}", created, time, "", "", "", "2"),
          segment("REF", "38", plan),
          segment("N1", "P5", "CALIFORNIA DHCS", "FI", "680000000"),
          segment("N1", "IN", plan, "XV", plan)]
    fh.write("".join(out).encode("utf-8"))
    count = len(st)
    fh.write("".join(st).encode("utf-8"))
    n = 0
    buf: list[str] = []
    for row in _chain(first, it):
        segs = member_loop(row)
        count += len(segs)
        buf.extend(segs)
        n += 1
        if len(buf) > 5000:
            fh.write("".join(buf).encode("utf-8"))
            buf.clear()
    count += 1  # SE itself
    buf += [segment("SE", str(count), "0001"), segment("GE", "1", str(ctrl % 1_000_000)),
            segment("IEA", "1", f"{ctrl:09d}")]
    fh.write("".join(buf).encode("utf-8"))
    return n


def _chain(first: dict[str, str] | None, rest: Iterable[dict[str, str]]) -> Iterable[dict[str, str]]:
    if first is not None:
        yield first
    yield from rest


register_writer("enrollment", "x12_834", write_834, file_suffix=".x12", feed_name="enrollment_834")
