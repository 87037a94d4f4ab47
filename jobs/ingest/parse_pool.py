"""Parse landed files in worker processes while the ingest stage writes bronze.

Why: parsing and validating a file (:func:`jobs.ingest.process.process_file`) is pure Python and
Arrow, one core's work, and most of ingest's time at scale (a 1,000,000-member month is 25 million
rows; FHIR NDJSON is walked resource by resource). The stage's loop stays one sequential loop in
landing order: it judges duplicates, supersession, acknowledgments, bronze writes and the ledger
exactly as before. Only the verdict of each file, which depends on nothing but the file, its
companions and the specs, is computed ahead of the loop in ``workers`` processes, a few files at
a time (:meth:`FileParser.ahead`), so memory stays bounded by the files in flight.

A file whose bytes turn out to be a duplicate of an earlier one is parsed for nothing and dropped
(rare: the same bytes sent twice in one run). A Bulk Data export's files are parsed in this
process (each reads the whole export folder). If a worker dies (killed, out of memory), the pool
is given up and every file not yet done is parsed here: a broken pool never rejects a file.

A worker writes the file's accepted rows as Parquet parts into the stage's private scratch folder
(``stage_dir``, under ``<lakehouse>/work``: 0700/0600, removed when the stage ends, pass or fail,
and by the next ingest if the stage's process died) as it validates them, chunk by chunk, and
returns their paths: the bronze write moves them in as they are. It used to send the rows back
pickled, and a pickled slice of an Arrow array carries its parent's whole buffers: one 360 MB
immunization history file took a worker to 10.9 GB.

Workers start with ``spawn`` (a fork of a process holding the engine's gRPC channel and threads is
unsafe) and take a few seconds to import the parsers, so small runs (new files under
:data:`POOL_MIN_BYTES`) parse in this process. ``PHMX_INGEST_WORKERS`` sets the number
(1 = never).
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.ingest import bronze
from jobs.ingest.process import FileOutcome, process_file
from phmx import settings, storage
from phmx.log import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from concurrent.futures import Future, ProcessPoolExecutor
    from datetime import datetime

    import pyarrow as pa

    from jobs.ingest.bulk import Export
    from jobs.ingest.landing import LandedFile
    from phmx.feedspec import FeedSpec

log = get_logger(__name__)

# New files' bytes below which a run parses in this process (spawning workers costs more than it saves).
POOL_MIN_BYTES = 200 * 2**20
# Bytes of files parsed ahead of the loop at most (beyond one file per worker): bounds the memory of a run.
AHEAD_BYTES = 512 * 2**20


@dataclass
class Submission:
    """One landed file to ingest: its bytes, digest and submission id, as the stage's loop needs them."""

    lf: LandedFile
    routed: str
    data: bytes
    sha: str
    sha_key: str
    sid: str
    export: Export | None = None
    companions: dict[str, bytes] | None = None
    future: Future[FileOutcome] | None = None


def ingest_workers(new_bytes: int, min_bytes: int | None = None) -> int:
    """Worker processes for a run whose new files hold ``new_bytes`` (1 = parse in this process)."""
    import multiprocessing

    n = settings.load().ingest_workers
    n = n if n > 0 else min(4, os.cpu_count() or 1)
    floor = POOL_MIN_BYTES if min_bytes is None else min_bytes
    if n <= 1 or new_bytes < floor or multiprocessing.current_process().daemon:
        return 1
    return n


_SPECS: dict[str, FeedSpec] = {}


def _init_worker(specs: dict[str, FeedSpec]) -> None:
    global _SPECS  # noqa: PLW0603 - the worker's specs, sent once instead of with every file
    _SPECS = specs


class StagedParts:
    """A file's accepted rows written as Parquet parts of at most :data:`jobs.ingest.bronze.STAGE_ROWS`
    rows into ``folder`` (the stage's private scratch), named by a random id (no PHI in a name)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.prefix = uuid.uuid4().hex
        self.paths: list[str] = []

    def add(self, table: pa.Table) -> None:
        for off in range(0, table.num_rows, bronze.STAGE_ROWS):
            path = storage.join(self.folder, f"{self.prefix}-{len(self.paths):05d}.parquet")
            bronze.write_part(path, table.slice(off, bronze.STAGE_ROWS))
            self.paths.append(path)

    def clear(self) -> None:
        """The file was rejected after some rows were staged: none of them count."""
        for path in self.paths:
            storage.delete(path)
        self.paths = []


def _process_in_worker(lf: LandedFile, data: bytes, received_at: datetime, sha: str,
                       companions: dict[str, bytes] | None, stage_dir: str | None = None) -> FileOutcome:
    if stage_dir is None:
        return process_file(lf, data, _SPECS, received_at=received_at, sha256=sha, companions=companions)
    parts = StagedParts(stage_dir)
    try:
        out = process_file(lf, data, _SPECS, received_at=received_at, sha256=sha, companions=companions, sink=parts)
    except BaseException:
        parts.clear()
        raise
    out.accepted_parts = parts.paths
    return out


class FileParser:
    """Each submission's :class:`FileOutcome`, computed ahead in worker processes or here."""

    def __init__(self, specs: dict[str, FeedSpec], received_at: datetime, *, workers: int,
                 ahead_bytes: int = AHEAD_BYTES, stage_dir: str | None = None) -> None:
        """``stage_dir``: the private scratch folder workers stage accepted rows in (None: they
        send the rows back, as a file parsed in this process keeps them)."""
        self.stage_dir = stage_dir
        self.specs = specs
        self.received_at = received_at
        self.workers = workers
        self.ahead_bytes = ahead_bytes
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> FileParser:
        if self.workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker, initargs=(self.specs,))
            log.info("ingest: parsing files in %d worker processes", self.workers)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def ahead(self, items: Iterable[Submission]) -> Iterator[Submission]:
        """``items`` in their order, each handed to a worker a few files before the loop reaches it."""
        queue: deque[Submission] = deque()
        queued = 0
        for item in items:
            if self._pool is not None and item.export is None:
                try:
                    item.future = self._pool.submit(_process_in_worker, item.lf, item.data, self.received_at,
                                                    item.sha, item.companions, self.stage_dir)
                except RuntimeError:  # a broken pool refuses new work: parse here
                    self._give_up()
            queue.append(item)
            queued += len(item.data)
            while queue and (len(queue) > max(1, self.workers) or queued > self.ahead_bytes):
                first = queue.popleft()
                queued -= len(first.data)
                yield first
        while queue:
            yield queue.popleft()

    def outcome(self, item: Submission) -> FileOutcome:
        """The file's verdict: the worker's, or parsed here (an export's file, no pool, a broken pool).
        An error parsing the file is raised as it would be here."""
        from concurrent.futures import CancelledError
        from concurrent.futures.process import BrokenProcessPool

        if item.future is not None:
            future, item.future = item.future, None
            try:
                return future.result()
            except (BrokenProcessPool, CancelledError):  # cancelled: by _give_up, after another file's worker died
                self._give_up()
        if item.export is not None:
            from jobs.ingest import bulk

            return bulk.process_export_file(item.lf, item.export, self.specs, received_at=self.received_at,
                                            sha256=item.sha)
        return process_file(item.lf, item.data, self.specs, received_at=self.received_at, sha256=item.sha,
                            companions=item.companions)

    def drop(self, item: Submission) -> None:
        """A submission whose verdict is not needed (a duplicate): cancel or ignore its parse."""
        if item.future is not None:
            item.future.cancel()
            item.future = None

    def _give_up(self) -> None:
        if self._pool is not None:
            log.warning("ingest: a worker process died; the remaining files are parsed in the stage's process")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
