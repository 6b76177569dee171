"""Channels: what a socket subscribes to, and which channels each event reaches.

A client names a channel; the service keeps each one under a *stream* name that says whose it
is, because some names mean different things for different users:

- ``session:{id}`` (stream: the same): the session's events (families sessions, orders,
  positions, account);
- ``backtest:{id}``, ``sweep:{id}`` (the same): the job's status and progress (backtests);
- ``agent:{id}`` (the same): the agent's connection and command events (agents);
- ``user`` (``user:{user id}``): every event of the subscriber's own resources;
- ``market:{symbol}:{timeframe}`` (``market:{owner or -}:{symbol}:{timeframe}``): bars of the
  series the subscriber's reads resolve to: their own, else one shared with them, else the
  platform's (intraday_bars).

Resource ids are global, so their stream is the resource's; who may read it is checked when
subscribing (`notification_service.snapshots`). Sequence numbers and the resume buffer belong to
the stream (`notification_service.sequencer`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from algotrade import agent_events, backtest_events, session_events
from algotrade.bars import TIMEFRAME_SECONDS, normalize_symbol
from algotrade.errors import ValidationFailed
from algotrade.events import ULID_PATTERN, Envelope
from notification_service.families import Family

Kind = Literal["session", "backtest", "sweep", "agent", "user", "market"]
RESOURCE_KINDS: frozenset[str] = frozenset({"session", "backtest", "sweep", "agent"})
MAX_CHANNEL_LENGTH = 80
PLATFORM = "-"  # the owner part of a platform series' stream
_ID = re.compile(ULID_PATTERN)

SESSION_FAMILIES: dict[str, Family] = {
    session_events.STARTED: "sessions",
    session_events.WARMED_UP: "sessions",
    session_events.PAUSED: "sessions",
    session_events.RESUMED: "sessions",
    session_events.STOPPED: "sessions",
    session_events.FAILED: "sessions",
    session_events.ORDER_FILLED: "orders",
    session_events.TRADE_CLOSED: "positions",
    session_events.EQUITY: "account",
    session_events.TERMINAL: "account",
}


@dataclass(frozen=True)
class Channel:
    """A channel one subscriber asked for: its public name and the stream behind it."""

    kind: Kind
    name: str  # as the client sees it (canonical: symbols normalised)
    resource_id: str | None = None  # session/backtest/sweep/agent id
    symbol: str | None = None
    timeframe: str | None = None

    def stream(self, user_id: str, owner: str | None = None) -> str:
        """The stream behind this channel for ``user_id`` (``owner``: the market series' owner
        the subscriber's reads resolve to; None for the platform's)."""
        if self.kind == "user":
            return f"user:{user_id}"
        if self.kind == "market":
            return f"market:{owner or PLATFORM}:{self.symbol}:{self.timeframe}"
        return self.name


@dataclass(frozen=True)
class Route:
    """One stream an event goes to, the family it counts under, and the client-side name."""

    stream: str
    channel: str
    family: Family


def parse_channel(raw: object) -> Channel:
    """The channel a client named; `ValidationFailed` saying what is wrong otherwise."""
    if not isinstance(raw, str) or not raw:
        raise _invalid("channel must be a non-empty string")
    if len(raw) > MAX_CHANNEL_LENGTH:
        raise _invalid(f"channel is longer than {MAX_CHANNEL_LENGTH} characters")
    if raw == "user":
        return Channel("user", "user")
    kind, _, rest = raw.partition(":")
    if kind in RESOURCE_KINDS:
        if not _ID.match(rest):
            raise _invalid(f"{kind} channels are '{kind}:<id>' with a 26-character id")
        return Channel(kind, f"{kind}:{rest}", resource_id=rest)  # type: ignore[arg-type]
    if kind == "market":
        symbol, _, timeframe = rest.rpartition(":")
        try:
            symbol = normalize_symbol(symbol)
        except ValueError as exc:
            raise _invalid(f"market channels are 'market:<symbol>:<timeframe>': {exc}") from None
        if timeframe not in TIMEFRAME_SECONDS:
            raise _invalid(
                f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAME_SECONDS)}"
            )
        return Channel("market", f"market:{symbol}:{timeframe}", symbol=symbol, timeframe=timeframe)
    raise _invalid(
        "unknown channel; use session:<id>, backtest:<id>, sweep:<id>, agent:<id>, user "
        "or market:<symbol>:<timeframe>"
    )


def routes(envelope: Envelope) -> list[Route]:
    """Where an event goes: its resource's stream and its user's, or a market series' stream.
    Events of no family (strategy events, agent registration) go nowhere."""
    kind = envelope.type
    payload = envelope.payload
    family: Family
    resource: str
    if kind == "market.bars":
        symbol, timeframe = payload.get("symbol"), payload.get("timeframe")
        owner = payload.get("owner") or PLATFORM
        name = f"market:{symbol}:{timeframe}"
        return [Route(f"market:{owner}:{symbol}:{timeframe}", name, "intraday_bars")]
    if kind in SESSION_FAMILIES:
        family, resource = SESSION_FAMILIES[kind], f"session:{payload.get('session_id')}"
    elif kind.startswith("backtest.") and kind != backtest_events.REQUESTED:
        job_kind = "sweep" if payload.get("kind") == "sweep" else "backtest"
        family, resource = "backtests", f"{job_kind}:{payload.get('job_id')}"
    elif kind.startswith("agent.") and kind != agent_events.REGISTERED:
        family, resource = "agents", f"agent:{payload.get('agent_id')}"
    else:
        return []
    out = [Route(resource, resource, family)]
    if envelope.user_id:
        out.append(Route(f"user:{envelope.user_id}", "user", family))
    return out


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed(
        message, errors=[{"loc": ["channel"], "code": "invalid_channel", "message": message}]
    )
