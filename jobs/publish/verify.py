"""What a recipient runs on receipt: check a package's signature and every file's checksum, offline.

Needs only the package folder: ``manifest.json``, ``manifest.sig`` (raw Ed25519 signature over the
manifest's exact bytes), ``publisher.pem`` (the public key) and the files the manifest lists. The
key's fingerprint is returned (and printed by ``phmx feeds verify``) so the recipient can compare
it with the one the hub publishes out of band; ``expected_fingerprint`` makes that comparison part
of the check. Any problem raises :class:`PackageInvalid` naming the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from jobs.publish.package import FORMAT, LATEST, MANIFEST, PUBLIC_KEY, SIGNATURE
from phmx import storage
from phmx.errors import PrivacyError
from privacy import signing


class PackageInvalid(PrivacyError):
    """A received package failed verification (bad signature, checksum, missing or extra file)."""

    exit_code = 71


@dataclass(frozen=True)
class Verified:
    directory: str
    recipient: str
    feed: str
    period: str
    version: str
    key_id: str
    fingerprint: str
    files: int
    manifest: dict[str, Any]


def _norm(fp: str) -> str:
    return fp.replace("SHA256:", "").replace(":", "").strip().lower()


def resolve(directory: str | Path) -> Path:
    """The version folder: ``directory`` itself, or the one its ``latest`` pointer names."""
    return _resolve(directory)[0]


def _resolve(directory: str | Path) -> tuple[Path, dict[str, Any] | None]:
    """The version folder and the ``latest`` pointer that names it (None when there is none)."""
    d = Path(directory)
    if not d.is_dir():
        raise PackageInvalid(f"{d}: not a folder")
    if not (d / MANIFEST).exists() and (d / LATEST).is_file():
        pointer = _pointer(d / LATEST)
        version = str(pointer.get("version", ""))
        if not version or "/" in version or version.startswith("."):
            raise PackageInvalid(f"{d / LATEST}: names no version folder")
        return d / version, pointer
    parent_latest = d.parent / LATEST
    if (d / MANIFEST).exists() and parent_latest.is_file():
        pointer = _pointer(parent_latest)
        if pointer.get("version") == d.name:
            return d, pointer
    return d, None


def _pointer(path: Path) -> dict[str, Any]:
    try:
        pointer = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise PackageInvalid(f"{path}: not a valid latest pointer") from exc
    if not isinstance(pointer, dict) or "version" not in pointer:
        raise PackageInvalid(f"{path}: not a valid latest pointer")
    return pointer


class _Folder:
    """A package version folder on this machine (what a recipient holds)."""

    def __init__(self, d: Path) -> None:
        self.d = d

    def where(self, name: str) -> str:
        return str(self.d / name)

    def has(self, name: str) -> bool:
        return (self.d / name).is_file()

    def read(self, name: str) -> bytes:
        return (self.d / name).read_bytes()

    def digest(self, name: str) -> tuple[str, int]:
        h = hashlib.sha256()
        with (self.d / name).open("rb") as fh:
            for chunk in iter(partial(fh.read, 1 << 20), b""):
                h.update(chunk)
        return h.hexdigest(), (self.d / name).stat().st_size

    def names(self) -> list[str]:
        return sorted(str(p.relative_to(self.d)).replace("\\", "/") for p in self.d.rglob("*") if p.is_file())


class _Stored:
    """A package version under a storage URI (the hub's publish zone, local or ``s3://``), read
    through :mod:`phmx.storage` and hashed as a stream, never copied to local disk."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self._files = {f.relpath: f.size for f in storage.list_files(self.uri)}

    def where(self, name: str) -> str:
        return storage.join(self.uri, name)

    def has(self, name: str) -> bool:
        return name in self._files

    def read(self, name: str) -> bytes:
        return storage.read_bytes(self.where(name))

    def digest(self, name: str) -> tuple[str, int]:
        h, n = hashlib.sha256(), 0
        for chunk in storage.iter_chunks(self.where(name)):
            h.update(chunk)
            n += len(chunk)
        return h.hexdigest(), n

    def names(self) -> list[str]:
        return sorted(self._files)


def verify_package(directory: str | Path, *, expected_fingerprint: str | None = None) -> Verified:
    """Verify a received package; return what it is, or raise PackageInvalid naming the bad file."""
    d, pointer = _resolve(directory)
    return _verify(_Folder(d), pointer, str(d.parent / LATEST), expected_fingerprint)


def verify_stored(version_uri: str, *, expected_fingerprint: str | None = None) -> Verified:
    """Verify one version folder where the hub keeps it (a local path or ``s3://`` prefix), with
    its ``latest`` pointer when that names this version: the portal's check before it serves a
    package. Same checks and messages as :func:`verify_package`."""
    if not storage.is_s3(version_uri):
        return verify_package(version_uri, expected_fingerprint=expected_fingerprint)
    uri = version_uri.rstrip("/")
    parent, version = uri.rsplit("/", 1)
    latest = storage.join(parent, LATEST)
    pointer = None
    if storage.exists(latest):
        try:
            candidate = json.loads(storage.read_bytes(latest))
        except ValueError as exc:
            raise PackageInvalid(f"{latest}: not a valid latest pointer") from exc
        if isinstance(candidate, dict) and candidate.get("version") == version:
            pointer = candidate
    return _verify(_Stored(uri), pointer, latest, expected_fingerprint)


def _verify(pkg: _Folder | _Stored, pointer: dict[str, Any] | None, pointer_where: str,
            expected_fingerprint: str | None) -> Verified:
    for name in (MANIFEST, SIGNATURE, PUBLIC_KEY):
        if not pkg.has(name):
            raise PackageInvalid(f"{pkg.where(name)}: missing", hint="the package is incomplete; ask the hub to resend")
    raw = pkg.read(MANIFEST)
    if pointer is not None and pointer.get("manifest_sha256") != hashlib.sha256(raw).hexdigest():
        raise PackageInvalid(f"{pointer_where}: its manifest_sha256 is not the SHA-256 of {pkg.where(MANIFEST)}",
                             hint="the pointer or the manifest was altered; do not use the package, ask the hub")
    try:
        pub = signing.load_public_pem(pkg.read(PUBLIC_KEY))
    except PrivacyError as exc:
        raise PackageInvalid(f"{pkg.where(PUBLIC_KEY)}: {exc}") from exc
    fp = signing.fingerprint(pub)
    if expected_fingerprint and _norm(expected_fingerprint) != _norm(fp):
        raise PackageInvalid(f"{pkg.where(PUBLIC_KEY)}: fingerprint {fp} is not the expected one",
                             hint="the package was not signed by the hub's published key; do not use it")
    if not signing.verify(pub, raw, pkg.read(SIGNATURE)):
        raise PackageInvalid(f"{pkg.where(MANIFEST)}: signature does not verify with {PUBLIC_KEY}",
                             hint="the manifest was altered or signed by another key; do not use the package")
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise PackageInvalid(f"{pkg.where(MANIFEST)}: not valid JSON") from exc
    if manifest.get("format") != FORMAT:
        raise PackageInvalid(f"{pkg.where(MANIFEST)}: unknown format {manifest.get('format')!r}")
    if manifest.get("publisher", {}).get("key_id") != signing.key_id_of(pub):
        raise PackageInvalid(f"{pkg.where(PUBLIC_KEY)}: key id does not match the manifest's publisher")
    listed = set()
    for f in manifest.get("files", []):
        name = str(f["name"])
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise PackageInvalid(f"{pkg.where(MANIFEST)}: unsafe file name {name!r}")
        listed.add(name)
        if not pkg.has(name):
            raise PackageInvalid(f"{pkg.where(name)}: listed in the manifest but missing")
        sha, size = pkg.digest(name)
        if sha != f["sha256"]:
            raise PackageInvalid(f"{pkg.where(name)}: SHA-256 does not match the manifest",
                                 hint="the file was altered or truncated")
        if size != int(f["bytes"]):
            raise PackageInvalid(f"{pkg.where(name)}: size does not match the manifest")
    extra = [n for n in pkg.names() if n not in listed | {MANIFEST, SIGNATURE}]
    if extra:
        raise PackageInvalid(f"{pkg.where(extra[0])}: not listed in the manifest",
                             hint="files not covered by the signature cannot be trusted; remove them")
    directory = pkg.d if isinstance(pkg, _Folder) else pkg.uri
    return Verified(str(directory), str(manifest.get("recipient")), str(manifest.get("feed")),
                    str(manifest.get("period")), str(manifest.get("version")), signing.key_id_of(pub), fp,
                    len(listed), manifest)
