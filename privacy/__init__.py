"""De-identification for everything that leaves the hub (docs/privacy.md).

* ``keys``: key providers (local key files, AWS KMS envelope), HKDF, rotation by version.
* ``pseudonyms`` / ``hmac_engine``: keyed HMAC pseudonyms per recipient, on the engine.
* ``crypto``: AES-256-GCM column encryption at rest, data keys, blind indexes.
* ``deid_policy`` / ``safe_harbor`` / ``checker``: 45 CFR 164.514(b)(2) policies, transform, checker.
* ``scrub`` / ``recognizers``: free text with Presidio (offline), our recognizers.
* ``suppression`` / ``cell_relations`` / ``attack``: CalHHS DDG small-cell suppression and the LP audit.
* ``eval``: the labelled set. (Synthetic measure feeds for tests and benchmarks: :mod:`phmx.synth.measure_feed`.)
* ``cli``: ``phmx privacy ...`` (``register(subparsers)``).
"""
