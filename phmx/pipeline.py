"""Running the stages in order in this process, and the run summary people read."""

from __future__ import annotations

import time
from collections.abc import Sequence

from phmx.context import StageResult


def run_pipeline(*, period: str = "all", run_id: str | None = None,
                 stages: Sequence[str] | None = None) -> list[StageResult]:
    """Run the given stages (default: all, in order) on the process-wide engine session."""
    from jobs import STAGES
    from jobs.entry import check_params, run_stage
    from phmx.context import RunContext

    check_params(period=period, run_id=run_id, stages=list(stages or STAGES))
    run_id = run_id or RunContext.new().run_id
    results = []
    for stage in stages or STAGES:
        t = time.perf_counter()
        result = run_stage(stage, period=period, run_id=run_id)
        result.details["seconds"] = round(time.perf_counter() - t, 2)
        results.append(result)
    return results


def summary_table(results: list[StageResult]) -> None:
    """Print a rich table of every stage's counts (counts only, never PHI)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="phmx run summary")
    table.add_column("stage")
    table.add_column("counts")
    table.add_column("seconds", justify="right")
    for r in results:
        counts = ", ".join(f"{k}={v}" for k, v in r.counts.items())
        table.add_row(r.stage, counts, str(r.details.get("seconds", "")))
    console.print(table)
