"""Same results on the three engine routes: the whole pipeline on one synthetic population on Sail
(embedded), on classic JVM Spark (``PHMX_ENGINE=classic``, local[2]) and through a JVM Spark
Connect server on 127.0.0.1.

Every gold table (read back with delta-rs, which must be able to read it), every published
measures.csv and indicators.csv and every FHIR resource must be identical across the three, clock columns, run ids
and ciphertexts aside (tests/engines/same_results.py says why each is set aside). The routes
share one keys folder, so pseudonyms and fingerprints are comparable.

``PHMX_ENGINES_DIR`` keeps the runs in a folder (a second session reuses finished routes);
``PHMX_ENGINES_MEMBERS`` sets the population (default 200).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from jvm_kit import requires_jvm
from same_results import gold_tables, normalise, published

pytestmark = [requires_jvm, pytest.mark.slow]

ROUTES = ("sail", "classic", "connect")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from benchmarks.engines import prepare, run_routes

    base = Path(os.environ["PHMX_ENGINES_DIR"]) if os.environ.get("PHMX_ENGINES_DIR") else \
        tmp_path_factory.mktemp("engines")
    base.mkdir(parents=True, exist_ok=True)
    landing = prepare(base, int(os.environ.get("PHMX_ENGINES_MEMBERS", "200")))
    # Sail first (it makes the shared keys), then classic and Connect at the same time: each JVM
    # route waits between small Spark jobs most of its wall time, so the two overlap on two cores.
    return base, run_routes(base, landing, ROUTES, parallel=True)


def test_every_route_ran_every_stage_with_the_same_counts(runs):
    _, out = runs
    counts = {route: {stage: {k: v for k, v in c.items() if k != "seconds"} for stage, c in r["COUNTS"].items()}
              for route, r in out.items()}
    for route in ROUTES[1:]:
        assert counts[route] == counts["sail"], route
    assert counts["sail"]["ingest"]["rows_accepted"] > 1000
    assert counts["sail"]["identity"]["members"] > 100


@pytest.mark.parametrize("route", ROUTES[1:])
def test_gold_tables_are_identical_to_sails(runs, route):
    base, _ = runs
    ours, theirs = gold_tables(base / "sail"), gold_tables(base / route)
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        a, b = normalise(ours[name]), normalise(theirs[name])
        assert list(a.columns) == list(b.columns), name
        pd.testing.assert_frame_equal(a, b, obj=f"gold.{name} on {route}")


@pytest.mark.parametrize("route", ROUTES)
def test_every_table_each_route_wrote_is_readable_by_delta_rs(runs, route):
    import deltalake

    base, _ = runs
    logs = sorted((base / route / "lakehouse").glob("*/*/_delta_log"))
    assert len(logs) > 20
    for log in logs:
        dt = deltalake.DeltaTable(str(log.parent))
        assert "collat" not in dt.schema().to_json().lower(), log.parent
        dt.history(1)  # the log replays too (history, time travel, vacuum all start here)


@pytest.mark.parametrize("route", ROUTES[1:])
def test_published_measures_and_fhir_resources_are_identical_to_sails(runs, route):
    base, _ = runs
    ours, theirs = published(base / "sail"), published(base / route)
    assert all(any(k.endswith(end) for k in ours) for end in ("measures.csv", "indicators.csv", ".ndjson"))
    assert sorted(ours) == sorted(theirs)
    for key in ours:
        assert ours[key] == theirs[key], f"{key} differs on {route}"
