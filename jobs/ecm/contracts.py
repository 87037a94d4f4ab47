"""Value-based ECM contracts as data (mappings/ecm/contracts/*.yaml), validated on load.

A contract says what one plan pays its ECM providers per month: a PMPM rate per engaged member,
an outreach payment (per counted attempt or per successful attempt, capped per member and month,
optionally only before enrollment), and quality bonus tiers on named metrics of
mappings/ecm/metrics.yaml (a share of the month's PMPM amount for the highest tier met). Errors
name the file and the key.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jobs.ecm.config import MetricsConfig
from jobs.ecm.config import load as load_metrics
from phmx.errors import SpecError

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "mappings" / "ecm" / "contracts"
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Pmpm(_Strict):
    rate: float = Field(ge=0)


class Outreach(_Strict):
    basis: str
    rate: float = Field(ge=0)
    cap_per_member_month: int = Field(ge=0)
    before_enrollment_only: bool = False

    @model_validator(mode="after")
    def _basis(self) -> Outreach:
        if self.basis not in ("attempt", "successful"):
            raise ValueError("basis must be attempt or successful")
        return self


class Tier(_Strict):
    """A bonus tier: the metric's value at least ``min_value`` (higher is better) or at most ``max_value``
    (a metric where lower is better, e.g. gsd_poor_control)."""

    min_value: float | None = None
    max_value: float | None = None
    share_of_pmpm: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _one_bound(self) -> Tier:
        if (self.min_value is None) == (self.max_value is None):
            raise ValueError("a tier gives min_value or max_value (one of them)")
        return self

    @property
    def lower_is_better(self) -> bool:
        return self.max_value is not None


class QualityBonus(_Strict):
    metric: str
    min_denominator: float = Field(default=1, ge=0)
    tiers: tuple[Tier, ...]

    @model_validator(mode="after")
    def _ordered(self) -> QualityBonus:
        if not self.tiers:
            raise ValueError("a quality bonus needs at least one tier")
        if len({t.lower_is_better for t in self.tiers}) > 1:
            raise ValueError("tiers give all min_value or all max_value")
        if self.lower_is_better:
            lows = [t.max_value for t in self.tiers]
            if lows != sorted(lows):  # type: ignore[type-var]
                raise ValueError("tiers must be listed lowest max_value first (the best tier first)")
        else:
            highs = [t.min_value for t in self.tiers]
            if highs != sorted(highs, reverse=True):  # type: ignore[type-var]
                raise ValueError("tiers must be listed highest min_value first")
        return self

    @property
    def lower_is_better(self) -> bool:
        return self.tiers[0].lower_is_better


class Contract(_Strict):
    contract_id: str
    plan_id: str
    providers: str | tuple[str, ...] = "all"
    start: str
    end: str | None = None
    pmpm: Pmpm
    outreach: Outreach | None = None
    quality: tuple[QualityBonus, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> Contract:
        for key in ("start", "end"):
            v = getattr(self, key)
            if v is not None and not _MONTH.match(v):
                raise ValueError(f"{key} must be a month YYYY-MM")
        if isinstance(self.providers, str) and self.providers != "all":
            raise ValueError("providers is 'all' or a list of provider NPIs")
        return self

    def pays(self, month: str) -> bool:
        return self.start <= month and (self.end is None or month <= self.end)


def parse(doc: object, path: Path, metrics: MetricsConfig | None = None) -> Contract:
    try:
        c = Contract.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"]).lstrip(".")
        raise SpecError(f"{path.name}: {loc or '(root)'}: {err['msg']}", hint=f"edit {path}") from None
    known = {m.id: m for m in (metrics or load_metrics()).metrics}
    for i, q in enumerate(c.quality):
        if q.metric not in known:
            raise SpecError(f"{path.name}: quality[{i}].metric: {q.metric!r} is not a metric of "
                            "mappings/ecm/metrics.yaml", hint=f"edit {path}")
        lower = known[q.metric].better == "lower"
        if lower != q.lower_is_better:
            raise SpecError(f"{path.name}: quality[{i}].tiers: {q.metric!r} is better when "
                            f"{'lower' if lower else 'higher'}: give its tiers as {'max_value' if lower else 'min_value'}",
                            hint=f"edit {path}")
    return c


def load_all(folder: Path = CONTRACTS_DIR) -> list[Contract]:
    """Every contract in ``folder``; two contracts paying the same plan in the same month are refused."""
    out: list[Contract] = []
    for p in sorted(folder.glob("*.yaml")):
        try:
            doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SpecError(f"{p.name}: cannot read: {exc}", hint=f"edit {p}") from exc
        c = parse(doc, p)
        for other in out:
            if other.contract_id == c.contract_id:
                raise SpecError(f"{p.name}: contract_id {c.contract_id!r} is used twice", hint=f"edit {p}")
            if other.plan_id == c.plan_id and _overlap(other, c):
                raise SpecError(f"{p.name}: pays plan {c.plan_id} in months {other.contract_id} pays too",
                                hint=f"edit {p}")
        out.append(c)
    return out


def _overlap(a: Contract, b: Contract) -> bool:
    return (a.end is None or b.start <= a.end) and (b.end is None or a.start <= b.end)
