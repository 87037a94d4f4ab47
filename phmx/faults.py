"""Fault injection at named commit boundaries, so crash-consistency tests kill a process at an exact
point instead of guessing with timers.

Code that commits something calls :func:`point` with a stable name just before and just after each
write (``ledger.append.after_members``, ``lakehouse.write.after:silver.person``, ...). In production
``PHMX_FAULT`` is unset and a point costs one settings look-up. A test runs the pipeline in a child
process with ``PHMX_FAULT`` set to::

    <pattern>[#<n>][=<action>]

``pattern`` is an ``fnmatch`` pattern over point names; ``n`` (default 1) picks the n-th time a
matching point is reached in that process; ``action`` is ``exit`` (default: ``os._exit(86)`` with
no clean-up at all, like ``kill -9``) or ``raise`` (:class:`FaultInjected`, to test error paths).
:data:`EXIT_CODE` lets the test tell the injected crash from any other failure.

Every point the code reaches is appended to the file named by ``PHMX_FAULT_TRACE`` when that is
set, so a test can first list the boundaries of a clean run and then crash at each one.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import threading

EXIT_CODE = 86
_hits: dict[str, int] = {}
_lock = threading.Lock()


class FaultInjected(RuntimeError):
    """Raised at a fault point whose action is ``raise`` (tests only)."""


def _spec() -> tuple[str, int, str] | None:
    from phmx import settings as settings_mod

    raw = settings_mod.load().fault
    if not raw:
        return None
    pattern, _, action = raw.partition("=")
    pattern, _, nth = pattern.partition("#")
    return pattern.strip(), int(nth or 1), (action.strip() or "exit")


def point(name: str) -> None:
    """A named commit boundary: crash here when ``PHMX_FAULT`` says so (see the module docstring)."""
    from phmx import settings as settings_mod

    trace = settings_mod.load().fault_trace
    if trace:
        with _lock, open(trace, "a", encoding="utf-8") as fh:
            fh.write(name + "\n")
    spec = _spec()
    if spec is None:
        return
    pattern, nth, action = spec
    if not fnmatch.fnmatchcase(name, pattern):
        return
    with _lock:
        _hits[pattern] = _hits.get(pattern, 0) + 1
        if _hits[pattern] != nth:
            return
    if action == "raise":
        raise FaultInjected(f"fault injected at {name}")
    sys.stderr.write(f"phmx: fault injected at {name}; exiting without clean-up\n")
    sys.stderr.flush()
    os._exit(EXIT_CODE)
