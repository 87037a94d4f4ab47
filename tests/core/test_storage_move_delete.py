"""``storage.move`` and ``storage.delete``: one file or object, on a local disk and on S3 (moto's
server on 127.0.0.1), the same outcome: the bytes at the new place, none at the old."""

from __future__ import annotations

from pathlib import Path

from phmx import storage


def _move_then_delete(root: str) -> None:
    src, dst = storage.join(root, "a", "part-0.parquet"), storage.join(root, "b", "part-0.parquet")
    storage.write_bytes(src, b"rows")
    storage.move(src, dst)
    assert storage.read_bytes(dst) == b"rows"
    assert not storage.exists(src)
    storage.delete(dst)
    assert not storage.exists(dst)
    storage.delete(dst)  # absent: nothing to do


def test_move_and_delete_on_a_local_disk(tmp_path: Path) -> None:
    _move_then_delete(str(tmp_path))


def test_move_and_delete_on_s3(moto_endpoint: str, s3_bucket: str) -> None:
    _move_then_delete(f"s3://{s3_bucket}/work")
