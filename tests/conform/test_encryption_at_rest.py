"""Encryption at rest applied by the pipeline: conform encrypts silver.person, identity decrypts
it and writes gold.member encrypted; no plaintext identifier reaches a silver or gold file."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from testkit import csv_rows

from jobs import conform, identity, ingest
from phmx import lakehouse, tables
from phmx.context import RunContext
from phmx.feedspec import get_spec
from privacy.crypto import FINGERPRINT_COLUMN, is_ciphertext, read_decrypted

ENROLLMENT = get_spec("enrollment").field_names

# Synthetic people (made-up names and numbers); the same two people are enrolled in two plans.
PEOPLE = [
    {"cin": "91234567A", "ssn": "521447893", "given_name": "Quenbrilla", "family_name": "Vortexhamm",
     "birth_date": "19840309", "sex": "F", "address_line": "4417 Zanderquill Ave", "zip": "94607",
     "phone": "5105550199", "email": "qv@example.org"},
    {"cin": "97654321B", "ssn": "532118764", "given_name": "Oskarlund", "family_name": "Pellibrant",
     "birth_date": "19791121", "sex": "M", "address_line": "88 Threnwick Rd", "zip": "94110",
     "phone": "4155550142", "email": "op@example.org"},
]
PLAINTEXT = [v for p in PEOPLE for k, v in p.items() if k in {"cin", "ssn", "given_name", "family_name",
                                                               "address_line", "email"}]


def _land_two_plans(land) -> None:
    for plan, prefix in (("mcp_bluecoast", "BC"), ("mcp_redwood", "RW")):
        rows = [{**p, "member_local_id": f"{prefix}{i}", "plan_id": plan.upper(), "aid_code": "1H",
                 "coverage_start": "20250101", "county_fips": "06001", "maintenance_type": "021"}
                for i, p in enumerate(PEOPLE)]
        land(plan, "enrollment", "2025-01", f"{prefix}.csv", csv_rows(ENROLLMENT, rows, sep="|"))


def _found(root: Path, needles: list[str]) -> set[str]:
    """Which needles occur in any file below root: raw bytes (logs, stats) and every string cell
    of every Parquet file, old versions included (so compression cannot hide a plaintext)."""
    found: set[str] = set()
    for f in root.rglob("*"):
        if not f.is_file():
            continue
        raw = f.read_bytes()
        found |= {n for n in needles if n.encode() in raw}
        if f.suffix == ".parquet":
            text = "\x1f".join(str(v) for col in pq.read_table(f).columns for v in col.to_pylist())
            found |= {n for n in needles if n in text}
    return found


def _person(spark) -> list[tuple]:
    return sorted(tuple(r) for r in lakehouse.read(spark, tables.PERSON).collect())


def test_silver_and_gold_hold_only_ciphertexts_and_reruns_change_nothing(spark, phmx_home, land):
    _land_two_plans(land)
    ingest.run(spark, RunContext.new())
    conform.run(spark, RunContext.new())
    stored = lakehouse.read(spark, tables.PERSON).collect()
    assert len(stored) == 4
    for row in stored:
        for c in tables.PERSON.encrypted:
            assert row[c] is None or is_ciphertext(row[c]), c
        assert row[FINGERPRINT_COLUMN].startswith("1.")
    # Non-identifying columns stay queryable as they are.
    assert sorted(r.zip for r in stored) == ["94110", "94110", "94607", "94607"]
    # The identity stage's view: the values as submitted.
    plain = {(r.source, r.source_person_id): r for r in read_decrypted(spark, "silver.person").collect()}
    assert plain[("mcp_bluecoast", "BC0")].given_name == "Quenbrilla"
    assert plain[("mcp_redwood", "RW1")].ssn == "532118764"

    before = _person(spark)
    conform.run(spark, RunContext.new())
    assert _person(spark) == before  # same bronze -> the same ciphertexts, row for row

    result = identity.run(spark, RunContext.new())
    assert result.counts["members"] == 2
    members = read_decrypted(spark, "gold.member").collect()
    assert sorted((m.given_name, m.family_name, m.cin) for m in members) == sorted(
        (p["given_name"], p["family_name"], p["cin"]) for p in PEOPLE)
    assert all(is_ciphertext(m.cin) for m in lakehouse.read(spark, tables.MEMBER).collect())

    lake = phmx_home / "lakehouse"
    # The scan does find plaintext where it is meant to be (bronze holds what was submitted) ...
    assert _found(lake / "bronze", PLAINTEXT) == set(PLAINTEXT)
    # ... and finds none in silver, gold, or what the identity stage leaves in its work area.
    assert _found(lake / "silver", PLAINTEXT) == set()
    assert _found(lake / "gold", PLAINTEXT) == set()
    assert _found(lake / "work", PLAINTEXT) == set()

    # A second identity run on unchanged people: gold.member's ciphertexts are kept.
    gold_before = sorted(tuple(r[c] for c in ("member_id", "cin", "given_name", FINGERPRINT_COLUMN))
                         for r in lakehouse.read(spark, tables.MEMBER).collect())
    identity.run(spark, RunContext.new())
    assert sorted(tuple(r[c] for c in ("member_id", "cin", "given_name", FINGERPRINT_COLUMN))
                  for r in lakehouse.read(spark, tables.MEMBER).collect()) == gold_before


def test_a_changed_identifier_is_encrypted_afresh_and_others_keep_theirs(spark, phmx_home, land):
    _land_two_plans(land)
    ingest.run(spark, RunContext.new())
    conform.run(spark, RunContext.new())
    first = {(r.source, r.source_person_id): r for r in lakehouse.read(spark, tables.PERSON).collect()}
    # A corrected file from one plan: one member's family name changed.
    moved = [{**p, "family_name": "Vortexhamm-Lindqvar" if i == 0 else p["family_name"],
              "member_local_id": f"BC{i}", "plan_id": "MCP_BLUECOAST", "aid_code": "1H",
              "coverage_start": "20250101", "county_fips": "06001", "maintenance_type": "021"}
             for i, p in enumerate(PEOPLE)]
    land("mcp_bluecoast", "enrollment", "2025-02", "BC.csv", csv_rows(ENROLLMENT, moved, sep="|"))
    ingest.run(spark, RunContext.new())
    conform.run(spark, RunContext.new())
    second = {(r.source, r.source_person_id): r for r in lakehouse.read(spark, tables.PERSON).collect()}
    changed = ("mcp_bluecoast", "BC0")
    assert second[changed].family_name != first[changed].family_name
    assert second[changed][FINGERPRINT_COLUMN] != first[changed][FINGERPRINT_COLUMN]
    assert second[changed].given_name != first[changed].given_name  # the whole row is re-encrypted
    for key in (("mcp_bluecoast", "BC1"), ("mcp_redwood", "RW0"), ("mcp_redwood", "RW1")):
        assert [second[key][c] for c in tables.PERSON.encrypted] == [first[key][c] for c in tables.PERSON.encrypted]
    plain = {(r.source, r.source_person_id): r for r in read_decrypted(spark, "silver.person").collect()}
    assert plain[changed].family_name == "Vortexhamm-Lindqvar"


def test_a_plaintext_table_from_an_older_release_is_encrypted_on_the_first_run(spark, phmx_home, land):
    _land_two_plans(land)
    ingest.run(spark, RunContext.new())
    # silver.person as an older release left it: identifiers in plaintext, no fingerprint column.
    old_columns = [c for c in tables.PERSON.column_names if c != FINGERPRINT_COLUMN]
    legacy = spark.createDataFrame([("mcp_sierra", "S1", "93333333C", "Brennomar")], "source string, "
                                   "source_person_id string, cin string, given_name string")
    lakehouse.overwrite(lakehouse.conform_to(legacy, tables.PERSON).select(*old_columns), tables.PERSON)
    assert FINGERPRINT_COLUMN not in lakehouse.read(spark, tables.PERSON).columns
    conform.run(spark, RunContext.new())
    rows = {r.source_person_id: r for r in lakehouse.read(spark, tables.PERSON).collect()}
    assert set(rows) == {"S1", "BC0", "BC1", "RW0", "RW1"}  # the other source's row is kept
    assert all(is_ciphertext(r.cin) and is_ciphertext(r.given_name) for r in rows.values())
    plain = {r.source_person_id: r for r in read_decrypted(spark, "silver.person").collect()}
    assert (plain["S1"].cin, plain["S1"].given_name) == ("93333333C", "Brennomar")
    # The current version holds no plaintext (older versions do until vacuumed, as documented).
    current = lakehouse._delta_table(tables.PERSON).file_uris()
    assert not any(b"Brennomar" in Path(u.removeprefix("file://")).read_bytes() for u in current)
    assert "Brennomar" not in "".join(str(v) for u in current
                                      for v in pq.read_table(u.removeprefix("file://")).column("given_name").to_pylist())
