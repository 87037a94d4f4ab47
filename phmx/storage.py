"""Storage for landing, outbox and publish zones: a local directory or an S3 prefix.

One small interface so every caller is written once. S3 goes through boto3 with the standard
credential chain and ``AWS_ENDPOINT_URL`` (moto's server on 127.0.0.1 in tests). Writes to S3
use SSE-KMS when ``PHMX_KMS_KEY_ID`` is set.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from phmx import settings as settings_mod
from phmx.errors import StorageError

if TYPE_CHECKING:
    from collections.abc import Iterator


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://") or uri.startswith("s3a://")


def join(root: str, *parts: str) -> str:
    """Join path parts under a local or ``s3://`` root with forward slashes."""
    clean = [p.strip("/") for p in parts if p]
    if is_s3(root):
        return "/".join([root.rstrip("/"), *clean])
    return str(Path(root, *clean))


def split_s3(uri: str) -> tuple[str, str]:
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key


_client = None


def s3_client():  # noqa: ANN201 - boto3 client type is dynamic
    """A boto3 S3 client (cached per process) honouring AWS_ENDPOINT_URL."""
    global _client
    if _client is None:
        import boto3

        _client = boto3.client(
            "s3",
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"),
            region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-west-2",
        )
    return _client


def reset_client() -> None:
    """Forget the cached client (tests that start a new endpoint call this)."""
    global _client
    _client = None


@dataclass(frozen=True)
class StoredFile:
    """One file found under a root: its full URI, path relative to the root, and size."""

    uri: str
    relpath: str
    size: int


def list_files(root: str, prefix: str = "") -> Iterator[StoredFile]:
    """Every file below ``root/prefix``, sorted by relative path (deterministic runs)."""
    base = join(root, prefix) if prefix else root
    if is_s3(base):
        bucket, key = split_s3(base)
        key = key.rstrip("/") + "/" if key else ""
        root_key = split_s3(root)[1].rstrip("/")
        paginator = s3_client().get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/"):
                    continue
                rel = obj["Key"][len(root_key) + 1 :] if root_key else obj["Key"]
                found.append(StoredFile(f"s3://{bucket}/{obj['Key']}", rel, obj["Size"]))
        yield from sorted(found, key=lambda f: f.relpath)
        return
    p = Path(base)
    if not p.exists():
        return
    yield from _local_files(Path(root), p)


def _local_files(root: Path, base: Path) -> Iterator[StoredFile]:
    """Regular files below ``base``, never leaving ``root``: a symbolic link (file or folder) is
    listed only when its target lies inside the root, and folders are never entered through a link,
    so a link planted in a landing zone cannot make the hub read ``/etc/passwd`` or another
    submitter's files as a submission. Skipped links are logged by relative path only."""
    real_root = root.resolve()
    found: list[StoredFile] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        for d in [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            dirnames.remove(d)
            _log_skipped(root, Path(dirpath) / d)
        for name in filenames:
            if name.startswith("."):
                continue
            f = Path(dirpath) / name
            if f.is_symlink():
                target = f.resolve()
                if not target.is_relative_to(real_root) or not target.is_file():
                    _log_skipped(root, f)
                    continue
            elif not f.is_file():
                continue  # sockets, fifos, devices
            found.append(StoredFile(str(f), str(f.relative_to(root)).replace(os.sep, "/"), f.stat().st_size))
    yield from sorted(found, key=lambda s: s.relpath)


def _log_skipped(root: Path, link: Path) -> None:
    from phmx.log import get_logger

    get_logger(__name__).warning("skipped a symbolic link leading outside %s or to a folder: %s", root.name,
                                 str(link.relative_to(root)).replace(os.sep, "/"))


def read_bytes(uri: str) -> bytes:
    try:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return Path(uri).read_bytes()
    except Exception as exc:  # noqa: BLE001 - re-raised with the location
        raise StorageError(f"cannot read {uri}: {type(exc).__name__}") from exc


def zone_kms_key(uri: str | None = None) -> str | None:
    """The KMS key of the zone ``uri`` is in: the audit key (``PHMX_LEDGER_KMS_KEY_ID``) under a
    ledger root of its own (its bucket refuses any other key), the PHI key elsewhere."""
    cfg = settings_mod.load()
    if uri and cfg.ledger_root and cfg.ledger_root != cfg.lakehouse_root and \
            (uri == cfg.ledger_root or uri.startswith(cfg.ledger_root.rstrip("/") + "/")):
        return cfg.ledger_kms_key_id
    return cfg.kms_key_id


def encryption_args(uri: str | None = None) -> dict[str, str]:
    """The S3 request arguments every object the hub writes carries: SSE-KMS with the key of the
    zone written (:func:`zone_kms_key`; the PHI key when ``uri`` is not given), else nothing (the
    bucket's default encryption). One place, so no writer (a claim, a manifest, a copy, a public
    key under the ledger) can forget it or use the wrong zone's key."""
    kms = zone_kms_key(uri)
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms} if kms else {}


def iter_chunks(uri: str, size: int = 1 << 20) -> Iterator[bytes]:
    """The file's bytes in chunks of at most ``size``, never the whole file in memory: checksums
    and downloads of large packages (a plan's FHIR NDJSON) stream through this."""
    try:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
            try:
                yield from body.iter_chunks(size)
            finally:
                body.close()
            return
        with Path(uri).open("rb") as fh:
            while chunk := fh.read(size):
                yield chunk
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the location
        raise StorageError(f"cannot read {uri}: {type(exc).__name__}") from exc


def write_bytes(uri: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
    """Write a whole object/file. On S3 with a KMS key configured, SSE-KMS is requested."""
    try:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            extra = {"ContentType": content_type, **encryption_args(uri)}
            s3_client().put_object(Bucket=bucket, Key=key, Body=data, **extra)
            return
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise StorageError(f"cannot write {uri}: {type(exc).__name__}") from exc


def write_stream(uri: str, fileobj: BinaryIO, *, content_type: str = "application/octet-stream") -> int:
    """Write a file-like object piece by piece (memory stays at one piece); return the bytes written.

    Local: into a hidden temporary beside the target, renamed into place when complete, so a reader
    never sees half a file. S3: a managed multipart upload (SSE-KMS when a key is configured).
    """
    try:
        if is_s3(uri):
            bucket, key = split_s3(uri)
            extra = {"ContentType": content_type, **encryption_args(uri)}
            start = fileobj.tell()
            s3_client().upload_fileobj(fileobj, bucket, key, ExtraArgs=extra)
            return fileobj.tell() - start
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        written = 0
        with tmp.open("wb") as out:
            for chunk in iter(lambda: fileobj.read(1 << 20), b""):
                out.write(chunk)
                written += len(chunk)
        tmp.replace(path)
        return written
    except StorageError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise StorageError(f"cannot write {uri}: {type(exc).__name__}") from exc


def write_text(uri: str, text: str, *, content_type: str = "text/plain; charset=utf-8") -> None:
    write_bytes(uri, text.encode("utf-8"), content_type=content_type)


def exists(uri: str) -> bool:
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        except Exception:  # noqa: BLE001
            return False
    return Path(uri).exists()


def copy(src: str, dst: str) -> None:
    if not is_s3(src) and not is_s3(dst):
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        return
    write_bytes(dst, read_bytes(src))


def delete(uri: str) -> None:
    """Remove one file or object; nothing to do when it is absent (folders: :func:`delete_prefix`)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        s3_client().delete_object(Bucket=bucket, Key=key)
        return
    Path(uri).unlink(missing_ok=True)


def move(src: str, dst: str) -> None:
    """Move one file or object: a rename on a local disk, a copy then a delete otherwise."""
    if not is_s3(src) and not is_s3(dst):
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        return
    copy(src, dst)
    delete(src)


def delete_prefix(root: str) -> None:
    """Remove everything under a root (used for staging areas and tests)."""
    if is_s3(root):
        bucket, key = split_s3(root)
        keys = [{"Key": split_s3(f.uri)[1]} for f in list_files(root)]
        for i in range(0, len(keys), 1000):
            s3_client().delete_objects(Bucket=bucket, Delete={"Objects": keys[i : i + 1000]})
        return
    shutil.rmtree(root, ignore_errors=True)


def delta_storage_options(path: str | None = None) -> dict[str, str]:
    """Options for the ``deltalake`` package (delta-rs) to reach the same S3 endpoint.

    Writes are SSE-KMS with the key of the zone being written: the audit key under the ledger
    root (its bucket refuses any other key), the PHI key elsewhere.
    """
    opts: dict[str, str] = {}
    key = zone_kms_key(path)
    if key:
        opts["AWS_SERVER_SIDE_ENCRYPTION"] = "aws:kms"
        opts["AWS_SSE_KMS_KEY_ID"] = key
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        opts["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            opts["AWS_ALLOW_HTTP"] = "true"
    opts["AWS_REGION"] = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-west-2"
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        if os.environ.get(k):
            opts[k] = os.environ[k]
    return opts
