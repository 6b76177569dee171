"""Execution agents (MetaTrader, NinjaTrader terminals) as their owner sees them
(``/api/agents``). The agent's own protocol is `algotrade_sdk`'s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from algotrade_client import calls
from algotrade_client.calls import JSON, Flow, Rows, segment
from algotrade_client.endpoints import Resource, endpoint
from algotrade_client.paging import cursor_pages

R = TypeVar("R")


class Agents(Resource[R]):
    @endpoint
    def register(self, body: Mapping[str, Any]) -> Flow[JSON]:
        """Register an agent (``name``, ``platform``, ``account_number``, ``broker``,
        ``currency``...). The answer carries its ``api_key``, shown only this once."""
        return (yield from self._call(calls.post("/api/agents", dict(body))))

    @endpoint
    def list(self) -> Flow[Rows]:
        """Your agents, newest first, with connection state and health."""
        answer = yield from self._call(calls.get("/api/agents"))
        return list(answer["data"])

    @endpoint
    def get(self, agent_id: str) -> Flow[JSON]:
        return (yield from self._call(calls.get(f"/api/agents/{segment(agent_id)}")))

    @endpoint
    def commands(self, agent_id: str, *, state: str | None = None) -> Flow[Rows]:
        """The agent's commands (every page), newest first: queued, leased and ended ones
        (ended ones are kept 7 days), with their state, times and result; ``state`` keeps one
        state only. Read-only: unlike the agent's own poll, it leases nothing."""
        path = f"/api/agents/{segment(agent_id)}/queue"

        def page(cursor: str | None) -> Flow[JSON]:
            return self._call(calls.get(path, {"state": state, "limit": 100, "cursor": cursor}))

        return (yield from cursor_pages(page))

    @endpoint
    def status(self) -> Flow[JSON]:
        """Connections, command counts and delivery latency, last syncs."""
        return (yield from self._call(calls.get("/api/agents/status")))

    @endpoint
    def delete(self, agent_id: str) -> Flow[None]:
        """Forget the agent and drop its queued commands."""
        yield from self._call(calls.delete(f"/api/agents/{segment(agent_id)}"))
