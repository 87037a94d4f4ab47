"""What every stage receives (a run context) and returns (a stage result)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from phmx import settings as settings_mod


@dataclass(frozen=True)
class RunContext:
    """One pipeline run: its id, the reporting period (YYYY-MM, or ``all``), and settings.

    ``run_id`` is deterministic when given (Airflow passes its run id), so re-running the same
    period with the same id produces identical tables.
    """

    run_id: str
    period: str = "all"
    settings: settings_mod.Settings = field(default_factory=settings_mod.load)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def new(cls, period: str = "all", run_id: str | None = None) -> RunContext:
        return cls(run_id=run_id or f"run-{uuid.uuid4().hex[:12]}", period=period)


@dataclass
class StageResult:
    """What a stage did, in counts only (no PHI): printed in run summaries, pushed to XCom."""

    stage: str
    counts: dict[str, int | float | str] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str, sort_keys=True)
