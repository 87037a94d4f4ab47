"""A feed package: its files, a signed manifest, and delivery that is all-or-nothing and versioned.

Layout under the publish root (a local directory or an ``s3://`` prefix)::

    <recipient>/<feed>/<period>/v1/...        every publish of a period is a new version; old ones stay
    <recipient>/<feed>/<period>/v2/...
    <recipient>/<feed>/<period>/latest        pointer: {"version": "v2", "manifest_sha256": ...}
    _staging/<recipient>/<feed>/<period>/<id>/   where a package is written before it is promoted
    _keys/<key_id>.pem                        the hub's published manifest-signing public key

Every package holds ``manifest.json`` (each file's name, size and SHA-256, the publisher's key id
and fingerprint, what the feed is), ``manifest.sig`` (raw Ed25519 signature over the exact bytes of
manifest.json) and ``publisher.pem`` (the public key), so it verifies offline with nothing else.

Big files (a plan's Encounter.ndjson at a million members is gigabytes) are never held in
memory: a builder writes them to a local spool file while hashing them (:class:`SpooledFile`,
:func:`spool_dir`), and staging moves (same disk) or streams (S3 multipart upload) that file.
Small files stay bytes.

Never a partial feed: files go to a staging prefix first; only a complete package is promoted
(a directory rename on local disk; on S3 server-side copies with manifest.json and manifest.sig
last, then the ``latest`` pointer). Any failure removes the staging copy and any partly promoted
version, so a recipient never sees a version without its manifest, and ``latest`` only ever
names complete versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from phmx import faults, lakehouse, settings, storage
from phmx.errors import PhmxError, StorageError
from phmx.log import get_logger
from privacy import signing

log = get_logger(__name__)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "publisher.pem"
LATEST = "latest"
STAGING = "_staging"
CLAIMS = "_claims"  # S3: one object per version number ever taken (no PHI), so no two publishes share one
SPOOL = "_spool"
KEYS = "_keys"
FORMAT = "phmx-feed-manifest/1"
PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 maximum
_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class SpooledFile:
    """A package file written to local disk by its builder, with the SHA-256 and size taken while
    it was written (so neither the manifest nor staging ever reads it whole into memory)."""

    path: Path
    sha256: str
    size: int


FileData = bytes | SpooledFile


def _check_name(name: str) -> None:
    if name in (MANIFEST, SIGNATURE, PUBLIC_KEY, LATEST) or name.startswith("/") or ".." in name.split("/"):
        raise PhmxError(f"reserved or unsafe package file name {name!r}")


@dataclass
class Package:
    """Files of one feed for one recipient and period (name -> bytes or a spooled file), and what
    the manifest says. Call :meth:`close` (or let :func:`stage` do it) to remove spooled files."""

    recipient: str
    feed: str
    period: str
    run_id: str
    files: dict[str, tuple[FileData, str]] = field(default_factory=dict)  # name -> (data, media type)
    meta: dict[str, Any] = field(default_factory=dict)
    spool: Path | None = None  # folder of this package's spooled files (removed by close)

    def add(self, name: str, data: bytes | str, media_type: str) -> None:
        _check_name(name)
        self.files[name] = (data.encode("utf-8") if isinstance(data, str) else data, media_type)

    def add_spooled(self, name: str, spooled: SpooledFile, media_type: str) -> None:
        """Add a file already written to local disk (see :class:`HashingWriter`)."""
        _check_name(name)
        self.files[name] = (spooled, media_type)

    def close(self) -> None:
        """Remove the spooled files (after staging, or when the package is abandoned)."""
        if self.spool is not None:
            shutil.rmtree(self.spool, ignore_errors=True)


class HashingWriter:
    """Write a package file to local disk in pieces, hashing as it goes; :meth:`close` returns the
    :class:`SpooledFile`. Memory stays at one piece whatever the file's size."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        # PHI (a plan feed's Patient.ndjson): readable by the hub's user only.
        self._fh = os.fdopen(os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600), "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self._fh.write(data)
        self._hash.update(data)
        self.size += len(data)

    def close(self) -> SpooledFile:
        self._fh.close()
        return SpooledFile(self.path, self._hash.hexdigest(), self.size)

    def abort(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)


def published_keys_root() -> str:
    """Where the hub publishes its feed-signing public keys (``<publish root>/_keys``)."""
    return signing.public_keys_root(signing.PUBLISH)


def spool_dir(root: str, recipient: str) -> Path:
    """A fresh private (0700) local folder for a package's big files: under the publish root's
    staging prefix when the root is a local folder (so staging is a rename on the same disk), else a
    temporary folder. Its name carries the owning process (:func:`phmx.lakehouse.owner_tag`), so
    :func:`clean_staging` removes what a crashed process left and nothing a live one is writing."""
    name = f"{recipient}_{lakehouse.owner_tag()}_{uuid.uuid4().hex[:12]}"
    if storage.is_s3(root):
        return Path(tempfile.mkdtemp(prefix=f"phmx-spool-{name}-"))
    path = Path(root, STAGING, SPOOL, name)
    lakehouse.private_dir(str(path.parent.parent))
    lakehouse.private_dir(str(path.parent))
    return Path(lakehouse.private_dir(str(path)))


def clean_staging(root: str, recipient: str) -> list[str]:
    """Remove the staging and spool folders of ``recipient`` that a crashed process left behind
    (run at the start of each publish to that recipient; a live process's folders are kept)."""
    removed = lakehouse.purge_stale(storage.join(root, STAGING, SPOOL), f"{recipient}_")
    if not storage.is_s3(root):
        import glob

        for period_dir in sorted(glob.glob(str(Path(root, STAGING, recipient, "*", "*")))):
            removed += lakehouse.purge_stale(period_dir, "v")
    else:
        prefix = storage.join(root, STAGING, recipient)
        dirs = {f.relpath.rsplit("/", 2)[0] for f in storage.list_files(prefix) if f.relpath.count("/") >= 3}
        for d in sorted(dirs):
            removed += lakehouse.purge_stale(storage.join(prefix, d), "v")
    if storage.is_s3(root):
        import glob

        for leftover in glob.glob(str(Path(tempfile.gettempdir(), f"phmx-spool-{recipient}_o*"))):
            if lakehouse._owner_gone(Path(leftover).name, None):  # noqa: SLF001 - same mechanism
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(Path(leftover).name)
    return removed


def _digest(data: FileData) -> tuple[str, int]:
    if isinstance(data, SpooledFile):
        return data.sha256, data.size
    return sha256(data), len(data)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file read in 1 MiB pieces (never whole)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for piece in iter(lambda: fh.read(chunk), b""):
            h.update(piece)
    return h.hexdigest()


def _write(uri: str, data: FileData, media: str) -> None:
    """Write one package file to staging: bytes as they are; a spooled file moved (local, same
    disk), copied in pieces (local, other disk) or uploaded in parts (S3, boto3's managed upload)."""
    if not isinstance(data, SpooledFile):
        storage.write_bytes(uri, data, content_type=media)
        return
    if storage.is_s3(uri):
        bucket, key = storage.split_s3(uri)
        extra = {"ContentType": media, **storage.encryption_args()}
        storage.s3_client().upload_file(str(data.path), bucket, key, ExtraArgs=extra)
        return
    target = Path(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(data.path, target)
    except OSError:  # another disk: copy in pieces
        shutil.copyfile(data.path, target)


@dataclass(frozen=True)
class Delivered:
    """Where a package went: the version folder, its number, the manifest digest, sizes, file hashes."""

    recipient: str
    feed: str
    period: str
    version: int
    uri: str
    manifest_sha256: str
    key_id: str
    files: dict[str, str]  # name -> sha256
    bytes: int
    published_at: datetime


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def period_root(root: str, recipient: str, feed: str, period: str) -> str:
    return storage.join(root, recipient, feed, period)


def versions(base: str) -> list[int]:
    """Version numbers that exist under ``<recipient>/<feed>/<period>`` (complete or not)."""
    found: set[int] = set()
    if storage.is_s3(base):
        bucket, key = storage.split_s3(base)
        pages = storage.s3_client().get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=key.rstrip("/") + "/", Delimiter="/")
        for page in pages:
            for cp in page.get("CommonPrefixes", []):
                m = _VERSION.match(cp["Prefix"].rstrip("/").rsplit("/", 1)[-1])
                if m:
                    found.add(int(m.group(1)))
    elif Path(base).is_dir():
        for p in Path(base).iterdir():
            m = _VERSION.match(p.name)
            if m and p.is_dir():
                found.add(int(m.group(1)))
    return sorted(found)


def read_latest(base: str) -> dict[str, Any] | None:
    uri = storage.join(base, LATEST)
    if not storage.exists(uri):
        return None
    return json.loads(storage.read_bytes(uri))


def manifest_bytes(pkg: Package, *, version: int, signer: signing.Signer, generated_at: datetime,
                   delivery: dict[str, Any] | None) -> bytes:
    """The manifest: canonical JSON (sorted keys, 2-space indent, UTF-8) so its bytes are stable."""
    pub = signer.public_key()
    files = []
    for name, (data, media) in sorted(pkg.files.items()):
        digest, size = _digest(data)
        files.append({"name": name, "sha256": digest, "bytes": size, "media_type": media})
    doc = {
        "format": FORMAT,
        "recipient": pkg.recipient, "feed": pkg.feed, "period": pkg.period, "version": f"v{version}",
        "run_id": pkg.run_id, "generated_at": generated_at.astimezone(UTC).isoformat(timespec="seconds"),
        "publisher": {"name": "phmx statewide PHM hub", "alg": "Ed25519", "key_id": signer.key_id,
                      "fingerprint": signing.fingerprint(pub), "public_key_file": PUBLIC_KEY,
                      "signature_file": SIGNATURE},
        "files": files,
        **pkg.meta,
    }
    if delivery:
        doc["delivery"] = delivery
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _presigned(final: str, names: list[str]) -> dict[str, Any]:
    bucket, key = storage.split_s3(final)
    client = storage.s3_client()
    urls = {n: client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": f"{key}/{n}"},
                                             ExpiresIn=PRESIGN_SECONDS) for n in names}
    expires = (datetime.now(UTC) + timedelta(seconds=PRESIGN_SECONDS)).isoformat(timespec="seconds")
    return {"storage": "s3", "location": final, "presigned_urls": urls, "urls_expire_at": expires,
            "sse": "aws:kms" if settings.load().kms_key_id else "default"}


@dataclass(frozen=True)
class Staged:
    """A complete package written to staging, not yet visible: where it will go and its hashes."""

    recipient: str
    feed: str
    period: str
    version: int
    base: str
    staging: str
    final: str
    names: list[str]
    manifest_sha256: str
    key_id: str
    files: dict[str, str]  # name -> sha256 (manifest.json included)
    bytes: int
    generated_at: datetime
    sizes: dict[str, int] = field(default_factory=dict)  # name -> bytes (S3 promotion picks the copy API)
    claim: str = ""  # S3: the version number's claim object (released if this package is not promoted)

    def uris(self) -> list[tuple[str, str]]:
        """(final URI, sha256) of every file, for the ledger's disclosure entry."""
        return [(storage.join(self.final, n), h) for n, h in sorted(self.files.items())]


def stage(pkg: Package, root: str, *, signer: signing.Signer | None = None, now: datetime | None = None) -> Staged:
    """Write the signed package under the staging prefix as the next version (nothing visible yet).

    Spooled files are moved or uploaded (their SHA-256 was taken while they were written) and the
    package's spool folder is removed, whether staging succeeds or not."""
    try:
        return _stage(pkg, root, signer=signer, now=now)
    finally:
        pkg.close()


def _stage(pkg: Package, root: str, *, signer: signing.Signer | None, now: datetime | None) -> Staged:
    signer = signer or signing.get_signer(signing.PUBLISH)
    now = now or datetime.now(UTC)
    base = period_root(root, pkg.recipient, pkg.feed, pkg.period)
    have = versions(base)
    version = _claim_version(root, pkg, have) if storage.is_s3(root) else (max(have) if have else 0) + 1
    claim = storage.join(root, CLAIMS, pkg.recipient, pkg.feed, pkg.period, f"v{version}") if storage.is_s3(root) else ""
    final = storage.join(base, f"v{version}")
    staging = storage.join(root, STAGING, pkg.recipient, pkg.feed, pkg.period,
                           f"v{version}_{lakehouse.owner_tag()}_{uuid.uuid4().hex[:12]}")
    if not storage.is_s3(root):
        for folder in (storage.join(root, STAGING), storage.join(root, STAGING, pkg.recipient), staging):
            lakehouse.private_dir(folder)
    files = {k: v for k, v in pkg.files.items() if k != PUBLIC_KEY}
    files[PUBLIC_KEY] = (signing.public_pem(signer.public_key()), "application/x-pem-file")
    staged = Package(pkg.recipient, pkg.feed, pkg.period, pkg.run_id, files, pkg.meta)
    delivery = _presigned(final, sorted([*files, MANIFEST, SIGNATURE])) if storage.is_s3(root) else None
    manifest = manifest_bytes(staged, version=version, signer=signer, generated_at=now, delivery=delivery)
    signature = signer.sign(manifest)
    try:
        for name, (data, media) in sorted(files.items()):
            _write(storage.join(staging, name), data, media)
        storage.write_bytes(storage.join(staging, MANIFEST), manifest, content_type="application/json")
        storage.write_bytes(storage.join(staging, SIGNATURE), signature, content_type="application/octet-stream")
        lakehouse.protect(staging)
        faults.point("publish.stage.after_write")
    except Exception as exc:
        _discard(staging)
        _release(claim)
        if isinstance(exc, PhmxError):
            raise
        raise StorageError(f"staging {pkg.recipient}/{pkg.feed}/{pkg.period} failed: {type(exc).__name__}",
                           hint="nothing was published; re-run the publish") from exc
    digests = {n: _digest(d) for n, (d, _) in files.items()}
    total = sum(size for _, size in digests.values()) + len(manifest) + len(signature)
    hashes = {n: h for n, (h, _) in digests.items()} | {MANIFEST: sha256(manifest)}
    return Staged(pkg.recipient, pkg.feed, pkg.period, version, base, staging, final,
                  [*sorted(files), MANIFEST, SIGNATURE], sha256(manifest), signer.key_id, hashes, total, now,
                  {n: size for n, (_, size) in digests.items()}, claim)


def _claim_version(root: str, pkg: Package, have: list[int]) -> int:
    """S3: take the next version number with a conditional PutObject (``If-None-Match: *``) of
    ``_claims/<recipient>/<feed>/<period>/v<N>``, so two publishes never stage the same version
    (S3 has no atomic folder rename; the local route relies on one). Claims are kept: a version a
    crash left unpromoted is skipped, never reused."""
    prefix = storage.join(root, CLAIMS, pkg.recipient, pkg.feed, pkg.period)
    claimed = {int(m.group(1)) for f in storage.list_files(prefix)
               if (m := _VERSION.match(f.relpath.rsplit("/", 1)[-1]))}
    version = max({*have, *claimed}, default=0) + 1
    client = storage.s3_client()
    body = json.dumps({"owner": lakehouse.owner_tag(), "run_id": pkg.run_id,
                       "at": datetime.now(UTC).isoformat(timespec="seconds")}).encode()
    for _ in range(64):
        bucket, key = storage.split_s3(storage.join(prefix, f"v{version}"))
        try:
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*",
                              **storage.encryption_args())
            return version
        except Exception as exc:
            if not _precondition_failed(exc):
                raise
            version += 1
    raise StorageError(f"no free version number for {pkg.recipient}/{pkg.feed}/{pkg.period} after 64 tries",
                       hint="other publishes to this recipient are running; re-run the publish later")


def promote(st: Staged) -> Delivered:
    """Make a staged package visible as its version and point ``latest`` at it. All or nothing."""
    promoted = False
    try:
        faults.point("publish.promote.before_move")
        _promote(st.staging, st.final, st.names, st.sizes)
        promoted = True
        faults.point("publish.promote.before_latest")
        write_latest(st.base, st.version, st.manifest_sha256, st.generated_at)
        faults.point("publish.promote.after_latest")
    except Exception as exc:
        _discard(st.staging)
        if not promoted and not isinstance(exc, VersionTaken):
            _discard(st.final)
            _release(st.claim)
        if isinstance(exc, PhmxError):
            raise
        raise StorageError(f"delivery of {st.recipient}/{st.feed}/{st.period} failed: {type(exc).__name__}",
                           hint="nothing was published; re-run the publish") from exc
    _discard(st.staging)
    log.info("delivered %s/%s/%s v%d (%d files)", st.recipient, st.feed, st.period, st.version, len(st.names))
    return Delivered(st.recipient, st.feed, st.period, st.version, st.final, st.manifest_sha256, st.key_id,
                     st.files, st.bytes, st.generated_at)


#: Files stamped with the time a package was made (the manifest, its signature, the signing key,
#: the HTML report and the FHIR MeasureReport's date): left out when deciding whether a package
#: holds anything its recipient does not already have.
STAMPED = frozenset({MANIFEST, SIGNATURE, PUBLIC_KEY, "report.html", "measure_report.json"})


def unchanged_since(st: Staged) -> Delivered | None:
    """The latest published version of ``st``'s recipient, feed and period when every file of ``st``
    (the stamped ones aside) is byte for byte that version's, else None.

    Why: a run that re-publishes a period whose inputs did not change (a monthly re-run, a retry
    after another recipient failed, a backfill of a quiet month) would otherwise disclose the same
    data again as a new version, with a new ledger entry, for the recipient to download again.
    """
    latest = read_latest(st.base)
    if latest is None:
        return None
    version = int(str(latest.get("version", "v0")).lstrip("v") or 0)
    final = storage.join(st.base, f"v{version}")
    uri = storage.join(final, MANIFEST)
    if not version or not storage.exists(uri):
        return None
    raw = storage.read_bytes(uri)
    manifest = json.loads(raw)
    files = {str(f["name"]): str(f["sha256"]) for f in manifest.get("files", [])}
    if {n: h for n, h in files.items() if n not in STAMPED} != {n: h for n, h in st.files.items() if n not in STAMPED}:
        return None
    # counted as :func:`stage` counts a staged package: its files and the manifest by hash, and the
    # manifest and its signature in the bytes, so feed_log says the same of a version either way
    files[MANIFEST] = sha256(raw)
    signature = storage.join(final, SIGNATURE)
    total = sum(int(f.get("bytes", 0)) for f in manifest.get("files", [])) + len(raw) + (
        len(storage.read_bytes(signature)) if storage.exists(signature) else 0)
    published = datetime.fromisoformat(str(latest.get("published_at") or manifest.get("generated_at")))
    return Delivered(st.recipient, st.feed, st.period, version, final, str(latest.get("manifest_sha256", "")),
                     str(manifest.get("publisher", {}).get("key_id", "")), files, total, published)


def write_latest(base: str, version: int, manifest_sha256: str, published_at: datetime) -> None:
    """Point ``latest`` at a complete version (an atomic replace; a recipient reads the old or the new)."""
    pointer = {"version": f"v{version}", "manifest_sha256": manifest_sha256,
               "published_at": published_at.astimezone(UTC).isoformat(timespec="seconds")}
    storage.write_text(storage.join(base, LATEST), json.dumps(pointer, sort_keys=True) + "\n",
                       content_type="application/json")


def discard(st: Staged) -> None:
    """Drop a staged package that will not be promoted (its version number is free again)."""
    _discard(st.staging)
    _release(st.claim)


def _release(claim: str) -> None:
    """Give back a version number this process took and will not promote (a failure it saw; a
    killed process cannot, and its number is skipped)."""
    if claim:
        try:
            bucket, key = storage.split_s3(claim)
            storage.s3_client().delete_object(Bucket=bucket, Key=key)
        except Exception:  # noqa: BLE001 - a claim left behind only skips a number
            log.warning("could not release the version claim %s", claim)


def deliver(pkg: Package, root: str, *, signer: signing.Signer | None = None,
            now: datetime | None = None) -> Delivered:
    """Stage, sign and promote a package as the next version; update ``latest``. All or nothing."""
    return promote(stage(pkg, root, signer=signer, now=now))


COPY_OBJECT_MAX = 5 * 2**30  # S3's limit for a single CopyObject; bigger objects are copied in parts


def _promote(staging: str, final: str, names: list[str], sizes: dict[str, int] | None = None) -> None:
    """Local: one directory rename. S3: copy each object (in parts above 5 GiB, as S3 requires),
    then write the manifest, the commit, last and only once."""
    if not storage.is_s3(final):
        target = Path(final)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise StorageError(f"version folder {final} already exists", hint="another publish is running")
        os.replace(staging, target)
        return
    client = storage.s3_client()
    sb, sk = storage.split_s3(staging)
    fb, fk = storage.split_s3(final)
    extra = storage.encryption_args()
    if storage.exists(storage.join(final, MANIFEST)):
        raise VersionTaken(f"version folder {final} already has a manifest",
                           hint="another publish promoted this version; re-run the publish")
    for name in [n for n in names if n != MANIFEST]:
        source = {"Bucket": sb, "Key": f"{sk}/{name}"}
        if (sizes or {}).get(name, 0) >= COPY_OBJECT_MAX:
            client.copy(source, fb, f"{fk}/{name}", ExtraArgs=extra or None)  # managed multipart copy
        else:
            client.copy_object(Bucket=fb, Key=f"{fk}/{name}", CopySource=source, MetadataDirective="COPY", **extra)
        faults.point("publish.promote.copied")
    # The manifest is the version's commit: written last (everything it names is already there)
    # and only if no manifest is there yet (a conditional PutObject, If-None-Match: *), so a
    # promoted version is never overwritten, whatever another publisher did.
    manifest = client.get_object(Bucket=sb, Key=f"{sk}/{MANIFEST}")["Body"].read()
    try:
        client.put_object(Bucket=fb, Key=f"{fk}/{MANIFEST}", Body=manifest, ContentType="application/json",
                          IfNoneMatch="*", **extra)
    except Exception as exc:
        if _precondition_failed(exc):
            raise VersionTaken(f"version folder {final} already has a manifest",
                               hint="another publish promoted this version; re-run the publish") from exc
        raise


class VersionTaken(StorageError):
    """The version being promoted was committed by another process (its manifest is there)."""


def _precondition_failed(exc: BaseException) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def discard_folder(uri: str) -> None:
    """Remove a version folder that was never completely promoted (S3: copies stopped midway)."""
    _discard(uri)


def _discard(uri: str) -> None:
    try:
        storage.delete_prefix(uri)
    except Exception:  # noqa: BLE001 - best effort cleanup; the original error is what matters
        log.warning("could not remove %s after a failed delivery", uri)
