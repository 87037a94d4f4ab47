"""A delivery killed between its commits (ledger entry, promotion, ``latest``, gold.feed_log), then
the next publish: every delivered package is in the ledger and gold.feed_log exactly once, a
recorded but undelivered disclosure is marked as such (and left out of the accounting), no
recipient sees a half-written package, and the staging and spool areas are emptied.

The child process runs the stage's own delivery code (stage, ledger, promote, log) on a small
package with no engine, and dies at a named fault point (:mod:`phmx.faults`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from consent import audit, ledger
from jobs.publish import feed_log, package, recovery
from jobs.publish.verify import PackageInvalid, verify_package
from phmx import faults, settings

ROOT = Path(__file__).resolve().parents[2]
RECIPIENT = "lhj_alameda"

DELIVER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from jobs.publish import feed_log, package, stage
from phmx import settings
root = settings.load().publish_root
pkg = package.Package("lhj_alameda", "lhj_measures", "2025-01", sys.argv[1])
pkg.spool = package.spool_dir(root, "lhj_alameda")
w = package.HashingWriter(pkg.spool / "big.csv")
w.write(b"a,b\\n" + b"1,2\\n" * 1000)
pkg.add_spooled("big.csv", w.close(), "text/csv")
pkg.add("measures.csv", "a,b\\n1,2\\n", "text/csv")
pkg.meta = {"content": {"cells": 4, "suppressed_cells": 1}}
staged = package.stage(pkg, root, now=datetime.now(UTC))
delivered, seq = stage._record_and_promote(None, staged, recipient="lhj_alameda", purpose="PUBHLTH",
                                           run_id=sys.argv[1], members=None, rule_ids=["R"], consent_ids=[])
feed_log.record(delivered, run_id=sys.argv[1], ledger_seq=seq, cells=4, suppressed=1, members=0)
"""

POINTS = ("publish.stage.after_write", "ledger.append.before_commit", "ledger.append.after_commit",
          "publish.promote.before_move", "publish.promote.before_latest", "publish.promote.after_latest",
          "publish.feed_log.before", "publish.feed_log.after")


def _deliver(run_id: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PHMX_FAULT", None)
    if fault:
        env["PHMX_FAULT"] = fault
    return subprocess.run([sys.executable, "-c", DELIVER, run_id], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _delivery_counts() -> tuple[dict[str, int], dict[str, int]]:
    """After ``audit verify`` passes: how many times each version folder is in the ledger (as a
    delivered disclosure's manifest) and in gold.feed_log. Shared with the S3 crash tests."""
    rep = audit.verify()
    assert rep.ok, [p.__dict__ for p in rep.problems]
    entries = ledger.read_entries().to_pylist()
    undelivered = audit.not_delivered(entries)
    in_ledger: dict[str, int] = {}
    for e in entries:
        if e["entry_type"] == "disclosure" and e["seq"] not in undelivered:
            for f in json.loads(e["payload"])["files"]:
                if f["uri"].endswith("/manifest.json"):
                    folder = f["uri"].rsplit("/", 1)[0]
                    in_ledger[folder] = in_ledger.get(folder, 0) + 1
    logged: dict[str, int] = {}
    for r in feed_log.read(RECIPIENT):
        logged[r["uri"]] = logged.get(r["uri"], 0) + 1
    return in_ledger, logged


def _invariants(root: Path) -> None:
    in_ledger, logged = _delivery_counts()
    versions = sorted(str(m.parent) for m in root.glob(f"{RECIPIENT}/*/*/v*/manifest.json"))
    assert versions
    for v in versions:
        assert in_ledger.get(v) == 1 and logged.get(v) == 1, v
        verify_package(v)
    assert set(in_ledger) == set(versions) == set(logged)
    base = root / RECIPIENT / "lhj_measures" / "2025-01"
    assert verify_package(base).version == json.loads((base / "latest").read_text())["version"]
    staging = root / package.STAGING
    assert not [p for p in staging.rglob("*") if p.is_file()] if staging.exists() else True


@pytest.mark.parametrize("point", POINTS)
def test_killed_between_delivery_commits_then_published_again(keys_home, point):
    root = Path(settings.load().publish_root)
    assert _deliver("run-1").returncode == 0
    proc = _deliver("run-2", point)
    assert proc.returncode == faults.EXIT_CODE, proc.stderr[-2000:]
    base = root / RECIPIENT / "lhj_measures" / "2025-01"
    # Whatever the crash, a recipient following latest sees a complete, verifying package.
    assert verify_package(base).version in ("v1", "v2")
    out = recovery.reconcile(str(root), RECIPIENT)
    delivered_v2 = (base / "v2" / "manifest.json").exists()
    if point in ("publish.promote.before_latest", "publish.promote.after_latest", "publish.feed_log.before"):
        assert [d["version"] for d in out.logged] == [2]
        assert json.loads((base / "latest").read_text())["version"] == "v2"
    elif point in ("ledger.append.after_commit", "publish.promote.before_move"):
        assert len(out.retracted) == 1 and not delivered_v2
    else:
        assert out.logged == [] and out.retracted == []
    # A retried task of the same run returns its delivery instead of publishing it twice.
    again = recovery.already_published(RECIPIENT, "run-2")
    assert (again is not None) == delivered_v2
    assert _deliver("run-3").returncode == 0
    _invariants(root)


def test_a_killed_delivery_leaves_no_spool_or_staging_after_the_next(keys_home):
    root = Path(settings.load().publish_root)
    assert _deliver("run-1", "publish.stage.after_write").returncode == faults.EXIT_CODE
    staging = root / package.STAGING
    left = [p for p in staging.rglob("*") if p.is_file()]
    assert left  # the crash left the staged copy behind...
    for p in left:
        assert p.stat().st_mode & 0o077 == 0, f"{p.name} is readable by others"
    for d in [staging, *[p for p in staging.rglob("*") if p.is_dir()]]:
        if d.name != package.STAGING:
            assert d.stat().st_mode & 0o077 == 0, f"{d.name} is open to others"
    package.clean_staging(str(root), RECIPIENT)
    assert not [p for p in staging.rglob("*") if p.is_file()]  # ...and the next publish removes it


def test_undelivered_disclosure_not_in_accounting(keys_home):
    import pyarrow as pa

    root = Path(settings.load().publish_root)
    members = pa.table({"member_id": ["m1"], "data_class": ["GENERAL"], "rule_ids": [["R"]], "consent_ids": [[]]})
    seq = ledger.append([ledger.NewEntry("disclosure", "run-x", {
        "recipient": RECIPIENT, "purpose": "PUBHLTH", "disclosed_at": "2025-06-01T12:00:00.000000Z",
        "files": [{"uri": str(root / RECIPIENT / "lhj_measures" / "2025-01" / "v1" / "manifest.json"),
                   "sha256": "0" * 64}]})], members={0: members})[0]
    assert [d["seq"] for d in audit.disclosures_for_member("m1")] == [seq]
    out = recovery.reconcile(str(root), RECIPIENT)
    assert out.retracted == [seq]
    assert audit.disclosures_for_member("m1") == []
    assert audit.verify().ok


def test_feeds_verify_checks_the_latest_pointer_hash(keys_home):
    root = Path(settings.load().publish_root)
    assert _deliver("run-1").returncode == 0
    base = root / RECIPIENT / "lhj_measures" / "2025-01"
    pointer = json.loads((base / "latest").read_text())
    pointer["manifest_sha256"] = "f" * 64
    (base / "latest").write_text(json.dumps(pointer))
    with pytest.raises(PackageInvalid, match="manifest_sha256"):
        verify_package(base)
    with pytest.raises(PackageInvalid, match="manifest_sha256"):
        verify_package(base / "v1")  # the version folder itself, when latest names it
