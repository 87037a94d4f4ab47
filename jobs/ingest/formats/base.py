"""The shape every parser yields, and the file-level rejection every parser may raise."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


class FileRejected(Exception):  # noqa: N818 - a verdict, not a bug
    """The file cannot be read at all (empty, binary, wrong delimiter, no header, bad envelope).

    ``records`` is every record the parser could still count (for conservation), with its raw
    text when known, so each is quarantined under this rule.
    """

    def __init__(self, rule_id: str, message: str, *, records: Sequence[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.rule_id = rule_id
        self.message = message
        self.records: Sequence[tuple[int, str]] = records if records is not None else []


@dataclass(frozen=True)
class RecordIssue:
    """A record the parser could not turn into fields (it is quarantined, its neighbours go on).

    A parser reports at most one issue per record, so that counting issues counts records.
    ``locator`` optionally names the record in the submitter's terms (``message 12``).
    """

    row_number: int
    rule_id: str
    field: str
    message: str
    raw: str
    locator: str = ""


def indexed(get: Callable[[int], str], positions: Sequence[int] | np.ndarray) -> Callable[[int], str]:
    """``i -> get(positions[i])``: the raw-text lookup of a chunk that holds some of a file's records."""
    return lambda i: get(int(positions[i]))


class LazyRaw(Sequence[str]):
    """Raw record text looked up only when a record is quarantined.

    Building a million raw strings that are never used costs more than parsing the file, so
    parsers hand over a function from chunk index to raw text instead.
    """

    def __init__(self, n: int, get: Callable[[int], str]) -> None:
        self._n = n
        self._get = get

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self._get(j) for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._get(i)


@dataclass
class Chunk:
    """Up to ``chunk_rows`` parsed records: field columns (strings or None), row numbers, raw text.

    ``columns`` maps each spec field to a list of strings/None or to an Arrow string array (the
    fast parsers hand over Arrow arrays directly). ``row_numbers[i]`` locates record i for the
    submitter and is unique within a file: the line number for delimited, fixed-width, HL7 and
    NDJSON files (line 1 is the header when there is one; for HL7 the line of the RXA segment),
    the segment position of the INS segment for X12 (ISA is segment 1).
    ``locators`` optionally names each record in the submitter's terms (``message 12``).
    """

    columns: dict[str, list[str | None] | pa.Array]
    row_numbers: Sequence[int] | np.ndarray
    raw: Sequence[str]
    issues: list[RecordIssue] = field(default_factory=list)
    # File-level warnings found while parsing (e.g. Latin-1 fallback), reported on the receipt.
    notes: list[str] = field(default_factory=list)
    locators: Sequence[str] | None = None

    def __len__(self) -> int:
        return len(self.row_numbers)
