"""``make dist``: the job bundle the cluster runners ship (``python -m phmx.dist``).

Three files in ``dist/``, what PySpark's and EMR Serverless's guides for Python dependencies ask
for (a packed virtual environment shipped with ``--archives``/``spark.archives``, unpacked as
``./environment`` beside the driver and every executor, whose ``bin/python`` runs the UDFs):

* ``phmx-<version>-py3-none-any.whl``: the project (phmx, jobs, consent, privacy, mappings,
  dags), built with ``pip wheel --no-deps --no-build-isolation`` (no download);
* ``phmx-venv.tar.gz``: a virtual environment with that wheel and every runtime dependency the
  stages import, at the versions of ``constraints.txt``;
* ``submit.py``: the driver (``jobs/submit.py``), the entry point spark-submit and EMR start.

Why the environment is assembled from the build machine's installed distributions rather than
``pip install``-ed afresh: the build must work offline (pip cannot install from its HTTP cache
without an index). Each distribution is copied file by file from its installed ``RECORD``, and
its version is checked against ``constraints.txt``, so the bundle holds exactly the pinned set.

Left out, because the cluster or another process provides them: pyspark and py4j (every Spark
puts its own ``pyspark.zip`` and py4j on the workers' path: a bundled copy could disagree with the
cluster's JVM), the embedded engine (pysail, pyspark-client), delta-spark's Python API (the jobs
use Delta through the jars), Airflow and its providers (the scheduler's side), and the portal's
web stack. Their dependencies come along only when a shipped package needs them too.

The environment's ``bin/python`` is a link to the building interpreter, as with venv-pack:
the workers need the same CPython minor version at the same path (for EMR Serverless, build the
bundle in an image like the release's, as its guide says, or use a custom image).
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata as md
import os
import shutil
import subprocess  # noqa: S404 - pip and venv with fixed arguments
import sys
import sysconfig
import tarfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from phmx.errors import ConfigError
from phmx.runners import VENV_ARCHIVE_NAME

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_ARCHIVE = VENV_ARCHIVE_NAME  # the EMR runner expects it beside submit.py under PHMX_EMR_CODE_URI
ENTRY_POINT = "submit.py"

# Distributions (and everything only they need) the workers do not get; patterns on canonical names.
NOT_SHIPPED: tuple[str, ...] = (
    "pyspark", "py4j", "pyspark-client", "pysail", "delta-spark",
    "apache-airflow", "apache-airflow-*",
    "fastapi", "starlette", "uvicorn", "itsdangerous", "python-multipart", "argon2-cffi", "weasyprint",
    "httpx", "pyjwt",
)


@dataclass(frozen=True)
class Bundle:
    """What :func:`build` made: the three files, the shipped distributions, seconds taken."""

    wheel: Path
    archive: Path
    entry_point: Path
    distributions: dict[str, str]
    seconds: float


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in NOT_SHIPPED)


def _requirements(reqs: list[str], extras: frozenset[str] = frozenset()) -> list[Requirement]:
    out = []
    for text in reqs:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            out.append(req)
    return out


def runtime_distributions(root: Path = PROJECT_ROOT) -> dict[str, md.Distribution]:
    """The installed distributions the workers need: the closure of pyproject's dependencies,
    not entering :data:`NOT_SHIPPED`. A dependency that is not installed is a :class:`ConfigError`."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    todo = [(r, frozenset(r.extras)) for r in _requirements(project["dependencies"])]
    found: dict[str, md.Distribution] = {}
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if _excluded(name) or name in found:
            continue
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            raise ConfigError(f"{req.name} is a dependency of the project but is not installed",
                              hint="install the project first: make install") from None
        found[name] = dist
        todo += [(r, frozenset(r.extras)) for r in _requirements(dist.requires or [], extras)]
    return found


def pinned_versions(root: Path = PROJECT_ROOT) -> dict[str, str]:
    """``constraints.txt`` as ``{canonical name: version}``."""
    pins: dict[str, str] = {}
    for line in (root / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name.split("[", 1)[0])] = version.split(";", 1)[0].strip()
    return pins


def _copy_distribution(dist: md.Distribution, site: Path) -> int:
    """Copy an installed distribution's files (its RECORD) into ``site``; scripts outside are skipped."""
    n = 0
    for f in dist.files or []:
        if f.parts and f.parts[0] == "..":
            continue  # console scripts in bin/: the workers run modules, not scripts
        if "__pycache__" in f.parts:
            continue
        src = Path(str(dist.locate_file(f)))
        if not src.is_file():
            continue
        dest = site / f
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        n += 1
    return n


def build(out: Path | None = None, root: Path = PROJECT_ROOT, compresslevel: int = 6) -> Bundle:
    """Build the wheel, the packed environment and the entry point into ``out`` (``<root>/dist``)."""
    t0 = time.monotonic()
    out = out or root / "dist"
    out.mkdir(parents=True, exist_ok=True)
    work = out / "build"
    shutil.rmtree(work, ignore_errors=True)
    for old in out.glob("phmx-*.whl"):
        old.unlink()

    # 1. the project wheel (setuptools from this environment: no build isolation, no download);
    # setuptools builds in <root>/build, removed afterwards unless it was there before
    had_build = (root / "build").exists()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",  # noqa: S603
                    "--wheel-dir", str(out), str(root)], check=True, cwd=root)
    if not had_build:
        shutil.rmtree(root / "build", ignore_errors=True)
    (wheel,) = sorted(out.glob("phmx-*.whl"))

    # 2. the environment: a fresh venv, the pinned dependencies copied in, the wheel installed
    dists = runtime_distributions(root)
    pins = pinned_versions(root)
    drift = sorted(f"{n} {d.version} (constraints.txt: {pins[n]})" for n, d in dists.items()
                   if n in pins and pins[n] != d.version)
    if drift:
        raise ConfigError("installed versions differ from constraints.txt: " + ", ".join(drift),
                          hint="reinstall with pip install -c constraints.txt, then make dist again")
    venv = work / "environment"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)  # noqa: S603
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    for dist in dists.values():
        _copy_distribution(dist, purelib)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",  # noqa: S603
                    "--no-compile", "--target", str(purelib), str(wheel)], check=True)
    shutil.rmtree(purelib / "bin", ignore_errors=True)  # the wheel's console script, written for this venv

    archive = out / VENV_ARCHIVE
    tmp = archive.with_suffix(".tmp")
    with tarfile.open(tmp, "w:gz", compresslevel=compresslevel) as tar:
        for path in sorted(venv.iterdir()):
            tar.add(path, arcname=path.name)
    os.replace(tmp, archive)

    # 3. the entry point
    entry = out / ENTRY_POINT
    shutil.copy2(root / "jobs" / "submit.py", entry)
    shutil.rmtree(work, ignore_errors=True)
    return Bundle(wheel=wheel, archive=archive, entry_point=entry,
                  distributions={n: d.version for n, d in sorted(dists.items())},
                  seconds=time.monotonic() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phmx.dist", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--out", type=Path, default=None, help="folder of the bundle (default: dist/)")
    args = parser.parse_args(argv)
    bundle = build(args.out)
    for f in (bundle.wheel, bundle.archive, bundle.entry_point):
        sys.stdout.write(f"{f}  {f.stat().st_size / 1e6:.1f} MB\n")
    sys.stdout.write(f"{len(bundle.distributions)} distributions in {bundle.archive.name}; "
                     f"built in {bundle.seconds:.0f} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
