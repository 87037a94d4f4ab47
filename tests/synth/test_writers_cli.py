"""The writer registry (variant formats), the CLI, argument errors and S3 output."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Iterable
from typing import BinaryIO

import pytest

from phmx.errors import ConfigError
from phmx.synth import generate
from phmx.synth.cli import register
from phmx.synth.writers import SPECS, WRITERS, formats_available, register_writer

SMALL = {"members": 300, "counties": ["06013"], "seed": 2, "months": 2}


def _ndjson(rows: Iterable[dict[str, str]], fh: BinaryIO) -> int:
    n = 0
    for row in rows:
        fh.write((json.dumps(row, sort_keys=True) + "\n").encode())
        n += 1
    return n


@pytest.fixture
def test_writer():
    register_writer("immunizations", "test_ndjson", _ndjson, file_suffix=".ndjson", feed_name="immunizations_test")
    yield
    WRITERS.pop(("immunizations", "test_ndjson"), None)
    SPECS.pop(("immunizations", "test_ndjson"), None)


def test_delimited_writers_registered_for_every_feed():
    fmts = formats_available()
    assert all("delimited" in fmts[f] for f in ("enrollment", "claims", "pharmacy", "mh_csi", "sud_caloms",
                                                 "consent_forms", "dental_claims", "immunizations"))


def test_variant_format_written_through_registry(tmp_path, test_writer):
    s = generate(tmp_path, formats={"test_ndjson"}, **SMALL)
    variants = {k: v for k, v in s.files.items() if "/immunizations_test/" in k}
    base = {k: v for k, v in s.files.items() if "/immunizations/" in k}
    assert variants and sorted(variants.values()) == sorted(base.values())
    rel = next(iter(variants))
    assert rel.endswith(".ndjson")
    first = json.loads((tmp_path / rel).read_text().splitlines()[0])
    assert "registry_patient_id" in first and "person_id" not in first
    mapped = {(r["feed"], r["source_person_id"]) for r in csv.DictReader((tmp_path / "ground_truth/person_map.csv").open())}
    for line in (tmp_path / rel).read_text().splitlines():
        assert ("immunizations_test", json.loads(line)["registry_patient_id"]) in mapped


def test_register_writer_rejects_unknown_feed():
    with pytest.raises(ConfigError):
        register_writer("nope", "x", _ndjson, file_suffix=".x", feed_name="nope_x")


@pytest.mark.parametrize("kwargs", [
    {"counties": ["06002"]}, {"counties": ["36061"]}, {"members": 0}, {"start": "2025-13"}, {"months": 0},
    {"formats": {"no_such_format"}},
])
def test_bad_arguments_raise_config_error(tmp_path, kwargs):
    with pytest.raises(ConfigError) as exc:
        generate(tmp_path, **{**SMALL, **kwargs})
    assert exc.value.exit_code == 10


def test_cli_synth_command(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="phmx")
    register(parser.add_subparsers(dest="cmd"))
    args = parser.parse_args(["synth", "--members", "200", "--counties", "06001,06075", "--seed", "4",
                              "--out", str(tmp_path), "--months", "2", "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["people"] == 200 and out["rows_by_feed"]["enrollment"] > 0
    assert (tmp_path / "landing" / "county_06075_bh").exists() or (tmp_path / "landing" / "county_06001_bh").exists()
    bad = parser.parse_args(["synth", "--members", "10", "--counties", "99999", "--out", str(tmp_path)])
    with pytest.raises(ConfigError):
        bad.func(bad)


def test_s3_output(s3_bucket, tmp_path):
    from phmx import storage

    s = generate(f"s3://{s3_bucket}/synth", **SMALL)
    listed = {f.relpath: f for f in storage.list_files(f"s3://{s3_bucket}/synth")}
    assert set(s.files) <= set(listed)
    assert "ground_truth/manifest.json" in listed
    rel = next(k for k in s.files if "/enrollment/" in k)
    local = generate(tmp_path, **SMALL)
    assert storage.read_bytes(listed[rel].uri) == (tmp_path / rel).read_bytes()
    assert local.files == s.files
    text = storage.read_bytes(listed[rel].uri).decode()
    assert next(csv.reader(io.StringIO(text), delimiter="|"))[0] == "member_local_id"
    shorter = generate(f"s3://{s3_bucket}/synth", **{**SMALL, "months": 1})
    assert {f.relpath for f in storage.list_files(f"s3://{s3_bucket}/synth")} == set(shorter.files) | {"ground_truth/manifest.json"}
