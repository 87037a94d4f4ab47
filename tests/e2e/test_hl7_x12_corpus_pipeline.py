"""The HL7 v2 and X12 conformance corpus, as real senders sent it, through the whole pipeline to published feeds.

Every file of tests/conformance/hl7v2_vxu, hl7v2_adt and x12_834 lands under the feed and submitter of its
case (each replace-mode file in a period of its own, so none supersedes another); ``run_pipeline`` (what
``phmx run`` calls) must finish every stage, accept exactly the records the cases expect, acknowledge every
submission in the outbox and publish packages that verify.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from phmx.pipeline import run_pipeline

CORPUS = Path(__file__).resolve().parents[1] / "conformance"
FOLDERS = ("hl7v2_vxu", "hl7v2_adt", "x12_834")
ACK_SUFFIX = {"immunizations_vxu": ".ack.hl7", "adt": ".ack.hl7", "enrollment_834": (".999.x12", ".ta1.x12")}


@pytest.mark.slow
def test_the_hl7_and_x12_corpus_reaches_published_feeds(spark, phmx_home, land):
    from jobs.publish.verify import verify_package

    expected = 0
    landed: dict[str, int] = {}
    for folder in FOLDERS:
        cases = yaml.safe_load((CORPUS / folder / "cases.yaml").read_text())["cases"]
        for k, case in enumerate(cases):
            period = f"2024-{k + 1:02d}"
            land(case["submitter"], case["feed"], period, case["file"], (CORPUS / folder / case["file"]).read_bytes())
            expected += case["accepted"]
            landed[case["feed"]] = landed.get(case["feed"], 0) + 1
    results = {r.stage: r for r in run_pipeline(period="all", run_id="run-hl7-x12-corpus")}
    assert {"ingest", "conform", "identity", "consent", "measures", "publish"} <= set(results)
    assert results["ingest"].counts["rows_accepted"] == expected
    for feed, n in landed.items():
        receipts = list((phmx_home / "outbox").rglob(f"receipts/{feed}/*/*.json"))
        assert len(receipts) == n, feed
        suffixes = ACK_SUFFIX[feed] if isinstance(ACK_SUFFIX[feed], tuple) else (ACK_SUFFIX[feed],)
        for r in receipts:
            assert any(r.with_name(r.name.removesuffix(".json") + s).exists() for s in suffixes), r.name
    packages = [m.parent for m in (phmx_home / "publish").rglob("manifest.json")]
    assert packages, "nothing was published"
    for p in packages:
        verify_package(p)
