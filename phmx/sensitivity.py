"""How sensitive a measure row is: ``general`` < ``mh`` < ``sud``, the one ranking every stage uses.

The measures stage gives each gold.measure_event row the highest level among its evidence and the
measure's own (:func:`jobs.measures.strata.sensitivity_of`); publish counts an LHJ cell as
sensitive when any of its units is above ``general`` (DDG 5.6.2: such cells are always masked
below 11). Both rank with the table here, so a new level is added in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column

#: Levels from least to most sensitive; a level's rank is its index.
LEVELS: tuple[str, ...] = ("general", "mh", "sud")
RANK: dict[str, int] = {level: i for i, level in enumerate(LEVELS)}
BY_RANK: dict[int, str] = dict(enumerate(LEVELS))
GENERAL = LEVELS[0]


def rank_of(value: Column | str) -> Column:
    """The rank of a sensitivity column: null or empty is ``general``; a value that is not a known
    level ranks just above ``general`` (sensitive, never silently general)."""
    from pyspark.sql import functions as F

    v = F.lower(F.col(value) if isinstance(value, str) else value)
    out = F.when(v.isNull() | (v == F.lit("")) | (v == F.lit(GENERAL)), F.lit(RANK[GENERAL]))
    for level in LEVELS[1:]:
        out = out.when(v == F.lit(level), F.lit(RANK[level]))
    return out.otherwise(F.lit(RANK[GENERAL] + 1))


def level_of(rank: Column) -> Column:
    """The level a rank column names (the inverse of :func:`rank_of` for known levels)."""
    from pyspark.sql import functions as F

    out = F.when(rank == F.lit(0), F.lit(BY_RANK[0]))
    for r in range(1, len(LEVELS)):
        out = out.when(rank == F.lit(r), F.lit(BY_RANK[r]))
    return out.otherwise(F.lit(GENERAL))
