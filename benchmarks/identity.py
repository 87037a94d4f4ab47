"""Identity benchmark: linkage quality on synthetic ground truth, Splink side by side, and scale.

    .venv/bin/python -m benchmarks.identity [--quick] [--members 10000 100000] [--no-splink]
                                            [--records 1000000] [--incremental 0.02] [--rules] [--work DIR]

``make bench`` runs it with no arguments: populations of 10,000 and 100,000 members (phmx and
Splink), the review queue figure at 100,000 members (``review queue:`` line; target at most
0.2% of records), then 1,000,000 records linked in full and, in another process, 98% of them
linked and the other 2% added by an incremental run (``scale:`` lines). ``--quick``: 1,000
members and 20,000 records.

For each population size: ``phmx synth`` files (all four kinds of source), silver.person-shaped
records built from them (benchmarks/identity_synth.py), then, each in its own process on the
same records, the phmx identity stage (full run) and Splink 5 with DuckDB
(benchmarks/identity_splink.py; two conventional models: all fields, and without the
household-shared phone and address; each timed on its own, peak RSS is the Splink process's). Reported per tool: pairwise precision / recall / F1 against
``ground_truth/person_map.csv``, cluster-level figures (B-cubed F1, share of people whose
records form exactly one cluster, clusters that merge two people, twins and lookalikes
merged), wall time, records/s and peak RSS of the process. ``--records N`` (``--scale N``)
deduplicates N source records with phmx alone (a 3-month window of a population of N / 1.85
people) and reports wall time, CPU seconds, records/s, peak memory and precision / recall
against the generator's truth; with ``--incremental SHARE`` a second process links all but
SHARE of them in full and then adds the rest in an incremental run, and prints both wall times;
with ``--base-home DIR`` the hub of that base full run is kept in DIR and, when DIR already holds
one made from the same records and share, copied in instead of running the base again (trials of
a change to the incremental run then start from the same index and skip the base's minutes);
with ``--rules`` it first prints, per blocking rule, the candidate pairs it makes, the true pairs
among them and those no other rule finds (what each rule costs and what it adds to recall).
The machine (cores, RAM, load average) is printed first and the load again with each figure.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


# ---- metrics ---------------------------------------------------------------------------------
def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def metrics(assign: pd.DataFrame, truth: pd.DataFrame, people: pd.DataFrame | None = None) -> dict[str, Any]:
    """Quality of a clustering. ``assign``: uid, cluster; ``truth``: uid, person_id."""
    m = assign.merge(truth, on="uid", how="inner")
    tp = _pairs(m.groupby(["cluster", "person_id"]).size())
    pred = _pairs(m.groupby("cluster").size())
    true = _pairs(m.groupby("person_id").size())
    p = tp / pred if pred else 1.0
    r = tp / true if true else 1.0
    # B-cubed: per record, the share of its cluster that is its person, and the reverse.
    cp = m.groupby(["cluster", "person_id"]).size().rename("n_cp").reset_index()
    m2 = m.merge(cp, on=["cluster", "person_id"])
    m2["n_c"] = m2.groupby("cluster")["uid"].transform("size")
    m2["n_p"] = m2.groupby("person_id")["uid"].transform("size")
    b3p = float((m2["n_cp"] / m2["n_c"]).mean())
    b3r = float((m2["n_cp"] / m2["n_p"]).mean())
    per_person = m.groupby("person_id")["cluster"].nunique()
    per_cluster = m.groupby("cluster")["person_id"].nunique()
    exact = m.groupby("person_id").agg(nc=("cluster", "nunique"), first=("cluster", "first"))
    csize = m.groupby("cluster").size()
    psize = m.groupby("person_id").size()
    exact_ok = (exact["nc"] == 1) & (exact["first"].map(csize).to_numpy() == psize.reindex(exact.index).to_numpy())
    out = {
        "records": len(m), "people": int(psize.size), "clusters": int(csize.size),
        "pair_precision": round(p, 5), "pair_recall": round(r, 5),
        "pair_f1": round(2 * p * r / (p + r) if p + r else 0.0, 5),
        "b3_f1": round(2 * b3p * b3r / (b3p + b3r), 5),
        "people_exact": round(float(exact_ok.mean()), 5),
        "people_split": int((per_person > 1).sum()),
        "clusters_merging_people": int((per_cluster > 1).sum()),
    }
    if people is not None:
        out.update(_hard_case_merges(m, people))
    return out


def _hard_case_merges(m: pd.DataFrame, people: pd.DataFrame) -> dict[str, int]:
    """Twins and lookalikes (planted by the generator) wrongly put in one cluster."""
    clusters_of = m.groupby("person_id")["cluster"].apply(set)
    out = {}
    for col, name in (("twin_of", "twins_merged"), ("lookalike_of", "lookalikes_merged")):
        if col not in people.columns:
            continue
        pairs = people.loc[people[col].notna() & (people[col] != ""), ["person_id", col]]
        n = 0
        for a, b in pairs.itertuples(index=False):
            if a in clusters_of.index and b in clusters_of.index and clusters_of[a] & clusters_of[b]:
                n += 1
        out[name] = n
    return out


# ---- workers (one process per tool, so wall time and peak RSS are each tool's own) -----------
#: The file in a saved base home that says what it was made from (:func:`_base_marker`).
BASE_MARKER = "phmx-bench-base.json"


def _base_marker(input_path: str, holdback: float) -> dict[str, Any]:
    """What a saved base home was made from: the input file (path, size, mtime) and the share held back."""
    st = Path(input_path).resolve().stat()
    return {"input": str(Path(input_path).resolve()), "size": st.st_size, "mtime": int(st.st_mtime),
            "holdback": holdback}


def _commit() -> str:
    """The repository's commit (and whether files differ from it), recorded with a saved base home."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True, check=False)
    return head.stdout.strip() + (" (modified)" if dirty.stdout.strip() else "")


def _worker_phmx(input_path: str, out_path: str, holdback: float = 0.0, base_home: str | None = None) -> dict[str, Any]:
    """The stage (full run) on the records; with ``holdback`` > 0, first on all but that share
    of them (chosen by a hash of the record key), then an incremental run after adding them
    back: a new month's records arriving at an existing index.

    ``base_home``: a directory keeping the hub as the base full run left it. Empty or absent, the
    base run is made and its hub copied there; holding a hub made from the same input and share,
    that hub is copied in instead of running the base again (at 1,000,000 records the base run
    takes about 4 minutes, the incremental run about 1), so incremental trials of one change
    start from the same index. The saved hub records the commit that made it: a change to the
    full run or to what it writes needs a new one."""
    home = tempfile.mkdtemp(prefix="phmx-bench-identity-")
    os.environ["PHMX_HOME"] = home
    os.environ.setdefault("PHMX_LOG_LEVEL", "WARNING")
    os.environ["PHMX_IDENTITY_MODE"] = "full"
    from pyspark.sql import functions as F

    from jobs.identity import run
    from phmx import lakehouse, tables
    from phmx.context import RunContext
    from phmx.engine import get_spark
    from phmx.synth import identity_records

    spark = get_spark()
    # The engine reads the file itself (a million rows are too big for one client message).
    person = spark.read.parquet(str(Path(input_path).resolve())).select(*identity_records.PERSON_COLUMNS)
    extra: dict[str, Any] = {}
    marker = Path(base_home) / BASE_MARKER if base_home else None
    if holdback > 0 and marker is not None and marker.exists():
        saved, made_from = json.loads(marker.read_text()), _base_marker(input_path, holdback)
        if {k: saved.get(k) for k in made_from} != made_from:
            raise SystemExit(f"{base_home} holds a base hub of another input or share: {saved}")
        shutil.copytree(base_home, home, dirs_exist_ok=True, ignore=shutil.ignore_patterns(BASE_MARKER))
        extra.update({k: saved.get(k) for k in saved if k.startswith("base_")})
        extra["base_reused_from_commit"] = saved.get("commit")
        os.environ["PHMX_IDENTITY_MODE"] = "incremental"
    elif holdback > 0:
        bucket = F.pmod(F.xxhash64("source", "source_person_id"), F.lit(10_000))
        base = person.where(bucket >= F.lit(int(holdback * 10_000)))
        identity_records.write_person(spark, base)
        t0 = time.perf_counter()
        cpu0 = _cpu_seconds()
        first = run(spark, RunContext.new(run_id="bench-base"))
        extra["base_seconds"] = round(time.perf_counter() - t0, 2)
        extra["base_cpu_seconds"] = round(_cpu_seconds() - cpu0, 1)
        extra["base_records"] = first.counts.get("records")
        extra["base_candidate_pairs"] = first.counts.get("candidate_pairs")
        extra["base_phases"] = first.details.get("phase_seconds")
        extra["base_steps"] = first.details.get("step_seconds")
        extra["base_step_cpu"] = first.details.get("step_cpu_seconds")
        os.environ["PHMX_IDENTITY_MODE"] = "incremental"
        if marker is not None:
            shutil.rmtree(base_home, ignore_errors=True)  # type: ignore[arg-type]
            shutil.copytree(home, base_home)  # type: ignore[arg-type]
            marker.write_text(json.dumps({**_base_marker(input_path, holdback), "commit": _commit(), **extra}))
    identity_records.write_person(spark, person)  # encrypted, as conform writes it (identity decrypts)
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    result = run(spark, RunContext.new(run_id="bench"))
    seconds = time.perf_counter() - t0
    extra["cpu_seconds"] = round(_cpu_seconds() - cpu0, 1)
    if holdback > 0:
        extra.update({"incremental_seconds": round(seconds, 2), "mode": result.counts.get("mode"),
                      "new_records": result.counts.get("new_or_changed_records")})
    xw = lakehouse.read(spark, tables.MEMBER_XWALK).select("source", "source_person_id", "member_id").toPandas()
    xw["uid"] = xw["source"] + "|" + xw["source_person_id"]
    xw.rename(columns={"member_id": "cluster"})[["uid", "cluster"]].to_parquet(out_path)
    # The open review items (record keys, reason, weight), so the caller can say what fills the
    # queue and how many items are one person (the worker has no ground truth).
    queue = lakehouse.read(spark, tables.REVIEW_QUEUE).where(F.col("status") == "open") \
        .select(F.concat_ws("|", "source_l", "source_person_id_l").alias("uid_l"),
                F.concat_ws("|", "source_r", "source_person_id_r").alias("uid_r"), "reason", "match_weight").toPandas()
    queue.to_parquet(_queue_path(out_path))
    shutil.rmtree(home, ignore_errors=True)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": round(seconds, 2), "phases": result.details.get("phase_seconds"),
            "steps": result.details.get("step_seconds"), "step_cpu": result.details.get("step_cpu_seconds"),
            "counts": result.counts, "maxrss_mb": _maxrss_mb(),
            # The embedded engine runs in this process, so this is the engine's CPU time too.
            "cpu_seconds_process": round(cpu.ru_utime + cpu.ru_stime, 1), **extra}



def _queue_path(out_path: str | Path) -> Path:
    """Where the phmx worker leaves its open review items, next to its clusters."""
    p = Path(out_path)
    return p.with_name(p.stem + "-review.parquet")


def queue_by_reason(queue: pd.DataFrame, truth: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Open review items per reason (``probability_band``, ``edge_guard:<name>``,
    ``cluster_guard:<conflict>``): how many, and how many are one person by the ground truth."""
    person = dict(zip(truth["uid"], truth["person_id"], strict=True))
    same = [person.get(a) is not None and person.get(a) == person.get(b)
            for a, b in zip(queue["uid_l"], queue["uid_r"], strict=True)]
    q = queue.assign(one_person=same)
    return {str(r): {"items": len(g), "one_person": int(g["one_person"].sum())}
            for r, g in q.groupby("reason")}


def _worker_rules(input_path: str, truth_path: str) -> dict[str, Any]:
    """Per blocking rule of the stage's settings: the candidate pairs it makes, the true pairs
    among them, and the pairs (and true pairs) no other rule makes. A rule's cost is its pairs;
    what it adds to recall is the true pairs only it finds."""
    home = tempfile.mkdtemp(prefix="phmx-bench-identity-rules-")
    os.environ["PHMX_HOME"] = home
    os.environ.setdefault("PHMX_LOG_LEVEL", "WARNING")
    from jobs.identity import blocking, linkage, stage
    from phmx import lakehouse
    from phmx.context import RunContext
    from phmx.engine import get_spark
    from phmx.synth import identity_records

    spark = get_spark()
    identity_records.write_person(spark, spark.read.parquet(str(Path(input_path).resolve()))
                                  .select(*identity_records.PERSON_COLUMNS))
    settings = stage.stage_settings()
    scratch = lakehouse.Scratch(spark, "identity")
    try:
        std = linkage.prepare(stage.read_person(spark, RunContext.new(run_id="rules"), settings), scratch, settings)
        pairs, _ = blocking.candidate_pairs(std, settings)
        pp = scratch.put(pairs, "pairs").select("rid_l", "rid_r", "rules").toPandas()
        ids = std.select("rid", "source", "source_person_id").toPandas()
    finally:
        scratch.drop()
        shutil.rmtree(home, ignore_errors=True)
    truth = pd.read_parquet(truth_path)
    person_of = ids.merge(truth, on=["source", "source_person_id"], how="left").set_index("rid")["person_id"]
    true = (pp["rid_l"].map(person_of) == pp["rid_r"].map(person_of)).to_numpy()
    sizes = person_of.value_counts()
    rules_mask = pp["rules"].to_numpy(dtype="int64")
    rows = []
    for i, rule in enumerate(settings.rules):
        has = (rules_mask & (1 << i)) != 0
        only = rules_mask == (1 << i)
        rows.append({"rule": rule.name, "pairs": int(has.sum()), "true_pairs": int((has & true).sum()),
                     "only_pairs": int(only.sum()), "only_true_pairs": int((only & true).sum())})
    return {"records": len(ids), "candidate_pairs": len(pp), "true_pairs": _pairs(sizes),
            "true_candidates": int(true.sum()), "rules": rows}


SPLINK_VARIANTS = ("standard", "no_household")


def _worker_splink(input_path: str, out_path: str) -> dict[str, Any]:
    from benchmarks import identity_splink

    person = pd.read_parquet(input_path)
    frames, seconds = [], {}
    for variant in SPLINK_VARIANTS:
        res = identity_splink.run(person, variant=variant)
        seconds[variant] = res["seconds"]
        for th, cl in res["clusters"].items():
            frames.append(cl.rename(columns={"unique_id": "uid", "cluster_id": "cluster"})
                          .assign(threshold=th, variant=variant))
    pd.concat(frames).astype({"cluster": "string"}).to_parquet(out_path)
    return {"seconds": seconds, "maxrss_mb": _maxrss_mb()}


def _cpu_seconds() -> float:
    """User + system CPU of this process (the embedded engine's threads included)."""
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    return cpu.ru_utime + cpu.ru_stime


def _maxrss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _spawn(tool: str, input_path: Path, out_path: Path, holdback: float = 0.0,
           base_home: str | None = None) -> dict[str, Any]:
    """Run one worker (phmx, splink, rules: ``out_path`` is then the truth file it reads) in its
    own process; its result is the last line it prints."""
    cmd = [sys.executable, "-m", "benchmarks.identity", "--worker", tool, "--input", str(input_path),
           "--out", str(out_path), *(["--holdback", str(holdback)] if holdback else []),
           *(["--base-home", base_home] if base_home and holdback else [])]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} worker failed:\n{proc.stderr[-4000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info["process_wall_seconds"] = round(wall, 2)
    return info


# ---- orchestration ---------------------------------------------------------------------------
def machine() -> str:
    import platform

    import psutil

    return (f"{platform.node()}: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
            f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}")


def _people(root: Path) -> pd.DataFrame | None:
    f = root / "ground_truth" / "people.csv"
    return pd.read_csv(f, dtype=str, usecols=["person_id", "twin_of", "lookalike_of"]) if f.exists() else None


def compare_at(members: int, work: Path, *, splink: bool, months: int = 12) -> list[dict[str, Any]]:
    """Quality and time of phmx (and Splink) on one synthetic population."""
    from benchmarks.identity_synth import ensure_synth, load_person

    root = ensure_synth(work / f"synth-{members}", members, months=months)
    person, truth = load_person(root)
    inp = work / f"person-{members}.parquet"
    person.to_parquet(inp)
    truth = truth.assign(uid=truth["source"] + "|" + truth["source_person_id"])[["uid", "person_id"]]
    people = _people(root)
    rows = []
    info = _spawn("phmx", inp, work / "phmx-clusters.parquet")
    q = metrics(pd.read_parquet(work / "phmx-clusters.parquet"), truth, people)
    rows.append({"members": members, "tool": "phmx", "threshold": "settings", **q,
                 "seconds": info["seconds"], "records_per_s": round(len(person) / info["seconds"]),
                 "peak_rss_mb": info["maxrss_mb"], "phases": info.get("phases"),
                 "review_items": info.get("counts", {}).get("review_items"),
                 "review_share": round(info.get("counts", {}).get("review_items", 0) / max(len(person), 1), 5)})
    queue_file = _queue_path(work / "phmx-clusters.parquet")
    if queue_file.exists():
        rows[-1]["review_by_reason"] = queue_by_reason(pd.read_parquet(queue_file), truth)
    print(review_line(rows[-1]), flush=True)
    if rows[-1].get("review_by_reason"):
        print("review queue by reason (items / one person): " + ", ".join(
            f"{r} {v['items']}/{v['one_person']}" for r, v in rows[-1]["review_by_reason"].items()), flush=True)
    if splink:
        info = _spawn("splink", inp, work / "splink-clusters.parquet")
        cl = pd.read_parquet(work / "splink-clusters.parquet")
        for (variant, th), grp in cl.groupby(["variant", "threshold"]):
            q = metrics(grp[["uid", "cluster"]], truth, people)
            sec = info["seconds"][variant]
            rows.append({"members": members, "tool": f"splink:{variant}", "threshold": th, **q,
                         "seconds": sec, "records_per_s": round(len(person) / sec),
                         "peak_rss_mb": info["maxrss_mb"]})
    return rows


#: The issue's target for the open review queue: at most this share of records.
REVIEW_SHARE_TARGET = 0.002


def review_line(row: dict[str, Any]) -> str:
    """The review queue figure, with the quality it was reached at."""
    share = row.get("review_share") or 0.0
    verdict = "met" if share <= REVIEW_SHARE_TARGET else "NOT met"
    return (f"review queue: {row.get('review_items')} open items for {row['records']:,} records at "
            f"{row['members']:,} members = {share:.3%} of records (target <= {REVIEW_SHARE_TARGET:.1%}: {verdict}); "
            f"pairwise precision {row['pair_precision']}, recall {row['pair_recall']}, F1 {row['pair_f1']}; "
            f"load {os.getloadavg()[0]:.1f}")


def scale(records: int, work: Path, holdback: float = 0.0, *, rules: bool = False,
          base_home: str | None = None) -> dict[str, Any]:
    """Deduplicate about ``records`` source records with phmx (full run): wall, CPU, records/s,
    peak memory, quality. With ``holdback``, another process links all but that share in full
    and adds them in an incremental run; its wall times are reported next to the full run's.
    With ``rules``, first the candidate pairs and true pairs of each blocking rule."""
    from benchmarks.identity_synth import ensure_synth, load_person

    ratio = 1.85  # source records per synthetic person over a 3-month window (measured)
    members = math.ceil(records / ratio)
    root = ensure_synth(work / f"synth-{members}-3m", members, months=3, workers=2)
    person, truth = load_person(root)
    person = person.sort_values(["source", "source_person_id"]).head(records)
    inp = work / f"person-scale-{records}.parquet"
    person.to_parquet(inp)
    del person
    if rules:
        truth_file = work / f"truth-scale-{records}.parquet"
        truth[["source", "source_person_id", "person_id"]].to_parquet(truth_file)
        print_rules(_spawn("rules", inp, truth_file))
    truth = truth.assign(uid=truth["source"] + "|" + truth["source_person_id"])[["uid", "person_id"]]
    people = _people(root)
    load = os.getloadavg()[0]
    info = _spawn("phmx", inp, work / "phmx-scale-clusters.parquet")
    q = metrics(pd.read_parquet(work / "phmx-scale-clusters.parquet"), truth, people)
    n = info["counts"].get("records") or records
    out: dict[str, Any] = {
        "records": n, "members_generated": members, "seconds": info["seconds"], "cpu_seconds": info.get("cpu_seconds"),
        "records_per_s": round(n / info["seconds"]), "peak_rss_mb": info["maxrss_mb"],
        "load_at_start": round(load, 1), "load_at_end": round(os.getloadavg()[0], 1), "phases": info.get("phases"),
        "steps": info.get("steps"), "step_cpu": info.get("step_cpu"),
        **{k: q[k] for k in ("pair_precision", "pair_recall", "pair_f1", "twins_merged", "lookalikes_merged") if k in q}}
    print(f"scale: {n:,} records linked in full in {out['seconds']} s (CPU {out['cpu_seconds']} s, "
          f"{out['records_per_s']:,} records/s, peak RSS {out['peak_rss_mb']} MB, load {out['load_at_start']} -> "
          f"{out['load_at_end']}); precision {out['pair_precision']}, recall {out['pair_recall']}; "
          f"phases {out['phases']}; steps {out['steps']}; CPU seconds per step {out['step_cpu']}", flush=True)
    if holdback > 0:
        load = os.getloadavg()[0]
        inc = _spawn("phmx", inp, work / "phmx-scale-inc-clusters.parquet", holdback, base_home)
        qi = metrics(pd.read_parquet(work / "phmx-scale-inc-clusters.parquet"), truth, people)
        out["incremental"] = {
            "share": holdback, "base_records": inc.get("base_records"), "base_seconds": inc.get("base_seconds"),
            "new_records": inc.get("new_records"), "mode": inc.get("mode"),
            "incremental_seconds": inc.get("incremental_seconds"), "incremental_cpu_seconds": inc.get("cpu_seconds"),
            "phases": inc.get("phases"), "steps": inc.get("steps"), "step_cpu": inc.get("step_cpu"),
            "base_steps": inc.get("base_steps"), "base_step_cpu": inc.get("base_step_cpu"), "load_at_start": round(load, 1), "load_at_end": round(os.getloadavg()[0], 1),
            **{k: qi[k] for k in ("pair_precision", "pair_recall", "pair_f1")}}
        i = out["incremental"]
        print(f"scale, incremental: full run on {i['base_records']:,} records {i['base_seconds']} s; then "
              f"{i['new_records']:,} new records ({holdback:.0%}) added in a {i['mode']} run: {i['incremental_seconds']} s "
              f"(CPU {i['incremental_cpu_seconds']} s; the full run on all {n:,}: {out['seconds']} s; load "
              f"{i['load_at_start']} -> {i['load_at_end']}); precision {i['pair_precision']}, recall {i['pair_recall']}; "
              f"phases {i['phases']}; steps {i['steps']}; CPU seconds per step {i['step_cpu']}", flush=True)
    return out


def print_rules(info: dict[str, Any]) -> None:
    """The per-rule blocking table (``--rules``)."""
    print(f"blocking rules on {info['records']:,} records: {info['candidate_pairs']:,} candidate pairs "
          f"({info['candidate_pairs'] / max(info['records'], 1):.2f} per record); true pairs that are candidates "
          f"{info['true_candidates']:,} of {info['true_pairs']:,}; load {os.getloadavg()[0]:.1f}")
    print(pd.DataFrame(info["rules"]).to_string(index=False), flush=True)


def _print_rows(rows: list[dict[str, Any]]) -> None:
    cols = ["members", "tool", "threshold", "records", "pair_precision", "pair_recall", "pair_f1", "b3_f1",
            "people_exact", "clusters_merging_people", "twins_merged", "lookalikes_merged", "review_items",
            "review_share", "seconds", "records_per_s", "peak_rss_mb"]
    frame = pd.DataFrame(rows)
    print(frame[[c for c in cols if c in frame.columns]].to_string(index=False))
    for r in rows:
        if r.get("phases"):
            print(f"phmx phases at {r['members']} members: {r['phases']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.identity", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one small population (under a minute)")
    ap.add_argument("--members", type=int, nargs="*", default=[10_000, 100_000])
    ap.add_argument("--no-splink", action="store_true")
    ap.add_argument("--records", "--scale", dest="scale", type=int, default=None,
                    help="also deduplicate this many source records with phmx alone (default: 1,000,000; "
                         "20,000 with --quick; 0 to skip)")
    ap.add_argument("--work", default=str(ROOT / "var" / "bench" / "identity"))
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--incremental", type=float, default=None, metavar="SHARE",
                    help="with --records: link all but this share of the records in full, then add them "
                         "in an incremental run and time it (default 0.02; 0 to skip)")
    ap.add_argument("--rules", action="store_true",
                    help="with --records: first print each blocking rule's candidate pairs, true pairs and the "
                         "true pairs no other rule finds")
    ap.add_argument("--base-home", default=None, metavar="DIR",
                    help="with --incremental: keep the hub the base full run leaves in DIR, and when DIR already "
                         "holds one made from the same records and share, start the incremental run from a copy "
                         "of it instead of running the base again")
    ap.add_argument("--holdback", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--worker", choices=("phmx", "splink", "rules"), help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        if args.worker == "rules":
            out = _worker_rules(args.input, args.out)
        elif args.worker == "phmx":
            out = _worker_phmx(args.input, args.out, args.holdback, args.base_home)
        else:
            out = _worker_splink(args.input, args.out)
        print(json.dumps(out))
        return 0
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    print(machine())
    sizes = [1_000] if args.quick else args.members
    results: dict[str, Any] = {"machine": machine(), "compare": [], "scale": None}
    for n in sizes:
        rows = compare_at(n, work, splink=not args.no_splink, months=3 if args.quick else 12)
        results["compare"] += rows
        _print_rows(rows)
    records = (20_000 if args.quick else 1_000_000) if args.scale is None else args.scale
    if records:
        res = scale(records, work, 0.02 if args.incremental is None else args.incremental, rules=args.rules,
                    base_home=args.base_home)
        results["scale"] = res
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
