"""``make demo``: synthetic submitters -> the whole exchange under Airflow -> a summary.

Generates about 2,000 members in three counties (Alameda, Contra Costa, San Francisco) with
every source type, lands their files, runs the ``phm_exchange`` DAG with ``airflow dags test``
(the real Airflow, one process), then reads the lakehouse and prints what happened: rows
landed, accepted and quarantined per feed; members resolved; feeds published and their paths.
Everything lives under ``var/demo`` and is rebuilt on each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

DEFAULT_COUNTIES = ("06001", "06013", "06075")


def _prepare(home: Path, members: int, seed: int) -> None:
    from phmx.synth import generate

    for sub in ("landing", "lakehouse", "outbox", "publish", "ground_truth"):
        shutil.rmtree(home / sub, ignore_errors=True)
    generate(home, members=members, counties=list(DEFAULT_COUNTIES), seed=seed)
    from phmx.synth.ecm_submitters import generate_ecm

    generate_ecm(home, seed=seed, share=0.05, providers=4)  # ECM plans' and providers' files, with truth


def recipient_checks(packages: list[dict]) -> dict:
    """What each recipient can check on receipt, run on every published package: the signed
    manifest and checksums (``phmx feeds verify``), and for LHJ feeds the LP attacker audit on the
    published measures table with the calendar's roll-ups (``phmx privacy attack``)."""
    import pandas as pd

    from jobs.publish.lhj_suppression import suppressed_cells
    from jobs.publish.verify import verify_package
    from privacy.attack import audit
    from privacy.suppression import with_calendar

    verified = audited = suppressed = attacked = 0
    failures: list[str] = []
    for p in packages:
        verify_package(p["path"])  # raises PackageInvalid (exit 71) naming the bad file
        verified += 1
        table_path = Path(p["path"]) / "measures.parquet"
        if table_path.is_file():
            table = pd.read_parquet(table_path)
            report = audit(table, with_calendar(table))
            audited += 1
            # the package's own count (as its manifest, dictionary and report state it); the audit
            # attacks the numerator and denominator of each of those rows and of the calendar roll-ups
            suppressed += suppressed_cells(table)
            attacked += report.suppressed_cells
            if not report.ok:
                failures.append(p["recipient"])
    return {"verified": verified, "lhj_audited": audited, "suppressed_cells": suppressed, "attacked_values": attacked,
            "audit_failures": failures}


def _ecm_packages(console) -> dict[str, str]:  # noqa: ANN001 - rich Console
    """Where the publish stage delivered an ECM provider's package (the provider with the most
    currently assigned members) and its plan's (signed, ledgered, consent-gated member tables, FHIR,
    metrics, statements and the dashboard). Returns {recipient: package folder}."""
    from jobs.publish import ecm_feed, feed_log

    latest: dict[str, dict] = {}
    for r in feed_log.read():  # newest first
        if r["feed"] == ecm_feed.FEED:
            latest.setdefault(r["recipient"], r)
    providers = sorted((r for k, r in latest.items() if k.startswith("ecm_")),
                       key=lambda r: (-int(r["members"] or 0), r["recipient"]))
    shown: dict[str, str] = {}
    if providers:
        p = providers[0]
        shown[p["recipient"]] = p["uri"]
        console.print(f"An ECM provider's package ({p['recipient']}, {p['members']} assigned members): {p['uri']} "
                      f"(dashboard: {p['uri']}/dashboard.html)")
    if "mcp_bluecoast" in latest:
        shown["mcp_bluecoast"] = latest["mcp_bluecoast"]["uri"]
        console.print(f"Its plan's ECM oversight package: {shown['mcp_bluecoast']}")
    return shown


def summarize(console) -> dict:  # noqa: ANN001 - rich Console
    """Read the lakehouse and print the run summary tables; return the figures."""
    from pyspark.sql import functions as F
    from rich.table import Table

    from phmx import lakehouse, settings
    from phmx.engine import get_spark
    from phmx.tables import MEMBER, MEMBER_XWALK, SUBMISSIONS

    spark = get_spark()
    subs = (lakehouse.read(spark, SUBMISSIONS).groupBy("feed")
            .agg(F.count("*").alias("files"), F.sum("rows_landed").alias("landed"),
                 F.sum("rows_accepted").alias("accepted"), F.sum("rows_quarantined").alias("quarantined"),
                 F.sum(F.when(F.col("status") == "rejected", 1).otherwise(0)).alias("rejected"))
            .orderBy("feed").collect())
    t = Table(title="Intake: rows per feed")
    for c in ("feed", "files", "landed", "accepted", "quarantined", "rejected files"):
        t.add_column(c, justify="left" if c == "feed" else "right")
    for r in subs:
        t.add_row(r.feed, str(r.files), str(r.landed), str(r.accepted), str(r.quarantined), str(r.rejected))
    console.print(t)
    records = lakehouse.read(spark, MEMBER_XWALK).count()
    members = lakehouse.read(spark, MEMBER).count()
    by_source = (lakehouse.read(spark, MEMBER_XWALK).groupBy("source").agg(F.count("*").alias("records"))
                 .orderBy("source").collect())
    t = Table(title=f"Identity: {records} source person records resolved to {members} members")
    t.add_column("source")
    t.add_column("person records", justify="right")
    for r in by_source:
        t.add_row(r.source, str(r.records))
    console.print(t)
    from consent.audit import verify
    from jobs.publish.summary import summarize_publish

    packages = summarize_publish(settings.load().publish_root)
    t = Table(title=f"Published: {len(packages)} feed packages (signed manifests, ledgered disclosures)")
    for c in ("recipient", "feed", "period", "version", "cells / suppressed", "FHIR resources"):
        t.add_column(c, justify="right" if c in ("cells / suppressed", "FHIR resources") else "left")
    for p in packages:
        cells = f"{p['cells']} / {p['suppressed_cells']}" if p.get("cells") is not None else ""
        res = p.get("resources")
        res = sum(res.values()) if isinstance(res, dict) else res
        t.add_row(p["recipient"], p["feed"], p["period"], p["version"], cells, f"{res:,}" if res else "")
    console.print(t)
    report = next((p["report"] for p in packages if p.get("report")), None)
    if report:
        console.print(f"An LHJ's HTML report: {report}")
    if packages:
        console.print(f"Verify a package as its recipient would: phmx feeds verify {packages[0]['path']}")
    ecm_packages = _ecm_packages(console)
    checks = recipient_checks(packages)
    console.print(f"Recipient-side checks: {checks['verified']} of {len(packages)} packages verify (signature, "
                  f"checksums); LP attacker audit on {checks['lhj_audited']} LHJ measure tables: "
                  f"{checks['suppressed_cells']} suppressed cells, "
                  + ("none can be narrowed below [0, 11]" if not checks["audit_failures"] else
                     f"FAILED for {', '.join(checks['audit_failures'])}") + " (phmx privacy attack)")
    console.print(f"(The same count as the packages' manifests, dictionaries and reports; the audit bounded their "
                  f"{checks['attacked_values']} withheld numerators and denominators with the calendar's roll-ups.)")
    audit = verify()
    console.print(f"Consent ledger: {audit.entries} entries, {audit.checkpoints} signed checkpoints, "
                  f"{audit.disclosures} disclosures; verify {'OK' if audit.ok else 'FAILED'} "
                  "(phmx audit verify)")
    from consent import report as audit_report
    from phmx import settings as settings_mod

    home = Path(settings_mod.load().home).resolve()
    written = audit_report.write_report(str(home / "audit-report"))
    revs = audit_report.figures()["revocation_violations"]
    console.print(f"Auditor report: {written['report']} (disclosures that relied on a revoked consent: "
                  f"{len(revs) - 1})")
    feeds = [p["path"] for p in packages]
    return {"feeds": [r.asDict() for r in subs], "members": members, "records": records,
            "published": feeds, "ledger_ok": audit.ok, "recipient_checks": checks, "ecm_packages": ecm_packages}


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from phmx import settings

    parser = argparse.ArgumentParser(prog="phmx demo")
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--home", default=settings.load().demo_home)
    parser.add_argument("--in-process", action="store_true", help="run the stages without Airflow")
    args = parser.parse_args(argv)
    console = Console()
    home = Path(args.home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["PHMX_HOME"] = str(home)
    os.environ.setdefault("AIRFLOW_HOME", str(Path("var/airflow").resolve()))
    # One run over twelve months of data: the tier history of all twelve (as twelve monthly runs would
    # have written it), so the ECM dashboards' comparison group (members of the same tier) is not empty.
    os.environ.setdefault("PHMX_RISK_HISTORY_MONTHS", "12")
    t0 = time.perf_counter()
    console.rule("phmx demo")
    console.print(f"Generating synthetic submitters: {args.members} members in counties "
                  f"{', '.join(DEFAULT_COUNTIES)} (seed {args.seed}) ...")
    _prepare(home, args.members, args.seed)
    t1 = time.perf_counter()
    if args.in_process:
        from phmx.pipeline import run_pipeline, summary_table

        summary_table(run_pipeline())
    else:
        from phmx.airflow_env import dags_test

        console.print("Running the phm_exchange DAG with `airflow dags test` (Airflow 3, SQLite, LocalExecutor) ...")
        proc = dags_test("phm_exchange")
        log = home / "airflow-dags-test.log"
        log.write_text(proc.stdout + "\n" + proc.stderr)
        if proc.returncode != 0 or "state=failed" in proc.stdout + proc.stderr:
            console.print(f"[red]The DAG run failed; Airflow's output is in {log}[/red]")
            return 1
        console.print(f"DAG run succeeded; Airflow's output is in {log}")
    t2 = time.perf_counter()
    summarize(console)
    console.print(f"synthetic data {t1 - t0:.1f} s; pipeline {t2 - t1:.1f} s; lakehouse at {home / 'lakehouse'}")
    console.print("To look at this hub with the other commands, point them at its home first:\n"
                  f"  export PHMX_HOME={home}\n"
                  "  phmx submissions; phmx feeds; phmx audit verify; phmx audit report --out audit-report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
