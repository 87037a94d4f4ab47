"""Month by month equals a rebuild: three months run one at a time, as the monthly DAG runs them,
give the same gold tables and the same published month as one run over the three months.

The population comes from our generator (``phmx synth``, 150 members, two counties, three
months). Two homes share one keys folder, so pseudonyms and fingerprints are comparable:

* ``hub``: each month's landing folders arrive, then every stage runs at the period the monthly
  DAG gives that run: Airflow's own ``@monthly`` data-interval timetable (the one
  ``PHMX_SCHEDULE=@monthly`` puts on the DAG) yields the three intervals from the DAG's start date,
  and :func:`phmx.runners.run_period` turns each scheduled run's interval into its month;
* ``rebuild``: the three months' folders at once, every stage at ``all``, then publish at the
  last month (the package a plan or LHJ would get for that month from a rebuilt hub).

The comparison is :func:`benchmarks.monthly.compare` (the benchmark prints the same verdicts at
scale). What it sets aside, each for a reason stated there and in docs/scaling.md section 9:
clock columns, run ids and ciphertexts (as between any two runs); member ids, matched through the
crosswalks (an id is stable by design, so a month-by-month hub can keep the id a cluster got in an
earlier month where a rebuild mints another), with the columns keyed on the id (``pii_fingerprint``)
and the Condition ids derived from it compared only for members both name alike; and the tables
that are a history by design (identity events, the feed log, risk transitions, older risk windows).
Each stage runs in a fresh process, as an Airflow task would, and the rebuild runs beside the
hub's months.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pendulum
import pytest

from benchmarks.monthly import HISTORY, compare, land, run
from phmx.runners import run_period


def _monthly_periods(n: int) -> list[str]:
    """The periods of the DAG's first ``n`` scheduled runs under ``PHMX_SCHEDULE=@monthly``."""
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.interval import CronDataIntervalTimetable

    timetable = CronDataIntervalTimetable("@monthly", timezone="UTC")  # as dags/phm_exchange.py builds it
    start = pendulum.datetime(2025, 11, 1, tz="UTC")  # the DAG's start_date: three months over a year's end
    periods, last = [], None
    for _ in range(n):
        info = timetable.next_dagrun_info(last_automated_data_interval=last,
                                          restriction=TimeRestriction(start, None, True))
        assert info is not None
        last = info.data_interval
        periods.append(run_period({"period": "all"}, "scheduled", last.start))
    return periods


@pytest.mark.slow
def test_three_months_one_by_one_equal_one_rebuild(tmp_path: Path) -> None:
    from phmx.synth import generate

    generate(tmp_path / "source", members=150, counties=["06001", "06013"], seed=7, start="2025-11", months=3)
    months = _monthly_periods(3)
    assert months == ["2025-11", "2025-12", "2026-01"]  # a measurement year closes between the runs
    source, keys = tmp_path / "source" / "landing", tmp_path / "keys"
    hub, rebuild = tmp_path / "hub", tmp_path / "rebuild"
    # The shared keys folder is made by the first run, before the two homes run side by side.
    assert land(source, hub, months[:1]) > 0
    run(hub, keys, months[0], "month-2025-01")
    errors: list[BaseException] = []

    def rebuilt() -> None:
        try:
            land(source, rebuild, months)
            run(rebuild, keys, "all", "rebuild")
            run(rebuild, keys, months[-1], "rebuild-month", stages=("publish",))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    side = threading.Thread(target=rebuilt)
    side.start()
    for month in months[1:]:
        assert land(source, hub, [month]) > 0
        run(hub, keys, month, f"month-{month}")
    side.join()
    if errors:
        raise errors[0]

    verdicts = compare(hub, rebuild, month=months[-1], keys=keys, run_id=f"month-{months[-1]}")
    differs = {k: v for k, v in verdicts.items() if v.startswith("DIFFERS")}
    assert not differs, "\n".join(f"{k}: {v}" for k, v in differs.items())
    gold = {k.removeprefix("gold."): v for k, v in verdicts.items() if k.startswith("gold.")}
    history = {k for k, v in gold.items() if v.startswith("history by design")}
    assert history <= set(HISTORY)
    same = {k for k, v in gold.items() if v.startswith("same")}
    assert {"member", "member_xwalk", "link_pairs", "identity_records", "member_month", "measure_event",
            "member_risk", "consent_decision", "indicator_strata", "indicator_rate"} <= same
    published = {k: v for k, v in verdicts.items() if k.startswith("published ")}
    assert any("measures.csv" in k for k in published) and any(k.endswith(f".ndjson {months[-1]}") for k in published)
    assert all(v.startswith("same") for v in published.values())
    records = {k: v for k, v in verdicts.items() if k.startswith("records ")}
    assert records and all(v.startswith("none lost") for v in records.values())
    # Clean up the large homes now rather than at session end (the suite's tmp space is shared).
    shutil.rmtree(hub, ignore_errors=True)
    shutil.rmtree(rebuild, ignore_errors=True)
