"""``python -m jobs.ecm [--period P] [--run-id R]``: run the ECM stage by hand (see :mod:`jobs.entry`)."""

from __future__ import annotations

from jobs.entry import main

if __name__ == "__main__":
    raise SystemExit(main("ecm"))
