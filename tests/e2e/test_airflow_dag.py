"""The DAG loads without import errors, and runs end to end under the real Airflow (`airflow dags test`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import csv_rows

from phmx.feedspec import get_spec

REPO = Path(__file__).resolve().parents[2]


def _airflow_env(tmp: Path, home: Path) -> dict[str, str]:
    from phmx.airflow_env import airflow_env

    os.environ["AIRFLOW_HOME"] = str(tmp / "airflow")
    try:
        return airflow_env()
    finally:
        os.environ.pop("AIRFLOW_HOME", None)


def test_dag_bag_imports_cleanly(tmp_path, phmx_home):
    env = _airflow_env(tmp_path, phmx_home)
    code = ("from airflow.dag_processing.dagbag import DagBag\n"
            "b = DagBag(dag_folder={!r})\n"
            "assert not b.import_errors, b.import_errors\n"
            "d = b.dags['phm_exchange']\n"
            "print(';'.join(t.task_id + '>' + ','.join(sorted(t.downstream_task_ids)) for t in d.tasks))\n"
            ).format(str(REPO / "dags"))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from jobs import STAGES

    # The stages in a straight line, in the declared order, except that publish fans out per
    # recipient: publish_prepare -> publish_recipients -> publish_recipient (mapped) -> publish_report.
    publish = ["publish_prepare", "publish_recipients", "publish_recipient", "publish_report"]
    chain = [t for s in STAGES for t in (publish if s == "publish" else [s])]
    edges = dict(item.split(">") for item in proc.stdout.strip().splitlines()[-1].split(";"))
    assert set(edges) == set(chain)
    for before, after in zip(chain, chain[1:], strict=False):
        assert edges[before] == after
    assert edges[chain[-1]] == ""


@pytest.mark.slow
def test_dag_runs_end_to_end_under_airflow(tmp_path, phmx_home, land, spark):
    enr = get_spec("enrollment").field_names
    rows = [{"member_local_id": f"BC{i}", "cin": f"9{i:07d}C", "given_name": "Eva", "family_name": f"Probe{i}",
             "birth_date": "19900101", "sex": "F", "zip": "94607", "county_fips": "06001", "plan_id": "BC",
             "coverage_start": "20250101", "state": "CA"} for i in range(1, 21)]
    rows.append({"member_local_id": "BAD", "cin": "bad-cin"})  # quarantined, the rest go through
    land("mcp_bluecoast", "enrollment", "2025-01", "e.txt", csv_rows(enr, rows, sep="|"))
    claims = [{"claim_id": f"C{i}", "claim_line": "1", "member_local_id": f"BC{i}", "claim_type": "P",
               "service_from": "2025-01-10", "place_of_service": "11", "cpt_hcpcs": "99213", "dx1": "J459",
               "plan_id": "BC"} for i in range(1, 21)]
    land("mcp_bluecoast", "claims", "2025-01", "c.csv", csv_rows(get_spec("claims").field_names, claims))
    from phmx.airflow_env import airflow_env, ensure_db

    os.environ["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    try:
        env = airflow_env()
    finally:
        os.environ.pop("AIRFLOW_HOME", None)
    env["PHMX_TASK_RETRIES"] = "0"  # fail fast in tests; production retries once
    ensure_db(env)
    proc = subprocess.run([str(Path(sys.executable).with_name("airflow")), "dags", "test", "phm_exchange",
                           "--conf", '{"period": "2025-01"}'], env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "state=failed" not in out and "Task failed" not in out, out[-4000:]
    from phmx import lakehouse

    assert lakehouse.read(spark, "bronze.enrollment").count() == 20
    assert lakehouse.read(spark, "bronze.quarantine").count() >= 1
    assert lakehouse.read(spark, "gold.member").count() == 20
    assert lakehouse.read(spark, "silver.encounter").count() == 20
    assert list((phmx_home / "outbox" / "mcp_bluecoast").rglob("*.json"))
