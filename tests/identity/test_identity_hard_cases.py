"""Twins, household members, namesakes and lookalikes stay apart; one person written two ways
links. Labelled cases (tests/identity/hard_cases.py) among a synthetic background population,
through the stage's engine code at its default settings."""

from __future__ import annotations

import pandas as pd
import pytest
from hard_cases import cases

from jobs.identity import linkage
from jobs.identity.stage import stage_settings
from phmx.synth import identity_records

APART = ("twin", "twin_nickname", "household", "namesake", "lookalike", "bridged")
TOGETHER = ("compound", "nickname", "swapped", "no_birth_date")


@pytest.fixture(scope="module")
def linked(spark, tmp_path_factory) -> pd.DataFrame:
    background, _ = identity_records.generate(400, seed=21)
    hard, truth = cases()
    person = pd.concat([background, hard], ignore_index=True)
    person["birth_date"] = pd.to_datetime(person["birth_date"]).dt.date
    settings = stage_settings()
    scratch = linkage.Scratch(spark, "identity", root=str(tmp_path_factory.mktemp("hard") / "work"))
    std = linkage.prepare(identity_records.to_spark(spark, person), scratch, settings)
    scored = linkage.score(spark, std, settings, scratch)
    links = linkage.link(spark, scored, settings)
    clusters = linkage.cluster_frame(spark, std, links.labels).toPandas()
    return clusters.merge(truth, on=["source", "source_person_id"])


def _merged_people(c: pd.DataFrame, kind: str) -> int:
    """Clusters of this kind's records that hold more than one person."""
    k = c[c["kind"] == kind]
    return int((k.groupby("cluster")["person_id"].nunique() > 1).sum())


def _split_people(c: pd.DataFrame, kind: str) -> int:
    k = c[c["kind"] == kind]
    return int((k.groupby("person_id")["cluster"].nunique() > 1).sum())


@pytest.mark.parametrize("kind", APART)
def test_hard_negatives_are_never_merged(linked, kind):
    assert _merged_people(linked, kind) == 0


@pytest.mark.parametrize(("kind", "max_split"), [("compound", 0), ("nickname", 0), ("swapped", 0),
                                                 ("no_birth_date", 0)])
def test_one_person_written_two_ways_links(linked, kind, max_split):
    assert _split_people(linked, kind) <= max_split


def test_hard_negatives_own_records_still_link(linked):
    # Keeping twins apart must not split each twin: both of a twin's records are one member.
    assert _split_people(linked, "twin") == 0 and _split_people(linked, "namesake") <= 2
    # ... and a plan member's dental record (no CIN) still joins them.
    assert _split_people(linked, "bridged") == 0
