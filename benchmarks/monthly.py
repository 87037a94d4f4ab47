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

Printed per stage: wall and CPU seconds of adding the month next to the full rebuild's (CPU of the
run's process, the embedded engine's threads included, and of the worker processes a stage starts:
publish's LHJ pool, ingest's parse pool), the load
average, what the stage wrote (from the Delta logs: commits, MB of files added and removed, and the
tables it rewrote: a stage that touches only the month removes little), and then which gold tables and published outputs of the month-added hub equal the
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
import json, os, resource, sys, time
from jobs import STAGES
from phmx.pipeline import run_pipeline
from benchmarks.monthly import delta_logs, written

lake = os.path.join(os.environ["PHMX_HOME"], "lakehouse")
out = {}

def children():  # CPU of the stage's worker processes (publish's LHJ pool, ingest's parse pool) once reaped
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime

for stage in (sys.argv[3].split(",") if len(sys.argv) > 3 else STAGES):
    before = delta_logs(lake)
    t0, c0, k0 = time.perf_counter(), time.process_time(), children()
    (r,) = run_pipeline(period=sys.argv[1], run_id=sys.argv[2], stages=[stage])
    out[stage] = {"seconds": round(time.perf_counter() - t0, 2),
                  "cpu_seconds": round(time.process_time() - c0 + children() - k0, 2),
                  "worker_cpu_seconds": round(children() - k0, 2),
                  "counts": {k: v for k, v in r.counts.items() if isinstance(v, (int, float))},
                  "written": written(lake, before)}
print("STAGES " + json.dumps(out))
print("RSS_MB " + json.dumps(round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def delta_logs(lake: str) -> dict[str, set[str]]:
    """Every Delta table under ``lake`` (``<layer>/<name>``) with the commit files its log holds."""
    out: dict[str, set[str]] = {}
    for log_dir in Path(lake).glob("*/*/_delta_log"):
        out[f"{log_dir.parent.parent.name}.{log_dir.parent.name}"] = {p.name for p in log_dir.glob("*.json")}
    return out


def written(lake: str, before: dict[str, set[str]]) -> dict[str, dict[str, int]]:
    """What the commits made since ``before`` wrote, per table: commits, bytes of files added and of
    files removed (rewritten or deleted), and the table's live bytes after. A stage that touches
    only the new month adds about a month of bytes and removes few; one that rewrites a table
    removes about all of it (a MERGE rewrites every file holding a row it matched)."""
    out: dict[str, dict[str, int]] = {}
    for table, names in delta_logs(lake).items():
        new = sorted(names - before.get(table, set()))
        if not new:
            continue
        log_dir = Path(lake, *table.split("."), "_delta_log")
        added = removed = 0
        for name in new:
            for line in (log_dir / name).read_text().splitlines():
                action = json.loads(line) if line.strip() else {}
                added += int(action.get("add", {}).get("size") or 0)
                removed += int(action.get("remove", {}).get("size") or 0)
        out[table] = {"commits": len(new), "added": added, "removed": removed}
    return out


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


def run(home: Path, keys: Path, period: str, run_id: str, stages: tuple[str, ...] = ()) -> dict:
    """Every stage (or ``stages``) at ``period`` in a fresh process on ``home``; per-stage seconds, CPU, counts."""
    env = {**os.environ, "PHMX_HOME": str(home), "PHMX_KEYS_DIR": str(keys), "PYTHONPATH": str(REPO),
           "PHMX_LOG_LEVEL": "WARNING"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RUN_SCRIPT, period, run_id, *([",".join(stages)] if stages else [])], env=env, capture_output=True,  # noqa: S603
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
# Columns keyed on the member id (an HMAC over the row's member id and identifiers): equal only where
# both hubs name the member alike, so compared for those members and set aside for renamed ones.
MEMBER_KEYED = {"member": ["pii_fingerprint"]}
# FHIR resources whose id is a pseudonym of the member id and more (Condition: member and code):
# compared without their id, since their subject and code (both compared) are what it derives from.
ID_FROM_MEMBER = ("Condition", "RiskAssessment", "Flag")
# Resources the plan receives as records (each sent in the month the hub receives it); the others
# (Patient, Coverage, Flag, RiskAssessment) are the member's state as of the package's month.
RECORDS = ("Encounter", "Immunization")
# Where each record resource comes from: (row kind, silver table, record id column).
RECORD_SOURCES = {"Encounter": (("encounter", "encounter", "encounter_id"), ("bh", "bh_service", "service_id"),
                                ("dental", "dental_service", "service_id")),
                  "Immunization": (("immunization", "immunization", "immunization_id"),)}


def _after_leaving(hub: Path, plan: str, kind: str, lost: set[str], months: list[str], keys: Path) -> int:
    """How many of ``lost`` (record resource ids for ``plan``) were never the record of a member the
    plan covered in a month from the one the record arrived in: a monthly package is for the plan's
    members of its month, a package for ``all`` for everyone the plan ever covered.

    Judged with the hub as each month's publish saw it: gold.member_xwalk as of that month's
    package (Delta time travel to the last version before it), since a record can join a member
    (an identity link) after the months the plan covered that member.
    """
    import deltalake
    import pandas as pd

    from phmx import settings as settings_mod
    from phmx.period import Period
    from privacy.keys import get_provider
    from privacy.pseudonyms import pseudonym_values

    def path(layer: str, name: str) -> str:
        return str(hub / "lakehouse" / layer / name)

    provider = get_provider(settings_mod.load(env={"PHMX_KEYS_DIR": str(keys)}))
    log = deltalake.DeltaTable(path("gold", "feed_log")).to_pandas()
    xw_table = deltalake.DeltaTable(path("gold", "member_xwalk"))
    stamps = {int(h["version"]): int(h["timestamp"]) for h in xw_table.history()}
    cov = deltalake.DeltaTable(path("silver", "coverage")).to_pandas()
    cov = cov[cov["source"] == plan]
    as_of: dict[str, pd.DataFrame] = {}
    for m in months:
        sent = log[(log["recipient"] == plan) & (log["period"] == m)]["published_at"]
        if sent.empty:
            continue
        cutoff = int(pd.Timestamp(sent.min()).timestamp() * 1000)
        version = max(v for v, ts in stamps.items() if ts <= cutoff)
        xw = deltalake.DeltaTable(path("gold", "member_xwalk"), version=version).to_pandas()
        as_of[m] = xw[["source", "source_person_id", "member_id"]]
    records = []
    for row_kind, name, rid in RECORD_SOURCES[kind]:
        df = deltalake.DeltaTable(path("silver", name)).to_pandas()
        if not df.empty:
            df["rid"] = pseudonym_values([f"{row_kind}|{s}|{r}" for s, r in zip(df["source"], df[rid], strict=True)],
                                         plan, provider)
            records.append(df[df["rid"].isin(lost)][["source", "source_person_id", "period"]])
    explained = 0
    for _, r in (pd.concat(records) if records else pd.DataFrame()).iterrows():
        covered = False
        for m, xw in as_of.items():
            if m < str(r["period"]):
                continue
            p = Period.parse(m)
            member = xw[(xw["source"] == r["source"]) & (xw["source_person_id"] == r["source_person_id"])]["member_id"]
            spans = cov.merge(xw, on=["source", "source_person_id"])
            spans = spans[spans["member_id"].isin(set(member))]
            covered = covered or any((pd.isna(s) or s <= p.end) and (pd.isna(e) or e >= p.start)
                                     for s, e in zip(spans["start_date"], spans["end_date"], strict=True))
        explained += not covered
    return explained


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


def _renamed(df, rename: dict[str, str]):  # noqa: ANN001, ANN202 - a pandas frame
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(lambda v: rename.get(v, v) if isinstance(v, str) else v)
    return df


def _gold_verdict(name: str, ta, tb, rename: dict[str, str]) -> str:  # noqa: ANN001 - pandas frames
    from same_results import normalise

    if name == "member_risk":
        ta = ta[ta["period"].isin(set(tb["period"]))]
    moved = {k for k, v in rename.items() if k != v}
    keyed = [c for c in MEMBER_KEYED.get(name, []) if c in ta.columns]
    if keyed and "member_id" in ta.columns:
        ta, tb = ta.copy(), tb.copy()
        for c in keyed:
            ta.loc[ta["member_id"].isin(moved), c] = "(renamed)"
            tb.loc[tb["member_id"].isin(set(rename[k] for k in moved)), c] = "(renamed)"
    x, y = normalise(_renamed(ta, rename)), normalise(tb)
    if list(x.columns) != list(y.columns):
        return "DIFFERS: columns differ"
    if x.equals(y):
        return f"same ({len(x):,} rows)" + (" on the rebuild's window" if name == "member_risk" else "")
    both = x.merge(y, how="inner", on=list(x.columns)).shape[0] if len(x.columns) else 0
    cols = [c for c in x.columns if not x[c].value_counts().sort_index().equals(y[c].value_counts().sort_index())]
    verdict = f"{len(x):,} rows vs {len(y):,}, {both:,} identical; columns {', '.join(cols[:6])}"
    return (f"history by design ({HISTORY[name]}): " if name in HISTORY else "DIFFERS: ") + verdict


def _pseudonym_map(rename: dict[str, str], recipients: set[str], keys: Path) -> dict[str, str]:
    """Each renamed member's Patient pseudonym for each plan: hub's -> rebuild's."""
    from phmx import settings as settings_mod
    from privacy.keys import get_provider
    from privacy.pseudonyms import pseudonym_values

    moved = sorted((a, b) for a, b in rename.items() if a != b)
    if not moved:
        return {}
    provider = get_provider(settings_mod.load(env={"PHMX_KEYS_DIR": str(keys)}))
    out: dict[str, str] = {}
    for r in sorted(recipients):
        src = pseudonym_values([a for a, _ in moved], r, provider)
        dst = pseudonym_values([b for _, b in moved], r, provider)
        out.update({x: y for x, y in zip(src, dst, strict=True) if x and y})
    return out


def _resources(lines: list[str], mapping: dict[str, str], kind: str) -> set[str]:
    out = set()
    for line in lines:
        for k, v in mapping.items():
            if k in line:
                line = line.replace(k, v)
        if kind in ID_FROM_MEMBER:
            r = json.loads(line)
            r.pop("id", None)
            line = json.dumps(r, sort_keys=True)
        out.add(line)
    return out


def _patient_of(line: str) -> str | None:
    """The Patient id a FHIR resource (one NDJSON line) is about: its own id for a Patient, else
    the reference of its subject, patient or beneficiary."""
    r = json.loads(line)
    if r.get("resourceType") == "Patient":
        return r.get("id")
    for field in ("subject", "patient", "beneficiary"):
        ref = (r.get(field) or {}).get("reference", "")
        if ref.startswith("Patient/"):
            return ref.removeprefix("Patient/")
    return None


def _regrouped(hub: Path, run_id: str | None, rename: dict[str, str], recipients: set[str],
               keys: Path) -> dict[str, set[str]]:
    """Per plan, the Patient pseudonyms (as the rebuild names the member) of the members whose
    records the hub's run ``run_id`` merged or split (gold.identity_events): by rule their whole
    history goes to the plan in that month's package (a registry's person linked to the plan's
    member brings records the plan never got), which a rebuild, having no such month, cannot do."""
    import deltalake

    from phmx import settings as settings_mod
    from privacy.keys import get_provider
    from privacy.pseudonyms import pseudonym_values

    path = hub / "lakehouse" / "gold" / "identity_events"
    if not run_id or not path.exists():
        return {}
    ev = deltalake.DeltaTable(str(path)).to_pandas()
    ev = ev[(ev["run_id"] == run_id) & ev["event_type"].isin(["merge", "split"])]
    members = sorted({rename.get(m, m) for m in [*ev["member_id"], *ev["other_member_id"]] if isinstance(m, str)})
    if not members:
        return {}
    provider = get_provider(settings_mod.load(env={"PHMX_KEYS_DIR": str(keys)}))
    return {r: {p for p in pseudonym_values(members, r, provider) if p} for r in sorted(recipients)}


def _other_csv(home: Path) -> dict[str, object]:
    """Every published CSV besides measures.csv (indicators, service counts, data dictionary), as
    sorted rows, by ``recipient/feed/period/<file>`` (same_results reads measures.csv and FHIR)."""
    import pandas as pd

    root = home / "publish"
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*.csv")):
        parts = p.relative_to(root).parts
        if p.name == "measures.csv" or parts[0].startswith("_") or len(parts) < 5:
            continue
        rows = pd.read_csv(p, dtype=str).fillna("")
        out["/".join(parts[:3] + parts[-1:])] = rows.sort_values(list(rows.columns)).to_dict("records")
    return out


def compare(a: Path, b: Path, *, month: str, keys: Path, run_id: str | None = None) -> dict[str, str]:
    """Each gold table and published output of the month-by-month hub ``a`` against the rebuild ``b``.

    Gold tables: equal after member ids are matched through the crosswalks (``same``), or history
    by design (:data:`HISTORY`), or ``DIFFERS``. Published: the hub's packages for ``month`` (its
    last monthly run, ``run_id``) against the rebuild's packages for the same month (``b``
    publishes at ``month`` after its rebuild), every measures.csv row and FHIR resource; a plan's
    resources found only month by month are by design when every one is about a member whose
    records the run ``run_id`` merged or split (:func:`_regrouped`), and a difference otherwise;
    and for each plan's
    record resources (:data:`RECORDS`) whether every record of the rebuild's package for ``all``
    went out in one of the hub's monthly packages (``none lost``).
    """
    sys.path.insert(0, str(REPO / "tests" / "engines"))
    from same_results import gold_tables, published

    out: dict[str, str] = {}
    ga, gb = gold_tables(a), gold_tables(b)
    rename = member_renaming(ga, gb) if "member_xwalk" in ga and "member_xwalk" in gb else {}
    out["member ids renamed"] = f"{sum(1 for k, v in rename.items() if k != v):,} of {len(rename):,}"
    for name in sorted(set(ga) | set(gb)):
        if name not in ga or name not in gb:
            out[f"gold.{name}"] = "DIFFERS: only in " + ("the month-added hub" if name in ga else "the rebuild")
            continue
        out[f"gold.{name}"] = _gold_verdict(name, ga[name], gb[name], rename)

    pa, pb = {**published(a), **_other_csv(a)}, {**published(b), **_other_csv(b)}
    plans = {rel.split("/")[0] for rel in pa if rel.endswith(".ndjson")}
    mapping = _pseudonym_map(rename, plans, keys)
    regrouped = _regrouped(a, run_id, rename, plans, keys)

    def split(rel: str) -> tuple[str, str]:  # (recipient/feed/<file>, period)
        parts = rel.split("/")
        return "/".join(parts[:2] + parts[3:]), parts[2]

    for rel, want in sorted(pb.items()):
        key, period = split(rel)
        if period != month:
            continue
        have = pa.get(rel)
        if have is None:
            out[f"published {key} {month}"] = "DIFFERS: not published month by month"
        elif rel.endswith(".ndjson"):
            kind = Path(rel).stem
            got, exp = _resources(have, mapping, kind), _resources(want, {}, kind)  # type: ignore[arg-type]
            more = got - exp
            why = regrouped.get(key.split("/")[0], set())
            if got == exp:
                out[f"published {key} {month}"] = f"same ({len(exp):,} resources)"
            elif not exp - got and all(_patient_of(line) in why for line in more):
                out[f"published {key} {month}"] = (
                    f"same ({len(exp):,} resources) and {len(more):,} more by design: the history of members "
                    "whose records the month's identity run merged or split, sent again by rule")
            else:
                out[f"published {key} {month}"] = f"DIFFERS: {len(more):,} only monthly, {len(exp - got):,} only rebuild"
        else:
            out[f"published {key} {month}"] = f"same ({len(want):,} rows)" if have == want else "DIFFERS"  # type: ignore[arg-type]
    for rel in sorted(pa):
        key, period = split(rel)
        if period == month and rel not in pb:
            out[f"published {key} {month}"] = "DIFFERS: published month by month only"
    # Records: none of the rebuild's (package "all") missing from every monthly package.
    months = sorted({split(rel)[1] for rel in pa} - {"all"})
    ids: dict[str, set[str]] = {}
    for rel, value in pa.items():
        key, period = split(rel)
        if rel.endswith(".ndjson") and Path(rel).stem in RECORDS:  # a hub built at "all" sent those too
            ids.setdefault(key, set()).update(json.loads(line)["id"] for line in value)  # type: ignore[union-attr]
    for rel, value in sorted(pb.items()):
        key, period = split(rel)
        if rel.endswith(".ndjson") and Path(rel).stem in RECORDS and period == "all":
            want_ids = {json.loads(line)["id"] for line in value}  # type: ignore[union-attr]
            lost = want_ids - ids.get(key, set())
            left = _after_leaving(a, key.split("/")[0], Path(rel).stem, lost, months, keys) if lost else 0
            out[f"records {key}"] = (f"none lost ({len(want_ids) - len(lost):,} sent month by month, {left:,} of "
                                     "members the plan no longer covered when they arrived)" if left == len(lost) else
                                     f"DIFFERS: {len(lost) - left:,} of {len(want_ids):,} never sent month by month")
    return out


def _mb(tables: dict[str, dict[str, int]], what: str) -> float:
    return sum(w[what] for w in tables.values()) / 2**20


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
    # The month's packages from the rebuilt hub: compared below, and what a hub rebuilt every month
    # would also have to publish to deliver the month (the rebuild's own publish is for all).
    month_pub = run(rebuild, keys, labels[-1], "rebuild-month", stages=("publish",))
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
    mp = month_pub["STAGES"]["publish"]
    print(f"  {'+ publish of the month from the rebuild':<40} {mp['seconds']:>8.1f} s, {mp['cpu_seconds']:.1f} CPU s "
          f"(a rebuild that delivers the month: {tf + mp['cpu_seconds']:.1f} CPU s)")
    print("\n  what each stage wrote (Delta commits; MB of files added / removed; tables written):")
    print(f"  {'stage':<10} {'add: commits':>12} {'added':>8} {'removed':>8}   {'rebuild: commits':>16} {'added':>8}")
    for stage, a in added["STAGES"].items():
        wa, wf = a.get("written", {}), full["STAGES"][stage].get("written", {})
        print(f"  {stage:<10} {sum(w['commits'] for w in wa.values()):>12} {_mb(wa, 'added'):>8.1f} "
              f"{_mb(wa, 'removed'):>8.1f}   {sum(w['commits'] for w in wf.values()):>16} {_mb(wf, 'added'):>8.1f}")
    for stage, a in added["STAGES"].items():
        heavy = sorted(a.get("written", {}).items(), key=lambda kv: -kv[1]["removed"])[:4]
        if heavy and heavy[0][1]["removed"]:
            print(f"  {stage}: rewrote " + ", ".join(f"{t} {w['removed'] / 2**20:.1f} MB" for t, w in heavy
                                                      if w["removed"]))
    same = compare(hub, rebuild, month=labels[-1], keys=keys, run_id="add-month")
    print("\nmonth-added hub vs full rebuild:")
    for name, verdict in same.items():
        print(f"  {name:<60} {verdict}")
    (base / "monthly.json").write_text(json.dumps({"machine": machine(), "members": members, "months": labels,
                                                   "synth": synth, "build": built, "add": added, "rebuild": full,
                                                   "rebuild_month_publish": month_pub,
                                                   "compare": same}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
