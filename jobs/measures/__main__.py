"""``python -m jobs.measures [--period P] [--run-id R]``: run the measures stage by hand.

P is YYYY (a measurement year), YYYY-MM (that month's measurement year), R12-YYYY-MM (the 12
months ending that month) or all (the year of the latest encounter).
"""

from __future__ import annotations

from jobs.entry import main

if __name__ == "__main__":
    raise SystemExit(main("measures"))
