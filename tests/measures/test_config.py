"""Value sets and parameters load, and a broken file fails naming the file and the key."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from jobs.measures import config
from jobs.measures.measurement_period import parse
from phmx.errors import ConfigError, SpecError


def test_shipped_configuration_loads_every_measure():
    cfg = config.load()
    assert cfg.all_measure_ids() == ("FUM-7", "FUM-30", "FUA-7", "FUA-30", "FUH-7", "FUH-30", "TRC-30",
                                     "OEV-CH", "TFL-CH", "CIS-10", "W30-15", "W30-30", "WCV")
    assert cfg.code_list("cdt", "oral_evaluation") == ("D0120", "D0145", "D0150")
    assert set(cfg.combinations["CIS-10"]) == {"DTaP", "IPV", "MMR", "HiB", "HepB", "VZV", "PCV", "HepA", "RV", "Flu"}
    # a combination vaccine counts toward each of its antigens
    holding_110 = {a.name for a in cfg.antigens.values() if "110" in a.cvx}
    assert holding_110 == {"DTaP", "HepB", "IPV"}


@pytest.mark.parametrize(("value_set", "code", "member"), [
    ("mental_illness", "F329", True), ("mental_illness", "F1120", False), ("mental_illness", "R45851", False),
    ("intentional_self_harm", "X781XXA", True), ("intentional_self_harm", "T402X2A", True),
    ("intentional_self_harm", "T401X1A", False), ("drug_overdose", "T401X1A", True),
    ("drug_overdose", "T40411A", True), ("drug_overdose", "T401X5A", False), ("sud", "F17210", False),
    ("sud", "F1020", True), ("homelessness", "Z5902", True), ("other_social_needs", "Z5902", False),
])
def test_value_set_membership(value_set, code, member):
    rx = re.compile(config.load().icd_regex(value_set))
    assert bool(rx.search(code)) is member
    # matched inside a comma-joined list of codes too, never across two codes
    assert bool(rx.search(f"A000,{code},Z0000")) is member


def test_patterns_do_not_match_across_two_codes():
    rx = re.compile(config.load().icd_regex("intentional_self_harm"))
    assert not rx.search("T36,X2AB")


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "measures"
    shutil.copytree(config.MAPPINGS_DIR, dst)
    return dst


def _edit(path: Path, fn) -> None:  # noqa: ANN001
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize(("file", "edit", "message"), [
    ("measures.yaml", lambda d: d["measures"]["FUM"].update(followup=["claim_typo"]),
     "measures.yaml: measures.FUM.followup: unknown evidence kind 'claim_typo'"),
    ("measures.yaml", lambda d: d["measures"]["FUA"].update(index_principal=["sud_typo"]),
     "measures.yaml: measures.FUA.index_principal: unknown ICD-10-CM value set 'sud_typo'"),
    ("measures.yaml", lambda d: d["measures"]["TFL"].update(rates={"FUM-7": 2}),
     "measures.yaml: measures.TFL.rates: measure id 'FUM-7' used twice"),
    ("valuesets.yaml", lambda d: d["icd10cm"]["sud"].pop("source"),
     "valuesets.yaml: icd10cm.sud: needs a 'source'"),
    ("valuesets.yaml", lambda d: d["cdt"]["oral_evaluation"].update(codes=["D0120", "D01 20"]),
     "valuesets.yaml: cdt.oral_evaluation.codes: invalid entry 'D01 20'"),
    ("cvx_antigens.yaml", lambda d: d["combinations"].update({"CIS-10": ["DTaP", "Polio"]}),
     "cvx_antigens.yaml: combinations.CIS-10: unknown antigen(s) ['Polio']"),
    ("risk.yaml", lambda d: d["tiers"].update(high=1),
     "risk.yaml: tiers: thresholds must decrease from high to low"),
    # unknown keys are refused, not ignored: a misspelt parameter would silently use its default
    ("measures.yaml", lambda d: d["measures"]["FUM"].update(folowup_first_day=1),
     "measures.yaml: measures.FUM: unknown key 'folowup_first_day'"),
    ("measures.yaml", lambda d: d["measures"]["CIS"]["enrollment"].update(max_gap=2),
     "measures.yaml: measures.CIS.enrollment: unknown key 'max_gap'"),
    ("measures.yaml", lambda d: d["measures"]["W30"]["rates"].update({"W30-15": 15}),
     "measures.yaml: measures.W30: rates: W30-15: a well_child rate is an age window"),
    ("cvx_antigens.yaml", lambda d: d["antigens"]["MMR"].update(dose=1),
     "cvx_antigens.yaml: antigens.MMR: unknown key 'dose'"),
    ("risk.yaml", lambda d: d["components"]["utilization"].pop("cap"),
     "risk.yaml: components.utilization: needs a 'cap'"),
    ("race_ethnicity.yaml", lambda d: d["categories"].pop("Unknown"),
     "race_ethnicity.yaml: categories: no label for ['Unknown']"),
])
def test_broken_configuration_names_file_and_key(tmp_path, file, edit, message):
    base = _copy(tmp_path)
    _edit(base / file, edit)
    with pytest.raises(SpecError) as err:
        config.load(base)
    assert message in str(err.value)
    assert err.value.exit_code == 11


def test_periods():
    assert parse("2025") and (parse("2025").start, parse("2025").end) == (date(2025, 1, 1), date(2025, 12, 31))
    assert parse("2025").index_end(30) == date(2025, 12, 1)  # HEDIS: ED visits through December 1
    r12 = parse("R12-2025-06")
    assert (r12.label, r12.start, r12.end) == ("R12-2025-06", date(2024, 7, 1), date(2025, 6, 30))
    dec = parse("R12-2025-12")
    assert (dec.start, dec.end) == (date(2025, 1, 1), date(2025, 12, 31))
    month = parse("2025-03")
    assert (month.label, month.start, month.end) == ("2025", date(2025, 1, 1), date(2025, 12, 31))
    assert parse("all") is None
    with pytest.raises(ConfigError):
        parse("2025-13")
    with pytest.raises(ConfigError):
        parse("last year")
