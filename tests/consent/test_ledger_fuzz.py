"""``phmx audit verify`` on damaged ledgers: every single-byte flip of a small ledger's files gives
exit 50 (with the damage located) or a clean pass (the byte did not matter), never a traceback.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import cli, ledger
from phmx import lakehouse
from phmx.tables import DISCLOSURE_MEMBER


@pytest.fixture
def small_ledger(phmx_home):
    from privacy.keys import reset_provider_cache

    reset_provider_cache()
    members = pa.table({"member_id": ["m1", "m2"], "data_class": ["SUD", "MH"],
                        "rule_ids": [["PART2-2.31-WRITTEN-CONSENT"], ["WIC-5328-TREAT"]],
                        "consent_ids": [["c1"], []]})
    ledger.append([ledger.NewEntry("disclosure", "r1", {"recipient": "mcp_alpha", "purpose": "TREAT",
                                                        "disclosed_at": "2025-06-01T12:00:00.000000Z", "files": []})],
                  members={0: members})
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    args = parser.parse_args(["audit", "verify"])
    assert args.func(args) == 0
    return args


def _targets() -> list[Path]:
    led = Path(ledger.ledger_path())
    mem = Path(lakehouse.table_path(DISCLOSURE_MEMBER))
    return [*sorted(led.glob("*.parquet")), *sorted(led.glob("_delta_log/*.json")), *sorted(mem.glob("*.parquet"))]


def _verify_rc(args: argparse.Namespace, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = args.func(args)
    out = capsys.readouterr().out
    return rc, out


@pytest.mark.slow
def test_every_byte_of_the_ledger_file_flipped(small_ledger, capsys):
    target = next(p for p in _targets() if p.suffix == ".parquet")
    original = target.read_bytes()
    outcomes = {0: 0, 50: 0}
    try:
        for i in range(len(original)):
            data = bytearray(original)
            data[i] ^= 0xFF
            target.write_bytes(bytes(data))
            rc, out = _verify_rc(small_ledger, capsys)
            assert rc in (0, 50), f"byte {i}: exit {rc}"
            if rc == 50:
                assert "FAILED" in out and ("seq" in out or "file" in out), f"byte {i}: no location"
            outcomes[rc] += 1
    finally:
        target.write_bytes(original)
    assert outcomes[50] > 0
    assert _verify_rc(small_ledger, capsys)[0] == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(min_value=0, max_value=100), pos=st.integers(min_value=0), mask=st.integers(1, 255))
def test_random_damage_anywhere_in_the_ledger(small_ledger, capsys, which, pos, mask):
    targets = _targets()
    target = targets[which % len(targets)]
    original = target.read_bytes()
    data = bytearray(original)
    data[pos % len(data)] ^= mask
    target.write_bytes(bytes(data))
    try:
        rc, _ = _verify_rc(small_ledger, capsys)
        assert rc in (0, 50)
    finally:
        target.write_bytes(original)


def test_truncated_and_emptied_files(small_ledger, capsys):
    for target in _targets():
        original = target.read_bytes()
        for damaged in (b"", original[: len(original) // 2], b"\x00" * len(original)):
            target.write_bytes(damaged)
            try:
                rc, out = _verify_rc(small_ledger, capsys)
                assert rc == 50, target.name
                assert "FAILED" in out
            finally:
                target.write_bytes(original)


def test_missing_and_empty_ledger_fail_clearly(phmx_home, capsys):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.register(sub)
    args = parser.parse_args(["audit", "verify"])
    rc, out = _verify_rc(args, capsys)
    assert rc == 50 and "no ledger" in out and "OK" not in out
    from phmx.tables import LEDGER

    empty = LEDGER.arrow_schema.empty_table()
    lakehouse.append_arrow(ledger.ledger_path(), empty)
    rc, out = _verify_rc(args, capsys)
    assert rc == 50 and "holds no entries" in out


def test_verify_prints_the_head_to_keep(small_ledger, capsys):
    head = ledger.read_head()
    rc, out = _verify_rc(small_ledger, capsys)
    assert rc == 0 and f"head: {head.seq}:{head.entry_hash}" in out


def test_verify_outside_the_demo_hub_says_where_it_is(phmx_home, tmp_path, monkeypatch, capsys):
    # After `make demo` the hub is in var/demo; verify run with the default home finds no ledger and
    # says how to look at the demo's (issue 16, found 8).
    demo = tmp_path / "demo"
    (demo / "lakehouse" / "audit" / "ledger").mkdir(parents=True)
    monkeypatch.setenv("PHMX_DEMO_HOME", str(demo))
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    rc, out = _verify_rc(parser.parse_args(["audit", "verify"]), capsys)
    assert rc == 50 and "no ledger" in out
    assert f"export PHMX_HOME={demo.resolve()}" in " ".join(out.split())
    monkeypatch.setenv("PHMX_HOME", str(demo))  # looking at the demo's hub itself: no hint
    rc, out = _verify_rc(parser.parse_args(["audit", "verify"]), capsys)
    assert "export PHMX_HOME" not in out
