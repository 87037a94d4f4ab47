"""The identity stage (first, deterministic version): exact CIN, then exact name + birth date.

member_id is a hash of the cluster's anchoring key, so it is stable across runs; existing
crosswalk entries keep their id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.identity import geo
from phmx import lakehouse, tables
from phmx.context import RunContext, StageResult
from phmx.log import get_logger

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)


def _clean_name(col):  # noqa: ANN001, ANN202
    from pyspark.sql import functions as F

    return F.regexp_replace(F.upper(F.trim(col)), "[^A-Z]", "")


def run(spark: SparkSession, ctx: RunContext) -> StageResult:
    """Link ``silver.person`` into members; write ``gold.member_xwalk`` and ``gold.member``."""
    from pyspark.sql import functions as F

    person = lakehouse.read(spark, tables.PERSON)
    cin = F.upper(F.trim(F.col("cin")))
    valid_cin = cin.rlike("^9[0-9]{7}[A-Z]$")
    given, family = _clean_name(F.col("given_name")), _clean_name(F.col("family_name"))
    name_key = F.when((F.length(given) > 0) & (F.length(family) > 0) & F.col("birth_date").isNotNull(),
                      F.concat_ws("|", given, family, F.col("birth_date").cast("string")))
    p = person.select("*", F.when(valid_cin, cin).alias("_cin"), name_key.alias("_nk"))
    # A name key inherits the CIN of any record sharing it, so CIN-less records join their CIN's member.
    nk_cin = p.where(F.col("_cin").isNotNull() & F.col("_nk").isNotNull()).groupBy("_nk") \
        .agg(F.min("_cin").alias("_nk_cin"))
    p = p.join(nk_cin, "_nk", "left")
    anchor = F.coalesce(F.concat(F.lit("C|"), F.col("_cin")), F.concat(F.lit("C|"), F.col("_nk_cin")),
                        F.concat(F.lit("N|"), F.col("_nk")),
                        F.concat_ws("|", F.lit("R"), F.col("source"), F.col("source_person_id")))
    method = F.when(F.col("_cin").isNotNull(), F.lit("exact_cin")) \
        .when(F.col("_nk_cin").isNotNull() | F.col("_nk").isNotNull(), F.lit("exact_name_dob")) \
        .otherwise(F.lit("singleton"))
    p = p.select("*", F.concat(F.lit("M"), F.substring(F.sha2(anchor, 256), 1, 16)).alias("_new_id"),
                 method.alias("link_method"))
    old = lakehouse.read(spark, tables.MEMBER_XWALK).select(
        "source", "source_person_id", F.col("member_id").alias("_old_id"))
    p = p.join(old, ["source", "source_person_id"], "left")
    p = p.withColumn("member_id", F.coalesce("_old_id", "_new_id"))
    xwalk = p.select("source", "source_person_id", "member_id", "link_method",
                     F.lit(1.0).alias("link_probability"), F.lit(ctx.run_id).alias("run_id"),
                     F.current_timestamp().alias("linked_at"))
    lakehouse.merge(spark, xwalk, tables.MEMBER_XWALK)
    members = golden_simple(spark, p, ctx)
    lakehouse.overwrite(lakehouse.conform_to(members, tables.MEMBER), tables.MEMBER)
    counts = {"records": p.count(), "members": members.count()}
    log.info("identity: %s records -> %s members", counts["records"], counts["members"])
    return StageResult(stage="identity", counts=counts)


def golden_simple(spark: SparkSession, p: DataFrame, ctx: RunContext) -> DataFrame:
    """Most recent non-null value per field (first version of survivorship)."""
    from pyspark.sql import functions as F

    def pick(c: str):  # noqa: ANN202
        return F.max_by(F.col(c), F.when(F.col(c).isNotNull(), F.coalesce("record_date", F.lit("1900-01-01")
                                                                           .cast("date")))).alias(c)

    g = p.groupBy("member_id").agg(
        pick("_cin").alias("cin"), pick("given_name"), pick("family_name"), pick("birth_date"), pick("sex"),
        pick("zip"), pick("county_fips"), pick("race"), pick("ethnicity"),
        F.countDistinct("source").cast("int").alias("source_count"))
    g = g.withColumn("run_id", F.lit(ctx.run_id))
    return geo.add_lhj(spark, g)
