"""The settings model is the one reader of the environment and its documentation stays in step.

- phmx/settings.py's table and docs/operator-guide.md section 6 equal ``settings.env_table()``,
  which is generated from the model's fields;
- no other module of the shipped packages reads a ``PHMX_*`` (or ``SPARK_REMOTE``,
  ``AIRFLOW_HOME``) variable from ``os.environ`` / ``os.getenv``;
- values parse into types, an unparseable one names its variable, empty means unset.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from phmx import settings
from phmx.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("phmx", "jobs", "consent", "privacy", "dags")


def test_module_docstring_table_is_the_generated_one():
    assert settings.env_table() in (settings.__doc__ or ""), \
        "paste the output of `python -m phmx.settings` into phmx/settings.py's docstring"


def test_operator_guide_table_is_the_generated_one():
    guide = (REPO / "docs" / "operator-guide.md").read_text()
    section = guide.split("## 6. Every setting", 1)[1].split("\n## ", 1)[0]
    assert settings.env_table() in section, \
        "paste the output of `python -m phmx.settings` into docs/operator-guide.md section 6"


def test_every_field_but_extra_has_a_variable_default_and_meaning():
    table = settings.env_table().splitlines()[2:]
    named = [f for f in settings.Settings.model_fields if f != "extra"]
    assert len(table) == len(named) >= 30
    for row in table:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0].startswith("`") and cells[1] not in ("", "None") and cells[2]


def _env_reads(source: str) -> list[tuple[int, str]]:
    """(line, variable) of each os.environ[...] / os.environ.get(...) / os.getenv(...) read of a
    constant variable name in ``source`` (writes such as ``os.environ[k] = v`` are not reads)."""
    tree = ast.parse(source)
    stores = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store)}
    out = []
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            f = node.func
            if f.attr == "get" and ast.unparse(f.value) == "os.environ" \
                    or f.attr == "getenv" and ast.unparse(f.value) == "os":
                name = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ" \
                and isinstance(node.ctx, ast.Load) and id(node.value) not in stores:
            name = node.slice
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            out.append((node.lineno, name.value))
    return out


def test_the_walk_finds_reads_and_skips_writes():
    code = 'import os\nos.environ["PHMX_W"] = "1"\nos.environ.get("PHMX_X")\nos.getenv("PHMX_Y")\nos.environ["PHMX_Z"]\n'
    assert _env_reads(code) == [(3, "PHMX_X"), (4, "PHMX_Y"), (5, "PHMX_Z")]


def test_no_module_but_settings_reads_a_phmx_variable():
    ours = {f.validation_alias for f in settings.Settings.model_fields.values() if isinstance(f.validation_alias, str)}
    found = []
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            if path == REPO / "phmx" / "settings.py":
                continue
            for line, var in _env_reads(path.read_text()):
                if var.startswith("PHMX_") or var in ours:
                    found.append(f"{path.relative_to(REPO)}:{line} reads {var}")
    assert not found, "read these through phmx.settings.load() instead:\n" + "\n".join(found)


def test_values_are_typed_and_derived(monkeypatch, tmp_path):
    monkeypatch.setenv("PHMX_HOME", str(tmp_path))
    monkeypatch.setenv("PHMX_CONSENT_RECIPIENTS", " lhj_alameda, ,mcp_x ")
    monkeypatch.setenv("PHMX_PUBLISH_WORKERS", "3")
    monkeypatch.setenv("PHMX_SHUFFLE_PARTITIONS", "")  # empty means unset
    monkeypatch.setenv("SPARK_REMOTE", "sc://127.0.0.1:15002")
    monkeypatch.delenv("PHMX_ENGINE", raising=False)
    monkeypatch.delenv("PHMX_LEDGER_ROOT", raising=False)
    monkeypatch.setenv("PHMX_KMS_KEY_ID", "arn:aws:kms:us-west-2:111122223333:key/example")
    monkeypatch.delenv("PHMX_LEDGER_KMS_KEY_ID", raising=False)
    cfg = settings.load()
    assert cfg.consent_recipients == ("lhj_alameda", "mcp_x")
    assert cfg.publish_workers == 3 and cfg.shuffle_partitions == 4
    assert cfg.engine == "connect"
    assert cfg.landing_root == str(tmp_path / "landing") and cfg.ledger_root == str(tmp_path / "lakehouse")
    assert cfg.ledger_kms_key_id == cfg.kms_key_id
    moved = cfg.with_home(tmp_path / "other")
    assert moved.publish_root == str(tmp_path / "other" / "publish") and moved.kms_key_id == cfg.kms_key_id
    monkeypatch.setenv("PHMX_PUBLISH_WORKERS", "4")
    assert settings.load().publish_workers == 4  # a changed variable is read again


def test_an_unparseable_value_names_its_variable(monkeypatch):
    monkeypatch.setenv("PHMX_TASK_RETRIES", "twice")
    with pytest.raises(ConfigError, match="PHMX_TASK_RETRIES must be a whole number"):
        settings.load()


def test_an_explicit_mapping_ignores_the_environment(monkeypatch):
    monkeypatch.setenv("PHMX_CONSENT_RECIPIENTS", "lhj_alameda")
    cfg = settings.load({"PHMX_EMR_VENV_ARCHIVE": "", "PHMX_EMR_CODE_URI": "s3://art/jobs/"})
    assert cfg.consent_recipients == () and cfg.emr_venv_archive == "" and cfg.emr_code_uri == "s3://art/jobs/"
