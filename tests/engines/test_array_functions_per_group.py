"""Array functions over arrays an aggregate built keep each group to its own values.

On the embedded engine (Sail 0.7.2) ``array_compact`` of such an array returns values of OTHER
groups once an aggregate emits more than one output batch (tens of thousands of groups): its
implementation reads the list's child values from position 0, ignoring the offset of a sliced list
(docs/ARCHITECTURE.md, engine gaps; docs/engine-gap-array-compact.md is the upstream report). Every
other array function the jobs apply to aggregated arrays is checked here on the same data, and the
project never calls ``array_compact`` (feed specs refuse it at load; the jobs use
``filter(..., x -> x IS NOT NULL)``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from phmx import settings

REPO = Path(__file__).resolve().parents[2]
# More groups than the aggregate's first output batch: on Sail 0.7.2 every group after the 16,384th
# got another group's values from array_compact (3,616 of 20,000), whatever the shuffle partitions.
GROUPS = 20_000


def _value(i: int) -> str | None:
    """Row i's value: two rows per group, every third row null (so arrays hold nulls)."""
    return None if i % 3 == 0 else f"v{i}"


def _own(g: int) -> list[str | None]:
    return [_value(2 * g), _value(2 * g + 1)]


def _rows_sql() -> str:
    return (f"SELECT id DIV 2 AS g, IF(id % 3 = 0, NULL, concat('v', CAST(id AS string))) AS v "
            f"FROM range({2 * GROUPS})")


def _on_sail() -> bool:
    return settings.load().engine == "sail"


def test_sail_array_compact_of_an_aggregate_returns_other_groups_values(spark):
    """The engine gap, standalone (no table, no join, no UDF). When this fails, Sail has fixed it:
    remove the gap from docs/ARCHITECTURE.md and may allow array_compact in feed specs again."""
    if not _on_sail():
        pytest.skip("the gap is the embedded engine's; JVM Spark's array_compact is right")
    got = {r.g: list(r.c) for r in spark.sql(
        f"SELECT g, array_compact(flatten(collect_list(array(v)))) AS c FROM ({_rows_sql()}) GROUP BY g").collect()}
    wrong = [g for g in range(GROUPS) if got[g] != [x for x in _own(g) if x is not None]]
    assert wrong, "Sail's array_compact now keeps each group's own values: the engine gap is fixed upstream"
    # What it gives are other groups' real values (a disclosure, not noise) and nulls it should drop.
    strangers = {x for g in wrong for x in got[g] if x is not None} - {x for g in wrong for x in _own(g)}
    assert strangers and strangers <= {_value(i) for i in range(2 * GROUPS)}


def test_array_functions_the_jobs_use_keep_each_group_to_its_own_values(spark):
    """Each form the jobs apply to an aggregate's array (labels, codes, structs; nulls present):
    jobs/measures (inputs.union_labels, immunization, risk, evidence), jobs/ecm/populations.py,
    jobs/publish (prepare, fhir_sql), conform's claims spec."""
    from jobs.measures.inputs import union_labels

    arr = "array(v, IF(g % 5 = 0, NULL, 'x'))"  # arrays with null elements, as label and code arrays have
    forms = {
        "flatten": f"flatten(collect_list({arr}))",
        "sort_distinct_flatten": f"array_sort(array_distinct(flatten(collect_list({arr}))))",
        "filter_not_null": f"filter(flatten(collect_list({arr})), x -> x IS NOT NULL)",
        "claims_dx": (f"filter(array_distinct(concat(array(min_by(v, g)), array_sort(flatten(collect_list({arr}))))), "
                      "x -> x IS NOT NULL)"),
        "collect_set": f"flatten(collect_set({arr}))",
        "structs": f"flatten(transform(collect_list(named_struct('l', {arr})), s -> s.l))",
        "transform_exists": f"transform(flatten(collect_list({arr})), x -> exists(array(x), y -> y LIKE 'v%'))",
        "array_join": f"array_join(flatten(collect_list({arr})), '|')",
        "union": f"array_union(flatten(collect_list({arr})), array('z'))",
        "slice_size": f"array(size(flatten(collect_list({arr}))), slice(flatten(collect_list({arr})), 1, 1)[0])",
    }
    sql = f"SELECT g, {', '.join(f'{e} AS {k}' for k, e in forms.items())} FROM ({_rows_sql()}) GROUP BY g"
    df = spark.sql(sql).join(
        spark.sql(f"SELECT g, array(v) AS security_labels FROM ({_rows_sql()})").groupBy("g")
        .agg(union_labels().alias("labels")), "g")
    bad: dict[str, int] = {}
    for r in df.collect():
        g = r.g
        x = None if g % 5 == 0 else "x"
        lines = [[_value(2 * g), x], [_value(2 * g + 1), x]]
        flat = [e for line in lines for e in line]
        own = [e for e in flat if e is not None]
        want = {
            "flatten": flat,
            "sort_distinct_flatten": sorted(set(own)) + ([None] if None in flat else []),
            "filter_not_null": own,
            "claims_dx": sorted(set(own)),
            "collect_set": None,  # order of a set is the engine's: compared as a multiset below
            "structs": flat,
            "transform_exists": [None if e is None else e.startswith("v") for e in flat],
            "array_join": "|".join(own),
            "union": list(dict.fromkeys([*flat, "z"])),
            "slice_size": [str(len(flat)), flat[0]],
            "labels": sorted({e for e in (_value(2 * g), _value(2 * g + 1)) if e is not None})
            + ([None] if None in (_value(2 * g), _value(2 * g + 1)) else []),
        }
        for k, w in want.items():
            got = getattr(r, k)
            if k == "collect_set":
                ok = sorted(map(str, got)) == sorted(map(str, flat))
            elif k == "claims_dx":  # min_by's pick among a group's tied rows aside: the set, no nulls
                ok = sorted(got) == w and len(got) == len(w)
            elif k == "slice_size":
                ok = [str(got[0]), got[1]] == w
            else:
                ok = (list(got) if isinstance(got, list) else got) == w
            if not ok:
                bad[k] = bad.get(k, 0) + 1
    assert not bad, f"groups given values that are not their own, per form: {bad}"


def test_no_job_or_feed_spec_calls_array_compact():
    """The jobs and the shipped feed specs drop nulls with filter(..., x -> x IS NOT NULL)."""
    hits = []
    for root in ("jobs", "phmx", "privacy", "consent", "dags", "mappings"):
        for p in (REPO / root).rglob("*"):
            if p.suffix not in {".py", ".yaml", ".yml", ".sql"} or p.name == "feedspec.py":
                continue
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if re.search(r"\barray_compact\s*\(", code, re.IGNORECASE):
                    hits.append(f"{p.relative_to(REPO)}:{n}")
    assert not hits, f"array_compact called at {hits} (use filter(..., x -> x IS NOT NULL))"


def test_a_feed_spec_calling_array_compact_is_refused_at_load(tmp_path):
    import yaml

    from phmx.errors import SpecError
    from phmx.feedspec import load_spec_file

    src = REPO / "mappings" / "feeds" / "mh_csi.yaml"
    doc = yaml.safe_load(src.read_text(encoding="utf-8"))
    target = next(iter(doc["targets"]))
    column = next(iter(doc["targets"][target]["columns"]))
    doc["targets"][target]["columns"][column] = "array_compact(collect_list(diagnosis))"
    bad = tmp_path / "mh_csi.yaml"
    bad.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_spec_file(str(bad))
    msg = str(err.value)
    assert f"targets.{target}.columns.{column}" in msg and "filter(" in msg and "mh_csi.yaml" in msg
