"""The engine actions that were batched (one Spark job where there was one per item), run on
whichever engine the session is: the same function runs in the test process on Sail and in a
classic JVM Spark process, and the two results must be equal.

Generated records (``phmx.synth.identity_records``), a hand-built bronze frame and ledger for
conform's source list.
"""

from __future__ import annotations

from typing import Any


def figures(spark: Any, scratch_root: str) -> dict[str, Any]:
    """exact-agreement u and sampled u levels (identity), a target's sources (conform)."""
    import pandas as pd

    from jobs.conform.stage import target_sources
    from jobs.identity import linkage
    from jobs.identity.stage import stage_settings
    from phmx.synth import identity_records

    person, _ = identity_records.generate(60, seed=5)
    person["birth_date"] = pd.to_datetime(person["birth_date"]).dt.date
    settings = stage_settings()
    scratch = linkage.Scratch(spark, "identity", root=scratch_root)
    std = linkage.prepare(identity_records.to_spark(spark, person), scratch, settings)
    exact = {k: round(v, 12) for k, v in linkage.exact_u(std, settings).items()}
    levels = {k: [[int(g), float(n)] for g, n in zip(f.iloc[:, 0], f["n"], strict=True)]
              for k, f in linkage.sample_u_levels(std, settings, scratch).items()}
    scratch.drop()

    bronze = spark.createDataFrame([("planA", "x"), ("planB", "y"), ("planA", None)], "submitter string, v string")
    ledger = spark.createDataFrame([("planC",), ("planA",)], "submitter string")
    return {"exact_u": exact, "u_levels": levels,
            "sources": target_sources(bronze, {"source": "submitter"}, ledger),
            "sources_no_ledger": target_sources(bronze, {"source": "submitter"}),
            # an expression over a column the ledger has not got: bronze's sources only
            "sources_bronze_only": target_sources(bronze, {"source": "concat(submitter, '-', coalesce(v, 'z'))"}, ledger)}
