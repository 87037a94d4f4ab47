"""Crash consistency: kill the pipeline at each commit boundary of every stage, re-run, compare.

One clean baseline run (hand-built files from the five source kinds and the ECM exchange, one run id) is made once,
stage by stage, with the lakehouse copied before and after each stage and every commit boundary
the code reaches recorded (``PHMX_FAULT_TRACE``, :mod:`phmx.faults`). Then, for each crash point,
a copy of the lakehouse as it was before the stage is handed to a child process that runs the
stage with ``PHMX_FAULT`` set to that point and dies there (``os._exit``, no clean-up, like
``kill -9``); the stage is re-run here with the same run id, and:

* every table the stage writes equals the clean run's (volatile columns aside: when it ran);
* ``phmx audit verify`` passes (no false tamper alarm after an interrupted ledger append);
* every delivered package is in gold.feed_log and in the ledger exactly once, and ``latest``
  names a complete, verifying version (no recipient sees a half-written package);
* nothing is left under the scratch, staging or spool areas.

Crash points (per stage: before the first write, after the first write, after the last write; for
publish also inside the ledger append, the promotion and the feed logging) are listed in
:data:`POINTS`. Points that leave the same state on disk (nothing is written between them, e.g.
``ledger.append.after_commit`` and ``publish.promote.before_move``) are one crash: the first is
killed at, the others are named beside it and checked to follow it directly in the clean run's
trace (tests/publish/test_publish_crash.py and tests/consent/test_ledger_crash.py kill at each of
them separately, without the engine).

Speed (the suite runs in CI): one clean baseline for all points; the killed children are forked
from one process that has already imported the stages (:class:`_ForkServer`; each child starts
its own engine, as a fresh process would), and the clean run's table contents are read once per
stage.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ecm.ecm_world import land_world
from test_pipeline_handbuilt import _files

from jobs import STAGE_PACKAGES
from phmx import faults

ROOT = Path(__file__).resolve().parents[2]
RUN = "run-crash"
STAGES = tuple(STAGE_PACKAGES)

#: Columns that differ between any two independent runs: when something ran; and what depends on
#: keys made at first use (each home makes its own: a table's data key behind ``pii_fingerprint``,
#: the publish signing key behind ``key_id``) or on how many ledger entries came before
#: (``ledger_seq``: a re-run after a crash appends notes). The invariants they carry are checked
#: directly: audit verify, exactly-once delivery, package verification.
VOLATILE = {"pii_fingerprint", "key_id", "ledger_seq", "ingested_at", "received_at", "processed_at", "decided_at", "published_at", "created_at", "updated_at",
            "assigned_at", "first_seen_at", "last_seen_at", "recorded_at", "generated_at", "manifest_sha256",
            "uri_sha256", "computed_at", "loaded_at", "valid_from", "valid_to", "at", "ts", "timestamp"}

#: (stage, fault point, points that leave the same state): the commit boundaries killed at.
#: ``first-before``/``first-after``/``last-after`` are resolved from the baseline's trace of that
#: stage's table writes (before the first, after the first, after the last).
POINTS: list[tuple[str, str, tuple[str, ...]]] = [
    *[(s, spec, ()) for s in STAGES if s not in ("consent", "publish") for spec in ("first-before", "first-after",
                                                                                   "last-after")],
    # consent writes gold.consent_decision (its first and last table write), then the ledger entry.
    ("consent", "first-before", ()),
    ("consent", "last-after", ("ledger.append.before_commit",)),
    ("consent", "ledger.append.after_commit", ()),
    ("publish", "first-before", ()),
    ("publish", "lakehouse.write.after:work.publish_lhj_decisions", ()),
    # the first delivery (an LHJ package): staging, the ledger append, promotion, feed logging
    ("publish", "publish.stage.after_write", ("ledger.append.before_members",)),
    ("publish", "ledger.append.after_members", ("ledger.append.before_commit",)),
    ("publish", "ledger.append.after_commit", ("publish.promote.before_move",)),
    ("publish", "publish.promote.before_latest", ()),
    ("publish", "publish.promote.after_latest", ("publish.feed_log.before",)),
    ("publish", "publish.feed_log.after", ()),  # between the first recipient and the second
    ("publish", "publish.feed_log.after#2", ()),  # the second (a plan's FHIR package), the last write
]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHMX_") or k in ("PHMX_SHUFFLE_PARTITIONS",
                                                                                        "PHMX_LOG_LEVEL")}
    env.update(PYTHONPATH=str(ROOT), PHMX_HOME=str(home), PHMX_PUBLISH_WORKERS="1")
    return env


def _tables(home: Path) -> dict[str, Path]:
    lake = home / "lakehouse"
    out = {}
    for layer in ("bronze", "silver", "gold", "audit"):
        for t in sorted((lake / layer).glob("*/_delta_log")) if (lake / layer).is_dir() else []:
            out[f"{layer}.{t.parent.name}"] = t.parent
    return out


def _content(path: Path, *homes: Path) -> list[str]:
    """A table's rows as sorted JSON, without the columns that say when it ran and without the
    AES-GCM ciphertexts of encrypted columns (a fresh nonce per write; the keyed
    ``pii_fingerprint`` of the same row stays and is compared); a home folder in any location
    (receipt URIs, package URIs) is written as HOME so two homes compare."""
    from deltalake import DeltaTable

    from phmx.tables import by_fqn

    fqn = f"{path.parent.name}.{path.name}"
    try:
        encrypted = set(by_fqn(fqn).encrypted)
    except KeyError:
        encrypted = set()
    tbl = DeltaTable(str(path)).to_pyarrow_table()
    cols = sorted(c for c in tbl.column_names
                  if c not in VOLATILE and c not in encrypted and not c.endswith("_at"))
    out = []
    for r in tbl.select(cols).to_pylist():
        text = json.dumps(r, sort_keys=True, default=str)
        for h in homes:
            text = text.replace(str(h), "HOME")
        out.append(text)
    return sorted(out)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, spark):
    """The clean run: the lakehouse before and after each stage, and each stage's commit points."""
    from jobs.entry import run_stage
    from privacy.keys import reset_provider_cache

    base = tmp_path_factory.mktemp("crash")
    home = base / "clean" / "var"
    home.mkdir(parents=True)
    mp = pytest.MonkeyPatch()
    for k in [k for k in os.environ if k.startswith("PHMX_") and k not in ("PHMX_SHUFFLE_PARTITIONS", "PHMX_LOG_LEVEL")]:
        mp.delenv(k)
    mp.setenv("PHMX_HOME", str(home))
    mp.setenv("PHMX_PUBLISH_WORKERS", "1")
    reset_provider_cache()

    def land(submitter, feed, period, name, content):
        p = home / "landing" / submitter / feed / period / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(content) + "\n" if isinstance(content, list) else content)

    _files(land)
    land_world(land)  # the ECM exchange feeds, so the ecm stage has something to write
    snaps: dict[str, Path] = {}
    points: dict[str, list[str]] = {}
    for stage in STAGES:
        snaps[f"before:{stage}"] = base / f"before-{stage}"
        shutil.copytree(home, snaps[f"before:{stage}"] / "var")
        trace = base / f"trace-{stage}.txt"
        mp.setenv("PHMX_FAULT_TRACE", str(trace))
        run_stage(stage, period="all", run_id=RUN)
        mp.delenv("PHMX_FAULT_TRACE")
        points[stage] = trace.read_text().splitlines() if trace.exists() else []
        snaps[f"after:{stage}"] = base / f"after-{stage}"
        shutil.copytree(home, snaps[f"after:{stage}"] / "var")
    yield {"snaps": snaps, "points": points, "base": base, "home": home, "clean": {}}
    mp.undo()
    reset_provider_cache()


def _resolve(points: list[str], spec: str) -> str:
    writes = [p for p in points if p.startswith("lakehouse.write.")]
    if spec == "first-before":
        return writes[0]
    if spec == "first-after":
        return next(p for p in writes if p.startswith("lakehouse.write.after:"))
    if spec == "last-after":
        last = [p for p in writes if p.startswith("lakehouse.write.after:")][-1]
        return f"{last}#{sum(1 for p in writes if p == last)}"
    return spec


def _check_publish_invariants(home: Path) -> None:
    from consent import audit, ledger
    from jobs.publish import feed_log
    from jobs.publish.verify import verify_package

    rep = audit.verify()
    assert rep.ok, [p.__dict__ for p in rep.problems]
    entries = ledger.read_entries().to_pylist()
    undelivered = audit.not_delivered(entries)
    disclosed: dict[str, int] = {}
    for e in entries:
        if e["entry_type"] == "disclosure" and e["seq"] not in undelivered:
            for f in json.loads(e["payload"]).get("files", []):
                if f["uri"].endswith("/manifest.json"):
                    disclosed[f["uri"].rsplit("/", 1)[0]] = disclosed.get(f["uri"].rsplit("/", 1)[0], 0) + 1
    logged: dict[str, int] = {}
    for r in feed_log.read():
        logged[r["uri"]] = logged.get(r["uri"], 0) + 1
    delivered = sorted(str(m.parent) for m in (home / "publish").glob("*/*/*/v*/manifest.json"))
    assert delivered, "nothing was delivered"
    for folder in delivered:
        assert disclosed.get(folder) == 1, f"{folder}: in the ledger {disclosed.get(folder, 0)} times"
        assert logged.get(folder) == 1, f"{folder}: in gold.feed_log {logged.get(folder, 0)} times"
        verify_package(folder)
    assert set(logged) == set(delivered) and set(disclosed) == set(delivered)
    for latest in (home / "publish").glob("*/*/*/latest"):
        verify_package(latest.parent)  # latest names a complete version, its manifest hash matches
    assert not list((home / "publish").glob("*/*/*/.latest.tmp"))


def _leftovers(home: Path) -> list[str]:
    areas = [home / "publish" / "_staging", home / "lakehouse" / "_staging", home / "lakehouse" / "_scratch"]
    found = [str(p) for a in areas if a.exists() for p in a.rglob("*") if p.is_file()]
    work = home / "lakehouse" / "work"
    if work.exists():
        found += [str(p) for p in work.iterdir() if p.name != "identity_tf" and p.name != "publish"]
    return found


def _params() -> list[object]:
    return [pytest.param(s, p, same, id=f"{s}:{p}" + "".join(f"={q}" for q in same)) for s, p, same in POINTS]


#: The killed child: forked from a process that has imported every stage but started no engine
#: (a fork of a process with a running engine would share its threads and sockets). One JSON line
#: in (environment, stage, run id, log file), two out (the child's pid, then its exit code).
_FORK_SERVER = r"""
import importlib, json, os, sys, traceback
from jobs import STAGE_PACKAGES
import jobs.entry
for package in STAGE_PACKAGES.values():
    importlib.import_module(package)
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.environ.clear()
            os.environ.update(req["env"])
            jobs.entry.run_stage(req["stage"], period="all", run_id=req["run_id"])
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)
"""


class _ForkServer:
    """Runs a stage in a fresh child process, as ``python -c 'run_stage(...)'`` would, without
    paying for the imports each time (about 2 CPU-seconds per crash point)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _FORK_SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=str(ROOT),
                                     env=_env(Path("/nonexistent")) | {"OPENBLAS_NUM_THREADS": "1"})

    def run(self, stage: str, env: dict[str, str], log: Path, timeout: float = 600) -> tuple[int, str]:
        import select
        import signal

        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"stage": stage, "env": env, "run_id": RUN, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        pid = json.loads(self.proc.stdout.readline())["pid"]
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)  # the child this server forked for us
        code = int(json.loads(self.proc.stdout.readline())["code"])
        return code, log.read_text(errors="replace") if log.exists() else ""

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def fork_server():
    server = _ForkServer()
    yield server
    server.close()


def _diff(got: list[str], clean: list[str]) -> str:
    """The first row only in the re-run and the first only in the clean run, as columns that differ."""
    extra = sorted(set(got) - set(clean))
    missing = sorted(set(clean) - set(got))
    if not extra or not missing:
        return f"{len(got)} rows vs {len(clean)} in the clean run; {len(extra)} extra, {len(missing)} missing"
    a, b = json.loads(extra[0]), json.loads(missing[0])
    cols = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return f"{len(extra)} rows differ; first in columns {cols}"


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "spec", "same"), _params())
def test_kill_at_a_commit_boundary_then_rerun(baseline, fork_server, spark, tmp_path, monkeypatch, stage, spec, same):
    from jobs.entry import run_stage
    from privacy.keys import reset_provider_cache

    point = _resolve(baseline["points"][stage], spec)
    name = point.split("#")[0]
    trace = baseline["points"][stage]
    if name not in trace:
        pytest.fail(f"{point} is not a commit boundary of the {stage} stage: {sorted(set(trace))}")
    # The points grouped with this one follow it directly (nothing is written in between): one kill
    # stands for all of them.
    at = [i for i, p in enumerate(trace) if p == name][int(point.split("#")[1]) - 1 if "#" in point else 0]
    assert tuple(trace[at + 1:at + 1 + len(same)]) == same, (point, trace[at:at + 1 + len(same)])
    home = tmp_path / "var"
    shutil.copytree(baseline["snaps"][f"before:{stage}"] / "var", home)
    code, log = fork_server.run(stage, _env(home) | {"PHMX_FAULT": point}, tmp_path / "child.log")
    assert code == faults.EXIT_CODE, log[-3000:]

    for k in [k for k in os.environ if k.startswith("PHMX_") and k not in ("PHMX_SHUFFLE_PARTITIONS",
                                                                           "PHMX_LOG_LEVEL")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("PHMX_HOME", str(home))
    monkeypatch.setenv("PHMX_PUBLISH_WORKERS", "1")
    reset_provider_cache()
    run_stage(stage, period="all", run_id=RUN)

    clean_home = baseline["snaps"][f"after:{stage}"] / "var"
    clean = _tables(clean_home)
    got = _tables(home)
    assert sorted(got) == sorted(clean)
    cache = baseline["clean"]
    for fqn, path in clean.items():
        if fqn.startswith("audit."):
            continue  # the ledger is a log: a re-run appends; checked by verify below
        if (stage, fqn) not in cache:
            cache[(stage, fqn)] = _content(path, baseline["home"])
        mine, theirs = _content(got[fqn], home, baseline["home"]), cache[(stage, fqn)]
        assert mine == theirs, f"{fqn} differs from the clean run's after a crash at {point}: {_diff(mine, theirs)}"
    from consent import audit

    if (home / "lakehouse" / "audit" / "ledger").exists():
        rep = audit.verify()
        assert rep.ok, [p.__dict__ for p in rep.problems]
    if stage == "publish":
        _check_publish_invariants(home)
    assert _leftovers(home) == []
