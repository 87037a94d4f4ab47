"""Writing intake's Arrow batches to Delta through the engine, in one commit per table per batch.

Accepted rows are staged as Parquet files in a private scratch folder (``<lakehouse>/work/ingest_*``) and the engine
reads them back and writes the Delta table with one ``replaceWhere`` overwrite. Why not
``spark.createDataFrame(arrow)``: over Spark Connect that ships the rows inside the query plan,
and a plan larger than the gRPC message limit (128 MiB, about 400,000 enrollment rows) fails;
staging keeps one atomic commit at any size and lets the engine read columnar files natively.
The staging folder is removed after the write; one a crash left behind is removed by the next
intake (:class:`phmx.lakehouse.Scratch`).
"""

from __future__ import annotations

import io
import os
import uuid
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from phmx import lakehouse, storage
from phmx.tables import QUARANTINE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyspark.sql import SparkSession

    from jobs.ingest.process import FileOutcome

STAGE_ROWS = 250_000


def _ddl_type(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_timestamp(t):
        return "timestamp"
    return "string"


def write(spark: SparkSession, fqn: str, tables: list[pa.Table], schema: pa.Schema, predicate: str,
          lakehouse_root: str, parts: Sequence[str] = ()) -> None:
    """Replace the rows matching ``predicate`` in ``fqn`` with ``tables`` and the Parquet ``parts``
    already staged by parse workers (:func:`write_part`, same schema), atomically."""
    rows = sum(t.num_rows for t in tables)
    if rows == 0 and not parts:
        ddl = ", ".join(f"{f.name} {_ddl_type(f.type)}" for f in schema)
        lakehouse.overwrite(spark.createDataFrame([], ddl), fqn, replace_where=predicate)
        return
    # Staged parts hold submitted rows as sent (names, birth dates): a private scratch folder,
    # removed after the commit, and by the next intake if a crash leaves it behind.
    scratch = lakehouse.Scratch(spark, "ingest", root=storage.join(lakehouse_root, lakehouse.SCRATCH_LAYER))
    stage = scratch.folder(f"stage_{uuid.uuid4().hex}")
    lakehouse.purge_stale(storage.join(lakehouse_root, "_staging"), "")  # where earlier versions staged
    try:
        part = 0
        for t in tables:
            t = t.cast(schema) if t.schema != schema else t
            for off in range(0, t.num_rows, STAGE_ROWS):
                write_part(storage.join(stage, f"part-{part:05d}.parquet"), t.slice(off, STAGE_ROWS))
                part += 1
        for src in parts:  # a worker's parts: moved in (a rename on a local disk)
            storage.move(src, storage.join(stage, src.rsplit("/", 1)[-1]))
        lakehouse.protect(stage)
        df = spark.read.parquet(stage.replace("s3a://", "s3://"))
        lakehouse.overwrite(df, fqn, replace_where=predicate)
    finally:
        scratch.drop()


def write_part(uri: str, table: pa.Table) -> None:
    """One staged Parquet part (uncompressed: read once, right away), private to the hub's user."""
    if storage.is_s3(uri):
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="none")
        storage.write_bytes(uri, buf.getvalue())
        return
    fd = os.open(uri, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        pq.write_table(table, fh, compression="none")


def write_quarantine(spark: SparkSession, outcomes: list[FileOutcome], lakehouse_root: str) -> None:
    """Quarantine rows of a batch of files: their submissions' earlier quarantine rows are replaced."""
    with_rows = [o for o in outcomes if o.quarantine]
    if not with_rows:
        return
    schema = QUARANTINE.arrow_schema
    tables = [pa.Table.from_pylist([{c: row.get(c) for c in schema.names} for row in o.quarantine], schema=schema)
              for o in with_rows]
    ids = sorted({o.receipt.submission_id for o in with_rows})
    pred = "submission_id IN (" + ", ".join(lakehouse.sql_literal(i) for i in ids) + ")"
    write(spark, QUARANTINE.fqn, tables, schema, pred, lakehouse_root)
