"""Primary small-cell suppression for the service-count feed (cells 1-10; zero shown).

The full statistical disclosure control (complementary suppression, derived statistics,
publication scoring, the linear-programming attacker test) lives in privacy/.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

SMALL_CELL = "1"  # DDG open-data annotation code: small cell


def suppress_counts(table: pd.DataFrame, *, count_col: str, sensitive: Callable[[str], bool] | None = None,
                    threshold: int = 11) -> pd.DataFrame:
    """Blank counts 1..threshold-1 and annotate them; zero stays visible."""
    out = table.copy()
    small = (out[count_col] > 0) & (out[count_col] < threshold)
    out[count_col] = out[count_col].astype("Int64").mask(small)
    out["annotation"] = pd.Series([SMALL_CELL if s else None for s in small], index=out.index, dtype="object")
    return out
