"""ECM populations of focus from the hub's data: mappings/ecm/populations.yaml -> gold.ecm_population_flag.

For each rolling-12-month risk period (``R12-YYYY-MM`` rows of gold.member_risk), one row per
member and population whose rule holds, with the evidence and its security labels. The rules read
the risk row (homelessness, SMI, SUD, utilisation), the member's age and race category, and
ICD-10-CM diagnoses on claims and encounters in the 12 months ending ``as_of``; what each rule
can and cannot show is written beside it in the YAML, with the DHCS source.

The plan's own authorization also names populations of focus (silver.ecm_assignment); this table
is the hub's independent view, so a plan can see members its data show but it has not assigned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from phmx import lakehouse
from phmx.errors import SpecError
from phmx.log import get_logger
from phmx.tables import ECM_POPULATION_FLAG, ENCOUNTER, MEMBER, MEMBER_RISK, MEMBER_XWALK

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = get_logger(__name__)

POPULATIONS_FILE = Path(__file__).resolve().parents[2] / "mappings" / "ecm" / "populations.yaml"
VALUESET_FILE = Path(__file__).resolve().parents[2] / "mappings" / "valuesets" / "ecm_population_of_focus.yaml"
RISK_EVIDENCE = "risk"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Population:
    code: str
    rule: str
    evidence: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class PopulationsConfig:
    version: str
    lookback_months: int
    diagnoses: dict[str, str]  # name -> regex over dot-less ICD-10-CM codes
    populations: tuple[Population, ...]


def population_displays() -> dict[str, str]:
    """Population-of-focus code -> its description (value set ecm_population_of_focus)."""
    try:
        doc = yaml.safe_load(VALUESET_FILE.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read {VALUESET_FILE}: {type(exc).__name__}", hint=f"fix {VALUESET_FILE}") from exc
    return {str(k): str(v) for k, v in (doc.get("codes") or {}).items()}


def load(path: Path = POPULATIONS_FILE) -> PopulationsConfig:
    """Read and check the YAML (SpecError naming the file and the entry at fault)."""
    try:
        doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read {path}: {type(exc).__name__}", hint=f"fix {path}") from exc
    known = set(population_displays())
    dx: dict[str, str] = {}
    for name, d in (doc.get("diagnoses") or {}).items():
        if not _NAME.match(str(name)) or not isinstance(d, dict) or not d.get("regex") or not d.get("source"):
            raise SpecError(f"{path.name}: diagnoses.{name} needs a lower-case name, a regex and a source",
                            hint=f"edit {path}")
        try:
            re.compile(str(d["regex"]))
        except re.error as exc:
            raise SpecError(f"{path.name}: diagnoses.{name}.regex does not compile: {exc}", hint=f"edit {path}") from exc
        dx[str(name)] = str(d["regex"])
    pops = []
    for i, p in enumerate(doc.get("populations") or []):
        code = str(p.get("code", ""))
        if code not in known:
            raise SpecError(f"{path.name}: populations[{i}].code {code!r} is not in value set ecm_population_of_focus",
                            hint=f"use one of {sorted(known)}")
        ev = tuple(str(e) for e in p.get("evidence") or [])
        bad = [e for e in ev if e != RISK_EVIDENCE and e not in dx]
        if not ev or bad or not p.get("rule") or not p.get("source"):
            raise SpecError(f"{path.name}: population {code} needs a rule, a source and evidence from "
                            f"'{RISK_EVIDENCE}' or the diagnoses (unknown: {bad})", hint=f"edit {path}")
        pops.append(Population(code, str(p["rule"]), ev, str(p["source"])))
    if len({p.code for p in pops}) != len(pops):
        raise SpecError(f"{path.name}: a population code is listed twice", hint=f"edit {path}")
    return PopulationsConfig(str(doc.get("version", "")), int(doc.get("lookback_months", 12)), dx, tuple(pops))


def diagnosis_hits(spark: SparkSession, cfg: PopulationsConfig) -> DataFrame:
    """The claims and encounters with a diagnosis some population reads: (member_id, d, ``_l_<name>``:
    the row's security labels where it matches diagnosis set ``name``, else null). A small share of all
    encounters, so :func:`write` keeps it once for all the periods it flags."""
    from pyspark.sql import functions as F

    enc = (lakehouse.read(spark, ENCOUNTER)
           .join(lakehouse.read(spark, MEMBER_XWALK).select("source", "source_person_id", "member_id"),
                 ["source", "source_person_id"])
           .select("member_id", F.coalesce("service_date", "admit_date").alias("d"), "diagnosis_codes",
                   F.coalesce("security_labels", F.array().cast("array<string>")).alias("security_labels")))
    hits = enc.select("member_id", "d", *[
        F.when(F.concat_ws(",", "diagnosis_codes").rlike(rx), F.col("security_labels")).alias(f"_l_{n}")
        for n, rx in cfg.diagnoses.items()])
    return hits.where(" OR ".join(f"_l_{n} IS NOT NULL" for n in cfg.diagnoses))


def flags(spark: SparkSession, periods: list[str], run_id: str, cfg: PopulationsConfig | None = None,
          hits: DataFrame | None = None) -> DataFrame:
    """gold.ecm_population_flag rows for ``R12-YYYY-MM`` periods of gold.member_risk, all in one pass
    (``hits``: the :func:`diagnosis_hits` frame, computed here when not given)."""
    from pyspark.sql import functions as F

    from jobs.measures.config import load as measures_config
    from jobs.measures.strata import race_ethnicity, sensitivity_of

    cfg = cfg or load()
    risk = lakehouse.read(spark, MEMBER_RISK).where(F.col("period").isin(periods))
    member = lakehouse.read(spark, MEMBER).select("member_id", "birth_date", "race", "ethnicity")
    base = risk.join(member, "member_id", "left").select(
        "member_id", "period", "as_of", "homeless", "smi", "sud", "ecm_high_utilizer", "ed_visits", "unplanned_admissions",
        F.coalesce("security_labels", F.array().cast("array<string>")).alias("_labels_risk"),
        F.floor(F.months_between("as_of", "birth_date") / 12).cast("int").alias("age"),
        race_ethnicity(measures_config().race, F.col("race"), F.col("ethnicity")).alias("race_ethnicity"))
    if cfg.diagnoses:
        if hits is None:
            hits = diagnosis_hits(spark, cfg)
        # each period's diagnoses: the lookback months ending its as_of
        hits = hits.join(base.select("member_id", "period", "as_of"), "member_id").where(
            (F.col("d") <= F.col("as_of")) & (F.col("d") > F.add_months(F.col("as_of"), -cfg.lookback_months)))
        per = hits.groupBy("member_id", "period").agg(*[
            F.array_sort(F.array_distinct(F.flatten(F.collect_list(f"_l_{n}")))).alias(f"_labels_{n}")
            for n in cfg.diagnoses] + [F.max(F.col(f"_l_{n}").isNotNull().cast("int")).alias(f"dx_{n}")
                                       for n in cfg.diagnoses])
        base = base.join(per, ["member_id", "period"], "left")
        for n in cfg.diagnoses:
            base = base.withColumn(f"dx_{n}", F.coalesce(F.col(f"dx_{n}") == 1, F.lit(False)))
    rows = None
    for p in cfg.populations:
        labels = F.array().cast("array<string>")
        for e in p.evidence:
            labels = F.array_union(labels, F.coalesce(F.col(f"_labels_{e}"), F.array().cast("array<string>")))
        one = base.where(F.coalesce(F.expr(p.rule), F.lit(False))).select(
            "member_id", "period", "as_of", F.lit(p.code).alias("population"),
            F.lit(", ".join(p.evidence)).alias("evidence"), F.array_sort(labels).alias("security_labels"))
        rows = one if rows is None else rows.unionByName(one)
    if rows is None:
        return spark.createDataFrame([], ECM_POPULATION_FLAG.ddl)
    rows = rows.select("*", sensitivity_of(F.col("security_labels"), F.lit("general")).alias("sensitivity"),
                       F.lit(run_id).alias("run_id"))
    return lakehouse.conform_to(rows, ECM_POPULATION_FLAG)


def write(spark: SparkSession, run_id: str, periods: list[str] | None = None) -> int:
    """Compute and store the flags for ``periods`` (default: every R12 period of gold.member_risk
    not yet flagged, and the latest one again); rows of other periods are kept. Returns rows written."""
    from pyspark.sql import functions as F

    if not lakehouse.exists(MEMBER_RISK):
        return 0
    cfg = load()
    have = sorted(r[0] for r in lakehouse.read(spark, MEMBER_RISK).where(F.col("period").startswith("R12-"))
                  .select("period").distinct().collect())
    if periods is None:
        done = set()
        if lakehouse.exists(ECM_POPULATION_FLAG):
            done = {r[0] for r in lakehouse.read(spark, ECM_POPULATION_FLAG).select("period").distinct().collect()}
        periods = sorted({p for p in have if p not in done} | set(have[-1:]))
    if not periods:
        return 0
    # one pass and one commit for all the periods (a first run over all data flags a dozen)
    with lakehouse.Scratch(spark, "ecm_pof") as scratch:
        hits = scratch.put(diagnosis_hits(spark, cfg), "dx_hits") if cfg.diagnoses else None
        where = "period IN (" + ", ".join(lakehouse.sql_literal(p) for p in periods) + ")"
        lakehouse.overwrite(flags(spark, periods, run_id, cfg, hits), ECM_POPULATION_FLAG, replace_where=where)
    total = int(lakehouse.read(spark, ECM_POPULATION_FLAG).where(F.col("period").isin(periods)).count())
    log.info("ecm populations of focus flagged for %d period(s): %d rows", len(periods), total)
    return total

