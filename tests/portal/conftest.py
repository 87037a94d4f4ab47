"""The portal tests share one hub per module (ingest and key creation are too slow to repeat)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from portal_world import World, build


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, spark) -> Iterator[World]:  # noqa: ANN001 - fixture
    from privacy.keys import reset_provider_cache

    home = tmp_path_factory.mktemp("portal") / "var"
    home.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("PHMX_HOME", str(home))
    for var in ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT", "PHMX_KEYS_DIR",
                "PHMX_LEDGER_ROOT", "PHMX_KMS_KEY_ID", "PHMX_LEDGER_KMS_KEY_ID", "PHMX_PORTAL_ORGS",
                "PHMX_PORTAL_USERS", "PHMX_PORTAL_SECRET_FILE", "PHMX_PORTAL_TLS", "PHMX_PORTAL_MAX_UPLOAD_MB"):
        mp.delenv(var, raising=False)
    os.environ.pop("PHMX_KMS_KEY_ID", None)
    reset_provider_cache()
    try:
        yield build(home, spark)
    finally:
        mp.undo()
        reset_provider_cache()
