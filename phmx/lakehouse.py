"""The lakehouse: where each table lives and the few Delta operations stages may use.

Writes go through the engine (``format("delta")``, SQL ``MERGE INTO``, ``replaceWhere``);
history, vacuum and restore go through the ``deltalake`` package (delta-rs), because the
embedded engine does not serve DESCRIBE HISTORY, VACUUM or RESTORE.

Designed around the embedded engine's gaps: dynamic partition overwrite replaced a whole table
there (data loss), so this module never uses it. A reload of one submission is a MERGE, or an
overwrite with an explicit ``replaceWhere`` predicate naming only that submission's rows.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from phmx import settings as settings_mod
from phmx import storage
from phmx.errors import EngineError
from phmx.log import get_logger
from phmx.tables import Table, by_fqn

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)

_SAFE = re.compile(r"^[a-z][a-z0-9_]*$")


def _fqn(table: Table | str) -> str:
    return table.fqn if isinstance(table, Table) else table


def table_path(table: Table | str, root: str | None = None) -> str:
    """``<lakehouse root>/<layer>/<name>`` for a table contract or a ``layer.name`` string.

    Tables of the ``audit`` layer go under ``PHMX_LEDGER_ROOT`` (default: the lakehouse root).
    """
    fqn = _fqn(table)
    layer, _, name = fqn.partition(".")
    if not (_SAFE.match(layer) and _SAFE.match(name)):
        raise EngineError(f"unsafe table name {fqn!r}", table=fqn)
    if root is None:
        cfg = settings_mod.load()
        # The audit layer (ledger, disclosure members) lives under its own root: in production a
        # separate bucket with Object Lock and the audit key (infra/terraform).
        root = cfg.ledger_root if layer == "audit" else cfg.lakehouse_root
    path = storage.join(root, layer, name)
    return path.replace("s3a://", "s3://")


def _sql_path(path: str) -> str:
    return "delta.`" + path.replace("`", "") + "`"


def exists(table: Table | str) -> bool:
    """Whether a Delta table has been created at the table's path."""
    path = table_path(table)
    return storage.exists(storage.join(path, "_delta_log", "00000000000000000000.json")) or _has_log(path)


def _has_log(path: str) -> bool:
    return any(True for _ in storage.list_files(storage.join(path, "_delta_log")))


def read(spark: SparkSession, table: Table | str, *, version: int | None = None) -> DataFrame:
    """Read a table (optionally as of a version). A missing contract table reads as empty."""
    path = table_path(table)
    if not exists(table):
        contract = table if isinstance(table, Table) else _contract_or_none(table)
        if contract is None:
            raise EngineError("table does not exist yet", table=_fqn(table))
        return spark.createDataFrame([], contract.ddl)
    if version is not None:
        return _read_version(spark, table, version)
    return spark.read.format("delta").load(path)


def _read_version(spark: SparkSession, table: Table | str, version: int) -> DataFrame:
    """A table as of ``version`` (time travel, for audits that pin a version).

    The embedded engine's ``versionAsOf`` fails for versions before a checkpoint whose commit
    files are all still there ("Missing commit file"); delta-rs replays the log correctly. So
    delta-rs resolves which data files made up that version and the engine reads exactly those
    (our tables are unpartitioned and written without deletion vectors, so the files are the
    version). A version with no files reads as an empty frame of the table's schema then.
    """
    path = table_path(table)
    dt = open_delta(path, version=version)
    if dt.metadata().partition_columns:
        return spark.createDataFrame(dt.to_pyarrow_table().to_pandas())
    files = list(dt.file_uris())
    if not files:
        return spark.createDataFrame([], spark.read.format("delta").load(path).schema)
    names = [f.name for f in dt.schema().fields]
    return spark.read.parquet(*files).select(*names)


def _contract_or_none(fqn: str) -> Table | None:
    try:
        return by_fqn(fqn)
    except KeyError:
        return None


def conform_to(df: DataFrame, table: Table) -> DataFrame:
    """Select and cast a DataFrame's columns to the contract's order and types (missing -> null)."""
    from pyspark.sql import functions as F

    cols = []
    present = set(df.columns)
    for name, ddl in table.columns:
        col = F.col(name) if name in present else F.lit(None)
        cols.append(col.cast(ddl).alias(name))
    return df.select(*cols)


def ensure(spark: SparkSession, table: Table) -> None:
    """Create an empty Delta table with the contract's schema if none exists."""
    if not exists(table):
        spark.createDataFrame([], table.ddl).write.format("delta").mode("append").save(table_path(table))


def append(df: DataFrame, table: Table | str) -> None:
    _write(df, table, mode="append")


def overwrite(df: DataFrame, table: Table | str, *, replace_where: str | None = None,
              schema: bool = False) -> None:
    """Overwrite a table, or with ``replace_where`` only the rows matching that predicate.

    Never a dynamic partition overwrite (the embedded engine replaced the whole table).
    ``schema=True`` also replaces the table's schema (``overwriteSchema``: a contract that
    gained a column, e.g. one written before encryption at rest).
    """
    opts = {"replaceWhere": replace_where} if replace_where else {}
    if schema:
        opts["overwriteSchema"] = "true"
    if replace_where and not exists(table):
        _write(df, table, mode="append")
        return
    _write(df, table, mode="overwrite", options=opts)


def plain_strings(df: DataFrame) -> DataFrame:
    """Re-cast top-level string columns to plain ``string`` before a Delta write.

    A pandas UDF declared ``string`` (encryption, pseudonyms) comes back from a JVM Spark Connect
    server as ``string collate UTF8_BINARY``; Delta records that type in the table's schema and
    delta-rs (history, time travel, vacuum, restore in this module) refuses the table. The
    client shows both as ``StringType()``, so every string column is cast (a no-op otherwise).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    fields = df.schema.fields
    if not any(isinstance(f.dataType, StringType) for f in fields):
        return df
    return df.select(*[F.col(f"`{f.name}`").cast("string").alias(f.name) if isinstance(f.dataType, StringType)
                       else F.col(f"`{f.name}`") for f in fields])


def _write(df: DataFrame, table: Table | str, *, mode: str, options: dict[str, str] | None = None) -> None:
    path = table_path(table)
    try:
        writer = plain_strings(df).write.format("delta").mode(mode)
        for k, v in (options or {}).items():
            writer = writer.option(k, v)
        writer.save(path)
    except Exception as exc:  # noqa: BLE001 - re-raised with the table named
        raise EngineError(f"delta {mode} failed: {type(exc).__name__}: {_first_line(exc)}",
                          table=_fqn(table)) from exc


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""


def merge(
    spark: SparkSession,
    df: DataFrame,
    table: Table,
    *,
    keys: tuple[str, ...] | None = None,
    delete_where: str | None = None,
    update: bool = True,
) -> None:
    """Upsert ``df`` into ``table`` on its merge keys with SQL ``MERGE INTO``.

    ``delete_where`` (a predicate over target columns, e.g. ``t.submission_id = 'x'``) also
    deletes target rows that match it but have no source row: how a corrected submission
    replaces the rows of the one it supersedes without touching any other submission.
    """
    keys = keys or table.keys
    if not keys:
        raise EngineError("merge needs keys", table=table.fqn)
    df = conform_to(df, table)
    if not exists(table):
        append(df, table)
        return
    stored = read(spark, table)
    if set(table.column_names) - set(stored.columns):
        # The contract gained a column since the table was written (a new release): widen it in place,
        # the new column null on every stored row, so the MERGE below can set it.
        overwrite(conform_to(stored, table), table, schema=True)
    view = f"src_{uuid.uuid4().hex[:12]}"
    df.createOrReplaceTempView(view)
    on = " AND ".join(f"t.{k} <=> s.{k}" for k in keys)
    sets = ", ".join(f"t.{c} = s.{c}" for c in table.column_names)
    cols = ", ".join(table.column_names)
    vals = ", ".join(f"s.{c}" for c in table.column_names)
    sql = f"MERGE INTO {_sql_path(table_path(table))} t USING {view} s ON {on} "
    if update:
        sql += f"WHEN MATCHED THEN UPDATE SET {sets} "
    sql += f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({vals})"  # noqa: S608 - names from contracts
    if delete_where:
        sql += f" WHEN NOT MATCHED BY SOURCE AND ({delete_where}) THEN DELETE"
    run_sql(spark, sql, table=table.fqn)
    spark.catalog.dropTempView(view)


def delete(spark: SparkSession, table: Table, predicate: str) -> None:
    """Delete rows matching a predicate (used to retract a superseded submission)."""
    if exists(table):
        sql = f"DELETE FROM {_sql_path(table_path(table))} WHERE {predicate}"  # noqa: S608 - see sql_literal
        run_sql(spark, sql, table=table.fqn)


def sql_literal(value: str) -> str:
    """Quote a string value for a predicate built in code (values never come from users raw)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_sql(spark: SparkSession, sql: str, *, table: str = "", stage: str = "") -> DataFrame:
    """Run SQL, re-raising engine failures with the stage, table and SQL attached."""
    try:
        return spark.sql(sql)
    except Exception as exc:  # noqa: BLE001
        raise EngineError(f"SQL failed: {type(exc).__name__}: {_first_line(exc)}",
                          stage=stage, table=table, sql=sql) from exc


# ---- delta-rs: the one way to open, read and append a Delta table without the engine ---------
def delta_options(path: str) -> dict[str, str] | None:
    """Storage options for delta-rs at ``path`` (S3 endpoint, credentials, the zone's KMS key);
    None for a local path. Built here only, so every delta-rs caller reaches storage the same way."""
    return storage.delta_storage_options(path) if storage.is_s3(path) else None


def delta_path(table: Table | str) -> str:
    """A table contract or ``layer.name`` as its path; a path (local or s3://) is returned as is."""
    if isinstance(table, Table) or ("/" not in table and table.count(".") == 1):
        return table_path(table)
    return table


def delta_exists(table: Table | str) -> bool:
    """Whether a Delta log exists at the table (contract, ``layer.name`` or path)."""
    path = delta_path(table)
    if storage.is_s3(path):
        return any(True for _ in storage.list_files(storage.join(path, "_delta_log")))
    from pathlib import Path

    return Path(path, "_delta_log").is_dir()


def open_delta(table: Table | str, *, version: int | None = None) -> Any:
    """A ``deltalake.DeltaTable`` for a table contract, ``layer.name`` or path (optionally as of a version)."""
    from deltalake import DeltaTable

    path = delta_path(table)
    return DeltaTable(path, version=version, storage_options=delta_options(path))


def append_arrow(table: Table | str, data: Any, *, configuration: dict[str, str] | None = None,
                 merge_schema: bool = False) -> None:
    """Append an Arrow table with delta-rs (no engine; delta-rs retries an append that lost a commit
    race). ``configuration`` applies when the table is created (e.g. ``delta.appendOnly``)."""
    from deltalake import write_deltalake

    path = delta_path(table)
    kwargs: dict[str, Any] = {}
    if merge_schema:
        kwargs["schema_mode"] = "merge"
    write_deltalake(path, data, mode="append", configuration=None if delta_exists(path) else configuration,
                    storage_options=delta_options(path), **kwargs)


def _delta_table(table: Table | str) -> Any:
    return open_delta(table)


def version(table: Table | str) -> int:
    """The table's current Delta version."""
    return int(_delta_table(table).version())


def history(table: Table | str, limit: int | None = None) -> list[dict[str, Any]]:
    """Commit history, newest first (version, timestamp, operation, parameters)."""
    return list(_delta_table(table).history(limit))


def vacuum(table: Table | str, *, retention_hours: int = 168, dry_run: bool = True) -> list[str]:
    """Files no longer referenced and older than the retention; removed unless ``dry_run``."""
    return list(_delta_table(table).vacuum(retention_hours=retention_hours, dry_run=dry_run,
                                           enforce_retention_duration=retention_hours >= 168))


def restore(table: Table | str, to_version: int) -> dict[str, Any]:
    """Restore a table to an earlier version (a new commit; history is kept)."""
    return dict(_delta_table(table).restore(to_version))
