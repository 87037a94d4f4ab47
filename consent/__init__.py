"""Consent and the law, enforced in bulk, with a tamper-evident ledger.

Modules:

* :mod:`consent.registry`          county CSV forms and FHIR Consent resources -> silver.consent
* :mod:`consent.disclosure_policy` policy as data (``consent/policies/*.yaml``), loaded and validated
* :mod:`consent.decision_engine`   decisions per (member, data class, purpose, recipient) over time
* :mod:`consent.enforce`           permitted rows of an outbound dataset (joins only)
* :mod:`consent.labels`            security labels from value sets (``consent/valuesets/``)
* :mod:`consent.ledger`            the append-only, hash-chained, signed audit ledger (keys:
                                   :mod:`privacy.signing`, purpose ``LEDGER``)
* :mod:`consent.audit`             auditor tools: verify, accounting of disclosures, report
* :mod:`consent.cli`               ``phmx audit ...``

The tables it reads and writes (silver.consent, gold.consent_decision, audit.disclosure_member)
are defined in :mod:`phmx.tables`.
"""
