"""Stream an engine frame of finished JSON documents into an NDJSON package file, in bounded memory.

The frame (``id, line, part2, problem``, see :mod:`jobs.publish.fhir_sql`; ``line`` is a JSON
document with its newline) is read as Arrow record batches as the engine sends them
(:func:`arrow_batches`), and each batch's string data buffer, which is exactly the NDJSON bytes of
its rows, is appended to a :class:`jobs.publish.package.HashingWriter` (SHA-256 taken while
writing) without making a Python string per row. Memory on the driver is one batch, whatever the
number of resources.

Validation, documented in docs/plan-feed-guide.md:

* **structural checks on every resource**, computed on the engine with the JSON (the ``problem``
  column: ids and references are pseudonyms, required codes and dates present); any failure stops
  the feed;
* **fhir.resources (R4B) validation on a deterministic sample** per resource type: the first
  :data:`FIRST` resources and every :data:`EVERY`-th after them (by position in the id-sorted
  file). Validating every resource costs about 0.2-0.5 ms each in Python, which is most of the
  feed's time at millions of resources; the engine builds every resource from the same few
  expressions, so a wrong expression shows in the sample. ``PHMX_FHIR_VALIDATE=all`` validates
  every resource (slow; for audits), ``none`` skips the model (the structural checks still run).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from phmx import settings
from phmx.errors import ConfigError, PhmxError

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa
    from pyspark.sql import DataFrame

    from jobs.publish.package import HashingWriter

FIRST = 200
EVERY = 500
MODES = ("sample", "all", "none")


@dataclass
class StreamStats:
    """What one NDJSON file holds: resources, Part 2 resources, validation done, structural failures."""

    count: int = 0
    part2: int = 0
    validated: int = 0
    validate_seconds: float = 0.0
    problems: Counter[str] = field(default_factory=Counter)


def validate_mode() -> str:
    """``PHMX_FHIR_VALIDATE``: sample (default), all, or none."""
    mode = settings.load().fhir_validate.strip().lower() or "sample"
    if mode not in MODES:
        raise ConfigError(f"PHMX_FHIR_VALIDATE must be one of {', '.join(MODES)}")
    return mode


def sample_positions(start: int, stop: int, mode: str) -> list[int]:
    """Positions in ``[start, stop)`` to validate: the first FIRST and every EVERY-th (sample mode)."""
    if mode == "all":
        return list(range(start, stop))
    if mode == "none":
        return []
    head = range(start, min(stop, FIRST))
    s0 = max(start, FIRST)
    return [*head, *range(s0 + (-s0) % EVERY, stop, EVERY)]


def arrow_batches(df: DataFrame) -> Iterator[pa.Table]:
    """The frame's rows as Arrow tables, as the engine streams them (Spark Connect), or in chunks of
    rows from ``toLocalIterator`` on a classic session. Never the whole result at once."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    # The frame's class says which API it is: a classic session's ``.client`` raises
    # (ONLY_SUPPORTED_WITH_SPARK_CONNECT) rather than being absent. Its module is read rather than
    # importing Spark Connect's DataFrame: that import needs grpc, which a cluster's job bundle
    # (make dist) does not ship, so a classic job must never import it.
    if type(df).__module__.startswith("pyspark.sql.connect."):
        client: Any = df.sparkSession.client
        plan: Any = df._plan  # noqa: SLF001 - Spark Connect's streaming fetch takes the plan
        for item in client.to_table_as_iterator(plan.to_proto(client), plan.observations):
            if isinstance(item, pa.Table) and item.num_rows:
                yield item
        return
    schema = to_arrow_schema(df.schema)  # the types Connect would stream, not ones guessed from values
    chunk: list[dict[str, Any]] = []
    for row in df.toLocalIterator():
        chunk.append(row.asDict(recursive=True))
        if len(chunk) >= 10_000:
            yield pa.Table.from_pylist(chunk, schema=schema)
            chunk = []
    if chunk:
        yield pa.Table.from_pylist(chunk, schema=schema)


def _string_bytes(arr: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of a string array's values (its data buffer, no copy)."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_string_view(arr.type) or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.large_string())
    if len(arr) == 0:
        return memoryview(b"")
    _, offsets, data = arr.buffers()
    dtype = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offs = np.frombuffer(offsets, dtype=dtype)
    start, end = int(offs[arr.offset]), int(offs[arr.offset + len(arr)])
    return memoryview(data)[start:end]


def write_ndjson(df: DataFrame, writer: HashingWriter, resource_type: str, *, mode: str | None = None) -> StreamStats:
    """Append the frame's ``line`` values (in the frame's order) to ``writer``; check as documented."""
    import pyarrow.compute as pc
    from fhir.resources.R4B import get_fhir_model_class

    mode = mode or validate_mode()
    model = get_fhir_model_class(resource_type)
    stats = StreamStats()
    for table in arrow_batches(df):
        docs = table.column("line")
        n = table.num_rows
        if docs.null_count:
            stats.problems["no_document"] += docs.null_count
        for chunk in docs.chunks:
            writer.write(_string_bytes(chunk))
        stats.part2 += int(pc.sum(table.column("part2").cast("int64")).as_py() or 0)
        probs = table.column("problem").drop_null()
        if len(probs):
            for p in probs.to_pylist():
                stats.problems.update(p.split(","))
        t = time.perf_counter()
        for pos in sample_positions(stats.count, stats.count + n, mode):
            doc = docs[pos - stats.count].as_py()
            if doc is None:
                continue
            try:
                model.model_validate(json.loads(doc))
            except Exception as exc:  # noqa: BLE001 - re-raised without the resource's content
                raise PhmxError(f"{resource_type} resource at line {pos + 1} is not valid FHIR R4B "
                                f"({type(exc).__name__})", hint="a plan feed builder expression is wrong") from None
            stats.validated += 1
        stats.validate_seconds += time.perf_counter() - t
        stats.count += n
    if stats.problems:
        detail = ", ".join(f"{k} x{v}" for k, v in sorted(stats.problems.items()))
        raise PhmxError(f"{resource_type}: {sum(stats.problems.values())} structural check failure(s): {detail}",
                        hint="nothing was published; the rows behind these resources need fixing")
    return stats
