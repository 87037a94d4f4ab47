"""The shared ``python -m jobs.<stage>`` entry point: parse the period and run id, run, print counts."""

from __future__ import annotations

import argparse
import importlib
import sys

from phmx.context import RunContext, StageResult
from phmx.errors import PhmxError


def run_stage(stage: str, *, period: str = "all", run_id: str | None = None) -> StageResult:
    """Import the stage's package and run it on the process-wide engine session."""
    from jobs import stage_package
    from phmx.engine import get_spark

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
