"""The ECM metric definitions (mappings/ecm/metrics.yaml), validated on load.

A metric is data: the frame it aggregates, an optional filter and month expression, Spark SQL
aggregates for its numerator and denominator (or another metric as denominator), and an optional
split by a value set's codes. Errors name the file and the key (``metrics[3].frame``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from phmx.errors import SpecError
from phmx.feedspec import load_valueset

METRICS_FILE = Path(__file__).resolve().parents[2] / "mappings" / "ecm" / "metrics.yaml"
FRAMES = ("member_month", "assignment", "outreach", "service", "referral", "discharge", "screen")
FAMILIES = ("process", "clinical", "quality", "financial")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitBy(_Strict):
    """Repeat a metric for every code of a value set (zeros included), e.g. outreach by method."""

    column: str
    valueset: str
    exclude: tuple[str, ...] = ()

    @property
    def codes(self) -> list[str]:
        return sorted(load_valueset(self.valueset).codes - set(self.exclude))


class Metric(_Strict):
    id: str
    family: str
    title: str
    frame: str
    numerator: str
    denominator: str | None = None
    denominator_metric: str | None = None
    where: str | None = None
    month: str | None = None
    by: SplitBy | None = None
    #: value = numerator / denominator x scale (1000: per 1,000 member-months).
    scale: float = 1.0
    #: Whether a higher or a lower value is better (gsd_poor_control: lower); contracts' bonus tiers follow it.
    better: Literal["higher", "lower"] = "higher"
    #: Where the definition comes from (HEDIS MY2025, DHCS), with any simplification: shown in the guide.
    source: str = ""

    @model_validator(mode="after")
    def _check(self) -> Metric:
        if self.frame not in FRAMES:
            raise ValueError(f"frame {self.frame!r} is not one of {', '.join(FRAMES)}")
        if self.family not in FAMILIES:
            raise ValueError(f"family {self.family!r} is not one of {', '.join(FAMILIES)}")
        if self.denominator and self.denominator_metric:
            raise ValueError("give denominator or denominator_metric, not both")
        if self.scale != 1.0 and not (self.denominator or self.denominator_metric):
            raise ValueError("scale needs a denominator")
        if self.frame == "assignment" and not self.month:
            raise ValueError("an assignment-frame metric names its month (a date expression)")
        return self


class MetricsConfig(_Strict):
    version: str
    metrics: tuple[Metric, ...]

    def get(self, metric_id: str) -> Metric:
        for m in self.metrics:
            if m.id == metric_id:
                return m
        raise KeyError(metric_id)


@lru_cache(maxsize=4)
def load(path: str = str(METRICS_FILE)) -> MetricsConfig:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        cfg = MetricsConfig.model_validate(doc)
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"{p.name}: cannot read: {exc}", hint=f"edit {p}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"]).lstrip(".")
        raise SpecError(f"{p.name}: {loc or '(root)'}: {err['msg']}", hint=f"edit {p}") from None
    ids = [m.id for m in cfg.metrics]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise SpecError(f"{p.name}: metrics: duplicate ids {dupes}", hint=f"edit {p}")
    for i, m in enumerate(cfg.metrics):
        if m.denominator_metric and m.denominator_metric not in ids[:i]:
            raise SpecError(f"{p.name}: metrics[{i}].denominator_metric: {m.denominator_metric!r} must be a metric "
                            "defined above it", hint=f"edit {p}")
        if m.by:
            try:
                load_valueset(m.by.valueset)
            except SpecError as exc:
                raise SpecError(f"{p.name}: metrics[{i}].by.valueset: {exc}", hint=f"edit {p}") from None
    return cfg
