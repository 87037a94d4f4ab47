"""``phmx privacy ...``: scrub free text, check an output, audit a feed, rotate keys.

Wired into ``phmx/cli.py`` by the integrator through :func:`register`. Handlers return an exit
code; user errors raise phmx.errors types (printed, with their exit code, by phmx.cli).

* ``phmx privacy scrub [FILE] [--spans]``: text lines in (stdin when no FILE), each line out
  with identifiers replaced by placeholders such as ``<PERSON>``; ``--spans`` writes one JSON
  line per input line with the detected spans instead.
* ``phmx privacy check FILE [--code-columns C,...] [--no-names] [--json]``: the Safe Harbor
  checker on a CSV or Parquet file; exits 70 when it finds identifiers.
* ``phmx privacy attack FILE [--spec YAML] [--geography-total NAME] [--json]``: the LP attacker
  audit on a published measures.csv (the calendar's roll-ups, year = quarters = months, are
  assumed known unless the spec names its own); exits 70 when a suppressed cell can be bounded.
* ``phmx privacy keys rotate [--rewrap]`` / ``phmx privacy keys status``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

from phmx.errors import ConfigError, PrivacyError


def register(subparsers: Any) -> None:
    """Add the ``privacy`` command and its subcommands to an argparse subparsers object."""
    p = subparsers.add_parser("privacy", help="de-identification tools: scrub, check, attack, keys",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="privacy_command", required=True)

    s = sub.add_parser("scrub", help="replace identifiers in text lines with placeholders")
    s.add_argument("file", nargs="?", help="text file (default: stdin)")
    s.add_argument("--spans", action="store_true", help="write detected spans as JSON lines instead")
    s.add_argument("--batch-size", type=int, default=256, help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_scrub)

    c = sub.add_parser("check", help="Safe Harbor checker on a CSV or Parquet output")
    c.add_argument("file")
    c.add_argument("--code-columns", default="", help="comma-separated columns of standard codes (CPT, NDC...)")
    c.add_argument("--no-names", action="store_true", help="skip the given-name scan")
    c.add_argument("--json", action="store_true", help="findings as JSON")
    c.set_defaults(func=cmd_check)

    a = sub.add_parser("attack", help="LP attacker audit of a published measures feed")
    a.add_argument("file", help="measures.csv (or .parquet) as published")
    a.add_argument("--spec", help="suppression spec YAML (geography total, roll-ups)")
    a.add_argument("--geography-total", help="lhj value whose rows sum the other LHJs (e.g. California)")
    a.add_argument("--strict", action="store_true", help="no exception for cells provably >= 11")
    a.add_argument("--json", action="store_true", help="report as JSON")
    a.set_defaults(func=cmd_attack)

    k = sub.add_parser("keys", help="key management")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kr = ksub.add_parser("rotate", help="add a master key version (old versions keep working)")
    kr.add_argument("--rewrap", action="store_true", help="also re-wrap every table's data keys under it")
    kr.set_defaults(func=cmd_keys_rotate)
    ks = ksub.add_parser("status", help="provider, versions and data-key tables (never key material)")
    ks.set_defaults(func=cmd_keys_status)


def _console(stream: IO[str] | None = None) -> Any:
    from rich.console import Console

    return Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)


def _lines(path: str | None) -> list[str]:
    if path:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"file not found: {path}")
        return p.read_text(encoding="utf-8").splitlines()
    return sys.stdin.read().splitlines()


def cmd_scrub(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    from privacy.scrub import analyze_texts, replace_spans

    stream = out or sys.stdout
    lines = _lines(args.file)
    for i in range(0, len(lines), max(1, args.batch_size)):
        chunk = lines[i:i + args.batch_size]
        spans = analyze_texts(chunk)
        for text, found in zip(chunk, spans, strict=True):
            if args.spans:
                stream.write(json.dumps({"spans": [s.as_dict() for s in found]}) + "\n")
            else:
                stream.write(replace_spans(text, found) + "\n")
    stream.flush()
    return 0


def cmd_check(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    from privacy.checker import check_safe_harbor, read_table

    if not Path(args.file).exists():
        raise ConfigError(f"file not found: {args.file}")
    frame = read_table(args.file)
    codes = [c.strip() for c in args.code_columns.split(",") if c.strip()]
    findings = check_safe_harbor(frame, code_columns=codes, names=not args.no_names)
    console = _console(out)
    errors = [f for f in findings if f.severity == "error"]
    if args.json:
        console.print_json(json.dumps({"file": Path(args.file).name, "rows": len(frame),
                                       "findings": [f.as_dict() for f in findings]}))
    else:
        for f in findings:
            console.print(str(f), markup=False)
        console.print(f"{Path(args.file).name}: {len(frame)} rows, {len(errors)} identifier finding(s)",
                      markup=False)
    if errors:
        raise PrivacyError(f"{Path(args.file).name} failed the Safe Harbor check ({len(errors)} finding(s))",
                           hint="see the findings above; fix the output's de-identification policy")
    return 0


def _read_feed(path: str) -> Any:
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"file not found: {path}")
    if p.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(p)
    return pd.read_csv(p, dtype={"lhj": str, "measure_id": str, "period": str, "stratifier": str,
                                 "stratum": str}, keep_default_na=False, na_values=[""])


def cmd_attack(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    import yaml

    from privacy.attack import audit
    from privacy.suppression import SuppressionSpec, with_calendar

    spec = None
    if args.spec:
        spec = SuppressionSpec.from_dict(yaml.safe_load(Path(args.spec).read_text()) or {})
    if args.geography_total:
        spec = spec or SuppressionSpec()
        spec.geography_total = args.geography_total
    table = _read_feed(args.file)
    spec = with_calendar(table, spec)
    report = audit(table, spec, strict=args.strict)
    console = _console(out)
    if args.json:
        console.print_json(json.dumps({**report.summary(), "failure_cells": report.failures[:100],
                                       "derived_leak_cells": report.derived_leaks[:100]}, default=str))
    else:
        s = report.summary()
        console.print(f"{Path(args.file).name}: {s['suppressed_cells']} suppressed cell(s) in "
                      f"{s['components']} linked group(s); {s['failures']} boundable, "
                      f"{s['derived_leaks']} derived leak(s), {s['infeasible_components']} inconsistent",
                      markup=False)
        for f in report.failures[:20]:
            console.print(f"  {f['lhj']} / {f['measure_id']} / {f['period']} / {f['stratifier']}={f['stratum']} "
                          f"{f['column']}: attacker interval [{f['low']:.1f}, {f['high']:.1f}]", markup=False)
    report.raise_if_failed(Path(args.file).name)
    return 0


def cmd_keys_rotate(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    from privacy.crypto import rewrap_data_keys
    from privacy.keys import get_provider

    provider = get_provider()
    if not hasattr(provider, "rotate"):
        raise ConfigError(f"key provider {provider.name} does not support rotation")
    version = provider.rotate()
    console = _console(out)
    console.print(f"{provider.name} master key rotated: current version {version}", markup=False)
    if args.rewrap:
        n = rewrap_data_keys(provider)
        console.print(f"re-wrapped {n} data key(s) under version {version}", markup=False)
    return 0


def cmd_keys_status(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    from phmx import storage
    from privacy.crypto import _keys_root
    from privacy.keys import get_provider

    provider = get_provider()
    console = _console(out)
    console.print(f"provider: {provider.name}", markup=False)
    console.print(f"master key versions: {', '.join(map(str, provider.versions()))} "
                  f"(current {provider.current_version()})", markup=False)
    root = storage.join(_keys_root(provider), "datakeys")
    tables: dict[str, int] = {}
    for f in storage.list_files(root):
        if "/" in f.relpath:
            t = f.relpath.split("/", 1)[0]
            tables[t] = tables.get(t, 0) + 1
    for t, n in sorted(tables.items()):
        console.print(f"data keys: {t}: {n}", markup=False)
    return 0
