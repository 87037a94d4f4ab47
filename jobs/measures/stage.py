"""The measures stage: silver + gold members -> gold.measure_event, gold.member_risk, gold.risk_transition.

Each measure group (FUM, FUA, FUH, ...) is computed on its own; the groups' rows are written
together with an overwrite of exactly that period's rows of those groups' measure ids
(``replaceWhere``, one commit), so rerunning a period replaces its rows and never touches another
period or measure: idempotent by construction. The stage result carries counts only (units,
denominators, numerators, rates per measure; members per risk tier and ECM flag) and the seconds
the inputs, the measure events and member risk took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from jobs.measures import config as config_mod
from jobs.measures.dental import dental
from jobs.measures.followup import discharge_followup, ed_followup
from jobs.measures.immunization import immunization
from jobs.measures.inputs import load
from jobs.measures.measurement_period import MeasurePeriod, run_years
from jobs.measures.risk import member_risk
from jobs.measures.risk_history import rolling, write_transitions
from jobs.measures.strata import finalize
from jobs.measures.wellchild import well_care_year, well_child
from phmx import lakehouse, settings
from phmx.context import RunContext, StageResult
from phmx.errors import ConfigError
from phmx.log import get_logger
from phmx.period import Period, PeriodKind
from phmx.tables import MEASURE_EVENT, MEMBER_RISK

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from jobs.measures.config import MeasuresConfig, MeasureSpec
    from jobs.measures.inputs import Inputs

log = get_logger(__name__)

STAGE = "measures"

Family = Callable[["Inputs", "MeasuresConfig", "MeasureSpec", MeasurePeriod], "DataFrame"]
FAMILIES: dict[str, Family] = {
    "ed_followup": ed_followup,
    "discharge_followup": discharge_followup,
    "dental": dental,
    "immunization": immunization,
    "well_child": well_child,
    "well_care_year": well_care_year,
}


def risk_period_of(spark: SparkSession, run_period: Period, measure_period: MeasurePeriod) -> MeasurePeriod:
    """The window member risk is computed over: the 12 months ending the run's month (a monthly run, a
    rolling period, or for ``all`` the month of the latest encounter), never year to date; a yearly
    run keeps its calendar year (the same 12 months)."""
    if run_period.kind in (PeriodKind.MONTH, PeriodKind.ROLLING_12):
        return rolling(run_period)
    if run_period.kind is PeriodKind.ALL:
        from pyspark.sql import functions as F

        from phmx.tables import ENCOUNTER

        latest = lakehouse.read(spark, ENCOUNTER).agg(F.max("service_date")).collect()[0][0]
        if latest is not None:
            return rolling(Period.month_of(latest))
    return measure_period


def risk_windows(run_period: Period, risk_period: MeasurePeriod) -> list[MeasurePeriod]:
    """The risk windows a run writes: its own, and for a run at ``all`` also the rolling windows of the
    ``PHMX_RISK_HISTORY_MONTHS - 1`` months before it, oldest first, so a rebuild can hold the tier
    history (and the transitions) that month-by-month runs build one month at a time."""
    months = settings.load().risk_history_months
    if run_period.kind is not PeriodKind.ALL or months <= 1 or not risk_period.label.startswith("R12-"):
        return [risk_period]
    last = Period.parse(risk_period.label[4:], allowed=frozenset({PeriodKind.MONTH}), what="risk month")
    index = last.year * 12 + (last.number or 1) - 1
    return [rolling(Period(PeriodKind.MONTH, i // 12, i % 12 + 1)) for i in range(index - months + 1, index + 1)]


def with_year_ends(windows: list[MeasurePeriod], earlier: list[MeasurePeriod]) -> list[MeasurePeriod]:
    """``windows`` and the year-end rolling window (``R12-YYYY-12``) of each earlier measurement
    year the run recomputes, oldest first: the year's risk-tier indicators read its latest window
    (jobs.indicators.cube), so a run-out month restates December's tiers with the claims that came
    late, and a rebuild holds the windows a hub run month by month wrote at each year's end."""
    ends = [rolling(Period(PeriodKind.MONTH, p.end.year, 12)) for p in earlier if p.label.isdigit()]
    return sorted({w.label: w for w in [*ends, *windows]}.values(), key=lambda w: w.label)


def compute_group(inputs: Inputs, cfg: MeasuresConfig, spec: MeasureSpec, period: MeasurePeriod,
                  run_id: str) -> DataFrame:
    """One measure group's gold.measure_event rows (lazy)."""
    units = FAMILIES[spec.family](inputs, cfg, spec, period)
    return finalize(units, inputs, cfg, period, run_id, spec.get("unit_labels") or ())


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(lakehouse.sql_literal(v) for v in values)


def write_groups(frames: list[DataFrame], specs: list[MeasureSpec], period: MeasurePeriod) -> None:
    """Write measure groups' rows with one ``replaceWhere`` over their period and measure ids: the
    same rows as one overwrite per group, in one Delta commit (about 8 Spark jobs on the JVM each)."""
    from functools import reduce

    ids = tuple(mid for spec in specs for mid in spec.measure_ids)
    where = f"period = {lakehouse.sql_literal(period.label)} AND measure_id IN ({_in_list(ids)})"
    lakehouse.overwrite(reduce(lambda a, b: a.unionByName(b), frames), MEASURE_EVENT, replace_where=where)


def run(spark: SparkSession, ctx: RunContext, *, groups: list[str] | None = None,
              risk: bool = True, cfg: MeasuresConfig | None = None) -> StageResult:
    """Compute and write the period's measures (all groups, or those named) and member risk.

    The shared inputs are materialised once in the ``work`` layer for the run and removed at
    the end (see phmx.lakehouse.Scratch).
    """
    scratch = lakehouse.Scratch(spark, "measures")
    try:
        return _run(spark, ctx, scratch, groups=groups, risk=risk, cfg=cfg)
    finally:
        scratch.drop()


def _run(spark: SparkSession, ctx: RunContext, scratch: lakehouse.Scratch, *, groups: list[str] | None,
         risk: bool, cfg: MeasuresConfig | None) -> StageResult:
    from pyspark.sql import functions as F

    cfg = cfg or config_mod.default()
    wanted = groups or list(cfg.measures)
    unknown = [g for g in wanted if g not in cfg.measures]
    if unknown:
        raise ConfigError(f"unknown measure group(s) {unknown}", hint=f"known: {', '.join(cfg.measures)}")
    # The run's own measurement period last; before it, any earlier year the run recomputes (a
    # monthly run in its year's run-out, a rebuild at all: measurement_period.run_years).
    periods = run_years(spark, ctx.period, fallback_year=ctx.started_at.year)
    period = periods[-1]
    t = time.perf_counter()
    inputs = load(spark, scratch)
    seconds: dict[str, float] = {"inputs": round(time.perf_counter() - t, 2)}
    specs = [cfg.measures[name] for name in wanted]
    t = time.perf_counter()
    for p in periods:
        write_groups([compute_group(inputs, cfg, spec, p, ctx.run_id) for spec in specs], specs, p)
    seconds["measure_event"] = round(time.perf_counter() - t, 2)
    log.info("measures %s written for period(s) %s in %.1f s", ", ".join(wanted), ", ".join(p.label for p in periods),
             seconds["measure_event"])
    risk_period = risk_period_of(spark, ctx.period, period)
    if risk:
        t = time.perf_counter()
        for window in with_year_ends(risk_windows(ctx.period, risk_period), periods[:-1]):
            lakehouse.overwrite(member_risk(inputs, cfg, window, ctx.run_id), MEMBER_RISK,
                                replace_where=f"period = {lakehouse.sql_literal(window.label)}")
        write_transitions(spark, ctx.run_id)
        seconds["member_risk"] = round(time.perf_counter() - t, 2)

    counts: dict[str, int | float | str] = {"period": period.label, "periods": ",".join(p.label for p in periods)}
    ids = [mid for g in wanted for mid in cfg.measures[g].measure_ids]
    written = lakehouse.read(spark, MEASURE_EVENT).where(
        (F.col("period") == period.label) & F.col("measure_id").isin(ids))
    rows = written.groupBy("measure_id").agg(
        F.count("*").alias("units"), F.sum(F.col("in_denominator").cast("int")).alias("den"),
        F.sum(F.col("in_numerator").cast("int")).alias("num")).collect()
    rates: dict[str, dict[str, float | int]] = {}
    for r in sorted(rows, key=lambda r: ids.index(r["measure_id"])):
        den, num = int(r["den"] or 0), int(r["num"] or 0)
        counts[f"{r['measure_id']}_denominator"] = den
        counts[f"{r['measure_id']}_numerator"] = num
        rates[r["measure_id"]] = {"units": int(r["units"]), "denominator": den, "numerator": num,
                                  "rate": round(num / den, 4) if den else 0.0}
    if risk:
        mr = lakehouse.read(spark, MEMBER_RISK).where(F.col("period") == risk_period.label)
        counts["member_risk_period"] = risk_period.label
        flags = ("ecm_homeless", "ecm_high_utilizer", "ecm_smi_sud")
        # Tiers and ECM flags in one engine action (one Spark job on the JVM, not two).
        agg = mr.groupBy("risk_tier").agg(F.count("*").alias("n"),
                                          *[F.sum(F.col(c).cast("int")).alias(c) for c in flags]).collect()
        for r in agg:
            counts[f"risk_{r['risk_tier']}"] = int(r["n"])
        for c in flags:
            counts[c] = sum(int(r[c] or 0) for r in agg)
    return StageResult(STAGE, counts, {"rates": rates, "seconds": seconds, "period_start": str(period.start),
                                       "period_end": str(period.end), "config_versions": cfg.versions})
