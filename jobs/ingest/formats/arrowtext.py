"""Vectorised helpers for segment formats (X12, HL7): pick elements and first matches with Arrow.

Parsing a million member loops one segment at a time in Python is the slow way. These helpers
let the X12 and HL7 parsers split every segment of one type at once (``pc.split_pattern``),
read the n-th element of every segment (null where a segment is shorter), and pick, for each
record, the first segment that matches, all as array operations.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NULL = pa.scalar(None, pa.string())


def element(lists: pa.ListArray | pa.LargeListArray, k: int) -> pa.Array:
    """The k-th item (0-based) of every list, null where the list is shorter or null."""
    n = len(lists)
    if n == 0:
        return pa.array([], pa.string())
    offsets = np.asarray(lists.offsets)
    start, end = offsets[:-1], offsets[1:]
    pos = start + k
    ok = pos < end
    if lists.null_count:
        ok &= np.asarray(lists.is_valid())
    flat = lists.values
    idx = pa.array(np.where(ok, pos, 0), type=pa.int64(), mask=~ok)
    if len(flat) == 0:
        return pa.nulls(n, pa.string())
    out = flat.take(idx)
    return out.cast(pa.string()) if out.type != pa.string() else out


def split(values: pa.Array, sep: str) -> pa.Array:
    """Split strings on a literal separator (null stays null)."""
    return pc.split_pattern(values, pattern=sep)


def blank_to_null(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Empty strings become null (missing). Builds the validity bitmap directly: ``if_else`` with a
    null scalar copies every value and was the slowest step of reading a delimited file."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    keep = pc.fill_null(pc.greater(pc.binary_length(arr), 0), False)
    if keep.true_count == len(arr):
        return arr
    if arr.offset or keep.offset or not pa.types.is_string(arr.type):
        return pc.if_else(keep, arr, pa.scalar(None, arr.type))
    return pa.Array.from_buffers(arr.type, len(arr), [keep.buffers()[1], arr.buffers()[1], arr.buffers()[2]])


def trim(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Strip leading and trailing whitespace (Unicode-aware; the ASCII kernel when the text is ASCII)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pc.all(pc.string_is_ascii(arr)).as_py() is not False:
        return pc.ascii_trim_whitespace(arr)
    return pc.utf8_trim_whitespace(arr)


def first_per_group(groups: np.ndarray, n_groups: int, values: pa.Array) -> pa.Array:
    """For each group 0..n_groups-1 the value at its first position in ``groups`` (null if none).

    ``groups`` holds a group id per candidate (-1 = no group), in file order.
    """
    if n_groups == 0:
        return pa.array([], pa.string())
    ok = groups >= 0
    cand = np.flatnonzero(ok)
    if not len(cand):
        return pa.nulls(n_groups, pa.string())
    uniq, first = np.unique(groups[cand], return_index=True)
    pick = np.full(n_groups, 0, dtype=np.int64)
    has = np.zeros(n_groups, dtype=bool)
    pick[uniq] = cand[first]
    has[uniq] = True
    out = values.take(pa.array(pick, mask=~has))
    return out.cast(pa.string()) if out.type != pa.string() else out


def group_of(positions: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The group (index into starts) each position falls in, with [start, end) ranges; -1 if none.

    ``starts`` is sorted and the ranges do not overlap.
    """
    if not len(starts):
        return np.full(len(positions), -1, dtype=np.int64)
    g = np.searchsorted(starts, positions, side="right") - 1
    ok = g >= 0
    ok[ok] = positions[ok] < ends[g[ok]]
    return np.where(ok, g, -1)


def _from_offsets(data: bytes, starts: np.ndarray, end: int) -> pa.Array:
    """A string array whose i-th value is ``data[starts[i]:starts[i+1]]`` (the last up to ``end``), zero-copy."""
    offsets = np.concatenate((starts, [end])).astype(np.int64)
    arr = pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(data))
    return arr.cast(pa.string()) if end < 2**31 - 1 else arr


def physical_lines(data: bytes) -> pa.Array:
    """Every physical line of UTF-8 ``data`` (CRLF, LF or a lone CR ends a line), no empty last line.

    Line breaks are located with numpy on the bytes and the lines are views into them: one Arrow
    array and no Python string per line (the same lines as ``lines.split_lines`` on the text).
    """
    b = np.frombuffer(data, dtype=np.uint8)
    lf = np.flatnonzero(b == 10)
    cr = np.flatnonzero(b == 13)
    if len(cr):
        nxt = cr + 1
        lone = cr[(nxt >= len(b)) | (b[np.minimum(nxt, len(b) - 1)] != 10)]
        breaks = np.sort(np.concatenate((lf, lone)))
    else:
        breaks = lf
    starts = np.concatenate(([0], breaks + 1))
    if starts[-1] == len(b):  # ends with a line break: no empty last line
        starts = starts[:-1]
    return pc.utf8_rtrim(_from_offsets(data, starts, len(b)), characters="\r\n")


def split_segments(data: bytes, terminator: str) -> pa.Array:
    """X12 segments of UTF-8 ``data``: split at each terminator, surrounding line breaks removed, empties kept."""
    t = terminator.encode("utf-8")
    b = np.frombuffer(data, dtype=np.uint8)
    ends: np.ndarray
    if len(t) == 1:
        ends = np.flatnonzero(b == t[0])
    else:  # a multi-byte terminator: find it the slow way (never seen in practice)
        found: list[int] = []
        i = data.find(t)
        while i >= 0:
            found.append(i + len(t) - 1)
            i = data.find(t, i + len(t))
        ends = np.array(found, dtype=np.int64)
    starts = np.concatenate(([0], ends + 1))
    arr = _from_offsets(data, starts, len(b))
    return pc.utf8_trim(arr, characters=terminator + "\r\n")
