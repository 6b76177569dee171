"""Event payloads of backtest jobs (``backtest.jobs.v1``) and their outcomes
(``backtest.events.v1``), registered in `algotrade.events.default_registry` on import.

``backtest.requested`` is the work item: one per single backtest, one per chunk of a sweep
(combinations ``[first, last)``), keyed ``<job id>:<chunk>`` so a sweep's chunks spread over
partitions and therefore over workers. The other types are keyed by job id.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from algotrade.events import default_registry

JobKind = Literal["backtest", "sweep"]

REQUESTED = "backtest.requested"
PROGRESS = "backtest.progress"
COMPLETED = "backtest.completed"
FAILED = "backtest.failed"
CANCELLED = "backtest.cancelled"


@default_registry.register(REQUESTED)
class BacktestRequested(BaseModel):
    """Run job ``job_id`` (a sweep: only combinations ``[first, last)``, chunk ``chunk``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str = Field(min_length=26, max_length=26)
    kind: JobKind
    chunk: int = Field(default=0, ge=0)
    chunks: int = Field(default=1, ge=1)
    first: int = Field(default=0, ge=0)
    last: int = Field(default=0, ge=0)


@default_registry.register(PROGRESS)
class BacktestProgress(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    kind: JobKind
    progress: float = Field(ge=0, le=1)
    chunks_done: int
    chunks_total: int


@default_registry.register(COMPLETED)
class BacktestCompleted(BaseModel):
    """A finished job; ``summary`` holds the metrics (a sweep: the best combination's)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    kind: JobKind
    strategy_id: str | None
    strategy_version: int | None = None
    plan_id: str | None = None
    symbol: str
    timeframe: str
    results_prefix: str
    summary: dict[str, Any]


@default_registry.register(FAILED)
class BacktestFailed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    kind: JobKind
    error: str


@default_registry.register(CANCELLED)
class BacktestCancelled(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    kind: JobKind
