"""YAML specs as pydantic models: read a file, validate it, and name the file and key on error.

Every spec phmx loads (measures, de-identification policies, disclosure policies) is a tree of
:class:`Spec` models that refuse unknown keys, so a misspelt key is an error rather than a
silently ignored setting. :func:`validate` turns pydantic's errors into the project's error type
with one line per problem, ``<file>: <dotted.key>: <what is wrong>``, the shape the specs' own
rules use too (a validator raises ``ValueError("what is wrong")`` and the key is added here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from phmx.errors import ConfigError, PhmxError

M = TypeVar("M", bound=BaseModel)


class Spec(BaseModel):
    """A node of a YAML spec: unknown keys are refused; a loaded spec is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def read_yaml(path: str | Path, *, label: str | None = None, error: type[PhmxError] = ConfigError) -> Any:  # noqa: ANN401
    """The parsed YAML of ``path``; a missing or malformed file is ``error`` naming ``label``."""
    p = Path(path)
    name = label or str(p)
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{name}: file not found in {p.parent}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{name}: not valid YAML ({type(exc).__name__})") from exc


def _key(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _problem(err: Any) -> str:  # noqa: ANN401 - one pydantic ErrorDetails
    """``<dotted.key>: <message>`` for one pydantic error, in the words our own rules use."""
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "missing" and loc:
        where, what = _key(loc[:-1]), f"needs a '{loc[-1]}'"
    elif kind == "extra_forbidden" and loc:
        where, what = _key(loc[:-1]), f"unknown key '{loc[-1]}'"
    elif kind == "union_tag_invalid":  # a discriminated union: the tag names a kind we lack
        ctx = err["ctx"]
        where = _key(loc)
        what = f"unknown {ctx['discriminator'].strip(chr(39))} {ctx['tag']!r} (one of {ctx['expected_tags']})"
    elif kind == "union_tag_not_found":
        where, what = _key(loc), f"give {err['ctx']['discriminator']}"
    elif kind in ("value_error", "assertion_error") and "error" in err.get("ctx", {}):
        where, what = _key(loc), str(err["ctx"]["error"])
    else:
        where, what = _key(loc), str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {what}" if where else what


def validate(model: type[M], doc: Any, label: str, *, error: type[PhmxError] = ConfigError,  # noqa: ANN401
             context: dict[str, Any] | None = None, hint: str | None = None) -> M:
    """``model`` validated from ``doc``; every problem is one line ``<label>: <key>: <message>``."""
    if not isinstance(doc, dict):
        raise error(f"{label}: expected a mapping at the top level", hint=hint)
    try:
        return model.model_validate(doc, context=context)
    except ValidationError as exc:
        lines = [f"{label}: {_problem(e)}" for e in exc.errors()]
        raise error("\n".join(lines), hint=hint) from None
