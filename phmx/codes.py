"""Code-system helpers shared by stages: NDC normalisation and the CDC NDC-to-CVX crosswalk.

NDCs come in three 10-digit hyphenated layouts (4-4-2, 5-3-2, 5-4-1) and the 11-digit 5-4-2 form
HIPAA transactions use, with or without hyphens. One canonical form (11 digits, no hyphens) makes
them comparable; a bare 10-digit NDC without hyphens is ambiguous (its layout is unknown) and has
no canonical form.

The crosswalk is the value set ``mappings/valuesets/ndc_cvx.yaml``: every vaccine NDC (unit of
use and unit of sale) in canonical form, labelled with its CVX. It is built from the CDC's
"NDC to CVX crosswalk" tables (see the value set's ``source``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from phmx.feedspec import load_valueset

_HYPHENATED = re.compile(r"^(\d{4,5})-(\d{3,4})-(\d{1,2})$")


def ndc11(code: str) -> str | None:
    """The 11-digit, unhyphenated form of an NDC, or None when the layout cannot be known."""
    c = code.strip()
    if re.fullmatch(r"\d{11}", c):
        return c
    m = _HYPHENATED.match(c)
    if not m:
        return None
    labeler, product, package = m.groups()
    if len(labeler) + len(product) + len(package) not in (10, 11):
        return None
    return labeler.zfill(5) + product.zfill(4) + package.zfill(2)


@lru_cache(maxsize=4)
def ndc_to_cvx(valueset: str = "ndc_cvx") -> dict[str, str]:
    """Canonical NDC -> CVX, from the crosswalk value set (labels are the CVX codes)."""
    return dict(load_valueset(valueset).labels)
