"""Privacy benchmark: Safe Harbor + pseudonyms on the engine, Presidio on the engine, suppression.

``python -m benchmarks.privacy [--quick] [--rows N] [--sentences N] [--measures N]
[--only suppression] [--cells PATH]``

1. Safe Harbor transform (policy with pseudonym, year, age, age band, ZIP3, generalise) over
   synthetic rows generated on the engine; rows/s for each pseudonym method (udf, native).
2. Presidio scrubbing of synthetic clinical sentences as a vectorised UDF; sentences/s.
3. DDG suppression (with the LP attacker loop) of a 61-LHJ feed with every stratifier
   (age band, sex, race/ethnicity, age band x sex) and a statewide row, suppressed jointly; seconds.
4. The publish path on a 61-LHJ feed: each LHJ's table suppressed on its own
   (``jobs.publish.lhj_feed.suppress_and_finalize``: audit rounds, per-measure fallback, final
   audit), the statewide rows by the cross-feed rule, and the LP attack over the union of all of
   them; seconds per LHJ and in total. ``--cells PATH`` does the same on a real run's cell table
   (a Delta directory or Parquet file with the ``gold``/work ``publish_cells`` columns, e.g. a
   benchmark lakehouse's ``work/publish_cells``), read-only.

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
    from privacy.deid_policy import parse_policy

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

    from privacy.eval.sentences import generate
    from privacy.scrub import analyzer, scrub_column

    analyzer()  # model load is reported separately from throughput
    texts = [r["text"] for r in generate(n, seed=99)]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)], "n int, note string").repartition(2)
    t = time.perf_counter()
    df.select(F.sum(F.length(scrub_column(F.col("note"))))).collect()
    return time.perf_counter() - t


def bench_suppression(measures: int) -> dict[str, float]:
    from phmx.synth.measure_feed import CA_LHJS, make_feed
    from privacy.attack import audit
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


def synthetic_cells(measures: int, seed: int = 7):  # noqa: ANN201
    """61 LHJs + the state like the publish stage's cells: the year with every stratifier, quarter totals."""
    import pandas as pd

    from jobs.publish.lhj_cube import CELL_COLUMNS
    from phmx.synth.measure_feed import CA_LHJS, make_feed

    ids = ("FUH-30", "FUM-30", "FUA-30", "OEV-CH", "TFL-CH", "CIS-10")[:measures]
    quarters = ("2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4")
    q = make_feed(CA_LHJS, measures=ids, periods=quarters, mean_denominator=1.5, seed=seed)
    cols = ["lhj", "measure_id", "period", "stratifier", "stratum", "numerator", "denominator"]
    year = q.groupby(["lhj", "measure_id", "stratifier", "stratum"], as_index=False, sort=False)[
        ["numerator", "denominator"]].sum().assign(period="2025")
    lhj = pd.concat([q.loc[q["stratifier"] == "all", cols], year[cols]], ignore_index=True)
    state = lhj.groupby(cols[1:5], as_index=False, sort=False)[["numerator", "denominator"]].sum().assign(
        lhj="California")
    cells = pd.concat([lhj, state[cols]], ignore_index=True)
    cells["sensitivity"] = cells["measure_id"].map(lambda m: "mh" if m.startswith(("FUH", "FUM")) else
                                                   "sud" if m.startswith("FUA") else "general")
    cells["sensitive"] = cells["sensitivity"] != "general"
    return cells[CELL_COLUMNS]


def read_cells(path: str):  # noqa: ANN201
    """A run's cell table, read-only: a Delta directory (delta-rs) or a Parquet file."""
    import os.path

    import pandas as pd

    from jobs.publish.lhj_cube import CELL_COLUMNS, ordered

    if os.path.isdir(os.path.join(path, "_delta_log")):
        import deltalake

        df = deltalake.DeltaTable(path).to_pandas()
    else:
        df = pd.read_parquet(path)
    return ordered(df[CELL_COLUMNS])


def bench_lhj_feeds(cells) -> dict[str, object]:  # noqa: ANN001
    """Each LHJ suppressed as the publish stage does, the statewide rows, the union attack."""
    import pandas as pd

    from jobs.publish import lhj_feed
    from jobs.publish import lhj_suppression as publish_suppression
    from phmx.recipients import STATE
    from privacy.attack import audit
    from privacy.suppression import SuppressionSpec

    per_lhj: dict[str, float] = {}
    published = {}
    levels: dict[str, str] = {}
    t0 = time.perf_counter()
    for lhj in sorted(set(cells["lhj"]) - {STATE}):
        mine = cells[cells["lhj"] == lhj].reset_index(drop=True)
        t = time.perf_counter()
        published[lhj], method = lhj_feed.suppress_and_finalize(mine, "wilson")
        per_lhj[lhj] = time.perf_counter() - t
        extra = method.split(");", 1)[1].strip() if ");" in method else ""
        if extra:
            levels[lhj] = extra
    lhj_seconds = time.perf_counter() - t0
    state = cells[cells["lhj"] == STATE].reset_index(drop=True)
    t = time.perf_counter()
    rows = lhj_feed.state_table(state, "wilson", published)
    state_seconds = time.perf_counter() - t
    union = pd.concat([*(p[lhj_feed.OUTPUT_COLUMNS] for p in published.values()), rows[lhj_feed.OUTPUT_COLUMNS]],
                      ignore_index=True)
    spec = SuppressionSpec.from_dict({**publish_suppression.privacy_spec(cells), "geography_total": STATE})
    t = time.perf_counter()
    rep = audit(union, spec)
    union_seconds = time.perf_counter() - t
    shown = int(rows["numerator"].notna().sum() + rows["denominator"].notna().sum())
    suppressed = sum(int(p["numerator"].isna().sum() + p["denominator"].isna().sum()) for p in published.values())
    return {"lhjs": len(published), "rows": sum(len(p) for p in published.values()), "seconds": lhj_seconds,
            "slowest": max(per_lhj.items(), key=lambda kv: kv[1]) if per_lhj else ("-", 0.0),
            "median": sorted(per_lhj.values())[len(per_lhj) // 2] if per_lhj else 0.0,
            "suppressed_cells": suppressed, "less_detail": levels, "state_seconds": state_seconds,
            "state_shown": f"{shown}/{2 * len(rows)}", "union_seconds": union_seconds, "union_ok": rep.ok,
            "union_failures": len(rep.failures)}


def _print_lhj_feeds(label: str, r: dict[str, object]) -> None:
    print(f"{label}: {r['lhjs']} LHJ tables ({r['rows']:,} rows, {r['suppressed_cells']:,} suppressed cells) "
          f"in {r['seconds']:.1f} s (median {r['median']:.2f} s, slowest {r['slowest'][0]} {r['slowest'][1]:.2f} s); "
          f"less detail / withheld: {r['less_detail'] or 'none'}")
    print(f"  statewide rows {r['state_seconds']:.2f} s, counts shown {r['state_shown']}; LP attack over the union "
          f"of all feeds + state {r['union_seconds']:.1f} s, {'passed' if r['union_ok'] else 'FAILED'} "
          f"({r['union_failures']} failure(s))")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.privacy", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 rows, 300 sentences, 2 measures")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--sentences", type=int)
    ap.add_argument("--measures", type=int)
    ap.add_argument("--only", choices=["suppression"], help="run only the suppression parts (no engine)")
    ap.add_argument("--cells", help="also time the publish suppression on this run's cell table (read-only)")
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
    print(f"machine: {_machine()}")
    if args.only != "suppression":
        spark = get_spark()
        provider = get_provider()
        sh = bench_safe_harbor(spark, rows, provider)
        for method in ("udf", "native"):
            print(f"safe harbor + pseudonyms ({method}): {rows:,} rows in {sh[method]:.1f} s = "
                  f"{rows / sh[method]:,.0f} rows/s")
        print(f"  (generating the synthetic rows alone: {sh['baseline_generate_only']:.1f} s)")
        pres = bench_presidio(spark, sentences)
        print(f"presidio scrub on the engine: {sentences:,} sentences in {pres:.1f} s = "
              f"{sentences / pres:,.0f} sentences/s")
    _print_lhj_feeds(f"publish suppression, synthetic 61 LHJs x {measures} measure(s) (year strata, quarter totals)",
                     bench_lhj_feeds(synthetic_cells(measures)))
    if args.cells:
        _print_lhj_feeds(f"publish suppression, {args.cells}", bench_lhj_feeds(read_cells(args.cells)))
    sup = bench_suppression(measures)
    print(f"suppression: 61 LHJs + statewide x {measures} measure(s) x all stratifiers = {sup['rows']:,} rows "
          f"in {sup['seconds']:.1f} s ({sup['primary']} primary, {sup['complementary']} complementary); "
          f"attacker audit {sup['audit_seconds']:.1f} s, {'passed' if sup['audit_ok'] else 'FAILED'}")
    print(f"wall time {time.perf_counter() - wall:.1f} s, peak RSS {_peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
