"""The LHJ report's rendering cost: one package's report.html (Jinja2 + Vega-Lite charts rendered
to SVG by vl-convert, all of a report's charts in one batch) for a jurisdiction with 10 measures, 12 months, 4 quarters and the one-way
strata, i.e. what the publish stage pays per LHJ (x61 for a statewide run).

    python -m benchmarks lhj_report [--quick]
"""

from __future__ import annotations

import os
import resource
import sys
import time
from datetime import UTC, datetime

import pandas as pd

STRATA = {"age_band": ["0-5", "6-11", "12-17", "18-20", "21-44", "45-64", "65+", "unknown"],
          "sex": ["F", "M", "unknown"], "race_ethnicity": ["asian", "black", "hispanic", "white", "unknown"],
          "plan": ["BC", "SR"]}


def _table(measures: int, lhj: str) -> pd.DataFrame:
    rows = []
    periods = ["2025", *(f"2025-Q{q}" for q in range(1, 5)), *(f"2025-{m:02d}" for m in range(1, 13))]
    for k in range(measures):
        mid = f"M{k:02d}"
        for i, p in enumerate(periods):
            num, den = (None, 40) if i % 7 == 3 else (20 + i, 60 + 2 * i)
            rows.append((lhj, mid, p, "all", "all", num, den, "2" if num is None else ""))
        for strat, values in STRATA.items():
            for j, v in enumerate(values):
                num, den = (None, None) if j % 4 == 1 else (10 + j, 40 + 3 * j)
                rows.append((lhj, mid, "2025", strat, v, num, den, "1" if num is None else ""))
    df = pd.DataFrame(rows, columns=["lhj", "measure_id", "period", "stratifier", "stratum", "numerator",
                                     "denominator", "annotation"])
    df["rate"] = df["numerator"] / df["denominator"]
    df["ci_low"], df["ci_high"] = (df["rate"] - 0.05).clip(lower=0), (df["rate"] + 0.05).clip(upper=1)
    df["annotation"] = df["annotation"].replace("", None)
    df["sensitive"] = False
    return df


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from jobs.publish import report_html

    measures = 2 if "--quick" in argv else 10
    lhj_t = _table(measures, "Yolo")
    state = _table(measures, "California")
    state = state[state["stratifier"] == "all"]
    t0 = time.perf_counter()
    report_html.render(lhj="Yolo", recipient="lhj_yolo", period="all", run_id="bench", table=lhj_t.iloc[:40],
                       state=state.iloc[:10], suppression_method="bench", ci_method="wilson", fingerprint="x",
                       key_id="k", generated_at=datetime.now(UTC))
    warm = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    html = report_html.render(lhj="Yolo", recipient="lhj_yolo", period="all", run_id="bench", table=lhj_t,
                              state=state, suppression_method="bench", ci_method="wilson", fingerprint="x",
                              key_id="k", generated_at=datetime.now(UTC))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    charts = html.count("<svg")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"lhj_report: {measures} measures, {len(lhj_t)} cells, {charts} charts: {secs:.2f} s "
          f"({secs / max(charts, 1):.3f} s per chart), CPU {cpu:.2f} s ({cpu / max(charts, 1):.3f} s per chart; "
          f"all threads); first call incl. vl-convert start-up {warm:.2f} s), "
          f"{len(html) / 1e6:.2f} MB HTML, peak RSS {peak:.0f} MB; load {os.getloadavg()[0]:.2f}, "
          f"{os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
