"""Link any person files: ``phmx identity link INPUT... --mapping MAP.yaml --out DIR``.

Each input (CSV with a header, or Parquet) is read by the engine and mapped to the canonical
person fields by a small YAML mapping::

    id: rec_id
    fields:
      given_name: given_name
      family_name: surname
      birth_date: {column: date_of_birth, format: "%Y%m%d"}
      ssn: soc_sec_id
      address_line: [street_number, address_1, address_2]   # joined with spaces
      city: suburb
      postal_code: postcode                                  # alias of zip

The records then go through exactly the stage's engine code (standardise, block, compare,
EM, score, guarded clustering). A field no input has is left out of blocking and comparisons;
a field only some inputs have is null (no evidence) for the others. Outputs:
``DIR/pairs.parquet`` (source_l, record_id_l, source_r, record_id_r, match_probability) and
``DIR/clusters.parquet`` (source, record_id, member_id); ``source`` is the input's file stem.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from jobs.identity import config, ids, linkage
from jobs.identity.config import IdentitySettings
from phmx import storage
from phmx.errors import ConfigError
from phmx.log import get_logger

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = get_logger(__name__)

CANONICAL = ("cin", "ssn", "given_name", "middle_name", "family_name", "birth_date", "sex", "address_line",
             "city", "state", "zip", "county_fips", "phone", "email", "record_date")
ALIASES = {"postal_code": "zip", "zip_code": "zip", "postcode": "zip", "first_name": "given_name",
           "last_name": "family_name", "surname": "family_name", "dob": "birth_date",
           "date_of_birth": "birth_date", "gender": "sex", "street": "address_line", "address": "address_line"}
#: Canonical field -> standardised features it makes available.
FEATURES_OF = {
    "given_name": {"gn", "gn_canon", "gn_key", "gn_sdx", "gn_initial", "mi"}, "middle_name": {"mi"},
    "family_name": {"fn", "fn_sdx", "fn_tokens"},
    "birth_date": {"birth_date", "dob_str", "birth_year", "dob_md", "dob_ym"},
    "sex": {"sex"}, "cin": {"cin"}, "ssn": {"ssn"}, "phone": {"phone"}, "zip": {"zip5"},
    "address_line": {"addr_key"}, "city": {"city"},
}


@dataclass(frozen=True)
class FieldSpec:
    columns: tuple[str, ...]
    format: str | None = None


@dataclass(frozen=True)
class Mapping:
    id: str
    fields: dict[str, FieldSpec]
    source_file: str = ""


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file; errors name the file and the key."""
    p = str(path)
    try:
        data = yaml.safe_load(Path(p).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read mapping {p}: {type(exc).__name__}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ConfigError(f"{p}: key 'id' (the record id column) is required")
    raw = data.get("fields")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{p}: key 'fields' must map canonical fields to columns")
    fields: dict[str, FieldSpec] = {}
    for key, spec in raw.items():
        name = ALIASES.get(str(key), str(key))
        if name not in CANONICAL:
            raise ConfigError(f"{p}: fields.{key}: unknown canonical field (known: {', '.join(CANONICAL)}; "
                              f"aliases: {', '.join(sorted(ALIASES))})")
        if isinstance(spec, str):
            fields[name] = FieldSpec((spec,))
        elif isinstance(spec, list) and spec and all(isinstance(c, str) for c in spec):
            fields[name] = FieldSpec(tuple(spec))
        elif isinstance(spec, dict) and ("column" in spec or "columns" in spec):
            cols = spec.get("columns") or [spec["column"]]
            cols = [cols] if isinstance(cols, str) else cols
            fmt = spec.get("format")
            if fmt is not None and not isinstance(fmt, str):
                raise ConfigError(f"{p}: fields.{key}.format must be a strftime string like \"%Y%m%d\"")
            fields[name] = FieldSpec(tuple(cols), fmt)
        else:
            raise ConfigError(f"{p}: fields.{key}: expected a column name, a list of columns, or "
                              "{column: ..., format: ...}")
    return Mapping(id=data["id"], fields=fields, source_file=p)


_STRFTIME = {"%Y": "yyyy", "%y": "yy", "%m": "MM", "%d": "dd", "%b": "MMM", "%B": "MMMM", "%j": "DDD",
             "%H": "HH", "%M": "mm", "%S": "ss", "%%": "%"}


def spark_date_pattern(fmt: str) -> str:
    """Translate a strftime date format to the engine's datetime pattern."""
    out, i = [], 0
    while i < len(fmt):
        two = fmt[i:i + 2]
        if two in _STRFTIME:
            out.append(_STRFTIME[two])
            i += 2
        elif fmt[i] == "%":
            raise ConfigError(f"unsupported date directive {two!r} in {fmt!r}")
        else:
            ch = fmt[i]
            out.append(f"'{ch}'" if ch.isalpha() else ch)
            i += 1
    return "".join(out)


def parse_date(col: Column, fmt: str | None) -> Column:
    """A date from text: with ``fmt`` exactly that format; without, ISO, yyyymmdd or mm/dd/yyyy."""
    from pyspark.sql import functions as F

    text = F.trim(col.cast("string"))
    if fmt:
        return F.try_to_timestamp(text, F.lit(spark_date_pattern(fmt))).cast("date")
    return F.coalesce(*[F.try_to_timestamp(text, F.lit(p)).cast("date")
                        for p in ("yyyy-MM-dd", "yyyyMMdd", "MM/dd/yyyy", "yyyy/MM/dd")])


def read_input(spark: SparkSession, path: str, mapping: Mapping) -> tuple[DataFrame, set[str]]:
    """One input as person-shaped rows (source = file stem) and the canonical fields it has."""
    from pyspark.sql import functions as F

    stem = PurePosixPath(path.rstrip("/")).name.split(".")[0]
    lower = path.lower()
    if lower.endswith(".parquet") or lower.endswith(".pq"):
        df = spark.read.parquet(path)
    elif lower.endswith(".csv") or lower.endswith(".txt") or lower.endswith(".csv.gz"):
        df = spark.read.option("header", True).option("inferSchema", False).csv(path)
    else:
        raise ConfigError(f"{path}: input must be .csv or .parquet")
    cols = set(df.columns)
    if mapping.id not in cols:
        raise ConfigError(f"{path}: id column {mapping.id!r} (from {mapping.source_file}) is not in the file")
    select: list[Any] = [F.lit(stem).alias("source"), F.col(mapping.id).cast("string").alias("source_person_id")]
    present: set[str] = set()
    for name in CANONICAL:
        spec = mapping.fields.get(name)
        have = [c for c in spec.columns if c in cols] if spec else []
        if spec and len(have) < len(spec.columns):
            log.warning("%s: %d mapped column(s) for %s are missing; treated as empty",
                        stem, len(spec.columns) - len(have), name)
        if not have:
            value = F.lit(None).cast("date" if name in ("birth_date", "record_date") else "string")
        elif name in ("birth_date", "record_date"):
            value = parse_date(F.col(have[0]), spec.format if spec else None)
            present.add(name)
        else:
            parts = [F.trim(F.col(c).cast("string")) for c in have]
            joined = parts[0] if len(parts) == 1 else F.concat_ws(" ", *parts)
            value = F.when(F.length(joined) > 0, joined)
            present.add(name)
        select.append(value.alias(name))
    return df.select(*select), present


def link_files(spark: SparkSession, inputs: list[str], mapping_path: str, out_dir: str, *,
               settings: IdentitySettings | None = None, min_probability: float | None = None) -> dict[str, Any]:
    """Link the inputs; write ``pairs.parquet`` and ``clusters.parquet`` under ``out_dir``."""
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    if not inputs:
        raise ConfigError("give at least one input file")
    mapping = load_mapping(mapping_path)
    base = settings or config.load()
    frames, present = [], set()
    for path in inputs:
        df, have = read_input(spark, path, mapping)
        frames.append(df)
        present |= have
    stems = [PurePosixPath(p.rstrip("/")).name.split(".")[0] for p in inputs]
    if len(set(stems)) != len(stems):
        raise ConfigError("two inputs have the same file stem; the stem is the record's source")
    person = frames[0]
    for f in frames[1:]:
        person = person.unionByName(f)
    available: set[str] = set()
    for name in present:
        available |= FEATURES_OF.get(name, set())
    if {"given_name", "family_name"} <= present:
        available.add("name_set")
    s = base.restricted_to(available)
    if not s.rules or not s.comparisons:
        raise ConfigError("the mapping gives too few fields to block and compare records",
                          hint="map at least names and a birth date, or an identifier")
    work = storage.join(out_dir, "_work")
    scratch = linkage.Scratch(spark, root=work)
    std = linkage.prepare(person, scratch, s)
    n = std.count()
    if std.select("rid").distinct().count() != n:
        raise ConfigError("record ids are not unique within an input (or two inputs share a stem)")
    scored = linkage.score(spark, std, s, scratch)
    links = linkage.link(spark, scored, s)
    clusters = linkage.cluster_frame(spark, std, links.labels)
    keys = std.select("rid", "source", "source_person_id")
    members = clusters.withColumn("_key", F.concat_ws("\u001f", "source", "source_person_id")) \
        .groupBy("cluster").agg(F.min("_key").alias("_ckey")).select("cluster", ids.mint(F.col("_ckey")).alias("member_id"))
    cl = clusters.join(members, "cluster").select("source", F.col("source_person_id").alias("record_id"), "member_id") \
        .orderBy("source", "record_id").toPandas()
    floor = s.review_probability if min_probability is None else min_probability
    sc = scored.scored(s).where(F.col("match_probability") >= F.lit(floor))
    left = keys.select(F.col("rid").alias("rid_l"), F.col("source").alias("source_l"),
                       F.col("source_person_id").alias("record_id_l"))
    right = keys.select(F.col("rid").alias("rid_r"), F.col("source").alias("source_r"),
                        F.col("source_person_id").alias("record_id_r"))
    pairs = sc.join(left, "rid_l").join(right, "rid_r").select(
        "source_l", "record_id_l", "source_r", "record_id_r", "match_probability") \
        .orderBy(F.col("match_probability").desc(), "source_l", "record_id_l", "source_r", "record_id_r").toPandas()
    _write_parquet(pairs, storage.join(out_dir, "pairs.parquet"))
    _write_parquet(cl, storage.join(out_dir, "clusters.parquet"))
    storage.delete_prefix(work)
    counts = {"records": int(n), "pairs": len(pairs), "members": int(cl["member_id"].nunique()),
              "comparisons": [c.name for c in s.comparisons], "blocking_rules": [r.name for r in s.rules],
              "seconds": round(time.perf_counter() - t0, 2)}
    log.info("identity link: %s records -> %s members, %s pairs", n, counts["members"], len(pairs))
    return counts


def _write_parquet(frame: Any, uri: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf)
    storage.write_bytes(uri, buf.getvalue())
