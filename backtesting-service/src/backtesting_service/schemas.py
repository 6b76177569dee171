"""Request and response models of the backtest API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from algotrade.bars import Timeframe, normalize_symbol
from algotrade.bounds import INT4_MAX as MAX_VERSION
from algotrade.metrics import RANKABLE_METRICS
from backtesting_service.backtest import BacktestConfig
from backtesting_service.backtest.sweep import SearchSpace, SweepSpec, WalkForward

JobKind = Literal["backtest", "sweep"]
JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]


class BacktestCreate(BaseModel):
    """A backtest of a stored strategy version (``strategy_id`` + ``version``) or of an inline
    ``graph``, on ``symbol``/``timeframe`` bars with open times in ``[start, end)``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    strategy_id: str | None = Field(default=None, min_length=1, max_length=100)
    version: StrictInt | None = Field(default=None, ge=1, le=MAX_VERSION)
    graph: dict[str, Any] | None = Field(default=None, description="an inline StrategyGraph")
    params: dict[str, StrictFloat] = Field(
        default_factory=dict, description="tunable values overriding the graph's defaults"
    )
    symbol: str = Field(max_length=64)
    timeframe: Timeframe
    start: datetime
    end: datetime = Field(description="exclusive")
    config: BacktestConfig = Field(default_factory=BacktestConfig)

    @field_validator("symbol")
    @classmethod
    def _normalise_symbol(cls, value: str) -> str:
        return normalize_symbol(value)

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _one_strategy_and_a_range(self) -> BacktestCreate:
        stored = self.strategy_id is not None or self.version is not None
        if stored == (self.graph is not None):
            raise ValueError("give either strategy_id and version, or an inline graph")
        if stored and (self.strategy_id is None or self.version is None):
            raise ValueError("a stored strategy needs both strategy_id and version")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class SweepCreate(BacktestCreate):
    """A sweep over the strategy's tunables; see `backtesting_service.backtest.sweep`."""

    search: SearchSpace = Field(default_factory=SearchSpace)
    metric: str = "sharpe"
    walk_forward: WalkForward | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in RANKABLE_METRICS:
            raise ValueError(f"metric must be one of {', '.join(RANKABLE_METRICS)}")
        return value

    def sweep_spec(self) -> SweepSpec:
        return SweepSpec(search=self.search, metric=self.metric, walk_forward=self.walk_forward)


class JobPublic(BaseModel):
    id: str
    kind: JobKind
    status: JobStatus
    progress: float = Field(description="0..1 (a sweep: share of chunks stored)")
    strategy_id: str | None
    version: int | None
    symbol: str
    timeframe: Timeframe
    start: datetime
    end: datetime
    plan_id: str | None = Field(
        description="the compiled plan that ran; null only for a backtest migrated from Beta1 "
        "whose strategy has no plan in Beta2 (see `summary.beta1`)"
    )
    config: dict[str, Any]
    config_id: str
    combinations: int
    chunks_total: int
    chunks_done: int
    bars: int | None
    summary: dict[str, Any] | None = Field(description="metrics (a sweep: the best and more)")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: dict[str, str]


class JobsPublic(BaseModel):
    items: list[JobPublic]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class TradePublic(BaseModel):
    entry_time: datetime
    exit_time: datetime
    side: Literal["long", "short"]
    quantity: float
    entry_price: float
    exit_price: float
    fees: float
    pnl: float
    return_pct: float
    bars_held: int
    exit_reason: str
    is_open: bool


class TradesPage(BaseModel):
    job_id: str
    total: int
    offset: int
    limit: int
    trades: list[TradePublic]


class EquityPoint(BaseModel):
    ts: datetime
    equity: float
    drawdown: float
    position: float


class EquityPublic(BaseModel):
    job_id: str
    total_points: int
    method: Literal["all", "lttb"]
    points: list[EquityPoint]


class SweepResultPublic(BaseModel):
    rank: int
    index: int
    params: dict[str, float]
    metrics: dict[str, float | int | None]
    folds: list[dict[str, Any]]


class SweepResultsPublic(BaseModel):
    job_id: str
    sort: str
    total: int
    offset: int
    limit: int
    results: list[SweepResultPublic]
