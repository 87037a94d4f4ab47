"""De-identification for everything that leaves the hub.

Modules: ``keys`` (key providers, rotation), ``pseudonyms`` (keyed HMAC pseudonyms per
recipient), ``crypto`` (column encryption at rest), ``safe_harbor`` (45 CFR 164.514(b)(2)
transform and checker), ``scrub`` (free text with Presidio), ``suppression`` (CalHHS DDG small
cells), ``attack`` (LP audit of published aggregates).
"""
