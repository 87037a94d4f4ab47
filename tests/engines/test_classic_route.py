"""The classic JVM route (``PHMX_ENGINE=classic``): one JVM session from the jars ``make jvm``
resolved, running the project's own code paths that once failed there."""

from __future__ import annotations

import json
import textwrap

import pytest
from jvm_kit import requires_jvm, run_script

pytestmark = [requires_jvm, pytest.mark.slow]

SCRIPT = textwrap.dedent("""
    import json, sys
    from types import SimpleNamespace
    from pyspark.sql import functions as F
    from phmx import lakehouse
    from phmx.engine import get_spark
    from phmx.tables import Table
    from jobs.identity.blocking import candidate_pairs
    from jobs.identity.config import BlockingRule
    from privacy import crypto
    from privacy.keys import LocalKeyProvider

    spark = get_spark()
    out = {"classic": type(spark).__module__}

    # 1. blocking: the rule bit mask is computed on the JVM (classic F.shiftleft takes no column)
    std = spark.createDataFrame([(1, "a", "x"), (2, "a", "x"), (3, "b", "x"), (4, "b", "y")],
                                "rid long, k1 string, k2 string")
    rules = SimpleNamespace(rules=[BlockingRule("k1", ("k1",)), BlockingRule("k2", ("k2",))], max_block_size=100)
    pairs, _ = candidate_pairs(std, rules)
    out["pairs"] = sorted(tuple(r) for r in pairs.select("rid_l", "rid_r", "rule", "rules").collect())

    # 2. the project's pandas UDFs import on the JVM's Python workers (privacy.crypto)
    provider = LocalKeyProvider(sys.argv[1])
    people = spark.createDataFrame([("91234567A", "Ana", 1), (None, "Mai", 2)], "cin string, given_name string, n int")
    enc = crypto.encrypt_columns(people, ["cin", "given_name"], provider, table="silver.person")
    dec = crypto.decrypt_columns(enc, ["cin", "given_name"], provider, table="silver.person")
    out["round_trip"] = [tuple(r) for r in dec.orderBy("n").collect()]
    out["dek_unwrap"] = crypto.unwrap_mode()

    # 3. a contract table with string columns written on the JVM is plain `string` in the Delta log
    t = Table("gold", "jvm_strings", (("member_id", "string"), ("cin", "string"), ("n", "bigint")), ("member_id",))
    lakehouse.overwrite(lakehouse.conform_to(enc.select(F.col("n").cast("string").alias("member_id"), "cin", "n"), t), t)
    out["path"] = lakehouse.table_path(t)

    # 4. a plan feed's NDJSON is streamed from a classic frame (no Spark Connect client there)
    from pathlib import Path
    from jobs.publish.ndjson_stream import write_ndjson
    from jobs.publish.package import HashingWriter
    docs = spark.createDataFrame(
        [(f"p{i}", json.dumps({"resourceType": "Patient", "id": f"p{i}"}) + "\\n", i % 2 == 0, None) for i in range(3)],
        "id string, line string, part2 boolean, problem string")
    writer = HashingWriter(Path(sys.argv[1]).parent / "Patient.ndjson")
    stats = write_ndjson(docs.orderBy("id"), writer, "Patient", mode="all")
    spooled = writer.close()
    out["ndjson"] = {"count": stats.count, "part2": stats.part2, "validated": stats.validated,
                     "text": spooled.path.read_text(),
                     "connect_imported": "pyspark.sql.connect.dataframe" in sys.modules}

    # 5. the batched engine actions (identity's u estimates, conform's source list): compared with Sail's
    sys.path.insert(0, "tests/engines")
    from batched_actions import figures
    out["batched"] = figures(spark, str(Path(sys.argv[1]).parent / "work"))
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def classic_result(tmp_path_factory):
    home = tmp_path_factory.mktemp("classic")
    proc = run_script(SCRIPT, str(home / "keys"), engine="classic", home=home)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_the_session_is_a_classic_jvm_session(classic_result):
    assert classic_result["classic"] == "pyspark.sql.session"  # not pyspark.sql.connect


def test_blocking_rule_mask_on_classic_spark(classic_result):
    # pairs (1,2) by both rules (mask 0b11), (3,4) by k1 only, (1,3) and (2,3) by k2 only
    assert [tuple(p) for p in classic_result["pairs"]] == [(1, 2, 0, 3), (1, 3, 1, 2), (2, 3, 1, 2), (3, 4, 0, 1)]


def test_pandas_udfs_of_the_project_run_on_the_jvm_workers(classic_result):
    assert [tuple(r) for r in classic_result["round_trip"]] == [("91234567A", "Ana", 1), (None, "Mai", 2)]
    assert classic_result["dek_unwrap"] == "driver"  # a local master: the key stays on this machine


def test_strings_written_on_the_jvm_are_plain_strings_delta_rs_reads(classic_result):
    import deltalake

    dt = deltalake.DeltaTable(classic_result["path"])
    types = {f.name: str(f.type) for f in dt.schema().fields}
    assert "collat" not in json.dumps(dt.schema().to_json()).lower()
    assert dt.to_pyarrow_table().num_rows == 2 and set(types) == {"member_id", "cin", "n"}


def test_plan_feed_ndjson_streams_from_a_classic_frame(classic_result):
    # once a PySparkRuntimeError (SparkSession.client exists only on Spark Connect)
    nd = classic_result["ndjson"]
    assert (nd["count"], nd["part2"], nd["validated"]) == (3, 2, 3)
    assert [json.loads(line)["id"] for line in nd["text"].splitlines()] == ["p0", "p1", "p2"]
    # the cluster bundle has no grpc: a classic job that imported the Spark Connect client would fail
    assert nd["connect_imported"] is False


def test_batched_engine_actions_give_sails_results(classic_result, spark, tmp_path):
    # one union and one action where there was one action per comparison or per side
    from batched_actions import figures

    ours = json.loads(json.dumps(figures(spark, str(tmp_path / "work"))))
    assert ours["sources"] == ["planA", "planB", "planC"] and ours["sources_no_ledger"] == ["planA", "planB"]
    assert ours["sources_bronze_only"] == ["planA-x", "planA-z", "planB-y"]
    assert ours["exact_u"] and any(len(v) >= 2 for v in ours["u_levels"].values())
    assert classic_result["batched"] == ours
