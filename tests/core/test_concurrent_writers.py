"""Two writers committing to one Delta table at once lose no commit: on S3 and on a local directory.

The embedded engine commits with put-if-absent on the commit log (S3 conditional writes,
``If-None-Match: *``; an exclusive create on a local disk). Two blind appends that race for the
same version both land: the loser retries at the next version. A MERGE that loses the race fails
with an error instead of committing over a table it did not read; the caller re-runs it, as an
Airflow retry would. Each test counts every row, checks the rows every MERGE updated (a lost
update would leave an older value), and reads the commit log: one commit per successful write,
versions without gaps.

Writers run as threads sharing this process's engine, and as processes with an engine each (two
Airflow tasks on one worker), mixing blind appends and MERGEs. Only delta-rs's history is read
here on local tables: against the in-process moto server it deadlocks (``DeltaTable.history``
holds the GIL while it waits for the server thread), so on S3 the commit files are read directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROWS = 40  # rows per append or per MERGE insert
BASE = 200  # rows of the table before the writers start (ids 0..199)
MERGE_ATTEMPTS = 12


def _probe():  # noqa: ANN202 - a Table (imported lazily so the subprocess imports little)
    from phmx.tables import Table

    return Table("silver", "concurrency_probe",
                 (("id", "bigint"), ("writer", "string"), ("batch", "int"), ("a", "int")), keys=("id",))


def _first_id(writer: str, batch: int) -> int:
    """Disjoint id ranges: one per (writer, batch), all above the base rows."""
    return int.from_bytes(writer.encode(), "big") * 10_000 + 100 * batch


def append_batches(spark: Any, writer: str, n: int) -> list[dict[str, Any]]:
    """``n`` blind appends of ROWS new rows each, through phmx.lakehouse (as stages write)."""
    from phmx import lakehouse

    done = []
    for i in range(n):
        df = spark.range(ROWS).selectExpr(f"id + {_first_id(writer, i)} AS id", f"'{writer}' AS writer",
                                          f"{i} AS batch", "0 AS a")
        lakehouse.append(df, _probe())
        done.append({"writer": writer, "batch": i, "op": "append", "attempts": 1})
    return done


def merge_batches(spark: Any, writer: str, n: int) -> list[dict[str, Any]]:
    """``n`` MERGEs: each inserts ROWS new rows and adds 1 to ``a`` on every base row.

    The increment happens inside the MERGE (``t.a + 1``), so after k committed MERGEs every base
    row holds k, whatever their order: a lost update shows as a smaller number. A MERGE that
    fails (lost the commit race) is re-run, up to MERGE_ATTEMPTS times.
    """
    import uuid

    from phmx import lakehouse
    from phmx.errors import EngineError

    path = lakehouse.table_path(_probe())
    done = []
    for i in range(n):
        new = spark.range(ROWS).selectExpr(f"id + {_first_id(writer, i)} AS id", f"'{writer}' AS writer",
                                           f"{i} AS batch", "0 AS a")
        view = f"src_{uuid.uuid4().hex[:12]}"
        new.unionByName(spark.range(BASE).selectExpr("id", "'base' AS writer", "-1 AS batch", "0 AS a")
                        ).createOrReplaceTempView(view)
        sql = (f"MERGE INTO delta.`{path}` t USING {view} s ON t.id = s.id "  # noqa: S608 - test names only
               "WHEN MATCHED THEN UPDATE SET t.a = t.a + 1 "
               "WHEN NOT MATCHED THEN INSERT (id, writer, batch, a) VALUES (s.id, s.writer, s.batch, s.a)")
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            try:
                lakehouse.run_sql(spark, sql, table=_probe().fqn).collect()
                done.append({"writer": writer, "batch": i, "op": "merge", "attempts": attempt})
                break
            except EngineError:
                time.sleep(0.1 * attempt)
        else:
            raise AssertionError(f"merge {writer}/{i} never committed in {MERGE_ATTEMPTS} attempts")
    return done


def _seed(spark: Any) -> None:
    from phmx import lakehouse

    lakehouse.append(spark.range(BASE).selectExpr("id", "'base' AS writer", "-1 AS batch", "0 AS a"), _probe())


def _commit_log(table_path: str) -> list[dict[str, Any]]:
    """Every commit file of the table: its version and its commitInfo operation, in order."""
    from phmx import storage

    commits = []
    for f in storage.list_files(storage.join(table_path, "_delta_log")):
        name = f.relpath.rsplit("/", 1)[-1]
        if not (name.endswith(".json") and name[:-5].isdigit()):
            continue
        actions = [json.loads(line) for line in storage.read_bytes(f.uri).decode().splitlines() if line.strip()]
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        adds = sum(1 for a in actions if "add" in a)
        commits.append({"version": int(name[:-5]), "operation": info.get("operation"), "adds": adds})
    return sorted(commits, key=lambda c: c["version"])


def _check(spark: Any, done: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every committed write is in the table exactly once, and in the log as one commit."""
    from phmx import lakehouse

    df = lakehouse.read(spark, _probe())
    total = df.count()
    assert total == BASE + ROWS * len(done)
    assert df.select("id").distinct().count() == total  # no row written twice
    groups = {(r.writer, r.batch): r["count"] for r in df.where("writer <> 'base'").groupBy("writer", "batch").count().collect()}
    assert groups == {(d["writer"], d["batch"]): ROWS for d in done}
    merges = sum(1 for d in done if d["op"] == "merge")
    base = df.where("writer = 'base'").groupBy("a").count().collect()
    assert [(r.a, r["count"]) for r in base] == [(merges, BASE)]  # every MERGE's update, on every row
    log = _commit_log(lakehouse.table_path(_probe()))
    assert [c["version"] for c in log] == list(range(len(log)))  # no gap, no overwritten version
    assert len(log) == 1 + len(done)  # the seed, then one commit per successful write
    ops = [c["operation"] for c in log[1:]]
    assert ops.count("MERGE") == sum(1 for d in done if d["op"] == "merge")
    assert all(op in ("WRITE", "MERGE") for op in ops), ops
    return log


def _threads(spark: Any, jobs: list[tuple[Any, tuple]]) -> list[dict[str, Any]]:
    results: list[list[dict[str, Any]]] = [[] for _ in jobs]
    errors: list[BaseException] = []

    def run(k: int, fn: Any, args: tuple) -> None:
        try:
            results[k] = fn(spark, *args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k, fn, args)) for k, (fn, args) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return [d for r in results for d in r]


WORKER = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from test_concurrent_writers import append_batches, merge_batches
from phmx.engine import get_spark
spark = get_spark()
done = []
for kind, writer, n in json.loads(sys.argv[2]):
    done += append_batches(spark, writer, n) if kind == "append" else merge_batches(spark, writer, n)
print("DONE " + json.dumps(done))
"""


def _processes(jobs: list[list[tuple[str, str, int]]]) -> list[dict[str, Any]]:
    """Each list of writes in its own Python process with its own embedded engine, all started together."""
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "PHMX_ENGINE")}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(HERE), json.dumps(writes)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for writes in jobs]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        done += json.loads(next(x for x in out.splitlines() if x.startswith("DONE "))[5:])
    return done


@pytest.fixture
def s3_lakehouse(s3_bucket: str, phmx_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    root = f"s3://{s3_bucket}/lakehouse"
    monkeypatch.setenv("PHMX_LAKEHOUSE_ROOT", root)
    return root


def test_threads_appending_and_merging_into_one_s3_table(spark, s3_lakehouse):
    _seed(spark)
    done = _threads(spark, [(append_batches, ("a1", 4)), (append_batches, ("a2", 4)),
                            (merge_batches, ("m0", 2)), (merge_batches, ("m1", 2))])
    log = _check(spark, done)
    assert log[-1]["version"] == 12


def test_two_processes_appending_and_merging_into_one_s3_table(spark, s3_lakehouse):
    _seed(spark)
    done = _processes([[("merge", "q0", 2), ("append", "p1", 3)],
                       [("append", "p2", 3), ("merge", "q1", 2)]])
    _check(spark, done)


def test_threads_and_processes_on_a_local_directory_table(spark, phmx_home):
    from phmx import lakehouse

    assert not lakehouse.table_path(_probe()).startswith("s3://")
    _seed(spark)
    done = _threads(spark, [(append_batches, ("l1", 3)), (merge_batches, ("n0", 2)), (merge_batches, ("n1", 1))])
    done += _processes([[("append", "l2", 3), ("merge", "r0", 1)], [("append", "l3", 3), ("merge", "r1", 1)]])
    _check(spark, done)
    # delta-rs (history, restore) reads the same log: one entry per commit, newest first
    history = lakehouse.history(_probe())
    assert [h["version"] for h in history] == list(range(len(done), -1, -1))
