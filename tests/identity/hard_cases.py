"""Labelled hard cases for identity, with ground truth (all values made up).

Each kind is a situation where a linker that reads agreement as identity merges two people,
or where spelling hides one person:

* ``twin``: same family name, birth date, address and phone; different (sometimes similar)
  given names, and SSNs one or two apart (consecutive issue), as twins often have.
* ``twin_nickname``: twins whose given names a nickname table relates (MARIA / MARY), with
  consecutive SSNs in one source and no number in the registry.
* ``household``: a parent and a child at one address; the child's record carries the
  parent's SSN (common on dependants' claims), or is a newborn (BABY GIRL) under it.
* ``namesake``: father and son with the same given and family name and home (Jr/Sr),
  birth dates decades apart.
* ``lookalike``: two unrelated people with the same common given and family name (Maria
  Garcia) and birth date, living in different cities, each with their own SSN. (Lookalikes
  with no identifier on one side look exactly like a person who moved: see docs/identity.md,
  Limits.)
* ``bridged``: two such people, each enrolled in a plan under their own CIN, one also with a
  dental record that has no CIN, no phone and no street address (only the ZIP): the dental
  record agrees with both on name, birth date and sex, so it must not carry one plan member
  into the other's.
* ``compound``, ``nickname``, ``swapped``, ``no_birth_date``: one person written two ways
  (MARIA DEL CARMEN / CARMEN; ROBERTO / BETO; given and family name swapped; no birth date in
  one source): these must link.

``cases()`` returns silver.person-shaped rows and a truth frame (source, source_person_id,
person_id, kind).
"""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd

FAMILIES = ["Arriaga", "Bustamante", "Cienfuegos", "Duarte", "Echeverria", "Fonseca", "Granados", "Hinojosa",
            "Iturbide", "Jurado", "Kwan", "Llamas", "Madrigal", "Nakamura", "Olivares", "Pimentel", "Quintero",
            "Rosales", "Saavedra", "Tafoya", "Urquidi", "Valdivia", "Whitfield", "Ybarra", "Zamudio"]
TWIN_NAMES = [("Daniel", "Daniela", "M", "F"), ("Adrian", "Adriana", "M", "F"), ("Jayden", "Jaden", "M", "M"),
              ("Mateo", "Matias", "M", "M"), ("Sofia", "Sara", "F", "F"), ("Camila", "Valentina", "F", "F"),
              ("Julian", "Juliana", "M", "F"), ("Liam", "Noah", "M", "M"), ("Emma", "Ella", "F", "F"),
              ("Gabriel", "Gabriela", "M", "F")]


def _row(source: str, spid: str, given: str | None, family: str, dob: dt.date | None, sex: str, *,
         ssn: str | None = None, cin: str | None = None, address: str | None = None, zip5: str = "94601",
         phone: str | None = None, middle: str | None = None) -> dict:
    return {"source": source, "source_person_id": spid, "cin": cin, "ssn": ssn, "given_name": given,
            "middle_name": middle, "family_name": family, "birth_date": dob, "sex": sex, "address_line": address,
            "city": "Oakland", "state": "CA", "zip": zip5, "county_fips": "06001", "phone": phone,
            "record_date": dt.date(2025, 1, 1)}


def cases(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    r = random.Random(seed)
    rows: list[dict] = []
    truth: list[tuple[str, str, str, str]] = []
    n = 0

    def ssn() -> str:
        return f"{r.randint(100, 665):03d}{r.randint(10, 99):02d}{r.randint(1000, 9989):04d}"

    def add(person: str, kind: str, row: dict) -> None:
        nonlocal n
        n += 1
        row["source_person_id"] = f"{row['source_person_id']}{n}"
        rows.append(row)
        truth.append((row["source"], row["source_person_id"], person, kind))

    for i in range(20):
        fam = FAMILIES[i % len(FAMILIES)]
        a, b, sa, sb = TWIN_NAMES[i % len(TWIN_NAMES)]
        dob = dt.date(2010 + i % 8, 1 + i % 12, 1 + i % 27)
        addr, phone = f"{100 + i} Lakeshore Ave", f"510{r.randint(2000000, 9999999)}"
        s1 = ssn()
        s2 = f"{int(s1) + 1 + i % 2:09d}"  # consecutive issue
        for src in ("county_06001_sud", "county_06001_mh"):
            add(f"twin{i}a", "twin", _row(src, "t", a, fam, dob, sa, ssn=s1, address=addr, phone=phone))
            add(f"twin{i}b", "twin", _row(src, "t", b, fam, dob, sb, ssn=s2, address=addr, phone=phone))
    # Twins whose given names one nickname table relates (MARIA / MARY, FRANCES / FRANCIS):
    # the nickname level must not make them one person.
    for i, (a, b, sa, sb) in enumerate([("Maria", "Mary", "F", "F"), ("Frances", "Francis", "F", "M"),
                                        ("Mary", "Marie", "F", "F"), ("Sam", "Samantha", "M", "F"),
                                        ("Aaron", "Erin", "M", "F")]):
        fam = FAMILIES[(i + 9) % len(FAMILIES)]
        dob = dt.date(2015 + i, 4, 9 + i)
        addr, phone = f"{200 + i} Lakeshore Ave", f"510{r.randint(2000000, 9999999)}"
        s1 = ssn()
        s2 = f"{int(s1) + 1:09d}"
        add(f"tn{i}a", "twin_nickname", _row("county_06001_mh", "w", a, fam, dob, sa, ssn=s1, address=addr, phone=phone))
        add(f"tn{i}b", "twin_nickname", _row("county_06001_mh", "w", b, fam, dob, sb, ssn=s2, address=addr, phone=phone))
        add(f"tn{i}a", "twin_nickname", _row("cair2", "w", a, fam, dob, sa, address=addr, phone=phone))
        add(f"tn{i}b", "twin_nickname", _row("cair2", "w", b, fam, dob, sb, address=addr, phone=phone))
    for i in range(20):
        fam = FAMILIES[(i + 5) % len(FAMILIES)]
        addr, phone = f"{300 + i} Foothill Blvd", f"510{r.randint(2000000, 9999999)}"
        parent_ssn = ssn()
        pdob, cdob = dt.date(1980 + i % 10, 3, 1 + i), dt.date(2024, 1 + i % 12, 2 + i)
        add(f"hh{i}p", "household", _row("county_06001_sud", "h", "Rosa" if i % 2 else "Elena", fam, pdob, "F",
                                         ssn=parent_ssn, address=addr, phone=phone))
        add(f"hh{i}p", "household", _row("county_06001_mh", "h", "Rosa" if i % 2 else "Elena", fam, pdob, "F",
                                         ssn=parent_ssn, address=addr, phone=phone))
        child = "Baby Girl" if i % 2 == 0 else "Lucia"
        add(f"hh{i}c", "household", _row("clinic_z", "h", child, fam, cdob, "F", ssn=parent_ssn, address=addr,
                                         phone=phone))
    for i in range(20):
        fam = FAMILIES[(i + 10) % len(FAMILIES)]
        given = ["Jose", "Juan", "Roberto", "Miguel", "Carlos"][i % 5]
        addr, phone = f"{500 + i} International Blvd", f"510{r.randint(2000000, 9999999)}"
        sdob, jdob = dt.date(1960 + i, 5, 10), dt.date(1990 + i % 10, 8, 20)
        s_sr, s_jr = ssn(), ssn()
        add(f"ns{i}sr", "namesake", _row("county_06001_sud", "n", given, fam, sdob, "M", ssn=s_sr, address=addr, phone=phone))
        add(f"ns{i}sr", "namesake", _row("cair2", "n", given, fam, sdob, "M", address=addr, phone=phone))
        add(f"ns{i}jr", "namesake", _row("county_06001_mh", "n", given, f"{fam} Jr", jdob, "M", ssn=s_jr,
                                         address=addr, phone=phone))
        add(f"ns{i}jr", "namesake", _row("cair2", "n", given, fam, jdob, "M", address=addr, phone=phone))
    common = ["Garcia", "Hernandez", "Lopez", "Nguyen", "Smith", "Martinez", "Rodriguez", "Gonzalez"]
    for i in range(20):
        fam = common[i % len(common)]
        given = ["Maria", "Jose", "Luis", "David", "Linda"][i % 5]
        dob = dt.date(1975 + i, 2, 14)
        add(f"lk{i}a", "lookalike", _row("county_06001_sud", "l", given, fam, dob, "F" if i % 5 in (0, 4) else "M",
                                         ssn=ssn(), address=f"{700 + i} Mission St", zip5="94110"))
        add(f"lk{i}b", "lookalike", _row("county_06019_mh", "l", given, fam, dob, "F" if i % 5 in (0, 4) else "M",
                                         ssn=ssn(), address=f"{40 + i} Olive Ave", zip5="93706",
                                         phone=f"559{r.randint(2000000, 9999999)}"))
    for i in range(10):
        cin_a, cin_b = f"9{r.randint(1000000, 9999999)}{'ABCDEFGH'[i % 8]}", f"9{r.randint(1000000, 9999999)}X"
        fam = FAMILIES[(i + 17) % len(FAMILIES)]
        dob = dt.date(1955 + i, 1, 18)
        add(f"br{i}a", "bridged", _row("mcp_sierra", "b", "Alyssa", fam, dob, "F", cin=cin_a,
                                       address=f"{6900 + i} Carroll Blvd", zip5="94519",
                                       phone=f"925{r.randint(2000000, 9999999)}"))
        add(f"br{i}a", "bridged", _row("dental_medical", "b", "Alyssa", fam, dob, "F", zip5="94519"))
        add(f"br{i}b", "bridged", _row("mcp_bluecoast", "b", "Alyssa", fam, dob, "F", cin=cin_b,
                                       address=f"{5700 + i} Victoria St", zip5="94610",
                                       phone=f"510{r.randint(2000000, 9999999)}"))
    for i in range(10):
        fam = FAMILIES[(i + 2) % len(FAMILIES)]
        dob, addr, s = dt.date(1970 + i, 6, 1 + i), f"{900 + i} Fruitvale Ave", ssn()
        add(f"cp{i}", "compound", _row("county_06001_sud", "c", "Maria del Carmen", fam, dob, "F", ssn=s, address=addr))
        add(f"cp{i}", "compound", _row("cair2", "c", "Carmen", fam, dob, "F", address=addr))
        add(f"nk{i}", "nickname", _row("county_06001_sud", "k", "Roberto", FAMILIES[(i + 7) % 25], dob, "M", ssn=ssn(),
                                       address=f"{950 + i} High St"))
        add(f"nk{i}", "nickname", _row("cair2", "k", "Beto", FAMILIES[(i + 7) % 25], dob, "M",
                                       address=f"{950 + i} High St"))
        fam2 = FAMILIES[(i + 12) % 25]
        add(f"sw{i}", "swapped", _row("county_06001_sud", "s", "Hector", fam2, dob, "M", ssn=ssn(), address=f"{20 + i} Elm St"))
        add(f"sw{i}", "swapped", _row("cair2", "s", fam2, "Hector", dob, "M", address=f"{20 + i} Elm St"))
        s3 = ssn()
        add(f"nd{i}", "no_birth_date", _row("county_06001_sud", "d", "Teresa", FAMILIES[(i + 20) % 25], dob, "F", ssn=s3,
                                            address=f"{60 + i} Oak St"))
        add(f"nd{i}", "no_birth_date", _row("county_06001_mh", "d", "Teresa", FAMILIES[(i + 20) % 25], None, "F",
                                            ssn=s3, address=f"{60 + i} Oak St"))
    return pd.DataFrame(rows), pd.DataFrame(truth, columns=["source", "source_person_id", "person_id", "kind"])
