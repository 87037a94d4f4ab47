"""A ledger writer killed at each commit boundary, then a retry: nobody is locked out, nothing is
alarmed falsely, no orphan reaches a member's accounting. Also the lease itself (holder, host,
expiry; dead and expired holders taken over) on a local disk and on S3 (moto, conditional writes).

The kill is a fault-injection point (:mod:`phmx.faults`) in a child process, not a timer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from consent import audit, ledger
from phmx import faults, lease

ROOT = Path(__file__).resolve().parents[2]

# The child appends one disclosure of three members (the same call the publish stage makes).
CHILD = """
import pyarrow as pa
from consent import ledger
members = pa.table({"member_id": ["m1", "m2", "m3"], "data_class": ["MH"] * 3,
                    "rule_ids": [["WIC-5328-TREAT"]] * 3, "consent_ids": [["c9"]] * 3})
ledger.append([ledger.NewEntry("disclosure", "run-crash", {"recipient": "mcp_alpha", "purpose": "TREAT",
                                                           "disclosed_at": "2025-06-01T12:00:00.000000Z",
                                                           "files": []})], members={0: members})
"""

CRASH_POINTS = ("ledger.append.before_members", "ledger.append.after_members", "ledger.append.before_commit",
                "ledger.append.after_commit")


def _child(fault: str | None, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    env.pop("PHMX_FAULT", None)
    if fault:
        env["PHMX_FAULT"] = fault
    return subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def _retry() -> int:
    members = pa.table({"member_id": ["m1", "m2", "m3"], "data_class": ["MH"] * 3,
                        "rule_ids": [["WIC-5328-TREAT"]] * 3, "consent_ids": [["c9"]] * 3})
    return ledger.append([ledger.NewEntry("disclosure", "run-crash", {
        "recipient": "mcp_alpha", "purpose": "TREAT", "disclosed_at": "2025-06-01T12:00:00.000000Z",
        "files": []})], members={0: members})[0]


@pytest.fixture
def seeded(phmx_home):
    """A ledger with one decision batch already in it (so the crash is not on an empty table)."""
    from privacy.keys import reset_provider_cache

    reset_provider_cache()
    ledger.record_decision_batch(run_id="run-0", policy_version="p1", decisions_version=0, counts={"permit": 1})
    return phmx_home


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_killed_inside_an_append_then_retried(seeded, point):
    started = time.monotonic()
    proc = _child(point)
    assert proc.returncode == faults.EXIT_CODE, proc.stderr[-2000:]
    # The dead writer's lease does not lock anyone out: the retry goes through at once.
    seq = _retry()
    assert time.monotonic() - started < 60
    rep = audit.verify()
    assert rep.ok, [p.__dict__ for p in rep.problems]
    assert not any(w.kind == "orphan_members" for w in rep.warnings)
    entries = ledger.read_entries().to_pylist()
    kinds = [(e["entry_type"], json.loads(e["payload"]).get("kind")) for e in entries]
    if point == "ledger.append.after_members":
        # The interrupted append's member rows are accounted for by a note at their seq...
        assert ("note", "interrupted_append") in kinds
        note = next(e for e in entries if e["entry_type"] == "note")
        assert json.loads(note["payload"])["members"]["rows"] == 3
        assert seq == note["seq"] + 1
    # ...and each member's accounting shows the disclosure once per delivered append, never the orphans.
    rows = audit.disclosures_for_member("m2")
    expected = 2 if point == "ledger.append.after_commit" else 1
    assert len(rows) == expected
    assert rows[-1]["seq"] == seq


def test_orphans_never_in_accounting(seeded):
    assert _child("ledger.append.after_members").returncode == faults.EXIT_CODE
    rep = audit.verify()
    # Before any retry the orphans are a warning (an interrupted append), not tamper evidence.
    assert rep.ok and any(w.kind == "orphan_members" for w in rep.warnings)
    assert audit.disclosures_for_member("m1") == []


def test_killed_twice_at_the_same_point(seeded):
    for _ in range(2):
        assert _child("ledger.append.after_members").returncode == faults.EXIT_CODE
    _retry()
    rep = audit.verify()
    assert rep.ok, [p.__dict__ for p in rep.problems]
    assert len(audit.disclosures_for_member("m3")) == 1


# ---- the lease -------------------------------------------------------------------------------
def _record(**kw) -> bytes:
    base = {"state": "held", "token": "t0", "pid": 1, "pid_start": None, "host": "other-host", "purpose": "ledger writer",
            "acquired_at": time.time(), "expires_at": time.time() + 600}
    return json.dumps({**base, **kw}).encode()


def test_lease_names_a_live_holder_and_waits(seeded):
    lock = Path(ledger.lock_uri(ledger.ledger_path()))
    lock.write_bytes(_record())
    with pytest.raises(lease.LeaseBusy) as err:
        with lease.held(str(lock), purpose="ledger writer", timeout_s=0.5):
            pass
    assert "other-host" in str(err.value) and "lease until" in str(err.value)


def test_expired_lease_is_taken_over(seeded):
    lock = Path(ledger.lock_uri(ledger.ledger_path()))
    lock.write_bytes(_record(expires_at=time.time() - 1))
    seq = ledger.record_decision_batch(run_id="run-1", policy_version="p1", decisions_version=1, counts={"permit": 1})
    assert seq == 3 and audit.verify().ok
    assert json.loads(lock.read_text())["state"] == "free"


def test_dead_holder_on_this_host_is_taken_over(seeded):
    lock = Path(ledger.lock_uri(ledger.ledger_path()))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    lock.write_bytes(_record(pid=int(dead.stdout), host=socket.gethostname()))
    started = time.monotonic()
    ledger.record_decision_batch(run_id="run-1", policy_version="p1", decisions_version=1, counts={"permit": 1})
    assert time.monotonic() - started < 10
    # A lock file from before leases (only a pid) is read the same way.
    lock.write_text(dead.stdout.strip())
    ledger.record_decision_batch(run_id="run-2", policy_version="p1", decisions_version=2, counts={"permit": 1})
    assert audit.verify().ok


def test_a_holder_that_lost_its_lease_does_not_commit(seeded):
    lock = ledger.lock_uri(ledger.ledger_path())
    mine = lease.Lease(lock, purpose="ledger writer", seconds=0.2)
    mine.acquire(1)
    mine._stop.set()  # stall: no more renewals  # noqa: SLF001
    time.sleep(0.3)
    other = lease.Lease(lock, purpose="ledger writer", seconds=30)
    other.acquire(1)
    with pytest.raises(lease.LeaseLost):
        mine.check()
    other.release()
    mine.release()


def test_lease_on_s3_with_conditional_writes(seeded, s3_bucket, monkeypatch):
    uri = f"s3://{s3_bucket}/audit/.ledger.lock"
    first = lease.Lease(uri, purpose="ledger writer", seconds=30)
    first.acquire(1)
    # A second writer (another host's process) waits and is refused, naming the holder.
    second = lease.Lease(uri, purpose="ledger writer", seconds=30)
    with pytest.raises(lease.LeaseBusy, match=socket.gethostname()):
        second.acquire(0.3)
    first.release()
    second.acquire(1)
    second._stop.set()  # noqa: SLF001 - the holder dies: its lease runs out
    from phmx import storage

    bucket, key = storage.split_s3(uri)
    rec = json.loads(storage.s3_client().get_object(Bucket=bucket, Key=key)["Body"].read())
    rec.update(host="gone-host", expires_at=time.time() - 1)
    storage.s3_client().put_object(Bucket=bucket, Key=key, Body=json.dumps(rec).encode())
    third = lease.Lease(uri, purpose="ledger writer", seconds=30)
    third.acquire(1)
    with pytest.raises(lease.LeaseLost):
        second.check()
    # Compare-and-swap: a write with a stale ETag is refused by S3 itself.
    backend = lease.backend_for(uri)
    _, tag = backend.read()
    assert backend.swap(tag, third._record())  # noqa: SLF001
    assert not backend.swap(tag, third._record())  # noqa: SLF001
    third.release()


def test_ledger_on_s3_survives_a_killed_writer(seeded, s3_bucket, monkeypatch):
    monkeypatch.setenv("PHMX_LEDGER_ROOT", f"s3://{s3_bucket}/ledger")
    ledger.record_decision_batch(run_id="run-0", policy_version="p1", decisions_version=0, counts={"permit": 1})
    proc = _child("ledger.append.before_commit", {"PHMX_LEDGER_ROOT": f"s3://{s3_bucket}/ledger",
                                                  "PHMX_LEASE_SECONDS": "2"})
    assert proc.returncode == faults.EXIT_CODE, proc.stderr[-2000:]
    # Another host could not see the pid; the lease expires (2 s here) and is taken over.
    monkeypatch.setattr(socket, "gethostname", lambda: "another-host")
    started = time.monotonic()
    _retry()
    assert time.monotonic() - started < 30
    assert audit.verify().ok
