"""Names a package re-exports from its submodules, imported on first use rather than with the package.

Why: a stage package's ``__init__`` re-exports its entry points, and importing any submodule runs
that ``__init__`` first. Where a package's worker processes (spawned, so each imports afresh) need
only a light submodule, eager re-exports would make each of them import the whole stage too
(:mod:`jobs.publish`: the engine client and the indicator statistics, about 1.8 CPU seconds per
worker). The package then declares ``__getattr__ = lazy.exports(__name__, {name: module, ...})``
(PEP 562): its ``__init__`` stays a declaration, as every stage package's is.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``where[name]`` and returns its ``name`` on first use."""
    table = dict(where)

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook's own name
        if name in table:
            return getattr(importlib.import_module(table[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
