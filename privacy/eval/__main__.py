"""``python -m privacy.eval [--set FILE] [--json OUT] [--show-misses]``: score the scrubber.

Prints recall and precision per entity type and exits 1 when a direct identifier misses the
recall target (so it can gate CI). Miss listings show sentence ids and labels only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from privacy.eval.metrics import DEFAULT_SET, DIRECT_IDENTIFIERS, RECALL_TARGET, evaluate


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m privacy.eval", description="Score the free-text scrubber.")
    ap.add_argument("--set", type=Path, default=DEFAULT_SET, help="labelled JSONL (default: the committed set)")
    ap.add_argument("--json", type=Path, help="also write the report as JSON here")
    ap.add_argument("--show-misses", action="store_true", help="list missed gold spans (with their text)")
    args = ap.parse_args(argv)
    console = Console()
    rep, records, preds = evaluate(args.set)
    table = Table(title=f"Scrubber on {args.set.name}: {rep.sentences} sentences")
    for col in ("entity", "gold", "recall", "typed recall", "detected", "precision", "typed precision"):
        table.add_column(col, justify="right" if col != "entity" else "left")
    for lab, c in sorted(rep.by_label.items()):
        mark = " *" if lab in DIRECT_IDENTIFIERS else ""
        table.add_row(lab + mark, str(c.gold), _fmt(c.recall), _fmt(c.typed_recall), str(c.predicted),
                      _fmt(c.precision), _fmt(c.typed_precision))
    console.print(table)
    for src, c in sorted(rep.person_by_source.items()):
        console.print(f"PERSON names {src}: {c.gold} gold, recall {_fmt(c.recall)}")
    console.print(f"* direct identifiers; recall target {RECALL_TARGET} (leak-free: every letter/digit redacted)")
    if args.show_misses:
        by_id = {r["id"]: r for r in records}
        for m in rep.misses:
            console.print(f"miss {m['id']} {m['label']}: {by_id[m['id']]['text']}", markup=False)
    if args.json:
        args.json.write_text(json.dumps(rep.as_dict(), indent=2))
    failed = [lab for lab, ok in rep.recall_ok().items() if not ok]
    if failed:
        console.print(f"[red]below target: {', '.join(failed)}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
