"""Request and response models of the market data API.

Hot paths (the bar push, latest-N, history pages) build their JSON directly with orjson; the
models here still describe those answers in the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
)

from algotrade import epoch
from algotrade.bars import MAX_TS, MAX_TS_MS, MIN_TS, MIN_TS_MS, Timeframe, normalize_symbol

BarStatus = Literal["accepted", "duplicate", "corrected", "rejected"]


class BarPublic(BaseModel):
    ts: datetime = Field(description="open time, UTC")
    open: float
    high: float
    low: float
    close: float
    volume: float


class BarIn(BaseModel):
    """One bar of a push (documentation of the accepted shape; parsing is hand-written)."""

    symbol: str | None = Field(default=None, description="per bar, or batch-wide")
    timeframe: Timeframe | None = Field(default=None, description="per bar, or batch-wide")
    ts: datetime | Annotated[StrictInt, Field(ge=MIN_TS, lt=MAX_TS)] = Field(
        description="ISO-8601 with UTC offset, or epoch seconds"
    )
    # JSON numbers only: the parser rejects a price given as a string or a bool.
    open: StrictFloat
    high: StrictFloat
    low: StrictFloat
    close: StrictFloat
    volume: StrictFloat


class BarsPush(BaseModel):
    symbol: str | None = None
    timeframe: Timeframe | None = None
    bars: list[BarIn] = Field(max_length=5_000)


class RejectionPublic(BaseModel):
    index: int
    reason: str
    message: str


class PushCounts(BaseModel):
    accepted: int
    duplicate: int
    corrected: int
    rejected: int


class PushResult(BaseModel):
    """Per-bar answer: ``statuses[i]`` is the fate of ``bars[i]``; rejections say why."""

    received: int
    counts: PushCounts
    statuses: list[BarStatus]
    rejections: list[RejectionPublic]


TICKS_MAX_PER_PUSH = 10_000
TICK_ID_MAX_LENGTH = 64
TICK_VALUE_MAX = 1e15  # far above any price or size; keeps a minute's volume finite


def _tick_time_from_iso(text: str) -> int:
    """ISO-8601 text with a UTC offset as epoch milliseconds (finer digits floor)."""
    ms = epoch.ms_from_datetime(epoch.parse_iso(text))
    if not MIN_TS_MS <= ms < MAX_TS_MS:
        raise ValueError("timestamp outside 1900-01-01 .. 2200-01-01")
    return ms


TickTime = Annotated[
    Annotated[StrictInt, Field(ge=MIN_TS_MS, lt=MAX_TS_MS, description="epoch milliseconds")]
    | Annotated[
        str,
        Field(
            min_length=1,
            max_length=40,
            description="ISO-8601 with a UTC offset, e.g. 2024-01-02T15:04:05.123Z",
            json_schema_extra={"format": "date-time"},
        ),
        AfterValidator(_tick_time_from_iso),
    ],
    Field(description="when the tick happened: epoch milliseconds or ISO-8601 text"),
]


class TickIn(BaseModel):
    """One tick (a trade or a quote) of a tick push."""

    model_config = ConfigDict(extra="forbid")

    ts: TickTime
    price: StrictFloat = Field(gt=0, le=TICK_VALUE_MAX, allow_inf_nan=False)
    size: StrictFloat = Field(ge=0, le=TICK_VALUE_MAX, allow_inf_nan=False)
    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=TICK_ID_MAX_LENGTH,
        pattern=r"^[!-~]+$",
        description="the client's tick id (printable ASCII, no spaces): a tick whose id was "
        "already seen in the open minute is a duplicate",
    )

    @property
    def ts_ms(self) -> int:
        """``ts`` as epoch milliseconds (ISO text became milliseconds when validated)."""
        return cast(int, self.ts)


class TicksPush(BaseModel):
    """Ticks of one symbol, aggregated into 1m bars of your own series of it."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(max_length=64, description="e.g. EURUSD, BTC-USD (normalised)")
    ticks: list[TickIn] = Field(min_length=1, max_length=TICKS_MAX_PER_PUSH)

    @field_validator("symbol")
    @classmethod
    def _normalised(cls, value: str) -> str:
        return normalize_symbol(value)


class TicksResult(BaseModel):
    """What a tick push did. ``closed_bars`` are the minutes this push closed (stored as 1m
    bars); ``open_minute`` is the minute still collecting ticks."""

    symbol: str
    owner: str | None = Field(description="whose series: a user id, or null for the platform's")
    accepted: int = Field(description="ticks applied to their minute")
    late: int = Field(description="ticks of a minute already closed: not applied")
    duplicates: int = Field(description="ticks whose id the open minute had already seen")
    closed_bars: list[datetime] = Field(description="open times of the minutes this push closed")
    open_minute: datetime | None = Field(description="open time of the minute still open")


OwnerField = Annotated[
    str | None,
    Field(
        default=None,
        max_length=100,
        description="whose series: a user id, or 'platform' (see docs/market-data.md, Owners)",
    ),
]
Access = Literal["owner", "shared", "public"]


class LatestBarsPublic(BaseModel):
    symbol: str
    owner: str | None = Field(description="whose series: a user id, or null for the platform's")
    timeframe: Timeframe
    source: Literal["window", "history"]
    bars: list[BarPublic]


class BarsPage(BaseModel):
    symbol: str
    owner: str | None = Field(description="whose series: a user id, or null for the platform's")
    timeframe: Timeframe
    bars: list[BarPublic]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class TimeframeSummary(BaseModel):
    timeframe: Timeframe
    first: datetime
    last: datetime
    count: int


class SymbolPublic(BaseModel):
    symbol: str
    owner: str | None = Field(description="whose series: a user id, or null for the platform's")
    access: Access = Field(
        description="owner: yours; shared: another user's, shared with you read-only; "
        "public: the platform's reference data (read-only)"
    )
    calendar: str = Field(description="the trading calendar its gap reports use by default")
    timeframes: list[TimeframeSummary]


class SymbolsPublic(BaseModel):
    symbols: list[SymbolPublic]


class GapRange(BaseModel):
    start: datetime
    end: datetime = Field(description="exclusive")
    missing: int


class RecordedGap(BaseModel):
    start: datetime
    end: datetime
    reason: str
    source: str
    detail: str | None
    recorded_at: datetime


class GapReport(BaseModel):
    symbol: str
    owner: str | None = Field(description="whose series: a user id, or null for the platform's")
    timeframe: Timeframe
    calendar: str
    start: datetime
    end: datetime
    expected: int
    present: int
    missing: int
    unexpected: int = Field(description="stored bars the calendar does not expect")
    gaps: list[GapRange]
    truncated: bool
    recorded: list[RecordedGap]


class ResampleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_timeframe: Timeframe
    target_timeframes: list[Timeframe] = Field(min_length=1, max_length=6)
    start: datetime | None = None
    end: datetime | None = None
    day_timezone: str | None = Field(
        default=None,
        description="IANA zone whose local date labels daily bars (e.g. America/New_York)",
    )


class ResampleResult(BaseModel):
    timeframe: Timeframe
    source_bars: int
    derived: int
    accepted: int
    duplicate: int
    corrected: int


class ResampleReport(BaseModel):
    symbol: str
    owner: str | None = Field(description="whose series: a user id, or null for the platform's")
    results: list[ResampleResult]


ImportState = Literal["queued", "running", "completed", "failed"]


class ImportFromPath(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=1000, description="relative to IMPORT_DIR")
    symbol: str
    timeframe: Timeframe
    atomic: StrictBool = False
    owner: OwnerField


class ImportPublic(BaseModel):
    id: str
    state: ImportState
    origin: Literal["upload", "path"]
    filename: str
    format: Literal["csv", "parquet"]
    symbol: str
    owner: str | None = Field(description="whose series: a user id, or null for the platform's")
    timeframe: Timeframe
    atomic: bool
    progress: float = Field(description="0..1, by bytes read")
    bytes_total: int
    bytes_done: int
    rows_read: int
    rows_rejected: int
    accepted: int
    duplicate: int
    corrected: int
    errors: list[dict[str, Any]] = Field(description="first rejected rows: line, reason, message")
    message: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class ImportsPublic(BaseModel):
    imports: list[ImportPublic]


ReplayState = Literal["running", "completed", "stopped", "failed"]


class ReplayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str
    owner: OwnerField
    timeframe: Timeframe
    start: datetime | None = None
    end: datetime | None = None
    speed: StrictFloat | Literal["max"] = Field(
        default=60.0, description="simulated seconds per wall second, or 'max'"
    )
    target_symbol: str | None = Field(
        default=None, description="where bars are written; must end in '.R<letters/digits>'"
    )


class ReplayPublic(BaseModel):
    id: str
    state: ReplayState
    symbol: str
    source_owner: str | None = Field(
        description="whose series is played (a user id, or null for the platform's); the "
        "target is always yours"
    )
    target_symbol: str
    timeframe: Timeframe
    speed: float | Literal["max"]
    start: datetime | None
    end: datetime | None
    bars_total: int
    bars_emitted: int
    last_ts: datetime | None
    message: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class ReplaysPublic(BaseModel):
    replays: list[ReplayPublic]


class SharePublic(BaseModel):
    user_id: str = Field(description="who may read the symbol")
    created_at: datetime


class SharesPublic(BaseModel):
    symbol: str
    owner: str
    shares: list[SharePublic]


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded"]
    accepting: bool
    dependencies: dict[str, str]
    limits: dict[str, int]
    timeframes: list[str]
    symbol_pattern: str
