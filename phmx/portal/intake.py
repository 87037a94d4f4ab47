"""Uploads: a submitter's file, checked and streamed into its own landing prefix.

Where a file goes is decided here and nowhere else: ``<landing>/<the organisation's submitter
id>/<feed>/<period>/<sanitised name>``. The submitter id comes from the organisation, never from
the request, so nobody can write into another sender's folder. Before a byte is stored the feed
must accept this submitter, the period must be a month, the name is reduced to a safe one and
the first bytes must look like the feed's format (a text file of the right kind, not a spreadsheet,
archive or executable). A name already used in that period folder is refused (409): the landed
file is the evidence of what was received and is never overwritten; a corrected file goes in under
a new name and ingest supersedes the old one by the feed's rule.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from phmx import settings, storage

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec
    from phmx.portal.directory import Principal

SNIFF_BYTES = 8192
MAX_NAME = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Signatures of files that are never a feed: archives, office documents, PDFs, images, programs.
_BINARY_MAGIC = (b"PK\x03\x04", b"%PDF", b"\x1f\x8b", b"MZ", b"\x7fELF", b"\x89PNG", b"\xff\xd8\xff",
                 b"\xd0\xcf\x11\xe0", b"7z\xbc\xaf", b"Rar!", b"BZh", b"\xfd7zXZ", b"GIF8")


class UploadProblem(Exception):
    """A refused upload: HTTP status, the form field at fault, what is wrong and how to fix it."""

    def __init__(self, status: int, field: str, message: str, fix: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message, self.fix = status, field, message, fix

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "detail": self.message, "fix": self.fix}


def sanitise_name(name: str) -> str:
    """A file name safe in any store: its last path part, ASCII letters, digits, ``._-`` only."""
    base = unicodedata.normalize("NFKD", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = base.encode("ascii", "ignore").decode()
    clean = _UNSAFE.sub("_", base).strip("._-")[:MAX_NAME].strip("._-")
    if not clean or not re.search(r"[A-Za-z0-9]", clean):
        raise UploadProblem(422, "file", "the file name has no usable characters",
                            "rename the file with letters, digits, dots, dashes or underscores")
    return clean


def sniff(head: bytes, format_type: str) -> None:
    """Refuse content that is not the feed's kind of file, from its first bytes."""
    if not head:
        return  # an empty (header-less) file is intake's to judge: it may withdraw a period
    if head.startswith(_BINARY_MAGIC) or b"\x00" in head:
        raise UploadProblem(415, "file", "the file is not plain text (it looks like an archive, office document, "
                            "image or program)", "export the feed as the text format its spec names and send that")
    text = head.lstrip(b"\xef\xbb\xbf\x0b \t\r\n")
    expected = {"x12_834": (b"ISA",), "hl7_vxu": (b"MSH", b"FHS", b"BHS"), "hl7_adt": (b"MSH", b"FHS", b"BHS"),
                "fhir_ndjson": (b"{",)}.get(format_type)
    if expected and not text.startswith(expected):
        raise UploadProblem(415, "file", f"the file does not start as a {format_type} file should "
                            f"(with {' or '.join(e.decode() for e in expected)})",
                            "check that you chose the right feed, and that the file is not wrapped or converted")
    controls = sum(1 for b in head if b < 0x20 and b not in (0x09, 0x0A, 0x0D, 0x0B, 0x1C))
    if controls > len(head) // 100:
        raise UploadProblem(415, "file", "the file holds control characters a text feed does not",
                            "export the feed again as plain text")


@dataclass(frozen=True)
class Landed:
    submitter: str
    feed: str
    period: str
    name: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, object]:
        return {"submitter": self.submitter, "feed": self.feed, "period": self.period, "file": self.name,
                "bytes": self.size, "sha256": self.sha256, "status": "received",
                "next": "the receipt appears in your submission history after the hub's next intake run"}


class _Hashing:
    """A read-through wrapper that hashes and counts what storage reads."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner, self.hash, self.size = inner, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def tell(self) -> int:
        return self.size


def land(principal: Principal, *, feed: str, period: str, filename: str, fileobj: BinaryIO) -> Landed:
    """Check and store one upload in the caller's landing prefix; UploadProblem if refused."""
    from jobs.ingest.specs import load_specs
    from phmx.errors import ConfigError
    from phmx.period import LANDING_KINDS, Period

    submitter = principal.organisation.submitter
    if not submitter:
        raise UploadProblem(403, "organisation", "your organisation does not submit files", "sign in as a submitter")
    specs = load_specs()
    spec = specs.get(feed)
    if spec is None or not spec.accepts_submitter(submitter):
        accepted = sorted(f for f, s in specs.items() if s.accepts_submitter(submitter))
        raise UploadProblem(422, "feed", f"feed {feed!r} is not one your organisation sends",
                            "choose one of: " + ", ".join(accepted))
    try:
        label = Period.parse(period, allowed=LANDING_KINDS, what="period").label
    except ConfigError:
        raise UploadProblem(422, "period", "the period must be a month, YYYY-MM",
                            "give the reporting month the file covers, e.g. 2026-01") from None
    name = sanitise_name(filename)
    head = fileobj.read(SNIFF_BYTES)
    sniff(head, spec.format_type)
    fileobj.seek(0)
    uri = storage.join(settings.load().landing_root, submitter, feed, label, name)
    if storage.exists(uri):
        raise UploadProblem(409, "file", f"a file named {name} was already received for {feed} {label}",
                            "send the corrected file under a new name; the hub replaces the earlier one by the "
                            "feed's resubmission rule")
    reader = _Hashing(fileobj)
    storage.write_stream(uri, reader, content_type="application/octet-stream")  # type: ignore[arg-type]
    return Landed(submitter, feed, label, name, reader.size, reader.hash.hexdigest())


def withdrawable(spec: FeedSpec) -> bool:
    """Whether a header-only file withdraws a period of the feed (replace feeds sent as delimited text)."""
    return spec.on_resubmit == "replace" and spec.format_type == "delimited" and bool(spec.format.get("header", True))


def withdraw(principal: Principal, *, feed: str, period: str) -> Landed:
    """Withdraw one period of a feed whose files replace each other: land, in the caller's own
    prefix, a file holding the feed's header line and no records. Intake's rule for such a file
    (``period_withdrawn``) then replaces every record of the period with nothing on the next run,
    and the receipt says so; the earlier files keep their ledger rows and receipts, marked replaced.
    Only delimited feeds with a header can be withdrawn this way (others: UploadProblem 422)."""
    import io
    from datetime import UTC, datetime

    from jobs.ingest.specs import load_specs

    spec = load_specs().get(feed)
    submitter = principal.organisation.submitter or ""
    if spec is not None and spec.accepts_submitter(submitter) and not withdrawable(spec):
        raise UploadProblem(422, "feed", f"a period of feed {feed!r} cannot be withdrawn from the portal (only "
                            "feeds whose files replace each other, sent as delimited text with a header)",
                            "ask the hub's operators to remove the period")
    columns: list[str] = []
    for f in spec.fields if spec is not None else ():
        columns += [c for c in f.sources if c not in columns]
    delimiter = str(spec.format.get("delimiter", ",")) if spec is not None else ","
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    body = (delimiter.join(columns) + "\n").encode()
    return land(principal, feed=feed, period=period, filename=f"withdraw_{feed}_{period}_{stamp}.csv",
                fileobj=io.BytesIO(body))
