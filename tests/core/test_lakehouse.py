"""Lakehouse: contracts, MERGE upserts, partial reloads that never drop other submissions, history, S3."""

from __future__ import annotations

import pytest

from phmx import lakehouse
from phmx.errors import EngineError
from phmx.tables import ALL, COVERAGE, QUARANTINE

COV = ("source string, source_person_id string, plan_id string, aid_code string, start_date string,"
       " end_date string, submission_id string, period string, row_number bigint")


def _cov(spark, rows):
    return spark.createDataFrame(rows, COV)


def test_every_contract_is_well_formed():
    seen = set()
    for t in ALL:
        assert t.fqn not in seen
        seen.add(t.fqn)
        names = t.column_names
        assert len(names) == len(set(names)), t.fqn
        assert set(t.keys) <= set(names), t.fqn


def test_merge_upserts_and_deletes_only_inside_the_given_scope(spark, phmx_home):
    lakehouse.merge(spark, _cov(spark, [("a", "1", "P", "1H", "2025-01-01", None, "s1", "2025-01", 2),
                                        ("b", "9", "P", "1H", "2025-01-01", None, "s2", "2025-01", 2)]), COVERAGE)
    lakehouse.merge(spark, _cov(spark, [("a", "2", "P", "1H", "2025-01-01", None, "s3", "2025-01", 2)]), COVERAGE,
                    delete_where="t.source = 'a'")
    got = sorted((r.source, r.source_person_id) for r in lakehouse.read(spark, COVERAGE).collect())
    assert got == [("a", "2"), ("b", "9")]


def _log_sizes(table, version: int) -> tuple[int, int]:
    """Files added and removed by one commit, from the Delta log."""
    import json
    from pathlib import Path

    path = Path(lakehouse.table_path(table)) / "_delta_log" / f"{version:020d}.json"
    actions = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sum("add" in a for a in actions), sum("remove" in a for a in actions)


def test_refresh_writes_only_the_rows_that_differ_and_leaves_other_files_alone(spark, phmx_home):
    """A month's refresh of a source adds its new rows without rewriting the files of earlier
    months, and gives the table a whole-scope MERGE gives (changed, new and gone rows)."""
    months = [[("a", f"m{m}p{i}", "P", "1H", "2025-01-01", None, f"s{m}", f"2025-0{m}", i) for i in range(5)]
              for m in (1, 2, 3)]
    for rows in months:  # three months, three files
        lakehouse.append(lakehouse.conform_to(_cov(spark, rows), COVERAGE), COVERAGE)
    lakehouse.append(lakehouse.conform_to(_cov(spark, [("b", "9", "P", "1H", "2025-01-01", None, "t", "2025-01", 1)]),
                                          COVERAGE), COVERAGE)
    v = lakehouse.version(COVERAGE)
    everything = [r for rows in months for r in rows]
    # the same rows again: nothing differs, no commit
    assert lakehouse.refresh(spark, _cov(spark, everything), COVERAGE, scope="source = 'a'") == 0
    assert lakehouse.version(COVERAGE) == v
    # a fourth month: only inserts, no file rewritten
    month4 = [("a", f"m4p{i}", "P", "1H", "2025-01-01", None, "s4", "2025-04", i) for i in range(5)]
    assert lakehouse.refresh(spark, _cov(spark, everything + month4), COVERAGE, scope="source = 'a'") == 5
    assert _log_sizes(COVERAGE, v + 1)[1] == 0
    # one row of month 3 changed, one of month 3 gone: month 1, 2 and 4's files and source b untouched
    now = [r for r in everything + month4 if r[1] != "m3p4"]
    now = [(*r[:3], "2B", *r[4:]) if r[1] == "m3p0" else r for r in now]
    assert lakehouse.refresh(spark, _cov(spark, now), COVERAGE, scope="source = 'a'") == 2
    assert _log_sizes(COVERAGE, v + 2)[1] == 1  # month 3's file only
    got = sorted(tuple(r) for r in lakehouse.read(spark, COVERAGE)
                 .select("source", "source_person_id", "aid_code", "submission_id").collect())
    want = sorted((r[0], r[1], r[3], r[6]) for r in now) + [("b", "9", "1H", "t")]
    assert got == want


def test_partial_reload_never_drops_another_submissions_rows(spark, phmx_home):
    """The embedded engine's dynamic partition overwrite replaced whole tables: we use replaceWhere."""
    rows = [(f"src{i % 3}", str(i), "P", "1H", "2025-01-01", None, f"sub{i % 3}", "2025-01", i) for i in range(30)]
    lakehouse.overwrite(lakehouse.conform_to(_cov(spark, rows), COVERAGE), COVERAGE)
    reload = [("src1", f"new{i}", "P", "1H", "2025-01-01", None, "sub1", "2025-01", i) for i in range(4)]
    lakehouse.overwrite(lakehouse.conform_to(_cov(spark, reload), COVERAGE), COVERAGE,
                        replace_where="submission_id = 'sub1'")
    df = lakehouse.read(spark, COVERAGE)
    counts = {r.submission_id: r["count"] for r in df.groupBy("submission_id").count().collect()}
    assert counts == {"sub0": 10, "sub1": 4, "sub2": 10}


def test_history_version_and_restore_through_delta_rs(spark, phmx_home):
    lakehouse.append(lakehouse.conform_to(_cov(spark, [("a", "1", "P", "1H", "2025-01-01", None, "s", "p", 1)]),
                                          COVERAGE), COVERAGE)
    lakehouse.append(lakehouse.conform_to(_cov(spark, [("a", "2", "P", "1H", "2025-01-01", None, "s", "p", 2)]),
                                          COVERAGE), COVERAGE)
    assert lakehouse.version(COVERAGE) == 1
    assert len(lakehouse.history(COVERAGE)) == 2
    assert lakehouse.read(spark, COVERAGE, version=0).count() == 1
    lakehouse.restore(COVERAGE, 0)
    assert lakehouse.read(spark, COVERAGE).count() == 1
    assert lakehouse.version(COVERAGE) == 2  # restore is a new commit; history kept
    assert lakehouse.vacuum(COVERAGE, dry_run=True) == []  # nothing old enough to remove


def test_time_travel_before_a_checkpoint(spark, phmx_home):
    """Every version reads back exactly, also those before the checkpoint written at version 10
    (the embedded engine's own versionAsOf fails there; reads go through delta-rs's log replay),
    including versions where MERGE updated and deleted rows."""
    expected: dict[int, list[tuple[str, str]]] = {}
    current: dict[str, str] = {}
    for v in range(13):
        if v % 4 == 3:  # a submission replaced: one row updated, one deleted, by MERGE
            current = {k: (a if k != "p0" else "2B") for k, a in current.items() if k != f"p{v - 1}"}
            rows = [("a", k, "P", a, "2025-01-01", None, "s", "p", 1) for k, a in current.items()]
            lakehouse.merge(spark, _cov(spark, rows), COVERAGE, delete_where="t.source = 'a'")
        else:
            current[f"p{v}"] = "1H"
            lakehouse.append(lakehouse.conform_to(
                _cov(spark, [("a", f"p{v}", "P", "1H", "2025-01-01", None, "s", "p", v)]), COVERAGE), COVERAGE)
        expected[lakehouse.version(COVERAGE)] = sorted(current.items())
    assert max(expected) >= 11
    for v, rows in expected.items():
        got = sorted((r.source_person_id, r.aid_code) for r in lakehouse.read(spark, COVERAGE, version=v).collect())
        assert got == rows, f"version {v}"


def test_missing_contract_table_reads_empty_and_unknown_table_is_a_clear_error(spark, phmx_home):
    assert lakehouse.read(spark, QUARANTINE).count() == 0
    with pytest.raises(EngineError, match="bronze.nope"):
        lakehouse.read(spark, "bronze.nope")
    with pytest.raises(EngineError, match="unsafe"):
        lakehouse.table_path("bronze.x; drop")


def test_lakehouse_on_s3_root(spark, phmx_home, s3_bucket, monkeypatch):
    monkeypatch.setenv("PHMX_LAKEHOUSE_ROOT", f"s3://{s3_bucket}/lakehouse")
    assert lakehouse.table_path(COVERAGE) == f"s3://{s3_bucket}/lakehouse/silver/coverage"
    lakehouse.merge(spark, _cov(spark, [("a", "1", "P", "1H", "2025-01-01", None, "s1", "2025-01", 1)]), COVERAGE)
    lakehouse.merge(spark, _cov(spark, [("a", "1", "P", "2B", "2025-01-01", None, "s2", "2025-01", 1),
                                        ("a", "3", "P", "1H", "2025-01-01", None, "s2", "2025-01", 2)]), COVERAGE)
    rows = sorted((r.source_person_id, r.aid_code) for r in lakehouse.read(spark, COVERAGE).collect())
    assert rows == [("1", "2B"), ("3", "1H")]
    assert lakehouse.version(COVERAGE) == 1
    assert lakehouse.read(spark, COVERAGE, version=0).count() == 1


def test_apply_changes_appends_new_keys_merges_the_rest_and_repeats_safely(spark, phmx_home):
    """An incremental writer's change: new keys appended (no file rewritten), changed and gone
    keys in one MERGE; sent again (a re-run after a kill between the two writes) it changes
    nothing and doubles nothing."""
    rows = [("a", f"p{i}", "P", "1H", "2025-01-01", None, "s1", "2025-01", i) for i in range(4)]
    lakehouse.append(lakehouse.conform_to(_cov(spark, rows), COVERAGE), COVERAGE)
    v = lakehouse.version(COVERAGE)
    changed = [("a", "p1", "P", "2B", "2025-01-01", None, "s2", "2025-02", 1),
               ("a", "p9", "P", "1H", "2025-02-01", None, "s2", "2025-02", 9)]
    gone = spark.createDataFrame([("a", "p3", "P", "2025-01-01")],
                                 "source string, source_person_id string, plan_id string, start_date string")
    for attempt in (1, 2):
        assert lakehouse.apply_changes(spark, _cov(spark, changed), COVERAGE, gone=gone) == 3
        got = sorted((r.source_person_id, r.aid_code) for r in lakehouse.read(spark, COVERAGE).collect())
        assert got == [("p0", "1H"), ("p1", "2B"), ("p2", "1H"), ("p9", "1H")], attempt
    assert _log_sizes(COVERAGE, v + 2) == (1, 0)  # the first attempt's append: a new file, none removed
    assert lakehouse.apply_changes(spark, _cov(spark, []), COVERAGE) == 0
    assert lakehouse.version(COVERAGE) == v + 3  # the second attempt: one MERGE, no append; nothing sent: no commit
