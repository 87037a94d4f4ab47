"""The operators' pages: the pipeline's runs and their stages through Airflow's REST API, triggering
a run for a period, and quarantine summaries.

Airflow is reached as an API client (``/auth/token`` with the configured account, then
``/api/v2`` with the bearer token; a token that expires is renewed once per call). The portal
never talks to Airflow's database. Quarantine summaries are counts of ``bronze.quarantine`` by
submitter, feed, period and rule, read with delta-rs (no engine; the raw records never leave the
PHI zone).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from phmx import lakehouse
from phmx.tables import QUARANTINE

DAG_ID = "phm_exchange"
RUN_ID = re.compile(r"^[A-Za-z0-9_.:+-]{1,250}$")
PERIOD = re.compile(r"^(all|[0-9]{4}-(0[1-9]|1[0-2]))$")
TIMEOUT_S = 15.0


class AirflowUnavailable(Exception):
    """Airflow cannot be reached or refused the portal's account; ``str()`` is safe to show."""


class Airflow:
    """A small client of Airflow's REST API (v2) for one DAG."""

    def __init__(self, url: str, username: str, password_file: str, dag_id: str = DAG_ID) -> None:
        self.url, self.username, self.password_file, self.dag_id = url.rstrip("/"), username, password_file, dag_id
        self._token: str | None = None
        self._lock = threading.Lock()

    def _password(self) -> str:
        p = Path(self.password_file)
        if not p.is_file():
            raise AirflowUnavailable("the portal has no Airflow password (PHMX_PORTAL_AIRFLOW_PASSWORD_FILE)")
        text = p.read_text(encoding="utf-8").strip()
        if text.startswith("{"):  # Airflow's simple auth manager file: {"user": "password"}
            value = json.loads(text).get(self.username)
            if not isinstance(value, str):
                raise AirflowUnavailable(f"no password for Airflow user {self.username!r} in the password file")
            return value
        return text

    def _login(self) -> str:
        try:
            r = httpx.post(f"{self.url}/auth/token", json={"username": self.username, "password": self._password()},
                           timeout=TIMEOUT_S)
        except httpx.HTTPError:
            raise AirflowUnavailable("Airflow cannot be reached: is the scheduler's API server up?") from None
        if r.status_code not in (200, 201):
            raise AirflowUnavailable("Airflow refused the portal's account: check PHMX_PORTAL_AIRFLOW_USER and its "
                                     "password file")
        return str(r.json()["access_token"])

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:  # noqa: ANN401 - JSON
        for attempt in (0, 1):
            with self._lock:
                if self._token is None or attempt:
                    self._token = self._login()
                token = self._token
            try:
                r = httpx.request(method, f"{self.url}/api/v2{path}", headers={"Authorization": f"Bearer {token}"},
                                  timeout=TIMEOUT_S, **kwargs)
            except httpx.HTTPError:
                raise AirflowUnavailable("Airflow cannot be reached: is the scheduler's API server up?") from None
            if r.status_code == 401 and not attempt:
                continue
            if r.status_code == 404:
                return None
            if r.status_code >= 400:
                raise AirflowUnavailable(f"Airflow answered {r.status_code} to {method} {path.split('?')[0]}")
            return r.json()
        raise AirflowUnavailable("Airflow refused the portal's token")

    def runs(self, limit: int = 25) -> list[dict[str, Any]]:
        """The DAG's newest runs: id, state, period (from conf), when."""
        doc = self._call("GET", f"/dags/{self.dag_id}/dagRuns?order_by=-run_after&limit={limit}") or {}
        return [{"run_id": r["dag_run_id"], "state": r.get("state"), "period": (r.get("conf") or {}).get("period"),
                 "run_after": r.get("run_after"), "start_date": r.get("start_date"), "end_date": r.get("end_date"),
                 "run_type": r.get("run_type")} for r in doc.get("dag_runs", [])]

    def stages(self, run_id: str) -> list[dict[str, Any]] | None:
        """The run's task instances (one per stage), or None when there is no such run."""
        if not RUN_ID.match(run_id):
            return None
        doc = self._call("GET", f"/dags/{self.dag_id}/dagRuns/{httpx.URL(run_id)}/taskInstances")
        if doc is None:
            return None
        out = [{"stage": t["task_id"], "state": t.get("state"), "try_number": t.get("try_number"),
                "start_date": t.get("start_date"), "end_date": t.get("end_date"), "duration_s": t.get("duration")}
               for t in doc.get("task_instances", [])]
        out.sort(key=lambda t: (t["start_date"] or "9999", t["stage"]))
        return out

    def trigger(self, period: str) -> str:
        """Queue a run of the DAG for ``period`` (YYYY-MM or all); return its run id."""
        if not PERIOD.match(period):
            raise ValueError("the period is YYYY-MM or all")
        doc = self._call("POST", f"/dags/{self.dag_id}/dagRuns", json={"logical_date": None, "conf": {"period": period}})
        if doc is None:
            raise AirflowUnavailable(f"Airflow has no DAG {self.dag_id}")
        return str(doc["dag_run_id"])


def quarantine_summary(period: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Quarantined rows counted by submitter, feed, period and rule (newest periods first)."""
    if not lakehouse.delta_exists(QUARANTINE):
        return []
    filters = [("period", "=", period)] if period else None
    t = lakehouse.open_delta(QUARANTINE).to_pyarrow_table(
        columns=["submission_id", "submitter", "feed", "period", "rule_id"], filters=filters)
    counts: Counter[tuple[str, str, str, str]] = Counter()
    files: dict[tuple[str, str, str, str], set[str]] = {}
    for r in t.to_pylist():
        key = (r["submitter"], r["feed"], r["period"], r["rule_id"])
        counts[key] += 1
        files.setdefault(key, set()).add(r["submission_id"])
    out = [{"submitter": s, "feed": f, "period": p, "rule_id": rule, "rows": n, "submissions": len(files[(s, f, p, rule)])}
           for (s, f, p, rule), n in counts.items()]
    out.sort(key=lambda x: (x["period"], x["rows"]), reverse=True)
    return out[:limit]
