"""``benchmarks.engines.driver_counts``: the stage counts of a DAG run, read from the lines the
spark-submit hook logs (the driver's ``StageResult.to_json``), which the cluster lane compares with
the embedded engine's (tests/engines/test_same_results.py with ``PHMX_ENGINES_CLASSIC=dag``)."""

from __future__ import annotations

from benchmarks.engines import driver_counts
from phmx.context import StageResult

HOOK = "[airflow.task.hooks.airflow.providers.apache.spark.hooks.spark_submit.SparkSubmitHook] loc=spark_submit.py:965"


def _logged(result: StageResult) -> str:
    return f"2026-01-01T00:00:00.000000Z [info     ] {result.to_json()} {HOOK}"


def test_one_line_per_stage_gives_its_counts_and_a_mapped_stage_is_left_out():
    log = "\n".join([
        "2026-01-01T00:00:00.000000Z [info     ] Spark-Submit cmd: spark-submit --master local[2] ...",
        _logged(StageResult("ingest", {"rows_accepted": 1200, "files": 4}, {"seconds": 3.5})),
        _logged(StageResult("identity", {"members": 150})),
        _logged(StageResult("publish", {"recipients": 5})),  # publish_prepare
        _logged(StageResult("publish", {"files": 3})),  # one recipient's instance
        '2026-01-01T00:00:00.000000Z [info     ] {"counts": {"cut off',  # a line the hook broke
    ])
    assert driver_counts(log) == {"ingest": {"rows_accepted": 1200, "files": 4}, "identity": {"members": 150}}
    assert driver_counts("") == {}
