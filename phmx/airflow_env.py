"""The embedded Airflow: AIRFLOW_HOME under ./var/airflow, SQLite, LocalExecutor, examples off.

``airflow_env()`` is the environment every Airflow command of ours runs with; ``ensure_db()``
migrates the metadata database once. Servers bind to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from phmx import settings as settings_mod

REPO = Path(__file__).resolve().parent.parent


def airflow_home(cfg: settings_mod.Settings | None = None) -> Path:
    cfg = cfg or settings_mod.load()
    return Path(cfg.airflow_home or Path(cfg.home, "airflow"))


def airflow_env(cfg: settings_mod.Settings | None = None) -> dict[str, str]:
    """Environment for Airflow commands: our settings plus Airflow's own, all local."""
    cfg = cfg or settings_mod.load()
    home = airflow_home(cfg)
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(cfg.as_env())
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": env.get("AIRFLOW__CORE__UNIT_TEST_MODE", "False"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": env.get("AIRFLOW__API__PORT", "8080"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{env.get('AIRFLOW__API__PORT', '8080')}/execution/",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")])),
        # `airflow standalone` starts its components as `airflow ...` subprocesses found on PATH:
        # the venv's bin must be there even when nobody activated the venv (make airflow).
        "PATH": os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH", "")])),
        "NO_PROXY": "*",
    })
    return env


def airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def ensure_db(env: dict[str, str] | None = None) -> None:
    """Create or migrate the SQLite metadata database (idempotent)."""
    env = env or airflow_env()
    marker = Path(env["AIRFLOW_HOME"]) / ".phmx-db-migrated"
    if marker.exists():
        return
    subprocess.run([airflow_bin(), "db", "migrate"], env=env, check=True, capture_output=True, timeout=600)
    marker.touch()


def dags_test(dag_id: str, *, conf: str = '{"period": "all"}', logical_date: str | None = None,
              timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    """Run a whole DAG in one process with ``airflow dags test`` and return the completed process."""
    env = airflow_env()
    ensure_db(env)
    cmd = [airflow_bin(), "dags", "test", dag_id]
    if logical_date:
        cmd.append(logical_date)
    cmd += ["--conf", conf]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
