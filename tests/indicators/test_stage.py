"""The indicators stage on hand-built member histories: each member lives in a ZIP of its own, so
the strata rows of that ZIP are that member's (all data invented).

Denominators: two plans covering the same months count once; a move between LHJs mid-year
splits the member-months. Indicators: each has a member that meets it and one that does not.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from tests.measures.world import PLAN, World, d

YEAR = "2025"
FULL = [("2025-01-01", None)]
_ZIPS: dict[str, str] = {}


class PopWorld(World):
    """The measures tests' world plus dated person records (residence, language) and BMI readings."""

    def person(self, key: str, zip5: str, record: str, *, fips: str = "06001", language: str | None = "eng",
               source: str = PLAN, person: str | None = None) -> None:
        self.rows["person"].append(dict(source=source, source_person_id=person or self.pid(key), zip=zip5,
                                        county_fips=fips, language=language, record_date=d(record),
                                        birth_date=None, sex=None))

    def resident(self, key: str, birth: str, *, coverage: list[tuple[str, str | None]] | None = None,
                 language: str | None = "eng", **kw: Any) -> str:
        """A member living all year in a ZIP of its own (Alameda County, not Berkeley)."""
        mid = self.member(key, birth, coverage=coverage if coverage is not None else FULL, **kw)
        zip5 = _ZIPS.setdefault(key, f"95{len(_ZIPS) + 1:03d}")
        self.person(key, zip5, "2024-06-01", language=language)
        return mid

    def bmi(self, key: str, day: str, value: float) -> None:
        self.rows["obs"].append(dict(source=PLAN, observation_id=self._id("O"), source_person_id=self.pid(key),
                                     status="final", category="vital-signs", loinc_code="39156-5",
                                     effective_date=d(day), value_num=value, value_unit="kg/m2",
                                     codings=["http://loinc.org|39156-5"], components=[], security_labels=[]))

    def write(self, spark: Any) -> None:
        from phmx import lakehouse
        from phmx.tables import OBSERVATION, PERSON

        super().write(spark)
        for name, table in (("person", PERSON), ("obs", OBSERVATION)):
            data = [tuple(r.get(c) for c in table.column_names) for r in self.rows.get(name, [])]
            lakehouse.append(spark.createDataFrame(data, table.ddl), table)


def build() -> PopWorld:
    w = PopWorld()
    # ---- denominators
    w.member("two_plans", "1980-05-05", coverage=[("2025-01-01", "2025-06-30")])
    w.link("two_plans", "mcp_other", "Q-two_plans")
    w.rows["coverage"].append(dict(source="mcp_other", source_person_id="Q-two_plans", plan_id="OTH001",
                                   start_date=d("2025-03-01"), end_date=d("2025-12-31")))
    w.person("two_plans", "93999", "2024-01-01", language="es-MX")
    w.member("mover", "1990-01-01", lhj="Berkeley")
    w.person("mover", "94601", "2025-01-01", language="vie")
    w.person("mover", "94702", "2025-07-01", language="vie")
    w.resident("short", "1985-01-01", coverage=[("2025-01-01", "2025-03-31")])
    w.op("short", "2025-02-01", ["E119"])
    w.op("short", "2025-03-01", ["E119"])
    # ---- prevalence: one positive and one negative per indicator
    w.resident("diab_pos", "1960-01-01")
    w.op("diab_pos", "2024-03-01", ["E119"])   # 2 other claims in the 2-year lookback
    w.op("diab_pos", "2025-04-01", ["E119"])
    w.resident("diab_neg", "1960-01-01")
    w.op("diab_neg", "2025-04-01", ["E119"])   # one other claim only
    w.resident("htn_pos", "1970-01-01")
    w.ip("htn_pos", "2025-05-01", "2025-05-03", ["I10"])  # one inpatient claim
    w.resident("htn_neg", "1970-01-01")
    w.op("htn_neg", "2024-02-01", ["I10"])     # outside the 12-month lookback
    w.op("htn_neg", "2024-03-01", ["I10"])
    w.resident("asth_pos", "2012-01-01")
    w.op("asth_pos", "2025-01-10", ["J4530"])
    w.op("asth_pos", "2025-06-10", ["J4530"])
    w.resident("asth_neg", "2012-01-01")
    w.op("asth_neg", "2025-01-10", ["J069"])
    w.op("asth_neg", "2025-06-10", ["J069"])
    w.resident("copd_pos", "1950-01-01")
    w.op("copd_pos", "2025-02-10", ["J449"])
    w.op("copd_pos", "2025-03-10", ["J449"])
    w.resident("copd_child", "2015-01-01")    # COPD is counted among adults only
    w.op("copd_child", "2025-02-10", ["J449"])
    w.op("copd_child", "2025-03-10", ["J449"])
    w.resident("hf_pos", "1945-01-01")
    w.ip("hf_pos", "2024-06-01", "2024-06-05", ["I509"])  # inpatient within 2 years
    w.resident("hf_neg", "1945-01-01")
    w.op("hf_neg", "2025-06-01", ["I509"])
    w.resident("dep_pos", "1995-01-01")
    w.county("dep_pos", "MH", "2025-03-01", dx=["F329"])   # county services are other claims
    w.county("dep_pos", "MH", "2025-04-01", dx=["F329"])
    w.resident("dep_neg", "1995-01-01")
    w.county("dep_neg", "MH", "2025-03-01", dx=["F329"])
    w.resident("smi_pos", "1990-01-01")
    w.op("smi_pos", "2025-03-01", ["F200"])
    w.op("smi_pos", "2025-05-01", ["F200"])
    w.resident("smi_neg", "1990-01-01")
    w.op("smi_neg", "2025-03-01", ["F329"])
    w.op("smi_neg", "2025-05-01", ["F329"])
    w.resident("sud_pos", "1988-01-01")
    w.county("sud_pos", "SUD", "2025-08-01")
    w.resident("sud_neg", "1988-01-01")
    w.op("sud_neg", "2025-03-01", ["F17210"])  # nicotine is not SUD here
    w.op("sud_neg", "2025-04-01", ["F17210"])
    w.resident("obes_pos", "1980-01-01")
    w.bmi("obes_pos", "2025-01-05", 27.0)
    w.bmi("obes_pos", "2025-09-05", 31.5)      # the latest reading counts
    w.resident("obes_neg", "1980-01-01")
    w.bmi("obes_neg", "2025-01-05", 33.0)
    w.bmi("obes_neg", "2025-09-05", 26.0)
    w.resident("obes_none", "1980-01-01")      # no BMI: not in the obesity denominator
    w.resident("homeless_pos", "1975-01-01")
    w.op("homeless_pos", "2025-03-01", ["Z5902"])
    w.resident("homeless_neg", "1975-01-01")
    w.op("homeless_neg", "2025-03-01", ["Z591"])   # inadequate housing, not homelessness
    w.resident("food_pos", "1975-01-01")
    w.op("food_pos", "2025-03-01", ["Z5941"])
    w.resident("dent_pos", "2010-01-01")
    w.dental("dent_pos", "2025-03-03", "D0120")
    w.dental("dent_pos", "2025-03-03", "D1206")    # same day: one visit
    w.dental("dent_pos", "2025-07-03", "D0120")
    # ---- utilization
    w.resident("ed_user", "1985-01-01", coverage=[("2025-01-01", "2025-06-30")])
    w.ed("ed_user", "2025-03-02", ["R079"])
    w.ed("ed_user", "2025-03-02", ["R079"])        # second claim of the same visit
    w.ed("ed_user", "2025-03-20", ["R079"])
    w.ed("ed_user", "2025-08-01", ["R079"])        # not enrolled in August: not counted
    w.resident("pqi_adult", "1970-01-01")
    w.ip("pqi_adult", "2025-04-01", "2025-04-04", ["E1165"])   # PQI 14
    w.resident("pqi_child", "2012-01-01")
    w.ip("pqi_child", "2025-04-01", "2025-04-02", ["J4541"])   # asthma under 18: not in PQI
    w.resident("pqi_young", "2000-01-01")
    w.ip("pqi_young", "2025-04-01", "2025-04-02", ["J4541"])   # PQI 15 (18-39)
    w.resident("ip_other", "1970-01-01")
    w.ip("ip_other", "2025-04-01", "2025-04-02", ["S7200XA"])  # an admission, not preventable
    w.resident("pcp_user", "1970-01-01")
    w.op("pcp_user", "2025-02-01", ["Z0000"], procs=["99213"])
    w.op("pcp_user", "2025-02-11", ["F329"], procs=["90834"])  # psychotherapy: not primary care
    return w


def _cube_of(world_run: Any, key: str, indicator: str) -> tuple[int, int]:
    """The member's numerator and denominator for the year: its ZIP's stratum (the ZIP is its own)."""
    df = world_run.strata
    rows = df[(df.stratifier == "zip") & (df.stratum == _ZIPS[key]) & (df.indicator_id == indicator)]
    return int(rows.numerator.sum()), int(rows.denominator.sum())


#: gold.member_risk tiers of the rolling 12 months ending December (R12-2025-12); an older period
#: (R12-2025-06) must not count, and a member without a tier is in the denominator only (the shared one).
TIERS = {"diab_pos": "high", "diab_neg": "low", "htn_pos": "rising"}


def _risk_tiers(spark: Any) -> None:
    from phmx import lakehouse
    from phmx.tables import MEMBER_RISK

    rows = [(World.mid(k), "R12-2025-12", d("2025-12-31"), t) for k, t in TIERS.items()]
    rows.append((World.mid("diab_neg"), "R12-2025-06", d("2025-06-30"), "high"))
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(
        rows, "member_id string, period string, as_of date, risk_tier string"), MEMBER_RISK), MEMBER_RISK)


@pytest.fixture(scope="module")
def world_run(spark: Any, tmp_path_factory: pytest.TempPathFactory):
    from jobs.indicators.stage import run
    from phmx import lakehouse
    from phmx.context import RunContext
    from phmx.tables import INDICATOR_DENOMINATOR, INDICATOR_RATE, INDICATOR_STRATA, MEMBER_MONTH

    home = tmp_path_factory.mktemp("indicators") / "var"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PHMX_HOME", str(home))
        for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                    "PHMX_KEYS_DIR"):
            mp.delenv(var, raising=False)
        build().write(spark)
        _risk_tiers(spark)
        result = run(spark, RunContext.new(period=YEAR, run_id="run-i1"))
        read = {t.name: lakehouse.read(spark, t).toPandas()
                for t in (MEMBER_MONTH, INDICATOR_DENOMINATOR, INDICATOR_STRATA, INDICATOR_RATE)}
        yield SimpleNamespace(result=result, mm=read["member_month"], den=read["indicator_denominator"],
                              strata=read["indicator_strata"], rates=read["indicator_rate"])


def test_overlapping_spans_in_two_plans_count_once(world_run):
    mm = world_run.mm[world_run.mm.member_id == World.mid("two_plans")]
    assert len(mm) == 12 and mm.month.nunique() == 12
    by_month = dict(zip(pd.to_datetime(mm.month).dt.month, mm.plan_count, strict=True))
    assert [by_month[m] for m in range(1, 13)] == [1, 1, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1]
    assert set(mm.language) == {"Spanish"}  # a BCP 47 tag reduced to its language


def test_a_move_between_lhjs_mid_year_splits_member_months(world_run):
    mm = world_run.mm[world_run.mm.member_id == World.mid("mover")].sort_values("month")
    assert list(mm.lhj) == ["Alameda"] * 6 + ["Berkeley"] * 6
    assert list(mm.zip) == ["94601"] * 6 + ["94702"] * 6
    den = world_run.den
    year = den[(den.period == YEAR) & (den.zip.isin(["94601", "94702"]))]
    assert dict(zip(year.lhj, year.member_months, strict=True)) == {"Alameda": 6, "Berkeley": 6}
    assert dict(zip(year.lhj, year.members, strict=True)) == {"Alameda": 1, "Berkeley": 1}
    q3 = den[(den.period == "2025-Q3") & (den.zip == "94702")]
    assert int(q3.member_months.sum()) == 3 and int(q3.members.sum()) == 1 and set(q3.grain) == {"quarter"}


def test_member_months_add_up_across_grains(world_run):
    den = world_run.den
    totals = den.groupby("grain").member_months.sum().to_dict()
    assert totals["month"] == totals["quarter"] == totals["year"] == len(world_run.mm)


def test_short_enrollment_is_outside_the_prevalence_denominator(world_run):
    assert _cube_of(world_run, "short", "DIAB") == (0, 0)
    assert _cube_of(world_run, "short", "ED")[1] == 3  # but its 3 member-months count


@pytest.mark.parametrize(("indicator", "positive", "negative"), [
    ("DIAB", "diab_pos", "diab_neg"), ("HTN", "htn_pos", "htn_neg"), ("ASTH", "asth_pos", "asth_neg"),
    ("HF", "hf_pos", "hf_neg"), ("DEP", "dep_pos", "dep_neg"), ("SMI", "smi_pos", "smi_neg"),
    ("SUD", "sud_pos", "sud_neg"), ("OBES", "obes_pos", "obes_neg"), ("HOML", "homeless_pos", "homeless_neg"),
    ("FOOD", "food_pos", "homeless_neg"), ("ADV", "dent_pos", "diab_neg"), ("COPD", "copd_pos", "diab_neg"),
])
def test_prevalence_positive_and_negative(world_run, indicator, positive, negative):
    assert _cube_of(world_run, positive, indicator) == (1, 1)
    assert _cube_of(world_run, negative, indicator) == (0, 1)


def test_high_risk_tier_counts_the_latest_rolling_tier_of_the_year(world_run):
    assert _cube_of(world_run, "diab_pos", "RISK_HIGH") == (1, 1)
    assert _cube_of(world_run, "diab_neg", "RISK_HIGH") == (0, 1)   # high in June, low in December
    assert _cube_of(world_run, "htn_pos", "RISK_HIGH") == (0, 1)
    assert _cube_of(world_run, "asth_pos", "RISK_HIGH") == (0, 1)   # no tier: not high
    assert _cube_of(world_run, "asth_pos", "RISK_HIGH")[1] == _cube_of(world_run, "asth_pos", "DIAB")[1]
    # every tier, and members without one: the four partition the shared denominator
    assert _cube_of(world_run, "htn_pos", "RISK_RISING") == (1, 1)
    assert _cube_of(world_run, "diab_neg", "RISK_LOW") == (1, 1)
    assert _cube_of(world_run, "asth_pos", "RISK_NONE") == (1, 1)
    assert _cube_of(world_run, "diab_pos", "RISK_NONE") == (0, 1)


def test_age_limited_and_bmi_denominators(world_run):
    assert _cube_of(world_run, "copd_child", "COPD") == (0, 0)      # not an adult
    assert _cube_of(world_run, "obes_none", "OBES") == (0, 0)       # no BMI recorded
    assert _cube_of(world_run, "copd_child", "ASTH") == (0, 1)


@pytest.mark.parametrize(("indicator", "key", "expected"), [
    ("ED", "ed_user", (2, 6)),        # two visit days in March; August not enrolled
    ("ED", "pcp_user", (0, 12)),
    ("IP", "pqi_adult", (1, 12)), ("IP", "pcp_user", (0, 12)),
    ("PQI90", "pqi_adult", (1, 12)), ("PQI90", "pqi_young", (1, 12)), ("PQI90", "ip_other", (0, 12)),
    ("PQI90", "pqi_child", (0, 0)),   # under 18: outside the composite's population
    ("PCV", "pcp_user", (1, 12)), ("PCV", "dep_neg", (0, 12)),
    ("DENT", "dent_pos", (2, 12)), ("DENT", "pcp_user", (0, 12)),
    ("CMH", "dep_pos", (2, 12)), ("CMH", "sud_pos", (0, 12)),
    ("CSUD", "sud_pos", (1, 12)), ("CSUD", "dep_pos", (0, 12)),
])
def test_utilization_events_per_member_month(world_run, indicator, key, expected):
    assert _cube_of(world_run, key, indicator) == expected


def test_sensitivity_follows_the_catalogue(world_run):
    sens = world_run.strata.groupby("indicator_id").sensitivity.first().to_dict()
    assert sens["SUD"] == sens["CSUD"] == "sud" and sens["DEP"] == sens["CMH"] == "mh" and sens["DIAB"] == "general"


def test_rates_have_crude_and_adjusted_rows_with_the_state_beside(world_run):
    r = world_run.rates
    ala = r[(r.indicator_id == "DIAB") & (r.lhj == "Alameda") & (r.period == YEAR) & (r.stratifier == "all")]
    assert set(ala.rate_type) == {"crude", "age_adjusted"}
    crude = ala[ala.rate_type == "crude"].iloc[0]
    assert crude.rate == pytest.approx(100 * crude.numerator / crude.denominator)
    assert crude.ci_low < crude.rate < crude.ci_high
    state = r[(r.indicator_id == "DIAB") & (r.lhj == "California") & (r.period == YEAR)
              & (r.stratifier == "all") & (r.rate_type == "crude")].iloc[0]
    assert crude.state_rate == pytest.approx(state.rate)
    assert not ((r.stratifier == "age_band") & (r.rate_type == "age_adjusted")).any()
    ed = r[(r.indicator_id == "ED") & (r.lhj == "Alameda") & (r.stratifier == "all") & (r.rate_type == "crude")]
    assert {"2025-03", "2025-Q1", YEAR} <= set(ed.period)
    assert set(r[r.period.str.len() > 4].stratifier) == {"all"}
    assert "zip" in set(r[r.period == YEAR].stratifier)


def _long_sorted(frame: pd.DataFrame) -> pd.DataFrame:
    key = ["lhj", "indicator_id", "period", "age_group", "stratifier", "stratum"]
    return frame.sort_values(key, ignore_index=True)[[*key, "numerator", "denominator"]]


def test_the_engine_strata_equal_the_pandas_sums_of_finest_cells(spark):
    """The stage sums wide rows (one per member or member-month, a numerator and a denominator
    column per indicator) straight into strata (cube.stacked_sums, cube.long_by_indicator), and the
    feed rolls them up (cells.strata_from_table); the rows equal the pandas route over the same
    rows as finest cells (cells.strata of cells.with_periods), on hand-built rows with a ZIP in two
    LHJs, months of two quarters and rows whose language or age group is unknown (left out of that
    grouping, as pandas' group-by leaves them out)."""
    from jobs.indicators.catalogue import default
    from jobs.indicators.cells import strata, strata_from_table, with_periods
    from jobs.indicators.cube import CELL, long_by_indicator, stacked_sums

    cell = dict(indicator_id="ED", age_band="18-64", sex="F", race_ethnicity="Asian", language="eng",
                sensitivity="general")
    rows = [dict(cell, period="2025-03", lhj="Long Beach", zip="90805", age_group="25-34", numerator=2, denominator=5),
            dict(cell, period="2025-03", lhj="Los Angeles", zip="90805", age_group="25-34", numerator=1, denominator=7),
            dict(cell, period="2025-04", lhj="Los Angeles", zip="90805", age_group="25-34", numerator=3, denominator=7),
            dict(cell, period="2025-04", lhj="Los Angeles", zip="90001", age_group="35-44", numerator=0, denominator=4,
                 language=None),
            dict(cell, period="2025-05", lhj="Los Angeles", zip="90001", age_group=None, numerator=4, denominator=9),
            dict(cell, period="2025-05", lhj="Los Angeles", zip="90001", age_group="35-44", sex="M", numerator=1,
                 denominator=2),
            dict(cell, indicator_id="DIAB", period="2025", lhj="Long Beach", zip="90805", age_group="45-54",
                 numerator=1, denominator=3)]
    cells = pd.DataFrame(rows)
    cat = default()[0]
    engine = []
    for kind, total, year in (("ED", "_p", "substring(_p, 1, 4)"), ("DIAB", "_p", "_p")):
        inds = [cat.indicators[kind]]
        part = cells[cells.indicator_id == kind]
        wide = spark.createDataFrame(
            [tuple(r[c] for c in CELL) + (r["period"], r["numerator"], r["denominator"]) for _, r in part.iterrows()],
            ", ".join(f"{c} string" for c in CELL) + f", _p string, _num_{kind} long, _den_{kind} long")
        engine.append(long_by_indicator(stacked_sums(wide, total, year, [f"_num_{kind}", f"_den_{kind}"]), inds))
    table = engine[0].unionByName(engine[1])
    got, want = _long_sorted(strata_from_table(table)), _long_sorted(strata(with_periods(cells)))
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    state = got[(got.lhj == "California") & (got.stratifier == "zip") & (got.stratum == "90805")
                & (got.indicator_id == "ED")]
    assert state.numerator.sum() == 6 and state.denominator.sum() == 19
    assert set(got[got.stratifier == "all"].period) >= {"2025-03", "2025-Q1", "2025-Q2", "2025"}


def test_strata_add_up_to_the_member_months(world_run):
    """The utilization denominators are the member-months: by LHJ and month for the total, and
    every stratifier's strata add up to the year's total (ED has no age limit)."""
    st, mm = world_run.strata, world_run.mm
    ed = st[st.indicator_id == "ED"]
    total = ed[ed.stratifier == "all"].groupby(["lhj", "period"]).denominator.sum().to_dict()
    months = mm.assign(period=pd.to_datetime(mm.month).dt.strftime("%Y-%m")).groupby(["lhj", "period"]).size()
    assert total == months.to_dict()
    year = ed[ed.stratifier == "all"].groupby("lhj")[["numerator", "denominator"]].sum()
    for s in ("age_band", "sex", "race_ethnicity", "language", "zip"):
        by = ed[(ed.stratifier == s) & (ed.period == YEAR)].groupby("lhj")[["numerator", "denominator"]].sum()
        pd.testing.assert_frame_equal(by, year, check_dtype=False)
