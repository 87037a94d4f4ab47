"""Spreadsheet formula injection: one definition of a formula-looking text, for intake and writers.

A text cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) is run as
a formula when a CSV is opened in Excel, LibreOffice or Google Sheets (OWASP "CSV Injection"):
``=HYPERLINK(...)`` in a claim id could leak the rest of a sheet, or worse. Two defences, both
from here:

- intake refuses such values in free-text fields (rule ``formula_text``), so they never reach
  bronze, silver or any feed; a number such as ``-12.5`` or ``+1 555 0100`` is not a formula;
- every CSV the hub writes passes its text cells through :func:`escape_cell` (a leading ``'``,
  the OWASP advice), so a value that arrived some other way is shown, never run.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# RE2 syntax (Arrow's regex engine runs it at intake) and Python's re alike.
# A leading + or - followed by a digit or point starts a number (``-12.5``, ``+1 555 0100``).
FORMULA_PATTERN = r"^(?:[=@\t\r]|[+-][^0-9.])"
_FORMULA = re.compile(FORMULA_PATTERN)


def looks_like_formula(value: str) -> bool:
    """Whether a spreadsheet would take ``value`` for a formula."""
    return _FORMULA.match(value) is not None


def escape_cell(value: Any) -> Any:
    """A text cell safe to open in a spreadsheet: formula-looking text gets a leading ``'``."""
    if isinstance(value, str) and looks_like_formula(value):
        return "'" + value
    return value


def escape_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell escaped (numeric columns untouched), ready for ``to_csv``."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(escape_cell)
    return out
