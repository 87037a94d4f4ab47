"""Several files for one (submitter, feed, period): the latest replaces the others in bronze and silver.

The rule (docs/submitter-guide.md, "Sending a correction"): in a feed whose ``on_resubmit`` is
``replace``, a file replaces every earlier file of the same submitter, feed and period, whether
it arrived in an earlier run or earlier in the same run (files of one run are taken in path
order); an ``append`` feed keeps every file. A header-only file replaces the period with nothing.
"""

from __future__ import annotations

from jobs import conform, ingest
from phmx import lakehouse
from phmx.context import RunContext
from phmx.tables import SUBMISSIONS
from tests.ingest.helpers import land, receipts
from tests.ingest.test_ingest_delimited import HEADER, enrollment_row


def _bronze_ids(spark) -> list[str]:
    return sorted(r.member_local_id for r in lakehouse.read(spark, "bronze.enrollment").collect())


def _silver_ids(spark, source: str = "mcp_bluecoast") -> list[str]:
    return sorted(r.source_person_id for r in lakehouse.read(spark, "silver.person").where(f"source = '{source}'")
                  .collect())


def test_two_files_in_one_run_keep_only_the_later_in_bronze_and_silver(spark, phmx_home):
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v1.txt",
         HEADER + "\n" + enrollment_row(1) + "\n" + enrollment_row(2) + "\n")
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v2.txt", HEADER + "\n" + enrollment_row(3) + "\n")
    land(phmx_home, "mcp_sierra", "enrollment", "2025-01", "s.txt", HEADER + "\n" + enrollment_row(50) + "\n")
    ctx = RunContext.new()
    ingest.run(spark, ctx)
    conform.run(spark, ctx)
    assert _bronze_ids(spark) == ["BC000003", "BC000050"]
    assert _silver_ids(spark) == ["BC000003"] and _silver_ids(spark, "mcp_sierra") == ["BC000050"]
    by_file = {r["source_file"].rsplit("/", 1)[-1]: r for r in receipts(phmx_home, "mcp_bluecoast")}
    assert by_file["v2.txt"]["supersedes"] == [by_file["v1.txt"]["submission_id"]]
    assert any("replaced by" in n and "v2.txt" in n for n in by_file["v1.txt"]["notes"])
    ledger = {r.source_file: r.status for r in lakehouse.read(spark, SUBMISSIONS).collect()}
    assert len(ledger) == 3  # both submissions stay in the ledger


def test_a_later_run_replaces_and_a_header_only_file_withdraws_the_period(spark, phmx_home):
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v1.txt",
         HEADER + "\n" + enrollment_row(1) + "\n" + enrollment_row(2) + "\n")
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-02", "feb.txt", HEADER + "\n" + enrollment_row(9) + "\n")
    ctx = RunContext.new()
    ingest.run(spark, ctx)
    conform.run(spark, ctx)
    assert _silver_ids(spark) == ["BC000001", "BC000002", "BC000009"]
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v2.txt", HEADER + "\n" + enrollment_row(2) + "\n")
    ingest.run(spark, ctx)
    conform.run(spark, ctx)
    assert _bronze_ids(spark) == _silver_ids(spark) == ["BC000002", "BC000009"]
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v3.txt", HEADER + "\n")
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-02", "feb2.txt", HEADER + "\n")
    ingest.run(spark, ctx)
    conform.run(spark, ctx)
    # Nothing of this submitter is left in bronze: silver must still lose its rows (no source row to see).
    assert _bronze_ids(spark) == _silver_ids(spark) == []
    v3 = next(r for r in receipts(phmx_home, "mcp_bluecoast") if r["source_file"].endswith("v3.txt"))
    assert [w["rule_id"] for w in v3["file_warnings"]] == ["period_withdrawn"]
