"""The conformance corpus: public files written outside this project, each with its expected outcome.

Every ``tests/conformance/<source>/cases.yaml`` lists files and what intake must make of them
(status, records accepted, records quarantined per rule). The check is the offline intake that
``phmx validate`` runs, so a standard-valid file the hub starts refusing fails CI here.
See README.md for the layout and how a case is added.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.ingest.landing import LandedFile
from jobs.ingest.process import process_file
from jobs.ingest.specs import load_specs

HERE = Path(__file__).resolve().parent
RECEIVED = datetime(2025, 2, 1, 12, 0, tzinfo=UTC)


def _cases() -> list[Any]:
    out = []
    for cases_file in sorted(HERE.glob("*/cases.yaml")):
        source = cases_file.parent.name
        doc = yaml.safe_load(cases_file.read_text(encoding="utf-8")) or {}
        for case in doc.get("cases") or []:
            out.append(pytest.param(source, case, id=f"{source}/{case['file']}"))
    return out


@pytest.mark.parametrize(("source", "case"), _cases())
def test_case(source: str, case: dict[str, Any]) -> None:
    folder = HERE / source
    path = folder / case["file"]
    data = path.read_bytes()
    period = str(case.get("period", "2025-01"))
    submitter, feed = case["submitter"], case["feed"]
    lf = LandedFile(uri=str(path), relpath=f"{submitter}/{feed}/{period}/{path.name}", submitter=submitter,
                    feed=feed, period=period, name=path.name, size=len(data), layout_ok=True)
    companions = {name: (folder / name).read_bytes() for name in case.get("companions") or []}
    kwargs = {"companions": companions} if companions else {}
    out = process_file(lf, data, load_specs(), received_at=RECEIVED, **kwargs)
    r = out.receipt
    assert r.rows_landed == r.rows_accepted + r.rows_quarantined, "records were lost"
    quarantined = Counter(q["rule_id"] for q in out.quarantine)
    assert (r.status, r.rows_accepted, dict(quarantined)) == (
        case["status"], case["accepted"], dict(case.get("quarantined") or {})), case.get("why", "")
    for rule, n in (case.get("warnings") or {}).items():
        assert sum(w["count"] for w in r.warnings if w["rule_id"] == rule) == n, rule


@pytest.mark.slow
def test_the_whole_corpus_runs_to_a_published_feed(spark, phmx_home):
    """Every case landed at once (with its companions), beside a small synthetic California
    population, goes through ``phmx run``: each file's receipt matches its case, no stage fails,
    the corpus's accepted records reach silver and the run publishes its feeds.

    The public files describe people outside California (Synthea's are in Massachusetts), so they
    fall in no local health jurisdiction; the synthetic background gives the run LHJs to publish to.
    """
    import json

    from phmx import lakehouse
    from phmx.pipeline import run_pipeline
    from phmx.synth.generator import generate

    generate(str(phmx_home), members=60, counties=["06001"], seed=13, months=1)
    cases = [p.values for p in _cases()]
    for source, case in cases:
        folder = HERE / source
        dest = phmx_home / "landing" / case["submitter"] / case["feed"] / str(case.get("period", "2025-01"))
        dest.mkdir(parents=True, exist_ok=True)
        for name in [case["file"], *(case.get("companions") or [])]:
            (dest / Path(name).name).write_bytes((folder / name).read_bytes())
    results = {r.stage: r for r in run_pipeline(period="all", run_id="run-conformance")}
    got: dict[str, dict[str, Any]] = {}
    for p in (phmx_home / "outbox").rglob("receipts/**/*.json"):
        doc = json.loads(p.read_text())
        got[doc["source_file"]] = doc
    for _source, case in cases:
        rel = f"{case['submitter']}/{case['feed']}/{case.get('period', '2025-01')}/{Path(case['file']).name}"
        assert (got[rel]["status"], got[rel]["rows_accepted"]) == (case["status"], case["accepted"]), rel
    synthea = [c for s, c in cases if s == "synthea_csv"]
    if synthea:
        imms = lakehouse.read(spark, "silver.immunization").where("source = 'registry_synthea'").count()
        assert imms == sum(c["accepted"] for c in synthea)
    assert results["publish"].counts["lhj_feeds"] >= 1 and results["publish"].counts["failed"] == 0
    assert any(p.is_file() for p in (phmx_home / "publish").rglob("*"))
