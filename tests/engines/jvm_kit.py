"""Helpers for the JVM engine tests: run a script in a fresh process on a chosen engine route.

Each JVM route gets its own process: a pyspark process that has opened a Spark Connect session
(the embedded engine every other test uses) builds Connect columns from then on, so a classic
JVM session cannot share it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def have_java() -> bool:
    import shutil

    return bool(shutil.which("java") or os.environ.get("JAVA_HOME"))


requires_jvm = pytest.mark.skipif(not have_java(), reason="no Java on this machine (the JVM routes need a JDK 17+)")


def run_script(script: str, *args: str, engine: str, home: Path, env: dict[str, str] | None = None,
               timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (Python source) with ``PHMX_ENGINE=engine`` and ``PHMX_HOME=home``; fail loudly."""
    full = {**os.environ, "PHMX_HOME": str(home), "PHMX_ENGINE": engine, "PYTHONPATH": str(REPO),
            "PHMX_SHUFFLE_PARTITIONS": os.environ.get("PHMX_SHUFFLE_PARTITIONS", "2"), **(env or {})}
    if engine != "connect":
        full.pop("SPARK_REMOTE", None)
    proc = subprocess.run([sys.executable, "-c", script, *args], env=full, capture_output=True, text=True,  # noqa: S603
                          timeout=timeout, cwd=REPO)
    assert proc.returncode == 0, f"{engine} script failed:\n{proc.stderr[-4000:]}"
    return proc
