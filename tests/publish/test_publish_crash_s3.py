"""A delivery to an S3 publish zone killed between its commits, then the next publish, on a real S3
API (moto's server on 127.0.0.1); the ledger is on S3 too (its lock a conditional-write lease).

S3 has no atomic folder rename, so promotion copies object by object and writes the manifest
last with a conditional PutObject (``If-None-Match: *``); version numbers are taken with the same
conditional write. Each kill is injected at a named point (:mod:`phmx.faults`), including between
the object copies. After the next publish: every delivered package is in the ledger and in
gold.feed_log exactly once and verifies, ``latest`` names a complete version, no version folder
is half there, a retracted version number is not reused, and the staging area is empty.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from test_publish_crash import DELIVER, RECIPIENT, _deliver, _delivery_counts

from jobs.publish import feed_log, package, recovery
from jobs.publish.verify import Verified, verify_package
from phmx import faults, storage

#: The package has four objects copied before the manifest (big.csv, measures.csv, manifest.sig,
#: publisher.pem): ``copied#1`` is after the first, ``copied#4`` after the last, manifest not yet written.
POINTS = ("publish.stage.after_write", "ledger.append.before_commit", "ledger.append.after_commit",
          "publish.promote.before_move", "publish.promote.copied#1", "publish.promote.copied#4",
          "publish.promote.before_latest", "publish.promote.after_latest", "publish.feed_log.before",
          "publish.feed_log.after")


@pytest.fixture
def s3_zone(keys_home, s3_bucket, monkeypatch):
    monkeypatch.setenv("PHMX_PUBLISH_ROOT", f"s3://{s3_bucket}/publish")
    monkeypatch.setenv("PHMX_LEDGER_ROOT", f"s3://{s3_bucket}/ledger")
    monkeypatch.setenv("PHMX_LEASE_SECONDS", "3")  # a killed writer's lease expires soon
    return f"s3://{s3_bucket}/publish"


def _verify(uri: str, dest: Path) -> Verified:
    """Verify an S3 period folder (through ``latest``) or version folder as its recipient would:
    the period folder downloaded, then checked (signature, manifest, every file's hash,
    ``latest``'s manifest_sha256)."""
    last = uri.rsplit("/", 1)[-1]
    is_version = last.startswith("v") and last[1:].isdigit()
    period = uri.rsplit("/", 1)[0] if is_version else uri
    shutil.rmtree(dest, ignore_errors=True)
    for f in storage.list_files(period):
        target = dest / f.relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(storage.read_bytes(f.uri))
    return verify_package(dest / last if is_version else dest)


def _deliver_here(run_id: str) -> None:
    """The same delivery as the child's, in this process (no kill planned: no process start)."""
    exec(compile(DELIVER.replace("sys.argv[1]", repr(run_id)), "deliver", "exec"), {})  # noqa: S102 - our own script


def _objects(root: str) -> list[str]:
    return [f.relpath for f in storage.list_files(root)]


def _version_folders(root: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rel in _objects(root):
        parts = rel.split("/")
        if parts[0] == RECIPIENT and len(parts) == 5 and parts[3].startswith("v"):
            out.setdefault(storage.join(root, *parts[:4]), set()).add(parts[4])
    return out


def _invariants(root: str, tmp: Path) -> None:
    in_ledger, logged = _delivery_counts()
    folders = _version_folders(root)
    assert folders
    for folder, names in folders.items():
        # No half-visible version: every version folder is complete (manifest and all it names).
        assert package.MANIFEST in names and package.SIGNATURE in names, (folder, sorted(names))
        assert in_ledger.get(folder) == 1 and logged.get(folder) == 1, folder
        _verify(folder, tmp / "dl")
    assert set(in_ledger) == set(folders) == set(logged)
    base = storage.join(root, RECIPIENT, "lhj_measures", "2025-01")
    assert _verify(base, tmp / "dl").version == package.read_latest(base)["version"]
    assert not [r for r in _objects(root) if r.startswith(package.STAGING + "/")]


@pytest.mark.slow
@pytest.mark.parametrize("point", POINTS)
def test_killed_between_delivery_commits_on_s3_then_published_again(s3_zone, tmp_path, point):
    root = s3_zone
    _deliver_here("run-1")
    proc = _deliver("run-2", point)
    assert proc.returncode == faults.EXIT_CODE, proc.stderr[-2000:]
    base = storage.join(root, RECIPIENT, "lhj_measures", "2025-01")
    assert _verify(base, tmp_path / "dl").version in ("v1", "v2")  # latest only ever names a complete version
    out = recovery.reconcile(root, RECIPIENT)
    v2 = storage.join(base, "v2")
    delivered_v2 = storage.exists(storage.join(v2, package.MANIFEST))
    if point in ("publish.promote.before_latest", "publish.promote.after_latest", "publish.feed_log.before"):
        assert [d["version"] for d in out.logged] == [2]
        assert package.read_latest(base)["version"] == "v2"
    elif point in ("ledger.append.after_commit", "publish.promote.before_move", "publish.promote.copied#1",
                   "publish.promote.copied#4"):
        assert len(out.retracted) == 1 and not delivered_v2
        assert not list(storage.list_files(v2))  # the partly copied folder is gone
    else:
        assert out.logged == [] and out.retracted == []
    assert (recovery.already_published(RECIPIENT, "run-2") is not None) == delivered_v2
    _deliver_here("run-3")
    _invariants(root, tmp_path)
    # run-2's version number, once taken, is not reused by run-3 even when run-2 never delivered it.
    assert sorted(int(r["version"]) for r in feed_log.read(RECIPIENT)) == ([1, 2, 3] if delivered_v2 else [1, 3])


def test_two_publishes_never_share_a_version_and_a_manifest_is_written_once(s3_zone, tmp_path):
    from datetime import UTC, datetime

    root = s3_zone
    a = package.Package(RECIPIENT, "lhj_measures", "2025-01", "run-a", {"m.csv": (b"a\n1\n", "text/csv")})
    b = package.Package(RECIPIENT, "lhj_measures", "2025-01", "run-b", {"m.csv": (b"a\n2\n", "text/csv")})
    now = datetime.now(UTC)
    sa, sb = package.stage(a, root, now=now), package.stage(b, root, now=now)  # both staged before either promotes
    assert (sa.version, sb.version) == (1, 2)
    package.promote(sb)
    package.promote(sa)
    base = storage.join(root, RECIPIENT, "lhj_measures", "2025-01")
    assert _verify(storage.join(base, "v1"), tmp_path / "dl").version == "v1"
    assert _verify(storage.join(base, "v2"), tmp_path / "dl").version == "v2"
    # A promotion onto a version whose manifest is there is refused, and the version is left intact.
    again = package.stage(a, root, now=now)
    forged = dataclasses.replace(again, version=1, final=storage.join(base, "v1"))
    with pytest.raises(package.VersionTaken):
        package.promote(forged)
    assert _verify(storage.join(base, "v1"), tmp_path / "dl").version == "v1"
    assert not list(storage.list_files(again.staging))
