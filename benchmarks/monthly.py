"""Month by month: the cost of adding one month to a hub, beside a full rebuild, and whether they agree.

    python -m benchmarks.monthly --members 100000             # a hub of 12 months, then month 13
    python -m benchmarks.monthly --members 300 --months 2     # small: months one by one vs rebuild
    python -m benchmarks.monthly --quick                      # 2,000 members, 3 + 1 months

One synthetic population of ``--months`` + 1 months is generated once (``phmx synth`` in a child
process). Three homes under ``--out``, each run in a fresh process on the embedded engine, with
one shared keys folder so pseudonyms and fingerprints are comparable:

* ``hub``: the first ``--months`` months' files landed and run at period ``all`` (the hub as it
  stands), then the next month's files landed and run at that month's period (what a monthly
  scheduled run does, ``PHMX_SCHEDULE=@monthly``);
* ``rebuild``: every month's files landed at once and run at period ``all``.

Printed per stage: wall and CPU seconds of adding the month next to the full rebuild's, the load
average, and then which gold tables and published outputs of the month-added hub equal the
rebuild's (clock columns, run ids and ciphertexts aside, as in tests/engines/same_results.py).
A table that differs is named with its row counts: the month-by-month gaps still open.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess  # noqa: S404 - runs this project's own pipeline in a child process
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_SCRIPT = """
import json, resource, sys, time
from jobs import STAGES
from phmx.pipeline import run_pipeline

out = {}
for stage in STAGES:
    t0, c0 = time.perf_counter(), time.process_time()
    (r,) = run_pipeline(period=sys.argv[1], run_id=sys.argv[2], stages=[stage])
    out[stage] = {"seconds": round(time.perf_counter() - t0, 2), "cpu_seconds": round(time.process_time() - c0, 2),
                  "counts": {k: v for k, v in r.counts.items() if isinstance(v, (int, float))}}
print("STAGES " + json.dumps(out))
print("RSS_MB " + json.dumps(round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def month_labels(start: str, n: int) -> list[str]:
    """``n`` consecutive YYYY-MM labels from ``start``."""
    y, m = (int(x) for x in start.split("-"))
    out = []
    for _ in range(n):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def land(source: Path, home: Path, months: list[str]) -> int:
    """Copy the landing folders of ``months`` (``<submitter>/<feed>/<YYYY-MM>``) into ``home``; files copied."""
    n = 0
    for folder in sorted(source.glob("*/*/*")):
        if folder.is_dir() and folder.name in months:
            dest = home / "landing" / folder.relative_to(source)
            shutil.copytree(folder, dest, dirs_exist_ok=True)
            n += sum(1 for p in dest.rglob("*") if p.is_file())
    return n


def run(home: Path, keys: Path, period: str, run_id: str) -> dict:
    """Every stage at ``period`` in a fresh process on ``home``; per-stage seconds, CPU, counts."""
    env = {**os.environ, "PHMX_HOME": str(home), "PHMX_KEYS_DIR": str(keys), "PYTHONPATH": str(REPO),
           "PHMX_LOG_LEVEL": "WARNING"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUN_SCRIPT, period, run_id], env=env, capture_output=True,  # noqa: S603
                          text=True, cwd=REPO, check=False)
    if proc.returncode:
        raise RuntimeError(f"the pipeline failed on {home.name} at period {period}:\n{proc.stderr[-4000:]}")
    out = {k: json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
           for k in ("STAGES", "RSS_MB") if line.startswith(k + " ")}
    out["wall"] = round(time.perf_counter() - t0, 1)
    out["load"] = round(os.getloadavg()[0], 1)
    return out


# Tables that keep one row per run or per month by design: a hub run month by month holds a history
# the rebuild (one run) cannot have. member_risk is compared on the rebuild's window only.
HISTORY = {"identity_events": "one event per run that formed or changed a member",
           "feed_log": "one entry per package published (one set per monthly run)",
           "risk_transition": "month-to-month tier changes: none after a single run"}


def member_renaming(a: dict, b: dict) -> dict[str, str]:
    """Hub member id -> rebuild member id, through the source records both crosswalks hold.

    Member ids are stable across runs by design (an id minted in month 1 survives when the
    member's cluster grows), so a hub built month by month and a rebuild can name the same
    cluster differently. Only a one-to-one correspondence is renamed; a cluster that differs stays
    as it is and shows as a difference.
    """
    keys = ["source", "source_person_id"]
    pairs = a["member_xwalk"][keys + ["member_id"]].merge(b["member_xwalk"][keys + ["member_id"]], on=keys,
                                                          suffixes=("_a", "_b"))
    pairs = pairs[["member_id_a", "member_id_b"]].drop_duplicates()
    ok_a = pairs.groupby("member_id_a")["member_id_b"].transform("nunique") == 1
    ok_b = pairs.groupby("member_id_b")["member_id_a"].transform("nunique") == 1
    one = pairs[ok_a & ok_b]
    return dict(zip(one["member_id_a"], one["member_id_b"], strict=True))


def compare(a: Path, b: Path) -> dict[str, str]:
    """Each gold table and published output of home ``a`` against ``b``: ``same`` or what differs."""
    sys.path.insert(0, str(REPO / "tests" / "engines"))
    from same_results import gold_tables, normalise, published

    out: dict[str, str] = {}
    ga, gb = gold_tables(a), gold_tables(b)
    rename = member_renaming(ga, gb) if "member_xwalk" in ga and "member_xwalk" in gb else {}
    out["member ids renamed"] = f"{sum(1 for k, v in rename.items() if k != v):,} of {len(rename):,}"

    def renamed(df):  # noqa: ANN001, ANN202 - a pandas frame
        df = df.copy()
        for c in df.columns:
            if df[c].dtype == object:
                df[c] = df[c].map(lambda v: rename.get(v, v) if isinstance(v, str) else v)
        return df

    for name in sorted(set(ga) | set(gb)):
        if name not in ga or name not in gb:
            out[f"gold.{name}"] = "only in " + ("the month-added hub" if name in ga else "the rebuild")
            continue
        ta, tb = ga[name], gb[name]
        if name == "member_risk":
            ta = ta[ta["period"].isin(set(tb["period"]))]
        x, y = normalise(renamed(ta)), normalise(tb)
        if list(x.columns) != list(y.columns):
            out[f"gold.{name}"] = "columns differ"
            continue
        if x.equals(y):
            out[f"gold.{name}"] = f"same ({len(x):,} rows)" + (" on the rebuild's window" if name == "member_risk"
                                                                 else "")
            continue
        both = x.merge(y, how="inner", on=list(x.columns)).shape[0] if len(x.columns) else 0
        cols = [c for c in x.columns if not x[c].value_counts().sort_index().equals(y[c].value_counts().sort_index())]
        verdict = f"{len(x):,} rows vs {len(y):,}, {both:,} identical; columns {', '.join(cols[:6])}"
        out[f"gold.{name}"] = (f"history by design ({HISTORY[name]}): " if name in HISTORY else "DIFFERS: ") + verdict
    pa, pb = published(a), published(b)
    # A monthly run publishes each month's package under the month's period, the rebuild one package
    # under "all". FHIR resources: the union of the monthly packages must equal the rebuild's (a
    # resource's period is in its content). measures.csv: the month package holds the month's cells
    # and "all" the years' and quarters', so the two are different products; they are listed, not compared.
    def key(rel: str) -> str:
        parts = rel.split("/")
        return "/".join(parts[:2] + parts[3:])

    union: dict[str, set[str]] = {}
    for rel, value in pa.items():
        if rel.endswith(".ndjson"):
            text = json.dumps(value)
            for k, v in rename.items():
                if k != v:
                    text = text.replace(k, v)
            union.setdefault(key(rel), set()).update(json.loads(text))
    for rel, value in sorted(pb.items()):
        if rel.endswith(".ndjson"):
            got = union.get(key(rel), set())
            want = set(value)  # type: ignore[arg-type]
            out[f"published {key(rel)}"] = ("same (union of the monthly packages)" if got == want else
                                            f"DIFFERS: {len(got - want):,} only monthly, {len(want - got):,} only rebuild")
        else:
            months = sorted({r.split("/")[2] for r in pa if key(r) == key(rel)})
            out[f"published {key(rel)}"] = f"not compared (monthly packages {', '.join(months)} vs all)"
    return out


def main(argv: list[str] | None = None) -> int:
    from benchmarks.pipeline import machine, synth_in_child

    parser = argparse.ArgumentParser(prog="python -m benchmarks.monthly")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12, help="months the hub holds before the new one")
    parser.add_argument("--start", default="2025-01")
    parser.add_argument("--counties", default="06001,06013,06075,06037,06067")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="var/bench/monthly")
    args = parser.parse_args(argv)
    members, months = (2_000, 3) if args.quick else (args.members, args.months)
    base = Path(args.out).resolve() / f"m{members}x{months}"
    shutil.rmtree(base, ignore_errors=True)
    labels = month_labels(args.start, months + 1)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start; "
          f"{members:,} members, a hub of {labels[0]}..{labels[-2]} plus {labels[-1]}", flush=True)
    synth = synth_in_child(base / "source", members, args.counties.split(","), months + 1)
    print(f"synth: {synth['rows']:,} rows in {synth['seconds']} s (peak RSS {synth['peak_rss_mb']} MB)", flush=True)
    source, keys = base / "source" / "landing", base / "keys"
    hub, rebuild = base / "hub", base / "rebuild"
    land(source, hub, labels[:-1])
    built = run(hub, keys, "all", "hub-build")
    added_files = land(source, hub, labels[-1:])
    added = run(hub, keys, labels[-1], "add-month")
    land(source, rebuild, labels)
    full = run(rebuild, keys, "all", "rebuild")
    print(f"\nhub of {months} months built in {built['wall']} s; month {labels[-1]} ({added_files} files) added in "
          f"{added['wall']} s (load {added['load']}); full rebuild of {months + 1} months {full['wall']} s "
          f"(load {full['load']})")
    print(f"  {'stage':<10} {'add wall':>9} {'add CPU':>8} {'rebuild wall':>13} {'rebuild CPU':>12}")
    for stage, a in added["STAGES"].items():
        f = full["STAGES"][stage]
        print(f"  {stage:<10} {a['seconds']:>9.1f} {a['cpu_seconds']:>8.1f} {f['seconds']:>13.1f} {f['cpu_seconds']:>12.1f}")
    ta = sum(s["cpu_seconds"] for s in added["STAGES"].values())
    tf = sum(s["cpu_seconds"] for s in full["STAGES"].values())
    print(f"  {'total':<10} {sum(s['seconds'] for s in added['STAGES'].values()):>9.1f} {ta:>8.1f} "
          f"{sum(s['seconds'] for s in full['STAGES'].values()):>13.1f} {tf:>12.1f}")
    same = compare(hub, rebuild)
    print("\nmonth-added hub vs full rebuild:")
    for name, verdict in same.items():
        print(f"  {name:<60} {verdict}")
    (base / "monthly.json").write_text(json.dumps({"machine": machine(), "members": members, "months": labels,
                                                   "synth": synth, "build": built, "add": added, "rebuild": full,
                                                   "compare": same}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
