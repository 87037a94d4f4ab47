"""Fixtures for intake tests: one small synthetic population in every format, generated once."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

ALL_FORMATS = {"x12_834", "hl7_vxu", "fixed_width", "fhir_patient", "fhir_coverage", "fhir_encounter",
               "fhir_immunization", "fhir_consent"}


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """landing/ of 250 synthetic people for one month, every format the generator can write."""
    from phmx.synth.generator import generate

    root = tmp_path_factory.mktemp("synth")
    generate(str(root), members=250, counties=["06001"], seed=7, months=1, formats=ALL_FORMATS)
    return root / "landing"


def synth_file(root: Path, submitter: str, feed: str) -> Path:
    (path,) = sorted((root / submitter / feed).rglob("*.*"))
    return path


def synth_rows(root: Path, submitter: str, feed: str) -> list[dict[str, str]]:
    """The delimited rows of a synthetic feed file (what the format writers take)."""
    delim = "|" if feed == "enrollment" else ","
    with synth_file(root, submitter, feed).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delim))
