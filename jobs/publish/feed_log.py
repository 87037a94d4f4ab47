"""``gold.feed_log``: what was published to whom and when (read by ``phmx feeds``).

Written with delta-rs (``deltalake``) rather than the engine: each recipient's task appends one
row, possibly at the same time as other recipients' tasks (Airflow mapped tasks), and delta-rs
retries an append that lost the commit race. Reading needs no engine either, so ``phmx feeds``
answers in a moment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from phmx import faults, lakehouse
from phmx.tables import FEED_LOG

if TYPE_CHECKING:
    from jobs.publish.package import Delivered




def record(d: Delivered, *, run_id: str, ledger_seq: int | None, cells: int = 0, suppressed: int = 0,
           members: int = 0, status: str = "published") -> None:
    """Log one delivery; ``status="unchanged"``: this run's package equalled version ``d.version``
    (already published), so none was made and nothing was disclosed (``ledger_seq`` None)."""
    import pyarrow as pa

    row: dict[str, Any] = {
        "recipient": d.recipient, "feed": d.feed, "period": d.period, "version": d.version, "uri": d.uri,
        "run_id": run_id, "published_at": d.published_at.astimezone(UTC), "files": len(d.files), "bytes": d.bytes,
        "manifest_sha256": d.manifest_sha256, "key_id": d.key_id, "ledger_seq": ledger_seq, "cells": cells,
        "suppressed_cells": suppressed, "members": members, "status": status,
    }
    faults.point("publish.feed_log.before")
    lakehouse.append_arrow(FEED_LOG, pa.Table.from_pylist([row], schema=FEED_LOG.arrow_schema))
    faults.point("publish.feed_log.after")


def read(recipient: str | None = None) -> list[dict[str, Any]]:
    """Every logged delivery (newest first), optionally for one recipient."""
    if not lakehouse.delta_exists(FEED_LOG):
        return []
    rows = lakehouse.open_delta(FEED_LOG).to_pyarrow_table().to_pylist()
    if recipient:
        rows = [r for r in rows if r["recipient"] == recipient]
    return sorted(rows, key=lambda r: (r["published_at"] or datetime.min.replace(tzinfo=UTC), r["recipient"]),
                  reverse=True)
