"""``python -m jobs.identity [--period P] [--run-id R]``: run the identity stage once."""

from __future__ import annotations

import argparse
import sys

from phmx.context import RunContext
from phmx.log import get_logger

log = get_logger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.identity", description=__doc__)
    parser.add_argument("--period", default="all")
    parser.add_argument("--run-id", default=None)
    args = parser.parse_args(argv)
    from jobs.identity import run
    from phmx.engine import get_spark

    result = run(get_spark(), RunContext.new(period=args.period, run_id=args.run_id))
    log.info("identity stage done: %s", result.to_json())
    sys.stdout.write(result.to_json() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
