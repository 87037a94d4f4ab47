"""Every third-party module the shipped packages import is declared in pyproject.toml.

An import that works only because some other dependency happens to pull its distribution in
breaks the day that dependency drops it. The walk is static (ast), so it sees imports inside
functions and ``TYPE_CHECKING`` blocks too; import names map to distributions through
``importlib.metadata.packages_distributions``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("phmx", "jobs", "consent", "privacy", "dags")
FIRST_PARTY = {*PACKAGES, "mappings"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = set()
    for req in project["dependencies"]:
        names.add(_normalise(re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]))
    return names


def _imports(path: Path) -> set[str]:
    """Top-level module names ``path`` imports (absolute imports only)."""
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _third_party_imports() -> dict[str, list[str]]:
    """import name -> the files importing it, for every module neither stdlib nor ours."""
    found: dict[str, list[str]] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for mod in _imports(path):
                if mod in sys.stdlib_module_names or mod in FIRST_PARTY or mod == "__future__":
                    continue
                found.setdefault(mod, []).append(str(path.relative_to(ROOT)))
    return found


def test_the_walk_sees_known_imports() -> None:
    found = _third_party_imports()
    # A walk that saw nothing would pass vacuously: these are imported today.
    assert {"pyarrow", "yaml", "pydantic", "highspy"} <= set(found)


def test_every_third_party_import_is_declared() -> None:
    declared = _declared()
    dists = importlib.metadata.packages_distributions()
    problems = []
    for mod, files in sorted(_third_party_imports().items()):
        owners = {_normalise(d) for d in dists.get(mod, [])}
        if not owners:
            problems.append(f"{mod} (imported by {files[0]}) is not installed: add its distribution to "
                            "pyproject.toml [project].dependencies and constraints.txt")
        elif not owners & declared:
            problems.append(f"{mod} (imported by {files[0]}) comes from {', '.join(sorted(owners))}, which "
                            "pyproject.toml [project].dependencies does not declare: add it (pinned in "
                            "constraints.txt)")
    assert not problems, "\n".join(problems)
