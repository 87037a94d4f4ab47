"""Format writers for synthetic submissions: one registry keyed by (feed, format).

Why a registry: each submitter sends its own formats (pipe-delimited enrollment, X12 834,
HL7 VXU, CSI fixed width, FHIR NDJSON). The generator produces rows once, as dicts with the
delimited field names of phmx.synth.layouts, and every format is a ``Writer`` over those rows.
Modules in this package are imported automatically (pkgutil), and each registers its writers
with ``register_writer``; adding a format needs no edit anywhere else.

A ``Writer`` takes an iterable of row dicts and a binary file object, writes one whole file
(header, envelope, trailer as the format needs) and returns the number of rows written.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from phmx.errors import ConfigError
from phmx.log import get_logger

Writer = Callable[[Iterable[dict[str, str]], BinaryIO], int]

log = get_logger(__name__)


@dataclass(frozen=True)
class WriterSpec:
    """A registered writer and where its files land: landing/<submitter>/<feed_name>/<period>/."""

    feed: str
    fmt: str
    writer: Writer
    file_suffix: str
    feed_name: str


WRITERS: dict[tuple[str, str], Writer] = {}
SPECS: dict[tuple[str, str], WriterSpec] = {}
_LOADED = False


def register_writer(feed: str, fmt: str, writer: Writer, *, file_suffix: str, feed_name: str) -> None:
    """Register ``writer`` for (feed, fmt). ``feed_name`` is the landing folder for this variant
    (e.g. enrollment_834); ``file_suffix`` the file extension including the dot (e.g. ".x12")."""
    from phmx.synth.layouts import LAYOUTS

    if feed not in LAYOUTS:
        raise ConfigError(f"register_writer: unknown feed {feed!r}", hint=f"one of {sorted(LAYOUTS)}")
    if not file_suffix.startswith("."):
        raise ConfigError(f"register_writer: file_suffix for {feed}/{fmt} must start with '.'")
    WRITERS[(feed, fmt)] = writer
    SPECS[(feed, fmt)] = WriterSpec(feed, fmt, writer, file_suffix, feed_name)


def load_writers() -> dict[tuple[str, str], WriterSpec]:
    """Import every module of this package once (sorted, so registration order is stable).

    A module that fails to import is logged and skipped, so one broken variant writer does not
    stop the delimited files; asking generate() for its format then fails with a clear error.
    """
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
            try:
                importlib.import_module(f"{__name__}.{info.name}")
            except Exception as exc:  # noqa: BLE001 - reported, the rest still load
                log.warning("synth writer module %s failed to load: %s", info.name, type(exc).__name__)
    return SPECS


def formats_available() -> dict[str, list[str]]:
    """Formats registered per feed (after loading every writer module)."""
    out: dict[str, list[str]] = {}
    for feed, fmt in sorted(load_writers()):
        out.setdefault(feed, []).append(fmt)
    return out
