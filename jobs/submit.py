"""The cluster driver: run one pipeline stage for one period, then exit 0 or the error's exit code.

``spark-submit`` (PHMX_RUNNER=spark_submit) and EMR Serverless (PHMX_RUNNER=emr_serverless) start
this file; the in-process runner calls :func:`run_job` directly, so every runner goes through the
same code::

    python jobs/submit.py --stage ingest --period 2025-01 --run-id manual__2025-02-01
    python jobs/submit.py --stage publish --option recipient=lhj_alameda

``--period`` and ``--run-id`` default to ``PHMX_JOB_PERIOD`` and ``PHMX_JOB_RUN_ID`` (how mapped
tasks pass them) and then to ``all`` and a fresh id. The session comes from
``phmx.engine.get_spark()`` (``PHMX_ENGINE=classic`` under spark-submit; the embedded engine when
unset). The stage's counts go to stdout as one JSON line; failures go to stderr without data
values, with the stable exit code of the phmx error (1 for anything unexpected).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phmx.context import StageResult


def run_job(stage: str, *, period: str = "all", run_id: str | None = None,
            options: Mapping[str, str] | None = None) -> StageResult:
    """Run ``stage`` on the process-wide session; ``options`` go to the stage's ``run``.

    Without options this is ``jobs.entry.run_stage``. With options (a mapped task's value, e.g.
    ``recipient``) it calls the stage package's ``run(spark, ctx, **options)``, the contract a
    stage that can be mapped offers.
    """
    from jobs import STAGES, stage_package
    from phmx.errors import ConfigError

    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}", hint="use one of " + ", ".join(STAGES))
    if not options:
        from jobs.entry import run_stage

        return run_stage(stage, period=period, run_id=run_id)
    from phmx.context import RunContext
    from phmx.engine import get_spark

    module = importlib.import_module(stage_package(stage))
    ctx = RunContext.new(period=period, run_id=run_id)
    try:
        return module.run(get_spark(), ctx, **dict(options))
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc):
            raise ConfigError(f"stage {stage} takes no option {sorted(options)}",
                              hint=f"check the DAG's mapped task for {stage}") from exc
        raise


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def parser() -> argparse.ArgumentParser:
    from phmx import settings

    p = argparse.ArgumentParser(prog="jobs/submit.py", description="Run one phmx stage (cluster driver).")
    p.add_argument("--stage", required=True, help="ingest, conform, identity, consent, measures, publish")
    cfg = settings.load()
    p.add_argument("--period", default=cfg.job_period or "all", help="YYYY-MM, or all")
    p.add_argument("--run-id", default=cfg.job_run_id or None)
    p.add_argument("--option", action="append", type=_option, default=[], metavar="KEY=VALUE",
                   help="a stage option (repeatable), e.g. recipient=lhj_alameda")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, run, report; return the process exit code."""
    from phmx.errors import PhmxError
    from phmx.log import get_logger

    args = parser().parse_args(argv)
    log = get_logger("jobs.submit")
    try:
        result = run_job(args.stage, period=args.period, run_id=args.run_id, options=dict(args.option))
    except PhmxError as exc:
        sys.stderr.write(f"phmx {args.stage}: {exc}\n")
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - type only: messages from engines may quote data
        where = "; ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)[-5:])
        log.error("stage %s failed: %s at %s", args.stage, type(exc).__name__, where)
        sys.stderr.write(f"phmx {args.stage}: unexpected {type(exc).__name__}; see the driver log\n")
        return 1
    sys.stdout.write(result.to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
