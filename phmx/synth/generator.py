"""``generate()``: the synthetic submitters' files for one shared population, chunk by chunk.

Why chunks: a million members must fit in bounded memory. People are generated in chunks with
RNGs derived from (seed, chunk index), households never cross a chunk, and each chunk's rows are
appended to the month files in chunk order; so output is byte-identical for a seed whatever the
number of worker processes. Variant formats (X12 834, HL7 VXU, ...) are written afterwards by
streaming the finished delimited files through the registered writers, and last the adults' BMI
observations the plans send as FHIR (phmx.synth.bmi), from the finished enrollment files.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from phmx import storage
from phmx.errors import ConfigError, StorageError
from phmx.log import get_logger
from phmx.synth.bmi import write_bmi
from phmx.synth.config import SynthConfig
from phmx.synth.layouts import LAYOUTS
from phmx.synth.reference import valid_ca_fips
from phmx.synth.render import INDEX_FIELDS, PEOPLE_FIELDS, PERSON_MAP_FIELDS, ChunkPayload, Key, render_chunk
from phmx.synth.world import build_world
from phmx.synth.writers import SPECS, load_writers
from phmx.synth.writers.delimited import header_line

log = get_logger(__name__)

MANIFEST = "ground_truth/manifest.json"


@dataclass
class SynthSummary:
    """What a run wrote: files (relative path -> data rows), rows per feed, people, seconds."""

    out_dir: str
    people: int
    seconds: float
    files: dict[str, int] = field(default_factory=dict)
    rows_by_feed: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    chunks: int = 0
    workers: int = 1

    @property
    def total_rows(self) -> int:
        return sum(self.rows_by_feed.values())

    def to_dict(self) -> dict:
        return asdict(self) | {"total_rows": self.total_rows}


def landing_relpath(submitter: str, feed_name: str, period: str, suffix: str) -> str:
    return f"landing/{submitter}/{feed_name}/{period}/{submitter}_{feed_name}_{period.replace('-', '')}{suffix}"


def _validate(members: int, counties: list[str], start: str, months: int, formats: set[str]) -> None:
    if members < 1:
        raise ConfigError("synth: members must be at least 1")
    if not counties:
        raise ConfigError("synth: at least one county is needed", hint="e.g. --counties 06001,06013,06075")
    bad = [c for c in counties if not valid_ca_fips(c)]
    if bad:
        raise ConfigError(f"synth: not California county FIPS codes: {bad}", hint="06001 (Alameda) to 06115 (Yuba), odd")
    if len(set(counties)) != len(counties):
        raise ConfigError("synth: a county is listed twice")
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", start):
        raise ConfigError(f"synth: start must be YYYY-MM, got {start!r}")
    if not 1 <= months <= 60:
        raise ConfigError("synth: months must be between 1 and 60")
    specs = load_writers()
    known = {fmt for (_feed, fmt) in specs}
    unknown = sorted(set(formats) - known)
    if unknown:
        raise ConfigError(f"synth: unknown formats {unknown}", hint=f"registered: {sorted(known)}")


def _chunk_job(args: tuple) -> ChunkPayload:
    seed, counties, start, months, cfg, chunk, first, size, variants = args
    world = build_world(seed, counties, start, months)
    return render_chunk(world, cfg, chunk, first, size, variants)


class _LocalSink:
    """Appends chunk text to files under a local root; truncates each file on its first write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: dict[str, int] = defaultdict(int)
        self.opened: set[str] = set()

    def append(self, rel: str, text: str, header: str = "", rows: int = 0) -> None:
        path = self.root / rel
        first = rel not in self.opened
        if first:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.opened.add(rel)
        with path.open("wb" if first else "ab") as fh:
            if first and header:
                fh.write(header.encode("utf-8"))
            fh.write(text.encode("utf-8"))
        self.rows[rel] += rows


def _ordered_chunks(jobs: list[tuple], workers: int) -> Iterator[ChunkPayload]:
    """Chunk payloads in chunk order; with workers > 1 a bounded number run ahead in processes."""
    if workers <= 1:
        for job in jobs:
            yield _chunk_job(job)
        return
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: list[Future] = []
        it = iter(jobs)
        for job in it:
            pending.append(pool.submit(_chunk_job, job))
            if len(pending) >= workers + 1:
                break
        while pending:
            fut = pending.pop(0)
            yield fut.result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(_chunk_job, nxt))


def _remove_previous(root: Path) -> None:
    """Delete the files a previous synth run wrote here (listed in its manifest), nothing else."""
    manifest = root / MANIFEST
    if not manifest.exists():
        return
    try:
        old = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return
    for rel in old.get("files", {}):
        p = root / rel
        if p.is_file() and p.resolve().is_relative_to(root.resolve()):
            p.unlink()


def generate(out_dir: str | Path, *, members: int, counties: list[str], seed: int, start: str = "2025-01",
             months: int = 12, formats: set[str] | None = None, config: SynthConfig | None = None,
             workers: int = 1) -> SynthSummary:
    """Write every submitter's files for ``members`` synthetic people under ``out_dir``.

    ``out_dir`` is a local directory or an ``s3://`` prefix (written locally first, then
    uploaded). ``formats`` adds variant formats (e.g. {"x12_834", "hl7_vxu"}); the delimited
    files are always written. Same arguments and seed give byte-identical files.
    """
    t0 = time.perf_counter()
    cfg = config or SynthConfig()
    formats = set(formats or ()) - {"delimited"}
    counties = [c.strip() for c in counties if c.strip()]
    _validate(members, counties, start, months, formats)
    variant_specs = sorted((k for k in SPECS if k[1] in formats), key=lambda k: k)
    variants: dict[str, tuple[str, ...]] = defaultdict(tuple)
    for feed, fmt in variant_specs:
        variants[feed] += (SPECS[(feed, fmt)].feed_name,)
    out = str(out_dir)
    remote = storage.is_s3(out)
    root = Path(tempfile.mkdtemp(prefix="phmx-synth-")) if remote else Path(out)
    root.mkdir(parents=True, exist_ok=True)
    if not remote:
        _remove_previous(root)
    sink = _LocalSink(root)
    headers = {feed: header_line(feed) for feed in LAYOUTS}
    gt_headers = {
        "ground_truth/person_map.csv": ",".join(PERSON_MAP_FIELDS) + "\n",
        "ground_truth/people.csv": ",".join(PEOPLE_FIELDS) + "\n",
        "ground_truth/index_events.csv": ",".join(INDEX_FIELDS) + "\n",
    }
    for rel, header in gt_headers.items():
        sink.append(rel, "", header)
    size = cfg.chunk_size
    n_chunks = (members + size - 1) // size
    world_key = (seed, tuple(counties), start, months)
    jobs = [(*world_key, cfg, i, i * size, min(size, members - i * size), dict(variants)) for i in range(n_chunks)]
    people = 0
    feed_files: dict[str, list[tuple[Key, str]]] = defaultdict(list)
    try:
        for i, payload in enumerate(_ordered_chunks(jobs, workers)):
            for key, (text, nrows) in payload.files.items():
                submitter, feed, period = key
                rel = landing_relpath(submitter, feed, period, LAYOUTS[feed].suffix)
                if rel not in sink.opened:
                    feed_files[feed].append((key, rel))
                sink.append(rel, text, headers[feed], nrows)
            sink.append("ground_truth/person_map.csv", payload.person_map, rows=payload.person_map.count("\n"))
            sink.append("ground_truth/people.csv", payload.people, rows=payload.people_count)
            sink.append("ground_truth/index_events.csv", payload.index_events, rows=payload.index_events.count("\n"))
            people += payload.people_count
            log.info("synth chunk %d/%d written (%d people)", i + 1, n_chunks, people)
        _write_variants(sink, variant_specs, feed_files)
        # last, from the files just written and its own random stream: no other file changes
        for rel, n in write_bmi(root, seed).items():
            sink.opened.add(rel)
            sink.rows[rel] = n
        summary = _summarise(out, sink, people, seed, n_chunks, workers, t0)
        manifest = {
            "generator": "phmx.synth", "seed": seed, "members": members, "counties": counties, "start": start,
            "months": months, "formats": sorted(formats), "chunk_size": size, "config": asdict(cfg),
            "files": {k: v for k, v in sorted(summary.files.items())},
        }
        (root / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if remote:
            _remove_previous_remote(out)
            _upload_tree(root, out)
    finally:
        if remote:
            shutil.rmtree(root, ignore_errors=True)
    summary.seconds = round(time.perf_counter() - t0, 3)
    return summary


def _summarise(out: str, sink: _LocalSink, people: int, seed: int, chunks: int, workers: int, t0: float) -> SynthSummary:
    files = {rel: sink.rows[rel] for rel in sorted(sink.opened)}
    by_feed: dict[str, int] = defaultdict(int)
    for rel, n in files.items():
        if rel.startswith("landing/"):
            by_feed[rel.split("/")[2]] += n
    return SynthSummary(out, people, round(time.perf_counter() - t0, 3), files, dict(sorted(by_feed.items())),
                        seed, chunks, workers)


def _dict_rows(path: Path, feed: str) -> Iterator[dict[str, str]]:
    with path.open("r", encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh, delimiter=LAYOUTS[feed].delimiter)


def _write_variants(sink: _LocalSink, variant_specs: list[tuple[str, str]], feed_files: dict) -> None:
    for feed, fmt in variant_specs:
        spec = SPECS[(feed, fmt)]
        for (submitter, _feed, period), rel in sorted(feed_files.get(feed, []), key=lambda x: x[1]):
            out_rel = landing_relpath(submitter, spec.feed_name, period, spec.file_suffix)
            dest = sink.root / out_rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with dest.open("wb") as fh:
                n = spec.writer(_dict_rows(sink.root / rel, feed), fh)
            sink.opened.add(out_rel)
            sink.rows[out_rel] += int(n)


def _remove_previous_remote(dest: str) -> None:
    """Delete the objects a previous synth run listed in its manifest under ``dest``."""
    manifest = storage.join(dest, MANIFEST)
    if not storage.exists(manifest):
        return
    try:
        old = json.loads(storage.read_bytes(manifest))
    except (StorageError, ValueError):
        return
    bucket, prefix = storage.split_s3(dest)
    keys = [{"Key": f"{prefix.rstrip('/')}/{rel}" if prefix else rel} for rel in sorted(old.get("files", {}))]
    client = storage.s3_client()
    for i in range(0, len(keys), 1000):
        client.delete_objects(Bucket=bucket, Delete={"Objects": keys[i : i + 1000]})


def _upload_tree(local_root: Path, dest: str) -> None:
    """Upload every file under ``local_root`` to the ``dest`` s3:// prefix (multipart, streamed)."""
    client = storage.s3_client()
    extra = storage.encryption_args()
    bucket, prefix = storage.split_s3(dest)
    for path in sorted(local_root.rglob("*")):
        if path.is_file():
            rel = path.relative_to(local_root).as_posix()
            key = f"{prefix.rstrip('/')}/{rel}" if prefix else rel
            try:
                client.upload_file(str(path), bucket, key, ExtraArgs=extra or None)
            except Exception as exc:  # noqa: BLE001 - re-raised with the location, no content
                raise StorageError(f"cannot upload {rel} to {dest}: {type(exc).__name__}") from exc


__all__ = ["SynthSummary", "generate"]
