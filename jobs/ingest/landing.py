"""Finding submissions in the landing zone: ``<landing>/<submitter>/<feed>/<period>/<file>``."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from phmx import storage
from phmx.period import Period, PeriodKind

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec

SUBMITTER = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class LandedFile:
    """A file in the landing zone and what its path says about it."""

    uri: str
    relpath: str
    submitter: str
    feed: str
    period: str
    name: str
    size: int
    layout_ok: bool


def is_landing_period(label: str) -> bool:
    """Whether a period folder is named as landing requires: a month, ``YYYY-MM``."""
    p = Period.of(label)
    return p is not None and p.kind is PeriodKind.MONTH


def scan(landing_root: str, period: Period | None = None) -> list[LandedFile]:
    """Every landed file (optionally one period's), sorted so runs are deterministic."""
    out = []
    for f in storage.list_files(landing_root):
        parts = f.relpath.split("/")
        if parts[0].startswith("_"):
            continue  # _quarantine and other hub-owned folders
        if len(parts) == 4:
            submitter, feed, per, name = parts
            ok = bool(SUBMITTER.match(submitter))
        else:
            submitter = parts[0] if parts and SUBMITTER.match(parts[0]) else ""
            feed, per, name, ok = (parts[1] if len(parts) > 2 else ""), "", parts[-1], False
        if period is not None and not period.is_all and per != period.label:
            continue
        out.append(LandedFile(f.uri, f.relpath, submitter, feed, per, name, f.size, ok))
    return out


def submission_id(submitter: str, feed: str, period: str, relpath: str, sha256: str) -> str:
    """Deterministic id: the same file at the same place is the same submission on every run."""
    digest = hashlib.sha256("\x1f".join([submitter, feed, period, relpath, sha256]).encode()).hexdigest()
    return f"sub-{digest[:20]}"


def path_problem(lf: LandedFile, specs: dict[str, FeedSpec], *, check_submitter: bool = True) -> tuple[str, str] | None:
    """``(rule id, message)`` when the file's place in the landing zone is wrong, else None.

    Checked before anything else about the file (its bytes, whether it was seen before): a file in
    a bad period folder gets the path error, never ``duplicate``, so the sender learns where to put it.
    """
    if not lf.layout_ok:
        return ("bad_period" if lf.feed else "unknown_feed",
                "file is not at landing/<submitter>/<feed>/<YYYY-MM>/<file>")
    if not is_landing_period(lf.period):
        return "bad_period", "the period folder must be YYYY-MM"
    spec = specs.get(lf.feed)
    if spec is None:
        return "unknown_feed", f"no feed spec named {lf.feed!r}"
    if check_submitter and not spec.accepts_submitter(lf.submitter):
        return "unknown_submitter", f"feed {spec.feed} is not accepted from this submitter"
    return None
