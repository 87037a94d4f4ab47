"""Immunization rows as HL7 v2.5.1 VXU^V04 messages (CDC IG 1.5 / CAIR2 shape), in a batch file.

Rows of the same patient that follow each other become one message (up to 20 vaccinations):
MSH, PID (registry id ``SR`` and Medi-Cal number ``MA`` in PID-3, name, mother's maiden name,
birth date, sex, race, address, phone, ethnicity), PD1 (PD1-11 publicity code, PD1-12
protection indicator, PD1-13 its date), NK1 (a guardian for children), then per vaccination
ORC (ORC-3 the vaccination id), RXA (CVX, lot, MVX, administering provider), RXR (route, site)
and OBX (VFC eligibility, LOINC 64994-7). The file is wrapped in FHS/BHS ... BTS/FTS with the
message and batch counts, segments end with a carriage return. Values are escaped with
python-hl7's ``Message.escape`` so a ``&`` or ``|`` in a name survives.
The ingest spec ``mappings/feeds/immunizations_vxu.yaml`` reads exactly these fields.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import hl7

from phmx.synth.writers import register_writer

SEG = "\r"
MAX_RXA_PER_MESSAGE = 20
_REF = hl7.parse("MSH|^~\\&|PHMX|PHMX|PHMX|PHMX|20250101||VXU^V04^VXU_V04|1|P|2.5.1")


def esc(value: str | None) -> str:
    """A value escaped for an HL7 field component (``|^~\\&`` become escape sequences)."""
    v = (value or "").strip().replace("\r", " ").replace("\n", " ")
    return str(_REF.escape(v)) if any(c in v for c in "|^~\\&") else v


def ts(value: str | None) -> str:
    """HL7 DTM (CCYYMMDD) from CCYY-MM-DD or CCYYMMDD."""
    return (value or "").replace("-", "").strip()[:8]


def _group(rows: Iterable[dict[str, str]]) -> Iterator[list[dict[str, str]]]:
    batch: list[dict[str, str]] = []
    for row in rows:
        if batch and (row.get("registry_patient_id") != batch[0].get("registry_patient_id")
                      or len(batch) >= MAX_RXA_PER_MESSAGE):
            yield batch
            batch = []
        batch.append(row)
    if batch:
        yield batch


def message(rows: list[dict[str, str]], control_id: str, created: str) -> str:
    """One VXU^V04 message for one patient's consecutive vaccination rows."""
    p = rows[0]
    ids = [f"{esc(p.get('registry_patient_id'))}^^^CAIR2^SR"]
    if (p.get("cin") or "").strip():
        ids.append(f"{esc(p.get('cin'))}^^^CAMEDI^MA")
    phone = "".join(ch for ch in (p.get("phone") or "") if ch.isdigit())
    xtn = f"^PRN^PH^^^{phone[:3]}^{phone[3:]}" if len(phone) == 10 else ""
    segs = [
        f"MSH|^~\\&|CAIR2|CDPH|PHMX|PHMXHUB|{created}||VXU^V04^VXU_V04|{control_id}|P|2.5.1|||ER|AL|||||"
        "Z22^CDCPHINVS",
        "|".join(["PID", "1", "", "~".join(ids), "",
                  f"{esc(p.get('family_name'))}^{esc(p.get('given_name'))}^{esc(p.get('middle_name'))}^^^^L",
                  f"{esc(p.get('mother_maiden_name'))}^^^^^^M" if p.get("mother_maiden_name") else "",
                  ts(p.get("birth_date")), esc(p.get("sex")), "",
                  f"{esc(p.get('race'))}^^CDCREC" if p.get("race") else "",
                  f"{esc(p.get('address_line'))}^^{esc(p.get('city'))}^CA^{esc(p.get('zip'))}^USA^P"
                  if p.get("address_line") or p.get("zip") else "",
                  "", xtn, "", "", "", "", "", "", "", "",
                  f"{esc(p.get('ethnicity'))}^^CDCREC" if p.get("ethnicity") else ""]),
        "|".join(["PD1", "", "", "", "", "", "", "", "", "", "",
                  f"{esc(p.get('publicity_code'))}^^HL70215" if p.get("publicity_code") else "",
                  esc(p.get("protection_indicator")), created[:8] if p.get("protection_indicator") else ""]),
    ]
    birth_year = ts(p.get("birth_date"))[:4]
    if birth_year.isdigit() and int(birth_year) > int(created[:4]) - 18:
        segs.append(f"NK1|1|{esc(p.get('family_name'))}^^^^^^L|GRD^Guardian^HL70063")
    for r in rows:
        segs.append(f"ORC|RE||{esc(r.get('vaccination_id'))}^CAIR2")
        segs.append("|".join(["RXA", "0", "1", ts(r.get("admin_date")), "", f"{esc(r.get('cvx'))}^^CVX", "999", "",
                              "", "01^Historical information^NIP001",
                              esc(r.get("provider_id")),
                              "", "", "", "", esc(r.get("lot_number")), "",
                              f"{esc(r.get('mvx'))}^^MVX" if r.get("mvx") else "", "", "", "CP", "A"]))
        if r.get("route") or r.get("site"):
            segs.append(f"RXR|{esc(r.get('route'))}^^HL70162|{esc(r.get('site'))}^^HL70163")
        if r.get("vfc_eligibility"):
            segs.append(f"OBX|1|CE|64994-7^Vaccine funding program eligibility category^LN|1|"
                        f"{esc(r.get('vfc_eligibility'))}^^HL70064||||||F|||{ts(r.get('admin_date'))}|||"
                        "VXC40^Eligibility captured at the immunization level^CDCPHINVS")
    return SEG.join(segs) + SEG


def write_vxu(rows: Iterable[dict[str, str]], fh: BinaryIO, *, batch: bool = True, created: str = "20250101120000",
              line_end: str = SEG) -> int:
    """Write a VXU batch file (or, with ``batch=False``, a bare message stream); returns RXA count."""
    messages = 0
    n = 0
    if batch:
        fh.write((f"FHS|^~\\&|CAIR2|CDPH|PHMX|PHMXHUB|{created}{line_end}"
                  f"BHS|^~\\&|CAIR2|CDPH|PHMX|PHMXHUB|{created}{line_end}").encode())
    for group in _group(rows):
        control = hashlib.sha256(f"{group[0].get('vaccination_id')}".encode()).hexdigest()[:20]
        text = message(group, control, created)
        if line_end != SEG:
            text = text.replace(SEG, line_end)
        fh.write(text.encode("utf-8"))
        messages += 1
        n += len(group)
    if batch:
        fh.write(f"BTS|{messages}{line_end}FTS|1{line_end}".encode())
    return n


register_writer("immunizations", "hl7_vxu", write_vxu, file_suffix=".hl7", feed_name="immunizations_vxu")
