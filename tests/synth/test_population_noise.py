"""Identity noise is present at roughly the configured rates, and the population looks like Medi-Cal."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

from phmx.synth import NoiseRates
from phmx.synth.identifiers import is_valid_cin, is_valid_ssn
from phmx.synth.names import NICKNAMES, strip_accents

RATES = NoiseRates()


def _people(dataset):
    return {r["person_id"]: r for r in dataset.truth("people.csv")}


def _map(dataset):
    return {(r["submitter"], r["feed"], r["source_person_id"]): r["person_id"] for r in dataset.truth("person_map.csv")}


def _first_rows(dataset, feed, id_field, want=lambda row: True):
    """First row per (submitter, source id) of a feed: the source's copy of that person."""
    out = {}
    for submitter, row in dataset.rows(feed):
        key = (submitter, feed, row[id_field])
        if key not in out and want(row):
            out[key] = row
    return out


def test_true_cins_valid_and_unique(dataset):
    people = _people(dataset)
    cins = [p["cin"] for p in people.values()]
    assert all(is_valid_cin(c) for c in cins)
    assert len(set(cins)) == len(cins)


def test_plan_cin_missing_and_typo_rates(dataset):
    people, pmap = _people(dataset), _map(dataset)
    rows = _first_rows(dataset, "enrollment", "member_local_id")
    missing = typo = clean = 0
    for key, row in rows.items():
        true_cin = people[pmap[key]]["cin"]
        if not row["cin"]:
            missing += 1
        elif row["cin"] != true_cin:
            typo += 1
        else:
            clean += 1
            assert is_valid_cin(row["cin"])
    n = len(rows)
    assert n > 4000
    assert abs(missing / n - (1 - RATES.plan_cin_present)) < 0.015
    assert 0.002 < typo / (n - missing) < 0.025


def test_county_ssn_presence_invalid_and_relatives(dataset):
    people, pmap = _people(dataset), _map(dataset)
    by_ssn = defaultdict(set)
    for pid, p in people.items():
        if p["ssn"]:
            by_ssn[p["ssn"]].add(pid)
    rows = _first_rows(dataset, "mh_csi", "client_number", lambda r: r["record_type"] == "C")
    rows |= _first_rows(dataset, "sud_caloms", "client_id")
    present = invalid = relative = 0
    for key, row in rows.items():
        if not row["ssn"]:
            continue
        present += 1
        owner = pmap[key]
        if not is_valid_ssn(row["ssn"]):
            invalid += 1
        elif row["ssn"] != people[owner]["ssn"] and by_ssn.get(row["ssn"], set()) - {owner}:
            relative += 1
            other = next(iter(by_ssn[row["ssn"]] - {owner}))
            assert people[other]["household_id"] == people[owner]["household_id"]
    n = len(rows)
    assert n > 300
    # present only when the person has an SSN at all (~85%), so a little under the configured 60%
    assert 0.40 < present / n < 0.68
    assert invalid > 0 and relative >= 0
    assert invalid / present < 0.15


def test_name_and_birth_date_noise_present(dataset):
    people, pmap = _people(dataset), _map(dataset)
    rows = _first_rows(dataset, "immunizations", "registry_patient_id")
    rows |= _first_rows(dataset, "mh_csi", "client_number", lambda r: r["record_type"] == "C")
    counts = Counter()
    for key, row in rows.items():
        p = people[pmap[key]]
        given = strip_accents(row["given_name"])
        if given.startswith("BABY"):
            counts["baby_name"] += 1
        elif given != p["given_name"]:
            counts["nickname" if given in NICKNAMES.get(p["given_name"], ()) else "given_other"] += 1
        if row["given_name"] != given:
            counts["accent"] += 1
        fam_true = p["family_name"]
        if (" " in fam_true or "-" in fam_true) and strip_accents(row["family_name"]) in fam_true.replace("-", " ").split():
            counts["part_dropped"] += 1
        dob_true = dt.date.fromisoformat(p["birth_date"])
        dob = dt.date.fromisoformat(row["birth_date"])
        if dob != dob_true:
            counts["dob_swapped" if (dob.month, dob.day) == (dob_true.day, dob_true.month) else "dob_other"] += 1
    n = len(rows)
    assert counts["nickname"] > 0 and counts["given_other"] > 0 and counts["accent"] > 0
    assert counts["part_dropped"] > 0
    assert counts["dob_other"] + counts["dob_swapped"] > 0
    # name differences stay in the configured ballpark (typo 3% + nicknames + swaps)
    assert (counts["nickname"] + counts["given_other"]) / n < 0.15


def test_twins_share_birth_date_and_home_but_not_identity(dataset):
    people = _people(dataset)
    twins = [p for p in people.values() if p["twin_of"]]
    assert len(twins) >= 5
    for t in twins:
        first = people[t["twin_of"]]
        assert t["birth_date"] == first["birth_date"]
        assert t["household_id"] == first["household_id"]
        assert t["family_name"] == first["family_name"]
        assert t["given_name"] != first["given_name"]
        assert t["cin"] != first["cin"]


def test_common_names_collide_on_purpose(dataset):
    people = _people(dataset)
    fam = Counter(p["family_name"] for p in people.values())
    top = [name for name, _ in fam.most_common(5)]
    assert "Garcia" in top or "Hernandez" in top
    full = Counter((p["given_name"], p["family_name"]) for p in people.values())
    assert full.most_common(1)[0][1] >= 3  # several people share a full name


def test_ages_life_events_and_enrollment_patterns(dataset):
    people = _people(dataset)
    start = dt.date(2025, 1, 1)
    ages = [(start - dt.date.fromisoformat(p["birth_date"])).days / 365.25 for p in people.values()]
    kids = sum(1 for a in ages if a < 21) / len(ages)
    assert 0.30 < kids < 0.50
    assert any(a < 0 for a in ages), "no births during the window"
    assert any(p["death_date"] for p in people.values())
    assert any(p["moved_county"] == "1" for p in people.values())
    assert any(p["name_changed"] == "1" for p in people.values())
    assert any(p["plans"] == "mcp_bluecoast|mcp_sierra" for p in people.values())
    months = Counter(int(p["enrolled_months"]) for p in people.values())
    assert months[6] > 0.6 * len(people) and months[0] > 0 and sum(months[k] for k in range(1, 6)) > 0


def test_duplicate_client_numbers_within_a_county(dataset):
    per_person = defaultdict(set)
    for r in dataset.truth("person_map.csv"):
        if r["feed"] in ("mh_csi", "immunizations"):
            per_person[(r["submitter"], r["feed"], r["person_id"])].add(r["source_person_id"])
    assert any(len(ids) > 1 for ids in per_person.values())


def test_zip_codes_belong_to_the_county(dataset):
    from phmx.synth.reference import county_geo

    zips = {f: {z for _, z in county_geo(f).city_zips} for f in ("06001", "06013", "06075")}
    for _submitter, row in dataset.rows("enrollment"):
        assert row["zip"] in zips[row["county_fips"]]


def test_lookalikes_and_juniors_are_distinct_people(dataset):
    """Same name and birth date (lookalikes) or same name and address (juniors): different people."""
    people = _people(dataset)
    looks = [p for p in people.values() if p["lookalike_of"]]
    assert looks
    for p in looks:
        other = people[p["lookalike_of"]]
        assert (p["given_name"], p["family_name"], p["birth_date"]) == (other["given_name"], other["family_name"], other["birth_date"])
        assert p["cin"] != other["cin"] and p["household_id"] != other["household_id"]
    by_hh = defaultdict(list)
    for p in people.values():
        by_hh[p["household_id"]].append(p)
    juniors = [m for members in by_hh.values() for m in members[1:]
               if m["given_name"] == members[0]["given_name"] and m["birth_date"] != members[0]["birth_date"]]
    assert juniors
