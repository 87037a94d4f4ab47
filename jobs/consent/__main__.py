"""``python -m jobs.consent [--period P] [--run-id R]``: run the consent stage by hand."""

from __future__ import annotations

import argparse
import sys

from phmx.context import RunContext
from phmx.errors import PhmxError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.consent", description=__doc__)
    parser.add_argument("--period", default="all", help="reporting period YYYY-MM, or all")
    parser.add_argument("--run-id", default=None, help="run id (deterministic reruns)")
    args = parser.parse_args(argv)
    from jobs.consent import run
    from phmx.engine import get_spark

    try:
        result = run(get_spark(), RunContext.new(period=args.period, run_id=args.run_id))
    except PhmxError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return exc.exit_code
    sys.stdout.write(result.to_json() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
