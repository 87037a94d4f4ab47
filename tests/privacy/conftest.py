"""Fixtures for the privacy tests: a local key provider in a private PHMX_HOME."""

from __future__ import annotations

import pytest

from privacy import keys


@pytest.fixture
def provider(phmx_home):
    """A fresh local key provider (keys under this test's PHMX_HOME)."""
    keys.reset_provider_cache()
    prov = keys.get_provider()
    yield prov
    keys.reset_provider_cache()
