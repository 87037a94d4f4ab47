"""What every stage receives (a run context) and returns (a stage result)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from phmx import settings as settings_mod
from phmx.period import RUN_KINDS, Period, PeriodKind


@dataclass(frozen=True)
class RunContext:
    """One pipeline run: its id, the reporting period and settings.

    ``period`` is parsed here, once, for every stage (:class:`phmx.period.Period`: ``all``,
    ``YYYY``, ``YYYY-MM`` or ``R12-YYYY-MM``); a label given as text is parsed when the context is
    made, so a bad ``--period`` fails before any stage runs. ``run_id`` is deterministic when
    given (Airflow passes its run id), so re-running the same period with the same id produces
    identical tables.
    """

    run_id: str
    period: Period = Period(PeriodKind.ALL)
    settings: settings_mod.Settings = field(default_factory=settings_mod.load)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not isinstance(self.period, Period):  # text from a CLI, a DAG param or a test
            object.__setattr__(self, "period", Period.parse(self.period, allowed=RUN_KINDS, what="run period"))
        elif self.period.kind not in RUN_KINDS:
            Period.parse(self.period, allowed=RUN_KINDS, what="run period")

    @classmethod
    def new(cls, period: str | Period = "all", run_id: str | None = None) -> RunContext:
        parsed = Period.parse(period, allowed=RUN_KINDS, what="run period")
        return cls(run_id=run_id or f"run-{uuid.uuid4().hex[:12]}", period=parsed)


@dataclass
class StageResult:
    """What a stage did, in counts only (no PHI): printed in run summaries, pushed to XCom."""

    stage: str
    counts: dict[str, int | float | str] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str, sort_keys=True)
