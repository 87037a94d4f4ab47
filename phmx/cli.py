"""The ``phmx`` command: one entry point, errors printed in one place with stable exit codes.

Subcommands come from the packages that own them, each exposing ``register(subparsers)``:
``phmx synth``, ``phmx validate`` / ``phmx submissions`` (intake), ``phmx identity ...``,
``phmx audit ...`` (consent ledger), ``phmx privacy ...``, ``phmx feeds ...``, ``phmx serve`` and
``phmx portal ...`` (the web portal). This module adds
``phmx run`` (the whole pipeline in-process), ``phmx stage`` (one stage), ``phmx demo``,
``phmx tables`` and ``phmx airflow``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from phmx.errors import PhmxError

# Packages that contribute subcommands (module path of their ``register``).
COMMAND_MODULES: tuple[str, ...] = (
    "phmx.synth.cli",
    "jobs.ingest.cli",
    "jobs.identity.cli",
    "jobs.measures.cli",
    "consent.cli",
    "privacy.cli",
    "jobs.publish.cli",
    "phmx.portal.cli",
)


def _cmd_run(args: argparse.Namespace) -> int:
    from phmx.pipeline import run_pipeline, summary_table

    results = run_pipeline(period=args.period, run_id=args.run_id, stages=args.stages)
    summary_table(results)
    return 0


def _cmd_stage(args: argparse.Namespace) -> int:
    from jobs.entry import run_stage

    result = run_stage(args.stage, period=args.period, run_id=args.run_id)
    sys.stdout.write(result.to_json() + "\n")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from phmx.demo import main as demo_main

    return demo_main(["--members", str(args.members)] + (["--in-process"] if args.in_process else []))


def _cmd_tables(args: argparse.Namespace) -> int:
    from phmx.tables import markdown

    sys.stdout.write(markdown() + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from jobs import STAGES

    parser = argparse.ArgumentParser(prog="phmx", description="Statewide PHM data-sharing hub")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the pipeline in this process (no Airflow)")
    p.add_argument("--period", default="all",
                   help="YYYY-MM (one month's submissions; measures use its year), YYYY, R12-YYYY-MM, or all")
    p.add_argument("--run-id", default=None)
    p.add_argument("--stages", nargs="*", default=list(STAGES), choices=list(STAGES))
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("stage", help="run one stage in this process")
    p.add_argument("stage", choices=list(STAGES))
    p.add_argument("--period", default="all")
    p.add_argument("--run-id", default=None)
    p.set_defaults(func=_cmd_stage)

    p = sub.add_parser("demo", help="synthetic data through the whole exchange under Airflow")
    p.add_argument("--members", type=int, default=2000)
    p.add_argument("--in-process", action="store_true", help="skip Airflow, run the stages directly")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("tables", help="print the table contracts as Markdown")
    p.set_defaults(func=_cmd_tables)

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that package has no commands in this build
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; every PhmxError is printed once, without a traceback, with its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # Every subcommand sets ``func`` (it takes the parsed args and returns an exit code).
    command = getattr(args, "func", None)
    if command is None:
        parser.print_help()
        return 2
    try:
        return int(command(args) or 0)
    except PhmxError as exc:
        sys.stderr.write(f"phmx: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
