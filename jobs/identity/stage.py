"""The identity stage: silver.person -> gold.member_xwalk, gold.member and the identity tables.

Modes (``PHMX_IDENTITY_MODE`` or ``ctx.settings.extra["identity_mode"]``):

* ``full`` (default): standardise everything, block and score all candidate pairs, train the model (EM),
  cluster, keep member ids stable against the previous crosswalk.
* ``incremental``: score only pairs with at least one new or changed record, with the stored
  model; unchanged records stay with their members (forced edges), new records join them
  or form new members, and may merge members when the evidence says so (guards still apply).
* ``auto``: incremental when a model and a crosswalk exist and at most
  ``INCREMENTAL_MAX_SHARE`` of the records are new or changed; otherwise full.

``full`` is the default (``phmx.settings``): incremental clusters can differ from a full run's,
and a hub run month by month must end with a rebuild's members (docs/scaling.md, month by month).

Reviewer decisions (gold.review_decisions) are honoured in both modes.

Encryption at rest: this is the one stage that decrypts ``silver.person``'s direct identifiers
(only the columns standardisation needs), and it writes ``gold.member``'s cin and names as
ciphertexts (:func:`privacy.crypto.encrypt_for_write`; a member whose identifiers did not change
keeps its stored ciphertexts). The plaintext lives only in the engine and in this run's scratch
tables (``work.identity_*``), which are deleted when the run ends, pass or fail; only
``work.identity_tf`` (record id and name frequencies, for ``explain``) is kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from jobs.identity import config, golden, ids, index, linkage, model_store, review, standardise
from jobs.identity.comparisons import pattern_string
from jobs.identity.standardise import PERSON_FIELDS
from phmx import lakehouse, tables
from phmx import settings as settings_mod
from phmx.context import RunContext, StageResult
from phmx.errors import ConfigError
from phmx.log import get_logger
from phmx.tables import IDENTITY_EVENTS, IDENTITY_RECORDS, LINK_PAIRS, REVIEW_QUEUE
from privacy.crypto import FINGERPRINT_COLUMN, decrypt_for_read, decryption_errors, encrypt_for_write
from privacy.keys import get_provider

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = get_logger(__name__)

INCREMENTAL_MAX_SHARE = 0.2
MODES = ("auto", "full", "incremental")


@dataclass
class Scope:
    """What an incremental run on the index re-linked, so that it writes only what changed.

    ``old_xwalk``: the previous crosswalk's rows of the members it re-linked (every member holding
    a new record's candidate, a reviewed record or a withdrawn record; their records are all in
    the run's clusters). ``gone``: source, source_person_id of the records withdrawn from
    silver.person since the last run; ``changed_keys``: those and the new and changed records. ``index_rows`` and ``state_rows``: the gold.identity_index
    and gold.identity_records rows of the new and changed records. ``idx``: rid, source,
    source_person_id of every record.
    """

    old_xwalk: DataFrame
    gone: DataFrame
    changed_keys: DataFrame
    index_rows: DataFrame
    golden_members: DataFrame
    state_rows: DataFrame
    idx: DataFrame


def _mode(ctx: RunContext) -> str:
    mode = str(ctx.settings.extra.get("identity_mode") or settings_mod.load().identity_mode)
    if mode not in MODES:
        raise ConfigError(f"identity mode {mode!r} is not one of {MODES}", hint="set PHMX_IDENTITY_MODE")
    return mode


#: Scratch tables kept after a run (no identifiers: record ids and name frequencies), as work.identity_<name>.
KEPT_SCRATCH = ("tf",)


def decrypted_columns(settings: config.IdentitySettings) -> tuple[str, ...]:
    """silver.person columns the stage decrypts: the person fields standardisation and
    survivorship read, and the columns of the declared identifiers."""
    wanted = set(PERSON_FIELDS) | {i.column for i in settings.identifiers}
    return tuple(c for c in tables.PERSON.encrypted if c in wanted)


def stage_settings(path: str | None = None) -> config.IdentitySettings:
    """The identity settings as the stage uses them: comparisons and blocking rules on fields
    silver.person does not have (aliases, mother's maiden name) would only ever compare
    nulls, so they are left out (``explain`` uses the same, to match the stored model)."""
    s = config.load(path)
    return s.restricted_to(standardise.available_features(set(tables.PERSON.column_names), s))


def run(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Link ``silver.person`` into members and write the gold identity tables."""
    scratch = lakehouse.Scratch(spark, "identity", persist=KEPT_SCRATCH)
    try:
        with decryption_errors():
            return _run(spark, ctx, scratch)
    finally:
        scratch.drop()


def read_person(spark: SparkSession, ctx: RunContext, settings: config.IdentitySettings,
                only: DataFrame | None = None) -> DataFrame:
    """``silver.person`` with the identifiers the stage needs decrypted (lazily, in the engine);
    ``only``: just the rows with these (source, source_person_id), filtered before decrypting."""
    person = lakehouse.read(spark, tables.PERSON)
    if only is not None:
        person = person.join(only.select("source", "source_person_id"), ["source", "source_person_id"], "left_semi")
    decrypted = decrypted_columns(settings)
    keep = [c for c in person.columns if c not in tables.PERSON.encrypted or c in decrypted]
    return decrypt_for_read(person.select(*keep), tables.PERSON.fqn, get_provider(ctx.settings))


def _needed(settings: config.IdentitySettings) -> list[str]:
    """silver.person columns the stage reads."""
    return list(dict.fromkeys(["source", "source_person_id", *PERSON_FIELDS,
                               *[i.column for i in settings.identifiers], "race", "ethnicity"]))


def _run(spark: SparkSession, ctx: RunContext, scratch: lakehouse.Scratch) -> StageResult:
    t0 = time.perf_counter()
    settings = stage_settings(ctx.settings.extra.get("identity_settings"))
    mode = _mode(ctx)
    if mode != "full" and model_store.load(ctx.run_id) is None:
        stored = model_store.load()
        if stored is not None and index.usable(spark, ctx.run_id):
            result = _run_indexed(spark, ctx, scratch, settings, mode, stored, t0)
            if result is not None:
                return result
    # Decrypted once into scratch (deleted after the run): standardisation and survivorship
    # both read it, and decryption is the costly part of reading silver.person.
    steps = linkage.StepTimes()
    with linkage.timed("decrypt", steps):
        person = read_person(spark, ctx, settings)
        needed = _needed(settings)
        person = scratch.put(person.select(*[c for c in needed if c in person.columns]), "person")
    with linkage.timed("standardise", steps):
        std = linkage.prepare(person, scratch, settings)
        n_records = std.count()
    if n_records == 0:
        for t in (tables.MEMBER_XWALK, tables.MEMBER, LINK_PAIRS, REVIEW_QUEUE, IDENTITY_EVENTS, IDENTITY_RECORDS):
            lakehouse.ensure(spark, t)
        return StageResult(stage="identity", counts={"records": 0, "members": 0, "mode": mode})
    _check_unique_rids(std, n_records)
    from pyspark.sql import functions as F

    # The state this run started from, not what an interrupted attempt of the same run id left:
    # a re-run after a crash (or a retry) must give what the first attempt would have given.
    old_xwalk = before_run(spark, tables.MEMBER_XWALK, ctx.run_id)
    events = lakehouse.read(spark, IDENTITY_EVENTS).where(~F.col("run_id").eqNullSafe(F.lit(ctx.run_id)))
    if model_store.load(ctx.run_id) is not None:
        mode = "full"  # an earlier attempt of this run trained a model: it was a full run
    stored = model_store.load() if mode != "full" else None
    incremental, n_new, std = _incremental_plan(spark, mode, stored, std, scratch, n_records, ctx.run_id)

    phases = {"standardise": round(time.perf_counter() - t0, 2)}
    t1 = time.perf_counter()
    forced_parts = []
    if incremental:
        assert stored is not None
        scored = linkage.score(spark, std, settings, scratch, model=stored, new_col="is_new")
        forced_parts.append(_membership_edges(std, old_xwalk))
    else:
        scored = linkage.score(spark, std, settings, scratch)
        scored.model.meta["run_id"] = ctx.run_id  # what auto mode measures the records it has not seen by
        model_store.save(scored.model, ctx.run_id)
    accepted, rejected = review.decisions_for(spark, std)
    forced_parts.append(accepted)
    forced = pd.concat(forced_parts, ignore_index=True)
    phases["block_compare_train"] = round(time.perf_counter() - t1, 2)
    steps.merge(scored.counts.get("step_seconds", {}))
    t1 = time.perf_counter()
    links = linkage.link(spark, scored, settings, forced=forced, cannot=rejected)
    clusters = linkage.cluster_frame(spark, std, links.labels)
    phases["cluster"] = round(time.perf_counter() - t1, 2)
    tf_cols = [c for c in std.columns if c.startswith("tf_")]
    index_rows = _full_index_rows(spark, ctx, std, settings, incremental=incremental)
    return _finish(spark, ctx, scratch, settings, t0, phases, scored=scored, links=links, clusters=clusters,
                   old_xwalk=old_xwalk, events=events, incremental=incremental, n_records=n_records, n_new=n_new,
                   golden_input=lambda records: _golden_input(person, std, records),
                   tf=std.select("rid", *tf_cols),
                   state=std.select("source", "source_person_id", "rid", "fingerprint"),
                   index_rows=index_rows, route="standardise_all", steps=steps)


def _finish(spark: SparkSession, ctx: RunContext, scratch: lakehouse.Scratch, settings: config.IdentitySettings,
            t0: float, phases: dict[str, float], *, scored: linkage.Scored, links: linkage.Links, clusters: DataFrame,
            old_xwalk: DataFrame, events: DataFrame, incremental: bool, n_records: int, n_new: int,
            golden_input: Callable[[DataFrame], DataFrame], tf: DataFrame, state: DataFrame | None,
            index_rows: DataFrame | None, route: str, scope: Scope | None = None,
            steps: linkage.StepTimes | None = None) -> StageResult:
    """Member ids and every write, in an order a re-run repairs: the crosswalk first, the
    encrypted index last, then the versions both were left at (an incremental run uses the
    index only with the crosswalk of the same finished run, see :func:`jobs.identity.index.usable`).

    With a ``scope`` (an incremental run on the index) ``clusters`` holds only the re-linked
    records, and every table gets only its changed rows (:func:`phmx.lakehouse.apply_changes`):
    the crosswalk rows whose member or link changed, gold.member's rows of the members the run
    re-linked (and of members whose county fallback moved), the index and identity records of
    the new and changed records; withdrawn records and the ids no record holds any more are
    deleted. Without one, the tables are rewritten whole.
    """
    from pyspark.sql import functions as F

    t1 = time.perf_counter()
    steps = linkage.StepTimes() if steps is None else steps
    with linkage.timed("member_ids", steps):
        assignment = ids.assign(clusters, scope.old_xwalk if scope is not None else old_xwalk, events,
                                run_id=ctx.run_id, at=ctx.started_at, put=scratch.put,
                                issued=old_xwalk if scope is not None else None)
        records = scratch.put(assignment.records, "assigned")
    with linkage.timed("link_pairs_rows", steps):
        pairs = _pairs_table(spark, scored, links, records, settings, ctx)
        pairs = scratch.put(pairs, "link_pairs")

    with linkage.timed("member_xwalk", steps):
        xwalk = _xwalk(pairs, records, scope.old_xwalk if scope is not None else old_xwalk, settings, ctx,
                       incremental=incremental)
        if scope is None:
            lakehouse.overwrite(lakehouse.conform_to(xwalk, tables.MEMBER_XWALK), tables.MEMBER_XWALK)
        else:
            lakehouse.apply_changes(spark, _changed_xwalk(xwalk, scope.old_xwalk), tables.MEMBER_XWALK,
                                    gone=scope.gone)
    with linkage.timed("link_pairs and review_queue", steps):
        queue = _queue(spark, pairs, settings, ctx)
        if incremental:
            # A pair scored again below the review band leaves both tables: its earlier row
            # would still say "linked" (or ask a reviewer) about what no longer holds.
            # So does every earlier pair of a changed or withdrawn record (its comparison is of
            # the old version), unless this run scored the pair again.
            dropped = _dropped_pairs(scored, links, records)
            if scope is not None:
                old_pairs = lakehouse.read(spark, LINK_PAIRS)
                for side in ("l", "r"):
                    k = scope.changed_keys.select(F.col("source").alias(f"source_{side}"),
                                                  F.col("source_person_id").alias(f"source_person_id_{side}"))
                    dropped = dropped.unionByName(old_pairs.join(k, [f"source_{side}", f"source_person_id_{side}"],
                                                                 "left_semi").select("pair_id"))
            dropped = scratch.put(dropped.distinct().join(pairs.select("pair_id"), "pair_id", "left_anti"),
                                  "dropped_pairs")
            lakehouse.apply_changes(spark, pairs.select(*LINK_PAIRS.column_names), LINK_PAIRS, gone=dropped)
            lakehouse.apply_changes(spark, queue, REVIEW_QUEUE, gone=dropped)
        else:
            lakehouse.overwrite(lakehouse.conform_to(pairs, LINK_PAIRS), LINK_PAIRS)
            lakehouse.overwrite(lakehouse.conform_to(queue, REVIEW_QUEUE), REVIEW_QUEUE)
    with linkage.timed("identity_events", steps):
        lakehouse.merge(spark, assignment.events, IDENTITY_EVENTS)
    with linkage.timed("member", steps):
        if scope is None:
            g_in = scratch.put(golden_input(records), "golden_input")
            members = golden.build(spark, g_in, settings, ctx.run_id)
            members = scratch.put(_protect_members(spark, lakehouse.conform_to(members, tables.MEMBER), ctx),
                                  "member_encrypted")
            lakehouse.overwrite(members, tables.MEMBER, schema=FINGERPRINT_COLUMN not in _stored_columns(spark))
        else:
            _write_members_scoped(spark, ctx, scratch, settings, records, scope, old_xwalk, golden_input)
    with linkage.timed("tf", steps):
        scratch.put(tf, "tf")
    with linkage.timed("identity_records", steps):
        if scope is None:
            assert state is not None
            st = state.select("source", "source_person_id", "rid", "fingerprint", F.lit(ctx.run_id).alias("run_id"))
            lakehouse.overwrite(lakehouse.conform_to(st, IDENTITY_RECORDS), IDENTITY_RECORDS)
        else:
            lakehouse.apply_changes(spark, scope.state_rows.withColumn("run_id", F.lit(ctx.run_id)),
                                    IDENTITY_RECORDS, gone=scope.gone)
    with linkage.timed("identity_index", steps):
        if scope is not None:
            lakehouse.apply_changes(spark, scope.index_rows, index.INDEX, gone=scope.gone)
        elif index_rows is not None:
            lakehouse.overwrite(lakehouse.conform_to(index_rows, index.INDEX), index.INDEX)
        if lakehouse.exists(index.INDEX) and (scope is not None or index_rows is not None):
            index.record_written(ctx.run_id)

    phases["ids_and_writes"] = round(time.perf_counter() - t1, 2)
    ev_counts = {r["event_type"]: int(r["count"]) for r in
                 lakehouse.read(spark, IDENTITY_EVENTS).where(F.col("run_id") == ctx.run_id)
                 .groupBy("event_type").count().collect()}
    counts: dict[str, Any] = {
        "mode": "incremental" if incremental else "full",
        "records": n_records,
        "new_or_changed_records": n_new,
        "members": lakehouse.read(spark, tables.MEMBER).count(),
        "candidate_pairs": scored.counts.get("candidate_pairs", 0),
        "link_edges": links.stats.get("link_edges", 0),
        "review_items": lakehouse.read(spark, REVIEW_QUEUE).where(F.col("status") == "open").count(),
        "guard_refused_edges": links.stats.get("refused_edges", 0) + links.stats.get("edge_guarded", 0),
        "members_new": ev_counts.get("new", 0),
        "merges": ev_counts.get("merge", 0),
        "splits": ev_counts.get("split", 0),
        "retired": ev_counts.get("retire", 0),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    details: dict[str, object] = {"model": {"prior": scored.model.prior, "em_runs": scored.model.meta.get("em_runs")},
               "cluster": links.stats, "phase_seconds": phases, "step_seconds": dict(steps),
               "step_cpu_seconds": steps.cpu, "route": route}
    log.info("identity %s run: %s records -> %s members (%s merges, %s splits, %s to review)",
             counts["mode"], n_records, counts["members"], counts["merges"], counts["splits"], counts["review_items"])
    return StageResult(stage="identity", counts=counts, details=details)


def _source_fps(spark: SparkSession, settings: config.IdentitySettings) -> DataFrame | None:
    """(source, source_person_id, source_fp) of every silver.person row, read without
    decrypting; None when silver.person carries no ``pii_fingerprint`` (then no index)."""
    if not lakehouse.exists(tables.PERSON):
        return None
    raw = lakehouse.read(spark, tables.PERSON)
    if FINGERPRINT_COLUMN not in raw.columns:
        return None
    return raw.select("source", "source_person_id", index.source_fp(raw, tuple(_needed(settings))).alias("source_fp"))


def _full_index_rows(spark: SparkSession, ctx: RunContext, std: DataFrame, settings: config.IdentitySettings, *,
                     incremental: bool) -> DataFrame | None:
    """The encrypted index of every record (a run that standardised them all)."""
    fps = _source_fps(spark, settings)
    if fps is None:
        return None
    provider = get_provider(ctx.settings)
    previous = before_run(spark, index.INDEX, ctx.run_id) if lakehouse.exists(index.INDEX) else None
    return index.rows(std, fps, settings, provider, digest=index.settings_digest(settings, provider),
                      run_id=ctx.run_id, previous=previous)


def _run_indexed(spark: SparkSession, ctx: RunContext, scratch: lakehouse.Scratch, settings: config.IdentitySettings,
                 mode: str, stored: Any, t0: float) -> StageResult | None:
    """An incremental run on the encrypted index: decrypt and standardise only the new and
    changed silver.person rows, block on the index's keyed keys, decrypt the features of the
    records sharing a block or a member with them, score with the stored model and cluster
    those records alone (every other member stays as it is). None: run in full instead (too
    many changes in ``auto`` mode, or nothing to link)."""
    from pyspark.sql import functions as F

    from jobs.identity import blocking

    keys = ["source", "source_person_id"]
    steps = linkage.StepTimes()
    with linkage.timed("changes", steps):
        fps = _source_fps(spark, settings)
        if fps is None:
            return None
        provider = get_provider(ctx.settings)
        digest = index.settings_digest(settings, provider)
        prev = before_run(spark, index.INDEX, ctx.run_id)
        old = prev.select(*keys, F.col("source_fp").alias("_old_fp"), F.col("digest").alias("_old_digest"))
        changed = F.col("_old_fp").isNull() | (index.link_part(F.col("_old_fp")) != index.link_part(F.col("source_fp"))) \
            | (F.col("_old_digest") != F.lit(digest))
        # Only a field survivorship reads changed: the record stays linked as it is.
        golden_only = ~changed & (F.col("_old_fp") != F.col("source_fp"))
        flags = scratch.put(fps.join(old, keys, "left").select(*keys, "source_fp", changed.alias("is_new"),
                                                               golden_only.alias("golden_only")), "flags")
        n_records = flags.count()
        n_new = flags.where(F.col("is_new")).count()
    if n_records == 0 or (mode == "auto" and n_new + _unseen_by_model(prev, stored, n_records)
                          > INCREMENTAL_MAX_SHARE * n_records):
        return None

    with linkage.timed("standardise_new", steps):
        # The new and changed rows only: decrypted, standardised, indexed.
        new_keys = flags.where(F.col("is_new")).select(*keys)
        person = read_person(spark, ctx, settings, only=new_keys)
        person = scratch.put(person.select(*[c for c in _needed(settings) if c in person.columns]), "person")
        std_new = scratch.put(standardise.standardise(person, settings), "std_new")
        schema = index.feature_schema(std_new)
        new_rows = scratch.put(index.rows(std_new, flags, settings, provider, digest=digest, run_id=ctx.run_id),
                               "index_new")
    with linkage.timed("index_keys", steps):
        # Every record's key and name keys (no blocking keys, no ciphertext: the features of the
        # few records to re-link are read from the stored index below).
        cols = index.INDEX.column_names
        plain: list[Column | str] = ["rid", *keys, "tf_keys"]
        unchanged = flags.where(~F.col("is_new")).select(*keys)
        kept = prev.join(unchanged, keys, "left_semi")
        idx = scratch.put(kept.select(*plain, F.lit(False).alias("is_new"))
                          .unionByName(new_rows.select(*plain, F.lit(True).alias("is_new"))), "index_next")
        _check_unique_rids(idx, n_records)
    phases = {"standardise": round(time.perf_counter() - t0, 2)}

    t1 = time.perf_counter()
    with linkage.timed("blocking", steps):
        # Blocking reads only the records that share a keyed blocking key with a new record
        # (every holder of such a key, so block sizes and the skip rule are a full run's).
        blocks = _sharing_blocks(prev, idx, new_rows, scratch)
        blocked, stats = blocking.candidate_pairs(blocks, index.keyed_settings(settings), new_col="is_new",
                                                  with_stats=True, long=True)
        pairs = scratch.put(blocked, "pairs")
    with linkage.timed("relinked_records", steps):
        # The records to re-link: those in a candidate pair, the new ones, those a reviewer decided
        # on, and every record of their current members (member-level guards weigh them all) and of
        # the members that lost a withdrawn record.
        old_xwalk = before_run(spark, tables.MEMBER_XWALK, ctx.run_id)
        events = lakehouse.read(spark, IDENTITY_EVENTS).where(~F.col("run_id").eqNullSafe(F.lit(ctx.run_id)))
        dec = lakehouse.read(spark, review.REVIEW_DECISIONS)
        decided = dec.select(F.col("source_l").alias("source"), F.col("source_person_id_l").alias("source_person_id")) \
            .unionByName(dec.select(F.col("source_r").alias("source"),
                                    F.col("source_person_id_r").alias("source_person_id")))
        seed = pairs.select(F.col("rid_l").alias("rid")).unionByName(pairs.select(F.col("rid_r").alias("rid"))) \
            .unionByName(idx.where(F.col("is_new")).select("rid")) \
            .unionByName(idx.join(decided, keys, "left_semi").select("rid"))
        xw = old_xwalk.select(*keys, "member_id")
        gone = scratch.put(prev.select(*keys).unionByName(xw.select(*keys)).distinct()
                           .join(flags.select(*keys), keys, "left_anti"), "gone")
        seed_members = scratch.put(
            idx.join(seed, "rid", "left_semi").select(*keys).join(xw, keys).select("member_id")
            .unionByName(xw.join(gone, keys, "left_semi").select("member_id")).distinct(), "touched_members")
        touched = scratch.put(seed.unionByName(idx.join(xw.join(seed_members, "member_id", "left_semi"), keys,
                                                        "left_semi").select("rid")).distinct(), "touched")
    with linkage.timed("relinked_features", steps):
        old_touched = idx.where(~F.col("is_new")).join(touched, "rid", "left_semi").select("rid")
        std_old = index.features(prev.join(old_touched, "rid", "left_semi"), schema, provider)
        feats = ["rid", "source", "source_person_id", "fingerprint", *index.feature_columns(std_new)]
        tf = scratch.put(index.term_frequencies(idx, settings), "tf_all")
        std = std_new.select(*feats).unionByName(std_old.select(*feats)) \
            .join(tf, "rid", "left").join(idx.select("rid", "is_new"), "rid")
        std = scratch.put(std, "std")
    with linkage.timed("score", steps):
        scored = linkage.score(spark, std, settings, scratch, model=stored, new_col="is_new", pairs=(pairs, stats))
        accepted, rejected = review.decisions_for(spark, std)
        forced = pd.concat([_membership_edges(std, old_xwalk), accepted], ignore_index=True)
    phases["block_compare_train"] = round(time.perf_counter() - t1, 2)

    t1 = time.perf_counter()
    links = linkage.link(spark, scored, settings, forced=forced, cannot=rejected)
    # Only the re-linked records get clusters (and then ids): every record of a member no new
    # record touched stays in it, as it is, without being read again.
    clusters = linkage.cluster_frame(spark, std, links.labels)
    phases["cluster"] = round(time.perf_counter() - t1, 2)
    # Records whose survivorship fields alone changed: their index rows take the new source_fp
    # (features, ciphertext and the run id of the run that last linked them as they are) and
    # their members' golden records are rebuilt.
    golden_keys = flags.where(F.col("golden_only")).select(*keys, F.col("source_fp").alias("_fp"))
    golden_rows = prev.join(golden_keys, keys).withColumn("source_fp", F.col("_fp")).select(*cols)
    scope = Scope(old_xwalk=scratch.put(old_xwalk.join(seed_members, "member_id", "left_semi"), "old_touched"),
                  gone=gone, changed_keys=new_keys.unionByName(gone),
                  index_rows=new_rows.select(*cols).unionByName(golden_rows),
                  golden_members=xw.join(golden_keys.select(*keys), keys, "left_semi").select("member_id").distinct(),
                  state_rows=std_new.select(*keys, "rid", "fingerprint"), idx=idx.select("rid", *keys))
    return _finish(spark, ctx, scratch, settings, t0, phases, scored=scored, links=links, clusters=clusters,
                   old_xwalk=old_xwalk, events=events, incremental=True, n_records=n_records, n_new=n_new,
                   golden_input=lambda records: _golden_input_plain(spark, ctx, settings, records),
                   tf=tf, state=None, index_rows=None, route="index", scope=scope, steps=steps)


def _sharing_blocks(prev: DataFrame, idx: DataFrame, new_rows: DataFrame, scratch: lakehouse.Scratch) -> DataFrame:
    """``rid, rule, key, is_new``: for each blocking rule, the new records' keyed keys and the
    unchanged records (``idx`` rows with ``is_new`` false) holding one of those keys, one row per
    record and rule: the blocks a new record is in, each with every record in it (so block sizes
    and the skip rule are a full run's). One pass over the stored keys (``prev``'s ``bk``,
    exploded and semi-joined with the new records' few keys); only the matching rows are kept, so
    what blocking then reads grows with the new records' blocks, not with the index, and a record
    holding one shared key is not carried into the other rules."""
    from pyspark.sql import functions as F

    def long(frame: DataFrame) -> DataFrame:
        return frame.select("rid", F.posexplode("bk").alias("rule", "key")).where(F.col("key").isNotNull())

    new_long = scratch.put(long(new_rows), "new_block_keys")
    new_keys = new_long.select("rule", "key").distinct()
    # Broadcast the new keys (a month's, a few hundred thousand) rather than shuffle every stored key.
    old = long(prev).join(F.broadcast(new_keys) if new_long.count() < 1_000_000 else new_keys, ["rule", "key"],
                          "left_semi") \
        .join(idx.where(~F.col("is_new")).select("rid"), "rid", "left_semi")
    return scratch.put(old.withColumn("is_new", F.lit(False))
                       .unionByName(new_long.withColumn("is_new", F.lit(True))), "block_keys")


def _dropped_pairs(scored: linkage.Scored, links: linkage.Links, records: DataFrame) -> DataFrame:
    """``pair_id`` of the pairs this run scored and does not keep (below the review band)."""
    from pyspark.sql import functions as F

    r = records.select("rid", "source", "source_person_id")
    d = scored.gammas.select("rid_l", "rid_r").join(links.kept_pairs.select("rid_l", "rid_r"), ["rid_l", "rid_r"],
                                                    "left_anti")
    d = d.join(r.select(F.col("rid").alias("rid_l"), F.col("source").alias("sl"), F.col("source_person_id").alias("pl")),
               "rid_l").join(r.select(F.col("rid").alias("rid_r"), F.col("source").alias("sr"),
                                      F.col("source_person_id").alias("pr")), "rid_r")
    return d.select(review.pair_id_column(F.col("sl"), F.col("pl"), F.col("sr"), F.col("pr")).alias("pair_id"))


def _unseen_by_model(prev: DataFrame, stored: Any, n_records: int) -> int:
    """Records linked since the stored model was trained (index rows a later run re-linked; by
    the growth in records for a model that does not name its run). ``auto`` runs in full once
    these and the run's new records pass ``INCREMENTAL_MAX_SHARE``: the model (its m and u, and
    what it learnt never happens among matches) was trained on a population that has since
    moved on, and a full run retrains it."""
    from pyspark.sql import functions as F

    trained = stored.meta.get("run_id")
    if trained:
        return int(prev.where(~F.col("run_id").eqNullSafe(F.lit(trained))).count())
    return max(0, n_records - int(stored.meta.get("records") or n_records))


def _changed_xwalk(xwalk: DataFrame, old: DataFrame) -> DataFrame:
    """The crosswalk rows whose member, link method or probability differ from ``old``'s (or are new)."""
    from pyspark.sql import functions as F

    o = old.select("source", "source_person_id", F.col("member_id").alias("_m"), F.col("link_method").alias("_lm"),
                   F.col("link_probability").alias("_lp"))
    same = F.col("member_id").eqNullSafe(F.col("_m")) & F.col("link_method").eqNullSafe(F.col("_lm")) \
        & F.col("link_probability").eqNullSafe(F.col("_lp"))
    return xwalk.join(o, ["source", "source_person_id"], "left").where(F.col("_m").isNull() | ~same) \
        .drop("_m", "_lm", "_lp")


def _write_members_scoped(spark: SparkSession, ctx: RunContext, scratch: lakehouse.Scratch,
                          settings: config.IdentitySettings, records: DataFrame, scope: Scope, old_xwalk: DataFrame,
                          golden_input: Callable[[DataFrame], DataFrame]) -> None:
    """gold.member rows of the members an incremental run re-linked, merged; the ids none of its
    clusters holds any more (merged into another, or left without records) deleted.

    Survivorship reads only those members' records, except the county fallback (the county most
    records with the member's ZIP carry), which counts every record as a full run does, from
    silver.person's plaintext ZIP and county. A member the run did not re-link whose county came
    from that fallback and whose ZIP's county moved is rebuilt too, and so is a member one of
    whose records changed only in a field survivorship alone reads (``scope.golden_members``),
    so gold.member stays what a full run over the same members gives.
    """
    from pyspark.sql import functions as F

    keys = ["source", "source_person_id"]
    person = lakehouse.read(spark, tables.PERSON)
    zc = scratch.put(golden.zip_counties(person.select(standardise.zip5(F.col("zip")).alias("zip5"), "county_fips")),
                     "zip_county")
    new_ids = records.select("member_id").distinct()
    stored = lakehouse.read(spark, tables.MEMBER).select("member_id", "zip", "county_fips")
    cand = stored.where(F.col("zip").isNotNull()).join(new_ids, "member_id", "left_anti") \
        .join(zc, F.col("zip") == F.col("zip5"), "left") \
        .where(~F.col("county_fips").eqNullSafe(F.col("_zip_county"))).select("member_id")
    cand_rows = old_xwalk.join(cand, "member_id", "left_semi").select(*keys, "member_id")
    moved = cand_rows.join(person.select(*keys, "county_fips"), keys).groupBy("member_id") \
        .agg(F.max(F.col("county_fips").isNotNull().cast("int")).alias("_has")) \
        .where(F.col("_has") == 0).select("member_id")
    rebuilt = moved.unionByName(scope.golden_members).distinct() \
        .join(scope.old_xwalk.select("member_id").distinct(), "member_id", "left_anti")
    extra = old_xwalk.select(*keys, "member_id").join(rebuilt, "member_id", "left_semi").join(scope.idx, keys)
    g_records = scratch.put(records.select("rid", *keys, "member_id")
                            .unionByName(extra.select("rid", *keys, "member_id")), "golden_records")
    g_in = scratch.put(golden_input(g_records), "golden_input")
    members = golden.build(spark, g_in, settings, ctx.run_id, zip_county=zc)
    written = g_records.select("member_id").distinct()
    members = scratch.put(_protect_members(spark, lakehouse.conform_to(members, tables.MEMBER), ctx, only=written),
                          "member_encrypted")
    gone_ids = scope.old_xwalk.select("member_id").distinct().join(new_ids, "member_id", "left_anti")
    lakehouse.apply_changes(spark, members, tables.MEMBER, gone=gone_ids)


def _golden_input_plain(spark: SparkSession, ctx: RunContext, settings: config.IdentitySettings,
                        records: DataFrame) -> DataFrame:
    """:func:`_golden_input` for a run that did not standardise every record: the few fields
    survivorship reads, from silver.person (decrypting only the names and the CIN), standardised
    by the same functions as :func:`jobs.identity.standardise.standardise`."""
    from pyspark.sql import functions as F

    cin = next((i for i in settings.identifiers if i.name == "cin"), None)
    raw = lakehouse.read(spark, tables.PERSON).join(records.select("source", "source_person_id"),
                                                     ["source", "source_person_id"], "left_semi")
    want = ["source", "source_person_id", "given_name", "family_name", "birth_date", "sex", "zip", "county_fips",
            "record_date", "race", "ethnicity", *([cin.column] if cin else [])]
    person = decrypt_for_read(raw.select(*[c for c in dict.fromkeys(want) if c in raw.columns]), tables.PERSON.fqn,
                              get_provider(ctx.settings))

    def col(name: str) -> Any:
        return F.col(name) if name in person.columns else F.lit(None).cast("string")

    src = F.col("source").cast("string")
    feats = person.select(
        "source", "source_person_id",
        (standardise.identifier(col(cin.column).cast("string"), cin, src) if cin else F.lit(None).cast("string"))
        .alias("cin"),
        standardise.birth_date(col("birth_date").cast("date")).alias("birth_date"),
        standardise.sex(col("sex")).alias("sex"), standardise.zip5(col("zip")).alias("zip5"),
        col("county_fips").alias("county_fips"), col("record_date").cast("date").alias("record_date"),
        F.trim(col("given_name")).alias("given_name_raw"), F.trim(col("family_name")).alias("family_name_raw"),
        col("race").alias("race"), col("ethnicity").alias("ethnicity"))
    return records.select("rid", "source", "source_person_id", "member_id").join(feats, ["source", "source_person_id"])


def _stored_columns(spark: SparkSession) -> list[str]:
    return lakehouse.read(spark, tables.MEMBER).columns if lakehouse.exists(tables.MEMBER) else []


def _protect_members(spark: SparkSession, members: DataFrame, ctx: RunContext,
                     only: DataFrame | None = None) -> DataFrame:
    """gold.member rows with cin and names encrypted; unchanged members keep their ciphertexts.
    ``only`` (member_id): the members being written, when they are not all."""
    previous = lakehouse.read(spark, tables.MEMBER) if lakehouse.exists(tables.MEMBER) else None
    if previous is not None and only is not None:
        previous = previous.join(only, "member_id", "left_semi")
    return encrypt_for_write(members, tables.MEMBER.fqn, get_provider(ctx.settings), keys=tables.MEMBER.keys,
                             previous=previous)


def _check_unique_rids(std: DataFrame, n: int) -> None:
    distinct = std.select("rid").distinct().count()
    if distinct != n:
        from phmx.errors import EngineError

        raise EngineError(f"identity: {n - distinct} record keys collide (duplicate source keys or a hash "
                          "collision); silver.person must have one row per (source, source_person_id)",
                          stage="identity", table="silver.person")


def before_run(spark: SparkSession, table: tables.Table, run_id: str) -> DataFrame:
    """``table`` (every row tagged with the ``run_id`` of the identity run that last wrote it) as it
    stood before run ``run_id`` first wrote it: the newest Delta version without that run id.

    An identity run killed between its writes (say after gold.member_xwalk, before
    gold.identity_events) and re-run would otherwise read its own crosswalk as the previous one,
    keep every id it had just minted and never log their ``new`` events. Reading the earlier
    version (time travel) makes the re-run compute what the interrupted attempt would have.
    """
    if not lakehouse.exists(table):
        return lakehouse.read(spark, table)
    # Pinned to a version, not read lazily by path: the stage overwrites the table before some
    # of what it computes from the previous one is evaluated (the retire events would otherwise
    # be worked out against this run's own crosswalk and retire every member it created).
    v = version_before_run(spark, table, run_id)
    if v is None:
        return spark.createDataFrame([], table.ddl)
    return lakehouse.read(spark, table, version=v)


def version_before_run(spark: SparkSession, table: tables.Table, run_id: str) -> int | None:
    """The newest Delta version of ``table`` holding no row of run ``run_id`` (see
    :func:`before_run`); None when the table does not exist or every version holds one."""
    if not lakehouse.exists(table):
        return None
    latest = lakehouse.version(table)
    for v in range(latest, -1, -1):
        if not _has_run(lakehouse.read(spark, table, version=v), run_id):
            return v
    return None


def _has_run(df: DataFrame, run_id: str) -> bool:
    from pyspark.sql import functions as F

    return bool(df.where(F.col("run_id") == F.lit(run_id)).limit(1).count())


def _incremental_plan(spark: SparkSession, mode: str, stored: Any, std: DataFrame, scratch: lakehouse.Scratch,
                      n_records: int, run_id: str) -> tuple[bool, int, DataFrame]:
    """Decide full vs incremental; in incremental mode add ``is_new`` to the features."""
    from pyspark.sql import functions as F

    if mode == "full" or stored is None or not lakehouse.exists(tables.MEMBER_XWALK):
        if mode == "incremental":
            log.warning("identity: incremental run requested but no model or crosswalk yet; running full")
        return False, n_records, std
    prev = before_run(spark, IDENTITY_RECORDS, run_id).select("rid", F.col("fingerprint").alias("_old_fp"))
    flags = std.select("rid", "fingerprint").join(prev, "rid", "left").select(
        "rid", (F.col("_old_fp").isNull() | (F.col("_old_fp") != F.col("fingerprint"))).alias("is_new"))
    n_new = flags.where(F.col("is_new")).count()
    # Without the index, the records the model has not seen are counted by the growth since it
    # was trained (every row of gold.identity_records carries the last run's id).
    unseen = max(0, n_records - int(stored.meta.get("records") or n_records))
    if mode == "auto" and n_new + unseen > INCREMENTAL_MAX_SHARE * n_records:
        return False, n_records, std
    flagged = scratch.put(std.join(flags, "rid"), "std_flagged")
    return True, n_new, flagged


def _membership_edges(std: DataFrame, old_xwalk: DataFrame) -> pd.DataFrame:
    """Forced edges keeping unchanged records with their current members (a star per member)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    old = std.where(~F.col("is_new")).select("rid", "source", "source_person_id") \
        .join(old_xwalk.select("source", "source_person_id", "member_id"), ["source", "source_person_id"])
    anchor = old.withColumn("anchor", F.min("rid").over(Window.partitionBy("member_id")))
    return anchor.where(F.col("rid") != F.col("anchor")).select(
        F.least("rid", "anchor").alias("rid_l"), F.greatest("rid", "anchor").alias("rid_r")).toPandas()


def _pairs_table(spark: SparkSession, scored: linkage.Scored, links: linkage.Links, records: DataFrame,
                 settings: config.IdentitySettings, ctx: RunContext) -> DataFrame:
    """gold.link_pairs rows: scored pairs at or above the review threshold, with a decision."""
    from pyspark.sql import functions as F

    from jobs.identity.blocking import rule_name_column

    reasons = pd.concat([
        links.guarded.rename(columns={"guard": "reason"})[["rid_l", "rid_r", "reason"]].assign(
            reason=lambda d: "edge_guard:" + d["reason"]),
        links.refused[["rid_l", "rid_r", "reason"]].assign(reason=lambda d: "cluster_guard:" + d["reason"]),
    ], ignore_index=True).drop_duplicates(["rid_l", "rid_r"])
    reasons = reasons.astype({"rid_l": "int64", "rid_r": "int64", "reason": "object"})
    reason_df = spark.createDataFrame(reasons, "rid_l bigint, rid_r bigint, reason string")
    r = records.select("rid", "source", "source_person_id", "member_id")
    left = r.select(F.col("rid").alias("rid_l"), F.col("source").alias("source_l"),
                    F.col("source_person_id").alias("source_person_id_l"), F.col("member_id").alias("member_l"))
    right = r.select(F.col("rid").alias("rid_r"), F.col("source").alias("source_r"),
                     F.col("source_person_id").alias("source_person_id_r"), F.col("member_id").alias("member_r"))
    p = links.kept_pairs.join(left, "rid_l").join(right, "rid_r").join(reason_df, ["rid_l", "rid_r"], "left")
    p = p.withColumn("decision", F.when(F.col("member_l") == F.col("member_r"), F.lit("linked"))
                     .when(F.col("reason").isNotNull()
                           & (F.col("match_probability") >= F.lit(settings.link_probability)), F.lit("guard_refused"))
                     .otherwise(F.lit("review")))
    p = p.withColumn("reason", F.when((F.col("decision") == "review") & F.col("reason").isNull(),
                                      F.lit("probability_band")).otherwise(F.col("reason")))
    # A guarded identifier present on both sides and different, none agreeing: the pair is two
    # people unless a reviewer has reason to think otherwise (the queue leaves such band pairs out).
    conflict, agree = F.lit(False), F.lit(False)
    for name, gammas in settings.gammas("any_identifier", ["else"]):
        if name in settings.guarded_identifiers:
            conflict = conflict | F.col(f"g_{name}").isin(gammas)
    for name, gammas in settings.gammas("any_identifier", ["exact", "one_typo", "transposition"]):
        agree = agree | F.col(f"g_{name}").isin(gammas)
    p = p.withColumn("identifier_conflict", conflict & ~agree)
    return p.select(
        review.pair_id_column(F.col("source_l"), F.col("source_person_id_l"), F.col("source_r"),
                              F.col("source_person_id_r")).alias("pair_id"),
        "source_l", "source_person_id_l", "source_r", "source_person_id_r", "match_weight", "match_probability",
        "decision", "reason", pattern_string(settings).alias("gamma"), rule_name_column(settings).alias("blocking_rule"),
        F.lit(ctx.run_id).alias("run_id"), F.lit(ctx.started_at).cast("timestamp").alias("scored_at"),
        "rid_l", "rid_r", "member_l", "member_r", "identifier_conflict")


def _xwalk(pairs: DataFrame, records: DataFrame, old_xwalk: DataFrame, settings: config.IdentitySettings,
           ctx: RunContext, *, incremental: bool) -> DataFrame:
    """gold.member_xwalk: each record's member, how it was linked and the best link probability."""
    from pyspark.sql import functions as F

    linked = pairs.where(F.col("decision") == "linked")
    best = linked.select(F.col("rid_l").alias("rid"), "match_probability").unionByName(
        linked.select(F.col("rid_r").alias("rid"), "match_probability")) \
        .groupBy("rid").agg(F.max("match_probability").alias("p"))
    sizes = records.groupBy("member_id").agg(F.count(F.lit(1)).alias("_size"))
    x = records.join(best, "rid", "left").join(sizes, "member_id")
    method = F.when(F.col("_size") == 1, F.lit("singleton")) \
        .when(F.col("p").isNotNull(), F.lit("probabilistic")).otherwise(F.lit("review_accept"))
    prob = F.when(F.col("_size") == 1, F.lit(1.0)).otherwise(F.coalesce(F.col("p"), F.lit(1.0)))
    x = x.select("source", "source_person_id", "member_id", method.alias("link_method"), prob.alias("link_probability"))
    if incremental:
        # Unchanged records that were linked before and have no fresh pair keep their method.
        old = old_xwalk.select("source", "source_person_id", F.col("link_method").alias("_om"),
                               F.col("link_probability").alias("_op"))
        x = x.join(old, ["source", "source_person_id"], "left").select(
            "source", "source_person_id", "member_id",
            F.when((F.col("link_method") == "review_accept") & F.col("_om").isNotNull(), F.col("_om"))
            .otherwise(F.col("link_method")).alias("link_method"),
            F.when((F.col("link_method") == "review_accept") & F.col("_op").isNotNull(), F.col("_op"))
            .otherwise(F.col("link_probability")).alias("link_probability"))
    return x.select("*", F.lit(ctx.run_id).alias("run_id"), F.lit(ctx.started_at).cast("timestamp").alias("linked_at"))


def _queue(spark: SparkSession, pairs: DataFrame, settings: config.IdentitySettings, ctx: RunContext) -> DataFrame:
    """Open review items: pairs left in different members that a reviewer should look at, one
    per pair of members. Decided without asking (kept apart, recorded in gold.link_pairs): edge
    guards marked ``review: false`` (household members, twins), cluster conflicts not listed
    in ``guards.review_cluster_conflicts``, and review-band pairs whose numbers conflict."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    silent = [f"edge_guard:{g.name}" for g in settings.edge_guards if not g.review]
    # A guard that keeps its pair apart also refuses the bridges through third records: the
    # guarded pair itself is the question a reviewer answers (or none, for a silent guard).
    silent += [f"cluster_guard:{g.name}" for g in settings.edge_guards if g.apart]
    if settings.review_cluster_conflicts is not None:
        # Cluster-guard refusals decided without asking (two records of a one-per-member roster,
        # two CINs): guards.review_cluster_conflicts lists the ones a reviewer is asked about.
        asked = set(settings.review_cluster_conflicts)
        silent += [f"cluster_guard:{c}" for c in ("birth_date", "given_name", "same_source", "reviewer_rejected",
                                                  *(i.name for i in settings.identifiers)) if c not in asked]
    q = pairs.where(F.col("decision").isin("review", "guard_refused"))
    if silent:
        q = q.where(~F.col("reason").isin(silent))
    # A band pair whose numbers conflict (both present, different, none agreeing) is two people.
    q = q.where(~((F.col("reason") == "probability_band") & F.col("identifier_conflict")))
    # One item per pair of members: a reviewer decides whether two members are one person,
    # and the other record pairs between the same two members ask the same question. The
    # strongest pair stands for them (its evidence is the best case for accepting).
    lo, hi = F.least("member_l", "member_r"), F.greatest("member_l", "member_r")
    rank = Window.partitionBy(lo, hi).orderBy(F.col("match_probability").desc(), F.col("pair_id"))
    q = q.withColumn("_rank", F.row_number().over(rank)).where(F.col("_rank") == 1)
    q = q.select(
        "pair_id", "source_l", "source_person_id_l", "source_r", "source_person_id_r", "match_weight", "match_probability",
        "gamma", "reason", F.lit("open").alias("status"), F.lit(ctx.run_id).alias("run_id"),
        F.lit(ctx.started_at).cast("timestamp").alias("queued_at"))
    decided = lakehouse.read(spark, review.REVIEW_DECISIONS).select("pair_id")
    return q.join(decided, "pair_id", "left_anti").select(*REVIEW_QUEUE.column_names)


def _golden_input(person: DataFrame, std: DataFrame, records: DataFrame) -> DataFrame:
    """Records with their member id, standardised features and the raw fields survivorship uses."""
    from pyspark.sql import functions as F

    raw = person.select("source", "source_person_id", F.trim("given_name").alias("given_name_raw"),
                        F.trim("family_name").alias("family_name_raw"), "race", "ethnicity")
    feats = std.select("rid", "cin", "birth_date", "sex", "zip5", "county_fips", "record_date")
    return records.select("rid", "source", "source_person_id", "member_id").join(feats, "rid") \
        .join(raw, ["source", "source_person_id"], "left")
