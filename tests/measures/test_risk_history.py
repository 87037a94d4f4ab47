"""Risk that stays fresh: rolling 12-month windows for monthly runs, the tier history and transitions."""

from __future__ import annotations

import datetime as dt

from jobs.measures.measurement_period import MeasurePeriod
from jobs.measures.risk_history import months_between, transitions
from jobs.measures.stage import risk_period_of
from phmx import lakehouse
from phmx.period import Period
from phmx.tables import ENCOUNTER, MEMBER_RISK

# member -> {rolling period month: tier}
HISTORY = {
    "m1": {"2025-01": "high", "2025-02": "high", "2025-06": "rising"},
    "m2": {"2025-01": "high", "2025-02": "low", "2025-06": "low"},
    "m3": {"2025-01": "rising", "2025-02": "rising"},
    "m4": {"2025-01": "high"},                       # no later tier: not a transition
    "m5": {"2025-01": "high", "2026-01": "high"},
}


def test_transition_matrix_from_the_tier_history(spark, phmx_home):
    rows = [(m, f"R12-{month}", tier) for m, h in HISTORY.items() for month, tier in h.items()]
    rows.append(("m1", "2025", "low"))  # a calendar-year row is not part of the monthly history
    df = spark.createDataFrame(rows, "member_id string, period string, risk_tier string")
    lakehouse.overwrite(lakehouse.conform_to(df, MEMBER_RISK), MEMBER_RISK)
    got = {(r.month, r.horizon_months, r.from_tier): (r.members, r.to_high, r.to_rising, r.to_low, r.left_tier,
                                                      r.share_left)
           for r in transitions(spark, "run-t").collect()}
    assert got == {
        ("2025-01", 1, "high"): (2, 1, 0, 1, 1, 0.5),      # m1 stayed, m2 fell to low (m4, m5: no February)
        ("2025-01", 5, "high"): (2, 0, 1, 1, 2, 1.0),      # by June both had left
        ("2025-01", 12, "high"): (1, 1, 0, 0, 0, 0.0),     # m5 still high a year later
        ("2025-01", 1, "rising"): (1, 0, 1, 0, 0, 0.0),    # m3
    }


def test_monthly_and_all_runs_use_the_rolling_12_months(spark, phmx_home):
    year = MeasurePeriod("2025", dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    march = risk_period_of(spark, Period.parse("2025-03"), year)
    assert (march.label, march.start, march.end) == ("R12-2025-03", dt.date(2024, 4, 1), dt.date(2025, 3, 31))
    assert risk_period_of(spark, Period.parse("2025"), year) == year  # a calendar year is already 12 months
    enc = spark.createDataFrame([("s", "e1", "p1", "ED", dt.date(2025, 8, 14))],
                                "source string, encounter_id string, source_person_id string, setting string, "
                                "service_date date")
    lakehouse.overwrite(lakehouse.conform_to(enc, ENCOUNTER), ENCOUNTER)
    latest = risk_period_of(spark, Period.parse("all"), year)
    assert (latest.label, latest.start, latest.end) == ("R12-2025-08", dt.date(2024, 9, 1), dt.date(2025, 8, 31))
    assert [str(p) for p in months_between("2024-11", "2025-02")] == ["2024-11", "2024-12", "2025-01", "2025-02"]


def test_a_run_over_all_data_writes_the_tier_history_the_setting_asks_for(monkeypatch):
    from jobs.measures.stage import risk_windows

    latest = MeasurePeriod("R12-2025-02", dt.date(2024, 3, 1), dt.date(2025, 2, 28))
    monkeypatch.delenv("PHMX_RISK_HISTORY_MONTHS", raising=False)
    assert risk_windows(Period.parse("all"), latest) == [latest]  # by default only the latest window
    monkeypatch.setenv("PHMX_RISK_HISTORY_MONTHS", "3")
    got = risk_windows(Period.parse("all"), latest)
    assert [w.label for w in got] == ["R12-2024-12", "R12-2025-01", "R12-2025-02"]  # oldest first, across a year
    assert (got[0].start, got[0].end) == (dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    # a monthly run writes its own window only: the months before it were written by their own runs
    assert risk_windows(Period.parse("2025-02"), latest) == [latest]


def test_measurement_years_a_run_computes_month_by_month_and_at_all(spark, phmx_home, monkeypatch):
    """The month-by-month contract (docs/measures.md, Periods): a monthly run computes its year to date
    and, in its year's run-out months, the year before when the hub received data for it; a run at
    ``all`` every year received, so a rebuild holds the years a monthly hub computed."""
    from jobs.measures.measurement_period import run_years
    from jobs.measures.stage import with_year_ends
    from phmx.tables import SUBMISSIONS

    def labels(period: str, runout: int | None = None) -> list[str]:
        return [p.label for p in run_years(spark, period, fallback_year=2026, runout_months=runout)]

    # Nothing landed (a silver built by hand): the run's own year only.
    assert labels("2026-01") == ["2026"]
    assert labels("all") == ["2026"]  # no encounters either: the fallback year
    subs = spark.createDataFrame([("s1", "2025-11", "accepted"), ("s2", "2025-12", "accepted_with_errors"),
                                  ("s3", "2026-01", "accepted"), ("s4", "2024-06", "rejected")],
                                 "submission_id string, period string, status string")
    lakehouse.overwrite(lakehouse.conform_to(subs, SUBMISSIONS), SUBMISSIONS)
    monkeypatch.delenv("PHMX_MEASURE_RUNOUT_MONTHS", raising=False)
    assert labels("2026-01") == ["2025", "2026"]  # January closes 2025 (its run-out)
    assert labels("2026-03") == ["2025", "2026"]  # default run-out: three months
    assert labels("2026-04") == ["2026"]
    assert labels("2026-01", runout=0) == ["2026"]
    assert labels("2025-01") == ["2025"]  # a rejected file of 2024 is no data of 2024
    assert labels("all") == ["2025", "2026"]  # every year received, whatever the latest encounter's year
    assert labels("2025") == ["2025"] and labels("R12-2026-01") == ["R12-2026-01"]
    # With each earlier year, its year-end risk window: the year's risk-tier indicators read it.
    years = run_years(spark, "2026-01", fallback_year=2026)
    own = MeasurePeriod("R12-2026-01", dt.date(2025, 2, 1), dt.date(2026, 1, 31))
    assert [w.label for w in with_year_ends([own], years[:-1])] == ["R12-2025-12", "R12-2026-01"]
    assert with_year_ends([own], []) == [own]
