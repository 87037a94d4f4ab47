"""Loading feed specs for intake: the generic checks of ``phmx.feedspec`` plus each format's own.

``phmx.feedspec`` validates what every spec has (fields, types, rules, value sets). The format
parsers know their own source grammar (fixed-width positions, X12 segment paths, HL7 field
paths, FHIR element paths), so each exposes ``check_spec(spec) -> list[(key, problem)]`` and
this module runs them when specs are loaded, before any file is read, naming the file and key.
It also checks that a format variant sends only columns of the base feed it shares a bronze
table with (``enrollment_834`` -> ``enrollment``), so the conform stage serves it unchanged.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from phmx.errors import SpecError
from phmx.feedspec import FeedSpec, all_specs


def check_format(spec: FeedSpec) -> list[tuple[str, str]]:
    """Problems the spec's format parser finds in it (empty when the spec is sound)."""
    module = importlib.import_module(f"jobs.ingest.formats.{spec.format_type}")
    check = getattr(module, "check_spec", None)
    return list(check(spec)) if check else []


def check_how_to_fix(spec: FeedSpec) -> list[tuple[str, str]]:
    """``how_to_fix`` keys must be rule ids (the catalogue's or the spec's own), so a typo is caught."""
    from jobs.ingest.rules import RULES

    known = set(RULES) | {r.id for r in spec.rules}
    return [(f"how_to_fix.{k}", "not a rule id") for k in spec.how_to_fix if k not in known]


def check_variants(specs: dict[str, FeedSpec]) -> list[tuple[FeedSpec, str, str]]:
    """A spec writing another feed's bronze table may only use that feed's field names."""
    problems = []
    for spec in specs.values():
        base_name = spec.variant_of
        if base_name is None:
            continue
        base = specs.get(base_name)
        if base is None:
            if any(s.bronze_table == base_name and s.feed == base_name for s in specs.values()):
                continue
            problems.append((spec, "bronze_table", f"no base feed named {base_name!r} (a variant shares the base "
                             "feed's bronze table)"))
            continue
        extra = [n for n in spec.field_names if n not in set(base.field_names)]
        if extra:
            problems.append((spec, "fields", f"not columns of bronze.{base_name}: {', '.join(extra)}"))
        if spec.sensitivity != base.sensitivity:
            problems.append((spec, "sensitivity", f"must equal the base feed's ({base.sensitivity})"))
        if spec.targets:
            problems.append((spec, "targets", f"a variant has no targets; bronze.{base_name} is conformed by "
                             f"{Path(base.path).name}"))
    return problems


def load_specs(feeds_dir: Path | None = None) -> dict[str, FeedSpec]:
    """Every feed spec, fully checked (generic, per format, variants); raises SpecError naming the file."""
    specs = all_specs(feeds_dir)
    return _checked(tuple(sorted((k, v.path) for k, v in specs.items())), specs)


_cache: dict[tuple[tuple[str, str], ...], dict[str, FeedSpec]] = {}


def _checked(key: tuple[tuple[str, str], ...], specs: dict[str, FeedSpec]) -> dict[str, FeedSpec]:
    if key in _cache and all(_cache[key][k] is v for k, v in specs.items()):
        return _cache[key]
    for spec in specs.values():
        for k, problem in check_format(spec) + check_how_to_fix(spec):
            raise SpecError(f"{Path(spec.path).name}: {k}: {problem}", hint=f"edit {spec.path}")
    for spec, k, problem in check_variants(specs):
        raise SpecError(f"{Path(spec.path).name}: {k}: {problem}", hint=f"edit {spec.path}")
    _cache[key] = specs
    return specs


