"""``phmx measures ...`` through a tiny parser (phmx/cli.py wires it in for real)."""

from __future__ import annotations

import argparse
import json

import pytest

from jobs.measures import cli


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phmx")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args))


def test_list_prints_every_measure_with_its_specification(capsys):
    assert _run(["measures", "list", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ids = [i for m in out["measures"] for i in m["measure_ids"]]
    assert "FUM-7" in ids and "CIS-10" in ids
    assert all(m["spec"] for m in out["measures"])


def test_unknown_stratifier_is_a_usage_error():
    with pytest.raises(SystemExit):
        _parser().parse_args(["measures", "rates", "--by", "zip"])


def test_run_then_rates_on_a_small_world(spark, phmx_home, capsys):
    from tests.measures.world import World

    w = World()
    w.member("a", "1980-01-01")
    w.ed("a", "2025-03-10", ["F329"])
    w.op("a", "2025-03-12", ["F329"])
    w.write(spark)
    assert _run(["measures", "run", "--period", "2025", "--group", "FUM", "--no-risk", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)
    assert run["details"]["rates"]["FUM-7"] == {"units": 1, "denominator": 1, "numerator": 1, "rate": 1.0}
    assert _run(["measures", "rates", "--period", "2025", "--by", "lhj", "--json"]) == 0
    rates = json.loads(capsys.readouterr().out)
    assert rates["FUM-30 (2025)|Alameda"]["numerator"] == 1


def test_unknown_group_is_a_config_error(spark, phmx_home):
    from phmx.errors import ConfigError

    with pytest.raises(ConfigError):
        _run(["measures", "run", "--period", "2025", "--group", "NOPE", "--no-risk"])


def test_stage_runs_on_an_empty_lakehouse(spark, phmx_home):
    """The pipeline may run measures before any data has arrived: no rows, no error.

    One follow-up and one member-year family plus risk (the others share their code paths)."""
    from jobs.measures.stage import run
    from phmx.context import RunContext

    result = run(spark, RunContext.new(period="all", run_id="empty"), groups=["FUA", "CIS"])
    assert result.counts["period"] == str(RunContext.new().started_at.year)
    assert result.details["rates"] == {}
    assert not any(k.startswith("risk_") for k in result.counts)
