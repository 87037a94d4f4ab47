"""``phmx privacy check`` and ``phmx privacy keys`` through a tiny parser (the integrator wires phmx.cli)."""

from __future__ import annotations

import argparse
import io

import pandas as pd
import pytest

from phmx.errors import PrivacyError
from privacy.cli import register


def _run(argv: list[str]) -> tuple[int, str]:
    ap = argparse.ArgumentParser(prog="phmx")
    register(ap.add_subparsers(dest="command"))
    args = ap.parse_args(argv)
    out = io.StringIO()
    code = args.handler(args, out)
    return code, out.getvalue()


def test_check_clean_and_dirty_files(tmp_path):
    clean = tmp_path / "clean.csv"
    pd.DataFrame({"person": ["v1." + "b" * 40], "zip3": ["958"], "cpt": ["99213"]}).to_csv(clean, index=False)
    code, out = _run(["privacy", "check", str(clean), "--code-columns", "cpt"])
    assert code == 0 and "0 identifier finding(s)" in out
    dirty = tmp_path / "dirty.parquet"
    pd.DataFrame({"note": ["SSN 123-45-6789", "ok"], "zip": ["95823", "958"]}).to_parquet(dirty)
    with pytest.raises(PrivacyError, match="failed the Safe Harbor check") as err:
        _run(["privacy", "check", str(dirty)])
    assert err.value.exit_code == 70 and "6789" not in str(err.value)


def test_check_json_lists_findings_without_values(tmp_path):
    dirty = tmp_path / "dirty.csv"
    pd.DataFrame({"note": ["call 559-555-0134"]}).to_csv(dirty, index=False)
    ap = argparse.ArgumentParser(prog="phmx")
    register(ap.add_subparsers(dest="command"))
    args = ap.parse_args(["privacy", "check", str(dirty), "--json"])
    out = io.StringIO()
    with pytest.raises(PrivacyError):
        args.handler(args, out)
    assert '"identifier": "phone"' in out.getvalue() and "0134" not in out.getvalue()


def test_keys_rotate_and_status(provider, phmx_home):
    from privacy.crypto import DataKeyRing

    DataKeyRing.for_table("silver.person", provider).current_id()
    code, out = _run(["privacy", "keys", "rotate", "--rewrap"])
    assert code == 0 and "current version 2" in out and "re-wrapped 1 data key" in out
    code, out = _run(["privacy", "keys", "status"])
    assert "master key versions: 1, 2 (current 2)" in out and "silver.person: 1" in out
    key_text = (phmx_home / "keys" / "master-v1.key").read_text().strip()
    assert key_text not in out
