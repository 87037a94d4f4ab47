"""ECM provider-month metrics: on a hand-built sequence, and against the synthetic generator's ground truth
(every metric of a full synthetic run through the real stages; and on the benchmark's lakehouse)."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from pathlib import Path

import pytest
from ecm_clinical_world import CLINICAL_EXPECTED, land_clinical, write_coverage_and_tiers
from ecm_world import EXPECTED, NPI, PLAN, land_world

from jobs import conform, ecm, identity, ingest
from jobs.ecm import statements
from jobs.ecm.config import load
from jobs.ecm.contracts import parse
from phmx import lakehouse
from phmx.context import RunContext
from phmx.tables import MEMBER_MONTH


def _pipeline(spark, period: str = "all"):  # noqa: ANN001, ANN202
    for stage in (ingest, conform, identity):
        stage.run(spark, RunContext.new())
    return ecm.run(spark, RunContext.new(period))


def _defaults(month: str, metric_id: str) -> tuple[float, float | None, float | None]:
    """A metric's row where nothing happened: 0 for counts, 0/0 (no value) for ratios and means, and
    0 over the other metric's count for a ``denominator_metric`` (services per engaged member)."""
    m = load().get(metric_id.split(":")[0])
    if m.denominator_metric:
        den = EXPECTED.get((month, m.denominator_metric), (0.0,))[0]
        return (0.0, den, 0.0 if den else None)
    if m.denominator:
        return (0.0, 0.0, None)
    return (0.0, None, 0.0)


def test_hand_built_sequence_gives_the_worked_out_metrics(spark, phmx_home, land):
    """The process metrics of ecm_world.py and the clinical, cost and quality metrics of
    ecm_clinical_world.py (claims with paid amounts, FHIR Observations, ADT messages, a comparison
    member) in one run: every row of the grid is the worked-out value, or the default where nothing happened."""
    land_world(land)
    land_clinical(land)
    for stage in (ingest, conform, identity):
        stage.run(spark, RunContext.new())
    assert lakehouse.read(spark, "bronze.quarantine").count() == 0  # every clinical row taken
    ids = write_coverage_and_tiers(spark)
    result = ecm.run(spark, RunContext.new("all"))
    assert result.counts["months"] == 4 and result.counts["assignments_unlinked"] == 0
    rows = lakehouse.read(spark, "gold.ecm_provider_month").collect()
    got = {(r.month, r.metric_id): (r.numerator, r.denominator, r.value) for r in rows}
    assert {(r.provider_npi, r.plan_id) for r in rows} == {(NPI, PLAN)}
    assert {m for m, _ in got} == {"2025-01", "2025-02", "2025-03", "2025-04"}
    expected = {**EXPECTED, **CLINICAL_EXPECTED}
    for key, have in sorted(got.items()):
        want = expected.get(key, _defaults(*key))
        assert have == tuple(None if v is None else float(v) for v in want), key
    family = {r.metric_id: r.family for r in rows}
    assert family["cbp"] == "quality" and family["tcoc_pmpm_after_enrollment"] == "financial"
    assert family["ed_visits_per_1000"] == "clinical" and family["engaged_members"] == "process"
    # the members behind the lines: B's March row ends on the day B declined, and was never engaged
    mm = {(r.member_id, r.month): r for r in lakehouse.read(spark, "gold.ecm_member_month").collect()}
    assert len(mm) == 6
    b = [r for r in mm.values() if r.month == "2025-03" and r.authorization_end is not None]
    assert len(b) == 1 and b[0].authorization_end == dt.date(2025, 3, 5) and not b[0].engaged
    assert b[0].outreach_attempts == 1 and b[0].successful_outreach == 1

    # a month run gives the month the same clinical, cost and quality values as the run over all data
    # (its windows reach back before the month: diagnoses, the 12 months before enrollment, screens)
    ecm.run(spark, RunContext.new("2025-03"))
    again = {(r.month, r.metric_id): (r.numerator, r.denominator, r.value)
             for r in lakehouse.read(spark, "gold.ecm_provider_month").where("month = '2025-03'").collect()}
    assert again == {k: v for k, v in got.items() if k[0] == "2025-03"}

    # a contract paying quality bonuses on CBP, GSD (lower is better: max_value tiers) and DSF screening,
    # priced by hand from the values above: PMPM 450 (A engaged every month); CBP 1.0 in March and April
    # (5% = 22.50), nothing in January and February (no hypertensive member: denominator 0); GSD 1.0 in
    # January and February (no bonus), 0.0 in March and April (best tier, 4% = 18.00); DSF screening
    # 1.0 every month (1% = 4.50).
    contract = parse({"contract_id": "bc-quality", "plan_id": PLAN, "providers": "all", "start": "2025-01",
                      "pmpm": {"rate": 450.0}, "quality": [
                          {"metric": "cbp", "tiers": [{"min_value": 0.8, "share_of_pmpm": 0.05}]},
                          {"metric": "gsd_poor_control", "tiers": [{"max_value": 0.2, "share_of_pmpm": 0.04},
                                                                   {"max_value": 0.5, "share_of_pmpm": 0.02}]},
                          {"metric": "dsf_screening", "tiers": [{"min_value": 0.9, "share_of_pmpm": 0.01}]}]},
                     Path("bc-quality.yaml"))
    lines, _ = statements.statement(spark, contract, ["2025-01", "2025-02", "2025-03", "2025-04"], "r")
    priced = {(r.month, r.line_id): r.amount for r in lines.collect()}
    for m, cbp, gsd, total in (("2025-01", 0.0, 0.0, 454.5), ("2025-02", 0.0, 0.0, 454.5),
                               ("2025-03", 22.5, 18.0, 495.0), ("2025-04", 22.5, 18.0, 495.0)):
        assert (priced[(m, "QUALITY:cbp")], priced[(m, "QUALITY:gsd_poor_control")],
                priced[(m, "QUALITY:dsf_screening")], priced[(m, "TOTAL")]) == (cbp, gsd, 4.5, total), m

    # the 12 months before enrollment do not depend on the enrollment month itself being covered: with A's
    # January 2025 (the enrollment month) uncovered, February still averages 2024's 12 covered months
    kept = [tuple(r) for r in lakehouse.read(spark, "gold.member_month").select("member_id", "month").collect()
            if not (r.member_id == ids["BC1"] and r.month == dt.date(2025, 1, 1))]
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(kept, "member_id string, month date"),
                                             MEMBER_MONTH), MEMBER_MONTH)
    ecm.run(spark, RunContext.new("2025-02"))
    feb = {r.metric_id: (r.numerator, r.denominator, r.value) for r in lakehouse.read(spark, "gold.ecm_provider_month")
           .where("month = '2025-02' AND family = 'financial'").collect()}
    assert feb["tcoc_pmpm_before_enrollment"] == (720.0, 12.0, 60.0)
    assert feb["tcoc_pmpm_after_enrollment"] == (480.0, 1.0, 480.0)


def test_a_month_run_replaces_only_its_month(spark, phmx_home, land):
    land_world(land)
    _pipeline(spark)
    before = sorted(map(tuple, lakehouse.read(spark, "gold.ecm_provider_month").drop("run_id").collect()))
    result = ecm.run(spark, RunContext.new("2025-03"))
    assert result.counts["months"] == 1
    after = sorted(map(tuple, lakehouse.read(spark, "gold.ecm_provider_month").drop("run_id").collect()))
    assert after == before
    runs = {r.month: r.run_id for r in lakehouse.read(spark, "gold.ecm_provider_month").collect()}
    assert runs["2025-03"] == result_run(spark, "2025-03") and runs["2025-02"] != runs["2025-03"]


def result_run(spark, month: str) -> str:  # noqa: ANN001
    (r,) = lakehouse.read(spark, "gold.ecm_provider_month").where(f"month = '{month}'").select("run_id").distinct().collect()
    return r.run_id


@pytest.mark.slow
def test_every_metric_of_a_full_synthetic_run_matches_the_ground_truth(spark, phmx_home, tmp_path):
    """A full ``phmx synth --ecm-share`` population through every stage up to ecm: each metric of every ECM
    provider, plan and month (process, clinical, financial, quality) equals phmx.synth.ecm_truth, which
    reads every file the generator wrote (claims, enrollment, county services, FHIR Observations, ADT)
    in plain Python and ties records to people by the generator's own truth, not by the identity stage.

    Shared input, stated: the comparison group's risk tiers are gold.member_risk's (the measures stage's
    points model is tested in tests/measures); tests/ecm/ecm_risk_input.py keys them by person and checks
    one person stands behind each tiered member. The rolling tiers are backfilled for the 12 months
    before each month (``phmx measures risk-history``), as a monthly operation leaves them."""
    from ecm_risk_input import tiers_from_lakehouse

    from jobs import consent_decisions, indicators, measures
    from jobs.measures.risk_history import backfill, months_between
    from phmx.synth.bmi import BMI_LOINC
    from phmx.synth.ecm_submitters import generate_ecm
    from phmx.synth.ecm_truth import COMPARISON, full_truth
    from phmx.synth.generator import generate

    out = tmp_path / "synth"
    generate(out, members=300, counties=["06001"], seed=11, months=12)
    written = generate_ecm(out, seed=11, share=0.12, providers=3)
    assert written["ground_truth/ecm_members.csv"] >= 25
    shutil.copytree(out / "landing", phmx_home / "landing")
    for stage in (ingest, conform, identity, consent_decisions, measures, indicators):
        stage.run(spark, RunContext.new())
    backfill(spark, months_between("2024-12", "2025-11"), "risk-history")
    result = ecm.run(spark, RunContext.new())
    assert 0 < result.counts["engaged_member_months_compared"] <= result.counts["engaged_member_months"]

    def rows(items) -> dict:  # noqa: ANN001
        return {(r["provider_npi"], r["plan_id"], r["month"], r["metric_id"]):
                (float(r["numerator"]), float(r["denominator"]) if r["denominator"] not in ("", None) else None,
                 float(r["value"]) if r["value"] not in ("", None) else None) for r in items}

    got = rows(r.asDict() for r in lakehouse.read(spark, "gold.ecm_provider_month").collect())
    truth = rows(full_truth(out, tiers_from_lakehouse(spark, out)))
    assert len(truth) > 1000 and set(got) == set(truth)
    assert {k[3].split(":")[0] for k in truth} == {m.id for m in load().metrics}  # every metric has its truth
    wrong = {k: (truth[k], got[k]) for k in truth if truth[k] != got[k]}
    assert not wrong, list(wrong.items())[:5]
    # every family is exercised, not only zeros: members with hypertension or diabetes, discharges,
    # positive screens, costs before and after enrollment and a comparison group matched on tier
    for metric in ("ed_visits_per_1000", "cbp", "gsd_poor_control", "dsf_screening", "dsf_follow_up",
                   "follow_up_7_days_after_discharge", "tcoc_pmpm_before_enrollment", "tcoc_pmpm_after_enrollment",
                   *COMPARISON):
        assert sum(v[1] or 0 for k, v in truth.items() if k[3] == metric) > 0, metric
    assert sum(v[0] for k, v in truth.items() if k[3] == "cbp") > 0  # some controlled, not all

    # the truth written at synth time (no tiers yet: no comparison member matched) is the same for the rest
    with (out / "ground_truth" / "ecm_provider_month.csv").open() as fh:
        written_truth = rows(csv.DictReader(fh))
    assert {k: v for k, v in written_truth.items() if k[3] not in COMPARISON} == \
        {k: v for k, v in truth.items() if k[3] not in COMPARISON}

    # the members' clinical files (FHIR Patients and Observations, a hospital's ADT) are all taken and linked
    # to the ECM members the plans assigned
    obs_sent = sum(n for rel, n in written.items() if "/fhir_observation/" in rel)
    adt_sent = sum(n for rel, n in written.items() if "/adt/" in rel)
    assert obs_sent > 40 and adt_sent > 0
    assert lakehouse.read(spark, "bronze.quarantine").where("feed IN ('fhir_observation', 'fhir_patient', 'adt')").count() == 0
    xw = lakehouse.read(spark, "gold.member_xwalk")
    ecm_ids = lakehouse.read(spark, "gold.ecm_member_month").select("member_id").distinct()
    # the plans' BMI readings (phmx.synth.bmi, for every adult) share the Observation feed: set aside here,
    # and each of them linked to a member too
    observations = lakehouse.read(spark, "silver.observation")
    bmi = observations.where(observations.loinc_code == BMI_LOINC)
    assert bmi.count() > 0 and bmi.join(xw, ["source", "source_person_id"]).count() == bmi.count()
    for table, frame, sent in (("silver.observation", observations.where(observations.loinc_code != BMI_LOINC), obs_sent),
                               ("silver.adt_event", lakehouse.read(spark, "silver.adt_event"), adt_sent)):
        assert frame.count() == sent, table
        assert frame.join(xw, ["source", "source_person_id"]).join(ecm_ids, "member_id").count() == sent, table


@pytest.mark.slow
def test_clinical_metrics_match_the_generators_ground_truth(spark, tmp_path, monkeypatch):  # noqa: ANN001
    """Every metric (process, clinical, financial, quality) of 3,000 members with clinical histories
    (phmx.synth.ecm_clinical) and a comparison population equals its plain-Python ground truth; the
    lakehouse is written as conform and the earlier stages would leave it (benchmarks/ecm.py)."""
    from benchmarks import ecm as bench

    monkeypatch.setenv("PHMX_HOME", str(tmp_path / "var"))  # the benchmark points PHMX_HOME at its root
    assert bench.main(["--members", "3000", "--providers", "3", "--root", str(tmp_path / "bench")]) == 0
