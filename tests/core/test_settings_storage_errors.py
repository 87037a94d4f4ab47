"""Settings, storage (local and S3) and the error family."""

from __future__ import annotations

from phmx import settings, storage
from phmx.cli import main as cli_main
from phmx.errors import ConfigError, EngineError, PhmxError, SpecError


def test_settings_default_under_home_and_env_overrides(phmx_home, monkeypatch):
    cfg = settings.load()
    assert cfg.lakehouse_root == str(phmx_home / "lakehouse")
    monkeypatch.setenv("PHMX_PUBLISH_ROOT", "s3://bucket/publish/")
    assert settings.load().publish_root == "s3://bucket/publish"
    assert settings.load().as_env()["PHMX_PUBLISH_ROOT"] == "s3://bucket/publish"


def test_storage_same_api_local_and_s3(phmx_home, s3_bucket):
    for root in (str(phmx_home / "zone"), f"s3://{s3_bucket}/zone"):
        storage.write_text(storage.join(root, "a", "b.txt"), "hello")
        storage.write_bytes(storage.join(root, "c.bin"), b"\x00\x01")
        files = [f.relpath for f in storage.list_files(root)]
        assert files == ["a/b.txt", "c.bin"]
        assert storage.read_bytes(storage.join(root, "a", "b.txt")) == b"hello"
        assert storage.exists(storage.join(root, "c.bin"))
        storage.delete_prefix(root)
        assert list(storage.list_files(root)) == []


def test_errors_have_stable_distinct_exit_codes():
    codes = [c.exit_code for c in (PhmxError, ConfigError, SpecError, EngineError)]
    assert len(set(codes)) == len(codes)
    err = EngineError("boom", stage="conform", table="silver.person", sql="SELECT 1")
    assert "stage=conform" in str(err) and "silver.person" in str(err) and "SELECT 1" in str(err)


def test_cli_tables_prints_the_contracts(capsys):
    assert cli_main(["tables"]) == 0
    assert "## silver.person" in capsys.readouterr().out


def test_every_cli_subcommand_sets_func_and_nothing_else():
    import argparse

    from phmx.cli import build_parser

    def leaves(parser: argparse.ArgumentParser, path: str):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path, parser
        for action in subs:
            for name, child in action.choices.items():
                yield from leaves(child, f"{path} {name}")

    found = list(leaves(build_parser(), "phmx"))
    assert len(found) > 15
    for path, parser in found:
        assert callable(parser.get_default("func")), path
        assert parser.get_default("handler") is None, path


def test_cli_dispatches_a_subcommand_registered_by_a_package(tmp_path, capsys):
    out = tmp_path / "synth"
    assert cli_main(["synth", "--members", "30", "--counties", "06001", "--seed", "3", "--out", str(out),
                     "--months", "1"]) == 0
    assert list((out / "landing").rglob("*.txt"))  # the plan enrollment file


def test_validate_exit_codes_are_in_the_error_family():
    from phmx.errors import ValidationFailed, ValidationPartial

    assert (ValidationFailed.exit_code, ValidationPartial.exit_code) == (20, 21)
