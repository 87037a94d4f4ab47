"""Compare two engine routes' outputs (the routes run with ``benchmarks.engines.run_routes``).

What is
compared is what leaves the hub or is the hub's record of a person: every Delta table of the
``gold`` layer, every published ``measures.csv`` and ``indicators.csv`` (as text: a count printed
``0.0`` on one engine and ``0`` on another is a difference) and every FHIR resource of the plan
feeds.
Set aside, because they differ by design between any two runs: clock columns (``*_at``,
timestamps, dates of the run), run ids, ciphertexts (random nonces; their ``pii_fingerprint``
is compared instead), and package manifests/signatures (they carry the clock).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

# ---- comparison --------------------------------------------------------------------------------
# gold.feed_log: where this run's home is (a path), and the hash of a manifest that carries the clock.
RUN_LOCAL = {"uri", "manifest_sha256"}


def _is_clock(name: str, dtype: object) -> bool:
    return (name == "run_id" or name.endswith("_at") or name.endswith("_run_id") or name in RUN_LOCAL
            or "datetime64" in str(dtype) or name in {"computed_on", "as_of", "decided_on"})


def gold_tables(home: Path) -> dict[str, pd.DataFrame]:
    """Every gold Delta table of a home read with delta-rs (which must be able to read it)."""
    import deltalake

    out = {}
    for log in sorted((home / "lakehouse" / "gold").glob("*/_delta_log")):
        out[log.parent.name] = deltalake.DeltaTable(str(log.parent)).to_pandas()
    return out


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Drop clock columns and ciphertexts, then sort rows on every remaining column."""
    keep = []
    for c in df.columns:
        if _is_clock(c, df[c].dtype):
            continue
        if df[c].dtype == object and df[c].astype(str).str.startswith("enc1.").any():
            continue
        keep.append(c)
    out = df[sorted(keep)].copy()
    for c in out.columns:
        if out[c].dtype.kind == "f":
            out[c] = out[c].round(9)
        out[c] = out[c].map(lambda v: json.dumps(v.tolist() if hasattr(v, "tolist") else v, sort_keys=True,
                                                 default=str))
    return out.sort_values(list(out.columns)).reset_index(drop=True)


def published(home: Path) -> dict[str, object]:
    """Every published measures.csv and indicators.csv (as rows of text) and FHIR resource (parsed,
    meta aside), by relative path."""
    root = home / "publish"
    out: dict[str, object] = {}
    for p in sorted([*root.rglob("measures.csv"), *root.rglob("indicators.csv")]):
        rel = _package_relative(p, root)
        out[rel] = pd.read_csv(p, dtype=str).fillna("").sort_values(list(pd.read_csv(p, nrows=0).columns)) \
            .reset_index(drop=True).to_dict("records")
    for p in sorted(root.rglob("*.ndjson")):
        rel = _package_relative(p, root)
        resources = [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
        for r in resources:
            r.pop("meta", None)
        out[rel] = sorted(json.dumps(r, sort_keys=True) for r in resources)
    return out


def _package_relative(p: Path, root: Path) -> str:
    """``recipient/feed/period/<file>``: the package version folder (a clock) left out."""
    parts = p.relative_to(root).parts
    return "/".join(parts[:3] + parts[-1:]) if len(parts) > 4 else "/".join(parts)


def assert_same_outputs(ref: Path, home: Path, *, set_aside: dict[str, list[str]], label: str = "") -> None:
    """Every gold table and every published measures.csv and FHIR resource of ``home`` equal
    ``ref``'s, after :func:`normalise`. ``set_aside`` names, per table, columns that differ by design
    between the two runs being compared (each caller says why)."""
    ours, theirs = gold_tables(ref), gold_tables(home)
    assert sorted(ours) == sorted(theirs) and len(ours) > 5
    for name in ours:
        drop = set_aside.get(name, [])
        pd.testing.assert_frame_equal(normalise(ours[name].drop(columns=drop)),
                                      normalise(theirs[name].drop(columns=drop)), obj=f"gold.{name}{label}")
    want, have = published(ref), published(home)
    assert any(k.endswith("measures.csv") for k in want) and any(k.endswith(".ndjson") for k in want)
    assert sorted(want) == sorted(have)
    for key in want:
        assert want[key] == have[key], key
