"""ECM stage benchmark: provider-month metrics and payment statements for a large population.

    python -m benchmarks.ecm                 # 1,000,000 members, 5% in ECM, 200 providers, 12 months
    python -m benchmarks.ecm --quick         # 100,000 members, 20 providers

Building a 1,000,000-member lakehouse through intake and identity takes well over an hour on 2
cores, and the ECM stage reads only the ECM silver tables and the crosswalk. So the lakehouse here
is written directly: the ECM members' stories are played out by the synthetic ECM submitters
(phmx.synth.ecm_submitters.stories, the same code `phmx synth --ecm-share` uses) and written to
silver.ecm_* as conform would write them, with gold.member_xwalk holding one record per member of
the whole population (plus the ECM feeds' own person records), so the crosswalk join is at full
size. The figures are the `ecm` stage alone (metrics, member-months, the statements of the shipped
contracts), and every metric is then checked against the stories' ground truth.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import time
from collections.abc import Iterator
from pathlib import Path

PLANS = (("mcp_bluecoast", "BLC001"), ("mcp_sierra", "SRA001"))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _candidates(members: int, seed: int) -> Iterator[dict[str, str]]:
    """The population's plan members, one at a time (only the ECM share is kept in memory)."""
    rng = random.Random(f"bench:{seed}")  # noqa: S311 - synthetic data
    for i in range(members):
        sub, plan = PLANS[i % 2]
        yield {"submitter": sub, "member_local_id": f"M{i:08d}", "cin": f"9{i:07d}{chr(65 + i % 26)}",
               "given_name": "G", "family_name": "F", "birth_date": f"{1940 + rng.randint(0, 60)}0101",
               "sex": "F", "plan_id": plan}


def build(home: Path, members: int, share: float, providers: int, months: int, seed: int) -> dict[str, object]:
    """Write the ECM silver tables and the crosswalk under ``home``; return the stories and row counts."""
    import pyarrow as pa

    from phmx import lakehouse
    from phmx.engine import get_spark
    from phmx.synth.ecm_submitters import _status_on, months_of, stories
    from phmx.tables import (
        CS_REFERRAL,
        ECM_ASSIGNMENT,
        ECM_CARE_PLAN,
        ECM_OUTREACH,
        ECM_SERVICE,
        MEMBER_XWALK,
    )

    t0 = time.perf_counter()
    cal = months_of("2025-01", months)
    ecm_members, provs = stories(_candidates(members, seed), seed=seed, share=share, providers=providers, cal=cal)
    spark = get_spark()
    rows: dict[str, list[dict[str, object]]] = {t: [] for t in ("asg", "cp", "out", "svc", "ref")}
    for m in ecm_members:
        p = provs[m.provider]
        key = {"source_person_id": m.who["cin"], "plan_id": m.plan_id, "provider_npi": p.npi}
        rows["asg"].append({"source": f"{m.plan_submitter}:ecm_member_information", "source_person_id": m.member_local_id,
                            "assignment_id": f"{m.member_local_id}|{p.npi}|{m.auth_start}", "plan_id": m.plan_id,
                            "provider_npi": p.npi, "populations_of_focus": m.pofs, "authorization_start": m.auth_start,
                            "authorization_end": m.auth_end, "end_reason": m.end_reason or None})
        for _, last in cal:
            st = _status_on(m, last)
            if st is not None:
                rows["cp"].append({"source": f"{p.submitter}:ecm_return_transmission", **key,
                                   **{k: (v or None) for k, v in st.items()}, "period": f"{last:%Y-%m}",
                                   "row_number": 1})
        for oid, d, method, outcome in m.attempts:
            rows["out"].append({"source": f"{p.submitter}:ecm_outreach", "outreach_id": oid, **key, "attempt_date": d,
                                "method": method, "outcome": outcome})
        for sid, d, core, mode, minutes in m.services:
            rows["svc"].append({"source": f"{p.submitter}:ecm_services", "service_id": sid, **key, "service_date": d,
                                "core_service": core, "contact_mode": mode, "minutes": minutes,
                                "lead_care_manager_id": m.lcm})
        for r in m.referrals:
            status = "DELIVERED" if r.delivered else "CLOSED" if r.closed else "ACCEPTED" if r.accepted else "MADE"
            rows["ref"].append({"source": f"{p.submitter}:cs_referrals", "referral_id": r.id, **key,
                                "cs_service": r.service, "referral_date": r.made, "status": status,
                                "accepted_date": r.accepted, "delivered_date": r.delivered, "closed_date": r.closed,
                                "close_reason": r.reason or None})
    for name, table in (("asg", ECM_ASSIGNMENT), ("cp", ECM_CARE_PLAN), ("out", ECM_OUTREACH), ("svc", ECM_SERVICE),
                        ("ref", CS_REFERRAL)):
        data = rows[name]
        cols = {c: [r.get(c) for r in data] for c, _ in table.columns}
        for c, ty in table.columns:  # ISO text for dates: the engine casts on conform_to
            if ty == "date":
                cols[c] = [None if v in (None, "") else str(v) for v in cols[c]]
        arrow = pa.table({c: pa.array(v, type=pa.list_(pa.string()) if ty.startswith("array") else
                                      (pa.int64() if ty in ("bigint", "int") else pa.string()))
                          for (c, ty), v in zip(table.columns, cols.values(), strict=True)})
        df = spark.createDataFrame(arrow.to_pandas())
        lakehouse.overwrite(lakehouse.conform_to(df, table), table)
    # the crosswalk: every member of the population, plus each ECM feed's own person record
    xw: dict[str, list[str]] = {"source": [PLANS[i % 2][0] for i in range(members)],
                                "source_person_id": [f"M{i:08d}" for i in range(members)],
                                "member_id": [f"MBRM{i:08d}" for i in range(members)]}
    for m in ecm_members:
        mid = f"MBR{m.member_local_id}"
        p = provs[m.provider]
        xw["source"].append(f"{m.plan_submitter}:ecm_member_information")
        xw["source_person_id"].append(m.member_local_id)
        xw["member_id"].append(mid)
        for feed in ("ecm_return_transmission", "ecm_outreach", "ecm_services", "cs_referrals"):
            xw["source"].append(f"{p.submitter}:{feed}")
            xw["source_person_id"].append(m.who["cin"])
            xw["member_id"].append(mid)
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(pa.table(xw).to_pandas()), MEMBER_XWALK),
                        MEMBER_XWALK)
    return {"members": members, "ecm_members": len(ecm_members), "providers": providers, "months": months,
            "rows": {k: len(v) for k, v in rows.items()}, "xwalk_rows": len(xw["source"]),
            "build_seconds": round(time.perf_counter() - t0, 1), "_stories": (ecm_members, provs, cal)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ecm", description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument("--providers", type=int, default=200)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100,000 members, 20 providers")
    parser.add_argument("--root", default="var/bench/ecm")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    members, providers = (100_000, 20) if args.quick else (args.members, args.providers)
    home = Path(args.root).resolve() / f"m{members}"
    import shutil

    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ["PHMX_HOME"] = str(home)

    from benchmarks.measures import machine
    from jobs.ecm.stage import run
    from phmx import lakehouse
    from phmx.context import RunContext
    from phmx.engine import get_spark
    from phmx.synth.ecm_submitters import provider_month_truth

    built = build(home, members, args.share, providers, args.months, args.seed)
    ecm_members, provs, cal = built.pop("_stories")  # type: ignore[misc]
    spark = get_spark()
    t = time.perf_counter()
    result = run(spark, RunContext.new("all"))
    seconds = round(time.perf_counter() - t, 1)
    truth = {(r["provider_npi"], r["plan_id"], r["month"], r["metric_id"]):
             (float(r["numerator"]), None if r["denominator"] == "" else float(r["denominator"]))  # type: ignore[arg-type]
             for r in provider_month_truth(ecm_members, provs, cal)}
    got = {(r.provider_npi, r.plan_id, r.month, r.metric_id): (r.numerator, r.denominator)
           for r in lakehouse.read(spark, "gold.ecm_provider_month").collect()}
    wrong = sum(1 for k in truth.keys() | got.keys() if truth.get(k) != got.get(k))
    out = {"machine": machine(), "load": os.getloadavg(), **built, "stage_seconds": seconds,
           "counts": result.counts, "metric_rows": len(got), "metric_rows_wrong": wrong,
           "peak_rss_mb": round(_peak_rss_mb())}
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(f"machine: {out['machine']}; load average at the end {out['load']}")
    print(f"population {members:,} members, {built['ecm_members']:,} in ECM, {providers} providers, {args.months} months;"
          f" silver rows {built['rows']}, crosswalk rows {built['xwalk_rows']:,} (written in {built['build_seconds']} s)")
    print(f"ecm stage (metrics, member-months, statements): {seconds} s; {result.counts}")
    print(f"metric rows {len(got):,}, differing from the ground truth: {wrong}; peak RSS {out['peak_rss_mb']} MB")
    return 0 if wrong == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
