"""The demo's own summary on a small synthetic run: every package verifies as its recipient would
check it, and the LP attacker audit (with the calendar's roll-ups) passes on every published LHJ
measure table: issue #6's "attacker test over the demo's feeds". And the demo's auditor report
(``phmx audit report``) raises no false alarm: checked in headless chromium, every red figure has
its drill-down, and "disclosures after revocation" equals a count made here from the ledger, the
disclosure rows and the consent registry (disclosures that relied on a consent revoked before them)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from testkit import relied_on_after_revocation


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
    # an ECM provider's and its plan's packages, delivered by publish, with the dashboard the demo points to
    assert "mcp_bluecoast" in summary["ecm_packages"] and len(summary["ecm_packages"]) == 2
    for recipient, folder in summary["ecm_packages"].items():
        ecm_manifest = json.loads((Path(folder) / "manifest.json").read_text())
        names = {f["name"] for f in ecm_manifest["files"]}
        assert {"dashboard.html", "statement.csv", "members.parquet", "RiskAssessment.ndjson"} <= names
        assert ecm_manifest["content"]["attributed_members"] > 0, recipient
    assert "An ECM provider's package" in console.export_text(clear=False)
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
    _check_auditor_report(tmp_path)


class _Page(HTMLParser):
    """Ids, in-page links and the red (``class="bad"``) figures of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.red: list[str] = []
        self._in_red: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        if d.get("id"):
            self.ids.add(str(d["id"]))
        if tag == "a" and str(d.get("href", "")).startswith("#"):
            self.hrefs.append(str(d["href"])[1:])
        if "bad" in str(d.get("class", "")).split():
            self.red.append(str(d.get("id", "")))


def _check_auditor_report(tmp_path: Path) -> None:
    from consent import report

    written = report.write_report(str(tmp_path / "audit"))
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("Debian chromium is not installed (apt-get install -y chromium); the project set-up installs it")
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           Path(written["report"]).resolve().as_uri()],
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = _Page()
    page.feed(proc.stdout)
    assert "Consent and disclosure audit report" in proc.stdout
    assert not [h for h in page.hrefs if h not in page.ids], "a link with no target"
    # The chain verifies; the only figure that may be red is "after revocation", and only with
    # its drill-down, and only counting what the stored data say relied on a revoked consent.
    assert re.search(r'id="chain-status" class="ok"', proc.stdout)
    assert set(page.red) <= {"after-revocation"}, page.red
    shown = int(re.search(r'id="after-revocation" class="(?:ok|bad)">(\d+)<', proc.stdout).group(1))
    assert shown == relied_on_after_revocation()
    if shown:
        assert "revocation-violations" in page.ids and "revocation-violations" in page.hrefs
        assert len(report.model()["figures"]["revocation_violations"]) - 1 >= shown
