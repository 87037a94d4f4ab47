"""An incremental run writes only what changed, and leaves the tables a full run over the same
records leaves.

A new month on a hand-built population: new people, a new record of a known person, a corrected
record, a record re-sent with only a later record date (survivorship reads it, linkage does
not: not re-linked, its member's golden record rebuilt), a record re-keyed to someone else (it
leaves its member: a split, and the pair that linked it leaves gold.link_pairs), a record withdrawn from a member that keeps others, a person withdrawn altogether, and
two new people whose county moves the county a ZIP-only member is given. Run incrementally
(through the encrypted index), then in full: the same members with the same ids (the full run
logs no id event) and the same golden records; and the incremental run's own rows are only
those of the new, changed and re-linked records.

The member id rules restricted to the re-linked members (what an incremental run hands them)
give what they give over every record, merges, splits and retirements included.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from phmx import lakehouse, tables
from phmx.context import RunContext

SOURCES = ("mcp_bluecoast", "dental_medical", "cair2")
#: given, family, birth date, zip, county (None: the source gives no county)
PEOPLE = {
    1: ("Ana", "Abarca", dt.date(2015, 1, 6), "94607", "06001"),
    2: ("Bruno", "Benitez", dt.date(2011, 2, 7), "94607", "06001"),
    3: ("Carla", "Cardenas", dt.date(1990, 3, 8), "94607", "06001"),
    4: ("Diego", "Dominguez", dt.date(1984, 4, 9), "94607", "06001"),
    5: ("Elena", "Escobar", dt.date(1975, 5, 10), "95112", "06085"),
    6: ("Fabian", "Fuentes", dt.date(2001, 6, 11), "95112", "06085"),
    # Redding ZIP: person 7's records say Shasta County; person 9's records carry no county, so
    # its golden county is the one most records with its ZIP carry.
    7: ("Gloria", "Guzman", dt.date(1968, 7, 12), "96001", "06089"),
    8: ("Hector", "Herrera", dt.date(1959, 8, 13), "92101", "06073"),
    9: ("Irene", "Ibarra", dt.date(1999, 9, 14), "96001", None),
    # Month 2: two new people in the same ZIP giving another county code, which becomes the
    # ZIP's most common one (6 records against person 7's 3).
    10: ("Julio", "Jaramillo", dt.date(1972, 10, 15), "96001", "06103"),
    11: ("Karen", "Keller", dt.date(1963, 11, 16), "96001", "06103"),
}


def _rows(person: int, sources: tuple[str, ...] = SOURCES, suffix: str = "") -> list[dict]:
    given, family, born, zip5, county = PEOPLE[person]
    return [{"source": s, "source_person_id": f"{s[:2]}{person}{suffix}",
             "cin": f"9{person:07d}B" if s != "cair2" else None, "given_name": given, "family_name": family,
             "birth_date": born, "sex": "F" if person % 2 else "M", "zip": zip5, "county_fips": county,
             "record_date": dt.date(2026, 1, 1)} for s in sources]


def month1() -> pd.DataFrame:
    return pd.DataFrame([r for p in range(1, 10) for r in _rows(p)])


def month2() -> pd.DataFrame:
    m = month1()
    m = m[~((m["source_person_id"] == "ca3") | m["source_person_id"].str.endswith("4"))]  # withdrawn
    m.loc[m["source_person_id"] == "mc2", "family_name"] = "Benitez Soto"  # corrected
    m.loc[m["source_person_id"] == "mc6", "record_date"] = dt.date(2026, 2, 1)  # re-sent: a later record date
    # Re-keyed: the plan's record 3 now describes someone else (name, birth date, place, CIN).
    m.loc[m["source_person_id"] == "mc3", ["given_name", "family_name", "birth_date", "zip", "county_fips", "cin"]] = \
        ["Zoe", "Zamora", dt.date(1950, 12, 20), "92114", "06073", "90000099B"]
    new = [*_rows(10), *_rows(11), *_rows(1, ("cair2",), suffix="b")]
    return pd.concat([m, pd.DataFrame(new)], ignore_index=True)


def _run(spark, run_id: str, mode: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN202
    import jobs.identity as identity

    monkeypatch.setenv("PHMX_IDENTITY_MODE", mode)
    return identity.run(spark, RunContext.new(run_id=run_id))


def _tables(spark) -> dict[str, pd.DataFrame]:
    from privacy.crypto import decrypt_for_read
    from privacy.keys import get_provider

    keys = ["source", "source_person_id"]
    xw = lakehouse.read(spark, tables.MEMBER_XWALK).toPandas()
    member = decrypt_for_read(lakehouse.read(spark, tables.MEMBER), tables.MEMBER.fqn, get_provider()).toPandas()
    events = lakehouse.read(spark, tables.IDENTITY_EVENTS).toPandas()
    index = lakehouse.read(spark, tables.IDENTITY_INDEX).toPandas()
    return {
        "xwalk": xw[[*keys, "member_id", "run_id"]].sort_values(keys).reset_index(drop=True),
        "member": member.drop(columns="pii_fingerprint").sort_values("member_id").reset_index(drop=True),
        "events": events[["event_type", "member_id", "other_member_id", "records", "run_id"]]
        .sort_values(["run_id", "event_type", "member_id"]).reset_index(drop=True),
        "index": index[[*keys, "rid", "source_fp", "run_id"]].sort_values(keys).reset_index(drop=True),
    }


@pytest.mark.slow
def test_incremental_run_writes_the_change_and_equals_a_full_run(spark, phmx_home, write_person, monkeypatch):
    write_person(month1())
    _run(spark, "m1", "full", monkeypatch)
    before = _tables(spark)
    before_pairs = lakehouse.read(spark, tables.LINK_PAIRS).toPandas()
    write_person(month2())
    result = _run(spark, "m2", "incremental", monkeypatch)  # a quarter of the records: auto would run full
    assert result.counts["mode"] == "incremental" and result.details["route"] == "index"
    assert result.counts["new_or_changed_records"] == 9  # the re-sent record is not among them
    inc = _tables(spark)
    inc_pairs = lakehouse.read(spark, tables.LINK_PAIRS).toPandas()

    # The same records linked again from scratch: the same members under the same ids (so the
    # full run logs no id event) and the same golden records.
    again = _run(spark, "m2-full", "full", monkeypatch)
    assert again.counts["mode"] == "full"
    assert again.counts["members_new"] == again.counts["merges"] == again.counts["splits"] == 0
    assert again.counts["retired"] == 0
    full = _tables(spark)
    cols = ["source", "source_person_id", "member_id"]
    pd.testing.assert_frame_equal(inc["xwalk"][cols], full["xwalk"][cols])
    pd.testing.assert_frame_equal(inc["member"].drop(columns="run_id"), full["member"].drop(columns="run_id"))
    ev = inc["events"][inc["events"]["run_id"] == "m2"]
    assert sorted(ev["event_type"]) == ["new", "new", "new", "retire", "split"]
    member_of = inc["xwalk"].set_index("source_person_id")["member_id"]
    assert member_of["mc3"] != member_of["de3"] == before["xwalk"].set_index("source_person_id").loc["de3", "member_id"]

    def linked_3(pairs: pd.DataFrame) -> pd.Series:
        ends = pairs[["source_person_id_l", "source_person_id_r"]].apply(frozenset, axis=1)
        return pairs[ends == frozenset({"mc3", "de3"})]["decision"]

    assert list(linked_3(before_pairs)) == ["linked"] and linked_3(inc_pairs).empty
    # Person 9's county follows its ZIP's new most common county, as in the full run.
    person9 = inc["xwalk"].loc[inc["xwalk"]["source_person_id"] == "mc9", "member_id"].item()
    assert inc["member"].set_index("member_id").loc[person9, "county_fips"] == "06103"

    # Written: the index rows of the new and corrected records, and the re-sent one's fingerprint.
    changed = {"mc2", "mc3", "mc10", "de10", "ca10", "mc11", "de11", "ca11", "ca1b"}
    idx = inc["index"]
    assert set(idx.loc[idx["run_id"] == "m2", "source_person_id"]) == changed
    # The re-sent record's row took the new source fingerprint, its run id (the run that last
    # linked it) as it was.
    resent = idx.set_index("source_person_id").loc["mc6"]
    was = before["index"].set_index("source_person_id").loc["mc6"]
    assert resent["run_id"] == "m1" and resent["source_fp"] != was["source_fp"]
    assert len(idx) == len(month2()) and not idx["source_person_id"].isin(["ca3", "mc4", "de4", "ca4"]).any()
    # The crosswalk: the rows of the new records; the rows of members no new record touched
    # are the ones month 1 wrote (a re-linked member's rows change when their best link does).
    xw = inc["xwalk"]
    assert set(xw.loc[xw["run_id"] == "m2", "source_person_id"]) >= changed - {"mc2", "mc3"}
    untouched = xw["source_person_id"].str[2:].isin(["5", "6", "8"])  # 6: re-sent, not re-linked
    assert untouched.sum() == 9 and (xw.loc[untouched, "run_id"] == "m1").all()
    # gold.member: only the members the run re-linked were rebuilt (person 9's among them); the
    # withdrawn person's member is gone, and an untouched member's row is the one month 1 wrote.
    m = inc["member"].set_index("member_id")
    member_of = xw.set_index("source_person_id")["member_id"]
    assert m.loc[member_of["mc5"], "run_id"] == "m1" and m.loc[member_of["mc8"], "run_id"] == "m1"
    assert m.loc[person9, "run_id"] == "m2" and m.loc[member_of["mc10"], "run_id"] == "m2"
    assert m.loc[member_of["mc6"], "run_id"] == "m2"  # its record date is read by survivorship
    old_member_of_4 = before["xwalk"].set_index("source_person_id").loc["mc4", "member_id"]
    assert old_member_of_4 not in m.index and len(m) == xw["member_id"].nunique()


def _assign(spark, clusters: list[tuple[int, str, int]], old: list[tuple[str, str]],
            issued: list[tuple[str, str]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ids.assign on hand-built clusters (rid, key, cluster) and old crosswalk rows (key, id)."""
    from jobs.identity import ids
    from phmx.tables import IDENTITY_EVENTS

    cl = spark.createDataFrame([(r, "s", k, c) for r, k, c in clusters],
                               "rid bigint, source string, source_person_id string, cluster bigint")

    def xw(rows: list[tuple[str, str]]):  # noqa: ANN202
        return spark.createDataFrame([("s", k, m) for k, m in rows],
                                     "source string, source_person_id string, member_id string")

    events = spark.createDataFrame([], IDENTITY_EVENTS.ddl)
    out = ids.assign(cl, xw(old), events, run_id="r", at=dt.datetime(2026, 1, 1), put=lambda df, _name: df,
                     issued=xw(issued) if issued is not None else None)
    rec = out.records.select("source_person_id", "member_id").toPandas().sort_values("source_person_id")
    ev = out.events.select("event_type", "member_id", "other_member_id", "records").toPandas()
    return rec.reset_index(drop=True), ev.sort_values(["event_type", "member_id"]).reset_index(drop=True)


def test_member_ids_of_the_relinked_members_alone_are_those_of_every_record(spark):
    # Old members: A (a1 a2), B (b1), C (c1 c2 c3), D (d1: withdrawn), E (e1 e2, not re-linked).
    old = [("a1", "MA"), ("a2", "MA"), ("b1", "MB"), ("c1", "MC"), ("c2", "MC"), ("c3", "MC"), ("d1", "MD"),
           ("e1", "ME"), ("e2", "ME")]
    # This run: A and B merge (a new record n1 bridges them), C splits (c3 leaves with a new
    # record n2), D's only record was withdrawn; E is untouched.
    relinked = [(1, "a1", 1), (2, "a2", 1), (3, "b1", 1), (10, "n1", 1), (4, "c1", 4), (5, "c2", 4),
                (6, "c3", 6), (11, "n2", 6)]
    untouched = [(7, "e1", 7), (8, "e2", 7)]
    every_rec, every_ev = _assign(spark, relinked + untouched, old)
    part_rec, part_ev = _assign(spark, relinked, [o for o in old if not o[0].startswith("e")], issued=old)
    pd.testing.assert_frame_equal(part_ev, every_ev)
    pd.testing.assert_frame_equal(part_rec, every_rec[~every_rec["source_person_id"].str.startswith("e")]
                                  .reset_index(drop=True))
    ids = dict(zip(every_rec["source_person_id"], every_rec["member_id"], strict=True))
    assert ids["a1"] == ids["b1"] == ids["n1"] == "MA" and ids["e1"] == "ME" and ids["c1"] == "MC"
    assert ids["c3"] == ids["n2"] not in {"MA", "MB", "MC", "MD", "ME"}
    assert sorted(every_ev["event_type"]) == ["merge", "new", "retire", "split"]
