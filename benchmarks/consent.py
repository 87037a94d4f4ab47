"""Consent benchmark: decisions per second, and ledger verification time.

    python -m benchmarks.consent                 # 1,000,000 members x 5 purposes x 3 recipients; 1,000,000 ledger entries
    python -m benchmarks.consent --quick         # 20,000 members; 20,000 ledger entries (under a minute)
    python -m benchmarks.consent --members 200000 --entries 100000

Decisions: synthetic members (10% with one or two consents, some revoked, some minors) are
decided on the embedded engine for 3 plans x 5 purposes x every data class of the policy, and
written to gold.consent_decision (Delta). Reported: decision rows written per second, and
member x class x purpose x recipient combinations decided per second.

Ledger: N entries appended in batches of 50,000 (each batch one Delta commit and one signed
checkpoint), then ``consent.audit.verify`` recomputes every hash and signature from the files.
Everything runs in a fresh PHMX_HOME under var/bench/consent-*.

Measured here (2 cores, 24 GiB): 200,000 members -> 24.5 M decision rows in 156 s (157 k rows/s,
3.4 GiB peak RSS); 1,000,000 ledger entries appended in 72 s and verified in 79 s (12.6 k/s,
1.3 GiB). The full 1,000,000-member decision run was not completed on this shared machine: an
attempt before the baseline cross-join change passed 15 GiB RSS and was stopped; at the measured
rate it needs about 13 minutes.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime

RECIPIENTS = ("mcp_alpha", "mcp_beta", "mcp_gamma")
PURPOSES = ("TREAT", "ETREAT", "HPAYMT", "HOPERAT", "HRESCH")


def _machine() -> str:
    import psutil

    return f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, {platform.platform()}"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _inputs(spark, n: int):  # noqa: ANN001, ANN202 - engine objects
    from pyspark.sql import functions as F

    from consent import decision_engine

    ids = spark.range(n).withColumn("member_id", F.format_string("m%09d", "id")) \
        .withColumn("source_person_id", F.format_string("c%09d", "id"))
    members = ids.select("member_id", F.date_add(F.lit("1950-01-01").cast("date"),
                                                 (F.abs(F.hash("id")) % 27000).cast("int")).alias("birth_date"))
    xwalk = ids.select(F.lit("county_06001_bh").alias("source"), "source_person_id", "member_id")
    tpo = '[{"path":"0","parent":null,"depth":0,"effect":"permit","purposes":["TREAT","HPAYMT","HOPERAT"],' \
          '"recipients":["mcp_alpha"],"data_classes":["SUD"],"period_start":null,"period_end":null}]'
    nested = '[{"path":"0","parent":null,"depth":0,"effect":"permit","purposes":[],"recipients":["role:treating"],' \
             '"data_classes":["SUD","MH"],"period_start":null,"period_end":null},{"path":"0.0","parent":"0","depth":1,' \
             '"effect":"deny","purposes":["HOPERAT"],"recipients":["role:treating"],"data_classes":["SUD","MH"],' \
             '"period_start":null,"period_end":null}]'
    who = ids.where(F.col("id") % 10 == 0)
    base = who.select(
        F.format_string("k%09d", "id").alias("consent_id"), F.lit(1).alias("version"),
        F.lit("county_06001_bh").alias("source"), "source_person_id",
        F.when(F.col("id") % 7 == 0, "minor_self").when(F.col("id") % 11 == 0, "guardian").otherwise("self").alias("grantor"),
        F.lit("active").alias("status"),
        F.to_timestamp(F.date_add(F.lit("2023-01-01").cast("date"), (F.col("id") % 700).cast("int"))).alias("period_start"),
        F.when(F.col("id") % 3 == 0, F.to_timestamp(F.lit("2026-01-01"))).alias("period_end"),
        F.to_timestamp(F.date_add(F.lit("2023-01-02").cast("date"), (F.col("id") % 700).cast("int"))).alias("recorded_at"),
        F.when(F.col("id") % 20 == 0, F.lit(nested)).otherwise(F.lit(tpo)).alias("provisions"),
        F.lit(None).cast("timestamp").alias("revoked_at"),
    )
    revoked = base.where(F.col("consent_id").endswith("30")).withColumn("version", F.lit(2)) \
        .withColumn("status", F.lit("inactive")).withColumn("revoked_at", F.to_timestamp(F.lit("2025-03-01 10:00:00"))) \
        .withColumn("recorded_at", F.col("revoked_at"))
    return decision_engine.Inputs(base.unionByName(revoked), xwalk, members)


def bench_decisions(n: int) -> dict[str, float]:
    from consent import decision_engine
    from consent.disclosure_policy import load_policy
    from phmx import lakehouse
    from phmx.engine import get_spark
    from phmx.tables import CONSENT_DECISION

    spark = get_spark()
    policy = load_policy()
    pairs = [(r, p) for r in RECIPIENTS for p in PURPOSES]
    t0 = time.perf_counter()
    out = decision_engine.decide(spark, pairs=pairs, run_id="bench", decided_at=datetime.now(UTC), policy=policy,
                        inputs=_inputs(spark, n))
    lakehouse.overwrite(out, CONSENT_DECISION)
    wall = time.perf_counter() - t0
    decision_engine.cleanup_scratch()
    rows = lakehouse.read(spark, CONSENT_DECISION).count()
    combos = n * len(policy.classes) * len(pairs)
    return {"members": n, "pairs": len(pairs), "classes": len(policy.classes), "decision_rows": rows,
            "combinations": combos, "seconds": wall, "rows_per_s": rows / wall, "combinations_per_s": combos / wall}


def bench_ledger(n: int, batch: int = 50_000) -> dict[str, float]:
    from consent import audit, ledger

    t0 = time.perf_counter()
    done = 0
    while done < n:
        k = min(batch, n - done)
        ledger.append([ledger.NewEntry("disclosure", "bench", {"recipient": "mcp_alpha", "purpose": "TREAT", "i": done + i})
                       for i in range(k)])
        done += k
    append_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    rep = audit.verify()
    verify_s = time.perf_counter() - t1
    if not rep.ok:
        raise SystemExit(f"verify failed: {rep.first_bad}")
    return {"entries": rep.entries, "append_seconds": append_s, "verify_seconds": verify_s,
            "verify_entries_per_s": rep.entries / verify_s}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.consent", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--members", type=int, default=None)
    ap.add_argument("--entries", type=int, default=None)
    ap.add_argument("--skip-decisions", action="store_true")
    ap.add_argument("--skip-ledger", action="store_true")
    args = ap.parse_args(argv)
    members = args.members or (20_000 if args.quick else 1_000_000)
    entries = args.entries or (20_000 if args.quick else 1_000_000)
    os.makedirs("var/bench", exist_ok=True)
    home = tempfile.mkdtemp(prefix="consent-", dir="var/bench")
    os.environ["PHMX_HOME"] = os.path.abspath(home)
    os.environ.setdefault("PHMX_LOG_LEVEL", "WARNING")
    print(f"machine: {_machine()}")
    start = time.perf_counter()
    if not args.skip_decisions:
        d = bench_decisions(members)
        print(f"decisions: {d['members']:,} members x {d['classes']} classes x {d['pairs']} (recipient, purpose) pairs "
              f"= {d['combinations']:,} combinations; {d['decision_rows']:,} decision rows written in {d['seconds']:.1f} s: "
              f"{d['rows_per_s']:,.0f} rows/s, {d['combinations_per_s']:,.0f} combinations/s")
    if not args.skip_ledger:
        lg = bench_ledger(entries)
        print(f"ledger: {lg['entries']:,} entries appended in {lg['append_seconds']:.1f} s; verify {lg['verify_seconds']:.1f} s "
              f"({lg['verify_entries_per_s']:,.0f} entries/s)")
    print(f"wall: {time.perf_counter() - start:.1f} s; peak RSS: {_peak_rss_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
