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


def test_a_stage_run_starts_one_pool_for_all_its_pooled_steps():
    """Inside shared_workers every pooled step gets the same pool, so its workers (spawned, each
    importing the publish modules afresh) start once per run; outside it each step has its own,
    and the shared pool is shut down when the block ends."""
    import os

    import pytest

    from jobs.publish.lhj_tables import shared_workers, worker_pool

    with shared_workers(2):
        with worker_pool(2) as first:
            pids = {f.result() for f in [first.submit(os.getpid) for _ in range(8)]}
        with worker_pool(2) as second:
            pids |= {f.result() for f in [second.submit(os.getpid) for _ in range(8)]}
        with shared_workers(2), worker_pool(2) as nested:
            assert nested is first
    assert second is first and len(pids) <= 2 and os.getpid() not in pids
    with pytest.raises(RuntimeError):
        first.submit(os.getpid)  # shut down with the block
    with worker_pool(2) as a, worker_pool(2) as b:
        assert a is not b
        assert a.submit(os.getpid).result() != os.getpid()


def test_a_step_after_a_worker_died_gets_a_fresh_pool():
    """A worker killed in one step (out of memory, say) breaks the shared pool: that step's tasks
    fail, and the next step runs in a new pool, as it did when each step had its own."""
    import os
    from concurrent.futures.process import BrokenProcessPool

    import pytest

    from jobs.publish.lhj_tables import shared_workers, worker_pool

    with shared_workers(2):
        with worker_pool(2) as first:
            with pytest.raises(BrokenProcessPool):
                first.submit(os._exit, 1).result()
        with worker_pool(2) as second:
            assert second is not first
            assert second.submit(os.getpid).result() != os.getpid()


def test_a_package_worker_imports_the_package_modules_but_not_the_stage():
    """A spawned worker that builds packages imports jobs.publish.lhj_feed; the package's
    re-exported names (phmx.lazy) load the stage only when one of them is used."""
    import subprocess
    import sys

    probe = ("import sys, jobs.publish.lhj_feed; before = 'jobs.publish.stage' in sys.modules; "
             "from jobs.publish import run; import jobs.publish as p\n"
             "try:\n    p.no_such_name\nexcept AttributeError:\n    missing = True\nelse:\n    missing = False\n"
             "print(before, run.__module__, missing)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "jobs.publish.stage", "True"]
