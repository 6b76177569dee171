"""`AgentDesk`: the one object the agent routes talk to.

It joins the registry (PostgreSQL: who owns which agent) with the live state in Redis
(connections, command queues, trade records) and answers the access rules:

- an agent belongs to one user; another user's agent is 404, as if it did not exist;
- an agent's API key (minted by the gateway at registration) carries the scope
  ``agent:<id>`` beside ``agents:*``: it acts on that agent only (403 on any other) and cannot
  register agents, list them or queue commands;
- Redis is the fast path for ownership (the scripts check the owner themselves); when Redis has
  no record of an agent (data lost, or registered while Redis was down), PostgreSQL is asked
  and Redis filled in again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
from redis.exceptions import RedisError
from sqlalchemy import Row

from algotrade.auth import Principal
from algotrade.errors import Forbidden, NotFound
from forward_test_service.agents.commands import (
    AgentUnknownInRedis,
    CommandQueue,
    CommandsPage,
    QueueStats,
    summarize,
)
from forward_test_service.agents.connections import Beat, Connections
from forward_test_service.agents.health import health, sync_overdue
from forward_test_service.agents.registry import AgentRegistry
from forward_test_service.agents.schemas import (
    AgentCreate,
    AgentPublic,
    AgentStatusItem,
    CommandAck,
    CommandCreate,
    CommandPublic,
    CommandStats,
    ConnectionPublic,
    Heartbeat,
    SyncReport,
    SystemStatus,
    TradeSync,
)
from forward_test_service.agents.sync import TradeBook
from forward_test_service.agents.wakeups import Wakeups
from forward_test_service.api.views import ms_time
from forward_test_service.errors import invalid

logger = logging.getLogger(__name__)

AGENT_SCOPE = "agent:"
CONNECTION_STATES = ("healthy", "degraded", "stale", "offline")
T = TypeVar("T")


def bound_agents(principal: Principal) -> frozenset[str]:
    """The agents an agent key is bound to (empty for a user's own credentials)."""
    return frozenset(s[len(AGENT_SCOPE) :] for s in principal.scopes if s.startswith(AGENT_SCOPE))


def require_agent(principal: Principal, agent_id: str) -> None:
    bound = bound_agents(principal)
    if bound and agent_id not in bound:
        raise Forbidden("this API key belongs to another agent")


def require_user_credential(principal: Principal) -> None:
    if bound_agents(principal):
        raise Forbidden("an agent's API key acts on its own agent only")


class AgentDesk:
    def __init__(
        self,
        registry: AgentRegistry,
        connections: Connections,
        queue: CommandQueue,
        book: TradeBook,
        wakeups: Wakeups,
        *,
        poll_recheck_seconds: float,
    ) -> None:
        self.registry = registry
        self.connections = connections
        self.queue = queue
        self.book = book
        self.wakeups = wakeups
        self._recheck = poll_recheck_seconds

    # ------------------------------------------------------------------ registry

    async def register(self, principal: Principal, body: AgentCreate) -> Row[Any]:
        require_user_credential(principal)
        row = await self.registry.create(principal.user_id, body)
        try:
            await self.connections.register(row.id, row.user_id, row.heartbeat_seconds)
        except (RedisError, OSError) as exc:
            # The agent is stored: answer it. Its first request fills Redis in from PostgreSQL.
            logger.warning("agent %s registered while Redis is unreachable: %r", row.id, exc)
        return row

    async def agent(self, principal: Principal, agent_id: str) -> Row[Any]:
        require_agent(principal, agent_id)
        return await self.registry.get(principal.user_id, agent_id)

    async def require_own_agent(self, user_id: str, agent_id: str) -> Row[Any]:
        """The user's agent for a session in agent mode; a 422 naming ``agent_id`` otherwise."""
        try:
            return await self.registry.get(user_id, agent_id)
        except NotFound:
            raise invalid("agent_id", "unknown_agent", f"you have no agent {agent_id}") from None

    async def agents(self, principal: Principal) -> list[Row[Any]]:
        bound = bound_agents(principal)
        rows = await self.registry.list(principal.user_id)
        return [row for row in rows if not bound or row.id in bound]

    async def delete(self, principal: Principal, agent_id: str) -> None:
        require_user_credential(principal)
        await self.registry.delete(principal.user_id, agent_id)
        await self.connections.forget(agent_id)

    async def public(self, rows: list[Row[Any]]) -> list[AgentPublic]:
        """Agents with their connection and health as of now."""
        return (await self._views(rows))[0]

    async def _views(
        self, rows: list[Row[Any]]
    ) -> tuple[list[AgentPublic], list[QueueStats], list[dict[str, Any]]]:
        """The agents as answered, with their queue stats and last syncs: one pipelined read
        of Redis per kind, whatever the number of agents."""
        ids = [row.id for row in rows]
        if not ids:
            return [], [], []
        stored, queues, syncs = await asyncio.gather(
            self.connections.read(ids), self.queue.stats(ids), self.book.recent_conflicts(ids)
        )
        out = []
        now_ms = self.queue.now_ms()
        for row, connection, queue, (conflicts, last) in zip(
            rows, stored, queues, syncs, strict=True
        ):
            state = self.connections.state_now(connection, row.heartbeat_seconds)
            overdue = sync_overdue(state, connection, row.heartbeat_seconds, last, now_ms)
            out.append(
                AgentPublic(
                    id=row.id,
                    name=row.name,
                    platform=row.platform,
                    account_number=row.account_number,
                    broker=row.broker,
                    currency=row.currency,
                    heartbeat_seconds=row.heartbeat_seconds,
                    created_at=row.created_at,
                    connection=_connection_public(state, connection),
                    health=health(
                        state, connection, row.heartbeat_seconds, queue.ended, conflicts, overdue
                    ),
                    sync_overdue=overdue,
                )
            )
        return out, queues, [last for _, last in syncs]

    # ------------------------------------------------------------------ the agent's side

    async def heartbeat(self, principal: Principal, agent_id: str, beat: Heartbeat) -> Beat:
        require_agent(principal, agent_id)
        account = beat.model_dump(exclude={"client_time_ms", "rtt_ms"})

        async def once() -> Beat:
            answer = await self.connections.beat(
                agent_id,
                principal.user_id,
                account,
                client_time_ms=beat.client_time_ms,
                rtt_ms=beat.rtt_ms,
                terminal_connected=beat.terminal_connected,
            )
            if answer == "unknown":
                raise AgentUnknownInRedis(agent_id)
            if answer == "foreign":
                raise NotFound("no such agent")
            assert isinstance(answer, Beat)
            return answer

        return await self._with_registry(principal, agent_id, once)

    async def poll(
        self, principal: Principal, agent_id: str, *, wait: float, limit: int
    ) -> list[CommandPublic]:
        """Lease up to ``limit`` commands, waiting up to ``wait`` seconds for one to come."""
        require_agent(principal, agent_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            with self.wakeups.waiting(agent_id) as woken:
                leased = await self._with_registry(
                    principal,
                    agent_id,
                    lambda: self.queue.lease(agent_id, principal.user_id, limit),
                )
                remaining = deadline - loop.time()
                if leased.commands or remaining <= 0:
                    return leased.commands
                pause = min(remaining, self._recheck)
                if leased.next_due_ms is not None:
                    until_due = (leased.next_due_ms - self.queue.now_ms()) / 1000
                    pause = max(0.001, min(pause, until_due))
                # asyncio.timeout, not wait_for: no task wrapped around the wait, so a wake-up
                # resumes this poll directly rather than through that task's completion.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(pause):
                        await woken.wait()

    async def ack(
        self, principal: Principal, agent_id: str, command_id: str, ack: CommandAck
    ) -> tuple[CommandPublic, bool]:
        require_agent(principal, agent_id)
        return await self._with_registry(
            principal,
            agent_id,
            lambda: self.queue.ack(agent_id, principal.user_id, command_id, ack),
        )

    async def sync(self, principal: Principal, agent_id: str, body: TradeSync) -> SyncReport:
        require_agent(principal, agent_id)
        return await self._with_registry(
            principal, agent_id, lambda: self.book.sync(agent_id, principal.user_id, body)
        )

    # ------------------------------------------------------------------ the user's side

    async def enqueue(
        self,
        principal: Principal,
        agent_id: str,
        command: CommandCreate,
        *,
        session_id: str | None = None,
    ) -> tuple[CommandPublic, bool]:
        require_user_credential(principal)
        return await self._with_registry(
            principal,
            agent_id,
            lambda: self.queue.enqueue(agent_id, principal.user_id, command, session_id=session_id),
        )

    async def command(self, principal: Principal, agent_id: str, command_id: str) -> CommandPublic:
        require_agent(principal, agent_id)
        return await self.queue.get(agent_id, principal.user_id, command_id)

    async def commands(
        self,
        principal: Principal,
        agent_id: str,
        *,
        limit: int,
        before: int | None,
        states: Sequence[str],
    ) -> CommandsPage:
        """A page of the agent's commands, newest first; read-only, unlike the agent's poll."""
        await self.agent(principal, agent_id)  # ownership from PostgreSQL: 404 for another's
        return await self.queue.page(agent_id, limit=limit, before=before, states=states)

    async def positions(self, principal: Principal, agent_id: str) -> list[dict[str, Any]]:
        await self.agent(principal, agent_id)
        return await self.book.positions(agent_id)

    async def status(self, principal: Principal) -> SystemStatus:
        agents, queues, syncs = await self._views(await self.agents(principal))
        states: list[str] = [a.connection.state if a.connection else "offline" for a in agents]
        return SystemStatus(
            connections={
                "total": len(agents),
                **{state: states.count(state) for state in CONNECTION_STATES},
            },
            commands=CommandStats(**summarize(queues)),
            agents=[
                AgentStatusItem(
                    id=a.id,
                    name=a.name,
                    state=a.connection.state if a.connection else "offline",
                    health=a.health.score if a.health else 0,
                    last_heartbeat_at=a.connection.last_heartbeat_at if a.connection else None,
                    last_sync=last or None,
                    sync_overdue=a.sync_overdue,
                )
                for a, last in zip(agents, syncs, strict=True)
            ],
        )

    # ------------------------------------------------------------------ helpers

    async def _with_registry(
        self, principal: Principal, agent_id: str, call: Callable[[], Awaitable[T]]
    ) -> T:
        """``call``; if Redis does not know the agent, fill it in from PostgreSQL (404 when
        the agent is not the user's) and call again."""
        try:
            return await call()
        except AgentUnknownInRedis:
            row = await self.registry.get(principal.user_id, agent_id)
            await self.connections.register(row.id, row.user_id, row.heartbeat_seconds)
            return await call()


def _connection_public(state: str, stored: dict[str, str]) -> ConnectionPublic:
    def number(name: str) -> float | None:
        value = stored.get(name)
        return None if value is None else round(float(value), 3)

    last = stored.get("last_ms")
    offset = stored.get("offset")
    account = stored.get("account")
    return ConnectionPublic(
        state=state,  # type: ignore[arg-type]
        last_heartbeat_at=ms_time(int(float(last))) if last else None,
        heartbeats=int(stored.get("count", 0)),
        interval_ms=number("interval"),
        jitter_ms=number("jitter"),
        latency_ms=number("latency"),
        clock_offset_ms=int(float(offset)) if offset else None,
        account=orjson.loads(account) if account else None,
    )
