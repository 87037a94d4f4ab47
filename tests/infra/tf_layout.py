"""Where the Terraform lives (shared by the infra tests and their conftest)."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TF_ROOT = REPO / "infra" / "terraform"
ENV_DIR = TF_ROOT / "envs" / "example"
TFVARS = sorted(ENV_DIR.glob("*.tfvars"))
