"""ECM packages through the publish stage: assigned members only, consent-gated as treatment.

Hand-built tables (every value made up): plan mcp_bluecoast (plan id BC) authorizes five members;
provider ecm_harbor sends under NPI H, ecm_north under NPI N.

* m1 -> H, Part 2 SUD consent naming ecm_harbor: its SUD-derived risk row reaches ecm_harbor;
* m2 -> H, no consent: on ecm_harbor's roster, but its SUD-derived risk row and SMH_SUD population
  never reach it;
* m3 -> N: never in ecm_harbor's package (and in ecm_north's);
* m4 -> H, authorization ended before the package's month: in no provider package;
* m5 -> H, Part 2 consent to any treating provider (the general designation ``all_treating``).

Consent decisions come from the real consent stage; the packages from the real publish code
(stage, sign, ledger, promote, feed_log), and a re-run of the same run publishes nothing twice.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

COUNTY = "county_06001_bh"
PLAN = "mcp_bluecoast"
H, N = "1234567893", "1987654328"
MONTHS = ("2025-01", "2025-02", "2025-03")
SUD_LABELS = ["SUD", "42CFRPart2"]
# member, plan member id, NPI, authorization start, end, populations, risk labels, tier
WORLD = [
    ("m1", "BC1", H, date(2025, 1, 5), None, ["SMH_SUD"], SUD_LABELS, "high"),
    ("m2", "BC2", H, date(2025, 1, 5), None, ["SMH_SUD", "HOMELESS_ADULT"], SUD_LABELS, "high"),
    ("m3", "BC3", N, date(2025, 1, 5), None, ["AVOIDABLE_UTILIZATION"], [], "rising"),
    ("m4", "BC4", H, date(2025, 1, 5), date(2025, 2, 10), ["AVOIDABLE_UTILIZATION"], [], "low"),
    ("m5", "BC5", H, date(2025, 2, 1), None, ["SMH_SUD"], SUD_LABELS, "rising"),
]


def _world(spark) -> None:  # noqa: ANN001
    from consent_testdata import form, write_forms, write_members, write_submissions

    from phmx import lakehouse
    from phmx.tables import ECM_ASSIGNMENT, ECM_CARE_PLAN, ECM_MEMBER_MONTH, ECM_PROVIDER_MONTH, MEMBER_RISK

    write_members(spark, [(m, pid, date(1980, 1, 1)) for m, pid, *_ in WORLD],
                  sources=(COUNTY, f"{COUNTY}:sud", PLAN, "ecm_harbor:ecm_return_transmission"))
    write_submissions(spark, [PLAN, "ecm_harbor", "ecm_north"])
    write_forms(spark, [form("f1", "BC1", recipients="ecm_harbor", purposes="TREAT"),
                        form("f5", "BC5", recipients="all_treating", purposes="TREAT", row=2)])
    asg = [(PLAN, f"{pid}|{npi}|{s}", pid, "BC", npi, pof, s, e) for _, pid, npi, s, e, pof, _, _ in WORLD]
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(asg, (
        "source string, assignment_id string, source_person_id string, plan_id string, provider_npi string, "
        "populations_of_focus array<string>, authorization_start date, authorization_end date")), ECM_ASSIGNMENT),
        ECM_ASSIGNMENT)
    cp = [("ecm_harbor:ecm_return_transmission", "BC1", "BC", H, date(2025, 3, 1), "ENROLLED"),
          ("ecm_north:ecm_return_transmission", "BC3", "BC", N, date(2025, 3, 1), "ENROLLED")]
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(cp, (
        "source string, source_person_id string, plan_id string, provider_npi string, status_date date, "
        "benefit_status string")), ECM_CARE_PLAN), ECM_CARE_PLAN)
    mm = []
    for m, pid, npi, s, e, pof, _, _ in WORLD:
        for month in MONTHS:
            first = date(int(month[:4]), int(month[5:]), 1)
            if s <= date(first.year, first.month, 28) and (e is None or e >= first):
                mm.append((m, npi, "BC", month, f"{pid}|{npi}|{s}", pof, s, e, date(2025, 1, 20), "L1", True))
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(mm, (
        "member_id string, provider_npi string, plan_id string, month string, assignment_id string, "
        "populations_of_focus array<string>, authorization_start date, authorization_end date, "
        "enrollment_date date, lead_care_manager_id string, engaged boolean")), ECM_MEMBER_MONTH), ECM_MEMBER_MONTH)
    pm = [(npi, "BC", "2025-03", "engaged_members", "process", 3.0, None, 3.0, "e1") for npi in (H, N)]
    pm += [(H, "BC", "2025-03", "care_plan_within_90_days", "process", 1.0, 2.0, 0.5, "e1")]
    lakehouse.overwrite(spark.createDataFrame(pm, ECM_PROVIDER_MONTH.ddl), ECM_PROVIDER_MONTH)
    risk = [(m, "R12-2025-03", date(2025, 3, 31), tier, 9, 3, 2, 4 if labels else 0, 0, 2, 1, bool(labels),
             bool(labels), "BC", labels) for m, _, _, _, _, _, labels, tier in WORLD]
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(risk, (
        "member_id string, period string, as_of date, risk_tier string, points int, utilization_points int, "
        "chronic_points int, behavioral_points int, social_points int, ed_visits int, unplanned_admissions int, "
        "sud boolean, ecm_smi_sud boolean, plan_id string, security_labels array<string>")), MEMBER_RISK), MEMBER_RISK)


def _table(uri: str, name: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(Path(uri, f"{name}.parquet").read_bytes()))


@pytest.fixture(scope="module")
def delivered(spark, tmp_path_factory):  # noqa: ANN001
    """The world built, decided and published once for the module (its own PHMX_HOME)."""
    from jobs.consent_decisions import run as consent_run
    from jobs.publish import stage
    from phmx.context import RunContext

    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("ecm_delivery") / "var"
        home.mkdir()
        mp.setenv("PHMX_HOME", str(home))
        for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                    "PHMX_KEYS_DIR"):
            mp.delenv(var, raising=False)
        _world(spark)
        consent_run(spark, RunContext.new(run_id="c1"))
        ctx = RunContext.new(run_id="p1")
        out = {r: stage.publish_ecm(spark, ctx, r) for r in ("ecm_harbor", "ecm_north", PLAN)}
        yield ctx, out


def test_a_provider_receives_its_current_assigned_members_with_part2_only_under_consent(delivered, spark):
    from jobs.publish import feed_log, recovery, stage
    from jobs.publish.verify import verify_package

    ctx, out = delivered
    harbor = out["ecm_harbor"]["uri"]
    verify_package(harbor)
    roster = _table(harbor, "members")
    # m3 is another provider's, m4's authorization ended: neither is in ecm_harbor's package
    assert sorted(roster["plan_member_id"]) == ["BC1", "BC2", "BC5"]
    assert "member_id" not in roster.columns and "security_labels" not in roster.columns
    risk = _table(harbor, "risk")
    # m2 gave no Part 2 consent: its SUD-derived tier is withheld; m1 named ecm_harbor, m5 any treating provider
    assert sorted(risk["plan_member_id"]) == ["BC1", "BC5"]
    assert dict(zip(risk["plan_member_id"], risk["risk_tier"], strict=True)) == {"BC1": "high", "BC5": "rising"}
    pops = _table(harbor, "populations")
    got = {(p, pop) for p, pop in zip(pops["plan_member_id"], pops["population"], strict=True)}
    assert ("BC2", "HOMELESS_ADULT") in got and ("BC2", "SMH_SUD") not in got
    assert ("BC1", "SMH_SUD") in got and ("BC5", "SMH_SUD") in got
    assert not any(p in ("BC3", "BC4") for p, _ in got)

    north = _table(out["ecm_north"]["uri"], "members")
    assert list(north["plan_member_id"]) == ["BC3"]

    plan = _table(out[PLAN]["uri"], "members")
    assert sorted(plan["plan_member_id"]) == ["BC1", "BC2", "BC3", "BC5"]  # its providers, current only
    # m1's consent named ecm_harbor, not the plan: its SUD-derived risk row is not in the plan's package
    assert "BC1" not in set(_table(out[PLAN]["uri"], "risk")["plan_member_id"])

    # a signed package, a ledgered disclosure naming exactly the members sent, a feed_log row
    from consent import ledger

    entries = {e["seq"]: e for e in ledger.read_entries().to_pylist()}
    payload = json.loads(entries[out["ecm_harbor"]["ledger_seq"]]["payload"])
    assert payload["recipient"] == "ecm_harbor" and payload["purpose"] == "TREAT"
    assert {f["uri"].rsplit("/", 1)[-1] for f in payload["files"]} >= {"members.parquet", "manifest.json"}
    assert "PART2-2.32-NOTICE" in payload["rule_ids"]
    logged = [r for r in feed_log.read("ecm_harbor") if r["feed"] == "ecm"]
    assert len(logged) == 1 and logged[0]["members"] == 3 and logged[0]["version"] == 1

    # a retried task of the same run publishes nothing again; a new run over the same data makes the
    # same package (rows in a fixed order), so it is logged unchanged against version 1 and not disclosed
    again = stage.publish_ecm(spark, ctx, "ecm_harbor")
    assert again["version"] == 1 and len([r for r in feed_log.read("ecm_harbor") if r["feed"] == "ecm"]) == 1
    assert recovery.already_published(PLAN, ctx.run_id, "plan_bulk_fhir") is None
    from phmx.context import RunContext

    seqs = len(ledger.read_entries())
    assert stage.publish_ecm(spark, RunContext.new(run_id="p2"), "ecm_harbor")["version"] == 1
    assert [(r["version"], r["status"]) for r in feed_log.read("ecm_harbor") if r["run_id"] == "p2"] == [(1, "unchanged")]
    assert len(ledger.read_entries()) == seqs
    # the hub's own member id reaches no file (read as text; signatures and Parquet pages are bytes that
    # may hold any two letters by chance, so Parquet is read as its values)
    texts = [p.read_text(encoding="utf-8") for p in Path(harbor).iterdir()
             if p.suffix in (".csv", ".ndjson", ".html", ".txt", ".json")]
    texts += [pd.read_parquet(p).to_csv(index=False) for p in Path(harbor).glob("*.parquet")]
    assert texts and not any(re.search(r"\bm2\b", t) for t in texts) and datetime.now(UTC).year > 2000


def test_the_package_fhir_parses_back(delivered):
    """RiskAssessment (tier, window, basis), Flag (population of focus) and MeasureReport (metrics)
    read back with fhir.resources, holding only what the consent gate let through."""
    from fhir.resources.R4B.flag import Flag
    from fhir.resources.R4B.measurereport import MeasureReport
    from fhir.resources.R4B.riskassessment import RiskAssessment

    _, out = delivered
    folder = Path(out["ecm_harbor"]["uri"])

    def read(name: str, model):  # noqa: ANN001, ANN202
        return [model.model_validate_json(line) for line in (folder / f"{name}.ndjson").read_text().splitlines()]

    ras = {r.subject.identifier.value: r for r in read("RiskAssessment", RiskAssessment)}
    assert set(ras) == {"BC1", "BC5"}  # BC2's SUD-derived tier is withheld (no Part 2 consent)
    ra = ras["BC1"]
    assert ra.prediction[0].qualitativeRisk.coding[0].code == "high"
    assert (str(ra.occurrencePeriod.start), str(ra.occurrencePeriod.end)) == ("2024-04-01", "2025-03-31")
    assert "behavioral points: 4" in {b.display for b in ra.basis}
    assert {c.code for c in ra.meta.security} >= {"42CFRPart2", "R"}
    flags = {(f.subject.identifier.value, f.code.coding[0].code) for f in read("Flag", Flag)}
    assert ("BC2", "HOMELESS_ADULT") in flags and ("BC2", "SMH_SUD") not in flags and ("BC1", "SMH_SUD") in flags
    assert not any(p in ("BC3", "BC4") for p, _ in flags)
    mrs = read("MeasureReport", MeasureReport)
    assert [m.subject.identifier.value for m in mrs] == [H]  # its own NPI only
    groups = {g.code.coding[0].code: g for g in mrs[0].group}
    assert float(groups["care_plan_within_90_days"].measureScore.value) == 0.5
    assert {p.code.coding[0].code: p.count for p in groups["care_plan_within_90_days"].population} == \
        {"numerator": 1, "denominator": 2}
    assert (folder / "part2_notice.txt").exists()


def test_the_airflow_steps_publish_an_ecm_provider_as_a_mapped_recipient(delivered, spark):
    """prepare lists the ECM providers among the run's recipients; a mapped task publishes one."""
    from jobs.publish import stage
    from phmx.context import RunContext

    ctx = RunContext.new(run_id="p3")
    found = stage.run(spark, ctx, step="prepare").details["recipients"]
    assert {"ecm_harbor", "ecm_north", PLAN} <= set(found)
    out = stage.run(spark, ctx, recipient="ecm_harbor")
    assert out.details["uri"].endswith("/ecm_harbor/ecm/all/v1")  # the same data: the published version
    stage.cleanup()
