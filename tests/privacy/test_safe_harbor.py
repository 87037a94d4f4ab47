"""Safe Harbor: policy validation, the transform on the engine, and the checker."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pytest

from phmx.errors import PrivacyError, SpecError
from privacy.checker import assert_clean, check_safe_harbor
from privacy.deid_policy import load_policy, parse_policy, restricted_zip3
from privacy.safe_harbor import apply_policy

SCHEMA = ("member_id string, birth_date date, zip string, service_date date, sex string, cin string, "
          "diagnosis_code string, race string")
ROWS = [
    ("m1", dt.date(1930, 5, 1), "95823", dt.date(2024, 3, 1), "F", "91234567A", "F32.1", "2106-3"),
    ("m2", dt.date(1990, 12, 31), "03601-1234", dt.date(2024, 3, 1), "M", None, "E11.9", "2054-5"),
    ("m3", dt.date(1934, 3, 2), "06311", dt.date(2024, 3, 1), "F", None, None, "9999-9"),
    ("m4", dt.date(2010, 7, 4), "20512", dt.date(2024, 7, 3), "M", None, "Z00.0", None),
    ("m5", None, "bad", None, None, None, None, None),
]


def _policy(**over):
    doc = {
        "output": "t", "version": 1, "zip3_list": "census2000",
        "age": {"birth_date": "birth_date", "as_of": "service_date"},
        "fields": {
            "person": {"action": "pseudonym", "source": "member_id"},
            "birth_year": {"action": "year", "source": "birth_date"},
            "age": "age",
            "age_group": {"action": "age_band", "bands": ["0-17", "18-64", "65+"]},
            "zip3": {"action": "zip3", "source": "zip"},
            "service_year": {"action": "year", "source": "service_date"},
            "sex": "keep",
            "dx": {"action": "generalise", "source": "diagnosis_code", "truncate": 3},
            "race": {"action": "generalise", "map": {"2106-3": "White", "2054-5": "Black"}, "default": "Other"},
            "cin": "drop",
        },
    }
    doc.update(over)
    return parse_policy(doc)


@pytest.fixture
def raw(spark):
    return spark.createDataFrame(ROWS, SCHEMA)


def _by_person(df):
    return {r["person"]: r.asDict() for r in df.collect()}


def test_transform_applies_every_action(raw, provider):
    out = apply_policy(raw, _policy(), recipient="research-a", provider=provider, today="2026-01-15")
    assert out.columns == ["person", "birth_year", "age", "age_group", "zip3", "service_year", "sex", "dx", "race"]
    rows = sorted(out.collect(), key=lambda r: (r["birth_year"] is None, r["birth_year"] or 0))
    by_age = {r["age"]: r for r in rows}
    # age 90 and over: one "90+" category, birth year suppressed, band open-ended
    assert by_age["90+"]["birth_year"] is None and by_age["90+"]["age_group"] == "65+"
    # 89 at the service date (birthday next day) but over 89 by the release year: year suppressed
    assert by_age["89"]["birth_year"] is None and by_age["89"]["age_group"] == "65+"
    assert by_age["33"]["birth_year"] == 1990 and by_age["33"]["age_group"] == "18-64"
    assert by_age["13"]["age_group"] == "0-17"  # birthday on 7/4 not yet reached on 7/3
    assert {r["service_year"] for r in rows} == {2024, None}
    assert {r["dx"] for r in rows} == {"F32", "E11", "Z00", None}
    assert {r["race"] for r in rows} == {"White", "Black", "Other", None}
    assert all(r["person"].startswith("v1.") for r in rows)
    assert check_safe_harbor(out) == []


def test_zip3_restricted_lists_are_versioned(raw, provider):
    def zips(version):
        out = apply_policy(raw, _policy(zip3_list=version), recipient="r", provider=provider)
        return sorted((r["zip3"] or "") for r in out.collect())

    # 958 is not restricted; 036 is in both lists; 063 only in the 2000 list; 205 only in 2010
    assert zips("census2000") == ["", "000", "000", "205", "958"]
    assert zips("census2010") == ["", "000", "000", "063", "958"]
    assert "063" in restricted_zip3("census2000") and "063" not in restricted_zip3("census2010")
    assert "205" in restricted_zip3("census2010") and "205" not in restricted_zip3("census2000")


def test_unknown_fields_are_dropped(raw, provider):
    pol = parse_policy({"output": "t", "version": 1, "fields": {"sex": "keep"}})
    out = apply_policy(raw, pol)
    assert out.columns == ["sex"]


def test_policy_validation_names_the_problem():
    with pytest.raises(SpecError, match="looks like a Safe Harbor identifier"):
        parse_policy({"output": "t", "version": 1, "fields": {"ssn": "keep"}})
    parse_policy({"output": "t", "version": 1, "fields": {"zip": {"action": "keep", "reviewed": "synthetic test"}}})
    with pytest.raises(SpecError, match="ages 90 and over must be one open band"):
        _policy(fields={"g": {"action": "age_band", "bands": ["0-64", "65-94", "95+"]}})
    with pytest.raises(SpecError, match="unknown action"):
        parse_policy({"output": "t", "version": 1, "fields": {"x": "month"}})
    with pytest.raises(SpecError, match="set age.birth_date"):
        parse_policy({"output": "t", "version": 1, "fields": {"by": {"action": "year", "source": "birth_date"}}})
    with pytest.raises(SpecError, match="unknown key"):
        parse_policy({"output": "t", "version": 1, "fields": {"sex": "keep"}, "extra": 1})
    with pytest.raises(SpecError, match="zip3_list"):
        parse_policy({"output": "t", "version": 1, "zip3_list": "census1990", "fields": {"sex": "keep"}})


def test_committed_policy_loads():
    pol = load_policy("research_encounters")
    assert pol.basis == "safe_harbor" and "procedure_codes" in pol.code_columns


def test_committed_policy_end_to_end(spark, provider):
    rows = [("m1", dt.date(1950, 2, 3), "95823", dt.date(2024, 5, 6), "F", "ED", "F32.1", "99283",
             "Pt Maria Lopez seen 05/06/2024, CIN 91234567A; call 559-555-0134.", "91234567A", "Maria",
             "Lopez", "1 Oak St", "5595550134")]
    df = spark.createDataFrame(rows, "member_id string, birth_date date, zip string, service_date date, sex string, "
                                     "setting string, diagnosis_code string, procedure_codes string, "
                                     "referral_reason string, cin string, given_name string, family_name string, "
                                     "address_line string, phone string")
    pol = load_policy("research_encounters")
    out = apply_policy(df, pol, recipient="research-a", provider=provider, today="2026-01-15")
    row = out.collect()[0].asDict()
    assert row["referral_reason"] == "Pt <PERSON> seen <DATE>, CIN <CIN>; call <PHONE>."
    assert row["zip3"] == "958" and row["birth_year"] == 1950 and row["diagnosis_category"] == "F32"
    assert_clean(out, what="research_encounters", code_columns=pol.code_columns)


def test_kept_date_column_fails(raw):
    pol = parse_policy({"output": "t", "version": 1,
                        "fields": {"service_date": {"action": "keep", "reviewed": "test of the guard"}}})
    with pytest.raises(PrivacyError, match="full dates"):
        apply_policy(raw, pol)


PLANTED = {
    "ssn": "Member SSN 123-45-6789 on file",
    "full_date": "seen on 03/14/2024",
    "zip5": "lives in 95823",
    "phone": "call (559) 555-0134",
    "email": "write to someone@example.org",
    "cin": "CIN 91234567A",
    "mrn": "MRN: 00123456",
    "url": "see https://example.org/p/1",
    "ip_address": "from 10.1.2.3",
    "given_name": "Referred by Maria today",
}


@pytest.mark.parametrize("identifier", sorted(PLANTED))
def test_checker_catches_planted_identifiers_pandas(identifier):
    frame = pd.DataFrame({"note": ["nothing to see", PLANTED[identifier]], "n": [1, 2]})
    found = {(f.column, f.identifier) for f in check_safe_harbor(frame)}
    assert ("note", identifier) in found


def test_checker_on_engine_arrow_and_types(spark):
    clean = pd.DataFrame({"person": ["v1." + "a" * 40, "v2." + "0" * 40], "age": ["90+", "45"], "zip3": ["000", "958"],
                          "procedure_codes": ["99213", "90471"], "birth_year": [1980, 1999]})
    assert check_safe_harbor(clean, code_columns=["procedure_codes"]) == []
    assert check_safe_harbor(spark.createDataFrame(clean), code_columns=["procedure_codes"]) == []
    assert check_safe_harbor(pa.Table.from_pandas(clean), code_columns=["procedure_codes"]) == []
    dirty = pd.DataFrame({"age": [91, 40], "birth_year": [1920, 1990], "zip": [95823, 958],
                          "note": ["SSN 123-45-6789", "ok"], "d": [dt.date(2024, 1, 2), None]})
    ids_pd = {(f.column, f.identifier) for f in check_safe_harbor(dirty, current_year=2025)}
    ids_sp = {(f.column, f.identifier) for f in check_safe_harbor(spark.createDataFrame(dirty), current_year=2025)}
    expected = {("age", "age_over_89"), ("birth_year", "birth_year_implies_90plus"), ("zip", "zip5"),
                ("note", "ssn"), ("d", "full_date")}
    assert expected <= ids_pd and expected <= ids_sp
    with pytest.raises(PrivacyError, match="failed the Safe Harbor check") as err:
        assert_clean(dirty, what="test feed", current_year=2025)
    assert "123-45-6789" not in str(err.value)


def test_codes_are_flagged_unless_exempt():
    frame = pd.DataFrame({"procedure_codes": ["99213", "90471"]})
    assert {f.identifier for f in check_safe_harbor(frame)} == {"zip5"}
    assert check_safe_harbor(frame, code_columns=["procedure_codes"]) == []


def test_policy_options_are_checked_per_action():
    """Each action takes its own options; anything else is refused with the field named."""
    with pytest.raises(SpecError, match=r"fields\.y\.year: unknown key 'bands'"):
        parse_policy({"output": "t", "version": 1, "fields": {"y": {"action": "year", "bands": ["0+"]}}})
    with pytest.raises(SpecError, match="needs a 'default'"):
        parse_policy({"output": "t", "version": 1, "fields": {"r": {"action": "generalise", "map": {"a": "b"}}}})
    with pytest.raises(SpecError, match=r"fields\.x: give 'action'"):
        parse_policy({"output": "t", "version": 1, "fields": {"x": {"source": "y"}}})
    with pytest.raises(SpecError, match=r"age: unknown key 'born'"):
        parse_policy({"output": "t", "version": 1, "age": {"born": "dob"}, "fields": {"sex": "keep"}})
