"""Fixtures for the identity tests: a small synthetic population with known truth, helpers."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from phmx.synth import identity_records


@pytest.fixture(scope="session")
def population() -> tuple[pd.DataFrame, pd.DataFrame]:
    """About 650 records of 300 synthetic people (four kinds of source) and the truth map."""
    return identity_records.generate(300, seed=11)


@pytest.fixture
def write_person(spark) -> Callable[[pd.DataFrame], None]:
    """Replace silver.person with the given rows (in the test's own lakehouse), their direct
    identifiers encrypted as conform writes them."""

    def _write(person: pd.DataFrame) -> None:
        identity_records.write_person(spark, person)

    return _write


def _pairwise(members: pd.DataFrame, truth: pd.DataFrame) -> tuple[float, float]:
    m = members.merge(truth, on=["source", "source_person_id"])

    def pairs(groups) -> int:
        return sum(len(g) * (len(g) - 1) // 2 for _, g in groups)

    tp = pairs(m.groupby(["member_id", "person_id"]))
    pred = pairs(m.groupby("member_id"))
    true = pairs(m.groupby("person_id"))
    return (tp / pred if pred else 1.0), (tp / true if true else 1.0)


@pytest.fixture
def pairwise() -> Callable[[pd.DataFrame, pd.DataFrame], tuple[float, float]]:
    """Pairwise (precision, recall) of a (source, source_person_id, member_id) assignment."""
    return _pairwise
