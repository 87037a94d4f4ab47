"""The one input the full-run ECM truth shares with the stages: the rolling risk tiers (gold.member_risk).

The measures stage's points model is tested on its own (tests/measures/test_risk*.py); here its tiers
are read back and keyed by the generator's person id, so phmx.synth.ecm_truth can match the
comparison group on them. A member is tied to its person through its plan enrollment records (the
identity stage's crosswalk, checked here to put exactly one person behind each tiered member).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from phmx import lakehouse


def tiers_from_lakehouse(spark, root: str | Path) -> dict[tuple[str, str], tuple[str, str]]:  # noqa: ANN001
    """(person_id, YYYY-MM the 12 months end) -> (plan_id, risk_tier) of every R12 row of gold.member_risk
    whose member has plan enrollment (a member without any is never covered, so in no comparison group)."""
    with (Path(root) / "ground_truth" / "person_map.csv").open(encoding="utf-8", newline="") as fh:
        enrolled = {(r["submitter"], r["source_person_id"]): r["person_id"] for r in csv.DictReader(fh)
                    if r["feed"] == "enrollment"}
    persons: dict[str, set[str]] = defaultdict(set)
    for r in lakehouse.read(spark, "gold.member_xwalk").select("source", "source_person_id", "member_id").collect():
        pid = enrolled.get((r.source, r.source_person_id))
        if pid is not None:
            persons[r.member_id].add(pid)
    members: dict[str, set[str]] = defaultdict(set)
    for mid, pids in persons.items():
        for pid in pids:
            members[pid].add(mid)
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for r in lakehouse.read(spark, "gold.member_risk").where("period LIKE 'R12-%'").select(
            "member_id", "period", "plan_id", "risk_tier").collect():
        pids = persons.get(r.member_id, set())
        if not pids:
            continue  # no plan enrollment (a county or dental record only): never covered, so in no comparison
        assert len(pids) == 1, f"a tiered member stands for {len(pids)} persons of the generator"
        (pid,) = pids
        assert members[pid] == {r.member_id}, "a person of the generator split over several members"
        out[(pid, r.period[4:])] = (r.plan_id, r.risk_tier)
    return out
