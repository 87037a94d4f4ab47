"""The consent registry: county consent forms (CSV) and FHIR Consent resources -> silver.consent.

Every version of every consent is kept. A county form's id is ``<submitter>:<form id>`` so two
counties' form numbers never collide; its ``source`` is ``<submitter>:sud`` or ``<submitter>:mh``
(the county's SUD and MH systems are separate person-id spaces, as conform names them). FHIR
consents use the submitter as source and ``<submitter>:<resource id>`` as id; R4 resources come
through intake's ``fhir_consent`` feed (bronze.fhir_consent), R5 exports from the direct
``consent_fhir`` landing path. Versions are numbered by ``meta.versionId``, else in the order
the hub received them (ingested_at, submission, row); an identical resubmission of a version is
not a new version.

Provisions are stored as JSON: a list of nodes ``{path, parent, depth, effect, purposes,
recipients, data_classes, period_start, period_end}`` where ``path`` encodes the tree ("0",
"0.1", ...) and each node already carries its *effective* constraints (a child provision is an
exception inside its parent, so an empty constraint inherits the parent's). Empty list = any.
Recipients are submitter ids, or ``role:<role>`` (``all_treating`` on a form = ``role:treating``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from consent import fhir
from phmx import lakehouse, storage
from phmx import settings as settings_mod
from phmx.errors import ConsentError
from phmx.log import get_logger
from phmx.tables import CONSENT

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)

BRONZE_FORMS = "bronze.consent_forms"
FORM_COLUMNS = (
    "consent_form_id", "client_id", "program", "signed_at", "grantor", "purposes", "recipients",
    "data_classes", "expires_on", "revoked_at", "status",
)
FORM_STATUS = {"active": "active", "revoked": "inactive", "entered_in_error": "entered-in-error"}
PROGRAM_POLICY = {"SUD": "42CFRPart2", "MH": "WIC5328"}
ROLE_ALIASES = {"all_treating": "role:treating"}


def read_forms(spark: SparkSession) -> DataFrame | None:
    """bronze.consent_forms, or None when intake has not landed any form yet."""
    if not lakehouse.exists(BRONZE_FORMS):
        return None
    return lakehouse.read(spark, BRONZE_FORMS)


def _ts(col: str):  # noqa: ANN202 - pyspark Column
    from pyspark.sql import functions as F

    c = F.trim(F.col(col))
    return F.when(c.isNull() | (c == ""), F.lit(None).cast("timestamp")).otherwise(
        F.try_to_timestamp(F.regexp_replace(c, "Z$", "")))


def _date(col: str):  # noqa: ANN202 - pyspark Column
    from pyspark.sql import functions as F

    c = F.trim(F.col(col))
    return F.when(c.isNull() | (c == ""), F.lit(None).cast("date")).otherwise(
        F.try_to_timestamp(c, F.lit("yyyy-MM-dd")).cast("date"))


def _split(col: str):  # noqa: ANN202 - pyspark Column
    from pyspark.sql import functions as F

    parts = F.split(F.coalesce(F.trim(F.col(col)), F.lit("")), r"\|")
    parts = F.transform(parts, lambda x: F.trim(x))
    return F.filter(parts, lambda x: x != "")


def forms_to_consent(forms: DataFrame) -> DataFrame:
    """Normalise county consent-form rows into silver.consent rows (every version, deduplicated).

    Runs on the engine (no Python per row). A form is one permit provision for its purposes,
    recipients and data classes, valid from ``signed_at`` through the end of ``expires_on``.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = forms
    for c in FORM_COLUMNS:
        if c not in df.columns:
            df = df.withColumn(c, F.lit(None).cast("string"))
    status_map = F.create_map(*[F.lit(x) for kv in FORM_STATUS.items() for x in kv])
    policy_map = F.create_map(*[F.lit(x) for kv in PROGRAM_POLICY.items() for x in kv])
    alias_map = F.create_map(*[F.lit(x) for kv in ROLE_ALIASES.items() for x in kv])
    expires = _date("expires_on")
    recipients = F.transform(_split("recipients"), lambda r: F.coalesce(alias_map[r], r))
    node = F.struct(
        F.lit("0").alias("path"),
        F.lit(None).cast("string").alias("parent"),
        F.lit(0).alias("depth"),
        F.lit("permit").alias("effect"),
        F.array_sort(F.array_distinct(_split("purposes"))).alias("purposes"),
        F.array_sort(F.array_distinct(recipients)).alias("recipients"),
        F.array_sort(F.array_distinct(F.transform(_split("data_classes"), lambda x: F.upper(x)))).alias("data_classes"),
        F.lit(None).cast("string").alias("period_start"),
        F.lit(None).cast("string").alias("period_end"),
    )
    content = F.concat_ws("\x1f", *[F.coalesce(F.trim(F.col(c)), F.lit("")) for c in FORM_COLUMNS])
    out = df.select(
        F.concat_ws(":", F.col("submitter"), F.trim(F.col("consent_form_id"))).alias("consent_id"),
        # A county's MH (CSI) and SUD (CalOMS) systems are separate person-id spaces; conform names
        # their sources <submitter>:mh and <submitter>:sud (mappings/feeds/mh_csi.yaml, sud_caloms.yaml).
        F.concat(F.col("submitter"), F.lit(":"), F.lower(F.trim(F.col("program")))).alias("source"),
        F.trim(F.col("client_id")).alias("source_person_id"),
        F.lower(F.trim(F.col("grantor"))).alias("grantor"),
        F.coalesce(status_map[F.lower(F.trim(F.col("status")))], F.lit("rejected")).alias("status"),
        _ts("signed_at").alias("period_start"),
        F.when(expires.isNull(), F.lit(None).cast("timestamp"))
        .otherwise(F.to_timestamp(F.date_add(expires, 1))).alias("period_end"),
        F.col("ingested_at").cast("timestamp").alias("recorded_at"),
        F.to_json(F.array(node)).alias("provisions"),
        F.col("submission_id"),
        F.col("period"),
        F.col("row_number").cast("bigint").alias("row_number"),
        _ts("revoked_at").alias("revoked_at"),
        F.lit("county_csv").alias("source_format"),
        F.coalesce(policy_map[F.upper(F.trim(F.col("program")))], F.lit("HIPAA")).alias("policy"),
        F.sha2(content, 256).alias("content_sha256"),
    )
    first = Window.partitionBy("consent_id", "content_sha256").orderBy("recorded_at", "submission_id", "row_number")
    out = out.withColumn("_first", F.row_number().over(first)).where(F.col("_first") == 1).drop("_first")
    order = Window.partitionBy("consent_id").orderBy("recorded_at", "submission_id", "row_number")
    out = out.withColumn("version", F.row_number().over(order).cast("int"))
    return lakehouse.conform_to(out, CONSENT)


FHIR_FEED = "consent_fhir"
BRONZE_FHIR = "bronze.fhir_consent"


COUNTY_PREFIX = "county_"


def person_space(row: dict) -> dict:
    """Point a county's FHIR consent at the person-id space its patient reference lives in.

    A county's SUD (CalOMS) and MH (CSI) systems are separate id spaces, which conform names
    ``<submitter>:sud`` and ``<submitter>:mh`` (as county consent forms do by their program). A
    FHIR Consent has no program field: a 42 CFR Part 2 policy or an SUD-labelled provision means
    the SUD system, anything else the MH system. Plans' consents keep the submitter as source.
    """
    import json

    src = str(row.get("source") or "")
    if not src.startswith(COUNTY_PREFIX) or ":" in src:
        return row
    classes = {c for n in json.loads(row.get("provisions") or "[]") for c in (n.get("data_classes") or [])}
    sud = row.get("policy") == PROGRAM_POLICY["SUD"] or "SUD" in classes or "42CFRPart2" in classes
    return {**row, "source": f"{src}:{'sud' if sud else 'mh'}"}


def bronze_fhir_to_consent(spark: SparkSession) -> tuple[DataFrame | None, int]:
    """FHIR R4 Consents submitted through intake's ``fhir_consent`` feed (bronze.fhir_consent,
    each resource whole in ``resource_json``, already validated against the R4 models).

    The lineage is intake's: submission id, period and row number of the bronze row, and the time
    the hub received the file as ``recorded_at``. A resource the registry cannot normalise (e.g.
    a provision it cannot read) is counted and logged by submission and row, without content; it
    stays in bronze, so nothing is lost.
    """
    import json

    from consent.disclosure_policy import load_policy

    if not lakehouse.exists(BRONZE_FHIR):
        return None, 0
    policy = load_policy()
    rows, rejected = [], 0
    cols = ("submitter", "submission_id", "period", "row_number", "ingested_at", "resource_json")
    for r in lakehouse.read(spark, BRONZE_FHIR).select(*cols).toLocalIterator():
        recorded = r.ingested_at.astimezone(UTC).replace(tzinfo=None) if r.ingested_at.tzinfo else r.ingested_at
        try:
            row = fhir.normalise(json.loads(r.resource_json), source=r.submitter, recorded_at=recorded,
                                 policy=policy)
        except (ValueError, ConsentError) as exc:
            reason = str(exc) if isinstance(exc, ConsentError) else "invalid JSON"
            log.warning("consent: FHIR Consent in submission %s row %d not registered: %s",
                        r.submission_id, r.row_number, reason)
            rejected += 1
            continue
        row.update(submission_id=r.submission_id, period=r.period, row_number=int(r.row_number))
        rows.append(person_space(row))
    return _versioned(spark, rows), rejected


def fhir_files(landing_root: str | None = None) -> list[storage.StoredFile]:
    """NDJSON files landed as ``<landing>/<submitter>/consent_fhir/<period>/*.ndjson``.

    The direct path for FHIR R5 Consent exports (intake's ``fhir_consent`` feed validates against
    the R4 models, so R5 resources go here and are validated by the registry with the R5 models);
    R4 consents should come through intake, which gives the submitter a receipt.
    """
    root = landing_root or settings_mod.load().landing_root
    if not storage.is_s3(root) and not Path(root).is_dir():
        return []
    return [f for f in storage.list_files(root)
            if f.relpath.endswith(".ndjson") and f.relpath.count("/") >= 2 and f.relpath.split("/")[1] == FHIR_FEED]


def fhir_to_consent(spark: SparkSession, files: list[storage.StoredFile]) -> tuple[DataFrame | None, int]:
    """Parse landed FHIR Consent NDJSON (Python per resource: it is parsing, not deciding).

    Returns silver.consent rows (versions numbered per consent by meta.versionId, else by
    recorded time) and the number of rejected lines.
    """
    import hashlib

    rows, rejected = [], 0
    for f in files:
        submitter, _, period = f.relpath.split("/")[:3]
        data = storage.read_bytes(f.uri)
        sub_id = "fhir-" + hashlib.sha256(data).hexdigest()[:16]
        got, errors = fhir.read_ndjson(data.decode("utf-8"), source=submitter, recorded_at=_mtime(f),
                                       submission_id=sub_id, period=period)
        for n, reason in errors:
            log.warning("consent: rejected FHIR line %d of a %s file: %s", n, FHIR_FEED, reason)
        rejected += len(errors)
        rows += [person_space(r) for r in got]
    return _versioned(spark, rows), rejected


def _versioned(spark: SparkSession, rows: list[dict]) -> DataFrame | None:
    """silver.consent rows with versions numbered per consent (meta.versionId, else arrival)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not rows:
        return None
    ddl = CONSENT.ddl.replace("version int, ", "") + ", meta_version int"
    cols = [c for c, _ in CONSENT.columns if c != "version"] + ["meta_version"]
    df = spark.createDataFrame([tuple(r.get(c) for c in cols) for r in rows], ddl)
    first = Window.partitionBy("consent_id", "content_sha256").orderBy("recorded_at", "submission_id", "row_number")
    df = df.withColumn("_f", F.row_number().over(first)).where("_f = 1").drop("_f")
    order = Window.partitionBy("consent_id").orderBy(F.col("meta_version").asc_nulls_last(), "recorded_at",
                                                      "submission_id", "row_number")
    df = df.withColumn("version", F.row_number().over(order).cast("int"))
    return lakehouse.conform_to(df, CONSENT)


def _mtime(f: storage.StoredFile) -> datetime:
    if storage.is_s3(f.uri):
        return datetime.now(UTC).replace(tzinfo=None)
    return datetime.fromtimestamp(Path(f.uri).stat().st_mtime, UTC).replace(tzinfo=None)


def refresh(spark: SparkSession) -> dict[str, int]:
    """Normalise every landed consent form and FHIR Consent into silver.consent (MERGE: idempotent)."""
    counts = {"consent_forms": 0, "fhir_consents": 0, "fhir_rejected": 0}
    lakehouse.ensure(spark, CONSENT)
    forms = read_forms(spark)
    if forms is not None:
        rows = forms_to_consent(forms)
        lakehouse.merge(spark, rows, CONSENT)
        counts["consent_forms"] = 1
    counts["fhir_rejected"] = 0
    for fdf, rejected in (bronze_fhir_to_consent(spark), fhir_to_consent(spark, fhir_files())):
        counts["fhir_rejected"] += rejected
        if fdf is not None:
            lakehouse.merge(spark, fdf, CONSENT)
            counts["fhir_consents"] = 1
    counts["consent_versions"] = int(lakehouse.read(spark, CONSENT).count())
    return counts
