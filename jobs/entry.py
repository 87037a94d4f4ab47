"""The shared ``python -m jobs.<stage>`` entry point: parse the period and run id, run, print counts."""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from phmx.context import RunContext, StageResult
from phmx.errors import ConfigError, PhmxError

#: Run ids: Airflow's (``manual__2025-01-01T00:00:00+00:00``, ``scheduled__...``) and ours (``run-<hex>``).
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$")
RECIPIENT = re.compile(r"^(lhj|mcp|ecm)_[a-z0-9_]{1,60}$")  # LHJs, plans, ECM providers


def check_params(*, period: str = "all", run_id: str | None = None, recipient: str | None = None,
                 stages: tuple[str, ...] | list[str] | None = None) -> None:
    """Refuse a bad period, run id, recipient or stage name before anything is read or written
    (a run that fails on its parameters half way leaves tables and ledger entries behind)."""
    from jobs import STAGES
    from phmx.period import RUN_KINDS, Period

    Period.parse(period, allowed=RUN_KINDS, what="run period")  # names the label and the forms allowed
    if run_id is not None and not RUN_ID.match(run_id):
        raise ConfigError("run id must be 1-128 letters, digits and _ . : + - (starting with a letter or digit)",
                          hint="e.g. --run-id run-2025-01 (or leave it out for a fresh one)")
    if recipient is not None and not RECIPIENT.match(recipient):
        raise ConfigError(f"unknown recipient {recipient!r}", hint="recipients are lhj_<name>, mcp_<plan> or ecm_<provider>")
    bad = [s for s in stages or () if s not in STAGES]
    if bad:
        raise ConfigError(f"unknown stage {bad[0]!r}", hint=f"stages are {', '.join(STAGES)}")


def run_stage(stage: str, *, period: str = "all", run_id: str | None = None) -> StageResult:
    """Import the stage's package and run it on the process-wide engine session."""
    from jobs import stage_package
    from phmx.engine import get_spark

    check_params(period=period, run_id=run_id, stages=[stage])
    module = importlib.import_module(stage_package(stage))
    ctx = RunContext.new(period=period, run_id=run_id)
    return module.run(get_spark(), ctx)


def main(stage: str, argv: list[str] | None = None) -> int:
    from jobs import stage_package

    parser = argparse.ArgumentParser(prog=f"python -m {stage_package(stage)}")
    parser.add_argument("--period", default="all", help="YYYY-MM, or all")
    parser.add_argument("--run-id", default=None)
    args = parser.parse_args(argv)
    try:
        result = run_stage(stage, period=args.period, run_id=args.run_id)
    except PhmxError as exc:
        sys.stderr.write(f"phmx {stage}: {exc}\n")
        return exc.exit_code
    sys.stdout.write(result.to_json() + "\n")
    return 0
