"""``make bench``: every benchmark in turn (each prints its own figures). Not part of the tests.

    python -m benchmarks            # all, at the sizes the issues name
    python -m benchmarks --quick    # all, small sizes (a smoke run)
    python -m benchmarks pipeline   # one
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("-")] or available()
    failed = []
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")  # fail early on a typo
        if not hasattr(module, "main"):
            continue  # a helper module of another benchmark (e.g. identity_splink), not a benchmark
        print(f"\n######## benchmarks.{name}{' --quick' if quick else ''}", flush=True)
        # One process per benchmark: each gets its own engine and a clean peak-memory figure.
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{name}", *(["--quick"] if quick else [])])
        if rc:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
