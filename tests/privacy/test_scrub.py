"""Free-text scrubbing with Presidio: offline, our recognizers, placeholders, engine UDF, CLI."""

from __future__ import annotations

import argparse
import io
import json
import socket

import pytest

from phmx.errors import ConfigError
from privacy import scrub
from privacy.cli import register

NOTE = ("Pt Maria Lopez (CIN 91234567A, MRN 00123456) moved to 1234 Oak St Apt 4B, Fresno, CA 93721 on "
        "03/14/2024; call (559) 555-0134 or maria.lopez@example.com. SSN 123-45-0789, CA DL B1234567.")


@pytest.fixture
def offline(monkeypatch):
    """No network at all: any connection attempt or model download fails the test."""
    import spacy.cli

    def refuse(*_a, **_k):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(spacy.cli, "download", refuse)


def test_builds_and_runs_with_no_network(offline, monkeypatch):
    monkeypatch.setattr(scrub, "_engines", {})
    out = scrub.scrub_text(NOTE + " See https://example.org/x from 10.0.0.1.")
    for secret in ("Maria", "Lopez", "91234567A", "00123456", "1234 Oak", "93721", "03/14/2024", "555-0134",
                   "maria.lopez@example.com", "123-45-0789", "B1234567", "example.org", "10.0.0.1"):
        assert secret not in out, secret
    for placeholder in ("<PERSON>", "<CIN>", "<MRN>", "<ADDRESS>", "<LOCATION>", "<ZIP>", "<DATE>", "<PHONE>",
                        "<EMAIL>", "<SSN>", "<DRIVER_LICENSE>"):
        assert placeholder in out, placeholder


def test_missing_model_fails_without_download(monkeypatch):
    import importlib.util

    import spacy.cli

    calls = []
    monkeypatch.setattr(spacy.cli, "download", lambda *a, **k: calls.append(a))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == scrub.SPACY_MODEL else real(name, *a))
    monkeypatch.setattr(scrub, "_engines", {})
    with pytest.raises(ConfigError, match="not installed"):
        scrub.analyzer()
    assert calls == []


def test_program_vocabulary_survives():
    text = "Medi-Cal eligibility confirmed; CIN pending from MEDS. ECM referral for SMI, follow-up within 7 days in 2024."
    assert scrub.scrub_text(text) == text


def test_spans_are_disjoint_and_typed():
    spans = scrub.analyze_texts([NOTE, "", None])
    assert spans[1] == [] and spans[2] == []
    found = spans[0]
    assert all(a.end <= b.start for a, b in zip(found, found[1:], strict=False))
    types = {s.entity_type for s in found}
    assert {"MEDI_CAL_CIN", "MEDICAL_RECORD_NUMBER", "STREET_ADDRESS", "US_SSN", "CA_DRIVER_LICENSE"} <= types


def test_scrub_column_on_the_engine(spark):
    df = spark.createDataFrame([(1, NOTE), (2, None), (3, "No identifiers here.")], "n int, note string")
    rows = df.select("n", scrub.scrub_column(df["note"]).alias("note")).orderBy("n").collect()
    assert "<PERSON>" in rows[0]["note"] and "91234567A" not in rows[0]["note"]
    assert rows[1]["note"] is None
    assert rows[2]["note"] == "No identifiers here."


def _parser():
    ap = argparse.ArgumentParser(prog="phmx")
    register(ap.add_subparsers(dest="command"))
    return ap


def test_cli_scrub_and_spans(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("Call Maria Lopez at 559-555-0134.\nNothing here.\n")
    args = _parser().parse_args(["privacy", "scrub", str(f)])
    out = io.StringIO()
    assert args.func(args, out) == 0
    assert out.getvalue().splitlines() == ["Call <PERSON> at <PHONE>.", "Nothing here."]
    args = _parser().parse_args(["privacy", "scrub", str(f), "--spans"])
    out = io.StringIO()
    assert args.func(args, out) == 0
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert len(lines) == 2 and lines[1] == {"spans": []}
    assert {s["entity_type"] for s in lines[0]["spans"]} == {"PERSON", "PHONE_NUMBER"}
    assert all({"start", "end", "entity_type", "score"} <= set(s) for s in lines[0]["spans"])
