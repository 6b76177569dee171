"""Request and response models of the agent protocol (``/api/agents``; see docs/agents.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

from algotrade.agent_events import ConnectionState

Platform = Literal["mt5", "ninjatrader", "other"]
CommandKind = Literal["close_all", "close", "modify", "open", "info"]
CommandState = Literal["queued", "leased", "executed", "rejected", "failed", "expired"]
Side = Literal["buy", "sell"]

PRIORITY: dict[str, int] = {"close_all": 0, "close": 1, "modify": 2, "open": 3, "info": 4}
"""Lower goes first: closing everything beats closing one, beats stop changes, beats opening."""

TICKET_PATTERN = r"^[A-Za-z0-9_.:-]+$"
SYMBOL_PATTERN = r"^[A-Za-z0-9_.:/#+-][A-Za-z0-9_.:/#+ -]*$"  # broker symbols: EURUSD#, ES 03-25
EPOCH_MS_MAX = 253_402_300_799_999  # 9999-12-31


def _ticket(**kw: Any) -> Any:
    return Field(min_length=1, max_length=64, pattern=TICKET_PATTERN, **kw)


def _symbol(**kw: Any) -> Any:
    return Field(min_length=1, max_length=64, pattern=SYMBOL_PATTERN, **kw)


def _price(**kw: Any) -> Any:
    return Field(ge=0, le=1e12, **kw)


def _volume(**kw: Any) -> Any:
    return Field(gt=0, le=1e9, **kw)


def _money(**kw: Any) -> Any:
    """A commission or swap in the account's currency, signed as the terminal signs it
    (negative: charged)."""
    return Field(ge=-1e12, le=1e12, **kw)


def _epoch_ms(**kw: Any) -> Any:
    return Field(ge=0, le=EPOCH_MS_MAX, **kw)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AgentCreate(_Strict):
    """A trading terminal that will take orders: its platform and the account it trades."""

    name: str = Field(min_length=1, max_length=100)
    platform: Platform
    account_number: str = Field(min_length=1, max_length=64)
    broker: str = Field(min_length=1, max_length=100)
    currency: str = Field(min_length=3, max_length=8, pattern=r"^[A-Z]{3,8}$")
    heartbeat_seconds: StrictFloat = Field(
        default=5, ge=1, le=300, description="how often the agent promises a heartbeat"
    )


class HealthPublic(BaseModel):
    """0-100, with the components it is made of (each 0-100) and their weights."""

    score: int
    components: dict[str, int]
    weights: dict[str, float]


class ConnectionPublic(BaseModel):
    state: ConnectionState
    last_heartbeat_at: datetime | None
    heartbeats: int
    interval_ms: float | None = Field(description="smoothed time between heartbeats")
    jitter_ms: float | None = Field(description="smoothed deviation of that interval")
    latency_ms: float | None = Field(description="smoothed round trip the agent reports")
    clock_offset_ms: int | None = Field(description="server time minus the agent's clock")
    account: dict[str, Any] | None = Field(description="the account state last reported")


class AgentPublic(BaseModel):
    id: str
    name: str
    platform: Platform
    account_number: str
    broker: str
    currency: str
    heartbeat_seconds: float
    created_at: datetime
    connection: ConnectionPublic | None = None
    health: HealthPublic | None = None
    sync_overdue: bool = Field(
        default=False, description="connected, but no trade sync for 90 s (ask: every 30 s)"
    )


class AgentCreated(AgentPublic):
    """The new agent; at the gateway also its API key (``api_key``), shown this once."""

    api_key: str | None = None


class AgentsPublic(BaseModel):
    data: list[AgentPublic]
    count: int


class Heartbeat(_Strict):
    """The account as the terminal sees it now, and how the connection feels from there."""

    balance: StrictFloat = Field(ge=-1e15, le=1e15)
    equity: StrictFloat = Field(ge=-1e15, le=1e15)
    margin: StrictFloat = Field(default=0, ge=0, le=1e15)
    free_margin: StrictFloat = Field(default=0, ge=-1e15, le=1e15)
    open_positions: StrictInt = Field(default=0, ge=0, le=1_000_000)
    terminal_connected: StrictBool = True
    trade_allowed: StrictBool = True
    client_time_ms: StrictInt | None = _epoch_ms(default=None)
    rtt_ms: StrictFloat | None = Field(
        default=None, ge=0, le=600_000, description="the round trip of the previous heartbeat"
    )


class HeartbeatAnswer(BaseModel):
    server_time_ms: int
    heartbeat_seconds: float = Field(description="the interval the agent promised")
    pending_commands: int
    state: ConnectionState


class CommandCreate(_Strict):
    """An order for the terminal. ``idempotency_key`` names the intent: sending the same key
    again returns the first command instead of queueing a second one; the agent stamps it on
    the order (MT5 comment, NinjaTrader signal name) so that a command delivered twice is
    executed once."""

    kind: CommandKind
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=31,  # MetaTrader 5 keeps 31 characters of an order comment
        pattern=r"^[A-Za-z0-9_.:-]+$",
    )
    symbol: str | None = _symbol(default=None)
    side: Side | None = None
    volume: StrictFloat | None = _volume(default=None)
    ticket: str | None = _ticket(default=None)
    sl: StrictFloat | None = _price(default=None)
    tp: StrictFloat | None = _price(default=None)
    message: str | None = Field(default=None, max_length=1_000)
    expires_in_seconds: StrictFloat = Field(default=300, gt=0, le=86_400)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> CommandCreate:
        needed = {
            "open": ("symbol", "side", "volume"),
            "close": ("ticket",),
            "modify": ("ticket",),
            "info": ("message",),
        }.get(self.kind, ())
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind!r} command needs {', '.join(missing)}")
        if self.kind == "modify" and self.sl is None and self.tp is None:
            raise ValueError("a 'modify' command needs sl or tp")
        return self


class CommandPublic(BaseModel):
    id: str
    agent_id: str
    kind: CommandKind
    priority: int
    state: CommandState
    idempotency_key: str
    attempts: int
    created_at_ms: int
    expires_at_ms: int
    leased_until_ms: int | None = None
    leased_at_ms: int | None = Field(default=None, description="when it was last leased")
    ended_at_ms: int | None = Field(
        default=None, description="when it ended: acknowledged, failed or expired"
    )
    symbol: str | None = None
    side: Side | None = None
    volume: float | None = None
    ticket: str | None = None
    sl: float | None = None
    tp: float | None = None
    message: str | None = None
    session_id: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = Field(
        default=None, description="why it failed without an ack (its retries ran out)"
    )


class CommandsPublic(BaseModel):
    """A page of the agent's commands, newest first (read-only: nothing is leased)."""

    items: list[CommandPublic]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class CommandsLeased(BaseModel):
    """Commands now leased to the agent, most urgent first; ack each before ``lease_ms``."""

    data: list[CommandPublic]
    lease_ms: int
    server_time_ms: int


class CommandAck(_Strict):
    outcome: Literal["executed", "rejected", "failed"]
    ticket: str | None = _ticket(default=None)
    price: StrictFloat | None = _price(default=None)
    volume: StrictFloat | None = Field(default=None, ge=0, le=1e9)
    commission: StrictFloat | None = _money(
        default=None,
        description="the execution's commission, signed as the terminal signs it (negative: "
        "charged); counted in the session's terminal account",
    )
    error: str | None = Field(default=None, max_length=1_000)


class Position(_Strict):
    ticket: str = _ticket()
    symbol: str = _symbol()
    side: Side
    volume: StrictFloat = _volume()
    open_price: StrictFloat = _price()
    sl: StrictFloat | None = _price(default=None)
    tp: StrictFloat | None = _price(default=None)
    opened_at_ms: StrictInt | None = _epoch_ms(default=None)
    comment: str | None = Field(default=None, max_length=64)


class ClosedTrade(_Strict):
    """A deal that closed a position, or part of it (the position stays in ``positions`` with
    what is left)."""

    ticket: str = _ticket()
    symbol: str = _symbol()
    side: Side
    volume: StrictFloat = _volume()
    open_price: StrictFloat = _price()
    close_price: StrictFloat = _price()
    closed_at_ms: StrictInt = _epoch_ms()
    profit: StrictFloat = Field(default=0, ge=-1e15, le=1e15)
    deal: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=TICKET_PATTERN,
        description="the terminal's id of the closing deal (MT5's deal ticket, NinjaTrader's "
        "execution id): one deal listed by several syncs is recorded once. Without it a deal "
        "is known by its ticket, time, volume and price",
    )
    commission: StrictFloat = _money(default=0, description="the closing deal's commission")
    swap: StrictFloat = _money(default=0, description="the swap charged or paid on the close")


class TradeSync(_Strict):
    """Every position the terminal holds now (all of them: one missing from the list is
    closed as far as the terminal knows) and the trades it closed recently."""

    positions: list[Position] = Field(max_length=10_000)
    closed: list[ClosedTrade] = Field(default_factory=list, max_length=10_000)


class SyncItem(BaseModel):
    ticket: str
    symbol: str
    action: Literal["none", "adopted", "closed", "flagged", "pending"]
    fields: dict[str, dict[str, Any]] | None = Field(
        default=None, description="diverging fields: {field: {server, platform}}"
    )


class SyncReport(BaseModel):
    """What reconciliation found and did (the policy is in docs/agents.md)."""

    synced_at_ms: int
    matched: int
    missing_on_platform: list[SyncItem]
    unknown_to_server: list[SyncItem]
    diverging: list[SyncItem]
    conflicts: int
    positions: int


class PositionsPublic(BaseModel):
    data: list[dict[str, Any]]
    count: int


class CommandStats(BaseModel):
    pending: int
    leased: int
    executed: int
    rejected: int
    failed: int
    expired: int
    delivery_ms_p50: float | None
    delivery_ms_p99: float | None


class AgentStatusItem(BaseModel):
    id: str
    name: str
    state: ConnectionState
    health: int
    last_heartbeat_at: datetime | None
    last_sync: dict[str, Any] | None
    sync_overdue: bool


class SystemStatus(BaseModel):
    connections: dict[str, Any]
    commands: CommandStats
    agents: list[AgentStatusItem]
