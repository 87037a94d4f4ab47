"""An identity run interrupted between its writes and run again ends as an uninterrupted run does.

The crash is injected at the named commit boundary (``PHMX_FAULT=<point>=raise``, :mod:`phmx.faults`):
right after gold.member_xwalk is written and before gold.identity_events. Before the fix, the
second attempt read the crosswalk the first attempt had just written as the previous one, kept
the ids it had minted and never logged their ``new`` events.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from phmx import faults, lakehouse, tables
from phmx.context import RunContext

AFTER_XWALK = "lakehouse.write.after:gold.member_xwalk"
#: The last write before the encrypted identity index (written last of all).
BEFORE_INDEX = "lakehouse.write.after:gold.identity_records"


def _people(n: int, *, sources: tuple[str, ...] = ("mcp_bluecoast", "dental_medical", "cair2")) -> pd.DataFrame:
    names = [("Ana", "Abarca"), ("Bruno", "Benitez"), ("Carla", "Cardenas"), ("Diego", "Dominguez"),
             ("Elena", "Escobar"), ("Fabian", "Fuentes"), ("Gloria", "Guzman"), ("Hector", "Herrera")]
    rows = []
    for i, (given, family) in enumerate(names[:n], start=1):
        for source in sources:
            rows.append({"source": source, "source_person_id": f"{source[:2]}{i}",
                         "cin": f"9{i:07d}B" if source != "cair2" else None, "given_name": given,
                         "family_name": family, "birth_date": dt.date(2015, i, i + 5), "sex": "F", "zip": "94607"})
    return pd.DataFrame(rows)


def reset_provider_cache() -> None:
    from privacy.keys import reset_provider_cache as reset

    reset()


def _run(spark, run_id: str):
    import jobs.identity as identity

    return identity.run(spark, RunContext.new(run_id=run_id))


def _state(spark) -> tuple[pd.DataFrame, pd.DataFrame]:
    cols = ["source", "source_person_id", "member_id", "link_method", "link_probability"]
    xw = lakehouse.read(spark, tables.MEMBER_XWALK).toPandas()[cols].sort_values(cols[:2]).reset_index(drop=True)
    ev = lakehouse.read(spark, tables.IDENTITY_EVENTS).toPandas()
    ev = ev[["event_id", "event_type", "member_id", "other_member_id", "records", "run_id"]]
    return xw, ev.sort_values("event_id").reset_index(drop=True)


def _interrupted(spark, monkeypatch, run_id: str, point: str = AFTER_XWALK) -> None:
    monkeypatch.setenv("PHMX_FAULT", f"{point}=raise")
    faults._hits.clear()
    with pytest.raises(faults.FaultInjected):
        _run(spark, run_id)
    monkeypatch.delenv("PHMX_FAULT")
    faults._hits.clear()


@pytest.mark.parametrize(("mode", "point"), [("full", AFTER_XWALK), ("auto", AFTER_XWALK),
                                             pytest.param("auto", BEFORE_INDEX, marks=pytest.mark.slow)])
def test_rerun_after_a_kill_between_crosswalk_and_events_logs_every_event(
        spark, phmx_home, write_person, monkeypatch, mode, point):
    monkeypatch.setenv("PHMX_IDENTITY_MODE", mode)
    # Run 1 on seven people; run 2 adds an eighth (a new member; few enough new records for an
    # incremental run in auto mode). Run 2 is interrupted after the crosswalk, then run again.
    write_person(_people(7))
    _run(spark, "r1")
    write_person(_people(8))
    _interrupted(spark, monkeypatch, "r2", point)
    result = _run(spark, "r2")
    xw, ev = _state(spark)

    # The same two runs uninterrupted, in a fresh lakehouse.
    monkeypatch.setenv("PHMX_HOME", str(phmx_home.parent / "clean"))
    reset_provider_cache()
    write_person(_people(7))
    _run(spark, "r1")
    write_person(_people(8))
    clean = _run(spark, "r2")
    xw_clean, ev_clean = _state(spark)

    pd.testing.assert_frame_equal(xw, xw_clean)
    pd.testing.assert_frame_equal(ev, ev_clean)
    assert result.counts["members_new"] == clean.counts["members_new"] == 1
    assert result.counts["mode"] == clean.counts["mode"] == ("incremental" if mode == "auto" else "full")
    # The incremental re-run read the encrypted index as it stood before the interrupted attempt.
    assert result.details["route"] == clean.details["route"] == ("index" if mode == "auto" else "standardise_all")
    index = lakehouse.read(spark, tables.IDENTITY_INDEX).toPandas()
    assert len(index) == len(xw)
    # A full run rewrites the index; an incremental one writes only its new records' rows.
    assert set(index["run_id"]) == ({"r2"} if mode == "full" else {"r1", "r2"})
    assert set(index[index["run_id"] == "r2"]["source_person_id"]) >= {"mc8", "de8", "ca8"}
    assert set(ev[ev["event_type"] == "new"]["member_id"]) == set(xw["member_id"])
    # Nobody left: no member is retired (the previous crosswalk, read lazily after this run had
    # overwritten it, once retired every member the run created).
    assert "retire" not in set(ev_clean["event_type"])


def test_first_run_killed_after_the_crosswalk_logs_its_new_members(spark, phmx_home, write_person, monkeypatch):
    monkeypatch.setenv("PHMX_IDENTITY_MODE", "auto")
    write_person(_people(5))
    _interrupted(spark, monkeypatch, "r1")
    result = _run(spark, "r1")
    xw, ev = _state(spark)
    assert result.counts["mode"] == "full" and result.counts["members_new"] == 5
    assert sorted(ev[ev["event_type"] == "new"]["member_id"]) == sorted(xw["member_id"].unique())
    # A retry of a run that had finished changes nothing either.
    again = _run(spark, "r1")
    assert _state(spark)[0].equals(xw) and _state(spark)[1].equals(ev)
    assert again.counts["members_new"] == 5
