"""The files honour the layout contract and keep ground truth out of submissions."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict

from phmx.synth.layouts import FEEDS, LAYOUTS, PERSON_ID_FIELD
from phmx.synth.writers import WRITERS, load_writers

SUBMITTER_RE = re.compile(r"^(mcp_bluecoast|mcp_sierra|county_06\d{3}_bh|dental_medical|cair2)$")


def test_every_feed_is_written_with_exact_header(dataset):
    for feed in FEEDS:
        files = dataset.files(feed)
        assert files, f"no files for {feed}"
        layout = LAYOUTS[feed]
        for path in files:
            with path.open("rb") as fh:
                header = fh.readline().decode("utf-8").rstrip("\n")
            assert header == layout.delimiter.join(layout.fields), path.name
            assert path.suffix == layout.suffix


def test_landing_paths_submitters_and_periods(dataset):
    date_field = {"enrollment": None, "claims": "service_to", "pharmacy": "fill_date", "dental_claims": "service_date",
                  "consent_forms": "signed_at", "immunizations": "admin_date"}
    for rel in dataset.summary.files:
        parts = rel.split("/")
        if parts[0] != "landing":
            continue
        assert SUBMITTER_RE.match(parts[1]), rel
        assert re.fullmatch(r"2025-0[1-6]", parts[3]), rel
    for feed, field in date_field.items():
        if not field:
            continue
        for path in dataset.files(feed):
            period = path.parent.name
            with path.open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh, delimiter=LAYOUTS[feed].delimiter):
                    if feed == "immunizations" and period == "2025-01":
                        continue  # the first month back-loads history
                    if feed == "consent_forms" and row["status"] == "revoked":
                        assert row["revoked_at"][:7] == period
                        continue
                    assert row[field][:7] == period, (feed, path.name)


def test_no_ground_truth_in_submissions(dataset):
    truth_cols = {"person_id", "household_id", "twin_of"}
    pid = re.compile(r"\bP\d{9}\b")
    hh = re.compile(r"\bH\d{11}\b")
    for path in dataset.files():
        text = path.read_text(encoding="utf-8")
        header = set(re.split(r"[|,]", text.split("\n", 1)[0]))
        assert not header & truth_cols, path.name
        assert not pid.search(text), path.name
        assert not hh.search(text), path.name


def test_ground_truth_covers_every_source_person_id(dataset):
    mapped = {(r["submitter"], r["feed"], r["source_person_id"]): r["person_id"] for r in dataset.truth("person_map.csv")}
    people = {r["person_id"] for r in dataset.truth("people.csv")}
    assert len(people) == dataset.summary.people == 6000
    used = set()
    for feed in FEEDS:
        for submitter, row in dataset.rows(feed):
            key = (submitter, feed, row[PERSON_ID_FIELD[feed]])
            assert key in mapped, (submitter, feed)
            assert mapped[key] in people
            used.add(key)
    assert used == set(mapped), "person_map lists ids that no submission uses"


def test_source_ids_are_stable_and_local(dataset):
    """One member id per (plan, person); county client numbers differ between counties."""
    per_person = defaultdict(set)
    for r in dataset.truth("person_map.csv"):
        per_person[(r["submitter"], r["feed"], r["person_id"])].add(r["source_person_id"])
    plan_ids = [ids for (sub, feed, _), ids in per_person.items() if feed == "enrollment"]
    assert all(len(ids) == 1 for ids in plan_ids)
    by_person = defaultdict(set)
    for (sub, feed, pid), ids in per_person.items():
        if feed == "mh_csi":
            by_person[pid] |= {(sub, i) for i in ids}
    for ids in by_person.values():
        assert len({i for _, i in ids}) == len(ids)


def test_registered_delimited_writer_matches_the_files(dataset):
    """Rewriting a file's rows through WRITERS[(feed, 'delimited')] gives the same bytes."""
    load_writers()
    for feed in FEEDS:
        path = dataset.files(feed)[0]
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter=LAYOUTS[feed].delimiter))
        buf = io.BytesIO()
        n = WRITERS[(feed, "delimited")](rows, buf)
        assert n == len(rows)
        assert buf.getvalue() == path.read_bytes(), feed


def test_summary_counts_match_files(dataset):
    for rel, n in dataset.summary.files.items():
        if rel.startswith("landing/"):
            header = 0 if rel.endswith(".ndjson") else 1  # FHIR NDJSON has no header line
            lines = (dataset.root / rel).read_bytes().count(b"\n") - header
            assert lines == n, rel
    assert sum(dataset.summary.rows_by_feed.values()) == dataset.summary.total_rows
    # the delimited feeds, and the adults' BMI the plans send as FHIR (phmx.synth.bmi)
    assert set(dataset.summary.rows_by_feed) == set(FEEDS) | {"fhir_patient", "fhir_observation"}
