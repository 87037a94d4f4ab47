"""The adults' BMI the plans send as FHIR Observations (phmx.synth.bmi): what the hub's feed specs
read, a realistic share of obesity, adults only, and nothing else in a seed's output changed."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

from phmx.synth import generate
from phmx.synth.fhir_resources import merge_ndjson


def _resources(dataset, feed: str) -> list[tuple[str, dict]]:
    out = []
    for path in dataset.files(feed):
        submitter = path.relative_to(dataset.root).parts[1]
        out += [(submitter, json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]
    return out


def test_bmi_observations_are_adults_latest_share_obese_and_each_references_its_patient(dataset):
    patients = {(s, r["id"]): r for s, r in _resources(dataset, "fhir_patient")}
    obs = _resources(dataset, "fhir_observation")
    assert obs and all(s.startswith("mcp_") for s, _ in obs)
    latest: dict[tuple[str, str], tuple[str, float]] = {}
    for submitter, o in obs:
        assert o["status"] == "final" and o["code"]["coding"] == [{"system": "http://loinc.org", "code": "39156-5"}]
        q = o["valueQuantity"]
        assert (q["system"], q["code"], q["unit"]) == ("http://unitsofmeasure.org", "kg/m2", "kg/m2")
        assert 15 < q["value"] < 50
        day = date.fromisoformat(o["effectiveDateTime"])
        assert date(2025, 1, 1) <= day <= date(2025, 6, 30)
        pid = o["subject"]["reference"].removeprefix("Patient/")
        p = patients[(submitter, pid)]  # the plan sends the Patient it references
        birth = date.fromisoformat(p["birthDate"])
        assert day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day)) >= 18
        key = (submitter, pid)
        if key not in latest or latest[key][0] < o["effectiveDateTime"]:
            latest[key] = (o["effectiveDateTime"], q["value"])
    # obesity among low-income adults is about 38% (module docstring's sources)
    share = sum(v >= 30 for _, v in latest.values()) / len(latest)
    assert 0.32 <= share <= 0.44, share
    # about 60% of adult members have one recorded in the window
    adults = {(s, r["member_local_id"]) for s, r in dataset.rows("enrollment") if r["birth_date"][:4] <= "2006"}
    assert 0.45 <= len(latest) / len(adults) <= 0.75
    truth = dataset.truth("bmi.csv")
    assert len(truth) == len(obs) and all(r["person_id"] for r in truth)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_bmi_files_change_no_other_file_of_the_seed(tmp_path, monkeypatch):
    generate(tmp_path / "with", members=300, counties=["06001"], seed=5, months=3)
    monkeypatch.setattr("phmx.synth.generator.write_bmi", lambda root, seed: {})
    generate(tmp_path / "without", members=300, counties=["06001"], seed=5, months=3)
    with_bmi, without = _digest(tmp_path / "with"), _digest(tmp_path / "without")
    extra = set(with_bmi) - set(without)
    assert extra and all("/fhir_patient/" in k or "/fhir_observation/" in k or k == "ground_truth/bmi.csv"
                         for k in extra)
    assert {k: with_bmi[k] for k in without if k != "ground_truth/manifest.json"} == \
        {k: v for k, v in without.items() if k != "ground_truth/manifest.json"}


def test_a_second_writer_adds_to_the_plans_month_file_and_a_rerun_changes_nothing(tmp_path):
    path = tmp_path / "x.ndjson"
    assert merge_ndjson(path, [{"resourceType": "Observation", "id": "a-BMI1"}]) == 1
    assert merge_ndjson(path, [{"resourceType": "Observation", "id": "b-A1"}, {"resourceType": "Observation", "id": "b-A2"}]) == 3
    before = path.read_bytes()
    assert merge_ndjson(path, [{"resourceType": "Observation", "id": "b-A1"}, {"resourceType": "Observation", "id": "b-A2"}]) == 3
    assert path.read_bytes() == before
    assert [json.loads(x)["id"] for x in before.decode().splitlines()] == ["a-BMI1", "b-A1", "b-A2"]
