"""Table contracts of the measures stage, as defined in the one contracts module (phmx/tables.py)."""

from __future__ import annotations

from phmx.tables import MEASURE_EVENT, MEMBER_RISK, Table

ALL: tuple[Table, ...] = (MEASURE_EVENT, MEMBER_RISK)
