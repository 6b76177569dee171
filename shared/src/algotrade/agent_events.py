"""Event payloads of execution agents (``agent.events.v1``, keyed by agent id), registered in
`algotrade.events.default_registry` on import.

An agent is a trading terminal (a MetaTrader expert advisor, a NinjaTrader strategy) that takes
orders from the platform. Its connection moves between ``healthy``, ``degraded``, ``stale`` and
``offline`` from the regularity and latency of its heartbeats (``agent.connected`` when it comes
back from stale/offline or first appears, ``agent.degraded``, ``agent.disconnected`` when it
goes stale or offline); each command it was given ends ``executed``, ``rejected``, ``failed`` or
``expired`` (``agent.command.<outcome>``); a trade sync that contradicts the platform's record
is an ``agent.sync.conflict``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from algotrade.events import default_registry

REGISTERED = "agent.registered"
CONNECTED = "agent.connected"
DEGRADED = "agent.degraded"
DISCONNECTED = "agent.disconnected"
COMMAND_EXECUTED = "agent.command.executed"
COMMAND_REJECTED = "agent.command.rejected"
COMMAND_FAILED = "agent.command.failed"
COMMAND_EXPIRED = "agent.command.expired"
SYNC_CONFLICT = "agent.sync.conflict"

ConnectionState = Literal["healthy", "degraded", "stale", "offline"]
CommandOutcome = Literal["executed", "rejected", "failed", "expired"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: str = Field(min_length=26, max_length=26)


@default_registry.register(REGISTERED)
class AgentRegistered(_Payload):
    platform: str
    account_number: str
    broker: str
    currency: str


class ConnectionChanged(_Payload):
    """The connection state moved from ``previous`` to ``state``; ``last_heartbeat_ms`` is the
    server time of the last heartbeat (None: never heard from)."""

    state: ConnectionState
    previous: ConnectionState
    last_heartbeat_ms: int | None = None


for _type in (CONNECTED, DEGRADED, DISCONNECTED):
    default_registry.register(_type)(ConnectionChanged)


class CommandEnded(_Payload):
    """A command reached its final state (an ``executed`` one carries the fill)."""

    command_id: str
    kind: str
    outcome: CommandOutcome
    attempts: int = Field(ge=0)
    idempotency_key: str
    session_id: str | None = None
    ticket: str | None = None
    price: float | None = None
    volume: float | None = None
    error: str | None = None


for _type in (COMMAND_EXECUTED, COMMAND_REJECTED, COMMAND_FAILED, COMMAND_EXPIRED):
    default_registry.register(_type)(CommandEnded)


@default_registry.register(SYNC_CONFLICT)
class SyncConflict(_Payload):
    """A trade sync found positions the platform and the terminal disagree on."""

    missing_on_platform: int = Field(ge=0)
    unknown_to_server: int = Field(ge=0)
    diverging: int = Field(ge=0)
    details: list[dict[str, Any]] = Field(default_factory=list, max_length=50)
