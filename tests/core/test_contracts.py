"""The contracts registry (phmx/tables.py): one definition per table, everything else derived from it."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from phmx import lakehouse, tables

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = ("phmx", "jobs", "consent", "privacy", "dags")


def _types(t: tables.Table) -> set[str]:
    return {ty for _, ty in t.columns}


def _covering() -> list[tables.Table]:
    """A few contracts that between them use every column type of the registry."""
    wanted = set().union(*(_types(t) for t in tables.ALL))
    picked: list[tables.Table] = []
    while wanted:
        best = max(tables.ALL, key=lambda t: len(_types(t) & wanted))
        picked.append(best)
        wanted -= _types(best)
    return picked


def test_every_contract_has_an_arrow_schema_with_its_columns_in_order():
    for t in tables.ALL:
        schema = t.arrow_schema
        assert schema.names == t.column_names, t.fqn
    assert tables.FEED_LOG.arrow_schema.field("published_at").type == pa.timestamp("us", tz="UTC")
    assert tables.MEASURE_EVENT.arrow_schema.field("security_labels").type == pa.list_(pa.string())
    assert tables.FEED_LOG.arrow_schema.field("version").type == pa.int32()


def test_a_contract_with_an_unknown_type_is_refused_naming_table_and_column():
    with pytest.raises(ValueError, match=r"gold\.x\.amount: unsupported column type 'decimal\(10,2\)'"):
        tables._t("gold", "x", "id string, amount decimal(10;2)")


def test_the_arrow_schema_is_what_the_engine_writes(spark, phmx_home):
    """The engine writes each contract's DDL; delta-rs reads back exactly the derived Arrow schema, so
    a delta-rs writer (feed log, ledger) and an engine writer produce the same table."""
    picked = _covering()
    assert {ty for t in picked for ty in _types(t)} == set().union(*(_types(t) for t in tables.ALL))
    from deltalake import DeltaTable

    for t in picked:
        lakehouse.overwrite(spark.createDataFrame([], t.ddl), t)
        stored = pa.schema(DeltaTable(lakehouse.table_path(t)).schema().to_arrow())
        assert [(f.name, f.type) for f in stored] == [(f.name, f.type) for f in t.arrow_schema], t.fqn


def test_every_table_production_code_names_is_in_the_registry():
    """A literal ``silver.x`` / ``gold.x`` / ``audit.x`` in production code must be a contract here."""
    known = {t.fqn for t in tables.ALL}
    pattern = re.compile(r"[\"'`]((?:silver|gold|audit)\.[a-z_]+)[\"'`]")
    unknown = []
    for package in PRODUCTION:
        for path in sorted((REPO / package).rglob("*.py")):
            for m in pattern.finditer(path.read_text()):
                if m.group(1) not in known:
                    unknown.append(f"{path.relative_to(REPO)}: {m.group(1)}")
    assert not unknown, unknown


def test_contracts_are_defined_only_in_the_registry():
    """No module but phmx/tables.py builds a table contract."""
    offenders = []
    for package in PRODUCTION:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == REPO / "phmx" / "tables.py":
                continue
            text = path.read_text()
            if re.search(r"\bTable\(\s*[\"'](bronze|silver|gold|audit|work)[\"']", text) or "tables._t(" in text:
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders, offenders
