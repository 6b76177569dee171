"""The JSON the agent puts on the wire and reads back, in one place.

The agent protocol is the forward-test service's ``/api/agents/{id}/...`` (heartbeat, command
long-poll, acks, trade sync); bars go to the market-data service's ``POST /api/market/bars``.
Both are reached through the gateway with the agent's ``X-API-Key``.

These typed dictionaries are the subset of the services' request and response models the agent
uses. ``sdk/tests/test_protocol.py`` checks each of them, its enum values and `ENDPOINTS`
against the services' OpenAPI documents, so a renamed field fails a test instead of a trader's
terminal. (Issue 16 generates the full SDK models from the gateway's merged OpenAPI.)
"""

# No ``from __future__ import annotations`` here: with string annotations, Python 3.11's
# TypedDict cannot see ``NotRequired``, and the test that checks these bodies against the
# OpenAPI reads which keys are required at run time.
from typing import Any, Literal, NotRequired, TypedDict

Side = Literal["buy", "sell"]
CommandKind = Literal["close_all", "close", "modify", "open", "info"]
Outcome = Literal["executed", "rejected", "failed"]
ConnectionState = Literal["healthy", "degraded", "stale", "offline"]
SyncAction = Literal["none", "adopted", "closed", "flagged", "pending"]
BarStatus = Literal["accepted", "duplicate", "corrected", "rejected"]
Timeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]

API_KEY_HEADER = "X-API-Key"
HEARTBEAT = "/api/agents/{agent_id}/heartbeat"
COMMANDS = "/api/agents/{agent_id}/commands"
ACK = "/api/agents/{agent_id}/commands/{command_id}/ack"
TRADE_SYNC = "/api/agents/{agent_id}/trades/sync"
BARS = "/api/market/bars"
POLL_WAIT_MAX_SECONDS = 25.0
"""The longest long-poll the service accepts (``wait``), under the gateway's 40 s timeout."""


class Heartbeat(TypedDict):
    balance: float
    equity: float
    margin: float
    free_margin: float
    open_positions: int
    terminal_connected: bool
    trade_allowed: bool
    client_time_ms: int
    rtt_ms: NotRequired[float]
    """The previous heartbeat's round trip; left out on the first one."""


class HeartbeatAnswer(TypedDict):
    server_time_ms: int
    heartbeat_seconds: float
    pending_commands: int
    state: ConnectionState


class Command(TypedDict):
    """A leased command (the service's ``CommandPublic``, the fields the agent reads)."""

    id: str
    kind: CommandKind
    idempotency_key: str
    attempts: int
    expires_at_ms: int
    symbol: NotRequired[str | None]
    side: NotRequired[Side | None]
    volume: NotRequired[float | None]
    ticket: NotRequired[str | None]
    sl: NotRequired[float | None]
    tp: NotRequired[float | None]
    message: NotRequired[str | None]


class CommandsLeased(TypedDict):
    data: list[Command]
    lease_ms: int
    server_time_ms: int


class CommandAck(TypedDict):
    outcome: Outcome
    ticket: NotRequired[str]
    price: NotRequired[float]
    volume: NotRequired[float]
    commission: NotRequired[float]
    error: NotRequired[str]


class PositionReport(TypedDict):
    ticket: str
    symbol: str
    side: Side
    volume: float
    open_price: float
    sl: float | None
    tp: float | None
    opened_at_ms: int
    comment: NotRequired[str]


class ClosedTradeReport(TypedDict):
    ticket: str
    symbol: str
    side: Side
    volume: float
    open_price: float
    close_price: float
    closed_at_ms: int
    profit: float
    deal: NotRequired[str]
    commission: NotRequired[float]
    swap: NotRequired[float]


class TradeSync(TypedDict):
    positions: list[PositionReport]
    closed: list[ClosedTradeReport]


class SyncItem(TypedDict):
    ticket: str
    symbol: str
    action: SyncAction
    fields: dict[str, dict[str, Any]] | None


class SyncReport(TypedDict):
    synced_at_ms: int
    matched: int
    missing_on_platform: list[SyncItem]
    unknown_to_server: list[SyncItem]
    diverging: list[SyncItem]
    conflicts: int
    positions: int


class BarOut(TypedDict):
    """One bar of a push: ``ts`` is the open time in epoch seconds, UTC, on the timeframe's
    boundary; prices are JSON numbers (never strings)."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class BarsPush(TypedDict):
    symbol: str
    timeframe: Timeframe
    bars: list[BarOut]


class PushCounts(TypedDict):
    accepted: int
    duplicate: int
    corrected: int
    rejected: int


class Rejection(TypedDict):
    index: int
    reason: str
    message: str


class PushResult(TypedDict):
    """``statuses[i]`` is the fate of ``bars[i]``."""

    received: int
    counts: PushCounts
    statuses: list[BarStatus]
    rejections: list[Rejection]


ENDPOINTS: dict[tuple[str, str], tuple[type | None, type]] = {
    ("POST", HEARTBEAT): (Heartbeat, HeartbeatAnswer),
    ("GET", COMMANDS): (None, CommandsLeased),
    ("POST", ACK): (CommandAck, dict),
    ("POST", TRADE_SYNC): (TradeSync, SyncReport),
    ("POST", BARS): (BarsPush, PushResult),
}
"""Every call the agent makes: (method, path) -> (request body, answer) types. An ack's answer
(the ended command) is not read beyond its status."""
