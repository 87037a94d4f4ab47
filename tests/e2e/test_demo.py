"""The demo's own summary on a small synthetic run: every package verifies as its recipient would
check it, and the LP attacker audit (with the calendar's roll-ups) passes on every published LHJ
measure table: issue #6's "attacker test over the demo's feeds"."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest


@pytest.mark.slow
def test_demo_publishes_verified_packages_no_attacker_can_narrow(tmp_path, monkeypatch, spark):
    from rich.console import Console

    from phmx import demo

    home = tmp_path / "demo"
    monkeypatch.setenv("PHMX_HOME", str(home))  # restored after the test (the demo sets it too)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    assert demo.main(["--members", "300", "--in-process", "--home", str(home)]) == 0
    console = Console(record=True, width=200)
    summary = demo.summarize(console)
    checks = summary["recipient_checks"]
    lhj_packages = [p for p in summary["published"] if "/lhj_" in p]
    assert summary["ledger_ok"] and len(summary["published"]) == checks["verified"] >= 3
    assert checks["lhj_audited"] == len(lhj_packages) >= 1 and checks["audit_failures"] == []
    assert checks["suppressed_cells"] > 0  # a small population: the audit had something to attack
    assert checks["attacked_values"] >= checks["suppressed_cells"]
    manifests = [json.loads((Path(p) / "manifest.json").read_text()) for p in lhj_packages]
    # one suppressed-cell count: the summary's total is the sum of what each package states
    assert checks["suppressed_cells"] == sum(m["content"]["suppressed_cells"] for m in manifests)
    text = console.export_text()
    assert "none can be narrowed below [0, 11]" in text and "report.html" in text
    for p in lhj_packages:
        table = pd.read_parquet(Path(p) / "measures.parquet")
        manifest = json.loads((Path(p) / "manifest.json").read_text())
        assert {"measures.csv", "measures.parquet", "report.html", "measure_report.json"} <= \
            {f["name"] for f in manifest["files"]}
        hidden = table["numerator"].isna() | table["denominator"].isna()
        assert table.loc[hidden, ["rate", "ci_low", "ci_high"]].isna().all().all()  # no rate gives a count back
