"""Populations of focus (mappings/ecm/populations.yaml) on hand-built members (every value made up).

Each member shows one rule, or just misses it (too old, outside the 12 months, another race), over
the rolling 12 months ending 2025-06-30 (period R12-2025-06).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

PERIOD, AS_OF = "R12-2025-06", date(2025, 6, 30)
# member, birth date, race (CDC code), risk flags, risk labels, encounters (date, dx codes)
MEMBERS = [
    ("a1", date(1985, 1, 1), "2106-3", {"homeless": True}, [], []),
    ("y1", date(2010, 1, 1), "2106-3", {"homeless": True}, [], []),
    ("h1", date(1970, 1, 1), "2106-3", {"ecm_high_utilizer": True}, [], []),
    ("s1", date(1990, 1, 1), "2106-3", {"sud": True}, ["42CFRPart2", "SUD"], []),
    ("r1", date(1990, 1, 1), "2106-3", {}, [], [(date(2025, 3, 2), ["Z652"])]),
    ("r2", date(1990, 1, 1), "2106-3", {}, [], [(date(2024, 5, 2), ["Z652"])]),  # 13 months before as_of
    ("c1", date(2008, 1, 1), "2106-3", {}, [], [(date(2025, 1, 9), ["Z6221"])]),
    ("c2", date(1980, 1, 1), "2106-3", {}, [], [(date(2025, 1, 9), ["Z6221"])]),  # 45: not a child or youth
    ("b1", date(1997, 1, 1), "2054-5", {}, [], [(date(2025, 2, 1), ["O0990", "Z3A20"])]),
    ("b2", date(1997, 1, 1), "2106-3", {}, [], [(date(2025, 2, 1), ["O0990"])]),  # not a higher-risk group
]
EXPECTED = {("a1", "HOMELESS_ADULT"), ("y1", "HOMELESS_FAMILY"), ("h1", "AVOIDABLE_UTILIZATION"),
            ("s1", "SMH_SUD"), ("r1", "REENTRY"), ("c1", "CHILD_WELFARE"), ("b1", "BIRTH_EQUITY")}


def _world(spark) -> None:  # noqa: ANN001
    from phmx import lakehouse
    from phmx.tables import ENCOUNTER, MEMBER, MEMBER_RISK, MEMBER_XWALK

    def put(rows: list[tuple], ddl: str, table) -> None:  # noqa: ANN001
        lakehouse.overwrite(lakehouse.conform_to(spark.createDataFrame(rows, ddl), table), table)

    put([(m, b, r, "2186-5") for m, b, r, *_ in MEMBERS], "member_id string, birth_date date, race string, "
        "ethnicity string", MEMBER)
    put([(m, PERIOD, AS_OF, f.get("homeless", False), f.get("sud", False), f.get("smi", False),
          f.get("ecm_high_utilizer", False), labels) for m, _, _, f, labels, _ in MEMBERS],
        "member_id string, period string, as_of date, homeless boolean, sud boolean, smi boolean, "
        "ecm_high_utilizer boolean, security_labels array<string>", MEMBER_RISK)
    put([("mcp_x", m, m) for m, *_ in MEMBERS], "source string, source_person_id string, member_id string",
        MEMBER_XWALK)
    put([("mcp_x", f"{m}-{i}", m, "OP", d, dx, []) for m, *_, encs in MEMBERS for i, (d, dx) in enumerate(encs)],
        "source string, encounter_id string, source_person_id string, setting string, service_date date, "
        "diagnosis_codes array<string>, security_labels array<string>", ENCOUNTER)


def test_each_population_on_hand_built_members(spark, phmx_home):
    from jobs.ecm import populations
    from phmx import lakehouse
    from phmx.tables import ECM_POPULATION_FLAG

    _world(spark)
    assert populations.write(spark, "r1") == len(EXPECTED)
    rows = lakehouse.read(spark, ECM_POPULATION_FLAG).collect()
    assert {(r.member_id, r.population) for r in rows} == EXPECTED
    by = {r.member_id: r for r in rows}
    assert by["s1"].security_labels == ["42CFRPart2", "SUD"] and by["s1"].sensitivity == "sud"
    assert by["r1"].evidence == "incarceration" and by["r1"].as_of == AS_OF and by["r1"].period == PERIOD
    # a re-run replaces the period's rows, never duplicates them
    assert populations.write(spark, "r2", [PERIOD]) == len(EXPECTED)


def test_a_rule_naming_an_unknown_population_or_evidence_fails_with_the_file(tmp_path):
    from jobs.ecm import populations
    from phmx.errors import SpecError

    bad = tmp_path / "populations.yaml"
    bad.write_text("version: x\npopulations:\n  - {code: NOT_A_CODE, rule: 'true', evidence: [risk], source: s}\n")
    with pytest.raises(SpecError, match="NOT_A_CODE"):
        populations.load(Path(bad))
    bad.write_text("version: x\npopulations:\n  - {code: REENTRY, rule: 'true', evidence: [jail_feed], source: s}\n")
    with pytest.raises(SpecError, match="jail_feed"):
        populations.load(Path(bad))
