"""ECM delivery benchmark: the consent pass for ECM providers and the publish of their packages.

    python -m benchmarks.ecm_delivery                  # 100,000 members, 5% in ECM, 200 providers
    python -m benchmarks.ecm_delivery --sample 5       # publish 5 providers' packages (default 10)
    python -m benchmarks.ecm_delivery --quick          # 20,000 members, 20 providers, 3 packages

The lakehouse is the ECM benchmark's (benchmarks/ecm.py ``build``: ECM silver tables, a full-size
crosswalk, clinical inputs, covered months and tiers for the whole population); the ecm stage
runs on it, then the consent stage (which decides every assigned member toward each ECM provider,
phmx.recipients.ecm_assignments), then the publish stage's ECM job (jobs.publish.stage.publish_ecm:
consent-gated rows, files, FHIR, dashboard, signature, ledger, promotion, feed log) for a sample
of providers, the ones with the most members first, and for each plan. A provider's package is
one job (Airflow maps them), so the figure that matters is the time per provider and how it grows
with the population: run it at two sizes (``--members``) to see.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ecm_delivery", description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--share", type=float, default=0.05)
    parser.add_argument("--providers", type=int, default=200)
    parser.add_argument("--sample", type=int, default=10, help="providers whose packages are published")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--root", default="var/bench/ecm_delivery")
    parser.add_argument("--quick", action="store_true", help="20,000 members, 20 providers, 3 packages")
    args = parser.parse_args(argv)
    if args.quick:
        args.members, args.providers, args.sample = 20_000, 20, 3
    home = Path(args.root).resolve() / f"m{args.members}"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.environ["PHMX_HOME"] = str(home)
    os.environ.setdefault("PHMX_PUBLISH_WORKERS", "1")

    from benchmarks.ecm import build
    from benchmarks.measures import machine
    from jobs import consent_decisions, ecm
    from jobs.publish import stage as publish
    from phmx import lakehouse
    from phmx.context import RunContext
    from phmx.engine import get_spark
    from phmx.errors import ConsentError
    from phmx.recipients import ecm_assignments
    from phmx.tables import CONSENT_DECISION

    built = build(home, args.members, args.share, args.providers, 12, args.seed)
    built.pop("_stories")
    spark = get_spark()
    ctx = RunContext.new("all")
    t = time.perf_counter()
    ecm.run(spark, ctx)
    ecm_s = time.perf_counter() - t
    t = time.perf_counter()
    consent = consent_decisions.run(spark, ctx)
    consent_s = time.perf_counter() - t
    ecm_rows = lakehouse.read(spark, CONSENT_DECISION).where("recipient LIKE 'ecm_%'").count()
    sizes = sorted(((r[0], int(r[1])) for r in ecm_assignments(spark).groupBy("recipient").count().collect()),
                   key=lambda x: (-x[1], x[0]))
    print(f"machine: {machine()}; load {os.getloadavg()}")
    print(f"population {args.members:,} members, {built['ecm_members']:,} in ECM, {args.providers} providers "
          f"({len(sizes)} known as recipients); lakehouse written in {built['build_seconds']} s")
    print(f"ecm stage {ecm_s:.1f} s; consent stage {consent_s:.1f} s ({consent.counts.get('decision_rows')} decision "
          f"rows, {ecm_rows:,} toward ECM providers)")
    times = []
    for recipient, n in sizes[:args.sample]:
        t = time.perf_counter()
        out = publish.publish_ecm(spark, ctx, recipient)
        times.append(time.perf_counter() - t)
        print(f"  publish {recipient}: {n} assignments, {times[-1]:.1f} s ({out.get('members')} members sent)")
    plans = sorted({r[0].split(":")[0] for r in lakehouse.read(spark, "silver.ecm_assignment")
                    .select("source").distinct().collect()})
    for plan in plans:
        t = time.perf_counter()
        try:
            publish.publish_ecm(spark, ctx, plan)
        except ConsentError:  # the plan sent no file the hub knows it by here (only the ECM feeds)
            print(f"  {plan}: not a recipient in this lakehouse (no decisions toward it)")
            continue
        print(f"  publish {plan} (the plan's oversight package): {time.perf_counter() - t:.1f} s")
    if times:
        mean = sum(times) / len(times)
        print(f"per provider package: mean {mean:.1f} s over {len(times)} (max {max(times):.1f} s); "
              f"{len(sizes)} providers one after another would take about {mean * len(sizes) / 60:.0f} min")
    print(f"load at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
