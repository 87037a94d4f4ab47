"""The exchange DAG month by month: a scheduled or backfill run processes its data interval's month.

``phmx.runners.run_period`` (the in-process tasks) and ``PERIOD_TEMPLATE`` (rendered by the
spark-submit and EMR operators) must give the same period for the same run; and the real DAG,
parsed by Airflow with ``PHMX_SCHEDULE=@monthly``, must have calendar-month data intervals from
its start date, so catch-up and ``airflow backfill create`` walk the months in order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest

from phmx.runners import PERIOD_TEMPLATE, run_period

REPO = Path(__file__).resolve().parents[2]
MARCH = datetime(2025, 3, 1)

CASES = [
    # (conf period, run type, data interval start) -> period processed
    ({"period": "all"}, "scheduled", MARCH, "2025-03"),
    ({"period": "all"}, "backfill", datetime(2024, 12, 1), "2024-12"),
    ({"period": "2025-01"}, "scheduled", MARCH, "2025-01"),   # an explicit period wins
    ({"period": "all"}, "manual", MARCH, "all"),             # a triggered run keeps the whole history
    ({"period": "2025-02"}, "manual", MARCH, "2025-02"),
    ({"period": "R12-2025-03"}, "asset_triggered", MARCH, "R12-2025-03"),
]


@pytest.mark.parametrize(("params", "run_type", "start", "expected"), CASES)
def test_run_period_and_the_operators_template_agree(params, run_type, start, expected):
    assert run_period(params, run_type, start) == expected
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(PERIOD_TEMPLATE)
    rendered = template.render(params=params, dag_run=SimpleNamespace(run_type=run_type), data_interval_start=start)
    assert rendered == expected


def test_no_conf_at_all_is_the_whole_history_or_the_interval_month():
    assert run_period(None, "manual", None) == "all"
    assert run_period({}, "scheduled", MARCH) == "2025-03"


PARSE = textwrap.dedent('''
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable
    from airflow.timetables.base import TimeRestriction

    bag = DagBag(dag_folder=sys.argv[1])
    dag = bag.dags["phm_exchange"]
    # The timetable as the scheduler sees it (serialised by the DAG processor, decoded by the scheduler).
    timetable = decode_timetable(encode_timetable(dag.timetable))
    out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "catchup": dag.catchup,
           "timetable": type(timetable).__name__, "summary": timetable.summary, "intervals": []}
    last = None
    for _ in range(3):
        info = timetable.next_dagrun_info(last_automated_data_interval=last,
                                          restriction=TimeRestriction(dag.start_date, None, dag.catchup))
        last = info.data_interval
        out["intervals"].append([last.start.isoformat(), last.end.isoformat()])
    print("RESULT " + json.dumps(out))
''')


def test_the_dag_parses_with_a_monthly_schedule_and_catch_up(tmp_path):
    import os

    from phmx.airflow_env import airflow_env

    os.environ["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    try:
        env = airflow_env()
    finally:
        os.environ.pop("AIRFLOW_HOME", None)
    env.update({"PHMX_HOME": str(tmp_path / "var"), "PHMX_SCHEDULE": "@monthly", "PHMX_CATCHUP": "1",
                "PHMX_RUNNER": "inprocess"})
    proc = subprocess.run([sys.executable, "-c", PARSE, str(REPO / "dags")], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    assert out["errors"] == {}
    assert out["catchup"] is True
    assert out["timetable"] == "CronDataIntervalTimetable" and out["summary"] == "0 0 1 * *"
    assert [i[0][:10] for i in out["intervals"]] == ["2025-01-01", "2025-02-01", "2025-03-01"]
    assert [i[1][:10] for i in out["intervals"]] == ["2025-02-01", "2025-03-01", "2025-04-01"]
    # Each interval's run processes the month it starts in.
    assert [run_period({"period": "all"}, "scheduled", datetime.fromisoformat(i[0])) for i in out["intervals"]] \
        == ["2025-01", "2025-02", "2025-03"]
