"""Privacy benchmark: Safe Harbor + pseudonyms on the engine, Presidio on the engine, suppression.

``python -m benchmarks.privacy [--quick] [--rows N] [--sentences N] [--measures N]``

1. Safe Harbor transform (policy with pseudonym, year, age, age band, ZIP3, generalise) over
   synthetic rows generated on the engine; rows/s for each pseudonym method (udf, native).
2. Presidio scrubbing of synthetic clinical sentences as a vectorised UDF; sentences/s.
3. DDG suppression (with the LP attacker loop) of a 61-LHJ feed with every stratifier
   (age band, sex, race/ethnicity, age band x sex) and a statewide row; seconds.

Full size: 10,000,000 rows; --quick: 100,000 rows, fewer sentences and measures (< 1 minute).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time


def _machine() -> str:
    import psutil

    return (f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
            f"{platform.system()} {platform.machine()}, Python {platform.python_version()}")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _synthetic_rows(spark, n: int):  # noqa: ANN001, ANN202
    from pyspark.sql import functions as F

    idx = F.col("id")
    return spark.range(n).select(
        F.concat(F.lit("M"), F.lpad(idx.cast("string"), 9, "0")).alias("member_id"),
        F.date_add(F.lit("1925-01-01").cast("date"), (F.hash(idx) % 35000).cast("int")).alias("birth_date"),
        F.lpad(((F.abs(F.hash(idx, F.lit(1))) % 70000) + 90000).cast("string"), 5, "0").alias("zip"),
        F.date_add(F.lit("2023-01-01").cast("date"), (F.abs(F.hash(idx, F.lit(2))) % 700).cast("int")).alias("service_date"),
        F.when(idx % 2 == 0, "F").otherwise("M").alias("sex"),
        F.concat(F.lit("9"), F.lpad((idx % 10_000_000).cast("string"), 7, "0"), F.lit("A")).alias("cin"),
        F.concat(F.lit("E11."), (idx % 10).cast("string")).alias("diagnosis_code"),
        F.lit("ED").alias("setting"),
    )


def _policy():  # noqa: ANN202
    from privacy.policy import parse_policy

    return parse_policy({
        "output": "bench", "version": 1, "zip3_list": "census2010",
        "age": {"birth_date": "birth_date", "as_of": "service_date"},
        "fields": {
            "person": {"action": "pseudonym", "source": "member_id"},
            "birth_year": {"action": "year", "source": "birth_date"},
            "age": {"action": "age"},
            "age_group": {"action": "age_band", "bands": ["0-17", "18-64", "65+"]},
            "zip3": {"action": "zip3", "source": "zip"},
            "service_year": {"action": "year", "source": "service_date"},
            "sex": "keep", "setting": "keep",
            "dx": {"action": "generalise", "source": "diagnosis_code", "truncate": 3},
            "cin": "drop",
        },
    })


def bench_safe_harbor(spark, n: int, provider) -> dict[str, float]:  # noqa: ANN001
    from pyspark.sql import functions as F

    from privacy.safe_harbor import apply_policy

    out = {}
    src = _synthetic_rows(spark, n)
    policy = _policy()
    for method in ("udf", "native"):
        df = apply_policy(src, policy, recipient="bench-recipient", provider=provider, today="2026-01-01",
                          pseudonym_method=method)
        t = time.perf_counter()
        df.select(F.sum(F.hash(*df.columns))).collect()
        out[method] = time.perf_counter() - t
    t = time.perf_counter()
    src.select(F.sum(F.hash(*src.columns))).collect()
    out["baseline_generate_only"] = time.perf_counter() - t
    return out


def bench_presidio(spark, n: int) -> float:  # noqa: ANN001
    from pyspark.sql import functions as F

    from privacy.eval.generator import generate
    from privacy.scrub import analyzer, scrub_column

    analyzer()  # model load is reported separately from throughput
    texts = [r["text"] for r in generate(n, seed=99)]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "n int, note string").repartition(2)
    t = time.perf_counter()
    df.select(F.sum(F.length(scrub_column(F.col("note"))))).collect()
    return time.perf_counter() - t


def bench_suppression(measures: int) -> dict[str, float]:
    from privacy.attack import audit
    from privacy.feedgen import CA_LHJS, make_feed
    from privacy.suppression import SuppressionSpec, suppress

    ids = ("FUH", "FUM", "FUA", "OEV", "TFL", "CIS") [:measures]
    feed = make_feed(CA_LHJS, measures=ids, mean_denominator=4, seed=7, geography_total="California")
    spec = SuppressionSpec(geography_total="California")
    t = time.perf_counter()
    out = suppress(feed, spec)
    took = time.perf_counter() - t
    t = time.perf_counter()
    rep = audit(out, spec)
    audit_s = time.perf_counter() - t
    s = out.attrs["privacy.suppression"]
    return {"rows": len(feed), "seconds": took, "audit_seconds": audit_s, "primary": s["primary"],
            "complementary": s["complementary"], "audit_ok": rep.ok}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.privacy", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 rows, 300 sentences, 2 measures")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--sentences", type=int)
    ap.add_argument("--measures", type=int)
    args = ap.parse_args(argv)
    rows = args.rows or (100_000 if args.quick else 10_000_000)
    sentences = args.sentences or (300 if args.quick else 3000)
    measures = args.measures or (2 if args.quick else 6)

    home = tempfile.mkdtemp(prefix="phmx-bench-privacy-")
    os.environ.setdefault("PHMX_HOME", home)
    os.environ.setdefault("PHMX_LOG_LEVEL", "WARNING")
    from phmx.engine import get_spark
    from privacy.keys import get_provider

    wall = time.perf_counter()
    spark = get_spark()
    provider = get_provider()
    print(f"machine: {_machine()}")
    sh = bench_safe_harbor(spark, rows, provider)
    for method in ("udf", "native"):
        print(f"safe harbor + pseudonyms ({method}): {rows:,} rows in {sh[method]:.1f} s = "
              f"{rows / sh[method]:,.0f} rows/s")
    print(f"  (generating the synthetic rows alone: {sh['baseline_generate_only']:.1f} s)")
    pres = bench_presidio(spark, sentences)
    print(f"presidio scrub on the engine: {sentences:,} sentences in {pres:.1f} s = {sentences / pres:,.0f} sentences/s")
    sup = bench_suppression(measures)
    print(f"suppression: 61 LHJs + statewide x {measures} measure(s) x all stratifiers = {sup['rows']:,} rows "
          f"in {sup['seconds']:.1f} s ({sup['primary']} primary, {sup['complementary']} complementary); "
          f"attacker audit {sup['audit_seconds']:.1f} s, {'passed' if sup['audit_ok'] else 'FAILED'}")
    print(f"wall time {time.perf_counter() - wall:.1f} s, peak RSS {_peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
