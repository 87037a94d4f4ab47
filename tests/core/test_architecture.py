"""The package table at the top of docs/ARCHITECTURE.md holds: imports, stage layout, module names."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("phmx", "jobs", "consent", "privacy", "dags")


def _table() -> dict[str, set[str]]:
    """package -> what it may import, from the doc's first table (the names of one row may import
    each other)."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    section = text.split("## Packages: what each owns and what it may import", 1)[1].split("\n## ", 1)[0]
    out: dict[str, set[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([a-z_.]+)`", cells[0])
        allowed = set(re.findall(r"`([a-z_.]+)`", cells[2])) | set(names)
        for name in names:
            out[name] = allowed
    return out


def _unit(module: str, table: dict[str, set[str]]) -> str:
    """The table row a module belongs to: its longest listed prefix."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in table:
            return name
    raise AssertionError(f"{module} belongs to no row of the package table")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in FIRST_PARTY}


def test_every_package_imports_only_what_the_table_allows():
    table = _table()
    assert {"phmx", "jobs.publish", "consent", "privacy", "dags"} <= set(table)
    bad: dict[str, set[str]] = defaultdict(set)
    for top in FIRST_PARTY:
        for path in sorted((REPO / top).rglob("*.py")):
            module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            mine = _unit(module, table)
            for imported in _imports(path):
                target = _unit(imported, table) if imported.split(".")[0] in FIRST_PARTY else imported
                if target in (mine, *table[mine]) or target.split(".")[0] == mine.split(".")[0] == "jobs" and \
                        target == "jobs":
                    continue
                # a package may import its own submodules however they are listed
                if target.startswith(mine + ".") or mine.startswith(target + "."):
                    continue
                bad[str(path.relative_to(REPO))].add(imported)
    assert not bad, dict(bad)


def test_every_stage_package_is_laid_out_the_same_way():
    from jobs import STAGE_PACKAGES

    for stage, package in STAGE_PACKAGES.items():
        folder = REPO / Path(*package.split("."))
        assert (folder / "stage.py").is_file(), stage
        init = ast.parse((folder / "__init__.py").read_text())
        defs = [n for n in init.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        assert not defs, f"{package}/__init__.py holds code: {[d.name for d in defs]}"
        assert f'main("{stage}")' in (folder / "__main__.py").read_text(), stage


def test_no_top_level_package_is_shadowed_by_a_stage_package():
    stages = {p.name for p in (REPO / "jobs").iterdir() if (p / "__init__.py").is_file()}
    assert not stages & set(FIRST_PARTY), stages & set(FIRST_PARTY)


def test_no_two_modules_share_a_name_for_different_things():
    """Modules with the same name in different packages must be the same role (listed here)."""
    same_role = {"__init__", "__main__", "cli", "stage", "config",
                 # a reader under jobs/ingest/formats and the writer of the same format under phmx/synth/writers
                 "delimited", "fixed_width", "fhir_ndjson", "hl7_vxu", "x12_834"}
    seen: dict[str, list[str]] = defaultdict(list)
    for top in FIRST_PARTY:
        for path in (REPO / top).rglob("*.py"):
            seen[path.stem].append(str(path.relative_to(REPO)))
    twins = {name: paths for name, paths in seen.items() if len(paths) > 1 and name not in same_role}
    assert not twins, twins
