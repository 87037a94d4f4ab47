"""Conform: bronze -> silver canonical tables, driven by each feed spec's ``targets:``.

For every bronze table and every target the spec names, select (or aggregate) the target's
columns with the spec's Spark SQL expressions, keep the latest version of each key, attach
security labels, and MERGE into the silver table. Rows of a superseded submission disappear
because a (silver table, source) with a replaced or withdrawn submission is refreshed from bronze
as a whole; a source that only added submissions is refreshed for the keys they touch.

Adding a county's variant of a feed needs no code: a spec with ``bronze_table`` pointing at the
shared bronze table lands in the same place and is conformed by the base spec's targets.

A target whose contract lists columns ``encrypted`` at rest (silver.person's direct
identifiers) is written through :func:`privacy.crypto.encrypt_for_write`: the identifiers are
AES-256-GCM ciphertexts before the MERGE, and a row whose keyed ``pii_fingerprint`` is
unchanged keeps its stored ciphertexts, so conforming the same bronze again changes nothing.
A table written in plaintext by an older release is encrypted in place on the first run
(docs/encryption-at-rest.md: vacuum its old versions afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from phmx import lakehouse
from phmx.context import RunContext, StageResult
from phmx.errors import SpecError
from phmx.feedspec import FeedSpec, all_specs
from phmx.log import get_logger
from phmx.tables import ALL, Table
from privacy.crypto import FINGERPRINT_COLUMN, encrypt_for_write
from privacy.keys import get_provider

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = get_logger(__name__)

SILVER = {t.name: t for t in ALL if t.layer == "silver"}
_LINEAGE_COLS = ("submission_id", "period", "row_number")


def base_specs() -> dict[str, FeedSpec]:
    """The spec holding the targets of each bronze table (the one whose feed names the table)."""
    out: dict[str, FeedSpec] = {}
    for spec in all_specs().values():
        if spec.targets and spec.bronze_table == spec.feed:
            out[spec.bronze_table] = spec
    return out


def build_target(bronze: DataFrame, spec: FeedSpec, target: str, mapping: dict[str, Any]) -> DataFrame:
    """One silver target from one bronze table, as the spec's expressions say."""
    return finish_target(target_rows(bronze, spec, target, mapping), spec, target, mapping)


def target_rows(bronze: DataFrame, spec: FeedSpec, target: str, mapping: dict[str, Any]) -> DataFrame:
    """The first half of :func:`build_target`: bronze rows filtered (``where``) and mapped to the
    target's columns, or aggregated per group (``group_by``), each with its key; every version of
    a key still there (``having`` and the latest version are :func:`finish_target`'s). Without a
    window among the expressions a silver row depends only on the rows of its key here, which is
    what lets a month's conform recompute only the keys its new submissions touch
    (:func:`touched_target`)."""
    from pyspark.sql import functions as F

    if target not in SILVER:
        raise SpecError(f"{spec.path}: targets.{target}: not a silver table ({', '.join(sorted(SILVER))})")
    table = SILVER[target]
    columns: dict[str, str] = {k: str(v) for k, v in (mapping.get("columns") or {}).items()}
    unknown = set(columns) - set(table.column_names)
    if unknown:
        raise SpecError(f"{spec.path}: targets.{target}.columns: unknown column(s) {sorted(unknown)}")
    source_expr = str(mapping.get("source", "submitter"))
    carry = [str(c) for c in mapping.get("carry_forward") or []]
    if set(carry) - set(columns):
        raise SpecError(f"{spec.path}: targets.{target}.carry_forward: column(s) the target does not map "
                        f"{sorted(set(carry) - set(columns))}")
    if carry and mapping.get("group_by"):
        raise SpecError(f"{spec.path}: targets.{target}: carry_forward and group_by cannot be combined")
    df = bronze
    if mapping.get("where"):
        df = df.where(F.expr(str(mapping["where"])))
    if mapping.get("group_by"):
        keys = ["submitter", *mapping["group_by"]]
        aggs = [F.expr(e).alias(c) for c, e in columns.items()]
        aggs += [F.max("submission_id").alias("submission_id"), F.max("period").alias("period"),
                 F.min("row_number").alias("row_number")]
        df = df.groupBy(*keys).agg(*aggs).withColumn("source", F.expr(source_expr))
    else:
        sel = [F.expr(e).alias(c) for c, e in columns.items()]
        sel += [F.col(c) for c in _LINEAGE_COLS if c not in columns]
        sel.append(F.expr(source_expr).alias("source"))
        df = df.select(*sel)
    # A key column the spec does not map (a contract that gained one, e.g. coverage_type for feeds
    # without insurance lines) is null for every row, as conform_to would make it, not a failure.
    types = dict(table.columns)
    for k in table.keys:
        if k not in df.columns:
            df = df.withColumn(k, F.lit(None).cast(types[k]))
    return df


def finish_target(df: DataFrame, spec: FeedSpec, target: str, mapping: dict[str, Any]) -> DataFrame:
    """The second half of :func:`build_target`: one row per key from :func:`target_rows`' rows
    (the latest version, gaps carried forward, address history, ``having``), labelled."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    table = SILVER[target]
    carry = [str(c) for c in mapping.get("carry_forward") or []]
    if carry:
        # One row per key already (the latest version, its gaps filled from earlier versions).
        df = latest_carrying_forward(df, table, carry)
        if mapping.get("having"):
            df = df.where(F.expr(str(mapping["having"])))
        return _finish(df, spec, table)
    if mapping.get("having"):  # a predicate on the target's columns (e.g. a span whose start is known)
        df = df.where(F.expr(str(mapping["having"])))
    # Keep the latest version of every key (later period, then later row) so resends converge.
    df = with_address_history(df, table)
    w = Window.partitionBy(*table.keys).orderBy(F.col("period").desc(), F.col("row_number").desc())
    df = df.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")
    return _finish(df, spec, table)


def _identifiers(expr: str) -> set[str]:
    """The column names a Spark SQL expression reads (words not called as functions, literals aside)."""
    import re

    bare = re.sub(r"'(?:[^'\\]|\\.)*'", "''", expr)
    return {m.group(1) for m in re.finditer(r"`?\b([A-Za-z_]\w*)\b`?(?!\s*\()", bare)}


def key_follows_group(mapping: dict[str, Any], table: Table) -> bool:
    """Whether a ``group_by`` target's key is made of its group's columns: every key column (and
    the source) an expression of the group's columns only, and every group column in the key. Then
    one group gives one key and no other, so a month's conform may recompute only the groups its
    new rows fall in (:func:`touched_target`); a spec whose key is read otherwise (an aggregate of
    other columns) is conformed whole, per source."""
    group = {"submitter", *[str(g) for g in mapping["group_by"]]}
    columns: dict[str, str] = {k: str(v) for k, v in (mapping.get("columns") or {}).items()}
    exprs = {k: columns.get(k, k) for k in table.keys if k != "source"}
    exprs["source"] = str(mapping.get("source", "submitter"))
    read = [_identifiers(e) for e in exprs.values()]
    return all(r <= group for r in read) and group <= set().union(*read)


def touched_target(bronze: DataFrame, new: DataFrame, spec: FeedSpec, target: str,
                   mapping: dict[str, Any]) -> tuple[DataFrame, DataFrame] | None:
    """The target's rows for the keys the bronze rows ``new`` touch, and those keys (the silver
    key columns, in the table's types); None when the target cannot be recomputed by key.

    ``bronze`` holds every row of the sources concerned (earlier months included): a key's silver
    row is computed from all of its versions there, as :func:`build_target` computes it, so the
    rows equal a whole conform's for those keys, and every other key's row is what it was (its
    bronze rows did not change). The keys are taken before ``having`` and the latest version: a
    key the new rows make fail ``having`` is among them, and so is deleted from silver.

    A target whose expressions use a window (``OVER``: enrollment's coverage, a termination taking
    its span's start from the earlier records of the member, plan and coverage type) maps a row
    from other rows, so a new row's key cannot be read from the new rows alone: None.
    """
    import re

    from pyspark.sql import functions as F

    table = SILVER[target]
    exprs = [str(v) for v in (mapping.get("columns") or {}).values()]
    exprs += [str(mapping.get(k) or "") for k in ("source", "where", "having")]
    if any(re.search(r"\bOVER\s*\(", e, re.IGNORECASE) for e in exprs):
        return None
    types = dict(table.columns)
    if mapping.get("group_by"):
        if not key_follows_group(mapping, table):
            return None
        group = ["submitter", *[str(g) for g in mapping["group_by"]]]
        mine = new.where(F.expr(str(mapping["where"]))) if mapping.get("where") else new
        rows = target_rows(lakehouse.with_keys(bronze, mine.select(*group).distinct(), group), spec, target, mapping)
        raw = rows.select(*table.keys)
    else:
        raw = target_rows(new, spec, target, mapping).select(*table.keys).distinct()
        rows = lakehouse.with_keys(target_rows(bronze, spec, target, mapping), raw, table.keys)
    keys = raw.select(*[F.col(k).cast(types[k]).alias(k) for k in table.keys]).distinct()
    return finish_target(rows, spec, target, mapping), keys


def _finish(df: DataFrame, spec: FeedSpec, table: Table) -> DataFrame:
    """The target's security labels and sensitivity (when it has them), in the contract's shape."""
    if "security_labels" in table.column_names:
        from consent.labels import label_expr, sensitivity_expr

        dx = "diagnosis_codes" if "diagnosis_codes" in df.columns else None
        df = df.withColumn("security_labels", label_expr(dx, list(spec.labels)))
        df = df.withColumn("sensitivity", sensitivity_expr("security_labels"))
    return lakehouse.conform_to(df, table)


def latest_carrying_forward(df: DataFrame, table: Table, carry: list[str]) -> DataFrame:
    """The latest version of each key (later period, then later row), each ``carry`` column that
    version leaves empty taken from the key's latest earlier version that has it.

    What a spec's ``carry_forward:`` asks for (X12 834 maintenance: a change record sends only what
    changed, a termination no demographics; the member keeps what the earlier records said). It
    equals ``coalesce(c, last(c, true) OVER (PARTITION BY key ORDER BY period, row_number ROWS
    BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))`` on the latest row, computed with one group-by:
    each key's versions as one sorted array, every column read from it. The window form cost the
    embedded engine a pass per column (about 60% of conform's time on the enrollment feed, one
    window per demographic). ``address_history`` (when the target has it) is every address line
    of every version, from the same group-by.
    """
    from pyspark.sql import functions as F

    keys = list(table.keys)
    others = [c for c in df.columns if c not in keys and c not in ("period", "row_number")]
    versions = F.array_sort(F.collect_list(F.struct("period", "row_number", *others))).alias("_v")
    aggs = [versions]
    history = ADDRESS_HISTORY in table.column_names and "address_line" in df.columns \
        and ADDRESS_HISTORY not in df.columns
    if history:
        line = F.trim(F.col("address_line"))
        aggs.append(F.array_sort(F.collect_set(F.when(line != "", line))).alias("_h"))
    grouped = df.groupBy(*keys).agg(*aggs)
    latest = F.element_at(F.col("_v"), -1)

    def col(c: str) -> Column:
        if c in carry:  # the last non-null value in version order (the latest's own when it has one)
            return F.expr(f"try_element_at(filter(transform(_v, x -> x.`{c}`), y -> y IS NOT NULL), -1)").alias(c)
        return latest.getField(c).alias(c)

    out = [*[F.col(k) for k in keys], latest.getField("period").alias("period"),
           latest.getField("row_number").alias("row_number"), *[col(c) for c in others]]
    if history:
        out.append(F.when(F.size("_h") > 0, F.array_join("_h", "\n")).alias(ADDRESS_HISTORY))
    return grouped.select(*out)


#: A target column holding every address line any version of the key carried (see PERSON's doc).
ADDRESS_HISTORY = "address_history"


def with_address_history(df: DataFrame, table: Table) -> DataFrame:
    """Add ``address_history`` (every distinct address line of all versions of each key, sorted,
    newline-separated) when the target has that column and the spec maps ``address_line``.

    Keeping only the latest version of a person loses where they lived before: a registry that
    still has the old address then looks like someone else. Identity compares these lines
    (jobs/identity: the ``lived_at`` location level and the ``lookalike_elsewhere`` guard).
    The column is encrypted at rest like the address line itself.
    """
    from pyspark.sql import functions as F

    if ADDRESS_HISTORY not in table.column_names or "address_line" not in df.columns or ADDRESS_HISTORY in df.columns:
        return df
    line = F.trim(F.col("address_line"))
    hist = (df.where(line.isNotNull() & (line != "")).groupBy(*table.keys)
            .agg(F.array_join(F.array_sort(F.collect_set(line)), "\n").alias(ADDRESS_HISTORY)))
    return df.join(hist, list(table.keys), "left")


def target_sources(bronze: DataFrame, mapping: dict[str, Any], ledger: DataFrame | None = None) -> list[str]:
    """The sources a target is refreshed for: every source present in bronze, not only those with
    rows in the target. A sparse target (a social observation) whose rows all disappear from a
    source's replacement submission must lose them in silver too, not keep the superseded ones.

    ``ledger`` (the accepted submissions of this bronze table's feeds, lineage columns only) adds the
    sources that sent a file but now have no row in bronze at all: a header-only file withdrew their
    period, and silver must lose those rows too. A source expression over non-lineage columns cannot
    be read from the ledger; such targets are refreshed for the sources in bronze only.
    """
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    expr = F.expr(str(mapping.get("source", "submitter")))
    ours = bronze.select(expr.alias("source"))
    rows = None
    if ledger is not None:
        # One action for both (one job on JVM Spark, not two). A JVM session analyses the
        # ledger's select at once, Spark Connect only at collect: both failures mean the same.
        try:
            rows = ours.unionByName(ledger.select(expr.alias("source"))).distinct().collect()
        except PySparkException:  # the expression names a column the ledger has not got
            rows = None
    if rows is None:
        rows = ours.distinct().collect()
    return sorted({r[0] for r in rows if r[0] is not None})


def withdrawn_sources_ledger(spark: SparkSession, bronze_table: str) -> DataFrame | None:
    """Lineage columns of the accepted submissions of every feed writing ``bronze.<bronze_table>``."""
    from phmx.tables import SUBMISSIONS

    if not lakehouse.exists(SUBMISSIONS):
        return None
    feeds = sorted(s.feed for s in all_specs().values() if s.bronze_table == bronze_table)
    in_feeds = ", ".join(lakehouse.sql_literal(f) for f in feeds)
    return (lakehouse.read(spark, SUBMISSIONS)
            .where(f"feed IN ({in_feeds}) AND status IN ('accepted', 'accepted_with_errors')")
            .select("submission_id", "submitter", "feed", "period", "source_file", "source_file_sha256"))


def source_submissions(bronze: DataFrame, expr: str, ledger: DataFrame | None = None) -> dict[str, list[str]]:
    """Each source's inputs: its submissions (bronze rows and the ledger's accepted ones, a
    header-only file included) with how many bronze rows each holds, as sorted
    ``<submission id>:<rows>`` lines.

    Why: a source whose lines are those the last conform saw has nothing new (no new, replaced or
    withdrawn submission), so its silver rows are left as they are; a monthly run conforms only
    the sources that sent something. A source that kept every earlier line and gained some only
    added submissions (no row of its bronze went away), so only the keys of the added ones are
    conformed (:func:`touched_target`). One engine action per bronze table and source expression.
    """
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    source = F.expr(expr).alias("source")
    counted = bronze.groupBy(source, F.col("submission_id")).agg(F.count(F.lit(1)).alias("n"))
    rows = None
    if ledger is not None:
        try:
            rows = counted.unionByName(ledger.select(source, "submission_id", F.lit(0).cast("bigint").alias("n"))) \
                .groupBy("source", "submission_id").agg(F.max("n").alias("n")).collect()
        except PySparkException:  # the expression names a column the ledger has not got
            rows = None
    if rows is None:
        rows = counted.collect()
    lines: dict[str, list[str]] = {}
    for r in rows:
        if r["source"] is not None:
            lines.setdefault(r["source"], []).append(f"{r['submission_id']}:{r['n']}")
    return {s: sorted(v) for s, v in lines.items()}


def added_submissions(before: list[str] | None, now: list[str]) -> list[str] | None:
    """The submission ids a source added since ``before`` (its lines at the last conform), when it
    only added some: every earlier submission still there with the same rows. None otherwise (a
    replaced, withdrawn or recounted submission, or no earlier lines): the source is conformed whole."""
    if before is None or not set(before) <= set(now):
        return None
    return sorted(line.rsplit(":", 1)[0] for line in set(now) - set(before))


def _state_uri(bronze_table: str) -> str:
    from phmx import settings as settings_mod
    from phmx import storage

    return storage.join(settings_mod.load().lakehouse_root, "silver", "_conform_state", f"{bronze_table}.json")


def _spec_digest(spec: FeedSpec) -> str:
    """The targets' expressions and the silver contracts they write: a change re-conforms every source."""
    import hashlib
    import json

    doc = {t: {"mapping": m, "columns": SILVER[t].column_names if t in SILVER else None}
           for t, m in sorted(spec.targets.items())}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def conformed_state(bronze_table: str) -> dict[str, Any]:
    """What the last conform of ``bronze.<bronze_table>`` saw ({} before the first, or when forced)."""
    import json

    from phmx import settings as settings_mod
    from phmx import storage

    uri = _state_uri(bronze_table)
    if settings_mod.load().conform_full or not storage.exists(uri):
        return {}
    state = dict(json.loads(storage.read_bytes(uri)))
    # The state speaks for the silver tables only as they were when it was written: a table restored
    # to an older version, or written by anything else since, makes every source conform again.
    for fqn, seen in dict(state.get("silver", {})).items():
        if not lakehouse.delta_exists(fqn) or lakehouse.version(fqn) != seen:
            log.info("conform: %s changed since the last conform of bronze.%s; conforming every source",
                     fqn, bronze_table)
            return {}
    return state


def _save_state(bronze_table: str, state: dict[str, Any]) -> None:
    import json

    from phmx import storage

    storage.write_text(_state_uri(bronze_table), json.dumps(state, sort_keys=True), content_type="application/json")


def protect(spark: SparkSession, df: DataFrame, table: Table, ctx: RunContext) -> DataFrame:
    """``df`` ready to MERGE into ``table``: its ``encrypted`` columns as ciphertexts (reusing the
    stored ones for unchanged rows). Tables without encrypted columns pass through."""
    if not table.encrypted:
        return df
    provider = get_provider(ctx.settings)
    previous = None
    if lakehouse.exists(table):
        previous = lakehouse.read(spark, table)
        if FINGERPRINT_COLUMN not in previous.columns:
            previous = _encrypt_legacy(spark, table, previous, ctx)
    return encrypt_for_write(df, table.fqn, provider, keys=table.keys, previous=previous)


def _encrypt_legacy(spark: SparkSession, table: Table, stored: DataFrame, ctx: RunContext) -> DataFrame:
    """Encrypt, in place, a table an older release wrote in plaintext (no fingerprint column)."""
    log.warning("%s holds plaintext direct identifiers (written before encryption at rest); "
                "encrypting it now - vacuum its old versions afterwards", table.fqn)
    enc = encrypt_for_write(lakehouse.conform_to(stored, table), table.fqn, get_provider(ctx.settings),
                            keys=table.keys)
    lakehouse.overwrite(lakehouse.conform_to(enc, table), table, schema=True)
    return lakehouse.read(spark, table)


@dataclass
class _Planned:
    """One (bronze table, silver target) pair ready to MERGE: its rows and the sources it refreshes
    (all their keys, or only ``keys`` when given: the keys their new submissions touched)."""

    key: str                # "<feed>-><target>", the stage count's name
    df: DataFrame
    sources: list[str]
    keys: DataFrame | None = None


def merge_rounds(items: list[_Planned]) -> list[list[_Planned]]:
    """The pairs writing one silver table, grouped into as few MERGEs as give the same table.

    A MERGE refreshes its scope (``source IN (...)``) and touches no row outside it, and every
    silver key starts with ``source``: two pairs whose sources are disjoint commute, so their rows
    go in one MERGE (one Delta commit instead of two; on JVM Spark about 11 Spark jobs each).
    Pairs sharing a source keep their order: a pair goes in the round after the last one holding
    a pair it shares a source with.
    """
    rounds: list[list[_Planned]] = []
    placed: list[tuple[int, set[str]]] = []
    for item in items:
        mine = set(item.sources)
        after = max((i for i, theirs in placed if theirs & mine), default=-1)
        if after + 1 == len(rounds):
            rounds.append([])
        rounds[after + 1].append(item)
        placed.append((after + 1, mine))
    return rounds


def _of_sources(bronze: DataFrame, expr: str, sources: list[str]) -> DataFrame:
    """The bronze rows of ``sources`` (``expr``: the target's source expression)."""
    from pyspark.sql import functions as F

    return bronze.where(F.expr(f"({expr}) IN ({', '.join(lakehouse.sql_literal(s) for s in sources)})"))


def _batch_keys(spark: SparkSession, table: Table, batch: list[_Planned]) -> DataFrame | None:
    """The keys one MERGE of ``batch`` refreshes, when a pair in it is conformed by key: those
    pairs' touched keys and every stored key of the sources conformed whole. None: every key of
    the batch's sources (no pair by key)."""
    from functools import reduce

    if all(i.keys is None for i in batch):
        return None
    parts = [i.keys for i in batch if i.keys is not None]
    whole = sorted({s for i in batch if i.keys is None for s in i.sources})
    if whole and lakehouse.exists(table):
        literals = ", ".join(lakehouse.sql_literal(s) for s in whole)
        parts.append(lakehouse.read(spark, table).where(f"source IN ({literals})").select(*table.keys))
    return reduce(lambda a, b: a.unionByName(b), parts)


def run(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Conform every bronze table that exists into the silver tables its spec targets.

    Only the sources with something new are conformed: a (silver table, source) whose submissions
    are those the last conform saw (:func:`source_submissions`, same spec) keeps its rows. The
    state is ``<lakehouse>/silver/_conform_state/<bronze table>.json``, written after every merge
    with the silver tables' Delta versions: a table at another version since (restored, or written
    by anything else) makes every source conform again, as ``PHMX_CONFORM_FULL=1`` does.

    A source that only added submissions since (its earlier ones all there, unchanged: a month's
    new files) is conformed by key: only the keys its new rows touch are recomputed, from every
    bronze version of those keys, and compared with their stored rows (:func:`touched_target`);
    the other sources with something new (a replaced or withdrawn submission) are conformed whole.

    Every pair is planned first, then each silver table is written with as few MERGEs as keep
    the result (:func:`merge_rounds`), and its rows per source counted in one action per MERGE.
    A MERGE carries only the rows that differ from the stored ones (:func:`phmx.lakehouse.refresh`),
    so it rewrites only the files holding rows the new submissions changed.
    """
    from functools import reduce

    from pyspark.sql import functions as F

    planned: dict[str, list[_Planned]] = {}
    counts: dict[str, int] = {}
    states: dict[str, dict[str, Any]] = {}
    specs = base_specs()
    for bronze_table, spec in sorted(specs.items()):
        fqn = f"bronze.{bronze_table}"
        if not lakehouse.exists(fqn):
            continue
        bronze = lakehouse.read(spark, fqn)
        ledger = withdrawn_sources_ledger(spark, bronze_table)
        before = conformed_state(bronze_table)
        digest = _spec_digest(spec)
        seen: dict[str, dict[str, list[str]]] = \
            before.get("submissions", {}) if before.get("spec") == digest else {}
        now: dict[str, dict[str, list[str]]] = {}  # targets of one feed mostly share a source expression
        for target, mapping in spec.targets.items():
            expr = str(mapping.get("source", "submitter"))
            if expr not in now:
                now[expr] = source_submissions(bronze, expr, ledger)
            last = seen.get(expr, {}) if lakehouse.exists(SILVER[target]) else {}
            sources = sorted(s for s, lines in now[expr].items() if last.get(s) != lines)
            counts[f"{spec.feed}->{target}:unchanged_sources"] = len(now[expr]) - len(sources)
            if not sources:
                continue
            added = {s: added_submissions(last.get(s), now[expr][s]) for s in sources}
            by_key = sorted(s for s in sources if added[s] is not None)
            whole = sorted(s for s in sources if added[s] is None)
            if by_key:
                mine = _of_sources(bronze, expr, by_key)
                new_ids = sorted({i for s in by_key for i in added[s] or []})
                touched = touched_target(mine, mine.where(F.col("submission_id").isin(new_ids)), spec, target, mapping)
                if touched is None:
                    whole, by_key = sources, []
                else:
                    planned.setdefault(target, []).append(
                        _Planned(f"{spec.feed}->{target}", touched[0], by_key, keys=touched[1]))
            counts[f"{spec.feed}->{target}:sources_by_key"] = len(by_key)
            if whole:
                mine = bronze if len(whole) == len(now[expr]) else _of_sources(bronze, expr, whole)
                planned.setdefault(target, []).append(
                    _Planned(f"{spec.feed}->{target}", build_target(mine, spec, target, mapping), whole))
        states[bronze_table] = {"spec": digest, "submissions": now}
    for target, items in planned.items():
        table = SILVER[target]
        rounds = merge_rounds(items) if table.keys[:1] == ("source",) else [[i] for i in items]
        for batch in rounds:
            sources = sorted({s for i in batch for s in i.sources})
            scope = "source IN (" + ", ".join(lakehouse.sql_literal(s) for s in sources) + ")"
            df = reduce(lambda a, b: a.unionByName(b), [i.df for i in batch])
            written = lakehouse.refresh(spark, protect(spark, df, table, ctx), table, scope=scope,
                                        keys=_batch_keys(spark, table, batch))
            counts[f"{target}:rows_written"] = counts.get(f"{target}:rows_written", 0) + max(written, 0)
            per_source: dict[str, int] = {r[0]: int(r[1]) for r in
                                          lakehouse.read(spark, table).where(scope).groupBy("source").count().collect()}
            for item in batch:
                counts[item.key] = counts.get(item.key, 0) + sum(per_source.get(s, 0) for s in item.sources)
                log.info("conformed %s rows of %s into %s", counts[item.key], item.key.split("->")[0], table.fqn)
    for bronze_table, state in states.items():  # after every merge: a crash before re-conforms
        targets = {SILVER[t].fqn for t in specs[bronze_table].targets if t in SILVER}
        state["silver"] = {fqn: lakehouse.version(fqn) for fqn in sorted(targets) if lakehouse.delta_exists(fqn)}
        _save_state(bronze_table, state)
    return StageResult("conform", {**counts})
