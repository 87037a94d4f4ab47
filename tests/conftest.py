"""Shared fixtures: one engine session for the whole run, a fresh lakehouse home per test.

The engine is started once per test process (see phmx.engine); each test gets its own
PHMX_HOME so tables never leak between tests.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Tests are imported in importlib mode (test files in different folders may share a basename);
# each folder's own helper modules (e.g. tests/consent/consent_testdata.py) stay importable by name.
for _folder in sorted(Path(__file__).resolve().parent.iterdir()):
    if _folder.is_dir() and not _folder.name.startswith((".", "_")) and str(_folder) not in sys.path:
        sys.path.append(str(_folder))

os.environ.setdefault("PHMX_SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("PHMX_LOG_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def spark():
    """The process-wide SparkSession (embedded Sail unless SPARK_REMOTE is set)."""
    from phmx.engine import get_spark

    return get_spark()


@pytest.fixture
def phmx_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private PHMX_HOME (landing, lakehouse, outbox, publish, keys) for one test."""
    home = tmp_path / "var"
    home.mkdir()
    monkeypatch.setenv("PHMX_HOME", str(home))
    for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT",
                "PHMX_KEYS_DIR"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def land(phmx_home: Path):
    """Write a file into the landing zone: land(submitter, feed, period, name, rows or text)."""

    def _land(submitter: str, feed: str, period: str, name: str, content: bytes | str | list[str]) -> Path:
        if isinstance(content, list):
            content = "\n".join(content) + "\n"
        p = phmx_home / "landing" / submitter / feed / period / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return p

    return _land


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real S3 (and KMS) endpoint over HTTP on 127.0.0.1: moto's threaded server, for the whole run.

    Sets the standard AWS variables so boto3, delta-rs and the embedded engine all reach it.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                             "AWS_ALLOW_HTTP", "AWS_REGION", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_ALLOW_HTTP="true", AWS_REGION="us-west-2", AWS_DEFAULT_REGION="us-west-2")
    from phmx import storage

    storage.reset_client()
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    storage.reset_client()


@pytest.fixture
def s3_bucket(moto_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the moto endpoint; returns its name."""
    import re
    import uuid

    from phmx import storage

    name = ("t-" + re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40] + "-" + uuid.uuid4().hex[:8]).strip("-")
    storage.s3_client().create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    return name


def _module_weight(item: pytest.Item) -> int:
    """0 for the JVM engine modules (minutes each), 1 for other slow ones, 2 for the rest."""
    if item.get_closest_marker("slow") is None:
        return 2
    return 0 if "/tests/engines/" in item.path.as_posix() else 1


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest modules first. Under ``make test`` two worker processes (pytest-xdist, ``--dist
    loadscope --no-loadscope-reorder``: without the flag xdist orders modules by their number of
    tests, which puts the few-test JVM modules last) take one module at a time in this order; a long
    module picked up last would leave one worker running it alone at the end. A stable sort: the
    order within a weight is unchanged."""
    weight: dict[Path, int] = {}
    for item in items:
        weight[item.path] = min(weight.get(item.path, 2), _module_weight(item))
    items.sort(key=lambda item: weight[item.path])
