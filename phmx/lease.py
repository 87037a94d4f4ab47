"""An exclusive lease on a named resource (the ledger's single writer), on a local disk or on S3.

Why a lease and not a lock file: a process that dies while holding a plain lock file blocks every
later writer until someone deletes it by hand. A lease record names its holder (a random token, the
pid, the process's start time and the host) and an expiry; the holder renews it while it works. A
waiter takes the lease over when the holder is provably dead (same host, and that pid is gone or is
now another process) or when the lease has expired (any host; the holder stopped renewing).

Every change of the record is a compare-and-swap, so two waiters can never both take over:

* local roots: the record is a JSON file replaced atomically (write + rename) while an ``fcntl``
  lock is held on a guard file beside it for the few microseconds of the read-compare-write (the
  kernel drops that lock if the process dies, so the guard itself can never be left stale);
* S3: a conditional ``PutObject`` (``If-None-Match: *`` to create the record, ``If-Match: <ETag>``
  to replace it); the record is never deleted, a released lease is a record with ``state: free``.

A holder that finds its record replaced (it was taken over after it stalled past its lease) raises
:class:`LeaseLost` at its next :meth:`Lease.check`; the ledger checks right before committing.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from phmx import storage
from phmx.errors import LedgerError
from phmx.log import get_logger

log = get_logger(__name__)

FREE = "free"
HELD = "held"
_LEGACY = "legacy"  # holder token of a pre-lease lock file (only a pid)
_UNREADABLE = "unreadable"  # holder token of a record that cannot be parsed


class LeaseLost(LedgerError):
    """This process's lease was taken over (it stalled past the lease); it must not commit."""


class LeaseBusy(LedgerError):
    """Another live holder kept the lease for the whole wait."""


def _now() -> float:
    return time.time()


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not mistaken
    for the holder; None where /proc is not available."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start is not None:
        now_start = _proc_start(pid)
        if now_start is not None and now_start != start:
            return False  # the pid was reused by another process
    return True


@dataclass(frozen=True)
class Record:
    """The lease record as stored (JSON)."""

    state: str
    token: str = ""
    pid: int = 0
    pid_start: str | None = None
    host: str = ""
    purpose: str = ""
    acquired_at: float = 0.0
    expires_at: float = 0.0

    def to_json(self) -> bytes:
        return (json.dumps(self.__dict__, sort_keys=True) + "\n").encode("utf-8")

    @classmethod
    def parse(cls, data: bytes, mtime: float) -> Record:
        """A stored record; a legacy lock file holding only a pid is read as that pid's lease."""
        text = data.decode("utf-8", errors="replace").strip()
        if text.isdigit():
            return cls(HELD, token=_LEGACY, pid=int(text), host=socket.gethostname(), expires_at=mtime + 120)
        try:
            raw = json.loads(text)
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})
        except (ValueError, TypeError):
            # Unreadable: treat as held by nobody we can check, until it expires by its age.
            return cls(HELD, token=_UNREADABLE, expires_at=mtime + 120)

    def describe(self) -> str:
        until = datetime.fromtimestamp(self.expires_at, UTC).isoformat(timespec="seconds")
        return f"pid {self.pid} on host {self.host or '?'} ({self.purpose or 'writer'}), lease until {until}"

    def stale(self, now: float) -> str | None:
        """Why this record no longer protects anyone (free, expired, dead holder), or None if it does."""
        if self.state == FREE:
            return "free"
        if now > self.expires_at:
            return "expired"
        if self.host == socket.gethostname() and self.pid and not _pid_alive(self.pid, self.pid_start):
            return "holder process is gone"
        return None


class _Backend:
    """Read the record with a version tag; replace it only if the tag is unchanged."""

    def read(self) -> tuple[Record | None, Any]:
        raise NotImplementedError

    def swap(self, tag: Any, record: Record) -> bool:
        raise NotImplementedError


class _LocalBackend(_Backend):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.guard = path.with_name(path.name + ".guard")

    def _read_unlocked(self) -> tuple[Record | None, Any]:
        try:
            st = self.path.stat()
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None, None
        return Record.parse(data, st.st_mtime), (st.st_ino, st.st_mtime_ns, data)

    def read(self) -> tuple[Record | None, Any]:
        return self._read_unlocked()

    def swap(self, tag: Any, record: Record) -> bool:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.guard, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _, current = self._read_unlocked()
            if current != tag:
                return False
            tmp = self.path.with_name(f"{self.path.name}.{uuid.uuid4().hex[:8]}.tmp")
            fdw = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                os.write(fdw, record.to_json())
                os.fsync(fdw)
            finally:
                os.close(fdw)
            os.replace(tmp, self.path)
            return True
        finally:
            os.close(fd)  # closing drops the flock


class _S3Backend(_Backend):
    def __init__(self, uri: str) -> None:
        self.bucket, self.key = storage.split_s3(uri)

    def read(self) -> tuple[Record | None, Any]:
        client = storage.s3_client()
        try:
            obj = client.get_object(Bucket=self.bucket, Key=self.key)
        except client.exceptions.NoSuchKey:
            return None, None
        mtime = obj["LastModified"].timestamp()
        return Record.parse(obj["Body"].read(), mtime), obj["ETag"]

    def swap(self, tag: Any, record: Record) -> bool:
        client = storage.s3_client()
        client_error = client.exceptions.ClientError  # botocore's, without importing botocore here
        cond = {"IfMatch": tag} if tag is not None else {"IfNoneMatch": "*"}
        extra: dict[str, str] = {}
        from phmx import settings as settings_mod

        kms = settings_mod.load().ledger_kms_key_id
        if kms:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms}
        try:
            client.put_object(Bucket=self.bucket, Key=self.key, Body=record.to_json(),
                              ContentType="application/json", **cond, **extra)
        except client_error as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey") or status in (409, 412):
                return False
            raise
        return True


def backend_for(uri: str) -> _Backend:
    return _S3Backend(uri) if storage.is_s3(uri) else _LocalBackend(Path(uri))


class Lease:
    """Hold the lease at ``uri`` (a file or an S3 object) while working; renewed in the background.

    Use :func:`held` (a context manager) rather than this class directly.
    """

    def __init__(self, uri: str, *, purpose: str, seconds: float) -> None:
        self.uri = uri
        self.purpose = purpose
        self.seconds = seconds
        self.backend = backend_for(uri)
        self.token = uuid.uuid4().hex
        self._tag: Any = None
        self._lost = False
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    def _record(self, state: str = HELD) -> Record:
        now = _now()
        pid = os.getpid()
        return Record(state, token=self.token if state == HELD else "", pid=pid if state == HELD else 0,
                      pid_start=_proc_start(pid) if state == HELD else None,
                      host=socket.gethostname() if state == HELD else "", purpose=self.purpose,
                      acquired_at=now, expires_at=now + self.seconds if state == HELD else 0.0)

    def acquire(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pause = 0.02
        while True:
            rec, tag = self.backend.read()
            why = "absent" if rec is None else rec.stale(_now())
            if why is not None:
                if rec is not None and why != "free":
                    log.warning("taking over the %s lease: %s (%s)", self.purpose, why, rec.describe())
                fresh = self._record()
                if self.backend.swap(tag, fresh):
                    rec_now, self._tag = self.backend.read()
                    if rec_now is not None and rec_now.token == self.token:
                        self._start_renewal()
                        return
            if time.monotonic() > deadline:
                holder = rec.describe() if rec is not None else "unknown"
                raise LeaseBusy(f"the {self.purpose} is held by another writer: {holder}",
                                hint="wait for it to finish; a dead holder or an expired lease is taken over "
                                     "automatically")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _start_renewal(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.purpose}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - a failed renewal shows up at check()
                log.warning("renewing the %s lease failed: %s", self.purpose, type(exc).__name__)

    def renew(self) -> None:
        with self._mutex:
            if self._lost:
                return
            if not self.backend.swap(self._tag, self._record()):
                self._lost = True
                return
            _, self._tag = self.backend.read()

    def check(self) -> None:
        """Raise :class:`LeaseLost` unless this process still holds the lease (call before committing)."""
        rec, _ = self.backend.read()
        if self._lost or rec is None or rec.token != self.token:
            self._lost = True
            raise LeaseLost(f"this process lost the {self.purpose} lease (it was taken over after it expired)",
                            hint="nothing was committed by this process; re-run")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._mutex:
            if self._lost:
                return
            rec, tag = self.backend.read()
            if rec is not None and rec.token == self.token and not self.backend.swap(tag, self._record(FREE)):
                log.warning("could not release the %s lease (changed meanwhile)", self.purpose)


@contextmanager
def held(uri: str, *, purpose: str, seconds: float | None = None, timeout_s: float = 120.0) -> Any:
    """Hold the lease at ``uri`` for the body of a ``with`` block; yields the :class:`Lease`."""
    if seconds is None:
        from phmx import settings as settings_mod

        seconds = settings_mod.load().lease_seconds
    lease = Lease(uri, purpose=purpose, seconds=seconds)
    lease.acquire(timeout_s)
    try:
        yield lease
    finally:
        lease.release()
