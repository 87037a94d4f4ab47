"""Link any person files: ``phmx identity link INPUT... --mapping MAP.yaml [--mapping ...] --out DIR``.

Each input (CSV with a header, or Parquet) is read by the engine and mapped to the canonical
person fields by a small YAML mapping, one for all inputs or one per input (each file its own
id column and layout)::

    id: rec_id
    fields:
      given_name: given_name
      family_name: surname
      birth_date: {column: date_of_birth, format: "%Y%m%d"}
      address_line: [street_number, address_1, address_2]   # joined with spaces
      city: suburb
      postal_code: postcode                                  # alias of zip
      mother_maiden_name: mmn                                # where a source has it
    identifiers:
      ssn: social_security_no          # a declared identifier of the settings, by name
      person_number:                   # or a declaration of its own
        column: soc_sec_id
        normalise: digits
        pattern: "^[0-9]{7}$"
        levels: [exact, one_typo, transposition]
        guard: true

The records then go through exactly the stage's engine code (standardise, block, compare,
EM, score, guarded clustering). A field no input has is left out of blocking and comparisons;
a field only some inputs have is null (no evidence) for the others. Outputs:
``DIR/pairs.parquet`` (source_l, record_id_l, source_r, record_id_r, match_probability) and
``DIR/clusters.parquet`` (source, record_id, member_id); ``source`` is the input's file stem.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from jobs.identity import config, ids, linkage, standardise
from jobs.identity.config import IdentifierSpec, IdentitySettings
from phmx import storage
from phmx.errors import ConfigError
from phmx.log import get_logger

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession

log = get_logger(__name__)

CANONICAL = ("given_name", "middle_name", "family_name", "birth_date", "sex", "address_line", "city", "state",
             "zip", "county_fips", "phone", "email", "record_date", "alias_given_name", "alias_family_name",
             "mother_maiden_name")
ALIASES = {"postal_code": "zip", "zip_code": "zip", "postcode": "zip", "first_name": "given_name",
           "last_name": "family_name", "surname": "family_name", "dob": "birth_date",
           "date_of_birth": "birth_date", "gender": "sex", "street": "address_line", "address": "address_line",
           "aka_given_name": "alias_given_name", "aka_family_name": "alias_family_name",
           "maiden_name": "alias_family_name", "mothers_maiden_name": "mother_maiden_name"}


@dataclass(frozen=True)
class FieldSpec:
    columns: tuple[str, ...]
    format: str | None = None


@dataclass(frozen=True)
class Mapping:
    """One input layout: its id column, canonical fields, identifiers (column -> declaration)."""

    id: str
    fields: dict[str, FieldSpec]
    identifiers: dict[str, tuple[str, config.Identifier]]
    source_file: str = ""


class _FieldColumns(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: str | None = None
    columns: list[str] | None = None
    format: str | None = None


class _IdentifierDecl(IdentifierSpec):
    """An identifier declared in a mapping: the settings' declaration without a name (the key
    names it); ``column`` is the file's column."""

    name: str = "_"


class MappingSpec(BaseModel):
    """The mapping file's schema (unknown keys refused)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    fields: dict[str, str | list[str] | _FieldColumns]
    identifiers: dict[str, str | _IdentifierDecl] = {}


def load_mapping(path: str | Path, settings: IdentitySettings | None = None) -> Mapping:
    """Read and validate a mapping file; errors name the file and the key."""
    p = str(path)
    try:
        data = yaml.safe_load(Path(p).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read mapping {p}: {type(exc).__name__}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise ConfigError(f"{p}: key 'id' (the record id column) is required")
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(config.validation_message(exc, p)) from None
    base = settings or config.load()
    declared = {i.name: i for i in base.identifiers}
    fields: dict[str, FieldSpec] = {}
    idents: dict[str, tuple[str, config.Identifier]] = {}
    for key, fs in spec.fields.items():
        name = ALIASES.get(str(key), str(key))
        if name in declared and isinstance(fs, str):
            idents[name] = (fs, declared[name])  # ``ssn: soc_sec_id`` under fields, as before
            continue
        if name not in CANONICAL:
            raise ConfigError(f"{p}: fields.{key}: unknown canonical field (known: {', '.join(CANONICAL)}; "
                              f"aliases: {', '.join(sorted(ALIASES))}; identifiers go under 'identifiers')")
        if isinstance(fs, str):
            fields[name] = FieldSpec((fs,))
        elif isinstance(fs, list):
            if not fs:
                raise ConfigError(f"{p}: fields.{key}: an empty list of columns")
            fields[name] = FieldSpec(tuple(fs))
        else:
            cols = fs.columns or ([fs.column] if fs.column else [])
            if not cols:
                raise ConfigError(f"{p}: fields.{key}: give 'column' or 'columns'")
            fields[name] = FieldSpec(tuple(cols), fs.format)
    for key, decl in spec.identifiers.items():
        if isinstance(decl, str):
            if key not in declared:
                raise ConfigError(f"{p}: identifiers.{key}: not an identifier of the settings "
                                  f"({', '.join(sorted(declared))}); declare it here with column, normalise, "
                                  "pattern, levels and guard")
            idents[key] = (decl, declared[key])
            continue
        try:
            built = IdentifierSpec.model_validate({**decl.model_dump(exclude={"name", "column"}), "name": key}).build()
        except ValidationError as exc:
            raise ConfigError(config.validation_message(exc, f"{p}: identifiers.{key}")) from None
        if not decl.column:
            raise ConfigError(f"{p}: identifiers.{key}.column: the file's column is required")
        if key in config.BASE_FEATURES:
            raise ConfigError(f"{p}: identifiers.{key}: a built-in feature name; choose another name")
        idents[key] = (decl.column, built)
    return Mapping(id=spec.id, fields=fields, identifiers=idents, source_file=p)


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


def read_input(spark: SparkSession, path: str, mapping: Mapping, *, strict: bool = True) -> tuple[DataFrame, set[str]]:
    """One input as person-shaped rows (source = file stem) and the fields it has (canonical
    fields, and identifiers by name).

    ``strict``: a mapped column missing from the file is an error (a mapping made for this
    input); otherwise (one mapping shared by inputs of different layouts) the field is null
    for this input and a warning says so.
    """
    from pyspark.sql import functions as F

    stem = input_stem(path)
    lower = path.lower()
    if lower.endswith(".parquet") or lower.endswith(".pq"):
        df = spark.read.parquet(path)
    elif lower.endswith(".csv") or lower.endswith(".txt") or lower.endswith(".csv.gz"):
        df = spark.read.option("header", True).option("inferSchema", False).csv(path)
    else:
        raise ConfigError(f"{path}: input must be .csv or .parquet")
    # CSV headers written as "a, b" (FEBRL's) carry the spaces into the names.
    df = df.toDF(*[c.strip() for c in df.columns])
    cols = set(df.columns)
    if mapping.id not in cols:
        raise ConfigError(f"{path}: id column {mapping.id!r} (from {mapping.source_file}) is not in the file")
    select: list[Any] = [F.lit(stem).alias("source"), F.trim(F.col(mapping.id).cast("string")).alias("source_person_id")]
    present: set[str] = set()
    for name in CANONICAL:
        spec = mapping.fields.get(name)
        have = [c for c in spec.columns if c in cols] if spec else []
        if spec and len(have) < len(spec.columns):
            if strict:
                raise ConfigError(f"{path}: fields.{name} (from {mapping.source_file}) names columns not in the "
                                  f"file: {sorted(set(spec.columns) - cols)}")
            log.warning("%s: %d mapped column(s) for %s are missing; treated as empty",
                        stem, len(spec.columns) - len(have), name)
        if not have:
            value = F.lit(None).cast("date" if name in ("birth_date", "record_date") else "string")
        elif name in ("birth_date", "record_date"):
            value = parse_date(F.col(have[0]), spec.format if spec else None)
            present.add(name)
        else:
            value = _text(have)
            present.add(name)
        select.append(value.alias(name))
    for name, (column, _decl) in sorted(mapping.identifiers.items()):
        if column not in cols:
            if strict:
                raise ConfigError(f"{path}: identifiers.{name} (from {mapping.source_file}): column {column!r} "
                                  "is not in the file")
            log.warning("%s: the column for identifier %s is missing; treated as empty", stem, name)
            select.append(F.lit(None).cast("string").alias(name))
            continue
        select.append(_text([column]).alias(name))
        present.add(name)
    return df.select(*select), present


def _text(columns: list[str]) -> Column:
    from pyspark.sql import functions as F

    parts = [F.trim(F.col(c).cast("string")) for c in columns]
    joined = parts[0] if len(parts) == 1 else F.concat_ws(" ", *parts)
    return F.when(F.length(joined) > 0, joined)


def input_stem(path: str) -> str:
    return PurePosixPath(path.rstrip("/")).name.split(".")[0]


def link_settings(base: IdentitySettings, mappings: list[Mapping]) -> IdentitySettings:
    """The settings for these inputs: the identifiers their mappings declare (one declaration
    per name across inputs; a settings identifier keeps its declaration), each read from the
    person column of its name."""
    decls: dict[str, config.Identifier] = {}
    for m in mappings:
        for name, (_col, decl) in m.identifiers.items():
            d = replace(decl, column=name, sources=("*",))
            if name in decls and decls[name] != d:
                raise ConfigError(f"{m.source_file}: identifiers.{name}: declared differently by another "
                                  "input's mapping; one identifier has one declaration")
            decls[name] = d
    return base.with_identifiers(tuple(decls[k] for k in sorted(decls)))


@dataclass
class LinkRun:
    """One ``link`` run's engine results: the settings used (restricted to the fields the
    inputs have), the standardised records, the scored pairs and model, the clustering."""

    settings: IdentitySettings
    std: DataFrame
    scored: linkage.Scored
    links: linkage.Links
    clusters: DataFrame
    records: int


def run_link(spark: SparkSession, inputs: list[str], mapping_paths: str | list[str], work: str, *,
             settings: IdentitySettings | None = None) -> LinkRun:
    """Read, standardise, block, compare, train, score and cluster the inputs (intermediate
    frames under ``work``). :func:`link_files` writes its outputs from this; the public
    benchmark's miss report reads the same run."""
    from pyspark.sql import functions as F

    if not inputs:
        raise ConfigError("give at least one input file")
    paths = [mapping_paths] if isinstance(mapping_paths, str) else list(mapping_paths)
    if len(paths) not in (1, len(inputs)):
        raise ConfigError(f"{len(inputs)} inputs and {len(paths)} mappings: give one mapping for all inputs "
                          "or one per input, in the same order")
    base = settings or config.load()
    loaded = {p: load_mapping(p, base) for p in dict.fromkeys(paths)}
    per_input = [loaded[paths[0] if len(paths) == 1 else paths[i]] for i in range(len(inputs))]
    stems = [input_stem(p) for p in inputs]
    if len(set(stems)) != len(stems):
        raise ConfigError("two inputs have the same file stem; the stem is the record's source")
    full = link_settings(base, list(loaded.values()))
    frames, present = [], set()
    for path, mapping in zip(inputs, per_input, strict=True):
        df, have = read_input(spark, path, mapping, strict=len(paths) > 1)
        frames.append(df)
        present |= have
    idents = sorted({n for m in per_input for n in m.identifiers})
    frames = [f.select(*f.columns, *[F.lit(None).cast("string").alias(n) for n in idents if n not in f.columns])
              for f in frames]
    person = frames[0]
    for f in frames[1:]:
        person = person.unionByName(f)
    s = full.restricted_to(standardise.available_features(present, full))
    if not s.rules or not s.comparisons:
        raise ConfigError("the mapping gives too few fields to block and compare records",
                          hint="map at least names and a birth date, or an identifier")
    scratch = linkage.Scratch(spark, "identity", root=work)
    std = linkage.prepare(person, scratch, s)
    n = std.count()
    if std.select("rid").distinct().count() != n:
        raise ConfigError("record ids are not unique within an input (or two inputs share a stem)")
    scored = linkage.score(spark, std, s, scratch)
    links = linkage.link(spark, scored, s)
    clusters = linkage.cluster_frame(spark, std, links.labels)
    return LinkRun(settings=s, std=std, scored=scored, links=links, clusters=clusters, records=int(n))


def link_files(spark: SparkSession, inputs: list[str], mapping_paths: str | list[str], out_dir: str, *,
               settings: IdentitySettings | None = None, min_probability: float | None = None) -> dict[str, Any]:
    """Link the inputs; write ``pairs.parquet`` and ``clusters.parquet`` under ``out_dir``.

    ``mapping_paths``: one mapping for every input, or one per input (in the same order).
    """
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    work = storage.join(out_dir, "_work")
    run = run_link(spark, inputs, mapping_paths, work, settings=settings)
    s, std, scored, clusters, n = run.settings, run.std, run.scored, run.clusters, run.records
    keys = std.select("rid", "source", "source_person_id")
    members = clusters.withColumn("_key", F.concat_ws("\u001f", "source", "source_person_id")) \
        .groupBy("cluster").agg(F.min("_key").alias("_ckey")).select("cluster", ids.mint(F.col("_ckey")).alias("member_id"))
    cl: pd.DataFrame = clusters.join(members, "cluster").select("source", F.col("source_person_id").alias("record_id"), "member_id") \
        .orderBy("source", "record_id").toPandas()
    floor = s.review_probability if min_probability is None else min_probability
    sc = scored.scored(s).where(F.col("match_probability") >= F.lit(floor))
    left = keys.select(F.col("rid").alias("rid_l"), F.col("source").alias("source_l"),
                       F.col("source_person_id").alias("record_id_l"))
    right = keys.select(F.col("rid").alias("rid_r"), F.col("source").alias("source_r"),
                        F.col("source_person_id").alias("record_id_r"))
    pairs: pd.DataFrame = sc.join(left, "rid_l").join(right, "rid_r").select(
        "source_l", "record_id_l", "source_r", "record_id_r", "match_probability") \
        .orderBy(F.col("match_probability").desc(), "source_l", "record_id_l", "source_r", "record_id_r").toPandas()
    _write_parquet(pairs, storage.join(out_dir, "pairs.parquet"))
    _write_parquet(cl, storage.join(out_dir, "clusters.parquet"))
    storage.delete_prefix(work)
    counts = {"records": int(n), "pairs": len(pairs), "members": int(cl["member_id"].nunique()),
              "comparisons": [c.name for c in s.comparisons], "blocking_rules": [r.name for r in s.rules],
              "identifiers": [i.name for i in s.identifiers], "model": scored.model.meta.get("em_runs"),
              "identifier_disagreement": linkage.identifier_disagreement(scored.model, s),
              "seconds": round(time.perf_counter() - t0, 2)}
    log.info("identity link: %s records -> %s members, %s pairs", n, counts["members"], len(pairs))
    return counts


def _write_parquet(frame: Any, uri: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf)
    storage.write_bytes(uri, buf.getvalue())
