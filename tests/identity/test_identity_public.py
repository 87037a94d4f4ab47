"""Linkage quality on public data nobody on this project wrote: FEBRL subsets with ground truth.

FEBRL 4 (two files, one duplicate per original) is linked with a different layout and mapping
per file; FEBRL 3 (originals with up to five duplicates) is deduplicated. Floors, not figures:
the full sets' figures come from ``python -m benchmarks.identity_public``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from jobs.identity import linkfiles

DATA = Path(__file__).resolve().parent / "data" / "febrl"


def pairwise(clusters: pd.DataFrame) -> tuple[float, float]:
    """Pairwise precision and recall of clusters against FEBRL's truth (the rec_id number)."""
    c = clusters.assign(entity=clusters["record_id"].str.extract(r"rec-(\d+)")[0])

    def pairs(groups) -> int:  # noqa: ANN001
        return int(sum(len(g) * (len(g) - 1) // 2 for _, g in groups))

    tp = pairs(c.groupby(["member_id", "entity"]))
    predicted, true = pairs(c.groupby("member_id")), pairs(c.groupby("entity"))
    return (tp / predicted if predicted else 1.0), (tp / true if true else 1.0)


def test_febrl4_two_layouts_each_with_its_own_mapping(spark, phmx_home, tmp_path):
    # The second file in another layout (its own id column and names), as a second source
    # would send it: one mapping per input.
    b = pd.read_csv(DATA / "febrl4b_subset.csv", dtype=str).rename(columns={
        "rec_id": "record", "given_name": "first", "surname": "last", "date_of_birth": "dob",
        "soc_sec_id": "person_no", "postcode": "zip"})
    b["dob"] = pd.to_datetime(b["dob"], format="%Y%m%d", errors="coerce").dt.strftime("%m/%d/%Y")
    b.to_parquet(tmp_path / "febrl4b.parquet", index=False)
    (tmp_path / "b.yaml").write_text("""\
id: record
fields:
  first_name: first
  last_name: last
  dob: {column: dob, format: "%m/%d/%Y"}
  address_line: [street_number, address_1, address_2]
  city: suburb
  zip: zip
identifiers:
  person_number: {column: person_no, normalise: digits, pattern: "^[0-9]{7}$",
                  levels: [exact, one_typo, transposition], guard: false, personal: true,
                  block_typos: true}
""")
    out = tmp_path / "out"
    counts = linkfiles.link_files(spark, [str(DATA / "febrl4a_subset.csv"), str(tmp_path / "febrl4b.parquet")],
                                  [str(DATA / "mapping.yaml"), str(tmp_path / "b.yaml")], str(out))
    assert counts["identifiers"] == ["person_number"]
    # The share of matches whose numbers disagree, as the model learned it, is reported.
    assert 0 < counts["identifier_disagreement"]["person_number"] < 0.5
    clusters = pd.read_parquet(out / "clusters.parquet")
    assert len(clusters) == 800 and set(clusters["source"]) == {"febrl4a_subset", "febrl4b"}
    precision, recall = pairwise(clusters)
    assert precision >= 0.999
    assert recall >= 0.95


def test_febrl3_deduplication(spark, phmx_home, tmp_path):
    out = tmp_path / "out"
    linkfiles.link_files(spark, [str(DATA / "febrl3_subset.csv")], str(DATA / "mapping.yaml"), str(out))
    precision, recall = pairwise(pd.read_parquet(out / "clusters.parquet"))
    assert precision >= 0.999
    assert recall >= 0.90


def test_splink_fake_1000_deduplication(spark, phmx_home, tmp_path):
    # Splink's own example set (tests/identity/data/splink/SOURCES.md): first name, surname,
    # birth date, city and an email, heavily corrupted; truth is its ``cluster`` column.
    data = DATA.parent / "splink"
    out = tmp_path / "out"
    counts = linkfiles.link_files(spark, [str(data / "fake_1000.csv")], str(data / "fake_1000.yaml"), str(out))
    assert counts["identifiers"] == ["email_address"]
    clusters = pd.read_parquet(out / "clusters.parquet")
    truth = pd.read_csv(data / "fake_1000.csv", dtype=str).set_index("unique_id")["cluster"]
    c = clusters.assign(entity=clusters["record_id"].map(truth))
    assert len(c) == 1000 and c["entity"].notna().all()

    def pairs(sizes: pd.Series) -> int:
        return int((sizes * (sizes - 1) // 2).sum())

    tp = pairs(c.groupby(["member_id", "entity"]).size())
    precision = tp / pairs(c.groupby("member_id").size())
    recall = tp / pairs(c.groupby("entity").size())
    # Floors (measured 1.0 / 0.475; Splink's tutorial settings 1.0 / 0.392): python -m
    # benchmarks.identity_public --sets fake_1000
    assert precision >= 0.999
    assert recall >= 0.45
