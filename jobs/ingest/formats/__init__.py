"""Parsers, one module per submitted format, all yielding the same :class:`Chunk` shape.

A parser module exposes ``parse(data: bytes, spec: FeedSpec, *, file_name: str,
chunk_rows: int) -> Iterator[Chunk]`` and raises :class:`FileRejected` for a file it cannot
read at all. Parsers are looked up by the spec's ``format.type`` (the module of that name).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from jobs.ingest.formats.base import Chunk, FileRejected, RecordIssue

if TYPE_CHECKING:
    from phmx.feedspec import FeedSpec

Parser = Callable[..., Iterator[Chunk]]

__all__ = ["Chunk", "FileRejected", "RecordIssue", "get_parser"]


def get_parser(spec: FeedSpec) -> Parser:
    """The ``parse`` function for the spec's format type."""
    module = importlib.import_module(f"jobs.ingest.formats.{spec.format_type}")
    return module.parse
