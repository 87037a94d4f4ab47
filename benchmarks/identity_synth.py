"""silver.person-shaped records and the true person of each, straight from ``phmx synth`` files.

The identity benchmark builds its input from the synthetic landing files directly (as conform
would: the latest version of each source record with the address lines of all its versions as
``address_history``, the same field mapping as the feed specs' ``person`` targets), so it
measures linkage without depending on ingest and conform.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from phmx.synth import generate

PERSON_COLS = ["source", "source_person_id", "cin", "ssn", "given_name", "middle_name", "family_name",
               "birth_date", "sex", "address_line", "city", "state", "zip", "county_fips", "phone", "race",
               "ethnicity", "record_date", "address_history"]

# feed -> (delimiter, id column, source suffix, birth date format)
FEEDS = {
    "enrollment": ("|", "member_local_id", "", "%Y%m%d"),
    "mh_csi": (",", "client_number", ":mh", "%Y-%m-%d"),
    "sud_caloms": (",", "client_id", ":sud", "%Y-%m-%d"),
    "dental_claims": (",", "member_local_id", "", "%Y-%m-%d"),
    "immunizations": (",", "registry_patient_id", "", "%Y-%m-%d"),
}


def ensure_synth(out_dir: str | Path, members: int, seed: int = 42,
                 counties: tuple[str, ...] = ("06001", "06037", "06073", "06019"), months: int = 12,
                 workers: int = 1) -> Path:
    """Generate the synthetic files once per (members, seed, counties, months)."""
    out = Path(out_dir)
    manifest = out / "ground_truth" / "manifest.json"
    want = {"members": members, "seed": seed, "counties": list(counties), "months": months}
    if manifest.exists():
        args = json.loads(manifest.read_text())
        if all(args.get(k) == v for k, v in want.items()):
            return out
    generate(out, members=members, counties=list(counties), seed=seed, months=months, workers=workers)
    return out


def _read_feed(root: Path, submitter: str, feed: str, id_col: str) -> pd.DataFrame:
    """The latest row per source id over all of a feed's monthly files, read month by month
    (only the person columns, so a million-member population fits in memory)."""
    delim = FEEDS[feed][0]
    wanted = set(PERSON_COLS) | {id_col, "record_type", "county_code"}
    latest = pd.DataFrame()
    lines: dict[str, set[str]] = {}
    for f in sorted((root / "landing" / submitter / feed).glob("*/*")):
        df = pd.read_csv(f, sep=delim, dtype=str, keep_default_na=False, usecols=lambda c: c in wanted)
        if feed == "mh_csi":
            df = df[df["record_type"] == "C"]
        df["_period"] = f.parent.name
        if "address_line" in df.columns:
            for key, line in zip(df[id_col], df["address_line"].str.strip(), strict=True):
                if line:
                    lines.setdefault(key, set()).add(line)
        latest = pd.concat([latest, df], ignore_index=True).drop_duplicates(id_col, keep="last")
    if lines and not latest.empty:
        # As conform keeps it: every address line any version of the record carried.
        latest["address_history"] = latest[id_col].map(lambda k: "\n".join(sorted(lines.get(k, ()))) or "")
    return latest


def load_person(root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(person, truth): one row per source record, and (source, source_person_id, person_id)."""
    root = Path(root)
    frames = []
    for sub_dir in sorted((root / "landing").iterdir()):
        submitter = sub_dir.name
        for feed, (_, id_col, suffix, dob_fmt) in FEEDS.items():
            if not (sub_dir / feed).exists():
                continue
            df = _read_feed(root, submitter, feed, id_col)
            if df.empty:
                continue
            out = pd.DataFrame({"source": submitter + suffix, "source_person_id": df[id_col]})
            for c in PERSON_COLS[2:]:
                if c in df.columns:
                    out[c] = df[c]
            out["birth_date"] = pd.to_datetime(df["birth_date"], format=dob_fmt, errors="coerce").dt.date
            out["record_date"] = pd.to_datetime(df["_period"] + "-01").dt.date
            if feed == "mh_csi":
                out["county_fips"] = "06" + (df["county_code"].astype(int) * 2 - 1).astype(str).str.zfill(3)
            if feed == "sud_caloms":
                out["county_fips"] = submitter[7:12]
                out["zip"] = df["zip"].where(~df["zip"].isin(["00000", "XXXXX", "ZZZZZ"]), "")
            frames.append(out)
    person = pd.concat(frames, ignore_index=True)
    for c in PERSON_COLS:
        if c not in person.columns:
            person[c] = None
    person = person[PERSON_COLS]
    person = person.astype(object).where(person.notna() & (person != ""), None)
    pmap = pd.read_csv(root / "ground_truth" / "person_map.csv", dtype=str)
    suffix = pmap["feed"].map({"mh_csi": ":mh", "sud_caloms": ":sud"}).fillna("")
    pmap["source"] = pmap["submitter"] + suffix
    truth = pmap[["source", "source_person_id", "person_id"]].drop_duplicates(["source", "source_person_id"])
    truth = truth.merge(person[["source", "source_person_id"]], on=["source", "source_person_id"])
    return person, truth.reset_index(drop=True)
