"""Every Terraform file parses, is formatted, and refers only to things that exist.

`terraform init/validate` cannot run here (no provider downloads), so these checks stand in for the
parts of validate that need no provider: declared variables, locals, modules, outputs, resources.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
import tf_eval
from tf_layout import ENV_DIR, TF_ROOT

TF_FILES = sorted(TF_ROOT.rglob("*.tf"))
TFVARS_FILES = sorted(TF_ROOT.rglob("*.tfvars"))
MODULE_DIRS = sorted(p for p in (TF_ROOT / "modules").iterdir() if p.is_dir())


def _rel(p: Path) -> str:
    return str(p.relative_to(TF_ROOT))


def test_there_is_terraform_to_check():
    assert len(TF_FILES) >= 30
    assert {p.name for p in MODULE_DIRS} >= {
        "kms", "s3_bucket", "storage", "iam", "network", "mwaa", "emr_serverless", "cloudtrail"}
    assert {p.name for p in TFVARS_FILES} == {"dev.tfvars", "prod.tfvars"}


@pytest.mark.parametrize("path", TF_FILES + TFVARS_FILES, ids=_rel)
def test_file_parses_with_python_hcl2(path: Path):
    parsed = hcl2.loads(path.read_text())
    assert isinstance(parsed, dict) and parsed, f"{_rel(path)} parsed to nothing"
    tf_eval.parse_file(path)  # and normalises without ambiguity


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not installed")
def test_terraform_fmt_accepts_every_file(tmp_path: Path):
    # fmt needs no provider and no network; an empty CLI config silences the missing ~/.terraformrc warning
    cfg = tmp_path / "terraformrc"
    cfg.write_text("")
    res = subprocess.run(["terraform", "fmt", "-check", "-recursive", "-diff", str(TF_ROOT)],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin:/usr/local/bin", "TF_CLI_CONFIG_FILE": str(cfg),
                              "CHECKPOINT_DISABLE": "1", "HOME": str(tmp_path)})
    assert res.returncode == 0, f"terraform fmt would change files:\n{res.stdout}\n{res.stderr}"


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("#", "//")))


@pytest.mark.parametrize("mod_dir", MODULE_DIRS + [ENV_DIR], ids=lambda p: p.name)
def test_module_references_resolve(mod_dir: Path):
    mod = tf_eval.Module(mod_dir, {}, {"account_id": "111122223333", "region": "us-west-2"})
    text = "\n".join(_strip_comments(p.read_text()) for p in sorted(mod_dir.glob("*.tf")))
    # drop descriptions and error messages: prose, not references
    text = re.sub(r'^\s*(description|error_message)\s*=.*$', "", text, flags=re.M)
    problems = []
    for name in set(re.findall(r"\bvar\.([A-Za-z_][\w-]*)", text)):
        if name not in mod.variables:
            problems.append(f"var.{name} is not declared")
    for name in set(re.findall(r"\blocal\.([A-Za-z_][\w-]*)", text)):
        if name not in mod.locals:
            problems.append(f"local.{name} is not defined")
    for name, out in set(re.findall(r"\bmodule\.([A-Za-z_][\w-]*)\.([A-Za-z_][\w-]*)", text)):
        if name not in mod.module_calls:
            problems.append(f"module.{name} is not declared")
        elif out not in mod.child(name).outputs:
            problems.append(f"module.{name} has no output {out}")
    for rtype, name in set(re.findall(r"(?<![\w.\"])data\.(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)", text)):
        if (rtype, name) not in mod.data:
            problems.append(f"data.{rtype}.{name} is not declared")
    for rtype, name in set(re.findall(r"(?<![\w.\"/])(aws_[a-z0-9_]+)\.([A-Za-z_][\w-]*)", text)):
        if (rtype, name) not in mod.resources:
            problems.append(f"{rtype}.{name} is not declared")
    assert not problems, f"{mod_dir.name}: " + "; ".join(sorted(problems))


@pytest.mark.parametrize("mod_dir", [ENV_DIR, TF_ROOT / "modules" / "storage"], ids=lambda p: p.name)
def test_module_calls_pass_declared_and_required_inputs(mod_dir: Path):
    parent = tf_eval.Module(mod_dir, {}, {"account_id": "111122223333", "region": "us-west-2"})
    assert parent.module_calls
    for name, call in parent.module_calls.items():
        child = tf_eval.Module((mod_dir / call.attrs["source"]).resolve(), {}, parent.facts)
        passed = set(call.attrs) - {"source", "depends_on", "providers"}
        unknown = passed - set(child.variables)
        required = {v for v, b in child.variables.items() if "default" not in b.attrs}
        assert not unknown, f"module.{name} passes undeclared inputs {sorted(unknown)}"
        assert required <= passed, f"module.{name} misses required inputs {sorted(required - passed)}"


@pytest.mark.parametrize("mod_dir", MODULE_DIRS + [ENV_DIR], ids=lambda p: p.name)
def test_every_variable_and_output_is_described_and_documented(mod_dir: Path):
    mod = tf_eval.Module(mod_dir, {}, {"account_id": "111122223333", "region": "us-west-2"})
    readme = (TF_ROOT / "README.md").read_text()
    section = readme.split(f"### `{_rel(mod_dir)}`", 1)
    assert len(section) == 2, f"README.md has no section ### `{_rel(mod_dir)}`"
    body = section[1].split("\n### ", 1)[0]
    for kind, table in (("variable", mod.variables), ("output", mod.outputs)):
        for name, block in table.items():
            desc = block.attrs.get("description")
            assert isinstance(desc, str) and len(desc) > 10, f"{kind} {name} in {mod_dir.name} has no description"
            assert f"| `{name}` |" in body, f"README.md does not document {kind} `{name}` of {_rel(mod_dir)}"


def test_tfvars_set_only_declared_variables_and_every_required_one():
    env_vars = tf_eval.Module(ENV_DIR, {}, {"account_id": "1", "region": "r"}).variables
    required = {n for n, b in env_vars.items() if "default" not in b.attrs}
    for path in TFVARS_FILES:
        values = tf_eval.parse_tfvars(path)
        assert set(values) <= set(env_vars), f"{path.name} sets undeclared {sorted(set(values) - set(env_vars))}"
        assert required <= set(values), f"{path.name} misses {sorted(required - set(values))}"
