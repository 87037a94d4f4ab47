"""The linkage engine: standardise -> block -> compare -> train -> score -> cluster.

One code path for the stage (``silver.person``), ``phmx identity link`` (any person files) and
``explain``. Intermediate frames are materialised in a scratch area (the embedded engine has no
cache): the standardised records and the comparison vectors are each computed once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from jobs.identity import blocking, comparisons, standardise
from jobs.identity.cluster import (
    ClusterResult,
    GuardParams,
    cluster,
    compared_identifiers,
    edge_guard_reasons,
    explained_conflicts,
)
from jobs.identity.config import IdentitySettings
from jobs.identity.model import Model, estimate_u, probability_column, train
from phmx import lakehouse
from phmx.log import get_logger

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)


#: Where intermediate frames are written once and read back: the lakehouse's one scratch mechanism
#: (area ``identity``; the ``link`` command gives its own root).
Scratch = lakehouse.Scratch


@dataclass
class Scored:
    """Result of scoring: materialised standardised records and comparison vectors, a model."""

    std: DataFrame
    gammas: DataFrame
    model: Model
    counts: dict[str, Any] = field(default_factory=dict)

    def scored(self, settings: IdentitySettings) -> DataFrame:
        """Comparison vectors with ``match_weight`` and ``match_probability``."""
        w = self.model.weight_column(settings)
        return self.gammas.select("*", w.alias("match_weight")) \
            .withColumn("match_probability", probability_column(w))


def prepare(person: DataFrame, scratch: Scratch, settings: IdentitySettings,
            extra: DataFrame | None = None) -> DataFrame:
    """Standardise person rows, add term frequencies, materialise. ``extra`` columns (keyed by
    rid) may be joined on (the incremental ``is_new`` flag)."""
    # Materialised before the term-frequency self-join: the embedded engine mis-resolves
    # columns when a derived (not yet written) frame is joined with itself.
    base = scratch.put(standardise.standardise(person, settings), "std_base")
    tf_columns = tuple(dict.fromkeys(c.tf_column for c in settings.comparisons if c.tf))
    std = standardise.add_term_frequencies(base, tf_columns)
    if extra is not None:
        std = std.join(extra, "rid", "left")
    return scratch.put(std, "std")


def exact_u(std: DataFrame, settings: IdentitySettings) -> dict[str, float]:
    """u of each comparison's top level when it is exact agreement: sum of p_v^2 over its column.

    One engine action for all comparisons (a union of one aggregate row each): on JVM Spark
    every action is a job with its own planning, and this ran once per comparison.
    """
    from functools import reduce

    from pyspark.sql import functions as F

    parts = []
    for c in settings.comparisons:
        if c.levels[0].kind != "exact":
            continue
        col = c.levels[0].column or c.column
        counts = std.where(F.col(col).isNotNull()).groupBy(col).agg(F.count(F.lit(1)).alias("n"))
        parts.append(counts.agg(F.sum(F.col("n") * F.col("n")).alias("sq"), F.sum("n").alias("tot"))
                     .select(F.lit(c.name).alias("name"), "sq", "tot"))
    if not parts:
        return {}
    rows = reduce(lambda a, b: a.unionByName(b), parts).collect()
    return {r["name"]: float(r["sq"]) / float(r["tot"]) ** 2 for r in rows if r["tot"]}


def sample_u_levels(std: DataFrame, settings: IdentitySettings, scratch: Scratch) -> dict[str, pd.DataFrame]:
    """Per comparison, level counts over all pairs of a random sample of records.

    u needs only each comparison's marginal level distribution, so each comparison is
    evaluated on the distinct value combinations of its own columns in the sample, crossed
    with themselves and weighted by their counts: names repeat, so this is far fewer (and
    narrower) rows than crossing whole records.
    """
    from functools import reduce

    from pyspark.sql import functions as F

    # A deterministic sample (the records with the smallest seeded hashes), so a re-run on the
    # same data trains the same model.
    order = F.xxhash64(F.col("rid"), F.lit(settings.seed))
    sample = std.orderBy(order, F.col("rid")).limit(settings.u_sample_records)
    sample = scratch.put(sample.select("rid", *comparisons.needed_features(settings)), "u_sample")
    parts = []
    for comp in settings.comparisons:
        cols = list(comp.columns)
        vals = sample.groupBy(*cols).agg(F.count(F.lit(1)).alias("n"), F.min("rid").alias("vid"))
        left = vals.select(F.col("vid").alias("rid_l"), F.col("n").alias("n_l"), *[F.col(c).alias(f"l_{c}") for c in cols])
        right = vals.select(F.col("vid").alias("rid_r"), F.col("n").alias("n_r"), *[F.col(c).alias(f"r_{c}") for c in cols])
        sides = left.crossJoin(right).where(F.col("rid_l") <= F.col("rid_r"))
        weight = F.when(F.col("rid_l") == F.col("rid_r"), F.col("n_l") * (F.col("n_l") - 1) / 2) \
            .otherwise(F.col("n_l") * F.col("n_r"))
        for c in comparisons.jw_columns(settings):
            if c in cols:
                sides = comparisons.with_jaro_winkler(sides, c)
        g = sides.select(comparisons.gamma_column(comp).alias("g"), weight.alias("w"))
        parts.append(g.groupBy("g").agg(F.sum("w").alias("n")).select(F.lit(comp.name).alias("comparison"), "g", "n"))
    # One engine action for every comparison (one job on JVM Spark instead of one each). The
    # weights are whole numbers, so their sums are exact in any order.
    both: pd.DataFrame = reduce(lambda a, b: a.unionByName(b), parts).toPandas() if parts else pd.DataFrame()
    out: dict[str, pd.DataFrame] = {}
    for comp in settings.comparisons:
        mine = both[both["comparison"] == comp.name] if len(both) else both
        counts = pd.DataFrame({f"g_{comp.name}": mine["g"].to_numpy() if len(mine) else [],
                               "n": mine["n"].to_numpy() if len(mine) else []})
        out[comp.name] = counts.sort_values(f"g_{comp.name}").reset_index(drop=True)
    return out


def pattern_counts(gammas: DataFrame, settings: IdentitySettings) -> pd.DataFrame:
    from pyspark.sql import functions as F

    cols = [*comparisons.gamma_names(settings), "rules"]
    # Sorted: EM sums in this order, and a re-run must give the same floating-point result.
    counts: pd.DataFrame = gammas.groupBy(*cols).agg(F.count(F.lit(1)).alias("n")).toPandas()
    return counts.sort_values(cols).reset_index(drop=True)


class StepTimes(dict[str, float]):
    """Wall seconds per step (the stage result's ``details["step_seconds"]``) and, in ``cpu``,
    the process's CPU seconds per step (``details["step_cpu_seconds"]``). The embedded engine
    runs in this process, so its threads' CPU is counted; on a shared machine the CPU figure
    is the one that says what a step costs (wall time there measures the load as much)."""

    def __init__(self) -> None:
        super().__init__()
        self.cpu: dict[str, float] = {}

    def merge(self, other: dict[str, float]) -> None:
        """Add another step table's entries (and its CPU figures, when it has them)."""
        self.update(other)
        if isinstance(other, StepTimes):
            self.cpu.update(other.cpu)


def _process_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@contextmanager
def timed(what: str, steps: dict[str, float]) -> Iterator[None]:
    """Time a step into ``steps`` (the stage result's ``details["step_seconds"]``; with a
    :class:`StepTimes`, its CPU seconds too)."""
    t0, c0 = time.perf_counter(), _process_cpu()
    yield
    steps[what] = round(time.perf_counter() - t0, 2)
    if isinstance(steps, StepTimes):
        steps.cpu[what] = round(_process_cpu() - c0, 2)
    log.debug("identity: %s in %.2fs", what, steps[what])


def score(spark: SparkSession, std: DataFrame, settings: IdentitySettings, scratch: Scratch, *,
          model: Model | None = None, new_col: str | None = None,
          pairs: tuple[DataFrame, blocking.BlockingStats | None] | None = None) -> Scored:
    """Block, compare and (unless ``model`` is given) train; return materialised vectors.

    ``pairs``: candidate pairs already blocked (the incremental run blocks on the encrypted
    index's keyed keys, :mod:`jobs.identity.index`), with their blocking statistics."""
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    steps = StepTimes()
    with timed("pairs", steps):
        if pairs is None:
            blocked, stats = blocking.candidate_pairs(std, settings, new_col=new_col, with_stats=True)
            blocked = scratch.put(blocked, "pairs")
        else:
            blocked, stats = pairs
        pairs_df = blocked
        n_pairs = pairs_df.count()
    # Compare in slices of about ``compare_chunk_pairs`` pairs: the engine's joins hold each
    # slice in memory, so peak memory stays bounded whatever the number of records.
    chunks = max(1, math.ceil(n_pairs / max(settings.compare_chunk_pairs, 1)))
    gammas = None
    with timed("compare", steps):
        for i in range(chunks):
            part = pairs_df if chunks == 1 else pairs_df.where(F.pmod(F.col("rid_l"), F.lit(chunks)) == i)
            g = comparisons.compare(comparisons.with_sides(part, std, settings), settings, keep=("rule", "rules"))
            gammas = scratch.put(g, "gammas") if i == 0 else scratch.append(g, "gammas")
    assert gammas is not None
    t1 = time.perf_counter()
    counts: dict[str, Any] = {"candidate_pairs": n_pairs, "blocking_seconds": round(t1 - t0, 2),
                              "oversized_blocks": sum(stats.skipped_keys.values()) if stats else 0,
                              "step_seconds": steps}
    if model is None:
        n_records = std.count()
        with timed("u_sample", steps):
            levels = sample_u_levels(std, settings, scratch)
        with timed("u_exact", steps):
            u = estimate_u(levels, settings, exact_u(std, settings))
        with timed("patterns", steps):
            patterns = pattern_counts(gammas, settings)
        with timed("em", steps):
            total_pairs = n_records * (n_records - 1) / 2
            tf_u = {c.name: float(u[c.name][-1]) for c in settings.comparisons if c.tf}
            model = train(patterns, u, settings, total_pairs=total_pairs, tf_u=tf_u)
            model.meta.update({"records": n_records, "candidate_pairs": n_pairs, "trained_at": time.time(),
                               "settings": settings.source_file})
        counts["training_seconds"] = round(time.perf_counter() - t1, 2)
        counts["patterns"] = len(patterns)
    return Scored(std=std, gammas=gammas, model=model, counts=counts)


@dataclass
class Links:
    """Everything clustering produced: labels, scored pairs worth keeping, refused edges."""

    labels: pd.DataFrame
    kept_pairs: DataFrame
    refused: pd.DataFrame
    guarded: pd.DataFrame
    stats: dict[str, Any]


def link(spark: SparkSession, scored: Scored, settings: IdentitySettings, *,
         forced: pd.DataFrame | None = None, cannot: pd.DataFrame | None = None) -> Links:
    """Pick link edges, apply edge and cluster guards, cluster.

    ``forced``: rid_l, rid_r edges that must link (reviewer accepts, existing members).
    ``cannot``: rid_l, rid_r pairs that must not end up together (reviewer rejects).
    """
    from pyspark.sql import functions as F

    g_cols = comparisons.gamma_names(settings)
    det = deterministic_column(settings)
    kept = scored.scored(settings).withColumn("deterministic", det) \
        .where((F.col("match_probability") >= F.lit(settings.review_probability)) | F.col("deterministic"))
    edges: pd.DataFrame = kept.select("rid_l", "rid_r", "match_weight", "deterministic", *g_cols).toPandas()
    edges["guard"] = edge_guard_reasons(edges, settings)
    link_mask = ((edges["match_weight"] >= settings.link_weight) | edges["deterministic"].astype(bool)) \
        & edges["guard"].isna()
    # A deterministic link counts at least as a link in the clustering order.
    edges["match_weight"] = edges["match_weight"].where(~(edges["deterministic"].astype(bool)
                                                          & (edges["match_weight"] < settings.link_weight)),
                                                        settings.link_weight)
    # Every kept pair a guard fires on (links refused, and review-band pairs a silent guard
    # takes out of the review queue).
    guarded = edges.loc[edges["guard"].notna(), ["rid_l", "rid_r", "match_weight", "guard"]]
    link_edges = edges.loc[link_mask, ["rid_l", "rid_r", "match_weight"]].rename(columns={"match_weight": "weight"})
    link_edges["explained"] = explained_conflicts(edges.loc[link_mask], settings)
    link_edges["compared"] = compared_identifiers(edges.loc[link_mask], settings)
    link_edges["forced"] = False
    if forced is not None and not forced.empty:
        f = forced[["rid_l", "rid_r"]].copy()
        f["weight"] = math.inf
        f["forced"] = True
        f["explained"] = [frozenset()] * len(f)
        f["compared"] = [frozenset()] * len(f)
        link_edges = pd.concat([f, link_edges], ignore_index=True)
    # Guards marked 'apart': their pairs must not end up together through other records either.
    apart = {g.name for g in settings.edge_guards if g.apart}
    if apart:
        kept_apart = guarded.loc[guarded["guard"].isin(apart), ["rid_l", "rid_r", "guard"]] \
            .rename(columns={"guard": "reason"})
        if not kept_apart.empty:
            base = cannot if cannot is not None else pd.DataFrame(columns=["rid_l", "rid_r"])
            cannot = pd.concat([base, kept_apart], ignore_index=True)
    rids = pd.unique(pd.concat([link_edges["rid_l"], link_edges["rid_r"]], ignore_index=True))
    attrs = _attrs(spark, scored.std, rids, settings.guarded_identifiers)
    result: ClusterResult = cluster(link_edges, attrs, GuardParams.from_settings(settings), cannot)
    stats: dict[str, Any] = dict(result.stats)
    stats["identifier_disagreement"] = identifier_disagreement(scored.model, settings)
    stats["link_edges"] = int(link_mask.sum())
    stats["edge_guarded"] = int((guarded["match_weight"] >= settings.link_weight).sum())
    return Links(labels=result.labels, kept_pairs=kept, refused=result.refused, guarded=guarded, stats=stats)


def identifier_disagreement(model: Model, settings: IdentitySettings) -> dict[str, float]:
    """Per identifier, the share of true matches the trained model finds disagreeing on
    it (its m of ``else``). Reported, not acted on: a guard is declared, because EM on a small
    or unusual population misjudges it (twins with consecutive SSNs read as matches); a
    number whose share is high (a registry whose duplicates often carry a fresh number) is
    one to declare ``guard: false``."""
    return {n: round(float(model.m[n][0]), 4) for n in settings.identifier_comparisons() if n in model.m}


def deterministic_column(settings: IdentitySettings):  # noqa: ANN201 - a pyspark Column
    """True when a pair meets a deterministic rule (``deterministic`` in the settings): exact
    agreement that links whatever the model says (a tiny population gives EM nothing to
    learn from). Guards still apply."""
    from pyspark.sql import functions as F

    out = F.lit(False)
    for rule in settings.deterministic:
        cond = F.lit(True)
        for cname, labels in rule.when:
            # ``any_identifier`` expands to one alternative per identifier comparison.
            alt = F.lit(False)
            for name, gammas in settings.gammas(cname, labels):
                alt = alt | F.col(f"g_{name}").isin(gammas)
            cond = cond & alt
        out = out | cond
    return out


def _attrs(spark: SparkSession, std: DataFrame, rids: Any, identifiers: tuple[str, ...]) -> pd.DataFrame:
    """Guarded identifiers, birth date and source of the records on link edges."""
    from pyspark.sql import functions as F

    cols = ["rid", *[c for c in identifiers if c in std.columns], "dob_str", "source",
            *(["gn_key"] if "gn_key" in std.columns else [])]
    if len(rids) == 0:
        return pd.DataFrame({c: [] for c in cols})
    ids = spark.createDataFrame(pd.DataFrame({"rid": pd.Series(rids, dtype="int64")}))
    return std.join(F.broadcast(ids) if len(rids) < 100_000 else ids, "rid", "left_semi") \
        .select(*cols).toPandas()


def cluster_frame(spark: SparkSession, std: DataFrame, labels: pd.DataFrame) -> DataFrame:
    """Every record with its cluster (a singleton's cluster is its own rid)."""
    from pyspark.sql import functions as F

    if labels.empty:
        return std.select("rid", "source", "source_person_id", F.col("rid").alias("cluster"))
    lab = spark.createDataFrame(labels.astype({"rid": "int64", "cluster": "int64"}))
    return std.select("rid", "source", "source_person_id").join(lab, "rid", "left") \
        .withColumn("cluster", F.coalesce(F.col("cluster"), F.col("rid")))

