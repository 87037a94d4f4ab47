"""The disclosure policy file is validated as a model: unknown keys refused, errors name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from consent import disclosure_policy
from phmx.errors import SpecError

SHIPPED = sorted(disclosure_policy.POLICY_DIR.glob("*.yaml"))[-1]


def _write(tmp_path: Path, edit) -> Path:
    doc = yaml.safe_load(SHIPPED.read_text())
    edit(doc)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _pop_catch_all(d):
    d["rules"] = [r for r in d["rules"] if r["id"] != "DEFAULT-DENY"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["data_classes"]["SUD"].update(minor_controled=True),
     "data_classes.SUD: unknown key 'minor_controled'"),
    (lambda d: d["rules"][1].update(efect="permit"), "rules.1: unknown key 'efect'"),
    (lambda d: d["rules"][1].update(effect="allow"), "rules.1.effect: Input should be 'permit'"),
    (lambda d: d["rules"][1].update(classes=["GENERAL", "DENTAL"]), "rules.1.classes: unknown data class DENTAL"),
    (lambda d: d["rules"][1].update(id="DEFAULT-DENY"), "rules.1.id: duplicate rule id DEFAULT-DENY"),
    (_pop_catch_all, "rules: needs a catch-all deny rule"),
    (lambda d: d["grantors"]["other"].update(minor=["parent"]), "grantors.other.minor.0: Input should be"),
    (lambda d: d["consent_rules"]["permit"].pop("*"), "consent_rules.permit: needs a '*' entry"),
    (lambda d: d["data_classes"]["HIV"]["on_deny"].pop("valueset"), "on_deny: redact needs columns and a valueset"),
    (lambda d: d["data_classes"].pop("GENERAL"), "data_classes: must include GENERAL"),
])
def test_a_broken_policy_names_file_and_key(tmp_path, edit, message):
    path = _write(tmp_path, edit)
    with pytest.raises(SpecError) as err:
        disclosure_policy.load_policy(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert err.value.exit_code == 11 and "docs/auditor-guide.md" in str(err.value)


def test_the_shipped_policy_loads_with_every_class_and_a_catch_all():
    pol = disclosure_policy.load_policy(SHIPPED)
    assert {"GENERAL", "SUD", "MH"} <= set(pol.classes)
    assert pol.baseline("SUD", "HLEGAL", "mcp_x").effect == "deny"
    assert pol.consent_rule("UNLISTED", "permit") == pol.consent_permit["*"]
