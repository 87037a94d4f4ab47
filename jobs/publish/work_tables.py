"""The publish stage's own tables: the feed log and the per-run work tables.

* ``gold.feed_log``: one row per package delivered (what went to whom, when, where, which
  version, the manifest's SHA-256 and the ledger entry). ``phmx feeds`` lists it.
* ``work.publish_*``: what the prepare step computes once for every LHJ (consent decisions,
  permitted rows, unsuppressed cell counts, which members were counted by data class) and what a
  plan feed materialises, so each recipient's packaging task (one Airflow mapped task per
  recipient) only filters its own rows, and no consent query is planned twice. They stay inside
  the hub (PHI zone, under ``<lakehouse>/work/``), are rewritten each run and never published.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phmx.tables import define_table as _t

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


FEED_LOG = _t(
    "gold",
    "feed_log",
    "recipient string, feed string, period string, version int, uri string, run_id string,"
    "published_at timestamp, files int, bytes bigint, manifest_sha256 string, key_id string,"
    "ledger_seq bigint, cells int, suppressed_cells int, members int, status string",
    keys="recipient feed period version",
    doc="One row per package delivered. status: published.",
)

FEED_CELLS = _t(
    "work",
    "publish_cells",
    "run_id string, lhj string, measure_id string, period string, stratifier string, stratum string,"
    "numerator bigint, denominator bigint, sensitivity string, sensitive boolean",
    keys="run_id lhj measure_id period stratifier stratum",
    doc="Unsuppressed cell counts for every LHJ (and the state, lhj = California), written by the "
    "prepare step; suppressed per recipient when packaged. Internal.",
)

FEED_MEMBERS = _t(
    "work",
    "publish_members",
    "run_id string, recipient string, member_id string, data_class string, rule_ids array<string>,"
    "consent_ids array<string>",
    keys="run_id recipient member_id data_class",
    doc="Members counted in each LHJ feed, by data class, with the rules that permitted it (for "
    "the ledger's disclosure entry). Internal.",
)


FEED_SERVICE_COUNTS = _t(
    "work",
    "publish_service_counts",
    "run_id string, lhj string, month string, source_kind string, members bigint",
    keys="run_id lhj month source_kind",
    doc="Distinct members with a service, per LHJ, month and source kind (unsuppressed). Internal.",
)

FEED_DECISIONS = _t(
    "work",
    "publish_lhj_decisions",
    "member_id string, data_class string, purpose string, recipient string, decision string,"
    "rule_ids array<string>, consent_ids array<string>, valid_from timestamp, valid_to timestamp,"
    "policy_version string, run_id string, decided_at timestamp",
    keys="member_id data_class purpose recipient valid_from",
    doc="Each member's PUBHLTH decisions toward their own LHJ (recipient relabelled to the stand-in id), "
    "materialised once per run so the several LHJ frames reuse them. Internal.",
)


def work_table(name: str, recipient: str | None = None) -> str:
    """``work.publish_<name>[_<recipient>]``: a per-run scratch table (one per recipient where the
    recipients' tasks may run at the same time, so they never write the same Delta table)."""
    import re

    suffix = "_" + re.sub(r"[^a-z0-9_]", "_", recipient.lower()) if recipient else ""
    return f"work.publish_{name}{suffix}"


def materialize(spark: SparkSession, df: DataFrame, name: str) -> DataFrame:
    """Write ``df`` to a fresh work table and return it read back: later queries start from stored
    rows instead of re-planning (and re-running) the consent joins behind ``df``. The old table is
    removed first, so a changed schema never meets the previous run's."""
    from phmx import lakehouse, storage

    storage.delete_prefix(lakehouse.table_path(name))
    lakehouse.append(df, name)
    return lakehouse.read(spark, name)
