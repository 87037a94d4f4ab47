"""Pipeline stages, in order: ingest, conform, identity, consent, measures, indicators, ecm, publish.

Each stage is a package ``jobs/<package>/`` laid out the same way: ``stage.py`` holds
``run(spark, ctx) -> StageResult``, ``__init__`` re-exports it and ``__main__`` runs it by hand
(``python -m jobs.<package>``). ``STAGE_PACKAGES`` is the one ordered list the DAG, the CLI and
the runners are built from. A stage's package is named after the stage except where that name
is taken by a library package: the consent stage lives in ``jobs.consent_decisions`` so that it
can never shadow the :mod:`consent` library it uses.
"""

from __future__ import annotations

STAGE_PACKAGES: dict[str, str] = {
    "ingest": "jobs.ingest",
    "conform": "jobs.conform",
    "identity": "jobs.identity",
    "consent": "jobs.consent_decisions",
    "measures": "jobs.measures",
    "indicators": "jobs.indicators",
    "ecm": "jobs.ecm",
    "publish": "jobs.publish",
}
STAGES: tuple[str, ...] = tuple(STAGE_PACKAGES)


def stage_package(stage: str) -> str:
    """The import name of ``stage``'s package (a KeyError for an unknown stage)."""
    return STAGE_PACKAGES[stage]
