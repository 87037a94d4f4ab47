"""Fixtures for the publish tests: one hand-built lakehouse and one publish run per module."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

HOME_VARS = ("PHMX_LANDING_ROOT", "PHMX_LAKEHOUSE_ROOT", "PHMX_OUTBOX_ROOT", "PHMX_PUBLISH_ROOT", "PHMX_KEYS_DIR",
             "PHMX_KMS_KEY_ID")


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory):
    """A private PHMX_HOME shared by the tests of one module (the engine work is done once)."""
    from privacy.keys import reset_provider_cache

    home = tmp_path_factory.mktemp("publish") / "var"
    home.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("PHMX_HOME", str(home))
    for var in HOME_VARS:
        mp.delenv(var, raising=False)
    reset_provider_cache()
    yield home
    mp.undo()
    reset_provider_cache()


@pytest.fixture
def keys_home(phmx_home: Path):
    """A per-test PHMX_HOME with fresh key providers (for package and signing tests)."""
    from privacy.keys import reset_provider_cache

    os.environ.pop("PHMX_KMS_KEY_ID", None)
    reset_provider_cache()
    yield phmx_home
    reset_provider_cache()
