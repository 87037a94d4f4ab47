"""The statewide exchange, one task per stage: ingest -> conform -> identity -> consent -> publish.

Thin on purpose: each task calls the stage's job entry point (jobs.entry.run_stage) with the
run's period and run id; all logic lives in jobs/. Trigger with conf {"period": "YYYY-MM"} to
process one period (backfill by period), or leave it "all".
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag, get_current_context, task

from jobs import STAGES


def _run(stage: str) -> dict:
    from jobs.entry import run_stage

    ctx = get_current_context()
    period = (ctx["params"] or {}).get("period", "all")
    result = run_stage(stage, period=period, run_id=ctx["run_id"])
    return {"stage": result.stage, "counts": result.counts}


@dag(
    dag_id="phm_exchange",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    params={"period": "all"},
    default_args={"retries": int(os.environ.get("PHMX_TASK_RETRIES", "1")),
                  "retry_delay": pendulum.duration(minutes=2)},
    tags=["phmx"],
    doc_md=__doc__,
)
def phm_exchange() -> None:
    previous = None
    for stage in STAGES:
        current = task(task_id=stage)(_run)(stage)
        if previous is not None:
            previous >> current
        previous = current


phm_exchange()
