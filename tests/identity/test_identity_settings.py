"""Identity settings and link mappings: validated on load, errors name the file and the key;
identifiers are declarations, not code."""

from __future__ import annotations

import copy

import pytest
import yaml

from jobs.identity import config, linkfiles
from phmx.errors import ConfigError


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(config.SETTINGS_FILE.read_text())


def _parse(data: dict):  # noqa: ANN202
    return config.parse(data, "settings.yaml")


def test_defaults_declare_cin_and_ssn_as_identifiers(raw):
    s = _parse(raw)
    names = [i.name for i in s.identifiers]
    assert names[:2] == ["cin", "ssn"] and "county_client_number" in names
    # Each identifier brings its comparison (its declared levels, then else) and blocking rule.
    assert [lv.label for lv in s.comparison("ssn").levels] == ["exact", "consecutive", "one_typo", "transposition",
                                                               "else"]
    assert [r.name for r in s.rules][:3] == ["cin", "ssn", "county_client_number"]
    assert set(s.guarded_identifiers) == {"cin", "ssn"}
    # Two records of a one-per-member roster and two CINs are decided without a reviewer.
    assert s.review_cluster_conflicts is not None
    assert "same_source" not in s.review_cluster_conflicts and "cin" not in s.review_cluster_conflicts
    # No training rule blocks on an identifier: EM is not seeded by shared numbers.
    assert not set(s.training_rules) & set(names)


@pytest.mark.parametrize(("path", "value", "message"), [
    (("guards", "edje"), [], "settings.yaml: guards.edje: unknown key"),
    (("thresholds", "link_probablity"), 0.9, "thresholds.link_probablity: unknown key"),
    (("identifiers", 0, "guards"), True, "identifiers[0].guards: unknown key"),
    (("identifiers", 1, "levels"), ["exact", "two_typos"], "identifiers[1].levels[1]"),
    (("blocking", "rules", 0, "keys"), ["shoe_size"], "blocking.rules[0].keys: unknown features ['shoe_size']"),
    (("guards", "edge", 0, "when"), {"given_name": ["twin"]}, "guards.edge[0].when.given_name: unknown level"),
    (("guards", "edge", 0, "unless"), {"any_identifier": ["close"]}, "guards.edge[0].unless.any_identifier"),
    (("guards", "review_cluster_conflicts"), ["ssn", "shoe_size"],
     "guards.review_cluster_conflicts: unknown conflicts ['shoe_size']"),
])
def test_unknown_keys_and_values_are_refused_naming_file_and_key(raw, path, value, message):
    data = copy.deepcopy(raw)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as err:
        _parse(data)
    assert message in str(err.value)


def test_an_identifier_declared_in_a_mapping(tmp_path):
    (tmp_path / "m.yaml").write_text("""\
id: rec_id
fields: {given_name: first, family_name: last, ssn: social}
identifiers:
  mrn: {column: chart_no, normalise: alnum, pattern: "^[A-Z]{2}[0-9]{6}$", levels: [exact, one_typo], guard: false}
""")
    m = linkfiles.load_mapping(tmp_path / "m.yaml")
    assert m.identifiers["ssn"][0] == "social" and m.identifiers["ssn"][1].check == "ssa_ssn"
    column, mrn = m.identifiers["mrn"]
    assert column == "chart_no" and mrn.levels == ("exact", "one_typo") and not mrn.guard
    s = linkfiles.link_settings(config.load(), [m])
    assert [lv.label for lv in s.comparison("mrn").levels] == ["exact", "one_typo", "else"]
    assert "mrn" in {r.name for r in s.rules} and "mrn" not in s.guarded_identifiers


def test_a_personal_identifier_outweighs_the_household_guards(tmp_path):
    # SSN and CIN are written on dependants' records: not personal. A registry's own person
    # number is: exact agreement on it lifts the household guards, and only on it.
    (tmp_path / "m.yaml").write_text("""\
id: rec_id
fields: {given_name: first, family_name: last, birth_date: dob}
identifiers:
  person_number: {column: pno, normalise: digits, guard: false, personal: true}
""")
    s = linkfiles.link_settings(config.load(), [linkfiles.load_mapping(tmp_path / "m.yaml")])
    assert [i.name for i in s.identifiers if i.personal] == ["person_number"]
    assert [n for n, _ in s.gammas("personal_identifier", ["exact"])] == ["person_number"]
    household = next(g for g in s.edge_guards if g.name == "household_member")
    # (within a keying error on it: two people's personal numbers are not a keystroke apart)
    assert ("personal_identifier", ("exact", "one_typo", "transposition")) in household.unless
    namesakes = next(g for g in s.edge_guards if g.name == "different_birth_dates")
    assert ("personal_identifier", ("one_typo", "transposition")) in namesakes.unless
    assert {d.name for d in s.deterministic} >= {"personal_number_birth_date", "personal_number_address"}
    assert [n for n, _ in config.load().gammas("personal_identifier", ["exact"])] == []


def test_the_newborn_guard_yields_to_a_personal_number_within_a_keying_error(tmp_path):
    # Given name and birth date replaced, family name and address agreeing: with an SSN one
    # digit off (a parent's number on a newborn's record, mistyped) the pair is refused; with a
    # personal number one digit off it is not (such a number is never on a relative's record).
    import pandas as pd

    from jobs.identity.cluster import edge_guard_reasons

    (tmp_path / "m.yaml").write_text("""\
id: rec_id
fields: {given_name: first, family_name: last, birth_date: dob, address_line: addr, postal_code: zip}
identifiers:
  ssn: ssn
  person_number: {column: pno, normalise: digits, guard: false, personal: true}
""")
    s = linkfiles.link_settings(config.load(), [linkfiles.load_mapping(tmp_path / "m.yaml")])

    def gamma(cname: str, label: str) -> int:
        return next(g for _, gs in s.gammas(cname, [label]) for g in gs)

    base = {f"g_{c.name}": -1 for c in s.comparisons}
    base.update({"g_given_name": gamma("given_name", "else"), "g_birth_date": gamma("birth_date", "else"),
                 "g_family_name": gamma("family_name", "exact"), "g_location": gamma("location", "address")})
    ssn_typo = {**base, "g_ssn": gamma("ssn", "one_typo")}
    pno_typo = {**base, "g_person_number": gamma("person_number", "one_typo")}
    reasons = edge_guard_reasons(pd.DataFrame([ssn_typo, pno_typo]), s).tolist()
    assert reasons[0] is not None and reasons[1] is None
    assert next(g for g in s.edge_guards if g.name == "birth_date_differs_name_unconfirmed").unless == \
        (("personal_identifier", ("exact", "one_typo", "transposition")),)


@pytest.mark.parametrize(("text", "message"), [
    ("id: a\nfields: {given_name: g}\nidentifiers: {mrn: {column: c, normalize: digits}}\n",
     "identifiers.mrn.normalize: unknown key"),
    ("id: a\nfields: {given_name: g}\nidentifiers: {mrn: chart}\n", "identifiers.mrn: not an identifier"),
    ("id: a\nfields: {given_name: g}\nidentifiers: {mrn: {normalise: digits}}\n", "identifiers.mrn.column"),
    ("id: a\nfields: {given_name: {colum: g}}\n", "fields.given_name"),
    ("id: a\nfield: {given_name: g}\n", "field: unknown key"),
])
def test_mapping_errors_name_the_file_and_key(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        linkfiles.load_mapping(tmp_path / "bad.yaml")
    assert str(tmp_path / "bad.yaml") in str(err.value) and message in str(err.value)


def test_identifier_normalisation_and_validity(spark):
    s = config.load()
    decl = config.IdentifierSpec.model_validate(
        {"name": "person_number", "normalise": "digits", "pattern": "^[0-9]{7}$"}).build()
    from jobs.identity import standardise

    rows = [("a", "1", "530-4218"), ("a", "2", "53042189"), ("a", "3", "0000000"), ("b", "4", " 6169819 ")]
    df = spark.createDataFrame(rows, "source string, source_person_id string, pn string")
    s2 = s.with_identifiers((config.Identifier(**{**decl.__dict__, "column": "pn"}),))
    got = {r["source_person_id"]: r["person_number"] for r in standardise.standardise(df, s2).collect()}
    assert got == {"1": "5304218", "2": None, "3": None, "4": "6169819"}
    ns = config.Identifier(name="client", column="pn", namespace="source", levels=("exact",))
    got = {r["source_person_id"]: r["client"] for r in standardise.standardise(df, s.with_identifiers((ns,))).collect()}
    assert got["1"] == "a\u001f5304218" and got["4"] == "b\u001f6169819"  # numbers agree only within a source


def test_public_nickname_list_joins_the_curated_table_without_relating_full_names():
    from jobs.identity import config

    package = config.package_nicknames()  # read from the installed ``nicknames`` package
    assert "BEDNEY" in package["ABEDNEGO"] and len(package) > 500
    # A group keeps at most one name with nicknames of its own (the list has MARY and MARIA
    # under MARIAH: taken whole, twins Maria and Mary would share a group through it).
    assert all(len(nicks & package.keys()) <= 1 for nicks in package.values())
    groups = config.nicknames()
    assert "ABEDNEGO" in groups["BEDNEY"]
    assert "MARIAH" not in groups["MARIA"] and "MARIAH" not in groups["MARY"]
    # The curated table decides for the names it holds (MARIA's group is its own).
    assert groups["MARIA"] == ("MARIA",)
