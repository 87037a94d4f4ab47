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


def verify_package(directory: str | Path, *, expected_fingerprint: str | None = None) -> Verified:
    """Verify a received package; return what it is, or raise PackageInvalid naming the bad file."""
    d, pointer = _resolve(directory)
    for name in (MANIFEST, SIGNATURE, PUBLIC_KEY):
        if not (d / name).is_file():
            raise PackageInvalid(f"{d / name}: missing", hint="the package is incomplete; ask the hub to resend")
    raw = (d / MANIFEST).read_bytes()
    if pointer is not None and pointer.get("manifest_sha256") != hashlib.sha256(raw).hexdigest():
        raise PackageInvalid(f"{d.parent / LATEST}: its manifest_sha256 is not the SHA-256 of {d / MANIFEST}",
                             hint="the pointer or the manifest was altered; do not use the package, ask the hub")
    try:
        pub = signing.load_public_pem((d / PUBLIC_KEY).read_bytes())
    except PrivacyError as exc:
        raise PackageInvalid(f"{d / PUBLIC_KEY}: {exc}") from exc
    fp = signing.fingerprint(pub)
    if expected_fingerprint and _norm(expected_fingerprint) != _norm(fp):
        raise PackageInvalid(f"{d / PUBLIC_KEY}: fingerprint {fp} is not the expected one",
                             hint="the package was not signed by the hub's published key; do not use it")
    if not signing.verify(pub, raw, (d / SIGNATURE).read_bytes()):
        raise PackageInvalid(f"{d / MANIFEST}: signature does not verify with {PUBLIC_KEY}",
                             hint="the manifest was altered or signed by another key; do not use the package")
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise PackageInvalid(f"{d / MANIFEST}: not valid JSON") from exc
    if manifest.get("format") != FORMAT:
        raise PackageInvalid(f"{d / MANIFEST}: unknown format {manifest.get('format')!r}")
    if manifest.get("publisher", {}).get("key_id") != signing.key_id_of(pub):
        raise PackageInvalid(f"{d / PUBLIC_KEY}: key id does not match the manifest's publisher")
    listed = set()
    for f in manifest.get("files", []):
        name = str(f["name"])
        p = d / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise PackageInvalid(f"{d / MANIFEST}: unsafe file name {name!r}")
        listed.add(name)
        if not p.is_file():
            raise PackageInvalid(f"{p}: listed in the manifest but missing")
        h = hashlib.sha256()
        with p.open("rb") as fh:
            for chunk in iter(partial(fh.read, 1 << 20), b""):
                h.update(chunk)
        if h.hexdigest() != f["sha256"]:
            raise PackageInvalid(f"{p}: SHA-256 does not match the manifest", hint="the file was altered or truncated")
        if p.stat().st_size != int(f["bytes"]):
            raise PackageInvalid(f"{p}: size does not match the manifest")
    extra = sorted(str(p.relative_to(d)).replace("\\", "/") for p in d.rglob("*") if p.is_file()
                   and str(p.relative_to(d)).replace("\\", "/") not in listed | {MANIFEST, SIGNATURE})
    if extra:
        raise PackageInvalid(f"{d / extra[0]}: not listed in the manifest",
                             hint="files not covered by the signature cannot be trusted; remove them")
    return Verified(str(d), str(manifest.get("recipient")), str(manifest.get("feed")), str(manifest.get("period")),
                    str(manifest.get("version")), signing.key_id_of(pub), fp, len(listed), manifest)
