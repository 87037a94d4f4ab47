"""Publish: consented, de-identified, suppressed feeds to each recipient, recorded as disclosures.

The county service-count feed (one per local health jurisdiction): distinct members with a
service, by LHJ x month x source kind (plan claims, county mental health, county SUD, dental,
immunizations). Only rows the consent engine permits for purpose PUBHLTH to that LHJ are
counted; cells of 1-10 are suppressed (DDG 2.0), and every package is a disclosure in the ledger.
"""

from __future__ import annotations

from jobs.publish.stage import run

__all__ = ["run"]
