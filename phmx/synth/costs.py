"""What a plan paid for a synthetic claim line, so total cost of care can be computed from the claims.

The amount depends only on the line (its kind, revenue code, CPT/HCPCS code, claim id and line
number), never on the generator's random stream: adding amounts left every other synthetic value
unchanged. The scale follows Medi-Cal managed care orders of magnitude (an office visit tens of
dollars, an ED visit a few hundred, an inpatient stay thousands per day); they are illustrative,
not a fee schedule.
"""

from __future__ import annotations

import hashlib

#: (low, high) paid per line, US dollars, by claim kind (phmx.synth.clinical.Claim.kind).
_RANGE = {"office": (45.0, 160.0), "mh_office": (80.0, 220.0), "sud_office": (70.0, 200.0),
          "ed": (250.0, 1400.0), "ip": (1800.0, 4200.0)}


def line_paid(kind: str, claim_id: str, line: int, days: int = 1, *, professional: bool = False) -> str:
    """The paid amount of one claim line as text with two decimals. An inpatient institutional line is
    paid per day of the stay (``days``); the professional line of an ED visit or a stay is an office-scale fee."""
    low, high = _RANGE["office"] if professional else _RANGE.get(kind, _RANGE["office"])
    h = int.from_bytes(hashlib.blake2b(f"{claim_id}:{line}".encode(), digest_size=4).digest(), "big")
    amount = low + (high - low) * (h / 0xFFFFFFFF)
    if kind == "ip" and not professional:
        amount *= max(1, days)
    return f"{amount:.2f}"
