"""Event payloads of forward-test sessions (``session.events.v1``, keyed by session id),
registered in `algotrade.events.default_registry` on import.

A session's life: ``session.started`` (created, warmed up from history as far as it goes),
``session.warmed_up`` (every plan output is defined; trading can start), then per bar
``order.filled`` for each fill, ``trade.closed`` for each round trip and at most one
``session.equity`` (throttled per session), and the control events ``session.paused``,
``session.resumed``, ``session.stopped`` and ``session.failed`` (with the reason).
``session.equity`` carries every bar's equity point since the session's previous one
(`SessionEquity.points`), so a consumer can keep the whole curve; a point may come twice
(after a restart), never out of order within an event. Bar times are epoch milliseconds of
the bar's open time, as in `algotrade.engine.Bars`.

A session in agent mode also sends ``session.terminal`` each time its terminal account
changes: an agent's ack of one of its orders, or a trade sync reporting a position the
terminal closed by itself. It carries the account as the terminal executed it and the trades
that change closed (prices and volumes are the terminal's; see
``forward_test_service.terminal``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from algotrade.events import default_registry

STARTED = "session.started"
WARMED_UP = "session.warmed_up"
ORDER_FILLED = "order.filled"
TRADE_CLOSED = "trade.closed"
EQUITY = "session.equity"
PAUSED = "session.paused"
RESUMED = "session.resumed"
STOPPED = "session.stopped"
FAILED = "session.failed"
TERMINAL = "session.terminal"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str = Field(min_length=26, max_length=26)


@default_registry.register(STARTED)
class SessionStarted(_Payload):
    strategy_id: str
    version: int
    plan_id: str
    symbol: str
    timeframe: str
    owner: str | None = Field(description="the series' owner; null for the platform's data")
    capital: float
    calendar: str | None = Field(
        default=None, description="the market calendar (`algotrade.metrics.CALENDARS`)"
    )
    warmup: int = Field(description="bars the plan needs before every output is defined")
    warmup_bars: int = Field(description="history bars applied at the start")
    last_bar_ts: int | None


@default_registry.register(WARMED_UP)
class SessionWarmedUp(_Payload):
    ts: int = Field(description="the bar after which the session is warmed up")
    bars_applied: int


@default_registry.register(ORDER_FILLED)
class OrderFilled(_Payload):
    seq: int = Field(ge=0, description="the session's fill number, from 0")
    ts: int
    side: Literal["buy", "sell"]
    quantity: float
    price: float
    fee: float
    reason: str


@default_registry.register(TRADE_CLOSED)
class TradeClosed(_Payload):
    seq: int = Field(ge=0, description="the session's trade number, from 0")
    side: Literal["long", "short"]
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    quantity: float
    pnl: float
    fees: float
    exit_reason: str


class TerminalTrade(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ticket: str
    side: Literal["long", "short"]
    volume: float
    entry_price: float
    exit_price: float
    pnl: float = Field(description="side x volume x price move")
    costs: float = Field(
        default=0.0,
        description="commission and swap of the closing deal and the opening one's share "
        "(negative: charged)",
    )
    entry_seq: int
    exit_seq: int | None = Field(description="the session's exit order; null: the terminal's")
    deal: str | None = Field(default=None, description="the terminal's deal that closed it")
    exit_ts: int
    closed_by: Literal["order", "terminal"]


@default_registry.register(TERMINAL)
class SessionTerminal(_Payload):
    cause: Literal["ack", "sync"]
    seq: int | None = Field(description="the order whose ack changed the account (cause ack)")
    position: float
    cash: float
    realized_pnl: float
    costs: float = Field(default=0.0, description="commissions and swaps (negative: charged)")
    open_tickets: int
    trades: int = Field(description="terminal trades closed so far")
    executed: int = Field(description="orders the terminal executed so far")
    deals: int = Field(
        default=0,
        description="the terminal's own deals recorded so far: with executed and refused, "
        "how far the account has moved",
    )
    refused: int
    pending: int
    closed: list[TerminalTrade] = Field(description="trades this change closed")


EQUITY_POINTS_MAX = 2_000
"""Points one ``session.equity`` carries at most; more go in several events."""

EquityPoint = tuple[int, float, float]
"""(bar open time in epoch ms, equity at its close, signed position held)."""


@default_registry.register(EQUITY)
class SessionEquity(_Payload):
    ts: int
    equity: float
    cash: float
    position: float
    bars_applied: int
    points: list[EquityPoint] = Field(
        default_factory=list,
        max_length=EQUITY_POINTS_MAX,
        description="every applied bar's point since the previous session.equity, oldest first",
    )


class SessionStatusChanged(_Payload):
    """Paused, resumed or stopped by its user; ``last_bar_ts`` says where it was."""

    status: Literal["running", "paused", "stopped"]
    last_bar_ts: int | None = None


for _type in (PAUSED, RESUMED, STOPPED):
    default_registry.register(_type)(SessionStatusChanged)


@default_registry.register(FAILED)
class SessionFailed(_Payload):
    reason: str
    last_bar_ts: int | None = None
