"""The publish stage: LHJ measure feeds and plan care-team feeds, each a ledgered disclosure.

``run`` does everything in this process: :func:`jobs.publish.prepare.prepare` once for all LHJs,
then :func:`publish_recipient` for every recipient (a failure is logged and the others still
publish; the stage then fails naming the recipients that did not). The Airflow DAG runs the same
steps as separate tasks: ``publish_prepare`` -> ``publish_recipient`` mapped over the recipients
-> ``publish_report``.

Per recipient: build the package, write it to staging, record the disclosure in the ledger (the
files' final locations and SHA-256, the members counted by data class), promote it (all or
nothing), then log it in ``gold.feed_log``. Recording before promoting means the ledger never
misses a disclosure; if the promotion then fails, a ``note`` entry says the disclosure was not
delivered. A process killed between those commits is caught up by the next publish to that
recipient (:mod:`jobs.publish.recovery`), and a retried task of a run that already delivered to
a recipient returns that delivery instead of publishing it twice.

Work tables and files of the run (``work.publish_*``, the prepare step's folder) hold PHI: they
are removed when the run ends (in this process: pass or fail; under Airflow: by the report step
once every recipient is published) and by the next run's prepare step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobs.publish import ecm_feed, feed_log, lhj_feed, lhj_tables, package, plan_feed, prepare, recovery
from jobs.publish.lhj_cube import Scope
from phmx import lakehouse
from phmx.context import RunContext, StageResult
from phmx.errors import ConfigError, PhmxError
from phmx.log import get_logger
from phmx.recipients import is_ecm_provider, is_lhj, is_plan, lhj_name, recipient_id
from privacy import signing

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)

POOL_MIN = 8  # fewer LHJs than this are built in this process (starting workers costs seconds)

__all__ = ["publish_recipient", "recipient_id", "run", "run_recipients"]


def _known_recipients(run_id: str) -> list[str] | None:
    """The recipients the prepare step of ``run_id`` found, or None when it has not run."""
    from phmx import storage

    if not storage.exists(prepare.summary_uri(run_id)):
        return None
    return run_recipients(run_id)


def run_recipients(run_id: str) -> list[str]:
    """Every recipient the prepare step of ``run_id`` found (LHJs, then plans), read from storage: no
    engine, and it never prepares (ConfigError when that run has not been prepared)."""
    return prepare.read_summary(run_id).all_recipients


def cleanup() -> None:
    """Remove the publish work tables (PHI: member rows of the consent gate)."""
    lakehouse.drop_work("publish_")


def report(run_id: str) -> dict[str, Any]:
    """What run ``run_id`` published (from gold.feed_log); PhmxError naming any recipient left out.
    When every recipient is published the run's work is removed (else kept for the retries)."""
    expected = run_recipients(run_id)
    done = {r["recipient"]: r for r in feed_log.read() if r["run_id"] == run_id}
    missing = sorted(set(expected) - set(done))
    summary = {"expected": len(expected), "published": len(set(expected) & set(done)), "missing": missing,
               "versions": {r: f"v{done[r]['version']}" for r in sorted(done)}}
    if missing:
        raise PhmxError(f"publish failed for {len(missing)} of {len(expected)} recipients: {', '.join(missing)}",
                        hint="the others were published; fix and re-run (a new version is made)")
    cleanup()
    return summary


def _deliver(spark: SparkSession, staged: package.Staged, *, recipient: str, purpose: str, run_id: str,
             members: DataFrame, rule_ids: list[str], consent_ids: list[str]) -> tuple[package.Delivered, int | None]:
    """Ledger and promote a staged package, unless its content equals the latest published version
    of its period (:func:`package.unchanged_since`): then no new version is made and nothing is
    disclosed again, and that version comes back with seq None (logged as ``unchanged``)."""
    same = package.unchanged_since(staged)
    if same is not None:
        package.discard(staged)
        log.info("%s/%s/%s unchanged since v%d: not published again", staged.recipient, staged.feed,
                 staged.period, same.version)
        return same, None
    return _record_and_promote(spark, staged, recipient=recipient, purpose=purpose, run_id=run_id, members=members,
                               rule_ids=rule_ids, consent_ids=consent_ids)


def _record_and_promote(spark: SparkSession, staged: package.Staged, *, recipient: str, purpose: str, run_id: str,
                        members: DataFrame, rule_ids: list[str], consent_ids: list[str]) -> tuple[package.Delivered, int]:
    from consent import ledger

    try:
        seq = ledger.record_disclosure(spark, recipient=recipient, purpose=purpose, run_id=run_id,
                                       files=staged.uris(), members_by_class=members, rule_ids=rule_ids,
                                       consent_ids=consent_ids, at=staged.generated_at)
    except Exception:
        package.discard(staged)
        raise
    try:
        delivered = package.promote(staged)
    except Exception:
        ledger.append([ledger.NewEntry("note", run_id, {"kind": "disclosure_not_delivered", "disclosure_seq": seq,
                                                        "recipient": recipient, "reason": "promotion failed"})])
        raise
    return delivered, seq


def _status(seq: int | None) -> str:
    """gold.feed_log's status: ``published`` (a new, ledgered version) or ``unchanged`` (none was made)."""
    return "published" if seq is not None else "unchanged"


def lhj_job(spark: SparkSession, ctx: RunContext, recipient: str, prepared: prepare.Prepared,
            publisher: signing.Publisher, decided: lhj_tables.Decided | None = None) -> lhj_feed.LhjJob:
    """One LHJ's inputs (its cells, its published measure table and the statewide rows as decided
    with every other LHJ's, its service counts), ready to build anywhere. ``decided``: from this
    process; None (an Airflow mapped task): read back from the prepare step's work folder."""
    lhj = lhj_name(recipient)
    mine, state, svc = prepare.lhj_frames(spark, prepared, lhj)
    if decided is None:
        table, method, state_published = lhj_tables.load_one(prepared.run_id, lhj)
        indicators = lhj_tables.load_indicators(prepared.run_id, lhj)
    else:
        if lhj in decided.failed:
            raise PhmxError(f"suppression of {lhj} failed: {decided.failed[lhj]}")
        table, method, state_published = decided.tables[lhj], decided.methods[lhj], decided.state
        indicators = decided.indicators_of(lhj)
    return lhj_feed.LhjJob(recipient, lhj, ctx.period.label, ctx.run_id, mine, state, svc, state_published,
                           prepared.ci_method, publisher, datetime.now(UTC), decided=(table, method),
                           indicators=indicators)


def deliver_lhj(spark: SparkSession, ctx: RunContext, prepared: prepare.Prepared, pkg: package.Package,
                cells: int, suppressed: int, signer: signing.Signer, now: datetime) -> dict[str, Any]:
    """Stage, ledger, promote and log a built LHJ package (in the process that owns the engine)."""
    recipient = pkg.recipient
    staged = package.stage(pkg, ctx.settings.publish_root, signer=signer, now=now)
    members = prepare.disclosure_members(spark, prepared.run_id, recipient)
    delivered, seq = _deliver(
        spark, staged, recipient=recipient, purpose=lhj_feed.PURPOSE, run_id=ctx.run_id, members=members,
        rule_ids=prepared.rules.get(recipient) or list(lhj_feed.RULE_IDS),
        consent_ids=prepared.consents.get(recipient, []))
    n_members = prepared.members.get(recipient, 0)
    feed_log.record(delivered, run_id=ctx.run_id, ledger_seq=seq, cells=cells, suppressed=suppressed,
                    members=n_members, status=_status(seq))
    return {"recipient": recipient, "feed": lhj_feed.FEED, "version": delivered.version, "uri": delivered.uri,
            "ledger_seq": seq, "cells": cells, "suppressed_cells": suppressed, "members": n_members}


def _resume(ctx: RunContext, recipient: str, feed: str | None = None) -> dict[str, Any] | None:
    """Finish what a crashed publish to ``recipient`` left (:func:`recovery.reconcile`); this run's
    delivery to it (of ``feed``) if one was already made (then nothing is published again)."""
    recovery.reconcile(ctx.settings.publish_root, recipient)
    return recovery.already_published(recipient, ctx.run_id, feed)


def publish_lhj(spark: SparkSession, ctx: RunContext, recipient: str, prepared: prepare.Prepared,
                decided: lhj_tables.Decided | None = None) -> dict[str, Any]:
    done = _resume(ctx, recipient)
    if done is not None:
        return done
    signer = signing.get_signer(signing.PUBLISH, ctx.settings)
    job = lhj_job(spark, ctx, recipient, prepared, signer.publisher(), decided)
    pkg, cells, suppressed = lhj_feed.build_job(job)
    return deliver_lhj(spark, ctx, prepared, pkg, cells, suppressed, signer, job.generated_at)


def publish_lhjs(spark: SparkSession, ctx: RunContext, prepared: prepare.Prepared, recipients: list[str],
                 decided: lhj_tables.Decided | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Every LHJ of the run: packages built in worker processes (the suppression audit is CPU-bound
    Python), then staged, ledgered and delivered one by one here. Returns (done, failed).

    ``decided``: every LHJ's table and the statewide rows (:func:`jobs.publish.lhj_tables.decide`);
    decided here, over all of ``prepared``'s LHJs, when not given."""
    done: list[dict[str, Any]] = []
    failed: list[str] = []
    workers = lhj_tables.pool_size()
    if decided is None:
        decided = lhj_tables.decide(spark, prepared, workers=workers, pool_min=POOL_MIN)
    if workers <= 1 or len(recipients) < POOL_MIN or not lhj_tables.may_start_workers():
        # publish_lhj resumes each recipient itself
        for r in recipients:
            try:
                done.append(publish_lhj(spark, ctx, r, prepared, decided))
            except Exception as exc:  # noqa: BLE001 - one recipient's failure must not stop the others
                _failed(r, exc, failed)
        return done, failed
    signer = signing.get_signer(signing.PUBLISH, ctx.settings)
    jobs = {}
    for r in recipients:
        try:
            resumed = _resume(ctx, r)
            if resumed is not None:
                done.append(resumed)
                continue
            jobs[r] = lhj_job(spark, ctx, r, prepared, signer.publisher(), decided)
        except Exception as exc:  # noqa: BLE001
            _failed(r, exc, failed)
    with lhj_tables.worker_pool(workers) as pool:
        futures = {r: pool.submit(lhj_feed.build_job, job) for r, job in jobs.items()}
        for r, fut in futures.items():
            try:
                pkg, cells, suppressed = fut.result()
                done.append(deliver_lhj(spark, ctx, prepared, pkg, cells, suppressed, signer, jobs[r].generated_at))
            except Exception as exc:  # noqa: BLE001
                _failed(r, exc, failed)
    return done, failed


def _failed(recipient: str, exc: Exception, failed: list[str]) -> None:
    log.error("publish to %s failed: %s", recipient, exc if isinstance(exc, PhmxError) else type(exc).__name__)
    failed.append(recipient)


def publish_plan(spark: SparkSession, ctx: RunContext, recipient: str) -> dict[str, Any]:
    from pyspark.sql import functions as F

    resumed = _resume(ctx, recipient, plan_feed.FEED)
    if resumed is not None:
        return resumed
    rows = plan_feed.permitted(spark, recipient, Scope(ctx.period), ctx.started_at, ctx.run_id)
    signer = signing.get_signer(signing.PUBLISH, ctx.settings)
    now = datetime.now(UTC)
    pkg, counts = plan_feed.build(spark, recipient=recipient, period=ctx.period.label, run_id=ctx.run_id, rows=rows,
                                  generated_at=now, root=ctx.settings.publish_root)
    staged = package.stage(pkg, ctx.settings.publish_root, signer=signer, now=now)
    members = rows.members.select("member_id", "data_class", "rule_ids", "consent_ids")
    # Both id lists in one engine action (one Spark job on the JVM, not two).
    ids = (members.select(F.lit("rule").alias("kind"), F.explode("rule_ids").alias("id"))
           .unionByName(members.select(F.lit("consent").alias("kind"), F.explode("consent_ids").alias("id")))
           .distinct().collect())
    rules = sorted({r["id"] for r in ids if r["kind"] == "rule" and r["id"]})
    consents = sorted({r["id"] for r in ids if r["kind"] == "consent" and r["id"]})
    delivered, seq = _deliver(spark, staged, recipient=recipient, purpose=plan_feed.PURPOSE,
                                         run_id=ctx.run_id, members=members, rule_ids=rules, consent_ids=consents)
    feed_log.record(delivered, run_id=ctx.run_id, ledger_seq=seq, members=rows.attributed, status=_status(seq))
    return {"recipient": recipient, "feed": plan_feed.FEED, "version": delivered.version, "uri": delivered.uri,
            "ledger_seq": seq, "resources": counts, "members": rows.attributed}


def publish_ecm(spark: SparkSession, ctx: RunContext, recipient: str) -> dict[str, Any]:
    """An ECM provider's package (its assigned members, consent-gated) or a plan's ECM oversight
    package, delivered like every feed: staged, signed, ledgered, promoted, logged."""
    from pyspark.sql import functions as F

    resumed = _resume(ctx, recipient, ecm_feed.FEED)
    if resumed is not None:
        return resumed
    rows = ecm_feed.permitted(spark, recipient, ctx.period, ctx.started_at)
    signer = signing.get_signer(signing.PUBLISH, ctx.settings)
    now = datetime.now(UTC)
    pkg = ecm_feed.build(spark, recipient=recipient, period=ctx.period.label, run_id=ctx.run_id, rows=rows)
    staged = package.stage(pkg, ctx.settings.publish_root, signer=signer, now=now)
    members = rows.members
    rules = sorted({r[0] for r in members.select(F.explode("rule_ids")).distinct().collect() if r[0]})
    consents = sorted({r[0] for r in members.select(F.explode("consent_ids")).distinct().collect() if r[0]})
    delivered, seq = _deliver(spark, staged, recipient=recipient, purpose=ecm_feed.PURPOSE,
                                         run_id=ctx.run_id, members=members, rule_ids=rules, consent_ids=consents)
    feed_log.record(delivered, run_id=ctx.run_id, ledger_seq=seq, members=rows.roster, status=_status(seq))
    return {"recipient": recipient, "feed": ecm_feed.FEED, "version": delivered.version, "uri": delivered.uri,
            "ledger_seq": seq, "members": rows.roster}


def publish_recipient(spark: SparkSession, ctx: RunContext, recipient: str,
                      prepared: prepare.Prepared | None = None) -> dict[str, Any]:
    """Build, stage, ledger and deliver one recipient's feed (an Airflow mapped task calls this).

    A plan that assigns members to ECM gets its ECM oversight package too (``ecm_uri``)."""
    if is_lhj(recipient):
        return publish_lhj(spark, ctx, recipient, prepared or prepare.load(spark, ctx.run_id))
    if is_plan(recipient):
        out = publish_plan(spark, ctx, recipient)
        if recipient in ecm_feed.recipients(spark):
            out["ecm_uri"] = publish_ecm(spark, ctx, recipient)["uri"]
        return out
    if is_ecm_provider(recipient):
        return publish_ecm(spark, ctx, recipient)
    raise ConfigError(f"no feed is defined for recipient {recipient!r}",
                      hint="recipients are lhj_*, mcp_* or ecm_*")


def run(spark: SparkSession, ctx: RunContext, *, step: str | None = None, recipient: str | None = None) -> StageResult:
    """Publish every LHJ feed and every plan feed of the period (or one step of that, for Airflow).

    ``step="prepare"``: only the once-for-all work (the DAG's ``publish_prepare``);
    ``recipient=<id>``: only that recipient's feed, from the prepared work (a mapped task);
    neither: everything, in this process.
    """
    if step is not None and step != "prepare":
        raise ConfigError(f"unknown publish step {step!r}", hint="use step=prepare, or recipient=<id>")
    if step == "prepare":
        lakehouse.drop_work("publish_")  # what an earlier run left (a crash, or failed recipients)
        prepared = prepare.prepare(spark, ctx)
        workers = lhj_tables.pool_size()
        with lhj_tables.shared_workers(workers):
            lhj_tables.decide(spark, prepared, workers=workers, pool_min=POOL_MIN)
        lakehouse.protect(prepare.work_uri(ctx.run_id))
        return StageResult("publish", {"lhj_recipients": len(prepared.recipients), "plans": len(prepared.plans)},
                           {"recipients": prepared.all_recipients})
    if recipient is not None:
        from jobs.entry import check_params

        check_params(recipient=recipient)
        known = _known_recipients(ctx.run_id)
        if known is not None and recipient not in known:
            raise ConfigError(f"recipient {recipient!r} is not one the prepare step of this run found",
                              hint="run step=prepare first; recipients are listed in its result")
        out = publish_recipient(spark, ctx, recipient)
        figures = {k: v for k, v in out.items() if isinstance(v, int | float | str)}
        return StageResult("publish", figures, {"recipient": recipient, "uri": out["uri"]})
    lakehouse.drop_work("publish_")
    try:
        prepared = prepare.prepare(spark, ctx)
        # one worker pool for the LHJs' suppression, their indicators' and their packages
        workers = lhj_tables.pool_size()
        with lhj_tables.shared_workers(workers):
            decided = lhj_tables.decide(spark, prepared, workers=workers, pool_min=POOL_MIN)
            lakehouse.protect(prepare.work_uri(ctx.run_id))
            todo = prepared.all_recipients + [r for r in prepared.ecm if is_plan(r)]
            done, failed = publish_lhjs(spark, ctx, prepared, prepared.recipients, decided)
        for r in prepared.plans:
            try:
                done.append(publish_plan(spark, ctx, r))
            except Exception as exc:  # noqa: BLE001 - one recipient's failure must not stop the others
                _failed(r, exc, failed)
        for r in prepared.ecm:
            try:
                done.append(publish_ecm(spark, ctx, r))
            except Exception as exc:  # noqa: BLE001
                _failed(r, exc, failed)
    finally:
        cleanup()
    counts: dict[str, int | float | str] = {
        "lhj_feeds": sum(1 for d in done if is_lhj(d["recipient"])),
        "plan_feeds": sum(1 for d in done if is_plan(d["recipient"]) and d["feed"] != ecm_feed.FEED),
        "ecm_packages": sum(1 for d in done if d["feed"] == ecm_feed.FEED),
        "cells": sum(int(d.get("cells", 0)) for d in done),
        "suppressed_cells": sum(int(d.get("suppressed_cells", 0)) for d in done),
        "failed": len(failed),
    }
    result = StageResult("publish", counts, {"paths": {d["recipient"]: d["uri"] for d in done}, "failed": failed})
    if failed:
        raise PhmxError(f"publish failed for {len(failed)} of {len(todo)} recipients: {', '.join(failed)}",
                        hint="the others were published; see the log, fix, and re-run (a new version is made)")
    log.info("published %d LHJ feeds and %d plan feeds", counts["lhj_feeds"], counts["plan_feeds"])
    return result
