"""Pipeline stages, in order: ingest, conform, identity, consent, measures, publish.

Each stage is a package or module with ``run(spark, ctx) -> StageResult`` and a
``python -m jobs.<stage>`` entry point. ``STAGES`` is the one ordered list the DAG is built from.
"""

STAGES: tuple[str, ...] = ("ingest", "conform", "identity", "consent", "measures", "publish")
