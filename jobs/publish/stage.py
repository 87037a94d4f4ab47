"""The publish stage: one service-count package per LHJ, consent-gated, suppressed, ledgered."""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from jobs.publish.events import member_events
from jobs.publish.suppression import suppress_counts
from phmx import storage
from phmx.context import RunContext, StageResult
from phmx.log import get_logger

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = get_logger(__name__)

FEED = "service_counts"
PURPOSE = "PUBHLTH"


def recipient_id(lhj: str) -> str:
    """``lhj_<slug>``: the recipient id of a local health jurisdiction (e.g. lhj_long_beach)."""
    return "lhj_" + re.sub(r"[^a-z0-9]+", "_", lhj.lower()).strip("_")


def run(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Publish the service-count feed of every LHJ that has members."""
    from pyspark.sql import functions as F

    from consent import enforce, ledger

    at = ctx.started_at
    events = member_events(spark)
    if ctx.period != "all":
        events = events.where(F.date_format("event_date", "yyyy-MM") == ctx.period)
    lhjs = sorted(r[0] for r in events.select("lhj").distinct().collect() if r[0])
    published: dict[str, str] = {}
    totals = {"lhj_feeds": 0, "cells": 0, "suppressed_cells": 0, "withheld_rows": 0}
    for lhj in lhjs:
        recipient = recipient_id(lhj)
        mine = events.where(F.col("lhj") == lhj)
        allowed = enforce.permitted_rows(spark, mine, recipient=recipient, purpose=PURPOSE, at=at)
        agg = (allowed.groupBy(F.date_format("event_date", "yyyy-MM").alias("month"), "source_kind")
               .agg(F.countDistinct("member_id").alias("members"))
               .orderBy("month", "source_kind").toPandas())
        agg.insert(0, "lhj", lhj)
        table = suppress_counts(agg, count_col="members",
                                sensitive=lambda kind: kind in ("county_sud", "county_mh"))
        totals["cells"] += len(table)
        totals["suppressed_cells"] += int(table["annotation"].notna().sum())
        base = storage.join(ctx.settings.publish_root, recipient, FEED, ctx.period)
        buf = io.StringIO()
        table.to_csv(buf, index=False)
        data = buf.getvalue().encode()
        sha = hashlib.sha256(data).hexdigest()
        storage.write_bytes(storage.join(base, f"{FEED}.csv"), data, content_type="text/csv")
        manifest = {"recipient": recipient, "lhj": lhj, "feed": FEED, "period": ctx.period, "run_id": ctx.run_id,
                    "purpose": PURPOSE, "generated_at": at.astimezone(UTC).isoformat(timespec="seconds"),
                    "files": [{"name": f"{FEED}.csv", "sha256": sha, "rows": len(table)}],
                    "suppression": "cells 1-10 suppressed (CalHHS DDG 2.0); annotation 1 = small cell"}
        storage.write_text(storage.join(base, "manifest.json"), json.dumps(manifest, indent=2, sort_keys=True),
                           content_type="application/json")
        members = (allowed.select("member_id", F.explode_outer(F.when(F.size("security_labels") > 0,
                                                                      F.col("security_labels"))
                                                               .otherwise(F.array(F.lit("GENERAL"))))
                                  .alias("data_class")).distinct())
        ledger.record_disclosure(spark, recipient=recipient, purpose=PURPOSE, run_id=ctx.run_id,
                                 files=[(storage.join(base, f"{FEED}.csv"), sha)], members_by_class=members,
                                 rule_ids=["publish.aggregate.deidentified"], consent_ids=[],
                                 at=datetime.now(UTC))
        published[lhj] = base
        totals["lhj_feeds"] += 1
    log.info("published %d LHJ feeds", totals["lhj_feeds"])
    return StageResult("publish", totals, {"paths": published})
