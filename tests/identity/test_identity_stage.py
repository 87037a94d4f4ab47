"""The identity stage end to end on the engine: quality, guards, stable ids, incremental runs,
review decisions (merge and split), explanations."""

from __future__ import annotations

import argparse
import datetime as dt
import json

import pandas as pd
import pytest

from phmx import lakehouse, tables
from phmx.context import RunContext


def _run(spark, run_id: str, mode: str = "auto", monkeypatch=None):
    import jobs.identity as identity

    if monkeypatch is not None:
        monkeypatch.setenv("PHMX_IDENTITY_MODE", mode)
    return identity.run(spark, RunContext.new(run_id=run_id))


def _xwalk(spark) -> pd.DataFrame:
    return lakehouse.read(spark, tables.MEMBER_XWALK).toPandas()


def _hard_cases() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Twins (same family, birth date, address, phone; different given names and CINs) and
    lookalikes (same given and family name and birth date, different CINs and places)."""
    d = dt.date(2012, 3, 14)
    rows = [
        # source, id, cin, given, family, dob, sex, address, zip, phone, person
        ("mcp_bluecoast", "T1", "91000001A", "Camila", "Quintanilla", d, "F", "10 Oak St", "94601", "5102223344", "twin-a"),
        ("mcp_bluecoast", "T2", "91000002B", "Carla", "Quintanilla", d, "F", "10 Oak St", "94601", "5102223344", "twin-b"),
        ("cair2", "T3", None, "Camila", "Quintanilla", d, "F", "10 Oak Street", "94601", "5102223344", "twin-a"),
        ("cair2", "T4", None, "Carla", "Quintanilla", d, "F", "10 Oak Street", "94601", "5102223344", "twin-b"),
        ("mcp_bluecoast", "L1", "93817265C", "Maria", "Garcia", dt.date(1980, 5, 5), "F", "1 Elm St", "92101", None, "look-a"),
        ("mcp_goldstate", "L2", "95142738D", "Maria", "Garcia", dt.date(1980, 5, 5), "F", "9 Pine Ave", "93706", None, "look-b"),
        ("dental_medical", "L3", "95142738D", "Maria", "Garcia", dt.date(1980, 5, 5), "F", None, "93706", None, "look-b"),
    ]
    cols = ["source", "source_person_id", "cin", "given_name", "family_name", "birth_date", "sex", "address_line",
            "zip", "phone", "person_id"]
    df = pd.DataFrame(rows, columns=cols)
    truth = df[["source", "source_person_id", "person_id"]]
    return df.drop(columns="person_id"), truth


def test_full_run_quality_guards_and_stable_ids(spark, phmx_home, population, write_person, pairwise, monkeypatch):
    person, truth = population
    hard, hard_truth = _hard_cases()
    write_person(pd.concat([person, hard], ignore_index=True))
    result = _run(spark, "r1", "full", monkeypatch)
    assert result.counts["mode"] == "full"
    assert result.counts["records"] == len(person) + len(hard)
    xw = _xwalk(spark)
    assert len(xw) == result.counts["records"] and xw["member_id"].str.match(r"^M[0-9a-f]{16}$").all()
    precision, recall = pairwise(xw, truth)
    assert precision >= 0.99 and recall >= 0.97, (precision, recall)
    ids = dict(zip(zip(xw["source"], xw["source_person_id"], strict=True), xw["member_id"], strict=True))
    # Twins stay apart; lookalikes with different CINs stay apart.
    assert ids[("mcp_bluecoast", "T1")] != ids[("mcp_bluecoast", "T2")]
    assert ids[("cair2", "T3")] != ids[("cair2", "T4")]
    assert ids[("mcp_bluecoast", "L1")] != ids[("mcp_goldstate", "L2")]
    assert ids[("mcp_goldstate", "L2")] == ids[("dental_medical", "L3")]
    members = lakehouse.read(spark, tables.MEMBER).toPandas()
    assert set(members["member_id"]) == set(xw["member_id"]) and members["member_id"].is_unique
    assert members["lhj"].notna().mean() > 0.9
    assert lakehouse.read(spark, tables.LINK_PAIRS).columns == tables.LINK_PAIRS.column_names
    assert lakehouse.read(spark, tables.REVIEW_QUEUE).columns == tables.REVIEW_QUEUE.column_names
    events = lakehouse.read(spark, tables.IDENTITY_EVENTS).toPandas()
    assert (events["event_type"] == "new").sum() == members.shape[0]

    # A second full run on the same records gives the same crosswalk (ids, methods and
    # probabilities: training is deterministic) and logs no changes.
    result2 = _run(spark, "r2", "full", monkeypatch)
    assert result2.counts["members_new"] == result2.counts["merges"] == result2.counts["splits"] == 0
    cols = ["source", "source_person_id", "member_id", "link_method", "link_probability"]
    again = _xwalk(spark)
    pd.testing.assert_frame_equal(again[cols].sort_values(cols[:2]).reset_index(drop=True),
                                  xw[cols].sort_values(cols[:2]).reset_index(drop=True))


def test_incremental_run_scores_new_records_against_existing_members(
        spark, phmx_home, population, write_person, monkeypatch):
    person, truth = population
    held = person[(person["source"] == "cair2")].iloc[::4]
    first = person.drop(held.index)
    write_person(first)
    _run(spark, "r1", "auto", monkeypatch)
    before = _xwalk(spark)
    write_person(person)
    result = _run(spark, "r2", "auto", monkeypatch)
    assert result.counts["mode"] == "incremental"
    assert result.counts["new_or_changed_records"] == len(held)
    after = _xwalk(spark).merge(truth, on=["source", "source_person_id"])
    # Unchanged records keep their members.
    kept = before.merge(after, on=["source", "source_person_id"], suffixes=("_old", "_new"))
    assert (kept["member_id_old"] == kept["member_id_new"]).mean() > 0.99
    # New records join the member that already holds their person's other records.
    old_member_of_person = kept.groupby("person_id")["member_id_new"].agg(lambda s: s.mode().iloc[0])
    new = after.merge(held[["source", "source_person_id"]], on=["source", "source_person_id"])
    known = new[new["person_id"].isin(old_member_of_person.index)]
    hits = (known["member_id"] == known["person_id"].map(old_member_of_person)).mean()
    assert hits > 0.9, hits
    # Nothing new: an incremental run that changes nothing.
    result3 = _run(spark, "r3", "auto", monkeypatch)
    assert result3.counts["mode"] == "incremental" and result3.counts["new_or_changed_records"] == 0
    assert result3.counts["members_new"] == result3.counts["merges"] == result3.counts["splits"] == 0
    cols = ["source", "source_person_id", "member_id", "link_method", "link_probability"]
    pd.testing.assert_frame_equal(_xwalk(spark)[cols].sort_values(cols[:2]).reset_index(drop=True),
                                  after[cols].sort_values(cols[:2]).reset_index(drop=True))


def _cli(argv: list[str]) -> int:
    from jobs.identity.cli import register

    parser = argparse.ArgumentParser(prog="phmx")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_review_decisions_merge_split_and_explain(spark, phmx_home, population, write_person, monkeypatch,
                                                 capsys, tmp_path):
    person, _ = population
    write_person(person)
    _run(spark, "r1", "full", monkeypatch)
    pairs = lakehouse.read(spark, tables.LINK_PAIRS).toPandas()
    xw = _xwalk(spark)
    member = dict(zip(zip(xw["source"], xw["source_person_id"], strict=True), xw["member_id"], strict=True))

    # Explain a linked pair: the waterfall adds up to the stored weight; the HTML has the chart.
    linked = pairs[pairs["decision"] == "linked"].sort_values("pair_id").iloc[0]
    html_file = tmp_path / "explain.html"
    assert _cli(["identity", "explain", f"{linked['source_l']}:{linked['source_person_id_l']}",
                 f"{linked['source_r']}:{linked['source_person_id_r']}", "--json", "--html", str(html_file)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["match_weight"] == pytest.approx(linked["match_weight"], abs=1e-6)
    assert "<svg" in html_file.read_text() and out["steps"][0]["comparison"] == "prior"

    # Reject that link, and accept the strongest pair a reviewer is asked about (pairs a guard
    # decides without asking, such as twins at one address, are not in the queue).
    assert _cli(["identity", "review", "--json"]) == 0
    queue = json.loads(capsys.readouterr().out)
    queued = {q["pair_id"] for q in queue}
    silent = pairs[(pairs["decision"] != "linked") & ~pairs["pair_id"].isin(queued)]
    assert silent["reason"].notna().all()  # everything left out of the queue was decided by a guard
    # A reviewer may decide any scored pair, queued or not (a small population may queue none).
    pool = pairs[pairs["pair_id"].isin(queued)] if queued else pairs[pairs["decision"] != "linked"]
    apart = pool.sort_values(["match_probability", "pair_id"], ascending=[False, True]).iloc[0]
    # One item per pair of members, each saying what an accept would merge.
    member_pairs = {frozenset((member[(q["source_l"], q["source_person_id_l"])],
                               member[(q["source_r"], q["source_person_id_r"])])) for q in queue}
    assert len(member_pairs) == len(queue)
    for item in queue[:3]:
        assert item["if_accepted"] == (f"merge {item['member_l']} ({item['records_l']} records) and "
                                       f"{item['member_r']} ({item['records_r']} records) into one member")
    assert _cli(["identity", "review", "--reject", linked["pair_id"], "--accept", apart["pair_id"],
                 "--reviewer", "tester"]) == 0
    result = _run(spark, "r2", "full", monkeypatch)
    xw2 = _xwalk(spark)
    member2 = dict(zip(zip(xw2["source"], xw2["source_person_id"], strict=True), xw2["member_id"], strict=True))
    a = (apart["source_l"], apart["source_person_id_l"])
    b = (apart["source_r"], apart["source_person_id_r"])
    assert member2[a] == member2[b]
    assert min(member[a], member[b]) == member2[a]  # ids minted in the same run: the smaller survives
    la = (linked["source_l"], linked["source_person_id_l"])
    lb = (linked["source_r"], linked["source_person_id_r"])
    assert member2[la] != member2[lb]
    assert result.counts["merges"] >= 1 and result.counts["splits"] >= 1
    events = lakehouse.read(spark, tables.IDENTITY_EVENTS).toPandas()
    merge = events[(events["run_id"] == "r2") & (events["event_type"] == "merge")]
    # (other merges may happen in the same run: a rejected link re-clusters its neighbours)
    assert {member[a], member[b]} in [{m, o} for m, o in zip(merge["member_id"], merge["other_member_id"],
                                                            strict=True)]
    # Decided pairs leave the queue.
    open_ids = set(lakehouse.read(spark, tables.REVIEW_QUEUE).toPandas()["pair_id"])
    assert apart["pair_id"] not in open_ids


def test_tiny_population_links_on_exact_identifiers(spark, phmx_home, write_person, monkeypatch):
    # Five people, each in three sources, every field exact: EM has no non-matches to learn
    # from; the deterministic rules still link them (and keep the five apart).
    rows = []
    for i, (given, family) in enumerate([("Ana", "Abarca"), ("Bruno", "Benitez"), ("Carla", "Cardenas"),
                                         ("Diego", "Dominguez"), ("Elena", "Escobar")], start=1):
        dob = dt.date(2015, i, i + 5)
        for source, cin in (("mcp_bluecoast", f"9{i:07d}B"), ("dental_medical", f"9{i:07d}B"), ("cair2", None)):
            rows.append({"source": source, "source_person_id": f"{source[:2]}{i}", "cin": cin, "given_name": given,
                         "family_name": family, "birth_date": dob, "sex": "F", "zip": "94607"})
    write_person(pd.DataFrame(rows))
    _run(spark, "r1", "full", monkeypatch)
    xw = _xwalk(spark)
    assert xw["member_id"].nunique() == 5
    assert (xw.groupby(xw["source_person_id"].str[-1])["member_id"].nunique() == 1).all()
