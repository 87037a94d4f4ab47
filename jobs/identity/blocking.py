"""Blocking: candidate pairs that agree on every key of at least one rule (equi-joins only).

Each rule is a self-join on its keys; the union is de-duplicated and each pair remembers the
first rule that found it. Keys held by more than ``max_block_size`` records (a default SSN, an
agency phone number, a clinic address; a rule may set a smaller size of its own) are skipped:
such blocks are quadratic and carry no identifying signal; their number is reported. In
incremental mode only pairs with at least one new record are generated, and only the blocks a
new record is in are counted (and reported when skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

from jobs.identity.config import IdentitySettings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass
class BlockingStats:
    """Per-rule counts (no values): rules run and keys skipped for size."""

    skipped_keys: dict[str, int]


def candidate_pairs(std: DataFrame, settings: IdentitySettings, *, new_col: str | None = None,
                    with_stats: bool = False, long: bool = False) -> tuple[DataFrame, BlockingStats | None]:
    """``(rid_l, rid_r, rule, rules)`` with ``rid_l < rid_r``: ``rule`` is the first rule that
    found the pair, ``rules`` a bit mask of all of them (EM trains per rule).

    ``new_col`` names a boolean column marking new records: pairs of two old records are
    skipped (they were scored in an earlier run).

    ``long``: ``std`` holds one row per record and rule, ``rid, rule`` (the rule's index),
    ``key`` (its one key column's value) and ``new_col``, instead of a row per record with every
    rule's key columns (see :func:`_candidate_pairs_long`).
    """
    from pyspark.sql import functions as F

    if long:
        return _candidate_pairs_long(std, settings, new_col=new_col, with_stats=with_stats)
    frames = []
    oversized = []
    for idx, rule in enumerate(settings.rules):
        keys = list(rule.keys)
        cap = rule.max_block_size or settings.max_block_size
        cols = ["rid", *keys] + ([new_col] if new_col else [])
        recs = std.select(*cols)
        for k in keys:
            recs = recs.where(F.col(k).isNotNull())
        if new_col:
            # Only the blocks a new record is in: the self-join and the block sizes then grow
            # with the new records' blocks, not with the index (a block's size still counts every
            # record in it, so a block is skipped exactly as a full run would skip it).
            touched = recs.where(F.col(new_col)).select(*keys).distinct()
            recs = recs.join(touched, keys, "left_semi")
        sizes = recs.groupBy(*keys).agg(F.count(F.lit(1)).alias("_n"))
        if with_stats:
            oversized.append(sizes.where(F.col("_n") > cap).agg(F.count(F.lit(1)).alias("n"))
                             .select(F.lit(rule.name).alias("rule"), "n"))
        joined = _block_pairs(recs, sizes.where((F.col("_n") >= 2) & (F.col("_n") <= cap)).select(*keys), keys,
                              new_col)
        # The rule's bit as a literal: ``shiftleft`` with a column shift is not in classic
        # PySpark (it takes an int), and a literal works on every engine.
        frames.append(joined.select(F.col("a").alias("rid_l"), F.col("b").alias("rid_r"), F.lit(idx).alias("rule"),
                                    F.lit(1 << idx).alias("bit")))
    skipped: dict[str, int] = {}
    if oversized:
        # One engine action for every rule's count (one job each was a round trip per rule).
        skipped = {r["rule"]: int(r["n"]) for r in reduce(lambda a, b: a.unionByName(b), oversized).collect()}
    if not frames:
        raise ValueError("no blocking rules: nothing to compare")
    union = frames[0]
    for f in frames[1:]:
        union = union.unionByName(f)
    pairs = union.groupBy("rid_l", "rid_r").agg(
        F.min("rule").alias("rule"), F.bit_or(F.col("bit").cast("bigint")).alias("rules"))
    return pairs, (BlockingStats(skipped) if with_stats else None)


def _block_pairs(recs: DataFrame, ok: DataFrame, block: list[str], new_col: str | None) -> DataFrame:
    """``a < b`` record pairs (``rid``) sharing a block of ``ok`` (the blocks kept: two records or
    more, none over its cap), with ``block``'s columns; with ``new_col``, only pairs holding a new
    record. The one self-join both blocking layouts use."""
    from pyspark.sql import functions as F

    recs = recs.join(ok, block, "left_semi")
    left = recs.select(F.col("rid").alias("a"), *block, *([F.col(new_col).alias("a_new")] if new_col else []))
    right = recs.select(F.col("rid").alias("b"), *block, *([F.col(new_col).alias("b_new")] if new_col else []))
    joined = left.join(right, block).where(F.col("a") < F.col("b"))
    return joined.where(F.col("a_new") | F.col("b_new")) if new_col else joined


def _candidate_pairs_long(std: DataFrame, settings: IdentitySettings, *, new_col: str | None,
                          with_stats: bool) -> tuple[DataFrame, BlockingStats | None]:
    """:func:`candidate_pairs` on ``rid, rule, key[, new_col]`` rows: every rule's blocks in one
    self-join on ``(rule, key)``, the block sizes in one aggregation and each rule's cap as a
    column, instead of the same steps once per rule (with 19 rules, 19 scans of the input for each
    step). The same pairs, first rule and bit mask as the per-rule joins: a block is a (rule, key)."""
    from pyspark.sql import functions as F

    if not settings.rules:
        raise ValueError("no blocking rules: nothing to compare")
    if any(len(r.keys) != 1 for r in settings.rules):
        raise ValueError("long blocking input needs rules of one key column each")
    block = ["rule", "key"]

    def by_rule(values: list[int]):  # noqa: ANN202 - a pyspark Column
        # A literal per rule index (the cap, the rule's bit; ``shiftleft`` by a column is not in
        # classic PySpark).
        return reduce(lambda e, iv: e.when(F.col("rule") == F.lit(iv[0]), F.lit(iv[1])), list(enumerate(values))[1:],
                      F.when(F.col("rule") == F.lit(0), F.lit(values[0])))

    cap = by_rule([r.max_block_size or settings.max_block_size for r in settings.rules])
    recs = std.select("rid", *block, *([new_col] if new_col else [])).where(F.col("key").isNotNull())
    if new_col:
        recs = recs.join(recs.where(F.col(new_col)).select(*block).distinct(), block, "left_semi")
    sizes = recs.groupBy(*block).agg(F.count(F.lit(1)).alias("_n")).withColumn("_cap", cap)
    skipped: dict[str, int] = {}
    if with_stats:
        over = {int(r["rule"]): int(r["n"]) for r in sizes.where(F.col("_n") > F.col("_cap")).groupBy("rule")
                .agg(F.count(F.lit(1)).alias("n")).collect()}
        skipped = {rule.name: over.get(i, 0) for i, rule in enumerate(settings.rules)}
    joined = _block_pairs(recs, sizes.where((F.col("_n") >= 2) & (F.col("_n") <= F.col("_cap"))).select(*block),
                          block, new_col)
    pairs = joined.groupBy(F.col("a").alias("rid_l"), F.col("b").alias("rid_r")).agg(
        F.min("rule").alias("rule"), F.bit_or(by_rule([1 << i for i in range(len(settings.rules))]).cast("bigint")).alias("rules"))
    return pairs, (BlockingStats(skipped) if with_stats else None)


def rule_name_column(settings: IdentitySettings):  # noqa: ANN201 - a pyspark Column
    """Map the ``rule`` index to its name."""
    from pyspark.sql import functions as F

    expr = None
    for i, r in enumerate(settings.rules):
        expr = F.when(F.col("rule") == i, F.lit(r.name)) if expr is None else expr.when(F.col("rule") == i, F.lit(r.name))
    return expr.otherwise(F.lit("unknown")) if expr is not None else F.lit("unknown")
