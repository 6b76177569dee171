"""Shadow parity: does what was pushed agree with what REST says about the same resource?

For a family in ``shadow`` mode, each pushed event of a resource channel states something the
resource's REST answer must show too (a session's status, its equity after N bars, an
agent-mode session's terminal account, a backtest's status or progress, an agent's connection
state). ``delay`` seconds after the push, the checker
reads the resource as its owner would (`ResourceReader`) and compares. Only the newest push per
resource is checked (a newer one replaces a waiting one), and a comparison whose resource moved
on meanwhile (a newer push arrived, or REST is past the pushed bar) is counted as ``moved_on``,
not as a mismatch. Events that state nothing checkable (a fill, a closed trade) are counted as
``unchecked``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from algotrade import agent_events, backtest_events, session_events
from algotrade.auth import Principal
from notification_service.channels import Channel
from notification_service.families import FAMILIES, Family
from notification_service.snapshots import SCOPES, ResourceReader

logger = logging.getLogger(__name__)

Expectation = Callable[[dict[str, Any]], bool | None]
"""REST body -> True (agrees), False (mismatch), None (the resource moved on)."""

_STATUS_OF = {
    session_events.PAUSED: "paused",
    session_events.RESUMED: "running",
    session_events.STOPPED: "stopped",
    session_events.FAILED: "failed",
    backtest_events.COMPLETED: "completed",
    backtest_events.FAILED: "failed",
    backtest_events.CANCELLED: "cancelled",
}
_AGENT_STATES = (agent_events.CONNECTED, agent_events.DEGRADED, agent_events.DISCONNECTED)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def expectation(event_type: str, payload: dict[str, Any]) -> Expectation | None:
    """What the REST answer must show after this event; None when it states nothing checkable."""
    if event_type in _STATUS_OF:
        status = _STATUS_OF[event_type]
        return lambda body: body.get("status") == status
    if event_type == session_events.EQUITY:
        bars = payload.get("bars_applied")

        def equity(body: dict[str, Any]) -> bool | None:
            if body.get("bars_applied") != bars:
                return None
            return all(_close(body.get(k), payload.get(k)) for k in ("equity", "cash", "position"))

        return equity
    if event_type == session_events.TERMINAL:
        # How far the account had moved: orders ended by acks, and the terminal's own deals.
        moved = sum(int(payload.get(k) or 0) for k in ("executed", "refused", "deals"))

        def terminal(body: dict[str, Any]) -> bool | None:
            account = body.get("terminal")
            if not isinstance(account, dict):
                return False  # an agent-mode session shows its terminal account
            orders = account.get("orders") or {}
            since = int(orders.get("executed") or 0) + int(orders.get("refused") or 0)
            if since + int(account.get("deals") or 0) > moved:
                return None  # later acks or syncs since
            fields = ("position", "cash", "realized_pnl", "costs", "open_tickets", "trades")
            return all(_close(account.get(k), payload.get(k)) for k in fields)

        return terminal
    if event_type == session_events.WARMED_UP:
        return lambda body: body.get("warmed_up") is True
    if event_type == backtest_events.PROGRESS:
        progress = float(payload.get("progress") or 0.0)
        return lambda body: float(body.get("progress") or 0.0) + 1e-9 >= progress
    if event_type in _AGENT_STATES:
        state = payload.get("state")

        def connection(body: dict[str, Any]) -> bool | None:
            return (body.get("connection") or {}).get("state") == state

        return connection
    return None


@dataclass
class ParityCounters:
    checked: int = 0
    mismatches: int = 0
    moved_on: int = 0
    unchecked: int = 0
    skipped: int = 0  # not compared: too many waiting, or REST could not answer


@dataclass
class _Pending:
    user_id: str
    channel: Channel
    family: Family
    expect: Expectation


class ParityChecker:
    def __init__(self, reader: ResourceReader, *, delay: float, max_pending: int) -> None:
        self._reader = reader
        self._delay = delay
        self._max_pending = max_pending
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.counters: dict[Family, ParityCounters] = {f: ParityCounters() for f in FAMILIES}

    def observe(
        self,
        user_id: str,
        channel: Channel,
        family: Family,
        event_type: str,
        payload: dict[str, Any],
    ) -> None:
        """A shadow push of ``event_type`` on a resource channel: check it against REST."""
        counters = self.counters[family]
        expect = expectation(event_type, payload)
        if expect is None:
            counters.unchecked += 1
            return
        waiting = self._pending.get(channel.name)
        if waiting is not None:  # only the newest push of a resource is compared
            self.counters[waiting.family].moved_on += 1
            waiting.expect, waiting.family = expect, family
            return
        if len(self._tasks) >= self._max_pending:
            counters.skipped += 1
            return
        self._pending[channel.name] = _Pending(user_id, channel, family, expect)
        task = asyncio.create_task(self._check(channel.name), name=f"parity {channel.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, name: str) -> None:
        await asyncio.sleep(self._delay)
        pending = self._pending.pop(name)
        counters = self.counters[pending.family]
        kind = pending.channel.kind
        principal = Principal(user_id=pending.user_id, scopes=frozenset(SCOPES[kind]))
        try:
            snapshot = await self._reader.read(principal, pending.channel)
            if name in self._pending:  # a newer push came meanwhile; its own check follows
                counters.moved_on += 1
                return
            verdict = pending.expect(snapshot.data or {})
        except Exception as exc:  # REST did not answer, or answered something unexpected
            counters.skipped += 1
            logger.info("parity of %s not checked: %r", name, exc)
            return
        if verdict is None:
            counters.moved_on += 1
            return
        counters.checked += 1
        if not verdict:
            counters.mismatches += 1
            logger.warning("shadow parity mismatch on %s (%s)", name, pending.family)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
