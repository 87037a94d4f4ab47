"""The measures stage on hand-built member histories: one world, one run, exact expected rows.

Every member is built for one edge (the 7th vs the 8th day, a follow-up on the same day, an
enrollment gap of 45 vs 46 days, a birthday on the anchor date, a combination vaccine, an ED
visit followed by an admission, ...). The stage runs once for 2025 (module fixture); each test
compares the rows of its members with the rows the public specification gives.
"""

from __future__ import annotations

from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from tests.measures.world import World

PERIOD = "2025"
BUP = "12496120803"  # buprenorphine-naloxone film (valuesets.yaml ndc.sud_pharmacotherapy)
ADULT = "1980-01-01"

CIS_OK: list[tuple[str, str]] = [
    ("2023-05-10", "08"),
    ("2023-07-10", "110"), ("2023-09-10", "110"), ("2023-11-10", "110"),
    ("2023-07-10", "49"), ("2023-09-10", "49"), ("2024-05-15", "48"),
    ("2023-07-10", "133"), ("2023-09-10", "133"), ("2023-11-10", "133"), ("2024-05-15", "133"),
    ("2023-07-10", "119"), ("2023-09-10", "119"),
    ("2024-05-15", "94"), ("2024-05-15", "83"), ("2024-08-15", "20"),
    ("2023-11-20", "150"), ("2024-10-01", "150"),
]


def _cis_child(w: World, key: str, doses: list[tuple[str, str]], **kw: Any) -> None:
    not_given = kw.pop("not_given", {})  # (day, cvx) -> (completion status, action code)
    w.member(key, "2023-05-10", coverage=kw.pop("coverage", [("2023-05-10", None)]), **kw)
    for day, cvx in doses:
        w.imm(key, day, cvx, *not_given.get((day, cvx), ("CP", "A")))


def _swap(doses: list[tuple[str, str]], old: tuple[str, str], new: tuple[str, str]) -> list[tuple[str, str]]:
    return [x for x in doses if x != old] + [new]


def build_world() -> World:
    w = World()
    # ---- FUM -----------------------------------------------------------------------------
    w.member("fum_day7", ADULT)
    # An ED visit and an office visit with no ICD-10-CM code at all (SNOMED CT only upstream).
    w.member("no_icd10", ADULT)
    w.ed("no_icd10", "2025-03-10", [])
    w.op("no_icd10", "2025-03-11", [])
    w.ed("fum_day7", "2025-03-10", ["F329"])
    w.op("fum_day7", "2025-03-17", ["F329"])
    w.member("fum_day8", ADULT)
    w.ed("fum_day8", "2025-03-10", ["F329"])
    w.op("fum_day8", "2025-03-18", ["F329"])
    w.member("fum_same_day", ADULT)
    w.ed("fum_same_day", "2025-03-10", ["F411"])
    w.op("fum_same_day", "2025-03-10", ["F411"])
    w.member("fum_day31", ADULT)
    w.ed("fum_day31", "2025-03-10", ["F329"])
    w.op("fum_day31", "2025-04-10", ["F329"])
    w.member("fum_admitted", ADULT)
    w.ed("fum_admitted", "2025-03-10", ["F329"])
    w.op("fum_admitted", "2025-03-12", ["F329"])
    w.ip("fum_admitted", "2025-03-25", "2025-03-28", ["J189"])
    w.member("fum_chain", ADULT)
    for day in ("2025-02-01", "2025-02-20", "2025-03-05"):
        w.ed("fum_chain", day, ["F329"])
    w.op("fum_chain", "2025-02-21", ["F329"])
    w.county("fum_chain", "MH", "2025-03-06", mode="15", dx=["F200"])  # another source, same member
    w.member("fum_turns6", "2019-06-15")
    w.ed("fum_turns6", "2025-06-15", ["F909"])
    w.member("fum_age5", "2019-06-16")
    w.ed("fum_age5", "2025-06-15", ["F909"])
    w.member("fum_gap", ADULT, coverage=[("2023-01-01", "2025-05-31")])
    w.ed("fum_gap", "2025-05-10", ["F329"])
    w.member("fum_selfharm", ADULT)
    w.ed("fum_selfharm", "2025-07-01", ["S61512A", "X781XXA"])
    w.member("fum_dec", ADULT)
    w.ed("fum_dec", "2025-12-01", ["F329"])
    w.ed("fum_dec", "2025-12-02", ["F329"])
    w.member("fum_two_claims", ADULT)
    w.ed("fum_two_claims", "2025-04-04", ["R45851"], encounter_id="E-B")
    w.ed("fum_two_claims", "2025-04-04", ["F329"], encounter_id="E-A")
    w.member("fum_ideation_only", ADULT)
    w.ed("fum_ideation_only", "2025-04-04", ["R45851"])
    # ---- FUA -----------------------------------------------------------------------------
    w.member("fua_rx", ADULT)
    w.ed("fua_rx", "2025-04-01", ["F1120"])
    w.rx("fua_rx", "2025-04-03", BUP)
    w.member("fua_county", ADULT)
    w.ed("fua_county", "2025-04-01", ["T401X1A", "F1120"])
    w.county("fua_county", "SUD", "2025-04-20")
    w.member("fua_turns13", "2012-04-01")
    w.ed("fua_turns13", "2025-04-01", ["F1020"])
    w.member("fua_age12", "2012-04-02")
    w.ed("fua_age12", "2025-04-01", ["F1020"])
    w.member("fua_mh_only", ADULT)
    w.ed("fua_mh_only", "2025-05-01", ["F1010"])
    w.op("fua_mh_only", "2025-05-02", ["F329"])
    w.member("fua_tie", ADULT)
    w.ed("fua_tie", "2025-05-01", ["F1120"])
    w.county("fua_tie", "SUD", "2025-05-05")
    w.op("fua_tie", "2025-05-05", ["Z0000"], procs=["H0004"])
    # ---- FUH and TRC ---------------------------------------------------------------------
    for key, fu in (("fuh_day7", "2025-05-12"), ("fuh_day8", "2025-05-13"), ("fuh_discharge_day", "2025-05-05")):
        w.member(key, ADULT)
        w.ip(key, "2025-05-01", "2025-05-05", ["F200"])
        w.op(key, fu, ["F200"], procs=["90834"])
    w.member("fuh_readmit", ADULT)
    w.ip("fuh_readmit", "2025-03-01", "2025-03-05", ["F200"])
    w.ip("fuh_readmit", "2025-03-20", "2025-03-25", ["F200"])
    w.op("fuh_readmit", "2025-03-27", ["F200"], procs=["90834"])
    w.member("fuh_county", ADULT)
    w.ip("fuh_county", "2025-06-01", "2025-06-03", ["F319"])
    w.county("fuh_county", "MH", "2025-06-05", mode="15", dx=["F319"])
    w.member("fuh_transfer", ADULT)  # direct transfer to a medical bed on the discharge date
    w.ip("fuh_transfer", "2025-07-01", "2025-07-05", ["F200"])
    w.ip("fuh_transfer", "2025-07-05", "2025-07-10", ["J189"])
    w.member("trc_tcm", ADULT)
    w.ip("trc_tcm", "2025-06-01", "2025-06-04", ["J189"])
    w.op("trc_tcm", "2025-06-20", ["Z09"], procs=["99495"])
    w.member("trc_none", ADULT)
    w.ip("trc_none", "2025-06-01", "2025-06-04", ["J189"])
    # ---- dental (age on 2025-12-31) ------------------------------------------------------
    w.member("dent_ok", "2017-03-03")
    w.dental("dent_ok", "2025-02-02", "D0120")
    w.dental("dent_ok", "2025-02-02", "D1206")
    w.dental("dent_ok", "2025-08-08", "D1208")
    w.member("dent_same_day", "2017-03-03")
    w.dental("dent_same_day", "2025-02-02", "D1206")
    w.dental("dent_same_day", "2025-02-02", "D1208")
    w.member("dent_99188", "2022-05-05")
    w.dental("dent_99188", "2025-03-01", "D1206")
    w.op("dent_99188", "2025-09-01", ["Z23"], procs=["99188"])
    w.member("dent_179", "2015-01-01", coverage=[("2025-01-01", "2025-06-28")])
    w.dental("dent_179", "2025-03-03", "D0120")
    w.member("dent_180", "2015-01-01", coverage=[("2025-01-01", "2025-06-29")])
    w.dental("dent_180", "2025-03-03", "D0120")
    w.member("dent_age21", "2004-12-31")
    w.dental("dent_age21", "2025-05-05", "D0150")
    w.member("dent_age20", "2005-01-01")
    w.dental("dent_age20", "2025-05-05", "D0150")
    w.member("dent_infant", "2025-02-01", coverage=[("2025-02-01", None)])
    # ---- CIS-10 (2nd birthday in 2025) ---------------------------------------------------
    _cis_child(w, "cis_ok", CIS_OK)
    _cis_child(w, "cis_early_dtap", _swap(CIS_OK, ("2023-07-10", "110"), ("2023-06-19", "110")))
    _cis_child(w, "cis_mmr_early", _swap(CIS_OK, ("2024-05-15", "94"), ("2024-05-09", "94")))
    # rotavirus: one 2-dose (Rotarix) and two 3-dose (RotaTeq) doses complete the series
    _cis_child(w, "cis_rv_mixed", _swap(CIS_OK, ("2023-09-10", "119"), ("2023-09-10", "116")) + [("2023-11-10", "116")])
    _cis_child(w, "cis_rv_short", _swap(CIS_OK, ("2023-09-10", "119"), ("2023-09-10", "116")))
    _cis_child(w, "cis_gap45", CIS_OK, coverage=[("2023-05-10", "2024-08-31"), ("2024-10-16", None)])
    _cis_child(w, "cis_gap46", CIS_OK, coverage=[("2023-05-10", "2024-08-31"), ("2024-10-17", None)])
    # The MMRV dose refused (RXA-20 RE), not administered (NA), partly given (PA) or deleted (RXA-21 D): no dose.
    for tag, status in (("re", ("RE", "A")), ("na", ("NA", "A")), ("pa", ("PA", "A")), ("del", ("CP", "D"))):
        _cis_child(w, f"cis_mmr_{tag}", CIS_OK, not_given={("2024-05-15", "94"): status})
    w.member("cis_bday_dec31", "2023-12-31", coverage=[("2023-12-31", None)])
    w.member("cis_bday_2026", "2024-01-01", coverage=[("2024-01-01", None)])
    # ---- W30 and WCV ---------------------------------------------------------------------
    six = ["2024-03-05", "2024-04-01", "2024-05-01", "2024-07-01", "2024-09-01", "2024-12-01"]
    w.member("w30_15_six", "2024-03-01", coverage=[("2024-03-01", None)])
    for day in six:
        w.op("w30_15_six", day, ["Z00129"], procs=["99391"])
    w.member("w30_15_five", "2024-03-01", coverage=[("2024-03-01", None)])
    for day in six[:5] + ["2024-09-01"]:
        w.op("w30_15_five", day, ["Z00129"], procs=["99391"])
    w.member("w30_30_on15", "2023-03-01", coverage=[("2023-03-01", None)])
    for day in ("2024-06-01", "2025-01-10"):
        w.op("w30_30_on15", day, ["Z00129"], procs=["99392"])
    w.member("w30_30_ok", "2023-03-01", coverage=[("2023-03-01", None)])
    for day in ("2024-06-02", "2025-01-10"):
        w.op("w30_30_ok", day, ["Z00129"], procs=["99392"])
    w.member("wcv_ok", "2015-06-06")
    w.op("wcv_ok", "2025-04-04", ["Z00129"], procs=["99213"])
    w.member("wcv_none", "2015-06-06")
    w.member("wcv_22", "2003-06-06")
    # ---- risk and ECM --------------------------------------------------------------------
    w.member("risk_high", ADULT, race="2054-5", ethnicity="2186-5")
    for day in ("2025-01-05", "2025-02-05", "2025-03-05", "2025-04-05"):
        w.ed("risk_high", day, ["R109"])
    w.op("risk_high", "2025-05-05", ["F200"])
    w.member("risk_planned", ADULT)
    w.ip("risk_planned", "2025-02-01", "2025-02-03", ["O80"])
    w.ip("risk_planned", "2025-05-01", "2025-05-04", ["J189"])
    w.ip("risk_planned", "2025-08-01", "2025-08-03", ["O80"])
    w.member("risk_homeless_dx", ADULT, race="H", ethnicity="1")
    w.op("risk_homeless_dx", "2025-06-06", ["Z5901", "I10"])
    w.member("risk_caloms", ADULT, race=None, ethnicity=None, lhj=None)
    w.county("risk_caloms", "SUD", "2025-03-03", person="C-caloms")
    w.member("risk_csi", ADULT)
    w.county("risk_csi", "MH", "2024-11-11", person="C-csi", dx=["F411"])
    w.member("risk_none", ADULT, sex="M", race="2028-9")
    w.member("risk_nocov", ADULT, coverage=[])
    return w


def _bronze_homeless(spark: Any) -> None:
    """Homelessness as county submitters record it, through conform's real mappings into
    silver.social_observation: a CalOMS admission with ZIP 00000 and CSI periodic records with
    living arrangement 07 (plus rows that must not count: a housed CalOMS client, a CSI service)."""
    from jobs.conform.stage import SILVER, base_specs, build_target
    from phmx import lakehouse

    lineage = "submission_id string, period string, row_number bigint"
    cal = spark.createDataFrame(
        [("county_06001_bh", "C-caloms", "00000", "2025-03-03", None, "P1", "A", "s1", "2025-03", 1),
         ("county_06001_bh", "C-housed", "94612", "2025-03-04", None, "P1", "A", "s1", "2025-03", 2)],
        "submitter string, client_id string, zip string, admission_date string, discharge_date string,"
        f"provider_id string, record_type string, {lineage}")
    csi = spark.createDataFrame(
        [("county_06001_bh", "C-csi", "P", "2025-02-02", "07", "s2", "2025-02", 1),
         ("county_06001_bh", "C-csi", "P", "2024-02-02", "07", "s2", "2025-02", 2),
         ("county_06001_bh", "C-csi", "S", "2025-02-03", "07", "s2", "2025-02", 3)],
        "submitter string, client_number string, record_type string, service_date string,"
        f"living_arrangement string, {lineage}")
    specs = base_specs()
    for name, bronze in (("sud_caloms", cal), ("mh_csi", csi)):
        spec = specs[name]
        df = build_target(bronze, spec, "social_observation", spec.targets["social_observation"])
        lakehouse.merge(spark, df, SILVER["social_observation"])


def _s(v: Any) -> str | None:
    if v is None or (not isinstance(v, list | tuple) and pd.isna(v)):
        return None
    if isinstance(v, datetime | pd.Timestamp):
        return v.date().isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def rows(events: pd.DataFrame, measure_id: str, keys: list[str] | None = None) -> set[tuple]:
    """(member key, anchor, in_den, in_num, exclusion, numerator date, source) of one measure."""
    df = events[events.measure_id == measure_id]
    if keys is not None:
        df = df[df.member_id.isin([World.mid(k) for k in keys])]
    return {(r.member_id[2:], _s(r.anchor_date), bool(r.in_denominator), bool(r.in_numerator),
             _s(r.exclusion_reason), _s(r.numerator_date), _s(r.numerator_source)) for r in df.itertuples()}


@pytest.fixture(scope="module")
def world_run(spark: Any, tmp_path_factory: pytest.TempPathFactory):
    from jobs.measures.stage import run
    from phmx import lakehouse
    from phmx.context import RunContext
    from phmx.tables import MEASURE_EVENT, MEMBER_RISK

    home = tmp_path_factory.mktemp("measures") / "var"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PHMX_HOME", str(home))
        for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                    "PHMX_KEYS_DIR"):
            mp.delenv(var, raising=False)
        build_world().write(spark)
        _bronze_homeless(spark)
        result = run(spark, RunContext.new(period=PERIOD, run_id="run-t1"))
        events = lakehouse.read(spark, MEASURE_EVENT).toPandas()
        risk = lakehouse.read(spark, MEMBER_RISK).toPandas()
        yield SimpleNamespace(spark=spark, result=result, events=events, risk=risk)


# ---- FUM --------------------------------------------------------------------------------
FUM_30 = {
    ("fum_day7", "2025-03-10", True, True, None, "2025-03-17", "plan_claim"),
    ("fum_day8", "2025-03-10", True, True, None, "2025-03-18", "plan_claim"),
    ("fum_same_day", "2025-03-10", True, True, None, "2025-03-10", "plan_claim"),
    ("fum_day31", "2025-03-10", True, False, None, None, None),
    ("fum_admitted", "2025-03-10", False, False, "inpatient_within_30d", None, None),
    ("fum_chain", "2025-02-01", True, True, None, "2025-02-21", "plan_claim"),
    ("fum_chain", "2025-02-20", False, False, "repeat_visit_31d", None, None),
    ("fum_chain", "2025-03-05", True, True, None, "2025-03-06", "county_mh"),
    ("fum_turns6", "2025-06-15", True, False, None, None, None),
    ("fum_gap", "2025-05-10", False, False, "not_continuously_enrolled", None, None),
    ("fum_selfharm", "2025-07-01", True, False, None, None, None),
    ("fum_dec", "2025-12-01", True, False, None, None, None),
    ("fum_two_claims", "2025-04-04", True, False, None, None, None),
}


def test_fum_30_day_rows_are_exactly_the_specified_ones(world_run):
    assert rows(world_run.events, "FUM-30") == FUM_30


def not_met(expected: set[tuple], *units: tuple[str, str]) -> set[tuple]:
    """The same rows with the numerator unmet for the given (member key, anchor) units."""
    return {r[:3] + (False, None, None, None) if r[:2] in units else r for r in expected}


def test_encounters_without_any_icd10_code_are_excluded_not_a_crash(world_run):
    """A visit with an empty diagnosis list reached the stage (it used to fail on element_at); it
    is in the stage's inputs but meets no diagnosis-based measure."""
    ev = world_run.events
    assert ev[ev.member_id == World.mid("no_icd10")].empty
    assert rows(world_run.events, "FUM-30", ["no_icd10"]) == set()


def test_fum_7_day_counts_the_7th_day_and_the_visit_day_but_not_the_8th(world_run):
    expected = not_met(FUM_30, ("fum_day8", "2025-03-10"), ("fum_chain", "2025-02-01"))
    assert rows(world_run.events, "FUM-7") == expected


def test_fum_unit_is_the_ed_day_with_its_claims_merged(world_run):
    ev = world_run.events
    unit = ev[(ev.measure_id == "FUM-7") & (ev.member_id == World.mid("fum_two_claims"))]
    assert unit.unit_id.tolist() == ["mcp_test:E-A"]


def test_fum_age_on_the_visit_date_counts_a_birthday_on_that_day(world_run):
    ev = world_run.events
    row = ev[(ev.measure_id == "FUM-7") & (ev.member_id == World.mid("fum_turns6"))].iloc[0]
    assert (int(row.age_on_anchor), row.age_band) == (6, "6-11")
    assert ev[ev.member_id == World.mid("fum_age5")].measure_id.str.startswith("FU").sum() == 0


def test_fum_units_carry_mental_health_labels_and_the_followup_source_labels(world_run):
    ev = world_run.events
    fum = ev[ev.measure_id == "FUM-7"]
    assert all("MH" in list(x) for x in fum.security_labels)
    assert set(fum.sensitivity) == {"mh"}
    county = fum[(fum.member_id == World.mid("fum_chain")) & (fum.numerator_source == "county_mh")].iloc[0]
    assert "PSY" in list(county.security_labels)


# ---- FUA --------------------------------------------------------------------------------
FUA_30 = {
    ("fua_rx", "2025-04-01", True, True, None, "2025-04-03", "pharmacy"),
    ("fua_county", "2025-04-01", True, True, None, "2025-04-20", "county_sud"),
    ("fua_turns13", "2025-04-01", True, False, None, None, None),
    ("fua_mh_only", "2025-05-01", True, False, None, None, None),
    ("fua_tie", "2025-05-01", True, True, None, "2025-05-05", "plan_claim"),
}


def test_fua_rows_for_7_and_30_days(world_run):
    assert rows(world_run.events, "FUA-30") == FUA_30
    assert rows(world_run.events, "FUA-7") == not_met(FUA_30, ("fua_county", "2025-04-01"))


def test_fua_part2_labels_only_when_county_sud_evidence_met_the_numerator(world_run):
    ev = world_run.events
    fua = ev[ev.measure_id.isin(["FUA-7", "FUA-30"])]
    labels = {(r.measure_id, r.member_id[2:]): sorted(r.security_labels) for r in fua.itertuples()}
    assert labels[("FUA-30", "fua_county")] == ["42CFRPart2", "ETH", "SUD"]
    # Codes add SUD; program labels (42CFRPart2, ETH) come only from a Part 2 program's feed.
    assert labels[("FUA-7", "fua_county")] == ["SUD"]
    assert labels[("FUA-30", "fua_tie")] == ["SUD"]  # the same-day plan claim wins the tie
    assert set(fua.sensitivity) == {"sud"}


# ---- FUH and TRC ------------------------------------------------------------------------
FUH_30 = {
    ("fuh_day7", "2025-05-05", True, True, None, "2025-05-12", "plan_claim"),
    ("fuh_day8", "2025-05-05", True, True, None, "2025-05-13", "plan_claim"),
    ("fuh_discharge_day", "2025-05-05", True, False, None, None, None),
    ("fuh_readmit", "2025-03-05", False, False, "readmission_30d", None, None),
    ("fuh_readmit", "2025-03-25", True, True, None, "2025-03-27", "plan_claim"),
    ("fuh_county", "2025-06-03", True, True, None, "2025-06-05", "county_mh"),
    ("fuh_transfer", "2025-07-05", False, False, "readmission_30d", None, None),
}


def test_fuh_rows_exclude_the_discharge_day_and_readmissions(world_run):
    assert rows(world_run.events, "FUH-30") == FUH_30
    assert rows(world_run.events, "FUH-7") == not_met(FUH_30, ("fuh_day8", "2025-05-05"))


def test_trc_any_discharge_with_ambulatory_followup(world_run):
    no = (True, False, None, None, None)
    expected = {
        ("fum_admitted", "2025-03-28", *no),
        ("fuh_day7", "2025-05-05", True, True, None, "2025-05-12", "plan_claim"),
        ("fuh_day8", "2025-05-05", True, True, None, "2025-05-13", "plan_claim"),
        ("fuh_discharge_day", "2025-05-05", *no),
        ("fuh_readmit", "2025-03-05", False, False, "readmission_30d", None, None),
        ("fuh_readmit", "2025-03-25", True, True, None, "2025-03-27", "plan_claim"),
        ("fuh_county", "2025-06-03", True, True, None, "2025-06-05", "county_mh"),
        ("fuh_transfer", "2025-07-05", False, False, "readmission_30d", None, None),
        ("fuh_transfer", "2025-07-10", *no),
        ("trc_tcm", "2025-06-04", True, True, None, "2025-06-20", "plan_claim"),
        ("trc_none", "2025-06-04", *no),
        ("risk_planned", "2025-02-03", *no),
        ("risk_planned", "2025-05-04", *no),
        ("risk_planned", "2025-08-03", *no),
    }
    assert rows(world_run.events, "TRC-30") == expected


# ---- dental -----------------------------------------------------------------------------
DENTAL_KEYS = ["dent_ok", "dent_same_day", "dent_99188", "dent_179", "dent_180", "dent_age21", "dent_age20",
               "dent_infant"]
END = "2025-12-31"


def test_oev_rows(world_run):
    assert rows(world_run.events, "OEV-CH", DENTAL_KEYS) == {
        ("dent_ok", END, True, True, None, "2025-02-02", "dental"),
        ("dent_same_day", END, True, False, None, None, None),
        ("dent_99188", END, True, False, None, None, None),
        ("dent_179", END, False, False, "not_continuously_enrolled", None, None),
        ("dent_180", END, True, True, None, "2025-03-03", "dental"),
        ("dent_age20", END, True, True, None, "2025-05-05", "dental"),
        ("dent_infant", END, True, False, None, None, None),
    }


def test_tfl_needs_two_dates_and_counts_medical_fluoride(world_run):
    assert rows(world_run.events, "TFL-CH", DENTAL_KEYS) == {
        ("dent_ok", END, True, True, None, "2025-08-08", "dental"),
        ("dent_same_day", END, True, False, None, None, None),
        ("dent_99188", END, True, True, None, "2025-09-01", "dental+plan_claim"),
        ("dent_179", END, False, False, "not_continuously_enrolled", None, None),
        ("dent_180", END, True, False, None, None, None),
        ("dent_age20", END, True, False, None, None, None),
    }


# ---- CIS-10 -----------------------------------------------------------------------------
def test_cis10_rows(world_run):
    b2 = "2025-05-10"
    done = (True, True, None, "2024-10-01", "registry")
    no = (True, False, None, None, None)
    assert rows(world_run.events, "CIS-10") == {
        ("cis_ok", b2, *done),
        ("cis_early_dtap", b2, *no),
        ("cis_mmr_early", b2, *no),
        ("cis_rv_mixed", b2, *done),
        ("cis_rv_short", b2, *no),
        ("cis_gap45", b2, *done),
        ("cis_gap46", b2, False, False, "not_continuously_enrolled", None, None),
        ("cis_mmr_re", b2, *no), ("cis_mmr_na", b2, *no), ("cis_mmr_pa", b2, *no), ("cis_mmr_del", b2, *no),
        ("cis_bday_dec31", "2025-12-31", *no),
        ("w30_30_on15", "2025-03-01", *no),
        ("w30_30_ok", "2025-03-01", *no),
    }


# ---- W30 and WCV ------------------------------------------------------------------------
def test_w30_rows(world_run):
    assert rows(world_run.events, "W30-15") == {
        ("w30_15_six", "2025-06-01", True, True, None, "2024-12-01", "plan_claim"),
        ("w30_15_five", "2025-06-01", True, False, None, None, None),
        ("cis_bday_dec31", "2025-03-31", True, False, None, None, None),  # 15 months: add_months
        ("cis_bday_2026", "2025-04-01", True, False, None, None, None),
    }
    assert rows(world_run.events, "W30-30", ["w30_30_on15", "w30_30_ok"]) == {
        ("w30_30_on15", "2025-09-01", True, False, None, None, None),
        ("w30_30_ok", "2025-09-01", True, True, None, "2025-01-10", "plan_claim"),
    }
    others = world_run.events[(world_run.events.measure_id == "W30-30")
                              & ~world_run.events.member_id.isin([World.mid("w30_30_on15"), World.mid("w30_30_ok")])]
    assert len(others) == 11 and not others.in_numerator.any()  # the CIS children turn 30 months in 2025


def test_wcv_rows(world_run):
    assert rows(world_run.events, "WCV", ["wcv_ok", "wcv_none", "wcv_22", "dent_age21"]) == {
        ("wcv_ok", END, True, True, None, "2025-04-04", "plan_claim"),
        ("wcv_none", END, True, False, None, None, None),
        ("dent_age21", END, True, False, None, None, None),
    }


# ---- stratifiers ------------------------------------------------------------------------
def one(events: pd.DataFrame, measure_id: str, key: str) -> Any:
    df = events[(events.measure_id == measure_id) & (events.member_id == World.mid(key))]
    assert len(df) == 1
    return df.iloc[0]


def test_stratifiers(world_run):
    ev = world_run.events
    fum = one(ev, "FUM-30", "fum_day7")
    assert (fum.lhj, fum.age_band, fum.sex, fum.race_ethnicity, fum.plan_id, fum.period) == \
        ("Alameda", "45-64", "F", "White NH", "BLC001", "2025")
    assert one(ev, "FUM-30", "fum_gap").plan_id == "BLC001"
    cis = one(ev, "CIS-10", "cis_ok")
    assert (int(cis.age_on_anchor), cis.age_band) == (2, "0-5")
    assert set(world_run.events.age_band) <= {"0-5", "6-11", "12-17", "18-20", "21-44", "45-64", "65+"}
    assert world_run.events.run_id.unique().tolist() == ["run-t1"]


# ---- risk and ECM -----------------------------------------------------------------------
def _risk(world_run, key: str) -> Any:
    r = world_run.risk
    return r[r.member_id == World.mid(key)].iloc[0]


def test_risk_points_and_ecm_flags(world_run):
    high = _risk(world_run, "risk_high")
    assert (high.ed_visits, high.utilization_points, high.behavioral_points, high.points, high.risk_tier) == \
        (4, 4, 3, 7, "high")
    assert bool(high.ecm_high_utilizer) and bool(high.ecm_smi_sud) and not bool(high.ecm_homeless)
    assert high.sensitivity == "mh"
    planned = _risk(world_run, "risk_planned")
    assert (planned.unplanned_admissions, planned.points, planned.risk_tier, bool(planned.ecm_high_utilizer)) == \
        (1, 2, "rising", False)
    homeless = _risk(world_run, "risk_homeless_dx")
    assert (bool(homeless.ecm_homeless), homeless.social_points, list(homeless.chronic_conditions), homeless.points) == \
        (True, 3, ["hypertension"], 4)
    none = _risk(world_run, "risk_none")
    assert (none.points, none.risk_tier, none.plan_id) == (0, "low", "BLC001")
    assert _risk(world_run, "risk_nocov").plan_id == "none"


def test_county_records_flag_homelessness_with_their_labels(world_run):
    caloms = _risk(world_run, "risk_caloms")
    assert bool(caloms.ecm_homeless) and bool(caloms.sud) and bool(caloms.ecm_smi_sud)
    assert (caloms.social_points, caloms.behavioral_points, caloms.risk_tier) == (3, 3, "high")
    assert "42CFRPart2" in list(caloms.security_labels) and caloms.sensitivity == "sud"
    assert caloms.lhj == "Unknown"
    csi = _risk(world_run, "risk_csi")  # living arrangement 07 in 2025; the 2024 service is outside the lookback
    assert bool(csi.ecm_homeless) and not bool(csi.ecm_smi_sud)
    assert (csi.social_points, csi.behavioral_points, csi.points, sorted(csi.security_labels)) == (3, 0, 3, ["MH", "PSY"])


def test_stage_result_counts_only(world_run):
    res = world_run.result
    assert res.stage == "measures"
    assert res.counts["FUM-30_denominator"] == 10 and res.counts["FUM-30_numerator"] == 5
    assert res.details["rates"]["CIS-10"]["denominator"] == 13
    assert set(res.details["seconds"]) == {"inputs", "measure_event", "member_risk"}
    js = res.to_json()
    assert World.mid("fum_day7") not in js and World.pid("fum_day7") not in js  # counts only, no ids


# ---- periods and idempotency ------------------------------------------------------------
def test_rolling_period_and_rerun_are_idempotent(world_run):
    from jobs.measures.stage import run
    from phmx import lakehouse
    from phmx.context import RunContext
    from phmx.tables import MEASURE_EVENT

    spark = world_run.spark
    run(spark, RunContext.new(period="R12-2025-06", run_id="run-r12"), groups=["FUM"], risk=False)
    run(spark, RunContext.new(period=PERIOD, run_id="run-t1"), groups=["FUM"], risk=False)
    after = lakehouse.read(spark, MEASURE_EVENT).toPandas()
    r12 = after[after.period == "R12-2025-06"]
    # July 2024 - June 2025; index visits through 2025-05-31 (30 days before the end)
    assert set(r12.measure_id) == {"FUM-7", "FUM-30"}
    assert World.mid("fum_turns6") not in set(r12.member_id)
    assert rows(r12, "FUM-30", ["fum_day7"]) == {("fum_day7", "2025-03-10", True, True, None, "2025-03-17", "plan_claim")}
    same = after[after.period == PERIOD]
    assert len(same) == len(world_run.events)
    assert rows(same, "FUM-30") == FUM_30 and rows(same, "CIS-10") == rows(world_run.events, "CIS-10")
