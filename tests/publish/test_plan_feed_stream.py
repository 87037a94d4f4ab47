"""The streamed plan feed: the engine's resources equal the Python oracle's (tests/publish/fhir_oracle.py), the
Patient carries no direct identifier, checks run on every resource and validation on a sample."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fhir_oracle import resources as oracle_resources
from publish_testdata import NOW, build, local_id

PLANS = ("mcp_bluecoast", "mcp_sierra")


@pytest.fixture(scope="module")
def feeds(spark, module_home):
    """For each plan: the permitted rows, the reference resources, and the streamed package."""
    from jobs.publish import package, plan_feed
    from jobs.publish.lhj_cube import Scope
    from phmx import settings

    build(spark)
    root = settings.load().publish_root
    out = {}
    for plan in PLANS:
        rows = plan_feed.permitted(spark, plan, Scope("all"), NOW)
        reference = oracle_resources(rows.records(), plan)
        pkg, counts = plan_feed.build(spark, recipient=plan, period="all", run_id="stream-test", rows=rows,
                                      generated_at=datetime.now(UTC), root=root)
        delivered = package.deliver(pkg, root)
        out[plan] = (rows, reference, counts, Path(delivered.uri))
    return out


def _read(folder: Path, t: str) -> list[dict]:
    return [json.loads(x) for x in (folder / f"{t}.ndjson").read_text().splitlines()]


@pytest.mark.parametrize("plan", PLANS)
def test_streamed_resources_equal_the_reference_builder(feeds, plan):
    from jobs.publish.fhir_sql import RESOURCE_TYPES

    _, reference, counts, folder = feeds[plan]
    for t in RESOURCE_TYPES:
        got = _read(folder, t)
        assert [r["id"] for r in got] == [r["id"] for r in reference[t]], t  # same ids, same order
        assert got == reference[t], t  # same documents, field by field
        assert counts[t] == len(got) and len({r["id"] for r in got}) == len(got), t  # ids unique
    assert counts["Patient"] and counts["Encounter"] and counts["Condition"] and counts["Coverage"]


def test_patient_has_no_direct_identifiers(feeds):
    from jobs.publish.fhir_measure import HUB

    _, _, _, folder = feeds["mcp_bluecoast"]
    patients = _read(folder, "Patient")
    assert len(patients) == 75
    for p in patients:
        assert "name" not in p and "telecom" not in p
        systems = [i["system"] for i in p["identifier"]]
        assert systems == [f"{HUB}/sid/pseudonym/mcp_bluecoast", f"{HUB}/sid/mcp_bluecoast/member-id"]
        assert p["gender"] in ("female", "male") and p["birthDate"] and p["address"][0]["postalCode"]
    own = {i["value"] for p in patients for i in p["identifier"] if i["system"].endswith("/member-id")}
    assert own == {local_id(i) for i in range(2, 151, 2)}
    text = (folder / "Patient.ndjson").read_text()
    assert "medi-cal-cin" not in text and "Synth" not in text and "Person" not in text


def test_manifest_records_counts_and_validation(feeds):
    from jobs.publish import ndjson_stream
    from jobs.publish.verify import verify_package

    _, _, counts, folder = feeds["mcp_sierra"]
    manifest = verify_package(folder).manifest
    assert manifest["content"]["resources"] == counts
    v = manifest["validation"]
    assert v["structural_checks"] == "every resource" and v["fhir_resources_R4B"] == "sample"
    for t, c in counts.items():  # the small feed is inside the first FIRST lines: all validated
        assert v["by_type"][t] == {"resources": c, "fhir_validated": min(c, ndjson_stream.FIRST)}
    assert "no names and no Medi-Cal CIN" in manifest["identifiers"]


def test_sample_positions_are_deterministic():
    from jobs.publish.ndjson_stream import EVERY, FIRST, sample_positions

    whole = sample_positions(0, 5 * EVERY + FIRST, "sample")
    assert whole[:FIRST] == list(range(FIRST)) and whole[FIRST:] == list(range(EVERY, 5 * EVERY + FIRST, EVERY))
    pieces = [p for a, b in ((0, 7), (7, 999), (999, 1003), (1003, 5 * EVERY + FIRST))
              for p in sample_positions(a, b, "sample")]
    assert pieces == whole  # batch boundaries do not change the sample
    assert sample_positions(3, 9, "all") == list(range(3, 9)) and sample_positions(0, 9, "none") == []


def test_structural_failure_stops_the_file(spark, tmp_path):
    from jobs.publish.ndjson_stream import write_ndjson
    from jobs.publish.package import HashingWriter
    from phmx.errors import PhmxError

    good = '{"resourceType":"Flag","id":"v1.' + "a" * 40 + '","status":"active","code":{"text":"x"},' \
           '"subject":{"reference":"Patient/v1.' + "b" * 40 + '"}}'
    df = spark.createDataFrame([("v1." + "a" * 40, good + "\n", False, None), ("bad", good + "\n", True, "rid_pseudonym")],
                               "id string, line string, part2 boolean, problem string")
    writer = HashingWriter(tmp_path / "Flag.ndjson")
    with pytest.raises(PhmxError) as exc:
        write_ndjson(df.orderBy("id"), writer, "Flag", mode="all")
    assert "rid_pseudonym x1" in str(exc.value)
    writer.abort()
    assert not (tmp_path / "Flag.ndjson").exists()
    ok = HashingWriter(tmp_path / "ok.ndjson")
    stats = write_ndjson(df.where("problem is null"), ok, "Flag", mode="all")
    assert (stats.count, stats.validated, stats.part2) == (1, 1, 0)
    assert ok.close().size == len(good) + 1


@pytest.mark.parametrize("kind", ["string", "large_string"])
def test_string_buffer_bytes_respect_slices(kind):
    import pyarrow as pa

    from jobs.publish.ndjson_stream import _string_bytes

    arr = pa.array(["{\"a\":1}\n", "{\"b\":2}\n", "{\"c\":3}\n", "{\"d\":4}\n"], type=getattr(pa, kind)())
    assert bytes(_string_bytes(arr)) == b'{"a":1}\n{"b":2}\n{"c":3}\n{"d":4}\n'
    assert bytes(_string_bytes(arr.slice(1, 2))) == b'{"b":2}\n{"c":3}\n'
    assert bytes(_string_bytes(arr.slice(4, 0))) == b""


def test_risk_tiers_and_populations_of_focus_parse_back(feeds, spark):
    """RiskAssessment (the latest rolling tier, its window and basis) and Flags for populations of focus
    read back with fhir.resources; a Part 2 labelled tier only where the plan has the member's consent."""
    from fhir.resources.R4B.flag import Flag
    from fhir.resources.R4B.riskassessment import RiskAssessment
    from pyspark.sql import functions as F

    from jobs.publish.fhir_sql import POPULATION_CS
    from phmx import lakehouse
    from phmx.tables import CONSENT_DECISION, MEMBER_RISK

    rows, _, counts, folder = feeds["mcp_bluecoast"]
    ras = [RiskAssessment.model_validate(r) for r in _read(folder, "RiskAssessment")]
    assert ras and counts["RiskAssessment"] == len(ras)
    assert {(str(r.occurrencePeriod.start), str(r.occurrencePeriod.end)) for r in ras} == {("2024-07-01", "2025-06-30")}
    assert {r.method.text for r in ras} == {"rolling 12 months, period R12-2025-06"}  # never the older period
    assert all(r.prediction[0].qualitativeRisk.coding[0].code in ("high", "rising", "low") for r in ras)
    assert all(any("utilization points" in b.display for b in r.basis) for r in ras)
    pops = [Flag.model_validate(f) for f in _read(folder, "Flag")
            if f["code"]["coding"][0]["system"] == POPULATION_CS]
    assert {f.code.coding[0].code for f in pops} >= {"HOMELESS_ADULT"}
    # Part 2 labelled tiers: sent exactly for the plan's members whose SUD decision toward it permits
    records = rows.records()
    mine = {r["member_id"] for r in records if r["kind"] == "patient"}
    labelled = {r.member_id for r in lakehouse.read(spark, MEMBER_RISK).where(
        (F.col("period") == "R12-2025-06") & F.array_contains("security_labels", "42CFRPart2")).collect()} & mine
    permitted = {r.member_id for r in lakehouse.read(spark, CONSENT_DECISION).where(
        (F.col("recipient") == "mcp_bluecoast") & (F.col("purpose") == "TREAT") & (F.col("data_class") == "SUD")
        & (F.col("decision") == "permit") & F.col("valid_to").isNull()).collect()}
    sent = {r["member_id"] for r in records if r["kind"] == "risk" and "42CFRPart2" in (r["security_labels"] or [])}
    assert labelled and sent == labelled & permitted and labelled - permitted  # some withheld
