"""Every silver event, with its member and LHJ: the one frame the feeds aggregate from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from phmx import lakehouse
from phmx.tables import (
    BH_SERVICE,
    DENTAL_SERVICE,
    ENCOUNTER,
    IMMUNIZATION,
    IMMUNIZATION_GIVEN,
    MEDICATION,
    MEMBER,
    MEMBER_XWALK,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# (table, event date column, source-kind expression)
EVENT_SOURCES = (
    (ENCOUNTER, "service_date", "'plan_medical'"),
    (MEDICATION, "fill_date", "'plan_pharmacy'"),
    (BH_SERVICE, "service_date", "CASE WHEN program = 'SUD' THEN 'county_sud' ELSE 'county_mh' END"),
    (DENTAL_SERVICE, "service_date", "'dental'"),
    (IMMUNIZATION, "admin_date", "'immunization'"),
)
# Rows of a table that are events at all (a refused or deleted vaccination is not).
EVENT_FILTERS = {IMMUNIZATION.fqn: IMMUNIZATION_GIVEN}


def member_events(spark: SparkSession) -> DataFrame:
    """(member_id, lhj, county_fips, event_date, source_kind, security_labels) for every event."""
    from pyspark.sql import functions as F

    frames = []
    for table, date_col, kind in EVENT_SOURCES:
        df = lakehouse.read(spark, table).where(EVENT_FILTERS.get(table.fqn, "true")).select(
            "source", "source_person_id", F.col(date_col).alias("event_date"),
            F.expr(kind).alias("source_kind"),
            F.coalesce("security_labels", F.array().cast("array<string>")).alias("security_labels"),
        )
        frames.append(df)
    events = frames[0]
    for f in frames[1:]:
        events = events.unionByName(f)
    xwalk = lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id")
    members = lakehouse.read(spark, MEMBER).select("member_id", "lhj", "county_fips")
    return events.join(xwalk, ["source", "source_person_id"], "inner").join(members, "member_id", "inner")
