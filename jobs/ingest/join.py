"""Joining the files of one submission: a main file plus companion files, declared in YAML.

The common CSV export shape sends one file per entity: ``patients.csv`` and ``immunizations.csv``
(Synthea's CSV output), a county's client file and its service file. A feed whose bronze rows need
columns of both declares the join on its delimited format::

    format:
      type: delimited
      join:
        patients:                       # the companion's name; its columns are sources "patients.<column>"
          file: "patients*.csv"         # companion file(s) in the same period folder (a glob)
          key: [registry_patient_id]    # fields of this feed ...
          companion_key: [Id]           # ... matched to these columns of the companion

(``companion_key``, not ``on``: YAML reads a bare ``on`` as the boolean true.)

Every file of the period folder that matches a companion glob is read with the main file(s) and
is not a submission of its own; the main file's receipt names the companions and their hashes, and
the submission id covers their bytes (a changed companion is a new submission). A record whose key
has no row in the companion is quarantined as ``join_unmatched``; a key the companion holds twice
as ``join_ambiguous`` (which row is meant cannot be known); no companion at all rejects the file
(``join_file_missing``) and an unreadable one too (``join_file``), naming the companion.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.ingest.formats.base import Chunk, FileRejected, LazyRaw, RecordIssue
from jobs.ingest.formats.delimited import compose

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec

_SEP = "\x1f"


def joins(spec: FeedSpec) -> dict[str, dict[str, Any]]:
    """The spec's joins by companion name (empty for a one-file feed)."""
    j = spec.format.get("join") if spec.format_type == "delimited" else None
    return dict(j) if isinstance(j, dict) else {}


def check_join(spec: FeedSpec) -> list[tuple[str, str]]:
    """Problems in a spec's ``format.join`` (run when specs load), each with its key."""
    raw = spec.format.get("join")
    if raw is None:
        return []
    if not isinstance(raw, dict) or not raw:
        return [("format.join", "maps a companion name to {file, key, companion_key}")]
    problems: list[tuple[str, str]] = []
    names = set(spec.field_names)
    for name, j in raw.items():
        key = f"format.join.{name}"
        if not isinstance(j, dict) or set(j) != {"file", "key", "companion_key"}:
            problems.append((key, "needs exactly file (a glob), key (fields of this feed) and companion_key "
                             "(companion columns)"))
            continue
        if not isinstance(j["file"], str) or not j["file"]:
            problems.append((f"{key}.file", "a file name or glob in the same period folder"))
        k, on = j["key"], j["companion_key"]
        if not isinstance(k, list) or not k or not isinstance(on, list) or len(on) != len(k):
            problems.append((f"{key}.key", "key and companion_key are lists of the same length"))
            continue
        for fname in k:
            if fname not in names:
                problems.append((f"{key}.key", f"unknown field {fname!r}"))
            elif any(s.startswith(f"{n}.") for n in raw for s in spec.field(fname).sources):
                problems.append((f"{key}.key", f"{fname} must be read from the main file"))
    for i, f in enumerate(spec.fields):
        joined = [s.split(".", 1)[0] in raw and "." in s for s in f.sources]
        if any(joined) and not all(joined):
            problems.append((f"fields[{i}].source", "a composite takes all its parts from one file"))
        if any(joined) and len({s.split(".", 1)[0] for s in f.sources}) > 1:
            problems.append((f"fields[{i}].source", "a composite takes all its parts from one companion"))
    return problems


def reference_files(spec: FeedSpec) -> list[str]:
    """A FHIR feed's ``format.companions``: name patterns of files sent beside its own whose resources
    its references point at (``Patient*.ndjson`` beside Immunizations that reference ``Patient/<id>``)."""
    raw = spec.format.get("companions") if spec.format_type == "fhir_ndjson" else None
    return [str(x) for x in raw] if isinstance(raw, list) else []


def takes_companions(spec: FeedSpec) -> bool:
    """Whether files of this feed's folder may be companions rather than submissions of their own."""
    return bool(joins(spec) or reference_files(spec))


def is_companion(spec: FeedSpec, file_name: str) -> bool:
    """Whether a landed file is a companion of this feed (read with its main file, not on its own)."""
    patterns = [str(j["file"]) for j in joins(spec).values()] + reference_files(spec)
    return any(fnmatch.fnmatch(file_name, p) for p in patterns)


def companions_of(spec: FeedSpec, names: list[str]) -> list[str]:
    """Which of the files of a period folder are companions of this feed (sorted)."""
    return sorted(n for n in names if is_companion(spec, n))


def _companion_spec(spec: FeedSpec, name: str) -> FeedSpec:
    """A one-off spec reading the companion's columns this feed uses (all text, no checks)."""
    from phmx.feedspec import FieldSpec

    j = joins(spec)[name]
    cols = [str(c) for c in j["companion_key"]]
    for f in spec.fields:
        for s in f.sources:
            if s.startswith(f"{name}.") and s.split(".", 1)[1] not in cols:
                cols.append(s.split(".", 1)[1])
    fields = tuple(FieldSpec(name=f"c{i}", source=c, required=c in j["companion_key"]) for i, c in enumerate(cols))
    fmt = {k: v for k, v in spec.format.items() if k != "join"}
    return spec.model_copy(update={"fields": fields, "format": fmt, "rules": ()})


def read_companion(spec: FeedSpec, name: str, files: dict[str, bytes]) -> tuple[dict[str, pa.Array], list[str]]:
    """The companion's rows as ``{column: array}`` (all matching files, in name order) and notes."""
    from jobs.ingest.formats import delimited

    j = joins(spec)[name]
    matching = sorted(n for n in files if fnmatch.fnmatch(n, str(j["file"])))
    if not matching:
        raise FileRejected("join_file_missing", f"no companion file {j['file']} ({name}) in the period folder")
    cspec = _companion_spec(spec, name)
    parts: dict[str, list[pa.Array]] = {f.name: [] for f in cspec.fields}
    notes = []
    for fname in matching:
        skipped = 0
        try:
            for chunk in delimited.parse(files[fname], cspec, file_name=fname):
                skipped += len(chunk.issues)
                for f in cspec.fields:
                    col = chunk.columns[f.name]
                    parts[f.name].append(col if isinstance(col, pa.Array) else pa.array(col, pa.string()))
        except FileRejected as fr:
            raise FileRejected("join_file", f"the companion file {fname} cannot be read: {fr.rule_id}: "
                               f"{fr.message}") from None
        notes.append(f"joined with companion file {fname} ({name})"
                     + (f"; {skipped} of its lines could not be read" if skipped else ""))
    out = {str(f.source): pa.concat_arrays(parts[f.name]) if parts[f.name] else pa.array([], pa.string())
           for f in cspec.fields}
    return out, notes


Companions = dict[str, dict[str, pa.Array]]


def read_all(spec: FeedSpec, files: dict[str, bytes]) -> tuple[Companions, list[str]]:
    """Every companion of the spec read from the submission's other files, with notes for the receipt.

    Raises :class:`FileRejected` (``join_file_missing``, ``join_file``) naming the companion.
    """
    tables: Companions = {}
    notes: list[str] = []
    for name in joins(spec):
        tables[name], n = read_companion(spec, name, files)
        notes += n
    return tables, notes


def apply(chunks: Iterator[Chunk], spec: FeedSpec, tables: Companions, notes: list[str]) -> Iterator[Chunk]:
    """The main file's chunks with each joined field filled from its companion; records whose key
    matches no companion row (or two) become record issues, so conservation holds."""
    first = True
    for chunk in chunks:
        if first:
            chunk.notes = [*chunk.notes, *notes]
            first = False
        yield _join_chunk(chunk, spec, tables)


def _keys(cols: list[pa.Array]) -> pa.Array:
    return cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, _SEP)


def _join_chunk(chunk: Chunk, spec: FeedSpec, tables: dict[str, dict[str, pa.Array]]) -> Chunk:
    n = len(chunk)
    if n == 0:
        return chunk
    columns = {k: (v if isinstance(v, pa.Array) else pa.array(v, pa.string())) for k, v in chunk.columns.items()}
    bad: dict[int, tuple[str, str, str]] = {}
    for name, j in joins(spec).items():
        comp = tables[name]
        ckey = _keys([comp[str(c)] for c in j["companion_key"]])
        vc = pc.value_counts(ckey)
        twice = pc.filter(vc.field("values"), pc.greater(vc.field("counts"), 1)) if len(vc) else ckey[:0]
        mkey = _keys([columns[k] for k in j["key"]])
        idx = pc.index_in(mkey, value_set=ckey)
        ambiguous = np.asarray(pc.fill_null(pc.is_in(mkey, value_set=twice), False))
        missing = np.asarray(pc.is_null(idx))
        for i in np.flatnonzero(missing | ambiguous).tolist():
            if i not in bad:
                rule = "join_ambiguous" if ambiguous[i] else "join_unmatched"
                what = "is in the companion file twice" if ambiguous[i] else "has no row in the companion file"
                bad[i] = (rule, ",".join(j["key"]), f"the record's {' + '.join(j['key'])} {what} ({j['file']})")
        for f in spec.fields:
            if f.sources and all(s.startswith(f"{name}.") for s in f.sources):
                parts = [comp[s.split(".", 1)[1]].take(idx) for s in f.sources]
                columns[f.name] = compose(parts, f.separator)
    if not bad:
        return Chunk(columns, chunk.row_numbers, chunk.raw, chunk.issues, chunk.notes, chunk.locators)
    keep = np.setdiff1d(np.arange(n), np.fromiter(bad, dtype=np.int64))
    rows = np.asarray(chunk.row_numbers)
    issues = list(chunk.issues) + [RecordIssue(int(rows[i]), rule, fld, msg, chunk.raw[i])
                                   for i, (rule, fld, msg) in sorted(bad.items())]
    take = pa.array(keep, pa.int64())
    raw = chunk.raw
    return Chunk({k: v.take(take) for k, v in columns.items()}, rows[keep],
                 LazyRaw(len(keep), lambda i: raw[int(keep[i])]), issues, chunk.notes,
                 [chunk.locators[int(i)] for i in keep] if chunk.locators else None)
