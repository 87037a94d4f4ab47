"""ECM stage benchmark: provider-month metrics and payment statements for a large population.

    python -m benchmarks.ecm                 # 1,000,000 members, 5% in ECM, 200 providers, 12 months
    python -m benchmarks.ecm --quick         # 100,000 members, 20 providers

Building a 1,000,000-member lakehouse through intake and identity takes well over an hour on 2
cores, and the ECM stage reads only the ECM silver tables and the crosswalk. So the lakehouse here
is written directly: the ECM members' stories are played out by the synthetic ECM submitters
(phmx.synth.ecm_submitters.stories, the same code `phmx synth --ecm-share` uses) and written to
silver.ecm_* as conform would write them, with gold.member_xwalk holding one record per member of
the whole population (plus the ECM feeds' own person records), so the crosswalk join is at full
size. The clinical side too (phmx.synth.ecm_clinical): the ECM members' claims with paid amounts,
ADT events, blood pressures, HbA1c and PHQ screens, and for the whole population 24 covered months,
12 monthly risk tiers and the non-ECM members' claims (the comparison group), the last three by SQL. The figures are the `ecm` stage alone (metrics, member-months, the statements of the shipped
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
    histories, clin_rows = _clinical(spark, ecm_members, provs, cal, members, seed)
    for m in ecm_members:  # the hospital's and the FHIR feed's own person records of ECM members
        for source in ("hosp_bench", f"{m.plan_submitter}:fhir"):
            xw["source"].append(source)
            xw["source_person_id"].append(m.member_local_id)
            xw["member_id"].append(f"MBR{m.member_local_id}")
    lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(pa.table(xw).to_pandas()), MEMBER_XWALK),
                        MEMBER_XWALK)
    return {"members": members, "ecm_members": len(ecm_members), "providers": providers, "months": months,
            "rows": {k: len(v) for k, v in rows.items()} | clin_rows, "xwalk_rows": len(xw["source"]),
            "build_seconds": round(time.perf_counter() - t0, 1), "_stories": (ecm_members, provs, cal, histories)}


def _arrow_df(spark, table, data: list[dict[str, object]]):  # noqa: ANN001, ANN202 - engine objects
    import pyarrow as pa

    from phmx import lakehouse

    cols = {c: [r.get(c) for r in data] for c, _ in table.columns}
    arrays = {}
    for c, ty in table.columns:
        v = cols[c]
        if ty == "date":
            arrays[c] = pa.array([None if x is None else str(x) for x in v], type=pa.string())
        elif ty.startswith("array"):
            arrays[c] = pa.array(v, type=pa.list_(pa.string()))
        elif ty == "double":
            arrays[c] = pa.array(v, type=pa.float64())
        elif ty in ("bigint", "int"):
            arrays[c] = pa.array(v, type=pa.int64())
        else:
            arrays[c] = pa.array(v, type=pa.string())
    return lakehouse.conform_to(spark.createDataFrame(pa.table(arrays).to_pandas()), table)


def _clinical(spark, ecm_members, provs, cal, members: int, seed: int):  # noqa: ANN001, ANN202
    """The clinical side, as conform and the earlier stages would leave it: ECM members' claims (with paid
    amounts), ADT events and the visits they make, observations; every member's covered months and risk
    tiers, and non-ECM members' claims (the comparison group), these three written by SQL from formulas."""
    import json as _json

    from phmx import lakehouse
    from phmx.synth.ecm_clinical import history_months, play
    from phmx.tables import ADT_EVENT, ENCOUNTER, MEMBER_MONTH, MEMBER_RISK, OBSERVATION

    histories = {m.member_local_id: play(m, seed, cal) for m in ecm_members}
    enc: list[dict[str, object]] = []
    adt: list[dict[str, object]] = []
    obs: list[dict[str, object]] = []
    loinc = "http://loinc.org|"
    for m in ecm_members:
        h = histories[m.member_local_id]
        base = {"source": m.plan_submitter, "source_person_id": m.member_local_id, "plan_id": m.plan_id}
        for oid, d, dx, paid in h.office:
            enc.append({**base, "encounter_id": oid, "setting": "OP", "service_date": d, "diagnosis_codes": list(dx),
                        "paid_amount": paid})
        for eid, d, paid in h.ed:
            enc.append({**base, "encounter_id": eid, "setting": "ED", "service_date": d, "diagnosis_codes": ["R079"],
                        "paid_amount": paid})
        for st in h.stays:
            enc.append({**base, "encounter_id": st.visit, "setting": "IP", "service_date": st.admit,
                        "admit_date": st.admit, "discharge_date": st.discharge, "diagnosis_codes": ["J189"],
                        "paid_amount": st.paid})
            hosp = {"source": "hosp_bench", "source_person_id": m.member_local_id}
            enc.append({**hosp, "encounter_id": f"ADT-{st.visit}", "setting": "IP", "service_date": st.admit,
                        "admit_date": st.admit, "discharge_date": st.discharge, "diagnosis_codes": ["J189"]})
            for ev, when in (("A01", st.admit), ("A03", st.discharge)):
                adt.append({**hosp, "event_id": f"{st.visit}-{ev}", "visit_number": st.visit, "event_type": ev,
                            "event_date": when, "patient_class": "I", "admit_date": st.admit,
                            "discharge_date": st.discharge if ev == "A03" else None, "diagnosis_codes": ["J189"]})
        fhir = {"source": f"{m.plan_submitter}:fhir", "source_person_id": m.member_local_id, "status": "final"}
        for oid, d, sys_, dia in h.bp:
            comps = [_json.dumps({"code": loinc + c, "value": v, "unit": "mm[Hg]"}) for c, v in
                     (("8480-6", sys_), ("8462-4", dia))]
            obs.append({**fhir, "observation_id": oid, "loinc_code": "85354-9", "effective_date": d, "components": comps})
        for oid, d, v in h.a1c:
            obs.append({**fhir, "observation_id": oid, "loinc_code": "4548-4", "effective_date": d, "value_num": v})
        for oid, d, inst, score in h.screens:
            obs.append({**fhir, "observation_id": oid, "loinc_code": "44261-6" if inst == "PHQ9" else "55758-7",
                        "effective_date": d, "value_num": score})
    ecm_idx = spark.createDataFrame([(int(m.member_local_id[1:]),) for m in ecm_members], "id long")
    first = history_months(cal)[0][0]
    n_hist = len(history_months(cal))
    months = spark.range(n_hist).withColumnRenamed("id", "k")
    pop = spark.range(members)
    member_id = "concat('MBRM', lpad(cast(id AS string), 8, '0'))"
    month_first = f"add_months(DATE'{first.isoformat()}', cast(k AS int))"
    mm = pop.crossJoin(months).selectExpr(f"{member_id} AS member_id", f"{month_first} AS month")
    lakehouse.overwrite(lakehouse.conform_to(mm, MEMBER_MONTH), MEMBER_MONTH)
    tier = "CASE WHEN id % 20 = 0 THEN 'high' WHEN id % 5 = 0 THEN 'rising' ELSE 'low' END"
    plan = "CASE WHEN id % 2 = 0 THEN 'BLC001' ELSE 'SRA001' END"
    risk_months = spark.range(11, n_hist - 1).withColumnRenamed("id", "k")  # R12 ending the month before each month
    risk = pop.crossJoin(risk_months).selectExpr(
        f"{member_id} AS member_id", f"concat('R12-', date_format({month_first}, 'yyyy-MM')) AS period",
        f"{tier} AS risk_tier", f"{plan} AS plan_id")
    lakehouse.overwrite(lakehouse.conform_to(risk, MEMBER_RISK), MEMBER_RISK)
    bg = (pop.join(ecm_idx, "id", "left_anti").crossJoin(months).where("(id * 31 + k * 17) % 9 = 0").selectExpr(
        "CASE WHEN id % 2 = 0 THEN 'mcp_bluecoast' ELSE 'mcp_sierra' END AS source",
        "concat('BG', cast(id AS string), '-', cast(k AS string)) AS encounter_id",
        "concat('M', lpad(cast(id AS string), 8, '0')) AS source_person_id", "'OP' AS setting",
        f"date_add({month_first}, cast(id % 28 AS int)) AS service_date", "array('Z0000') AS diagnosis_codes",
        f"{plan} AS plan_id",
        "CAST((id * 7919 + k * 104729) % 50000 AS DOUBLE) / 100.0D + 20.0D AS paid_amount"))
    lakehouse.overwrite(_arrow_df(spark, ENCOUNTER, enc).unionByName(lakehouse.conform_to(bg, ENCOUNTER)), ENCOUNTER)
    lakehouse.overwrite(_arrow_df(spark, ADT_EVENT, adt), ADT_EVENT)
    lakehouse.overwrite(_arrow_df(spark, OBSERVATION, obs), OBSERVATION)
    return histories, {"encounter_ecm": len(enc), "adt_event": len(adt), "observation": len(obs)}


def _same(a: tuple[float, float | None] | None, b: tuple[float, float | None] | None) -> bool:
    """Equal, but for money: paid amounts summed in another order may differ by a rounding cent."""
    if a is None or b is None:
        return a == b
    return a[1] == b[1] and abs(a[0] - b[0]) <= 0.011


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
    from phmx.synth.ecm_clinical import clinical_truth
    from phmx.synth.ecm_submitters import provider_month_truth

    built = build(home, members, args.share, providers, args.months, args.seed)
    ecm_members, provs, cal, histories = built.pop("_stories")  # type: ignore[misc]
    spark = get_spark()
    t = time.perf_counter()
    result = run(spark, RunContext.new("all"))
    seconds = round(time.perf_counter() - t, 1)
    truth = {(r["provider_npi"], r["plan_id"], r["month"], r["metric_id"]):
             (float(r["numerator"]), None if r["denominator"] == "" else float(r["denominator"]))  # type: ignore[arg-type]
             for r in provider_month_truth(ecm_members, provs, cal)
             + clinical_truth(ecm_members, provs, cal, histories,
                              {m.member_local_id: int(m.member_local_id[1:]) for m in ecm_members}, members)}
    got = {(r.provider_npi, r.plan_id, r.month, r.metric_id): (r.numerator, r.denominator)
           for r in lakehouse.read(spark, "gold.ecm_provider_month").collect()}
    wrong_keys = [k for k in truth.keys() | got.keys() if not _same(truth.get(k), got.get(k))]
    wrong = len(wrong_keys)
    for k in sorted(wrong_keys)[:5]:
        print("differs:", k, "truth", truth.get(k), "stage", got.get(k))
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
