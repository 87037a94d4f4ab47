"""Publish: the feeds local health jurisdictions and plans receive, each a disclosure in the ledger.

* LHJ feed (``lhj_measures``), one per jurisdiction (58 counties, Berkeley, Long Beach, Pasadena):
  measure x stratifier cells with counts, rates and 95% intervals, small cells suppressed; CSV,
  Parquet, FHIR MeasureReport Bundle, service counts, data dictionary, HTML report.
* Plan feed (``plan_bulk_fhir``), one per plan submitter: FHIR Bulk Data NDJSON of its attributed
  members, only what consent permits for treatment, with pseudonymous ids.

Every package is signed (Ed25519 manifest), delivered all-or-nothing as a new version
(``publish/<recipient>/<feed>/<period>/v<N>/`` + ``latest``), recorded in the ledger and in
``gold.feed_log``. Entry points: :func:`run` (the stage), :func:`summarize_publish` (what is
published), ``phmx feeds`` / ``phmx feeds verify DIR`` (:mod:`jobs.publish.cli`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phmx import lazy

if TYPE_CHECKING:
    from jobs.publish.stage import publish_recipient, report, run, run_recipients
    from jobs.publish.summary import summarize_publish
    from phmx.recipients import recipient_id

__all__ = ["publish_recipient", "recipient_id", "report", "run", "run_recipients", "summarize_publish"]

#: Where each public name lives, imported on first use (:mod:`phmx.lazy`): the worker processes
#: that build LHJ packages and decide suppression load only :mod:`jobs.publish.lhj_feed` and what it
#: needs, not the stage (the engine client, the indicator statistics).
__getattr__ = lazy.exports(__name__, {
    "publish_recipient": "jobs.publish.stage", "report": "jobs.publish.stage", "run": "jobs.publish.stage",
    "run_recipients": "jobs.publish.stage", "summarize_publish": "jobs.publish.summary",
    "recipient_id": "phmx.recipients"})
