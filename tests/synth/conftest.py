"""One shared synthetic dataset for the synth tests (generated once per session: ~2 s)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from phmx.synth import SynthConfig, SynthSummary, generate
from phmx.synth.layouts import LAYOUTS

COUNTIES = ["06001", "06013", "06075"]


@dataclass
class Dataset:
    root: Path
    summary: SynthSummary

    def files(self, feed: str | None = None, submitter: str | None = None) -> list[Path]:
        out = []
        for rel in sorted(self.summary.files):
            parts = rel.split("/")
            if parts[0] != "landing" or (feed and parts[2] != feed) or (submitter and parts[1] != submitter):
                continue
            out.append(self.root / rel)
        return out

    def rows(self, feed: str) -> Iterator[tuple[str, dict[str, str]]]:
        """(submitter, row) for every row of a delimited feed."""
        for path in self.files(feed):
            submitter = path.relative_to(self.root).parts[1]
            with path.open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh, delimiter=LAYOUTS[feed].delimiter):
                    yield submitter, row

    def truth(self, name: str) -> list[dict[str, str]]:
        with (self.root / "ground_truth" / name).open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """6,000 people, 3 counties, 6 months, in 3 chunks (so chunk seams are exercised)."""
    root = tmp_path_factory.mktemp("synth") / "out"
    summary = generate(root, members=6000, counties=COUNTIES, seed=11, start="2025-01", months=6,
                       config=SynthConfig(chunk_size=2000))
    return Dataset(root, summary)
