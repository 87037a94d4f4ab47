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
    code = args.func(args, out)
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
        args.func(args, out)
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


def _feed(rows: list[tuple[str, int | None, int]]) -> pd.DataFrame:
    return pd.DataFrame([{"lhj": "Alameda", "measure_id": "WCV", "period": p, "stratifier": "all", "stratum": "all",
                          "numerator": n, "denominator": d, "rate": None, "ci_low": None, "ci_high": None,
                          "annotation": "1" if n is None else None} for p, n, d in rows]).astype(
        {"numerator": "Int64", "denominator": "Int64"})


def test_attack_knows_the_calendar_without_a_spec(tmp_path):
    """A recipient runs `phmx privacy attack measures.csv` with no spec: the year is the sum of
    its quarters (and a quarter of its months), so a suppressed quarter next to a published year
    and three published quarters is recovered, and the audit says so."""
    from privacy.attack import audit
    from privacy.cell_relations import infer_period_rollups
    from privacy.suppression import with_calendar

    leaky = _feed([("2025", 41, 80), ("2025-Q1", None, 20), ("2025-Q2", 12, 20), ("2025-Q3", 12, 20),
                   ("2025-Q4", 12, 20)])
    assert infer_period_rollups(leaky) == {"2025": ("2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4")}
    assert audit(leaky).ok  # without the calendar the quarter looks safe: [0, 20]
    report = audit(leaky, with_calendar(leaky))
    assert not report.ok and report.failures[0]["period"] == "2025-Q1"
    path = tmp_path / "measures.csv"
    leaky.to_csv(path, index=False)
    with pytest.raises(PrivacyError, match="bounded too tightly") as err:
        _run(["privacy", "attack", str(path)])
    assert err.value.exit_code == 70
    safe = _feed([("2025", None, 80), ("2025-Q1", None, 20), ("2025-Q2", 12, 20), ("2025-Q3", None, 20),
                  ("2025-Q4", 12, 20)])
    safe.to_csv(path, index=False)
    code, out = _run(["privacy", "attack", str(path)])
    assert code == 0 and "0 boundable" in out
