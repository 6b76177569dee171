"""Request and response models of the session API."""

from __future__ import annotations

from datetime import datetime
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
from algotrade.events import ULID_PATTERN
from algotrade.simulation import BacktestConfig
from forward_test_service.agents.schemas import SYMBOL_PATTERN as AGENT_SYMBOL_PATTERN

SessionStatus = Literal["running", "paused", "stopped", "failed"]
OWNER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@:-]*$"


class SessionCreate(BaseModel):
    """A forward test of a stored strategy version on a symbol's live bars, with paper money.

    ``config`` is a backtest's execution config (fees, slippage, sizing, calendar); ``capital``
    is the starting cash and replaces ``config.initial_capital``. ``owner`` chooses whose
    series of ``symbol`` to follow (a user id, or ``platform``); by default the one your reads
    resolve to: your own, else one shared with you, else the platform's.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    strategy_id: str = Field(min_length=1, max_length=100)
    version: StrictInt | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="default: the strategy's current version"
    )
    symbol: str = Field(max_length=64)
    timeframe: Timeframe
    owner: str | None = Field(default=None, max_length=100, pattern=OWNER_PATTERN)
    capital: StrictFloat = Field(gt=0, le=1e15)
    config: BacktestConfig = Field(default_factory=BacktestConfig)
    params: dict[str, StrictFloat] = Field(
        default_factory=dict, description="tunable values overriding the graph's defaults"
    )
    mode: Literal["paper", "agent"] = Field(
        default="paper",
        description="paper: the paper broker; agent: every order also goes to `agent_id`'s queue",
    )
    agent_id: str | None = Field(
        default=None, pattern=ULID_PATTERN, description="agent mode: one of your agents"
    )
    agent_symbol: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=AGENT_SYMBOL_PATTERN,
        description="agent mode: the symbol's name at the agent's broker (default: symbol)",
    )

    @model_validator(mode="after")
    def _agent_fields(self) -> SessionCreate:
        if self.mode == "agent" and self.agent_id is None:
            raise ValueError("mode 'agent' needs agent_id")
        if self.mode == "paper" and (self.agent_id or self.agent_symbol):
            raise ValueError("agent_id and agent_symbol are only read with mode 'agent'")
        return self

    @field_validator("symbol")
    @classmethod
    def _normalise_symbol(cls, value: str) -> str:
        return normalize_symbol(value)


class TerminalOrders(BaseModel):
    executed: int
    refused: int = Field(description="rejected, failed, expired, or skipped (entry not executed)")
    pending: int = Field(description="queued, or an exit waiting for its entry's ticket")


class TerminalSummary(BaseModel):
    """Agent mode: the account as the terminal executed the session's orders
    (``forward_test_service.terminal``)."""

    position: float = Field(description="signed volume open on the terminal")
    cash: float = Field(description="capital + realized P&L + costs - cost of the open tickets")
    equity: float = Field(description="cash + position x mark")
    realized_pnl: float = Field(description="side x volume x price move of the closed trades")
    costs: float = Field(
        description="the commissions and swaps the terminal reported (negative: charged)"
    )
    mark: float | None = Field(description="the last bar's close; null before the first bar")
    open_tickets: int
    trades: int
    deals: int = Field(
        description="the terminal's own deals recorded from trade syncs: with the orders "
        "executed and refused, how far this account has moved (an event with fewer is older)"
    )
    orders: TerminalOrders


class TerminalTicket(BaseModel):
    ticket: str
    side: Literal["long", "short"]
    volume: float = Field(description="what is still open")
    opened: float = Field(description="what the entry opened (the terminal may close a part)")
    price: float
    entry_seq: int
    entry_time: datetime


class TerminalTradePublic(BaseModel):
    ticket: str
    side: Literal["long", "short"]
    volume: float
    entry_price: float
    exit_price: float
    pnl: float = Field(description="side x volume x price move")
    costs: float = Field(
        description="the closing deal's commission and swap, and the opening commission's "
        "share by volume (negative: charged); the trade nets pnl + costs"
    )
    entry_seq: int
    exit_seq: int | None = Field(description="the session's exit order; null: the terminal's")
    deal: str | None = Field(description="the terminal's deal that closed it, if it did")
    entry_time: datetime
    exit_time: datetime
    closed_by: Literal["order", "terminal"]


class TerminalPublic(BaseModel):
    session_id: str
    account: TerminalSummary
    model: dict[str, float] = Field(description="the fill model's position, cash and equity")
    open: list[TerminalTicket]
    trades: list[TerminalTradePublic]


class SessionPublic(BaseModel):
    id: str
    status: SessionStatus
    strategy_id: str | None = Field(
        description="null only for a session migrated from Beta1 whose strategy was not migrated"
    )
    version: int | None = Field(description="null exactly when strategy_id is")
    plan_id: str | None = Field(
        description="null for a session migrated from Beta1 whose strategy has no runnable "
        "version (not migrated, or a draft): it cannot be restarted"
    )
    params: dict[str, float]
    symbol: str
    timeframe: Timeframe
    owner: str | None = Field(description="whose series the session follows; null: platform")
    capital: float
    mode: Literal["paper", "agent"] = "paper"
    agent_id: str | None = None
    agent_symbol: str | None = None
    config: dict[str, Any] = Field(description="the execution config, auto fields resolved")
    config_id: str
    warmup: int = Field(description="bars the plan needs before every output is defined")
    warmed_up: bool
    bars_applied: int
    last_bar_time: datetime | None = Field(description="open time of the last applied bar")
    lag_seconds: float | None = Field(
        description="seconds since the last applied bar closed (null before the first bar)"
    )
    position: float = Field(description="signed units held")
    cash: float
    equity: float
    terminal: TerminalSummary | None = Field(
        default=None,
        description="agent mode, in the session's own view (null in the list): the account "
        "as the terminal executed the orders (position, cash and equity above are the fill "
        "model's)",
    )
    metrics: dict[str, float | int | None] | None
    gaps: int = Field(description="missing bars recorded (never fabricated)")
    corrections: int = Field(description="corrections of applied bars recorded (not applied)")
    error: str | None
    created_at: datetime
    updated_at: datetime
    stopped_at: datetime | None
    links: dict[str, str]


class SessionsPublic(BaseModel):
    items: list[SessionPublic]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class TradePublic(BaseModel):
    seq: int
    side: Literal["long", "short"]
    entry_time: datetime
    exit_time: datetime
    entry_price: float
    exit_price: float
    quantity: float
    pnl: float
    fees: float
    exit_reason: str


class TradesPage(BaseModel):
    session_id: str
    total: int
    offset: int
    limit: int
    trades: list[TradePublic]


class AgentExecution(BaseModel):
    """Agent mode: the command carrying an order to the agent and what the agent answered
    (``state``: queued, waiting (an exit waiting for its entry's ticket), executed, rejected,
    failed, skipped (its entry was not executed))."""

    command_id: str | None
    state: str | None
    ticket: str | None
    price: float | None = Field(description="the terminal's fill price (the model's is `price`)")
    volume: float | None
    error: str | None


class OrderPublic(BaseModel):
    seq: int
    time: datetime = Field(description="open time of the bar whose open (or range) filled it")
    side: Literal["buy", "sell"]
    quantity: float
    price: float
    fee: float
    reason: str
    agent: AgentExecution | None = Field(
        default=None, description="agent mode only: the order's command and its execution"
    )


class OrdersPage(BaseModel):
    session_id: str
    total: int
    offset: int
    limit: int
    orders: list[OrderPublic]


class EquityPoint(BaseModel):
    ts: datetime
    equity: float
    position: float


class EquityPublic(BaseModel):
    session_id: str
    total_points: int
    method: Literal["all", "lttb"]
    points: list[EquityPoint]
