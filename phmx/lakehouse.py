"""The lakehouse: where each table lives and the few Delta operations stages may use.

Writes go through the engine (``format("delta")``, SQL ``MERGE INTO``, ``replaceWhere``);
history, vacuum and restore go through the ``deltalake`` package (delta-rs), because the
embedded engine does not serve DESCRIBE HISTORY, VACUUM or RESTORE.

Designed around the embedded engine's gaps: dynamic partition overwrite replaced a whole table
there (data loss), so this module never uses it. A reload of one submission is a MERGE, or an
overwrite with an explicit ``replaceWhere`` predicate naming only that submission's rows.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import uuid
from functools import reduce
from typing import TYPE_CHECKING, Any

from phmx import faults, storage
from phmx import settings as settings_mod
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
    fqn = _fqn(table)
    faults.point(f"lakehouse.write.before:{fqn}")
    _write_path(df, table_path(table), mode=mode, options=options, label=fqn)
    faults.point(f"lakehouse.write.after:{fqn}")


def _write_path(df: DataFrame, path: str, *, mode: str, options: dict[str, str] | None = None,
                label: str = "") -> None:
    try:
        writer = plain_strings(df).write.format("delta").mode(mode)
        for k, v in (options or {}).items():
            writer = writer.option(k, v)
        writer.save(path)
    except Exception as exc:  # noqa: BLE001 - re-raised with the table named
        raise EngineError(f"delta {mode} failed: {type(exc).__name__}: {_first_line(exc)}",
                          table=label) from exc


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
    _stored_widened(spark, table)
    view = f"src_{uuid.uuid4().hex[:12]}"
    df.createOrReplaceTempView(view)
    clauses = [f"WHEN MATCHED THEN UPDATE SET {_set_all(table)}"] if update else []
    clauses.append(f"WHEN NOT MATCHED THEN {_insert_all(table)}")
    if delete_where:
        clauses.append(f"WHEN NOT MATCHED BY SOURCE AND ({delete_where}) THEN DELETE")
    _merge_into(spark, table, view, keys, clauses)
    spark.catalog.dropTempView(view)


def _stored_widened(spark: SparkSession, table: Table) -> DataFrame:
    """The stored table, first widened in place when the contract gained a column since it was written
    (a new release): the new column null on every stored row, so a MERGE can set it."""
    stored = read(spark, table)
    if set(table.column_names) - set(stored.columns):
        overwrite(conform_to(stored, table), table, schema=True)
        stored = read(spark, table)
    return stored


def _set_all(table: Table) -> str:
    return ", ".join(f"t.{c} = s.{c}" for c in table.column_names)


def _insert_all(table: Table) -> str:
    cols = table.column_names
    return f"INSERT ({', '.join(cols)}) VALUES ({', '.join(f's.{c}' for c in cols)})"  # noqa: S608 - contract names


def _merge_into(spark: SparkSession, table: Table, view: str, keys: tuple[str, ...] | list[str],
                clauses: list[str]) -> None:
    """``MERGE INTO`` the table from the temporary view ``view`` (``s``) on ``keys`` (nulls equal), with
    the given ``WHEN`` clauses, between the write's two commit points."""
    on = " AND ".join(f"t.{k} <=> s.{k}" for k in keys)
    sql = f"MERGE INTO {_sql_path(table_path(table))} t USING {view} s ON {on} " + " ".join(clauses)  # noqa: S608 - contract names
    faults.point(f"lakehouse.write.before:{table.fqn}")
    run_sql(spark, sql, table=table.fqn)
    faults.point(f"lakehouse.write.after:{table.fqn}")


def with_keys(df: DataFrame, keys: DataFrame, columns: list[str] | tuple[str, ...]) -> DataFrame:
    """The rows of ``df`` whose ``columns`` equal those of a row of ``keys`` (nulls equal, as a
    MERGE compares keys: a nullable key column such as coverage_type matches its null)."""
    k = keys.select(*[keys[c].alias(f"_k_{c}") for c in columns])
    on = reduce(lambda a, b: a & b, [df[c].eqNullSafe(k[f"_k_{c}"]) for c in columns])
    return df.join(k, on, "left_semi")


def refresh(spark: SparkSession, df: DataFrame, table: Table, *, scope: str, keys: DataFrame | None = None) -> int:
    """Make the rows of ``table`` matching ``scope`` (a predicate over its columns, e.g. ``source IN
    ('a')``) equal ``df``, writing only the rows that differ; returns how many (inserted, updated
    or deleted; -1 when the table did not exist and ``df`` became it). ``df`` holds at most one
    row per key. ``keys`` (the table's key columns, in its types) narrows the scope to those keys:
    the stored rows compared are only theirs, so a caller that recomputed a few keys pays for them,
    not for the whole scope (``df`` must then hold every row those keys should have).

    The same table as :func:`merge` with ``delete_where`` gives, at the cost of the change, not of
    the scope: a MERGE that updates every row it matches rewrites every file holding one (Delta
    rewrites whole files), so refreshing a source that holds twelve months to add a thirteenth
    rewrote all twelve. Here the rows equal to the stored ones (every column compared, nulls equal)
    are left out of the MERGE, the keys no longer in ``df`` are deleted by the same MERGE, and the
    files holding neither are not touched. Nothing differs: no commit at all.
    """
    from pyspark.sql import functions as F

    df = conform_to(df, table)
    if not exists(table):
        append(df, table)
        return -1
    stored = conform_to(_stored_widened(spark, table).where(scope), table)
    if keys is not None:
        stored = with_keys(stored, keys, table.keys)
    key_columns = list(table.keys)
    changed = df.exceptAll(stored).withColumn("_gone", F.lit(False))
    gone = stored.select(*key_columns).exceptAll(df.select(*key_columns))
    gone = conform_to(gone, table).withColumn("_gone", F.lit(True))
    return _merge_flagged(spark, changed.unionByName(gone), table)


def _merge_flagged(spark: SparkSession, src: DataFrame, table: Table, *, insert: bool = True) -> int:
    """One ``MERGE`` of ``src`` (the table's columns and ``_gone``): rows flagged ``_gone`` delete
    their key, the others update it or (``insert``) are inserted. ``src`` is materialised first
    (a source computed from the table is read before the table is rewritten); no rows, no commit."""
    view = f"src_{uuid.uuid4().hex[:12]}"
    src = put_work_table(spark, src, f"work.refresh_{view}")
    try:
        n = src.count()
        if n:
            src.createOrReplaceTempView(view)
            clauses = ["WHEN MATCHED AND s._gone THEN DELETE", f"WHEN MATCHED THEN UPDATE SET {_set_all(table)}"]
            if insert:
                clauses.append(f"WHEN NOT MATCHED AND NOT s._gone THEN {_insert_all(table)}")
            _merge_into(spark, table, view, keys=list(table.keys), clauses=clauses)
            spark.catalog.dropTempView(view)
    finally:
        drop_work(f"refresh_{view}")
    return n


def apply_changes(spark: SparkSession, changed: DataFrame, table: Table, *, gone: DataFrame | None = None) -> int:
    """Upsert the rows ``changed`` (full rows, at most one per key) and delete the keys in ``gone``
    (their key columns are read; others ignored); returns how many rows it sent (no commit when none; -1 when the table
    did not exist and ``changed`` became it).

    The writer of an incremental change: it knows which rows differ, so the cost is the change's,
    not the table's. Rows whose key the table does not hold are appended (new files: no stored
    file is read or rewritten); updates and deletes go through one ``MERGE``, which rewrites the
    files holding them. Which keys the table holds is read from the table as it is now, so an
    attempt killed between the two writes and run again updates what it had appended, never
    doubles it.
    """
    from pyspark.sql import functions as F

    if not exists(table):
        append(conform_to(changed, table), table)
        return -1
    _stored_widened(spark, table)
    keys = list(table.keys)
    # Keys compared as MERGE compares them (nulls equal).
    held = read(spark, table).select(*[F.col(k).alias(f"_held_{k}") for k in keys]).distinct() \
        .withColumn("_h", F.lit(True))
    on = reduce(lambda a, b: a & b, [F.col(k).eqNullSafe(F.col(f"_held_{k}")) for k in keys])
    flagged = conform_to(changed, table).join(held, on, "left") \
        .select(*table.column_names, F.coalesce(F.col("_h"), F.lit(False)).alias("_held"))
    name = f"changes_{uuid.uuid4().hex[:12]}"
    src = put_work_table(spark, flagged, f"work.{name}")
    try:
        update = src.where(F.col("_held")).drop("_held").withColumn("_gone", F.lit(False))
        if gone is not None:
            update = update.unionByName(conform_to(gone, table).withColumn("_gone", F.lit(True)))
        n = _merge_flagged(spark, update, table, insert=False)
        # Kept apart from the deleted keys' rows (nulls outside the key), which a NOT NULL column
        # of the table would refuse even when filtered out.
        insert = src.where(~F.col("_held")).select(*table.column_names)
        n_insert = insert.count()
        if n_insert:
            append(insert, table)
        return n + n_insert
    finally:
        drop_work(name)


def delete(spark: SparkSession, table: Table, predicate: str) -> None:
    """Delete rows matching a predicate (used to retract a superseded submission)."""
    if exists(table):
        sql = f"DELETE FROM {_sql_path(table_path(table))} WHERE {predicate}"  # noqa: S608 - see sql_literal
        faults.point(f"lakehouse.write.before:{table.fqn}")
        run_sql(spark, sql, table=table.fqn)
        faults.point(f"lakehouse.write.after:{table.fqn}")


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


# ---- scratch: a process's PHI work area -------------------------------------------------------
#: Folder (under the lakehouse root) of every scratch table and file; the ``work`` layer.
SCRATCH_LAYER = "work"
#: A scratch folder of another host is removed once it is this old (its owner cannot be checked).
STALE_ELSEWHERE_S = 24 * 3600
_OWNER = re.compile(r"_o([0-9a-f]{8})x(\d+)(?:_|$)")


def owner_tag() -> str:
    """``o<host hash>x<pid>``: which process owns a scratch folder, written into the folder's name
    so a later run can tell a live owner's area from one a crash left behind."""
    host = hashlib.sha256(socket.gethostname().encode("utf-8")).hexdigest()[:8]
    return f"o{host}x{os.getpid()}"


def _owner_gone(name: str, age_s: float | None) -> bool:
    """Whether the process named in a scratch folder's name is gone (same host: its pid is not
    running; another host: the folder is older than :data:`STALE_ELSEWHERE_S`). Untagged (legacy)
    names count as gone."""
    m = _OWNER.search(name)
    if m is None:
        return True
    if m.group(1) != owner_tag()[1:9]:
        return age_s is None or age_s > STALE_ELSEWHERE_S
    pid = int(m.group(2))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def protect(path: str) -> None:
    """Make a local scratch folder private to the hub's user: folders 0700, files 0600 (PHI zone).
    On S3 the bucket policy and SSE-KMS do this; nothing to change per object."""
    if storage.is_s3(path):
        return
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        return
    if p.is_file():
        p.chmod(0o600)
        return
    p.chmod(0o700)
    for dirpath, dirnames, filenames in os.walk(p):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o700)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o600)


def private_dir(path: str) -> str:
    """Create a local folder (and its missing parents) with mode 0700; return it. S3: unchanged."""
    if not storage.is_s3(path):
        from pathlib import Path

        target = Path(path)
        missing = [p for p in (target, *target.parents) if not p.exists()]
        try:
            for p in reversed(missing):  # each missing level 0700 (mkdir's mode covers the leaf only)
                p.mkdir(mode=0o700, exist_ok=True)
                p.chmod(0o700)
            target.chmod(0o700)
        except OSError as exc:
            from phmx.errors import StorageError

            raise StorageError(f"cannot create the private folder {path}: {exc.strerror}",
                               hint="check that the lakehouse root (PHMX_LAKEHOUSE_ROOT) is a writable "
                                    "directory and not a file") from exc
    return path


def _entries(root: str) -> dict[str, float | None]:
    """Immediate sub-folders of ``root`` with their age in seconds (newest file inside on S3)."""
    import time

    now = time.time()
    out: dict[str, float | None] = {}
    if storage.is_s3(root):
        for f in storage.list_files(root):
            if "/" in f.relpath:
                out.setdefault(f.relpath.split("/", 1)[0], None)
        return out
    from pathlib import Path

    base = Path(root)
    if not base.is_dir():
        return out
    for p in base.iterdir():
        try:
            out[p.name] = now - p.stat().st_mtime
        except FileNotFoundError:
            continue
    return out


def purge_stale(root: str, prefix: str) -> list[str]:
    """Remove the folders directly under ``root`` whose names start with ``prefix`` and whose owner
    process is gone (see :func:`owner_tag`): what a crashed run left behind. Returns their names."""
    removed = []
    for name, age in sorted(_entries(root).items()):
        if name.startswith(prefix) and _owner_gone(name, age):
            storage.delete_prefix(storage.join(root, name))
            removed.append(name)
    if removed:
        log.warning("removed %d scratch folder(s) left by an earlier run under %s", len(removed), root)
    return removed


def scratch_root(root: str | None = None) -> str:
    """Where scratch lives: ``<lakehouse>/work`` unless another root is given (``identity link``)."""
    if root is not None:
        return root
    return storage.join(settings_mod.load().lakehouse_root, SCRATCH_LAYER)


class Scratch:
    """One process's scratch area for one stage: frames written once and read back (the engine has
    no cache, so a frame used twice is otherwise computed twice), and staged files.

    Every scratch item is a folder ``<root>/<area>_<owner>_<id>_<name>`` (a Delta table, a Parquet
    folder or staged files), where ``<owner>`` is :func:`owner_tag`. Scratch holds PHI (decrypted
    identifiers, SUD and mental-health events): local folders are 0700 and files 0600, everything is
    removed by :meth:`drop` at the end of the stage, pass or fail, and a new ``Scratch`` of the same
    area first removes what a crashed process left (:func:`purge_stale`). ``persist`` names the few
    tables that are kept on purpose (no identifiers), under ``<root>/<area>_<name>``.
    """

    def __init__(self, spark: SparkSession | None, area: str, *, root: str | None = None,
                 persist: tuple[str, ...] = ()) -> None:
        if not _SAFE.match(area):
            raise EngineError(f"unsafe scratch area {area!r}")
        self.spark = spark
        self.area = area
        self.root = scratch_root(root)
        # One prefix per Scratch: two areas of the same stage in one process (the consent stage
        # decides several recipient sets, each read lazily until the write) never share a folder.
        self.prefix = f"{area}_{owner_tag()}_{uuid.uuid4().hex[:6]}"
        self.persist = persist
        self.paths: list[str] = []
        private_dir(self.root)
        purge_stale(self.root, f"{area}_o")

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()

    def path(self, name: str) -> str:
        if not _SAFE.match(name):
            raise EngineError(f"unsafe scratch name {name!r}")
        leaf = f"{self.area}_{name}" if name in self.persist else f"{self.prefix}_{name}"
        path = storage.join(self.root, leaf)
        if path not in self.paths and name not in self.persist:
            self.paths.append(path)
        return path.replace("s3a://", "s3://")

    def _spark(self) -> SparkSession:
        if self.spark is None:
            raise EngineError("this scratch area has no engine session", table=self.area)
        return self.spark

    def put(self, df: DataFrame, name: str) -> DataFrame:
        """Write ``df`` as a fresh Delta table and return it read back."""
        path = self.path(name)
        storage.delete_prefix(path)  # ours alone: a changed schema never meets an old table
        _write_path(df, path, mode="overwrite", label=f"{SCRATCH_LAYER}.{self.area}:{name}")
        protect(path)
        return self._spark().read.format("delta").load(path)

    def append(self, df: DataFrame, name: str) -> DataFrame:
        """Add rows to a table written by :meth:`put` (chunked work); return the whole table."""
        path = self.path(name)
        _write_path(df, path, mode="append", label=f"{SCRATCH_LAYER}.{self.area}:{name}")
        protect(path)
        return self._spark().read.format("delta").load(path)

    def put_parquet(self, df: DataFrame, name: str) -> DataFrame:
        """Write ``df`` as plain Parquet (no Delta log: cheaper for a one-off intermediate) and read
        it back with the same schema (an empty result reads as an empty frame)."""
        path = self.path(name)
        schema = df.schema
        df.write.mode("overwrite").parquet(path)
        protect(path)
        if not any(f.relpath.endswith(".parquet") for f in storage.list_files(path)):
            return self._spark().createDataFrame([], schema)
        return self._spark().read.schema(schema).parquet(path)

    def folder(self, name: str) -> str:
        """A fresh private folder for files this process writes itself (e.g. staged Parquet parts)."""
        path = self.path(name)
        storage.delete_prefix(path)
        return private_dir(path)

    def drop(self) -> None:
        """Remove every scratch item of this area written by this object (persisted ones stay)."""
        for path in self.paths:
            try:
                storage.delete_prefix(path)
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the run's outcome
                log.warning("could not remove scratch %s: %s", path.rsplit("/", 1)[-1], type(exc).__name__)
        self.paths.clear()


def put_work_table(spark: SparkSession, df: DataFrame, table: Table | str) -> DataFrame:
    """Replace a run's shared work table (``work.<name>``, read by the run's other tasks, e.g.
    Airflow mapped tasks in other processes, so it is named for the run's step rather than for a
    process) and return it read back. The old table is removed first, so a changed schema never
    meets the previous run's; the folder is private (0700/0600). :func:`drop_work` removes the
    stage's work tables at the end of its run and at the start of the next."""
    fqn = _fqn(table)
    if not fqn.startswith(f"{SCRATCH_LAYER}."):
        raise EngineError("work tables live in the work layer", table=fqn)
    path = table_path(fqn)
    storage.delete_prefix(path)
    append(df, fqn)
    protect(path)
    return read(spark, fqn)


def drop_work(prefix: str, *, keep: tuple[str, ...] = ()) -> list[str]:
    """Remove every folder of the work layer whose name starts with ``prefix`` (a stage's shared
    work tables and files), except those named in ``keep``. Returns the names removed."""
    root = scratch_root()
    removed = []
    for name in sorted(_entries(root)):
        if name.startswith(prefix) and name not in keep:
            storage.delete_prefix(storage.join(root, name))
            removed.append(name)
    return removed
