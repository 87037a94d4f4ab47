"""Generated docs stay in step with the code."""

from pathlib import Path

from phmx.tables import markdown

REPO = Path(__file__).resolve().parents[2]


def test_tables_doc_is_current():
    assert (REPO / "docs" / "tables.md").read_text() == markdown() + "\n", "run: python -m phmx.tables > docs/tables.md"


def test_readme_opens_with_the_two_commands():
    head = (REPO / "README.md").read_text().split("\n## ")[0]
    assert "make demo" in head and "make test" in head
