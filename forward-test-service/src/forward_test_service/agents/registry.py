"""Agents in PostgreSQL: who registered which terminal. Registration is announced
(``agent.registered``) through the outbox in the same transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import agent_events
from algotrade.errors import Conflict, NotFound
from algotrade.events import Topics, default_registry, new_event_id
from algotrade.outbox import OutboxRelay, stage_event
from forward_test_service import models
from forward_test_service.agents.schemas import AgentCreate
from forward_test_service.models import SCHEMA

agents_t = models.agents


class AgentRegistry:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        topics: Topics,
        *,
        producer: str,
        max_per_user: int,
        relay: OutboxRelay | None = None,
    ) -> None:
        self._sessions = sessions
        self._topics = topics
        self._producer = producer
        self._max_per_user = max_per_user
        self._relay = relay

    async def create(self, user_id: str, body: AgentCreate) -> Row[Any]:
        agent_id = new_event_id()
        async with self._sessions.begin() as session:
            await session.execute(
                select(func.pg_advisory_xact_lock(func.hashtext(f"forward.agents:{user_id}")))
            )
            count = await session.scalar(
                select(func.count())
                .select_from(agents_t)
                .where(agents_t.c.user_id == user_id, agents_t.c.deleted_at.is_(None))
            )
            if int(count or 0) >= self._max_per_user:
                raise Conflict(
                    f"at most {self._max_per_user} agents per user; delete one first",
                    errors=[{"loc": ["body"], "code": "too_many_agents"}],
                )
            row: Row[Any] = (
                await session.execute(
                    agents_t.insert()
                    .values(id=agent_id, user_id=user_id, **body.model_dump())
                    .returning(agents_t)
                )
            ).one()
            envelope = default_registry.build(
                agent_events.REGISTERED,
                agent_events.AgentRegistered(
                    agent_id=agent_id,
                    platform=body.platform,
                    account_number=body.account_number,
                    broker=body.broker,
                    currency=body.currency,
                ),
                producer=self._producer,
                key=agent_id,
                user_id=user_id,
            )
            await stage_event(session, SCHEMA.outbox, self._topics.agent_events, envelope)
        if self._relay is not None:
            self._relay.wake()
        return row

    async def get(self, user_id: str, agent_id: str) -> Row[Any]:
        """The user's agent; 404 when it is another user's, deleted or unknown."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(agents_t).where(
                        agents_t.c.id == agent_id,
                        agents_t.c.user_id == user_id,
                        agents_t.c.deleted_at.is_(None),
                    )
                )
            ).one_or_none()
        if row is None:
            raise NotFound("no such agent")
        return row

    async def list(self, user_id: str) -> list[Row[Any]]:
        async with self._sessions() as session:
            result = await session.execute(
                select(agents_t)
                .where(agents_t.c.user_id == user_id, agents_t.c.deleted_at.is_(None))
                .order_by(agents_t.c.id.desc())
            )
            return list(result)

    async def delete(self, user_id: str, agent_id: str) -> None:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(agents_t)
                .where(
                    agents_t.c.id == agent_id,
                    agents_t.c.user_id == user_id,
                    agents_t.c.deleted_at.is_(None),
                )
                .values(deleted_at=func.now())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound("no such agent")
