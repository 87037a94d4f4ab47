"""Publishing may run inside a daemonic process (some executors run tasks in one), which may not
start worker processes: the LHJ work then runs in that process instead of failing."""

from __future__ import annotations

import multiprocessing


def _probe(queue) -> None:  # noqa: ANN001 - a multiprocessing queue
    from jobs.publish.lhj_tables import may_start_workers

    queue.put(may_start_workers())


def test_workers_only_where_the_process_may_start_them():
    from jobs.publish.lhj_tables import may_start_workers

    assert may_start_workers()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_probe, args=(queue,), daemon=True)
    child.start()
    child.join(timeout=120)
    assert queue.get(timeout=10) is False
