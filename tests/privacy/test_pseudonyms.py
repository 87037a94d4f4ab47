"""Keyed pseudonyms: stable per recipient, different across recipients, versioned, engine == Python."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from phmx.errors import ConfigError, SpecError
from privacy import pseudonyms
from privacy.pseudonyms import Linkage, is_pseudonym, load_linkage, pseudonym_values, pseudonymize

CINS = ["91234567A", "98765432Z", None, "90000001B"]


@pytest.fixture
def frame(spark):
    return spark.createDataFrame([(c, i) for i, c in enumerate(CINS)], "cin string, n int")


def _col(df, name="cin"):
    return [r[name] for r in df.orderBy("n").collect()]


def test_stable_per_recipient_and_shaped(frame, provider):
    a1 = _col(pseudonymize(frame, ["cin"], "lhj-fresno", provider))
    a2 = _col(pseudonymize(frame, ["cin"], "lhj-fresno", provider))
    assert a1 == a2
    assert a1[2] is None
    assert all(is_pseudonym(x) for x in a1 if x)
    assert a1[0].startswith("v1.")
    assert len(set(a1) - {None}) == 3


def test_different_across_recipients(frame, provider):
    a = _col(pseudonymize(frame, ["cin"], "lhj-fresno", provider))
    b = _col(pseudonymize(frame, ["cin"], "lhj-kern", provider))
    assert not (set(a) - {None}) & (set(b) - {None})


def test_never_an_unsalted_hash(provider):
    value = CINS[0]
    p = pseudonym_values([value], "lhj-fresno", provider)[0]
    assert hashlib.sha256(value.encode()).hexdigest()[:40] not in p


def test_udf_native_and_python_agree(frame, provider):
    udf = _col(pseudonymize(frame, ["cin"], "plan-x", provider, method="udf"))
    native = _col(pseudonymize(frame, ["cin"], "plan-x", provider, method="native"))
    py = pseudonym_values(CINS, "plan-x", provider)
    assert udf == native == py
    pdf = pseudonyms.pseudonymize_pandas(pd.DataFrame({"cin": CINS}), ["cin"], "plan-x", provider)
    assert pdf["cin"].tolist() == py


def test_linkage_group_shares_a_key(provider, tmp_path):
    cfg = tmp_path / "linkage.yaml"
    cfg.write_text("groups:\n  care-team: [alameda-bh, alameda-ph]\n")
    linkage = load_linkage(cfg)
    a = pseudonym_values(CINS, "alameda-bh", provider, linkage=linkage)
    b = pseudonym_values(CINS, "alameda-ph", provider, linkage=linkage)
    c = pseudonym_values(CINS, "lhj-kern", provider, linkage=linkage)
    assert a == b
    assert a != c
    assert pseudonyms.key_label("alameda-bh", linkage) == "pseudonym/linkage/care-team"
    # the committed configuration validates
    assert isinstance(load_linkage(), Linkage)


def test_rotation_changes_version_prefix(provider):
    v1 = pseudonym_values(CINS[:1], "lhj-fresno", provider)[0]
    provider.rotate()
    v2 = pseudonym_values(CINS[:1], "lhj-fresno", provider)[0]
    assert v1.startswith("v1.") and v2.startswith("v2.")
    assert pseudonym_values(CINS[:1], "lhj-fresno", provider, version=1)[0] == v1


def test_bad_config_is_named(tmp_path, frame, provider):
    cfg = tmp_path / "linkage.yaml"
    cfg.write_text("groups:\n  g: [a, b]\n  h: [b, c]\n")
    with pytest.raises(SpecError, match="already in group"):
        load_linkage(cfg)
    with pytest.raises(ConfigError, match="not valid"):
        pseudonym_values(["x"], "Bad Recipient!", provider)
    with pytest.raises(ConfigError, match="not in the frame"):
        pseudonymize(frame, ["nope"], "lhj-a", provider)
