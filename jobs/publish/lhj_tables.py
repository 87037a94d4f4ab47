"""Every LHJ's suppressed measure table and the statewide rows, decided together before packaging.

Why together: every LHJ package also carries statewide rows (the report's county-vs-state
comparison), the state total is the sum of the LHJ totals, and all 61 feeds may end up public in
community health assessments. "State minus the other LHJs" would give back a total an LHJ's own
feed suppressed, so a statewide count is shown only where every LHJ publishes that count
(:func:`jobs.publish.lhj_feed.state_table`). That needs every LHJ's *published* table first.

So the publish stage runs in three steps: suppress every LHJ (CPU-bound Python, in worker
processes), derive the statewide rows from the results, then package. The prepare step (Airflow's
``publish_prepare``) does the first two once and stores them in the run's work folder; each
recipient's mapped task reads back its own table and the statewide rows, so no task re-suppresses
and none can publish a table other than the one the statewide rule saw.

An LHJ whose suppression fails (an error, not an audit refusal: suppression withholds measures
rather than refusing) is counted in the statewide rule as publishing nothing, so the statewide
rows cannot reveal it; its own package then fails and the others are published.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import pandas as pd

from jobs.publish import lhj_feed, lhj_indicators, prepare
from phmx import storage
from phmx.errors import ConfigError, PhmxError
from phmx.log import get_logger
from phmx.recipients import lhj_name

if TYPE_CHECKING:
    from concurrent.futures import Executor, ProcessPoolExecutor

    from pyspark.sql import SparkSession

log = get_logger(__name__)

STATE_FILE = "state_published.parquet"
INDICATORS_FILE = "indicators_published.parquet"
METHODS_FILE = "lhj_tables.json"


@dataclass
class Decided:
    """The published measure table and suppression method of each LHJ, and the statewide rows."""

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    methods: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # lhj -> error (no values)
    state: pd.DataFrame | None = None
    #: every LHJ's and the state's published indicator rows (jobs.publish.lhj_indicators), or None
    indicators: pd.DataFrame | None = None

    def indicators_of(self, lhj: str) -> pd.DataFrame | None:
        if self.indicators is None:
            return None
        return lhj_indicators.for_lhj(self.indicators, lhj)


def _withheld(cells: pd.DataFrame) -> pd.DataFrame:
    """An LHJ that publishes nothing, as the statewide rule must see it (every count empty)."""
    out = cells.copy()
    out["numerator"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["denominator"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out


def may_start_workers() -> bool:
    """False inside a daemonic process (some executors run tasks in one), which may not start
    children: the work then runs one LHJ after another in this process."""
    import multiprocessing

    return not multiprocessing.current_process().daemon


def pool_size() -> int:
    """Worker processes for publish's pooled steps (each LHJ's suppression, its indicators'
    suppression and its package): ``PHMX_PUBLISH_WORKERS``, else the cores up to four; 1 runs
    them in this process."""
    import os

    from phmx import settings

    n = settings.load().publish_workers
    return n if n > 0 else min(4, os.cpu_count() or 1)


#: The pool :func:`shared_workers` keeps open for a stage run (at most one).
_shared: list[ProcessPoolExecutor] = []


def _new_pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


@contextmanager
def shared_workers(workers: int) -> Iterator[None]:
    """One pool of ``workers`` spawned processes for every pooled step inside this block (each
    LHJ's suppression, each LHJ's indicator suppression, each LHJ's package), shut down on exit.

    Why: a spawned worker imports pandas and the publish modules afresh (about 1.5 CPU seconds
    each); when each step started its own pool, a run with a pool size of two paid that six
    times. The workers start on the first task (a run with fewer LHJs than a step's pool minimum
    starts none). Nested use keeps the outer pool."""
    if _shared or workers <= 1:
        yield
        return
    _shared.append(_new_pool(workers))
    try:
        yield
    finally:
        _shared.pop().shutdown()


@contextmanager
def worker_pool(workers: int) -> Iterator[Executor]:
    """The pool :func:`shared_workers` holds open, else a pool of ``workers`` spawned processes
    for this block only. A shared pool that a dead worker broke in an earlier step is replaced,
    so the next step runs as it would have in a pool of its own (the earlier step's tasks failed,
    as before)."""
    if _shared:
        if getattr(_shared[-1], "_broken", False):
            _shared[-1].shutdown(wait=False, cancel_futures=True)
            _shared[-1] = _new_pool(workers)
        yield _shared[-1]
        return
    with _new_pool(workers) as pool:
        yield pool


def decide(spark: SparkSession, prepared: prepare.Prepared, *, workers: int = 1, pool_min: int = 8,
           store: bool = True) -> Decided:
    """Suppress every LHJ of ``prepared``, derive the statewide rows, and (``store``) save both."""
    out = Decided()
    frames: dict[str, pd.DataFrame] = {}
    state = pd.DataFrame()
    for r in prepared.recipients:
        lhj = lhj_name(r)
        mine, state_cells, _ = prepare.lhj_frames(spark, prepared, lhj)
        frames[lhj] = mine
        if len(state_cells):
            state = state_cells
    ci = prepared.ci_method
    if workers > 1 and len(frames) >= pool_min and may_start_workers():
        with worker_pool(workers) as pool:
            futures = {lhj: pool.submit(lhj_feed.suppress_and_finalize, cells, ci) for lhj, cells in frames.items()}
            outcomes = {lhj: _outcome(fut.result) for lhj, fut in futures.items()}
    else:
        outcomes = {lhj: _outcome(partial(lhj_feed.suppress_and_finalize, cells, ci)) for lhj, cells in frames.items()}
    for lhj, (result, error) in outcomes.items():
        if result is not None:
            out.tables[lhj], out.methods[lhj] = result
        else:
            out.failed[lhj] = str(error)
            log.error("suppression of %s failed: %s; it publishes nothing this run", lhj, error)
    seen = {**out.tables, **{lhj: _withheld(frames[lhj]) for lhj in out.failed}}
    out.state = lhj_feed.state_table(state, ci, seen)
    out.indicators = indicator_table(spark, prepared.period)
    if store:
        save(prepared.run_id, out)
    shown = int(out.state["numerator"].notna().sum() + out.state["denominator"].notna().sum()) if len(out.state) else 0
    log.info("decided %d LHJ tables (%d failed); %d of %d statewide counts shown", len(out.tables), len(out.failed),
             shown, 2 * len(out.state))
    return out


def _outcome(call: Callable[[], tuple[pd.DataFrame, str]]) -> tuple[tuple[pd.DataFrame, str] | None, str | None]:
    """(result, None), or (None, the reason) when one LHJ's suppression fails: the others go on."""
    try:
        return call(), None
    except Exception as exc:  # noqa: BLE001 - one LHJ's failure must not stop the others
        return None, str(exc) if isinstance(exc, PhmxError) else type(exc).__name__


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _frame(data: bytes) -> pd.DataFrame:
    df = pd.read_parquet(io.BytesIO(data))
    for c in ("numerator", "denominator"):
        if c in df.columns:
            df[c] = df[c].astype("Int64")
    if "annotation" in df.columns:
        df["annotation"] = pd.Series([None if pd.isna(v) else str(v) for v in df["annotation"]], index=df.index,
                                     dtype="object")
    return df


def _lhj_file(lhj: str) -> str:
    return "lhj_" + "".join(ch if ch.isalnum() else "_" for ch in lhj.lower()) + ".parquet"


def save(run_id: str, decided: Decided) -> None:
    """Write the decided tables, the statewide rows and an index to the run's work folder."""
    for lhj, table in decided.tables.items():
        storage.write_bytes(prepare.work_uri(run_id, "lhj_tables", _lhj_file(lhj)), _parquet(table))
    if decided.state is not None:
        storage.write_bytes(prepare.work_uri(run_id, STATE_FILE), _parquet(decided.state))
    if decided.indicators is not None:
        storage.write_bytes(prepare.work_uri(run_id, INDICATORS_FILE), lhj_indicators.parquet_bytes(decided.indicators))
    index = {"methods": decided.methods, "failed": decided.failed,
             "files": {lhj: _lhj_file(lhj) for lhj in decided.tables}}
    storage.write_text(prepare.work_uri(run_id, METHODS_FILE), json.dumps(index, indent=1, sort_keys=True),
                       content_type="application/json")


def load_one(run_id: str, lhj: str) -> tuple[pd.DataFrame, str, pd.DataFrame]:
    """(this LHJ's published measure table, its method, the statewide rows) as the prepare step
    stored them. Raises ConfigError when the prepare step did not run, PhmxError when it failed
    for this LHJ."""
    uri = prepare.work_uri(run_id, METHODS_FILE)
    if not storage.exists(uri):
        raise ConfigError(f"no decided LHJ tables for run {run_id}", hint="run the publish prepare step first")
    index = json.loads(storage.read_bytes(uri))
    if lhj in index.get("failed", {}):
        raise PhmxError(f"suppression of {lhj} failed in the prepare step: {index['failed'][lhj]}",
                        hint="see the prepare task's log; re-run publish (a new version is made)")
    if lhj not in index.get("files", {}):
        raise ConfigError(f"the prepare step of run {run_id} decided no table for {lhj}")
    table = _frame(storage.read_bytes(prepare.work_uri(run_id, "lhj_tables", index["files"][lhj])))
    state = _frame(storage.read_bytes(prepare.work_uri(run_id, STATE_FILE)))
    return table, index["methods"][lhj], state


def indicator_table(spark: SparkSession, period: str) -> pd.DataFrame | None:
    """Every LHJ's and the state's published indicators for the run's year (all years for a run
    of ``all``); None when the indicators stage has not run."""
    year = period[:4] if period[:4].isdigit() else None
    long = lhj_indicators.load_strata(spark, year)
    if long is None or long.empty:
        return None
    published = lhj_indicators.decide_strata(long)
    ok, figures = lhj_indicators.protected(published)
    if not ok:
        # Never publish a table the attacker's LP can still bound: the packages go out without
        # indicators this run (the measures and service counts are unaffected).
        log.error("indicators withheld from every LHJ package: the attacker audit over all LHJs and the state "
                  "still bounds %d hidden count(s) (%d below 11)", figures["failures"], figures["small_count_failures"])
        return None
    return published


def load_indicators(run_id: str, lhj: str) -> pd.DataFrame | None:
    """This LHJ's published indicator rows as the prepare step stored them (None if there were none)."""
    uri = prepare.work_uri(run_id, INDICATORS_FILE)
    if not storage.exists(uri):
        return None
    return lhj_indicators.for_lhj(_frame(storage.read_bytes(uri)), lhj)
