"""Fixtures for the static checks of infra/terraform (no provider, no AWS, no network)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import tf_eval  # noqa: E402
from tf_layout import ENV_DIR, TF_ROOT, TFVARS  # noqa: E402


@pytest.fixture(scope="session")
def tf_root() -> Path:
    return TF_ROOT


@pytest.fixture(scope="module", params=[p.name for p in TFVARS])
def env(request) -> tf_eval.Module:
    """The example environment evaluated with one tfvars file (dev.tfvars, prod.tfvars)."""
    return tf_eval.load_env(ENV_DIR, ENV_DIR / request.param)


@pytest.fixture(scope="module")
def tfvars(env: tf_eval.Module) -> dict:
    return {name: env.var(name) for name in env.variables}
