"""Operator and auditor commands refuse bad input before anything is written, and say what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phmx.cli import main


def _written(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())


@pytest.mark.parametrize("argv, needle", [
    (["run", "--period", "2025-13"], "'2025-13' is not a valid period"),
    (["run", "--period", "last-month"], "is not a valid period"),
    (["run", "--run-id", "../../etc"], "run id must be"),
    (["run", "--run-id", "run 1"], "run id must be"),
    (["stage", "publish", "--period", "2025-00"], "is not a valid period"),
])
def test_bad_run_parameters_are_refused_before_any_write(phmx_home, capsys, argv, needle):
    before = _written(phmx_home)
    assert main(argv) == 10
    assert needle in capsys.readouterr().err
    assert _written(phmx_home) == before == []


def test_bad_recipient_is_refused(phmx_home):
    from jobs.entry import check_params
    from phmx.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown recipient"):
        check_params(recipient="lhj_../x")
    check_params(period="R12-2025-06", run_id="manual__2025-01-01T00:00:00+00:00", recipient="mcp_bluecoast")
    check_params(recipient="ecm_p001")  # an ECM provider (its package is an Airflow mapped task too)
    with pytest.raises(ConfigError, match="unknown recipient"):
        check_params(recipient="ecm_../x")


def test_publish_one_recipient_the_prepare_step_did_not_find(phmx_home, spark):
    from jobs.publish import prepare
    from jobs.publish import stage as publish
    from phmx import storage
    from phmx.context import RunContext
    from phmx.errors import ConfigError

    summary = prepare.Prepared("run-p", "all", "wilson", ["lhj_alameda"]).summary()
    storage.write_text(prepare.summary_uri("run-p"), json.dumps(summary))
    ctx = RunContext.new(run_id="run-p")
    with pytest.raises(ConfigError, match="not one the prepare step"):
        publish.run(spark, ctx, recipient="lhj_nowhere")
    assert not (phmx_home / "publish").exists()


def test_unknown_member_is_not_found(phmx_home, capsys):
    assert main(["audit", "disclosures", "--member", "no-such-member"]) == 10
    assert "member not found" in capsys.readouterr().err
