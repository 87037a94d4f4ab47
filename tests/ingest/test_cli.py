"""``phmx validate`` (offline, exit codes, JSON) and ``phmx submissions`` (history with statuses)."""

from __future__ import annotations

import argparse
import json

import pytest

from jobs import ingest
from jobs.ingest.cli import EXIT_ACCEPTED_WITH_ERRORS, register
from phmx.context import RunContext
from phmx.errors import ConfigError, ValidationFailed
from tests.ingest.helpers import land
from tests.ingest.test_ingest_delimited import HEADER, enrollment_row


def phmx(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="phmx")
    register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text(HEADER + "\n" + enrollment_row(1) + "\n")
    partial = tmp_path / "partial.txt"
    partial.write_text(HEADER + "\n" + enrollment_row(1) + "\n" + enrollment_row(2, birth_date="19801399") + "\n")
    bad = tmp_path / "bad.txt"
    bad.write_text(HEADER.replace("|", ",") + "\n" + enrollment_row(1).replace("|", ",") + "\n")
    return good, partial, bad


def test_exit_codes_follow_the_verdict(files, capsys):
    good, partial, bad = files
    assert phmx("validate", str(good), "--feed", "enrollment") == 0
    assert phmx("validate", str(partial), "--feed", "enrollment") == EXIT_ACCEPTED_WITH_ERRORS == 21
    assert phmx("validate", str(bad), "--feed", "enrollment") == ValidationFailed.exit_code == 20
    out = capsys.readouterr().out
    assert "accepted_with_errors" in out and "wrong_delimiter" in out and "birth_date" in out
    assert "19801399" not in out


def test_json_output_is_the_receipt_with_the_exit_code(files, capsys):
    _, partial, _ = files
    code = phmx("validate", str(partial), "--feed", "enrollment", "--submitter", "mcp_bluecoast", "--period",
                "2025-01", "--json")
    doc = json.loads(capsys.readouterr().out)
    assert code == doc["exit_code"] == 21
    assert doc["status"] == "accepted_with_errors" and doc["rows_landed"] == 2
    assert doc["errors"][0]["rule_id"] == "format" and doc["errors"][0]["rows"] == [3]
    assert "19801399" not in json.dumps(doc)


def test_wrong_submitter_feed_or_period_are_user_errors(files, capsys):
    good, _, _ = files
    assert phmx("validate", str(good), "--feed", "enrollment", "--submitter", "cair2") == 20
    assert "unknown_submitter" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="unknown feed"):
        phmx("validate", str(good), "--feed", "nope")
    with pytest.raises(ConfigError, match="YYYY-MM"):
        phmx("validate", str(good), "--feed", "enrollment", "--period", "2025-13")


def test_coverage_check_is_reported_as_skipped_offline(tmp_path, capsys):
    f = tmp_path / "c.csv"
    f.write_text("claim_id,claim_line,member_local_id,claim_type,service_from,dx1,plan_id\nA,1,M1,P,2025-01-02,F329,P1\n")
    assert phmx("validate", str(f), "--feed", "claims", "--json") == 0
    assert any("service_within_coverage not checked" in n for n in json.loads(capsys.readouterr().out)["notes"])


def test_submissions_lists_history_with_supersession(spark, phmx_home, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "240")
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v1.txt", HEADER + "\n" + enrollment_row(1) + "\n")
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-02", "feb.txt", "")
    ingest.run(spark, RunContext.new())
    land(phmx_home, "mcp_bluecoast", "enrollment", "2025-01", "v2.txt", HEADER + "\n" + enrollment_row(2) + "\n")
    ingest.run(spark, RunContext.new())
    assert phmx("submissions", "--submitter", "mcp_bluecoast", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    by_file = {r["source_file"].rsplit("/", 1)[-1]: r for r in rows}
    assert by_file["feb.txt"]["status"] == "rejected"
    assert by_file["v1.txt"]["superseded_by"] == by_file["v2.txt"]["submission_id"]
    assert by_file["v2.txt"]["supersedes"] == by_file["v1.txt"]["submission_id"]
    assert phmx("submissions", "--submitter", "mcp_bluecoast", "--period", "2025-01") == 0
    table = capsys.readouterr().out
    assert "v1.txt" in table and "v2.txt" in table and "feb.txt" not in table and "replaced by" in table
    assert phmx("submissions", "--submitter", "nobody") == 0
    assert "no submissions" in capsys.readouterr().out
