"""The shape every parser yields, and the file-level rejection every parser may raise."""

from __future__ import annotations

from dataclasses import dataclass, field


class FileRejected(Exception):  # noqa: N818 - a verdict, not a bug
    """The file cannot be read at all (empty, binary, wrong delimiter, no header, bad envelope).

    ``records`` is how many records the parser could still count (for conservation), with
    their raw text when known, so each is quarantined under this rule.
    """

    def __init__(self, rule_id: str, message: str, *, records: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.rule_id = rule_id
        self.message = message
        self.records = records or []


@dataclass(frozen=True)
class RecordIssue:
    """A record the parser could not turn into fields (it is quarantined, its neighbours go on)."""

    row_number: int
    rule_id: str
    field: str
    message: str
    raw: str


@dataclass
class Chunk:
    """Up to ``chunk_rows`` parsed records: field columns (strings or None), row numbers, raw text.

    ``row_numbers[i]`` locates record i for the submitter: the line number for delimited and
    fixed-width files (line 1 is the header when there is one), the segment or message number
    for X12 and HL7, the line number for NDJSON.
    """

    columns: dict[str, list[str | None]]
    row_numbers: list[int]
    raw: list[str]
    issues: list[RecordIssue] = field(default_factory=list)
    # File-level warnings found while parsing (e.g. Latin-1 fallback), reported on the receipt.
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.row_numbers)
