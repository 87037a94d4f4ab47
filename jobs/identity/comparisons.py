"""Comparison vectors on the engine: for each candidate pair, one gamma level per comparison.

Levels come from the settings (strongest first); gamma = -1 when either side is null (no
evidence), 0 for the ``else`` level, higher for stronger agreement. All levels of all
comparisons are computed in one projection over the pair rows. Built-in functions are used
where the engine has them (equality, ``levenshtein``, ``soundex``, substrings, array
intersection); Jaro-Winkler, which the embedded engine lacks, is one vectorised pandas UDF per
compared column (rapidfuzz), evaluated only for pairs whose values differ.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd

from jobs.identity.config import Comparison, IdentitySettings, Level

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


@lru_cache(maxsize=1)
def jaro_winkler_udf() -> Any:
    """A vectorised Jaro-Winkler similarity (rapidfuzz) as a pandas UDF returning double."""
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")  # type: ignore[call-overload]
    def jaro_winkler(a: pd.Series, b: pd.Series) -> pd.Series:
        from rapidfuzz.distance import JaroWinkler

        sim = JaroWinkler.normalized_similarity
        return pd.Series([sim(x, y) if isinstance(x, str) and isinstance(y, str) else None
                          for x, y in zip(a, b, strict=True)], dtype="float64")

    return jaro_winkler


def needed_features(settings: IdentitySettings) -> list[str]:
    """Feature columns the comparisons read (without ``rid``). Only these are joined onto the
    pairs: the join's cost grows with every column carried."""
    cols: list[str] = []
    for c in settings.comparisons:
        cols += list(c.columns)
        if c.tf:
            cols.append(f"tf_{c.tf_column}")
    if "gn" in cols and "fn" in cols and "fn_tokens" not in cols:
        cols.append("fn_tokens")  # for swapped names
    return list(dict.fromkeys(cols))


def jw_columns(settings: IdentitySettings) -> list[str]:
    """Feature columns that need a Jaro-Winkler similarity."""
    cols = []
    for c in settings.comparisons:
        for lv in c.levels:
            if lv.kind == "jaro_winkler":
                cols.append(lv.column or c.column)
    return list(dict.fromkeys(cols))


def _l(c: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(f"l_{c}")


def _r(c: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(f"r_{c}")


def level_condition(comp: Comparison, level: Level) -> Column:
    """The SQL condition (over ``l_``/``r_`` columns) for reaching ``level``."""
    from pyspark.sql import functions as F

    col = level.column or comp.column
    left, right = _l(col), _r(col)
    if level.kind == "exact":
        return left == right
    if level.kind == "jaro_winkler":
        return F.col(f"jw_{col}") >= F.lit(level.threshold)
    if level.kind == "levenshtein":
        return F.levenshtein(left, right) <= F.lit(level.max)
    if level.kind == "token_overlap":
        # ``|``-separated tokens (strings join faster than arrays on the engine). Most values
        # are one token, and then overlap is equality: the split (a regex per row) runs only
        # on the rows where either side has several tokens (CASE evaluates a branch only on
        # the rows that reach it), which cut this level's cost by most of its share.
        several = F.instr(left, "|") > 0
        several = several | (F.instr(right, "|") > 0)
        return F.when(several, F.arrays_overlap(F.split(left, "\\|"), F.split(right, "\\|"))) \
            .otherwise(left == right)
    if level.kind == "prefix":
        n = int(level.n or 1)
        return F.substring(left, 1, n) == F.substring(right, 1, n)
    if level.kind == "date_transposed":
        # yyyymmdd strings: same year, month and day swapped (and not the same date).
        return ((F.substring(left, 1, 4) == F.substring(right, 1, 4))
                & (F.substring(left, 5, 2) == F.substring(right, 7, 2))
                & (F.substring(left, 7, 2) == F.substring(right, 5, 2))
                & (F.substring(left, 5, 2) != F.substring(left, 7, 2)))
    if level.kind == "transposition":
        # Two adjacent characters swapped, everything else equal (a common keying error).
        length = F.length(left)
        cond = F.lit(False)
        for i in range(1, 16):
            cond = cond | ((length > i) & (F.substring(left, 1, i - 1) == F.substring(right, 1, i - 1))
                           & (F.substring(left, i, 1) == F.substring(right, i + 1, 1))
                           & (F.substring(left, i + 1, 1) == F.substring(right, i, 1))
                           & (F.substring(left, i + 2, 20) == F.substring(right, i + 2, 20)))
        # An adjacent swap of two different characters is Levenshtein distance 2: the
        # position-by-position test (some 75 substrings) runs only on the pairs at that distance.
        return F.when((length == F.length(right)) & (left != right) & (F.levenshtein(left, right) == 2), cond) \
            .otherwise(F.lit(False))
    if level.kind == "initial":
        # One side is only an initial, and it is the other's first letter.
        return (((F.length(left) == 1) | (F.length(right) == 1))
                & (F.substring(left, 1, 1) == F.substring(right, 1, 1)))
    if level.kind == "date_year_off":
        # yyyymmdd: same month and day, year off by at most ``max``.
        return ((F.substring(left, 5, 4) == F.substring(right, 5, 4))
                & (F.abs(F.substring(left, 1, 4).cast("int") - F.substring(right, 1, 4).cast("int"))
                   <= F.lit(level.max)))
    if level.kind == "date_within":
        d = F.abs(F.datediff(F.to_date(left, "yyyyMMdd"), F.to_date(right, "yyyyMMdd")))
        return d <= F.lit(level.max)
    if level.kind == "numeric_within":
        # Two numbers of the same length, all digits, at most ``max`` apart (and not equal).
        diff = F.abs(left.cast("decimal(38,0)") - right.cast("decimal(38,0)"))
        return F.coalesce(left.rlike("^[0-9]+$") & right.rlike("^[0-9]+$") & (F.length(left) == F.length(right))
                          & (diff > F.lit(0)) & (diff <= F.lit(level.max)), F.lit(False))
    if level.kind == "cross_equal":
        # One record's main value is the other's alias (``column`` names the alias feature).
        main = comp.column
        return F.coalesce((_l(main) == right) | (_r(main) == left) | (left == right), F.lit(False))
    if level.kind == "disjoint":
        # Both records have values in this (``|``-separated) column and share none of them:
        # "each side had something to compare, and nothing matched" (``else`` also holds when
        # this level's column is missing on one side while the comparison's main one is not).
        # As in ``token_overlap``: most records have one value (one address ever), and then
        # sharing one is equality; the splits run only where either side has several.
        both = left.isNotNull() & right.isNotNull()
        several = (F.instr(left, "|") > 0) | (F.instr(right, "|") > 0)
        overlap = F.when(several, F.arrays_overlap(F.split(left, "\\|"), F.split(right, "\\|"))) \
            .otherwise(left == right)
        return F.coalesce(both & ~overlap, F.lit(False))
    if level.kind == "else":
        return F.lit(True)
    raise ValueError(f"unknown level kind {level.kind}")


def null_condition(comp: Comparison) -> Column:
    """Either side of the comparison's main column is null (or the only-if-null gate is shut)."""
    cond = _l(comp.column).isNull() | _r(comp.column).isNull()
    if comp.only_if_null:
        cond = cond | (_l(comp.only_if_null).isNotNull() & _r(comp.only_if_null).isNotNull())
    return cond


def gamma_column(comp: Comparison) -> Column:
    """``g_<name>``: -1 null, then the level's gamma (``else`` = 0)."""
    from pyspark.sql import functions as F

    expr = F.when(null_condition(comp), F.lit(-1))
    for i, level in enumerate(comp.levels[:-1]):
        expr = expr.when(level_condition(comp, level), F.lit(comp.gamma(i)))
    return expr.otherwise(F.lit(0)).cast("tinyint").alias(f"g_{comp.name}")


def with_sides(pairs: DataFrame, std: DataFrame, settings: IdentitySettings) -> DataFrame:
    """Join both records' features onto ``(rid_l, rid_r)`` pairs as ``l_*`` / ``r_*`` columns."""
    from pyspark.sql import functions as F

    feats = needed_features(settings)
    left = std.select(F.col("rid").alias("rid_l"), *[F.col(c).alias(f"l_{c}") for c in feats])
    right = std.select(F.col("rid").alias("rid_r"), *[F.col(c).alias(f"r_{c}") for c in feats])
    return pairs.join(left, "rid_l").join(right, "rid_r")


def compare(sides: DataFrame, settings: IdentitySettings, *, keep: tuple[str, ...] = ()) -> DataFrame:
    """Comparison vectors: ``rid_l, rid_r, g_<comparison>..., tf_<comparison>...`` (and
    ``rules``, the bit mask of blocking rules that found the pair, when the pairs carry it).

    ``sides`` is the output of :func:`with_sides` (or any frame with ``l_``/``r_`` features).
    ``tf_<comparison>`` is the value's frequency when the pair agrees exactly (else null).
    """
    from pyspark.sql import functions as F

    staged = unswap_names(sides)
    for c in jw_columns(settings):
        staged = with_jaro_winkler(staged, c)
    out = [F.col("rid_l"), F.col("rid_r"), *[F.col(k) for k in keep]]
    out += [gamma_column(c) for c in settings.comparisons]
    for comp in settings.comparisons:
        if comp.tf:
            t = comp.tf_column
            out.append(F.when(_l(t) == _r(t), F.greatest(_l(f"tf_{t}"), _r(f"tf_{t}"))).alias(f"tf_{comp.name}"))
    if "rules" in sides.columns and "rules" not in keep:
        out.append(F.col("rules"))
    return staged.select(*out)


def unswap_names(sides: DataFrame) -> DataFrame:
    """Compare given and family names crosswise when one record has them swapped.

    Some sources put the family name in the given-name field (about 1% of records): when the
    right record's given name is the left's first family-name part (or the reverse) and the
    names do not already agree, the right record's names are swapped before comparison, so
    a swap costs nothing instead of two strong disagreements.
    """
    from pyspark.sql import functions as F

    cols = set(sides.columns)
    if not {"l_gn", "r_gn", "l_fn", "r_fn"} <= cols:
        return sides

    def first(side: str) -> Column:
        toks = f"{side}_fn_tokens"
        if toks not in cols:
            return F.col(f"{side}_fn")
        return F.coalesce(F.regexp_extract(F.col(toks), "^([^|]+)", 1), F.col(f"{side}_fn"))

    swap = F.coalesce((_l("gn") != _r("gn")) & ~_l("fn").eqNullSafe(_r("fn"))
                      & ((_l("gn") == first("r")) | (_r("gn") == first("l"))), F.lit(False))
    # The swap test and the right record's first family part once per pair, in their own
    # projection: each swapped column reads them (written inline, every column re-evaluated them).
    staged = sides.select("*", swap.alias("_swap"), first("r").alias("_r_first"))
    r_given, r_family = F.col("_r_first"), _r("gn")
    new = {
        "gn": r_given, "gn_canon": r_given, "fn": r_family, "fn_tokens": r_family,
        "tf_gn": F.lit(None).cast("double"), "tf_fn": F.lit(None).cast("double"),
    }
    out = []
    for c in sides.columns:
        name = c[2:] if c.startswith("r_") else None
        if name in new:
            out.append(F.when(F.col("_swap"), new[name]).otherwise(F.col(c)).alias(c))
        else:
            out.append(F.col(c))
    return staged.select(*out)


def with_jaro_winkler(sides: DataFrame, col: str) -> DataFrame:
    """Add ``jw_<col>``: 1.0 when equal, null when either is null, else Jaro-Winkler.

    Row-wise in the same projection: evaluating the UDF on distinct value pairs and joining
    back was no faster, and it made the engine compute the pair frame once more per column.
    """
    from pyspark.sql import functions as F

    jw = jaro_winkler_udf()
    value = F.when(_l(col) == _r(col), F.lit(1.0)).when(_l(col).isNull() | _r(col).isNull(), F.lit(None)) \
        .otherwise(jw(_l(col), _r(col)))
    return sides.select("*", value.alias(f"jw_{col}"))


def gamma_names(settings: IdentitySettings) -> list[str]:
    return [f"g_{c.name}" for c in settings.comparisons]


def pattern_string(settings: IdentitySettings) -> Column:
    """A readable gamma pattern (``given_name=exact,birth_date=null,...``) for the gold tables."""
    from pyspark.sql import functions as F

    parts = []
    for c in settings.comparisons:
        g = F.col(f"g_{c.name}")
        expr = F.when(g == -1, F.lit("null"))
        for i in range(len(c.levels)):
            expr = expr.when(g == c.gamma(i), F.lit(c.levels[i].label))
        parts.append(F.concat(F.lit(f"{c.name}="), expr))
    return F.concat_ws(",", *parts)
