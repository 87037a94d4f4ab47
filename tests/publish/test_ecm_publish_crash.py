"""An ECM package killed between its delivery commits, beside the same plan's care-team feed of the
same run: the next publish completes or retracts it, a retried task finds this run's delivery of
the right feed (never the other feed's), and every delivered folder is in the ledger and in
gold.feed_log exactly once. The child process runs the stage's own delivery code (stage, ledger,
promote, log) on small packages with no engine, and dies at a named fault point (:mod:`phmx.faults`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from consent import audit, ledger
from jobs.publish import feed_log, recovery
from jobs.publish.verify import verify_package
from phmx import faults, settings

ROOT = Path(__file__).resolve().parents[2]
PLAN = "mcp_bluecoast"

DELIVER = """
import sys
from datetime import UTC, datetime
from jobs.publish import feed_log, package, stage
from phmx import settings
root = settings.load().publish_root
run_id, feed = sys.argv[1], sys.argv[2]
pkg = package.Package("mcp_bluecoast", feed, "2025-03", run_id)
pkg.add("members.csv", "plan_id,plan_member_id\\nBC,BC1\\n", "text/csv")
pkg.meta = {"content": {"attributed_members": 1}}
staged = package.stage(pkg, root, now=datetime.now(UTC))
delivered, seq = stage._record_and_promote(None, staged, recipient="mcp_bluecoast", purpose="TREAT", run_id=run_id,
                                           members=None, rule_ids=["HIPAA-164.506-TPO"], consent_ids=[])
feed_log.record(delivered, run_id=run_id, ledger_seq=seq, members=1)
"""

# one crash that leaves a recorded, undelivered disclosure and one that leaves a delivered, unlogged
# package (every fault point of the shared delivery code is covered by tests/publish/test_publish_crash.py)
POINTS = ("publish.promote.before_move", "publish.feed_log.before")


def _deliver(run_id: str, feed: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PHMX_FAULT", None)
    if fault:
        env["PHMX_FAULT"] = fault
    return subprocess.run([sys.executable, "-c", DELIVER, run_id, feed], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("point", POINTS)
def test_a_killed_ecm_delivery_beside_the_plan_feed(keys_home, point):
    root = Path(settings.load().publish_root)
    assert _deliver("run-1", "plan_bulk_fhir").returncode == 0
    proc = _deliver("run-1", "ecm", point)
    assert proc.returncode == faults.EXIT_CODE, proc.stderr[-2000:]
    out = recovery.reconcile(str(root), PLAN)
    delivered = (root / PLAN / "ecm" / "2025-03" / "v1" / "manifest.json").exists()
    if point == "publish.feed_log.before":
        assert [d["feed"] for d in out.logged] == ["ecm"] and delivered
    else:
        assert len(out.retracted) == 1 and not delivered
    # a retried ECM task of run-1 finds the ECM delivery only if it was made; the plan feed's is never taken for it
    ecm = recovery.already_published(PLAN, "run-1", "ecm")
    assert (ecm is not None) == delivered and (ecm is None or ecm["feed"] == "ecm")
    assert recovery.already_published(PLAN, "run-1", "plan_bulk_fhir")["feed"] == "plan_bulk_fhir"
    assert _deliver("run-2", "ecm").returncode == 0
    rep = audit.verify()
    assert rep.ok, [p.__dict__ for p in rep.problems]
    undelivered = audit.not_delivered(ledger.read_entries().to_pylist())
    in_ledger: dict[str, int] = {}
    for e in ledger.read_entries().to_pylist():
        if e["entry_type"] == "disclosure" and e["seq"] not in undelivered:
            for f in json.loads(e["payload"])["files"]:
                if f["uri"].endswith("/manifest.json"):
                    in_ledger[f["uri"].rsplit("/", 1)[0]] = in_ledger.get(f["uri"].rsplit("/", 1)[0], 0) + 1
    logged: dict[str, int] = {}
    for r in feed_log.read(PLAN):
        logged[r["uri"]] = logged.get(r["uri"], 0) + 1
    folders = sorted(str(m.parent) for m in root.glob(f"{PLAN}/*/*/v*/manifest.json"))
    assert len(folders) == (3 if delivered else 2)
    for v in folders:
        assert in_ledger.get(v) == 1 and logged.get(v) == 1, v
        verify_package(v)
