"""The demo's own summary on a small synthetic run: every package verifies as its recipient would
check it, and the LP attacker audit (with the calendar's roll-ups) passes on every published LHJ
measure table: issue #6's "attacker test over the demo's feeds". And the demo's auditor report
(``phmx audit report``) raises no false alarm: checked in headless chromium, every red figure has
its drill-down, and "disclosures after revocation" equals a count made here from the ledger, the
disclosure rows and the consent registry (disclosures that relied on a consent revoked before them)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from datetime import date, timedelta
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
    monkeypatch.setenv("PHMX_RISK_HISTORY_MONTHS", "12")  # what the demo sets when unset (restored after)
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
    _check_ecm_packages_against_the_truth(spark, home, summary["ecm_packages"])
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
    # obesity from the BMI the plans send as FHIR Observations (phmx.synth.bmi), against the generator's truth
    from phmx import lakehouse
    from phmx.tables import INDICATOR_STRATA

    cube = lakehouse.read(spark, INDICATOR_STRATA).where(
        "indicator_id = 'OBES' AND period = '2025' AND stratifier = 'all'").toPandas()
    num, den = obesity_truth(home, 2025)
    assert den > 0 and (int(cube["numerator"].sum()), int(cube["denominator"].sum())) == (num, den)


def _check_ecm_packages_against_the_truth(spark, home: Path, packages: dict[str, str]) -> None:  # noqa: ANN001
    """Every metric row of the demo's ECM packages (a provider's, its plan's) equals the generator's truth of
    the run, phmx.synth.ecm_truth: every file written read back in plain Python; the comparison group on the
    hub's risk tiers, the one input it shares (tests/ecm/ecm_risk_input.py). The demo's one run over twelve
    months writes the tier history of every month (PHMX_RISK_HISTORY_MONTHS), so the comparison group has
    members: some comparison rows have a denominator, in the packages as in the truth."""
    from ecm.ecm_risk_input import tiers_from_lakehouse

    from phmx.synth.ecm_truth import COMPARISON, full_truth

    def num(x: object) -> float | None:
        return None if x in ("", None) or pd.isna(x) else float(x)  # type: ignore[arg-type]

    truth = {(r["provider_npi"], r["plan_id"], r["month"], r["metric_id"]):
             (num(r["numerator"]), num(r["denominator"]), num(r["value"]))
             for r in full_truth(home, tiers_from_lakehouse(spark, home))}
    for recipient, folder in packages.items():
        pm = pd.read_parquet(Path(folder) / "provider_month.parquet")
        got = {(r.provider_npi, r.plan_id, r.month, r.metric_id): (num(r.numerator), num(r.denominator), num(r.value))
               for r in pm.itertuples()}
        scope = {(k[0], k[1]) for k in got}
        assert got and set(got) == {k for k in truth if (k[0], k[1]) in scope}, recipient
        wrong = {k: (truth[k], v) for k, v in got.items() if truth[k] != v}
        assert not wrong, (recipient, list(wrong.items())[:3])
        assert any(k[3] in COMPARISON and (v[1] or 0) > 0 for k, v in got.items()), recipient


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


def _d(v: str) -> date | None:
    v = v.strip().replace("-", "")
    return date(int(v[:4]), int(v[4:6]), int(v[6:8])) if len(v) == 8 and v.isdigit() else None


def obesity_truth(root: Path, year: int, min_months: int = 6, min_age: int = 20) -> tuple[int, int]:
    """The obesity indicator (OBES) statewide for ``year`` in plain Python from what the generator wrote
    (rosters, person map, people, ``ground_truth/bmi.csv``), by its definition in
    mappings/indicators/indicators.yaml: adults ``min_age`` or older in their last enrolled month of the
    year, enrolled at least ``min_months`` months, with a BMI that year (the denominator); those whose
    latest BMI is 30 or more (the numerator). Shares no code with jobs/indicators."""
    person_of: dict[tuple[str, str], str] = {}
    with (root / "ground_truth" / "person_map.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["feed"] == "enrollment":
                person_of[(r["submitter"], r["source_person_id"])] = r["person_id"]
    with (root / "ground_truth" / "people.csv").open(encoding="utf-8", newline="") as fh:
        birth = {r["person_id"]: _d(r["birth_date"]) for r in csv.DictReader(fh)}
    months: dict[str, set[date]] = {}
    for path in sorted((root / "landing").glob(f"mcp_*/enrollment/{year}-*/*.txt")):
        first = date(int(path.parts[-2][:4]), int(path.parts[-2][5:7]), 1)
        last = date(first.year + (first.month == 12), first.month % 12 + 1, 1) - timedelta(days=1)
        with path.open(encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh, delimiter="|"):
                start, end = _d(r["coverage_start"]), _d(r["coverage_end"])
                if (start is None or start <= last) and (end is None or end >= first):
                    months.setdefault(person_of[(path.parts[-4], r["member_local_id"])], set()).add(first)
    latest: dict[str, tuple[str, str, float]] = {}
    with (root / "ground_truth" / "bmi.csv").open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            if r["effective_date"][:4] == str(year):
                key = (r["effective_date"], r["observation_id"], float(r["bmi"]))
                if r["person_id"] not in latest or latest[r["person_id"]] < key:
                    latest[r["person_id"]] = key
    num = den = 0
    for pid, ms in months.items():
        b, last_month = birth[pid], max(ms)
        if len(ms) < min_months or b is None or pid not in latest:
            continue
        age = last_month.year - b.year - ((last_month.month, last_month.day) < (b.month, b.day))
        if age >= min_age:
            den += 1
            num += latest[pid][2] >= 30
    return num, den
