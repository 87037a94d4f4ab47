"""jobs/submit.py, the driver spark-submit and EMR Serverless run, on the embedded engine.

The real run is a subprocess started the way a cluster starts it (``python jobs/submit.py ...``,
PHMX_ENGINE unset, so the driver starts its own embedded engine); failures are checked in
process through ``main`` and must come back as the stable exit codes of phmx's errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import csv_rows

from phmx import lakehouse, runners
from phmx.feedspec import get_spec
from phmx.tables import SUBMISSIONS

REPO = Path(__file__).resolve().parents[2]
SUBMIT = REPO / "jobs" / "submit.py"


def _land_enrollment(land, n: int = 12) -> None:
    fields = get_spec("enrollment").field_names
    rows = [{"member_local_id": f"SB{i}", "cin": f"9{i:07d}D", "given_name": "Ida", "family_name": f"Driver{i}",
             "birth_date": "19850202", "sex": "F", "zip": "94607", "county_fips": "06001", "plan_id": "BC",
             "coverage_start": "20250101", "state": "CA"} for i in range(1, n + 1)]
    rows.append({"member_local_id": "BAD", "cin": "not-a-cin"})  # one row for quarantine
    land("mcp_bluecoast", "enrollment", "2025-01", "enr.txt", csv_rows(fields, rows, sep="|"))


def test_submit_script_is_the_one_the_runners_submit():
    assert runners.submit_script() == str(SUBMIT)
    assert runners.SparkSubmitConfig().application == str(SUBMIT)


def test_driver_runs_a_stage_as_a_script_on_the_embedded_engine(phmx_home, land, spark):
    _land_enrollment(land)
    # As a cluster starts it (the script's folder first on sys.path, no engine settings), with
    # this checkout's packages importable as an installed wheel's would be.
    env = {k: v for k, v in os.environ.items() if k not in ("PHMX_ENGINE", "SPARK_REMOTE", "PYTHONPATH")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run([sys.executable, str(SUBMIT), "--stage", "ingest", "--period", "2025-01",
                           "--run-id", "manual__submit"], env=env, cwd=str(phmx_home), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["stage"] == "ingest", result
    assert result["counts"]["rows_accepted"] == 12 and result["counts"]["rows_quarantined"] == 1, result
    assert lakehouse.read(spark, "bronze.enrollment").count() == 12
    subs = lakehouse.read(spark, SUBMISSIONS).collect()
    assert [s.period for s in subs] == ["2025-01"]


def test_period_and_run_id_default_to_the_job_environment(monkeypatch):
    from jobs.submit import parser

    monkeypatch.setenv("PHMX_JOB_PERIOD", "2025-04")
    monkeypatch.setenv("PHMX_JOB_RUN_ID", "scheduled__x")
    args = parser().parse_args(["--stage", "publish", "--option", "recipient=lhj_alameda"])
    assert (args.period, args.run_id, args.option) == ("2025-04", "scheduled__x", [("recipient", "lhj_alameda")])
    monkeypatch.delenv("PHMX_JOB_PERIOD")
    monkeypatch.delenv("PHMX_JOB_RUN_ID")
    args = parser().parse_args(["--stage", "ingest"])
    assert (args.period, args.run_id) == ("all", None)


def test_unknown_stage_and_unknown_option_exit_with_the_config_code(phmx_home, spark, capsys):
    from jobs.submit import main

    assert main(["--stage", "nope"]) == 10
    assert "unknown stage 'nope'" in capsys.readouterr().err
    assert main(["--stage", "conform", "--option", "recipient=lhj_alameda"]) == 10
    assert "stage conform takes no option ['recipient']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--stage", "ingest", "--option", "no-equals-sign"])
    assert exc.value.code == 2  # argparse usage error


def test_a_failing_stage_exits_non_zero_with_its_error_code(phmx_home, land, spark, monkeypatch, capsys):
    from jobs.submit import main

    _land_enrollment(land, n=3)
    blocker = phmx_home / "not-a-directory"
    blocker.write_text("a file where the lakehouse should be\n")
    monkeypatch.setenv("PHMX_LAKEHOUSE_ROOT", str(blocker))
    code = main(["--stage", "ingest", "--period", "2025-01", "--run-id", "manual__fails"])
    err = capsys.readouterr().err
    assert code in (30, 40), (code, err)  # EngineError or StorageError, not a crash
    assert err.startswith("phmx ingest:")
    assert "Driver" not in err and "8000000" not in err  # no names or ids from the rows
