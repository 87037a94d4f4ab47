"""The identity stage meets its contract: silver.person in, gold.member_xwalk and gold.member out."""

from __future__ import annotations

import datetime as dt

from phmx import lakehouse, tables
from phmx.context import RunContext


def _person(spark, rows):
    df = spark.createDataFrame(
        rows, "source string, source_person_id string, cin string, given_name string, family_name string,"
              " birth_date date, zip string, county_fips string")
    lakehouse.overwrite(lakehouse.conform_to(df, tables.PERSON), tables.PERSON)


def test_stage_writes_xwalk_and_member(spark, phmx_home):
    import jobs.identity as identity

    _person(spark, [
        ("mcp_a", "1", "91234567A", "Ann", "Lee", dt.date(1990, 1, 2), "94703", "06001"),
        ("cair2", "x", None, "ANN", "lee", dt.date(1990, 1, 2), "94703", "06001"),
        ("mcp_a", "2", None, "Bob", "Ray", dt.date(1980, 1, 2), "91101", "06037"),
    ])
    result = identity.run(spark, RunContext.new(run_id="r1"))
    assert result.counts["records"] == 3
    xw = {(r.source, r.source_person_id): r.member_id
          for r in lakehouse.read(spark, tables.MEMBER_XWALK).collect()}
    assert xw[("mcp_a", "1")] == xw[("cair2", "x")] != xw[("mcp_a", "2")]
    lhj = {r.member_id: r.lhj for r in lakehouse.read(spark, tables.MEMBER).collect()}
    assert lhj[xw[("mcp_a", "1")]] == "Berkeley"
    assert lhj[xw[("mcp_a", "2")]] == "Pasadena"
    # A second run keeps every member id.
    identity.run(spark, RunContext.new(run_id="r2"))
    again = {(r.source, r.source_person_id): r.member_id
             for r in lakehouse.read(spark, tables.MEMBER_XWALK).collect()}
    assert again == xw
