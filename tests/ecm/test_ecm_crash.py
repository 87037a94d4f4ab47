"""The ecm stage interrupted between its gold writes and run again ends as an uninterrupted run does.

The stage writes gold.ecm_member_month, gold.ecm_provider_month, gold.ecm_statement_line,
gold.ecm_statement_member and gold.ecm_population_flag, one commit each. The crash is injected right
after a commit (``PHMX_FAULT=<point>=raise``, :mod:`phmx.faults`), so the lakehouse holds, say, a
month's metrics without its statements, or a statement's lines without the members behind them;
the same run is then started again. Every gold.ecm_* table must equal the clean run's, and the
stage must not touch the audit layer (it discloses nothing: the ECM packages are written, and
ledgered, by the publish stage, whose crashes tests/publish/test_ecm_publish_crash.py covers).

tests/e2e/test_crash_consistency.py kills the stage (``os._exit``, like ``kill -9``) before its
first write, after its first and after its last; this test covers the commits in between, in
process (a raise leaves the same tables on disk as a kill at that point): after the metrics and
after the statement lines. The third, after the statement members (populations of focus not yet
flagged), is left out to keep the suite's time: a run flags every period not yet flagged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ecm_world import land_world
from test_ecm_statements import CONTRACT

from jobs import conform, ecm, identity, ingest
from jobs.ecm.contracts import parse
from phmx import faults, lakehouse
from phmx.context import RunContext

RUN = "run-ecm-crash"
TABLES = ("gold.ecm_member_month", "gold.ecm_provider_month", "gold.ecm_statement_line",
          "gold.ecm_statement_member", "gold.ecm_population_flag")
#: after the metrics (statements not yet written), after a statement's lines (the members behind them not yet)
POINTS = [f"lakehouse.write.after:{t}" for t in TABLES[1:3]]


def _contents(spark) -> dict[str, list[tuple]]:
    out = {}
    for t in TABLES:
        if not lakehouse.exists(t):
            out[t] = []
            continue
        df = lakehouse.read(spark, t)
        cols = sorted(c for c in df.columns if c != "computed_at")
        out[t] = sorted(tuple(str(v) for v in r) for r in df.select(*cols).collect())
    return out


def _audit_files(home: Path) -> list[str]:
    audit = home / "lakehouse" / "audit"
    return sorted(str(p.relative_to(audit)) for p in audit.rglob("*") if p.is_file()) if audit.exists() else []


@pytest.mark.slow
def test_a_rerun_after_a_crash_between_the_ecm_commits_gives_the_clean_tables(spark, phmx_home, land, monkeypatch,
                                                                              tmp_path):
    land_world(land)
    for stage in (ingest, conform, identity):
        stage.run(spark, RunContext.new(run_id=RUN))
    contracts = [parse(CONTRACT, Path("bc-test.yaml"))]  # the hand-built world's plan and provider
    before = tmp_path / "before"
    shutil.copytree(phmx_home, before)
    ecm.run(spark, RunContext.new(run_id=RUN), contracts=contracts)
    clean = _contents(spark)
    assert all(clean[t] for t in TABLES[:4]), {t: len(v) for t, v in clean.items()}

    for n, point in enumerate(POINTS):
        home = tmp_path / f"crash{n}"
        shutil.copytree(before, home)
        monkeypatch.setenv("PHMX_HOME", str(home))
        audit = _audit_files(home)
        monkeypatch.setenv("PHMX_FAULT", f"{point}=raise")
        faults._hits.clear()
        with pytest.raises(faults.FaultInjected):
            ecm.run(spark, RunContext.new(run_id=RUN), contracts=contracts)
        monkeypatch.delenv("PHMX_FAULT")
        faults._hits.clear()
        # the crash left a partial state: the table after the fault point still as before the stage
        nxt = TABLES[TABLES.index(point.split(":", 1)[1]) + 1]
        assert not lakehouse.exists(nxt), (point, nxt)
        ecm.run(spark, RunContext.new(run_id=RUN), contracts=contracts)
        got = _contents(spark)
        for t in TABLES:
            assert got[t] == clean[t], f"{t} differs from the clean run's after a crash at {point}"
        assert _audit_files(home) == audit, "the ecm stage wrote to the audit layer"
