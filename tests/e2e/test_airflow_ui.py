"""``make airflow`` (``python -m phmx.airflow_ui``): the real Airflow UI and scheduler come up on
127.0.0.1 only, the generated admin can log in, and the exchange's DAG is there to trigger."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

STARTUP_LIMIT_S = 240  # a safety stop for a hung server, not a performance assertion


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen) -> None:
    """Stop the whole process group (standalone forks a scheduler, API server, processors)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _listening(proc: subprocess.Popen, port: int) -> list[str]:
    """The addresses the server's processes listen on for ``port``."""
    addrs = []
    procs = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in procs:
        try:
            conns = p.net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        addrs += [c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    return addrs


@pytest.mark.slow
def test_make_airflow_serves_the_dag_on_loopback_only(tmp_path):
    port = _free_port()
    home = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PHMX_"))}
    env.update(PHMX_HOME=str(home), AIRFLOW__API__PORT=str(port))
    log = (tmp_path / "airflow.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "phmx.airflow_ui"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, cwd=Path(__file__).parents[2])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_S
        token = None
        dag = None
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(3)
            try:
                if token is None:
                    pw_file = home / "airflow" / "simple_auth_manager_passwords.json.generated"
                    if not pw_file.exists():
                        continue
                    password = json.loads(pw_file.read_text())["admin"]
                    r = httpx.post(f"{base}/auth/token", json={"username": "admin", "password": password},
                                   timeout=10)
                    if r.status_code not in (200, 201):
                        continue
                    token = r.json()["access_token"]
                r = httpx.get(f"{base}/api/v2/dags/phm_exchange", headers={"Authorization": f"Bearer {token}"},
                              timeout=10)
                if r.status_code == 200:
                    dag = r.json()
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                continue
        assert proc.poll() is None, "airflow standalone exited: " + (tmp_path / "airflow.log").read_text()[-2000:]
        assert dag is not None, "the DAG never appeared: " + (tmp_path / "airflow.log").read_text()[-2000:]
        assert dag["dag_id"] == "phm_exchange" and not dag.get("has_import_errors")
        health = httpx.get(f"{base}/api/v2/monitor/health", timeout=10).json()
        assert health["metadatabase"]["status"] == "healthy"
        assert httpx.get(f"{base}/api/v2/dags/phm_exchange", timeout=10).status_code == 401  # login required
        addrs = _listening(proc, port)
        assert addrs and set(addrs) == {"127.0.0.1"}, addrs
    finally:
        _stop(proc)
        log.close()
