"""One Period type: every label parsed in phmx.period, the run's once in RunContext, one error."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from phmx.context import RunContext
from phmx.errors import ConfigError
from phmx.period import CELL_KINDS, LANDING_KINDS, RUN_KINDS, Period, PeriodError, PeriodKind


@pytest.mark.parametrize(("label", "kind", "start", "end"), [
    ("2025", PeriodKind.YEAR, date(2025, 1, 1), date(2025, 12, 31)),
    ("2024-Q1", PeriodKind.QUARTER, date(2024, 1, 1), date(2024, 3, 31)),
    ("2025-Q4", PeriodKind.QUARTER, date(2025, 10, 1), date(2025, 12, 31)),
    ("2024-02", PeriodKind.MONTH, date(2024, 2, 1), date(2024, 2, 29)),
    ("R12-2025-06", PeriodKind.ROLLING_12, date(2024, 7, 1), date(2025, 6, 30)),
    ("R12-2025-12", PeriodKind.ROLLING_12, date(2025, 1, 1), date(2025, 12, 31)),
    ("all", PeriodKind.ALL, None, None),
])
def test_labels_parse_to_their_kind_and_days_and_print_back(label, kind, start, end):
    p = Period.parse(label)
    assert (p.kind, p.start, p.end, p.label, str(p)) == (kind, start, end, label, label)
    assert Period.parse(p) is p


@pytest.mark.parametrize("bad", ["2025-13", "2025-00", "2025-Q5", "R12-2025-13", "2025-1", "25", "last year",
                                 "2025-06-01"])
def test_an_invalid_label_is_one_clear_config_error(bad):
    assert Period.of(bad) is None
    with pytest.raises(PeriodError) as err:
        Period.parse(bad, what="--period")
    assert isinstance(err.value, ConfigError) and err.value.exit_code == 10
    assert f"--period {bad!r} is not a valid period" in str(err.value)


def test_each_place_accepts_only_its_kinds():
    assert Period.parse("2025-03", allowed=LANDING_KINDS).kind is PeriodKind.MONTH
    with pytest.raises(PeriodError, match="expected YYYY-MM"):
        Period.parse("2025", allowed=LANDING_KINDS, what="period folder")
    with pytest.raises(PeriodError, match="expected all or YYYY or YYYY-MM or R12-YYYY-MM"):
        Period.parse("2025-Q1", allowed=RUN_KINDS)
    with pytest.raises(PeriodError):
        Period.parse("all", allowed=CELL_KINDS)


def test_month_quarter_year_relations():
    m = Period.parse("2025-05")
    assert m.quarter == Period.parse("2025-Q2")
    assert m.year_period == Period.parse("2025") == Period.parse("2025-Q2").year_period
    assert Period.month_of(date(2025, 11, 30)) == Period.parse("2025-11")


def test_run_context_parses_the_period_once_and_refuses_a_bad_one():
    ctx = RunContext.new(period="R12-2025-06", run_id="r")
    assert ctx.period == Period(PeriodKind.ROLLING_12, 2025, 6)
    assert RunContext(run_id="r", period="2025-02").period.kind is PeriodKind.MONTH  # text is parsed too
    assert RunContext.new(run_id="r").period.is_all
    with pytest.raises(PeriodError, match="run period '2025-13' is not a valid period"):
        RunContext.new(period="2025-13")
    with pytest.raises(PeriodError):
        RunContext(run_id="r", period=Period.parse("2025-Q1"))


def test_the_cli_reports_a_bad_period_once_with_the_config_exit_code(capsys):
    from phmx.cli import main

    assert main(["stage", "measures", "--period", "2025-13"]) == 10
    err = capsys.readouterr().err
    assert err.count("is not a valid period") == 1 and "2025-13" in err


def test_every_stage_reads_the_same_period():
    """Landing folders, the measures' period, publish's scope and cell grains, the privacy audit's
    roll-ups: all through Period."""
    from jobs.ingest.landing import is_landing_period
    from jobs.measures.measurement_period import parse as measurement_period
    from jobs.publish.lhj_cube import Scope, grain_of
    from privacy.cell_relations import infer_period_rollups

    assert is_landing_period("2025-12") and not is_landing_period("2025-13") and not is_landing_period("2025")
    mp = measurement_period(RunContext.new(period="2025-03", run_id="r").period)
    assert (mp.label, mp.start, mp.end) == ("2025", date(2025, 1, 1), date(2025, 12, 31))
    assert Scope(Period.parse("2025-03")).predicate() == "month = '2025-03'"
    assert Scope(Period.parse("2025")).grains == ("year", "quarter", "month")
    assert Scope(Period.parse("R12-2025-06")).predicate() is None
    assert [grain_of(p) for p in ("2025", "2025-Q3", "2025-07")] == ["year", "quarter", "month"]
    with pytest.raises(PeriodError):
        grain_of("2025-13")
    cells = pd.DataFrame({"period": ["2025", "2025-Q1", "2025-Q2", "2025-01", "2025-02", "2025-04", "2026-01"]})
    assert infer_period_rollups(cells) == {"2025": ("2025-Q1", "2025-Q2"), "2025-Q1": ("2025-01", "2025-02"),
                                           "2025-Q2": ("2025-04",)}
