"""What encryption at rest costs: AES-256-GCM of person identifiers on the engine, and the stages.

    python -m benchmarks.encryption --quick                 # 20,000 rows, under a minute
    python -m benchmarks.encryption --rows 100000 500000    # encrypt + decrypt throughput
    python -m benchmarks.encryption --stages /path/to/home  # conform + identity on a copy of a
                                                            # benchmark home's bronze (e.g. the
                                                            # 100k-member run of benchmarks.pipeline)

Rows mode: N synthetic silver.person-shaped rows (made-up values) go through
``encrypt_for_write`` (fingerprint + 9 encrypted columns, written to Delta), a rewrite of the same
rows with ciphertext reuse (the steady state of a conform re-run), and ``decrypt_for_read`` of the
7 columns the identity stage decrypts; rows/s for each, against a plaintext write and read of
the same rows.

Stages mode copies only ``lakehouse/bronze`` and ``keys`` of the given home into a fresh home
under ``--out`` and times conform (from empty silver), conform again (same bronze: the steady
state) and a full identity run. The script imports only ``phmx``/``jobs``, so the same file
measures the code before encryption at rest when that release is first on PYTHONPATH.
Prints rows/s, wall time, peak RSS and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> str:
    import psutil

    return (f"{platform.machine()} {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"Python {platform.python_version()}, engine {os.environ.get('PHMX_ENGINE', 'sail')}")


def _person_rows(n: int):  # noqa: ANN202 - pandas DataFrame
    """silver.person-shaped rows with made-up values (no real names: syllables and digits)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    syl = np.array(["ka", "lo", "mi", "ren", "sa", "to", "vel", "qui", "dor", "an", "bex", "zu"])

    def names(k: int) -> list[str]:
        parts = rng.integers(0, len(syl), size=(n, k))
        return ["".join(syl[p]).capitalize() for p in parts]

    ids = np.arange(n)
    return pd.DataFrame({
        "source": np.where(ids % 3 == 0, "mcp_bluecoast", "mcp_sierra"),
        "source_person_id": [f"P{i:09d}" for i in ids],
        "cin": [f"9{i:07d}{chr(65 + i % 26)}" for i in rng.integers(0, 10**7, n)],
        "ssn": [f"{a:03d}{b:02d}{c:04d}" for a, b, c in zip(rng.integers(1, 665, n), rng.integers(1, 99, n),
                                                           rng.integers(1, 9999, n), strict=True)],
        "county_client_number": [f"C{i:08d}" for i in ids],
        "given_name": names(2), "middle_name": names(1), "family_name": names(3),
        "address_line": [f"{i % 9000 + 10} {s} St" for i, s in zip(ids, names(2), strict=True)],
        "phone": [f"510{i:07d}" for i in rng.integers(2_000_000, 9_999_999, n)],
        "email": [f"u{i}@example.org" for i in ids],
        "zip": [f"9{i:04d}" for i in rng.integers(4000, 6200, n)],
    })


def run_rows(n: int) -> dict:
    from phmx import lakehouse, tables
    from phmx.engine import get_spark
    from privacy.crypto import decrypt_for_read, encrypt_for_write
    from privacy.keys import get_provider

    spark = get_spark()
    provider = get_provider()
    table = tables.PERSON
    df = lakehouse.conform_to(spark.createDataFrame(_person_rows(n)), table)
    out: dict = {"rows": n}

    def timed(name: str, fn) -> None:  # noqa: ANN001
        t = time.perf_counter()
        fn()
        s = time.perf_counter() - t
        out[name] = {"seconds": round(s, 2), "rows_per_s": round(n / s) if s > 0 else None}

    timed("plaintext_write", lambda: lakehouse.overwrite(df, "work.bench_plain"))
    timed("encrypt_write", lambda: lakehouse.overwrite(lakehouse.conform_to(
        encrypt_for_write(df, table.fqn, provider, keys=table.keys), table), table, schema=True))
    stored = lakehouse.read(spark, table)

    def rewrite() -> None:  # the same rows again: every row keeps its ciphertexts
        again = encrypt_for_write(df, table.fqn, provider, keys=table.keys, previous=stored)
        lakehouse.overwrite(lakehouse.conform_to(again, table), "work.bench_rewrite")

    timed("reencrypt_unchanged_write", rewrite)
    cols = ["source", "source_person_id", "cin", "ssn", "given_name", "middle_name", "family_name",
            "address_line", "phone"]
    timed("plaintext_read", lambda: lakehouse.read(spark, "work.bench_plain").select(*cols).toPandas())
    timed("decrypt_read", lambda: decrypt_for_read(lakehouse.read(spark, table).select(*cols), table.fqn,
                                                   provider).toPandas())
    return out


def _stage(name: str, run_id: str) -> dict:
    from jobs.entry import run_stage

    t, cpu = time.perf_counter(), _cpu_seconds()
    result = run_stage(name, period="all", run_id=run_id)
    return {"seconds": round(time.perf_counter() - t, 2), "cpu_seconds": round(_cpu_seconds() - cpu, 2),
            "counts": {k: v for k, v in result.counts.items() if isinstance(v, int | float)}}


def _cpu_seconds() -> float:
    """CPU time of this process (the embedded engine runs in it) and its finished children: a
    steadier cost figure than wall time on a machine shared with other work."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_stages(source_home: Path, out: Path, *, keep: bool = False, identity_only: bool = False) -> dict:
    from phmx import lakehouse
    from phmx.engine import get_spark

    home = out / "stages_home"
    if not identity_only:
        shutil.rmtree(home, ignore_errors=True)
        (home / "lakehouse").mkdir(parents=True)
        shutil.copytree(source_home / "lakehouse" / "bronze", home / "lakehouse" / "bronze")
        shutil.copytree(source_home / "keys", home / "keys")
    os.environ["PHMX_HOME"] = str(home)
    spark = get_spark()
    bronze = sum(lakehouse.read(spark, f"bronze.{t}").count() for t in
                 ("enrollment", "claims", "pharmacy", "mh_csi", "sud_caloms", "dental_claims", "immunizations")
                 if lakehouse.exists(f"bronze.{t}"))
    os.environ["PHMX_IDENTITY_MODE"] = "full"
    res: dict = {"bronze_rows": bronze}
    if not identity_only:
        res["conform"] = _stage("conform", "enc-1")
        res["conform_again"] = _stage("conform", "enc-2")
    persons = lakehouse.read(spark, "silver.person").count()
    res["identity"] = _stage("identity", "enc-3")
    res["person_rows"] = persons
    for k, rows in (("conform", bronze), ("conform_again", bronze), ("identity", persons)):
        if k in res:
            res[k]["rows_per_s"] = round(rows / res[k]["seconds"])
    encrypted = "pii_fingerprint" in lakehouse.read(spark, "silver.person").columns
    res["encryption_at_rest"] = encrypted
    if not keep:
        shutil.rmtree(home, ignore_errors=True)
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.encryption")
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, under a minute")
    parser.add_argument("--stages", metavar="HOME", help="time conform + identity on a copy of HOME's bronze")
    parser.add_argument("--keep", action="store_true", help="keep the stages home under --out")
    parser.add_argument("--identity-only", action="store_true",
                        help="with --stages: only identity, on the home a --keep run left")
    parser.add_argument("--out", default="var/bench")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    t0 = time.perf_counter()
    if args.stages:
        r = run_stages(Path(args.stages).resolve(), out, keep=args.keep, identity_only=args.identity_only)
        print(f"encryption at rest in this code: {r['encryption_at_rest']}")
        for k in [k for k in ("conform", "conform_again", "identity") if k in r]:
            rows = r["person_rows"] if k == "identity" else r["bronze_rows"]
            print(f"  {k:<14} {r[k]['seconds']:>7.1f} s  (CPU {r[k]['cpu_seconds']:>6.1f} s)  {rows:>10,} rows in  "
                  f"{r[k]['rows_per_s']:>9,} rows/s")
        results: list = [r]
        name = "encryption_stages.json"
    else:
        if "PHMX_HOME" not in os.environ:
            home = out / "encryption_home"
            shutil.rmtree(home, ignore_errors=True)
            os.environ["PHMX_HOME"] = str(home)
        results = []
        for n in [20_000] if args.quick else args.rows:
            r = run_rows(n)
            results.append(r)
            print(f"\n== {n:,} person rows (9 encrypted columns; decrypt: the 7 identity reads)")
            for k, v in r.items():
                if isinstance(v, dict):
                    print(f"  {k:<26} {v['seconds']:>7.2f} s  {v['rows_per_s']:>10,} rows/s")
        name = "encryption.json"
    print(f"\nwall {time.perf_counter() - t0:.1f} s, peak RSS {_peak_rss_mb():.0f} MB")
    (out / name).write_text(json.dumps({"machine": machine(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
