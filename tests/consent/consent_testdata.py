"""Synthetic consent-stage inputs: bronze consent forms, a crosswalk, members, submissions."""

from __future__ import annotations

from datetime import UTC, date, datetime

from phmx import lakehouse
from phmx.tables import MEMBER, MEMBER_XWALK, SUBMISSIONS

COUNTY = "county_06001_bh"
PLAN = "mcp_alpha"
PLAN_B = "mcp_beta"

FORM_COLS = ["consent_form_id", "client_id", "program", "signed_at", "grantor", "purposes", "recipients",
             "data_classes", "expires_on", "revoked_at", "status", "submission_id", "submitter", "feed",
             "period", "source_file", "source_file_sha256", "row_number", "ingested_at"]


def form(fid: str, client: str, *, program: str = "SUD", signed: str = "2024-01-01T00:00:00", grantor: str = "self",
         purposes: str = "TREAT|HPAYMT|HOPERAT", recipients: str = PLAN, classes: str = "SUD",
         expires: str = "", revoked: str = "", status: str = "active", sub: str = "s1", row: int = 1,
         ingested: str = "2024-01-02T00:00:00", submitter: str = COUNTY) -> dict[str, str]:
    return {"consent_form_id": fid, "client_id": client, "program": program, "signed_at": signed,
            "grantor": grantor, "purposes": purposes, "recipients": recipients, "data_classes": classes,
            "expires_on": expires, "revoked_at": revoked, "status": status, "submission_id": sub,
            "submitter": submitter, "feed": "consent_forms", "period": "2024-01", "source_file": "f.csv",
            "source_file_sha256": "0" * 64, "row_number": str(row), "ingested_at": ingested}


def write_forms(spark, forms: list[dict[str, str]]) -> None:
    ddl = ", ".join(f"{c} string" for c in FORM_COLS)
    df = spark.createDataFrame([tuple(f[c] for c in FORM_COLS) for f in forms], ddl)
    from pyspark.sql import functions as F

    df = df.withColumn("row_number", F.col("row_number").cast("bigint")).withColumn(
        "ingested_at", F.to_timestamp("ingested_at"))
    lakehouse.overwrite(df, "bronze.consent_forms")


def write_members(spark, members: list[tuple[str, str, date]],
                  sources: tuple[str, ...] = (COUNTY, f"{COUNTY}:sud", f"{COUNTY}:mh"), lhj: str = "alameda") -> None:
    """members: (member_id, source_person_id, birth_date), linked in each of ``sources``.

    County forms name the SUD / MH person-id space (``<submitter>:sud``); FHIR uses the submitter.
    """
    now = datetime(2024, 1, 1, tzinfo=UTC)
    xw = spark.createDataFrame([(src, sp, m, "exact", 1.0, "r0", now) for m, sp, _ in members for src in sources],
                               lakehouse.conform_to(spark.createDataFrame([], MEMBER_XWALK.ddl), MEMBER_XWALK).schema)
    lakehouse.overwrite(xw, MEMBER_XWALK)
    # cin and names null (encrypted at rest when present), pii_fingerprint null with them
    rows = [(m, None, None, None, b, "F", "94612", "06001", lhj, None, None, 1, "r0", None) for m, _, b in members]
    lakehouse.overwrite(spark.createDataFrame(rows, MEMBER.ddl), MEMBER)


def write_submissions(spark, submitters: list[str]) -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [(f"sub-{s}", s, "claims", "2024-01", "f", "0" * 64, now, "accepted", 1, 1, 0, None, None, None, "1")
            for s in submitters]
    lakehouse.overwrite(spark.createDataFrame(rows, SUBMISSIONS.ddl), SUBMISSIONS)
