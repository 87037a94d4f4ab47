"""The statewide exchange: one task per stage, ingest -> conform -> identity -> consent -> ... -> publish.

Thin on purpose: each task runs a stage's job entry point with the run's period and run id, on
the runner ``PHMX_RUNNER`` selects (``phmx.runners``: in this Airflow worker, spark-submit or EMR
Serverless) without changing the DAG's structure; all logic lives in jobs/. Trigger with conf
{"period": "YYYY-MM"} to process one period, or leave it "all".

Month by month: with ``PHMX_SCHEDULE=@monthly`` the DAG runs once per calendar month and each
scheduled or backfill run processes the month of its data interval (``phmx.runners.run_period``);
``PHMX_CATCHUP=1`` runs every missed month since the start date in order (one run at a time), and
``airflow backfill create --dag-id phm_exchange --from-date 2025-01-01 --to-date 2025-03-31``
re-runs a range of months. Unset (the default), runs are triggered by hand or by the portal.

Publishing fans out per recipient (dynamic task mapping, ``.expand``), so one failing recipient
does not block the others:

* ``publish_prepare`` (runner): consent, counting and rollups for every LHJ at once;
* ``publish_recipients`` (this worker, no engine): the recipient ids the prepare step found;
* ``publish_recipient`` (runner, mapped over those ids): build, sign, ledger and deliver one
  recipient's package, retried on its own;
* ``publish_report`` (this worker; runs when all are done, whatever their state): what was
  published, from ``gold.feed_log``; fails the run naming any recipient that got no feed.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, TriggerRule, dag, get_current_context, task

from jobs import STAGES
from phmx import settings
from phmx.runners import mapped_stage_task, stage_task

PUBLISH = "publish"
# Recipients published at the same time. Their ledger appends are serialised by the ledger writer's
# lease (phmx.lease: a lock-guarded record on local roots, conditional writes on S3), so any value is safe.
PUBLISH_PARALLEL = settings.load().publish_parallel
# A schedule gives each run a real data interval (the calendar month for @monthly), not Airflow 3's
# default trigger timetable whose interval is one instant at the trigger time; the run's period is
# the month its interval starts in (phmx.runners.run_period).
SCHEDULE = settings.load().schedule
TIMETABLE = CronDataIntervalTimetable(SCHEDULE, timezone="UTC") if SCHEDULE else None


def _publish_recipients() -> list[str]:
    """The recipient ids of this run (read from the prepare step's summary; no engine)."""
    from jobs.publish import run_recipients

    return run_recipients(get_current_context()["run_id"])


def _publish_report() -> dict:
    """What this run published; raises naming the recipients that got no feed."""
    from jobs.publish import report

    return report(get_current_context()["run_id"])


def _publish_tasks() -> tuple:
    prepare = stage_task(PUBLISH, task_id="publish_prepare", options={"step": "prepare"})
    ids = task(task_id="publish_recipients")(_publish_recipients)()
    each = mapped_stage_task(PUBLISH, option="recipient", values=ids, task_id="publish_recipient",
                             max_active_tis_per_dagrun=PUBLISH_PARALLEL)
    done = task(task_id="publish_report", trigger_rule=TriggerRule.ALL_DONE)(_publish_report)()
    prepare >> ids
    each >> done
    return prepare, done


@dag(
    dag_id="phm_exchange",
    schedule=TIMETABLE,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=settings.load().catchup,
    max_active_runs=1,
    params={"period": "all"},
    default_args={"retries": settings.load().task_retries,
                  "retry_delay": pendulum.duration(minutes=2)},
    tags=["phmx"],
    doc_md=__doc__,
)
def phm_exchange() -> None:
    previous = None
    for stage in STAGES:
        first, last = _publish_tasks() if stage == PUBLISH else (stage_task(stage),) * 2
        if previous is not None:
            previous >> first
        previous = last


phm_exchange()
