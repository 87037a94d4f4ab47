"""PHMX_FHIR_BASE_URL sets the canonical base of every FHIR identifier system and extension."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _constants(base: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "PHMX_FHIR_BASE_URL"}
    if base is not None:
        env["PHMX_FHIR_BASE_URL"] = base
    code = ("from jobs.publish import fhir_measure as m, fhir_sql as s; "
            "print(m.MEASURE_SET); print(m.CI_EXT); print(s.HUB)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=120)
    return out.stdout.split()


def test_default_is_a_reserved_example_domain_and_a_deployment_sets_its_own():
    assert all(v.startswith("https://phmx.calaim.example/fhir") for v in _constants(None))
    mine = _constants("https://fhir.hub.example.org/r4/")
    assert mine == ["https://fhir.hub.example.org/r4/Measure/phmx-phm-measures",
                    "https://fhir.hub.example.org/r4/StructureDefinition/confidence-interval-95",
                    "https://fhir.hub.example.org/r4"]
