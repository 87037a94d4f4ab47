"""Where a member lived each month (jobs.indicators.population.residence_by_month) on hand-built
records, against the rule written out record by record in plain Python: the latest record dated
on or before the month's last day, else the earliest; between records of one date one with a
county, then one with a ZIP, then the lowest values; records whose ZIP and county name no LHJ
only when the member has no other; undated records only when the member has no dated one.
All identifiers and places are invented."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

START, END = date(2025, 1, 1), date(2025, 12, 31)
MONTHS = [date(2025, m, 1) for m in range(1, 13)]

#: member_id, record_date, zip5, county_fips, rec_lhj, county_name
RECORDS: list[tuple[str, date | None, str | None, str | None, str | None, str | None]] = [
    # moves in March and again in October (a mid-month record counts from its own month)
    ("mover", date(2024, 11, 1), "94601", "06001", "Alameda", "Alameda"),
    ("mover", date(2025, 3, 15), "94702", "06001", "Berkeley", "Alameda"),
    ("mover", date(2025, 10, 1), "90802", "06037", "Long Beach", "Los Angeles"),
    # first record in May: January to April take that earliest record
    ("late", date(2025, 5, 1), "95814", "06067", "Sacramento", "Sacramento"),
    ("late", date(2025, 8, 1), "95608", "06067", "Sacramento", "Sacramento"),
    # two records of one date: the one with a county wins, then the lower ZIP
    ("tie", date(2025, 2, 1), "93001", None, "Ventura", None),
    ("tie", date(2025, 2, 1), "93003", "06111", "Ventura", "Ventura"),
    ("tie", date(2025, 2, 1), "93002", "06111", "Ventura", "Ventura"),
    # an unmapped record never beats a mapped one, even when later
    ("unmapped", date(2025, 1, 1), "96001", "06089", "Shasta", "Shasta"),
    ("unmapped", date(2025, 6, 1), "99999", None, None, None),
    # only unmapped records: they are used, by the same rule
    ("only_unmapped", date(2025, 4, 1), "99998", None, None, None),
    ("only_unmapped", date(2025, 9, 1), "99997", None, None, None),
    # undated records only count without dated ones
    ("undated", None, "95060", "06087", "Santa Cruz", "Santa Cruz"),
    ("undated", None, "95062", "06087", "Santa Cruz", "Santa Cruz"),
    ("dated_and_undated", None, "95060", "06087", "Santa Cruz", "Santa Cruz"),
    ("dated_and_undated", date(2025, 12, 20), "95076", "06087", "Santa Cruz", "Santa Cruz"),
    # every record after the year: the earliest of them all year
    ("future", date(2026, 3, 1), "92101", "06073", "San Diego", "San Diego"),
    ("future", date(2026, 2, 1), "92102", "06073", "San Diego", "San Diego"),
]


def _last_day(m: date) -> date:
    nxt = date(m.year + 1, 1, 1) if m.month == 12 else date(m.year, m.month + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def expected(member: str, month: date) -> tuple[Any, ...]:
    rows = [r for r in RECORDS if r[0] == member]
    mapped = [r for r in rows if r[4] is not None]
    rows = mapped or rows
    dated = [r for r in rows if r[1] is not None]
    rows = dated or rows

    def ties(r: tuple[Any, ...]) -> tuple[Any, ...]:
        return (r[3] is None, r[2] is None, r[3] or "", r[2] or "", r[4] or "")

    if not dated:
        pick = min(rows, key=ties)
    else:
        end = _last_day(month)
        before = [r for r in rows if r[1] <= end]
        pick = (min(before, key=lambda r: ((end - r[1]).days, *ties(r))) if before
                else min(rows, key=lambda r: (r[1], *ties(r))))
    return pick[2], pick[3], pick[4], pick[5]


def test_residence_by_month_follows_the_rule(spark: Any) -> None:
    from jobs.indicators.population import residence_by_month

    records = spark.createDataFrame(RECORDS, "member_id string, record_date date, zip5 string, county_fips string,"
                                             " rec_lhj string, county_name string")
    got = {(r["member_id"], r["month"]): (r["zip5"], r["county_fips"], r["rec_lhj"], r["county_name"])
           for r in residence_by_month(records, START, END).collect()}
    members = sorted({r[0] for r in RECORDS})
    assert set(got) == {(m, mo) for m in members for mo in MONTHS}  # every month once, nothing else
    for m in members:
        assert [got[(m, mo)] for mo in MONTHS] == [expected(m, mo) for mo in MONTHS], m
    # spot checks of the rule itself (not only agreement with the reference above)
    assert [got[("mover", mo)][2] for mo in MONTHS] == ["Alameda"] * 2 + ["Berkeley"] * 7 + ["Long Beach"] * 3
    assert [got[("late", mo)][0] for mo in MONTHS] == ["95814"] * 7 + ["95608"] * 5
    assert {got[("tie", mo)][0] for mo in MONTHS} == {"93002"}
    assert {got[("unmapped", mo)][0] for mo in MONTHS} == {"96001"}
    assert [got[("only_unmapped", mo)][0] for mo in MONTHS] == ["99998"] * 8 + ["99997"] * 4
    assert {got[("undated", mo)][0] for mo in MONTHS} == {"95060"}
    assert {got[("dated_and_undated", mo)][0] for mo in MONTHS} == {"95076"}
    assert {got[("future", mo)][0] for mo in MONTHS} == {"92102"}


@pytest.mark.parametrize("start", [date(2025, 4, 1), date(2025, 4, 17)])
def test_a_part_year_gives_only_its_months(spark: Any, start: date) -> None:
    from jobs.indicators.population import residence_by_month

    records = spark.createDataFrame([r for r in RECORDS if r[0] == "mover"],
                                    "member_id string, record_date date, zip5 string, county_fips string,"
                                    " rec_lhj string, county_name string")
    rows = sorted((r["month"], r["rec_lhj"]) for r in residence_by_month(records, start, date(2025, 11, 30)).collect())
    assert rows == [(date(2025, m, 1), "Berkeley" if m < 10 else "Long Beach") for m in range(4, 12)]


#: member_id, plan_id, start_date, end_date (open ends already 9999-12-31, as jobs.measures.inputs gives them)
COVERAGE = [
    ("two", "P1", date(2025, 1, 15), date(2025, 6, 30)),
    ("two", "P2", date(2025, 3, 1), date(2025, 3, 31)),
    ("two", "P2", date(2025, 3, 20), date(2025, 4, 2)),      # the same plan twice in March
    ("gap", "P1", date(2024, 6, 1), date(2025, 2, 28)),      # starts before the year
    ("gap", "P1", date(2025, 5, 31), date(9999, 12, 31)),    # one day of May, open end
    ("bad", "P1", date(2025, 4, 1), date(2025, 8, 31)),
    ("bad", "P3", date(2025, 6, 20), date(2025, 6, 5)),      # ends before it starts, within June
    ("bad", "P4", date(2025, 10, 20), date(2025, 9, 5)),     # ends before it starts, across months
    ("bad", None, date(2025, 5, 1), date(2025, 5, 31)),      # no plan id
    ("late", "P1", date(2026, 1, 1), date(2026, 6, 30)),     # after the year
]


def _expected_months(start: date, end: date) -> dict[tuple[str, date], int]:
    """The rule written out: a month is covered when a row (ending on or after its start) covers a
    day of it inside [start, end]; plan_count counts the distinct plans of rows overlapping it."""
    out: dict[tuple[str, date], set[str]] = {}
    months = [date(2025, m, 1) for m in range(1, 13) if date(2025, m, 1) <= end and _last_day(date(2025, m, 1)) >= start]
    for member, _plan, s, e in COVERAGE:
        if e < s:
            continue
        for mo in months:
            if s <= min(_last_day(mo), end) and e >= max(mo, start):
                out.setdefault((member, mo), set())
    for member, plan, s, e in COVERAGE:
        for mo in months:
            if (member, mo) in out and plan is not None and s <= end and e >= start \
                    and s <= _last_day(mo) and e >= mo:
                out[(member, mo)].add(plan)
    return {k: len(v) for k, v in out.items()}


@pytest.mark.parametrize(("start", "end"), [(START, END), (date(2025, 3, 10), date(2025, 9, 30))])
def test_months_and_plan_counts_from_coverage_rows(spark: Any, start: date, end: date) -> None:
    from types import SimpleNamespace

    from jobs.indicators.population import months

    cov = spark.createDataFrame(COVERAGE, "member_id string, plan_id string, start_date date, end_date date")
    got = {(r["member_id"], r["month"]): r["plan_count"]
           for r in months(SimpleNamespace(coverage=cov), start, end).collect()}  # type: ignore[arg-type]
    assert got == _expected_months(start, end)
    if start == START:
        assert got[("two", date(2025, 3, 1))] == 2 and got[("bad", date(2025, 6, 1))] == 2  # P1 and P3
        assert ("bad", date(2025, 9, 1)) not in got and ("gap", date(2025, 4, 1)) not in got
        assert got[("gap", date(2025, 5, 1))] == 1 and got[("gap", date(2025, 12, 1))] == 1
