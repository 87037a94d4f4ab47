"""``phmx synth``: write the synthetic submitters' files for one shared population."""

from __future__ import annotations

import argparse
import json

from phmx import storage
from phmx.errors import ConfigError

DEFAULT_COUNTIES = "06001,06013,06075"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` subcommand to the phmx CLI."""
    p = subparsers.add_parser(
        "synth",
        help="generate synthetic submitter files (plans, county BH, dental, CAIR2) with ground truth",
        description="Write landing/<submitter>/<feed>/<YYYY-MM>/ files and ground_truth/ for one synthetic "
                    "population. Same seed and arguments give byte-identical files.",
    )
    p.add_argument("--members", type=int, required=True, help="number of people in the population")
    p.add_argument("--counties", default=DEFAULT_COUNTIES, help="comma-separated CA county FIPS codes")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, help="output root: a local directory or s3://bucket/prefix")
    p.add_argument("--start", default="2025-01", help="first month, YYYY-MM")
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--formats", default="", help="extra formats, comma-separated (e.g. x12_834,hl7_vxu)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (output is identical for any value)")
    p.add_argument("--chunk-size", type=int, default=None, help="people per chunk (changes the output)")
    p.add_argument("--ecm-share", type=float, default=0.0,
                   help="share of plan members with a CIN authorized for ECM (e.g. 0.05); 0 writes no ECM files")
    p.add_argument("--ecm-providers", type=int, default=4, help="number of synthetic ECM providers")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from phmx.synth.config import SynthConfig
    from phmx.synth.generator import generate

    if args.workers < 1:
        raise ConfigError("synth: --workers must be at least 1")
    cfg = SynthConfig() if args.chunk_size is None else SynthConfig(chunk_size=args.chunk_size)
    if cfg.chunk_size < 1:
        raise ConfigError("synth: --chunk-size must be at least 1")
    formats = {f.strip() for f in args.formats.split(",") if f.strip()}
    summary = generate(args.out, members=args.members, counties=args.counties.split(","), seed=args.seed,
                       start=args.start, months=args.months, formats=formats, config=cfg, workers=args.workers)
    if args.ecm_share > 0:
        if storage.is_s3(args.out):
            raise ConfigError("synth: --ecm-share writes beside a local output only", hint="use a local --out")
        from phmx.synth.ecm_submitters import generate_ecm

        for rel, n in generate_ecm(args.out, seed=args.seed, share=args.ecm_share,
                                   providers=args.ecm_providers).items():
            summary.files[rel] = n
            if rel.startswith("landing/"):
                feed = rel.split("/")[2]
                summary.rows_by_feed[feed] = summary.rows_by_feed.get(feed, 0) + n
    console = Console()
    if args.json:
        console.print_json(json.dumps(summary.to_dict()))
        return 0
    table = Table(title=f"synth: {summary.people} people, {summary.seconds:.1f} s, seed {summary.seed}")
    table.add_column("feed")
    table.add_column("rows", justify="right")
    table.add_column("rows/s", justify="right")
    for feed, n in summary.rows_by_feed.items():
        table.add_row(feed, f"{n:,}", f"{n / max(summary.seconds, 1e-9):,.0f}")
    console.print(table)
    console.print(f"files: {len(summary.files)} under {summary.out_dir}")
    return 0
