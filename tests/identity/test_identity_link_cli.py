"""``phmx identity link``: any person files (CSV, Parquet) with a field mapping."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from phmx.errors import ConfigError
from phmx.synth import identity_records

MAPPING = """\
id: rec_id
fields:
  given_name: first
  family_name: surname
  birth_date: {column: dob, format: "%Y%m%d"}
  ssn: soc_sec_id
  address_line: [street_number, street]
  city: suburb
  postal_code: postcode
"""


def _cli(argv: list[str]) -> int:
    from jobs.identity.cli import register

    parser = argparse.ArgumentParser(prog="phmx")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def _files(tmp_path):
    person, truth = identity_records.generate(250, seed=5)
    person = person[person["source"].isin(["mcp_bluecoast", "mcp_goldstate", "cair2"])].copy()
    street = person["address_line"].fillna("").str.split(" ", n=1)
    frame = pd.DataFrame({
        "rec_id": person["source_person_id"],
        "first": person["given_name"], "surname": person["family_name"],
        "dob": pd.to_datetime(person["birth_date"]).dt.strftime("%Y%m%d"),
        "soc_sec_id": person["ssn"],
        "street_number": street.str[0], "street": street.str[1],
        "suburb": person["city"], "postcode": person["zip"], "source": person["source"],
    })
    plans = frame[frame["source"] != "cair2"].drop(columns="source")
    registry = frame[frame["source"] == "cair2"].drop(columns=["source", "soc_sec_id"])  # no SSN here
    plans.to_csv(tmp_path / "plans.csv", index=False)
    registry.to_parquet(tmp_path / "registry.parquet", index=False)
    (tmp_path / "map.yaml").write_text(MAPPING)
    t = truth.merge(person[["source", "source_person_id"]], on=["source", "source_person_id"])
    t["file"] = t["source"].map(lambda s: "registry" if s == "cair2" else "plans")
    return t


def test_link_csv_and_parquet_with_a_mapping(spark, phmx_home, tmp_path):
    truth = _files(tmp_path)
    out = tmp_path / "out"
    assert _cli(["identity", "link", str(tmp_path / "plans.csv"), str(tmp_path / "registry.parquet"),
                 "--mapping", str(tmp_path / "map.yaml"), "--out", str(out)]) == 0
    pairs = pd.read_parquet(out / "pairs.parquet")
    clusters = pd.read_parquet(out / "clusters.parquet")
    assert list(pairs.columns) == ["source_l", "record_id_l", "source_r", "record_id_r", "match_probability"]
    assert list(clusters.columns) == ["source", "record_id", "member_id"]
    assert set(clusters["source"]) == {"plans", "registry"}
    assert len(clusters) == len(truth) and pairs["match_probability"].between(0, 1).all()
    m = clusters.merge(truth.rename(columns={"file": "source", "source": "submitter",
                                             "source_person_id": "record_id"}), on=["source", "record_id"])
    together = m.groupby("member_id")["person_id"].nunique()
    assert (together == 1).mean() > 0.99  # clusters hold one person
    split = m.groupby("person_id")["member_id"].nunique()
    assert (split == 1).mean() > 0.95  # and a person is in one cluster
    assert not (out / "_work").exists()


def test_link_rejects_a_bad_mapping(spark, phmx_home, tmp_path):
    (tmp_path / "bad.yaml").write_text("id: rec_id\nfields:\n  shoe_size: shoe\n")
    (tmp_path / "a.csv").write_text("rec_id,shoe\n1,9\n")
    with pytest.raises(ConfigError, match="shoe_size"):
        _cli(["identity", "link", str(tmp_path / "a.csv"), "--mapping", str(tmp_path / "bad.yaml"),
              "--out", str(tmp_path / "out")])
