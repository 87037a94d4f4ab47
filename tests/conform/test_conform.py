"""Conform: bronze -> silver per the feed specs' targets, with security labels."""

from __future__ import annotations

from testkit import csv_rows

from jobs import conform, ingest
from phmx import lakehouse
from phmx.context import RunContext
from phmx.feedspec import get_spec

CLAIMS = get_spec("claims").field_names
SUD = get_spec("sud_caloms").field_names
MH = get_spec("mh_csi").field_names


def test_claim_lines_become_one_encounter_with_labels(spark, phmx_home, land):
    lines = [
        {"claim_id": "C1", "claim_line": "1", "member_local_id": "BC1", "claim_type": "I", "service_from": "2025-01-05",
         "place_of_service": "23", "revenue_code": "0450", "dx1": "F1120", "dx2": "F17210", "plan_id": "BC"},
        {"claim_id": "C1", "claim_line": "2", "member_local_id": "BC1", "claim_type": "I", "service_from": "2025-01-05",
         "cpt_hcpcs": "99284", "dx1": "F329", "plan_id": "BC"},
        {"claim_id": "C2", "claim_line": "1", "member_local_id": "BC2", "claim_type": "P", "service_from": "2025-01-07",
         "place_of_service": "11", "cpt_hcpcs": "99213", "dx1": "E119", "plan_id": "BC"},
    ]
    land("mcp_bluecoast", "claims", "2025-01", "c.csv", csv_rows(CLAIMS, lines))
    ingest.run(spark, RunContext.new())
    result = conform.run(spark, RunContext.new())
    assert result.counts["claims->encounter"] == 2
    enc = {r.encounter_id: r for r in lakehouse.read(spark, "silver.encounter").collect()}
    assert enc["C1"].setting == "ED"
    assert enc["C1"].diagnosis_codes == ["F1120", "F17210", "F329"]
    assert enc["C1"].procedure_codes == ["99284"]
    assert {"SUD", "MH"} <= set(enc["C1"].security_labels)
    assert "42CFRPart2" not in enc["C1"].security_labels  # a general claim is not a Part 2 record
    assert enc["C1"].sensitivity == "sud"
    assert enc["C2"].setting == "OP" and enc["C2"].security_labels == [] and enc["C2"].sensitivity == "general"


def test_county_feeds_label_whole_records_and_keep_mh_and_sud_id_spaces_apart(spark, phmx_home, land):
    sud = [{"record_type": "A", "provider_id": "010001", "client_id": "77", "given_name": "A", "family_name": "B",
            "birth_date": "1990-02-03", "sex": "M", "zip": "00000", "admission_date": "2025-01-02",
            "diagnosis": "F1120"}]
    mh = [{"record_type": "C", "county_code": "01", "client_number": "77", "given_name": "C", "family_name": "D",
           "birth_date": "1991-02-03", "sex": "F", "zip": "94607"},
          {"record_type": "S", "county_code": "01", "client_number": "77", "service_date": "2025-01-03",
           "mode_of_service": "15", "service_function": "30", "units_of_service": "1", "diagnosis": "F329"}]
    land("county_06001_bh", "sud_caloms", "2025-01", "s.csv", csv_rows(SUD, sud))
    land("county_06001_bh", "mh_csi", "2025-01", "m.csv", csv_rows(MH, mh))
    ingest.run(spark, RunContext.new())
    result = conform.run(spark, RunContext.new())
    assert result.counts["sud_caloms->bh_service"] == 1 and result.counts["mh_csi->bh_service"] == 1
    # two feeds with disjoint sources into one silver table: one write (one Delta commit), not one each
    assert [len(lakehouse.history(t)) for t in ("silver.person", "silver.bh_service")] == [1, 1]
    people = {(r.source, r.source_person_id): r for r in lakehouse.read(spark, "silver.person").collect()}
    assert set(people) == {("county_06001_bh:sud", "77"), ("county_06001_bh:mh", "77")}
    assert people[("county_06001_bh:sud", "77")].zip is None  # 00000 = homeless, not a ZIP
    assert people[("county_06001_bh:mh", "77")].county_fips == "06001"
    svc = {r.program: r for r in lakehouse.read(spark, "silver.bh_service").collect()}
    assert {"SUD", "42CFRPart2"} <= set(svc["SUD"].security_labels) and svc["SUD"].sensitivity == "sud"
    assert "MH" in svc["MH"].security_labels and svc["MH"].sensitivity == "mh"
    assert svc["MH"].county_fips == "06001" and svc["SUD"].county_fips == "06001"


def test_conform_twice_is_idempotent(spark, phmx_home, land):
    lines = [{"claim_id": "C9", "claim_line": "1", "member_local_id": "BC9", "claim_type": "P",
              "service_from": "2025-01-05", "dx1": "E119", "plan_id": "BC"}]
    land("mcp_bluecoast", "claims", "2025-01", "c.csv", csv_rows(CLAIMS, lines))
    ingest.run(spark, RunContext.new())
    conform.run(spark, RunContext.new())
    first = sorted(map(tuple, lakehouse.read(spark, "silver.encounter").collect()))
    conform.run(spark, RunContext.new())
    assert sorted(map(tuple, lakehouse.read(spark, "silver.encounter").collect())) == first


def test_merge_rounds_batch_disjoint_sources_and_keep_the_order_of_shared_ones():
    from jobs.conform.stage import _Planned, merge_rounds

    def item(key: str, *sources: str) -> _Planned:
        return _Planned(key, None, list(sources))  # type: ignore[arg-type]  # frames play no part here

    rounds = merge_rounds([item("a", "p1"), item("b", "p2"), item("c", "p1", "p3"), item("d", "p4"),
                           item("e", "p3")])
    assert [[i.key for i in r] for r in rounds] == [["a", "b", "d"], ["c"], ["e"]]
    assert merge_rounds([]) == []


def test_person_keeps_every_address_line_its_versions_carried(spark):
    # Conform keeps the latest version of a person, and in address_history every address line
    # any version carried (identity tells a move from a lookalike by it).
    from jobs.conform.stage import with_address_history
    from phmx.tables import PERSON

    df = spark.createDataFrame(
        [("s", "1", "12 Main St", "2025-01"), ("s", "1", " 4 Oak Ave ", "2025-02"), ("s", "1", "12 Main St", "2025-03"),
         ("s", "2", None, "2025-01"), ("t", "1", "9 Elm St", "2025-01")],
        "source string, source_person_id string, address_line string, period string")
    got = {(r["source"], r["source_person_id"], r["period"]): r["address_history"]
           for r in with_address_history(df, PERSON).collect()}
    assert got[("s", "1", "2025-03")] == got[("s", "1", "2025-01")] == "12 Main St\n4 Oak Ave"
    assert got[("s", "2", "2025-01")] is None and got[("t", "1", "2025-01")] == "9 Elm St"


def test_carry_forward_fills_the_latest_version_from_earlier_ones_and_keeps_every_address(spark):
    # A spec's carry_forward columns: the latest version of a key (period, then row), each empty
    # column taken from the latest earlier version that has it; address_history from every version.
    from jobs.conform.stage import latest_carrying_forward
    from phmx.tables import PERSON

    df = spark.createDataFrame(
        [("s", "1", "2025-01", 1, "A", "12 Main St", "555-0100", "x1"),
         ("s", "1", "2025-02", 3, None, " 4 Oak Ave ", None, "x2"),
         ("s", "1", "2025-02", 7, None, None, None, "x2"),
         ("s", "2", "2025-01", 1, None, None, "555-0199", "x1"),
         ("t", "1", "2025-03", 2, "B", "9 Elm St", None, "x3")],
        "source string, source_person_id string, period string, row_number int, given_name string,"
        " address_line string, phone string, submission_id string")
    got = {(r["source"], r["source_person_id"]): r.asDict()
           for r in latest_carrying_forward(df, PERSON, ["given_name", "address_line"]).collect()}
    assert len(got) == 3
    s1 = got[("s", "1")]
    # carried: given name from 2025-01, address from 2025-02 row 3; not carried: phone stays empty
    assert (s1["period"], s1["row_number"], s1["submission_id"]) == ("2025-02", 7, "x2")
    assert (s1["given_name"], s1["address_line"], s1["phone"]) == ("A", " 4 Oak Ave ", None)
    assert s1["address_history"] == "12 Main St\n4 Oak Ave"
    assert got[("s", "2")]["given_name"] is None and got[("s", "2")]["address_history"] is None
    assert got[("t", "1")]["address_history"] == "9 Elm St"


def test_carry_forward_of_a_column_the_target_does_not_map_is_refused(spark):
    import pytest

    from jobs.conform.stage import base_specs, build_target
    from phmx.errors import SpecError

    spec = base_specs()["enrollment"]
    mapping = {**spec.targets["person"], "carry_forward": ["no_such_column"]}
    bronze = spark.createDataFrame([("s", "1")], "submitter string, member_local_id string")
    with pytest.raises(SpecError, match="carry_forward"):
        build_target(bronze, spec, "person", mapping)


def test_a_source_with_no_new_submission_is_not_conformed_again(spark, phmx_home, land, monkeypatch):
    """Month by month, conform touches only the sources that sent something: another plan's
    silver rows are left as they are, and a run with nothing new writes no silver version."""

    def claims(prefix: str, month: str) -> bytes:
        return csv_rows(CLAIMS, [{"claim_id": f"{prefix}{month}", "claim_line": "1", "member_local_id": f"{prefix}1",
                                  "claim_type": "P", "service_from": f"{month}-05", "dx1": "E119", "plan_id": prefix}])

    land("mcp_bluecoast", "claims", "2025-01", "c.csv", claims("BC", "2025-01"))
    land("mcp_sierra", "claims", "2025-01", "c.csv", claims("SR", "2025-01"))
    ingest.run(spark, RunContext.new())
    first = conform.run(spark, RunContext.new())
    assert first.counts["claims->encounter:unchanged_sources"] == 0
    assert first.counts["claims->encounter"] == 2

    land("mcp_bluecoast", "claims", "2025-02", "c.csv", claims("BC", "2025-02"))
    ingest.run(spark, RunContext.new(period="2025-02"))
    second = conform.run(spark, RunContext.new(period="2025-02"))
    # Only mcp_bluecoast is conformed (its two encounters counted); mcp_sierra is not read again.
    assert second.counts["claims->encounter:unchanged_sources"] == 1
    assert second.counts["claims->encounter"] == 2
    assert sorted(r.encounter_id for r in lakehouse.read(spark, "silver.encounter").collect()) == \
        ["BC2025-01", "BC2025-02", "SR2025-01"]

    version = lakehouse.version("silver.encounter")
    third = conform.run(spark, RunContext.new())
    assert third.counts["claims->encounter:unchanged_sources"] == 2 and "claims->encounter" not in third.counts
    assert lakehouse.version("silver.encounter") == version  # nothing new: no commit at all

    # A resent file (same period, new content) replaces the source's rows: conformed again.
    land("mcp_sierra", "claims", "2025-01", "c2.csv", claims("SQ", "2025-01"))
    ingest.run(spark, RunContext.new())
    fourth = conform.run(spark, RunContext.new())
    assert fourth.counts["claims->encounter:unchanged_sources"] == 1
    ids = sorted(r.encounter_id for r in lakehouse.read(spark, "silver.encounter").collect())
    assert "BC2025-02" in ids and "SQ2025-01" in ids

    # A silver table restored to an older version is conformed again from every source, unasked: the
    # state recorded the version it spoke for.
    lakehouse.restore("silver.encounter", 0)
    assert sorted(r.encounter_id for r in lakehouse.read(spark, "silver.encounter").collect()) == \
        ["BC2025-01", "SR2025-01"]
    restored = conform.run(spark, RunContext.new())
    assert restored.counts["claims->encounter:unchanged_sources"] == 0
    assert sorted(r.encounter_id for r in lakehouse.read(spark, "silver.encounter").collect()) == ids
    assert conform.run(spark, RunContext.new()).counts["claims->encounter:unchanged_sources"] == 2

    # PHMX_CONFORM_FULL=1 conforms every source again.
    monkeypatch.setenv("PHMX_CONFORM_FULL", "1")
    assert conform.run(spark, RunContext.new()).counts["claims->encounter:unchanged_sources"] == 0


def test_a_month_of_new_submissions_is_conformed_by_key_as_a_whole_conform_would(spark, phmx_home, land,
                                                                                 monkeypatch):
    """A source that only added a submission is conformed by key: the claims its new lines touch
    are recomputed from all their lines (a claim line sent a month later joins its claim), the
    others kept; conforming every source whole afterwards finds nothing to change."""

    def line(claim: str, n: str, month: str, dx: str) -> dict[str, str]:
        return {"claim_id": claim, "claim_line": n, "member_local_id": "BC1", "claim_type": "P",
                "service_from": f"{month}-05", "dx1": dx, "plan_id": "BC"}

    land("mcp_bluecoast", "claims", "2025-01", "c.csv",
         csv_rows(CLAIMS, [line("C1", "1", "2025-01", "E119"), line("C2", "1", "2025-01", "I10")]))
    ingest.run(spark, RunContext.new())
    assert conform.run(spark, RunContext.new()).counts["claims->encounter:sources_by_key"] == 0
    before = {r.encounter_id: r for r in lakehouse.read(spark, "silver.encounter").collect()}

    land("mcp_bluecoast", "claims", "2025-02", "c.csv",
         csv_rows(CLAIMS, [line("C1", "2", "2025-01", "J449"), line("C3", "1", "2025-02", "F1120")]))
    ingest.run(spark, RunContext.new(period="2025-02"))
    month = conform.run(spark, RunContext.new(period="2025-02"))
    assert month.counts["claims->encounter:sources_by_key"] == 1
    assert month.counts["encounter:rows_written"] == 2  # C1 changed, C3 new; C2 not compared
    after = {r.encounter_id: r for r in lakehouse.read(spark, "silver.encounter").collect()}
    assert sorted(after) == ["C1", "C2", "C3"]
    assert list(after["C1"].diagnosis_codes) == ["E119", "J449"]
    assert after["C2"] == before["C2"]
    assert "SUD" in after["C3"].security_labels  # labelled as a whole conform labels it

    version = lakehouse.version("silver.encounter")
    monkeypatch.setenv("PHMX_CONFORM_FULL", "1")
    whole = conform.run(spark, RunContext.new())
    assert whole.counts["claims->encounter:sources_by_key"] == 0 and whole.counts["encounter:rows_written"] == 0
    assert lakehouse.version("silver.encounter") == version


def test_a_group_by_target_goes_by_key_only_when_its_key_is_its_groups():
    """One group, one key: the key read from the group's columns, every group column in the key.
    Otherwise (a key from another column, or two groups giving one key) the source goes whole."""
    from jobs.conform.stage import SILVER, base_specs, key_follows_group

    encounter = base_specs()["claims"].targets["encounter"]
    assert key_follows_group(encounter, SILVER["encounter"])
    from_member = {**encounter, "columns": {**encounter["columns"], "encounter_id": "first(member_local_id)"}}
    assert not key_follows_group(from_member, SILVER["encounter"])
    per_line = {**encounter, "group_by": ["claim_id", "claim_line"]}
    assert not key_follows_group(per_line, SILVER["encounter"])


def test_each_encounter_gets_only_its_own_claims_diagnoses(spark, phmx_home):
    """Many claims, most lines with empty secondary diagnoses: each encounter holds the codes of its
    own lines only, the same on every run. Written with flatten(collect_list(array(dx1, ..., dx4)))
    the embedded engine gave about half the claims another claim's codes (so wrong MH/SUD labels)."""
    from jobs.conform.stage import base_specs, build_target

    n = 30_000
    from pyspark.sql import functions as F

    cols = ["claim_id", "claim_line", "member_local_id", "claim_type", "service_from", "dx1", "dx2", "dx3", "dx4",
            "plan_id", "submitter", "submission_id", "period", "row_number"]
    rows = [(f"C{i // 2}", str(i % 2 + 1), f"M{i // 2}", "P", "2025-01-05", f"A{i}", f"B{i}" if i % 7 == 0 else None,
             None, None, "BC", "mcp_bluecoast", "s1", "2025-01", i) for i in range(2 * n)]
    bronze = spark.createDataFrame(rows, ", ".join(f"{c} {'bigint' if c == 'row_number' else 'string'}"
                                                   for c in cols)).repartition(4)
    bronze = bronze.withColumns({c: F.lit(None).cast("string") for c in CLAIMS if c not in cols})
    spec = base_specs()["claims"]
    got = {r.encounter_id: list(r.diagnosis_codes) for r in
           build_target(bronze, spec, "encounter", spec.targets["encounter"]).select("encounter_id", "diagnosis_codes")
           .collect()}
    want = {}
    for claim, _, _, _, _, dx1, dx2, *_ in rows:
        want.setdefault(claim, []).extend(c for c in (dx1, dx2) if c)
    want = {k: [v[0], *sorted(set(v) - {v[0]})] for k, v in want.items()}
    wrong = [k for k in want if got.get(k) != want[k]]
    assert not wrong, f"{len(wrong)} of {n} encounters, e.g. {wrong[0]}: {got.get(wrong[0])} != {want[wrong[0]]}"
