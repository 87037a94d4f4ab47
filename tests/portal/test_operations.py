"""The operators' pages against a real Airflow (``python -m phmx.airflow_ui``: API server, scheduler
and DAG processor on 127.0.0.1): the runs listed through Airflow's REST API, a run triggered for a
period from the portal (queued: the DAG is paused at creation, so nothing executes), its stages,
the trigger recorded in the ledger; and the quarantine summary. Everything started is stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from portal_world import World
from test_browser import _accessible, _sign_in, browser  # noqa: F401 - browser is a fixture used below

STARTUP_LIMIT_S = 300  # a safety stop for a hung server, not a performance assertion
pytestmark = pytest.mark.slow


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Airflow on an ephemeral loopback port with the exchange's DAG; yields (URL, password file)."""
    tmp = tmp_path_factory.mktemp("airflow")
    port = _free_port()
    home = tmp / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PHMX_"))}
    env.update(PHMX_HOME=str(home), AIRFLOW__API__PORT=str(port))
    log = (tmp / "airflow.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "phmx.airflow_ui"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=Path(__file__).parents[2])
    base = f"http://127.0.0.1:{port}"
    pw_file = home / "airflow" / "simple_auth_manager_passwords.json.generated"
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_S
        ready = False
        while time.monotonic() < deadline and proc.poll() is None and not ready:
            time.sleep(3)
            try:
                if not pw_file.exists():
                    continue
                password = json.loads(pw_file.read_text())["admin"]
                r = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=10)
                if r.status_code not in (200, 201):
                    continue
                dag = httpx.get(f"{base}/api/v2/dags/phm_exchange", timeout=10,
                                headers={"Authorization": f"Bearer {r.json()['access_token']}"})
                ready = dag.status_code == 200
            except (httpx.HTTPError, ValueError, KeyError):
                continue
        assert ready, "Airflow or its DAG never came up: " + (tmp / "airflow.log").read_text()[-2000:]
        yield base, pw_file
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def test_an_operator_lists_runs_triggers_one_for_a_period_and_reads_its_stages(world: World, airflow):
    from consent import ledger
    from phmx.portal.operations import Airflow

    base, pw_file = airflow
    world.app.state.airflow = Airflow(base, "admin", str(pw_file))
    ops = world.signed_in("hub_ops")
    csrf = {"X-CSRF-Token": world.csrf["hub_ops"]}
    assert ops.get("/api/v1/operations/runs").json() == []
    r = ops.post("/api/v1/operations/runs", json={"period": "2026-01"}, headers=csrf)
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]
    page = ops.post("/operations/runs", data={"period": "all", "csrf_token": world.csrf["hub_ops"]})
    assert page.status_code == 200 and "queued for period all" in page.text
    runs = ops.get("/api/v1/operations/runs").json()
    assert sorted(x["period"] for x in runs) == ["2026-01", "all"]
    mine = next(x for x in runs if x["run_id"] == run_id)
    assert mine["state"] == "queued" and mine["run_type"] == "manual"
    stages = ops.get(f"/api/v1/operations/runs/{run_id}").json()["stages"]
    dag_tasks = {t["task_id"] for t in httpx.get(
        f"{base}/api/v2/dags/phm_exchange/tasks", timeout=10,
        headers={"Authorization": "Bearer " + httpx.post(
            f"{base}/auth/token", json={"username": "admin", "password": json.loads(pw_file.read_text())["admin"]},
            timeout=10).json()["access_token"]}).json()["tasks"]}
    assert {"ingest", "publish_prepare", "publish_report"} <= dag_tasks
    assert {s["stage"] for s in stages} <= dag_tasks
    html = ops.get(f"/operations/runs/{run_id}")
    assert html.status_code == 200 and run_id in html.text
    assert ops.get("/api/v1/operations/runs/manual__1999-01-01T00:00:00+00:00").status_code == 404
    listing = ops.get("/operations")
    assert listing.status_code == 200 and run_id in listing.text and "Nothing is in quarantine" in listing.text
    notes = [json.loads(e["payload"]) for e in ledger.read_entries().to_pylist() if e["entry_type"] == "note"]
    triggered = [n["resource"] for n in notes if n.get("action") == "trigger_run"]
    assert {"period": "2026-01", "run_id": run_id} in triggered and len(triggered) == 2
    bad = ops.post("/api/v1/operations/runs", json={"period": "2026-13"}, headers=csrf)
    assert bad.status_code == 422
    # Airflow's own check: the portal's calls carried a token, an anonymous call is refused.
    assert httpx.get(f"{base}/api/v2/dags/phm_exchange/dagRuns", timeout=10).status_code == 401


def test_the_quarantine_summary_counts_rows_by_submitter_feed_period_and_rule(world: World):
    from datetime import UTC, datetime

    import pyarrow as pa

    from phmx import lakehouse
    from phmx.tables import QUARANTINE

    types = {"string": pa.string(), "bigint": pa.int64(), "timestamp": pa.timestamp("us", tz="UTC")}
    schema = pa.schema([(n, types[t]) for n, t in QUARANTINE.columns])
    now = datetime(2026, 2, 1, tzinfo=UTC)
    rows = [("sub-a", "cair2", "immunizations_vxu", "2026-01", "f1", i, "required", "cvx", "missing", "raw", now)
            for i in range(3)] + [("sub-b", "cair2", "immunizations_vxu", "2026-01", "f2", 1, "required", "cvx",
                                   "missing", "raw", now)]
    names = [n for n, _ in QUARANTINE.columns]
    lakehouse.append_arrow(QUARANTINE, pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows],
                                                            schema=schema))
    ops = world.signed_in("hub_ops")
    got = ops.get("/api/v1/operations/quarantine", params={"period": "2026-01"}).json()
    assert got == [{"submitter": "cair2", "feed": "immunizations_vxu", "period": "2026-01", "rule_id": "required",
                    "rows": 4, "submissions": 2}]
    assert ops.get("/api/v1/operations/quarantine", params={"period": "2025-12"}).json() == []
    assert "raw" not in ops.get("/operations").text.replace("Run", "")


def test_an_operator_triggers_a_run_in_the_browser_and_opens_its_stages(browser, world: World, airflow):  # noqa: F811
    from phmx.portal.operations import Airflow

    base, pw_file = airflow
    world.app.state.airflow = Airflow(base, "admin", str(pw_file))
    ctx, page = _sign_in(browser, "hub_ops")
    assert page.url.endswith("/operations")
    page.get_by_label("Period (YYYY-MM, or all)").fill("2026-02")
    page.get_by_role("button", name="Start a run").click()
    status = page.get_by_role("status").inner_text()
    assert "queued for period 2026-02" in status
    _accessible(page, "operator-runs")
    run_id = status.split("Run ", 1)[1].split(" queued", 1)[0]
    page.get_by_role("link", name=run_id).click()
    assert f"Run {run_id}" in page.inner_text("main") and "Stage" in page.inner_text("main")
    _accessible(page, "operator-run-stages")
    ctx.close()
