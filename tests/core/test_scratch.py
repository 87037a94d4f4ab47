"""The lakehouse's one scratch mechanism: private (0700 folders, 0600 files), removed at the end,
and what a crashed process left is removed at the start of the next run (never a live owner's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from phmx import lakehouse


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def _private(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        mode = p.stat().st_mode & 0o777
        assert mode == (0o700 if p.is_dir() else 0o600), f"{p.relative_to(path.parent)}: {oct(mode)}"


def test_scratch_tables_are_private_and_dropped(spark, phmx_home):
    with lakehouse.Scratch(spark, "measures") as scratch:
        df = scratch.put(spark.createDataFrame([(1, "a")], "id int, v string"), "events")
        assert df.count() == 1
        scratch.append(spark.createDataFrame([(2, "b")], "id int, v string"), "events")
        pq = scratch.put_parquet(spark.createDataFrame([(3,)], "id int"), "once")
        assert pq.count() == 1
        work = phmx_home / "lakehouse" / "work"
        tables = sorted(p.name for p in work.iterdir())
        assert all(name.startswith(scratch.prefix) for name in tables) and len(tables) == 2
        for name in tables:
            _private(work / name)
        assert (work.stat().st_mode & 0o777) == 0o700
    assert list(work.iterdir()) == []


def test_a_crashed_owners_scratch_is_removed_by_the_next_run(phmx_home):
    work = phmx_home / "lakehouse" / "work"
    work.mkdir(parents=True)
    tag = lakehouse.owner_tag()
    dead = tag.split("x")[0] + f"x{_dead_pid()}"
    (work / f"identity_{dead}_person").mkdir()
    (work / f"identity_{dead}_person" / "part-0.parquet").write_bytes(b"x")
    (work / f"identity_{tag}_std").mkdir()  # a live owner (this process): kept
    (work / "identity_tf").mkdir()  # persisted on purpose: kept
    (work / f"measures_{dead}_events").mkdir()  # another area: not this stage's to remove
    lakehouse.Scratch(None, "identity", persist=("tf",))
    names = sorted(p.name for p in work.iterdir())
    assert names == sorted([f"identity_{tag}_std", "identity_tf", f"measures_{dead}_events"])
    other_host = f"identity_o00000000x{os.getpid()}_old"
    (work / other_host).mkdir()
    lakehouse.Scratch(None, "identity")
    assert (work / other_host).exists()  # another host's owner cannot be checked: kept until it is a day old
    old = 2 * lakehouse.STALE_ELSEWHERE_S
    os.utime(work / other_host, (os.path.getatime(work / other_host) - old, os.path.getmtime(work / other_host) - old))
    lakehouse.Scratch(None, "identity")
    assert not (work / other_host).exists()


def test_folder_for_staged_files(phmx_home):
    scratch = lakehouse.Scratch(None, "ingest")
    folder = Path(scratch.folder("stage_abc"))
    (folder / "part-00000.parquet").write_bytes(b"rows")
    lakehouse.protect(str(folder))
    _private(folder)
    scratch.drop()
    assert not folder.exists()
