"""docs/operator-guide.md stays in step with the code: audience line, links, every PHMX_* setting."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "operator-guide.md"
CODE_DIRS = ("phmx", "jobs", "consent", "privacy", "dags")


def _settings_in_code() -> dict[str, str]:
    found: dict[str, str] = {}
    for d in CODE_DIRS:
        for path in sorted((REPO / d).rglob("*.py")):
            for name in re.findall(r"\b(PHMX_[A-Z][A-Z0-9_]*[A-Z0-9])\b", path.read_text(encoding="utf-8")):
                found.setdefault(name, str(path.relative_to(REPO)))
    return found


def test_guide_opens_with_title_and_audience_and_links_the_terraform_page():
    lines = GUIDE.read_text().splitlines()
    assert lines[0] == "# Operator guide"
    assert next(line for line in lines[1:] if line.strip()).startswith("Audience:")
    assert "(operator-guide-terraform.md)" in GUIDE.read_text()


def test_every_relative_link_resolves():
    text = GUIDE.read_text()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (GUIDE.parent / target).exists(), target


def test_every_phmx_setting_in_the_code_is_in_the_settings_table():
    text = GUIDE.read_text()
    table = text.split("## 6. Every setting", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(PHMX_[A-Z0-9_]+)`", table))
    missing = {name: where for name, where in _settings_in_code().items() if name not in documented}
    assert not missing, f"document these in docs/operator-guide.md section 6: {missing}"
    assert {"PHMX_RUNNER", "PHMX_EMR_CODE_URI", "PHMX_SPARK_CONN_ID", "PHMX_SHUFFLE_PARTITIONS"} <= documented
