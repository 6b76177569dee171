"""Changes to strategies: create, save a version, rename, delete, each with its events.

Every change runs in one transaction with the events announcing it (staged in the outbox), so
the database and ``strategy.events`` cannot disagree. A graph is compiled before the
transaction opens: an invalid graph raises `algotrade.engine.GraphInvalid` (422, with every
problem) and nothing is written; a valid one is saved with its plan id, and the plan is put in
the cache after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.engine import Plan
from algotrade.errors import Conflict, NotFound
from algotrade.events import default_registry, new_event_id
from algotrade.logs import correlation_id_var
from algotrade.outbox import OutboxRelay, stage_event
from algotrade.strategy_events import (
    STRATEGY_CREATED,
    STRATEGY_DELETED,
    STRATEGY_VERSION_CREATED,
    StrategyCreated,
    StrategyDeleted,
    StrategyVersionCreated,
)
from strategy_service import repository
from strategy_service.models import SCHEMA, Strategy, StrategyVersion
from strategy_service.plan_cache import PlanCache
from strategy_service.schemas import StrategyUpdate


@dataclass(frozen=True)
class Saved:
    """A strategy after a change, with its current version."""

    strategy: Strategy
    version: StrategyVersion


StrategyEvent = StrategyCreated | StrategyVersionCreated | StrategyDeleted


@dataclass(frozen=True)
class Authoring:
    """Writes strategies and versions, stages their events, warms the plan cache."""

    sessions: async_sessionmaker[AsyncSession]
    producer_name: str
    topic: str
    plans: PlanCache
    relay: OutboxRelay | None

    async def _stage(
        self, session: AsyncSession, type_: str, payload: StrategyEvent, owner: str
    ) -> None:
        envelope = default_registry.build(
            type_,
            payload,
            producer=self.producer_name,
            key=payload.strategy_id,
            correlation_id=correlation_id_var.get(),
            user_id=owner,
        )
        await stage_event(session, SCHEMA.outbox, self.topic, envelope)

    async def _committed(self, plan: Plan | None = None) -> None:
        if self.relay is not None:
            self.relay.wake()
        if plan is not None:
            await self.plans.put(plan)

    async def create(
        self,
        *,
        owner: str,
        name: str,
        description: str,
        graph: dict[str, Any],
        template: str | None = None,
    ) -> Saved:
        plan = await self.plans.compile(graph)
        strategy = Strategy(
            id=new_event_id(),
            owner_id=owner,
            name=name,
            description=description,
            current_version=1,
            template_key=template,
        )
        version = StrategyVersion(
            strategy_id=strategy.id, n=1, graph=graph, plan_id=plan.plan_id, created_by=owner
        )
        async with self.sessions.begin() as session:
            session.add(strategy)
            await session.flush()  # the strategy row before its version (foreign key)
            session.add(version)
            await self._stage(
                session,
                STRATEGY_CREATED,
                StrategyCreated(
                    strategy_id=strategy.id,
                    owner_id=owner,
                    name=name,
                    version=1,
                    plan_id=plan.plan_id,
                    template=template,
                ),
                owner,
            )
            await self._stage(
                session,
                STRATEGY_VERSION_CREATED,
                StrategyVersionCreated(
                    strategy_id=strategy.id, owner_id=owner, version=1, plan_id=plan.plan_id
                ),
                owner,
            )
            await session.flush()
            await session.refresh(strategy)
            await session.refresh(version)
        await self._committed(plan)
        return Saved(strategy, version)

    async def update(
        self,
        *,
        owner: str,
        strategy_id: str,
        change: StrategyUpdate,
        if_match: frozenset[int] | None,
    ) -> Saved:
        """Apply ``change``; a new graph becomes version current + 1.

        ``change.expected_version`` and ``if_match`` (versions from an If-Match header) must
        name the current version when given, else `Conflict` (409).
        """
        plan = await self.plans.compile(change.graph) if change.graph is not None else None
        async with self.sessions.begin() as session:
            # The row lock orders concurrent saves of one strategy: each sees the version the
            # previous one committed, so version numbers never collide.
            strategy = await repository.get_live(session, owner, strategy_id, for_update=True)
            if strategy is None:
                raise NotFound(f"there is no strategy {strategy_id}")
            _check_precondition(strategy.current_version, change.expected_version, if_match)
            if change.name is not None:
                strategy.name = change.name
            if change.description is not None:
                strategy.description = change.description
            version: StrategyVersion | None = None
            if plan is not None and change.graph is not None:
                previous = await repository.get_version(
                    session, strategy.id, strategy.current_version
                )
                n = strategy.current_version + 1
                version = StrategyVersion(
                    strategy_id=strategy.id,
                    n=n,
                    graph=change.graph,
                    plan_id=plan.plan_id,
                    created_by=owner,
                )
                session.add(version)
                strategy.current_version = n
                await self._stage(
                    session,
                    STRATEGY_VERSION_CREATED,
                    StrategyVersionCreated(
                        strategy_id=strategy.id,
                        owner_id=owner,
                        version=n,
                        plan_id=plan.plan_id,
                        previous_plan_id=previous.plan_id if previous is not None else None,
                    ),
                    owner,
                )
            if change.model_fields_set & {"name", "description", "graph"}:
                strategy.updated_at = _now()
            await session.flush()
            await session.refresh(strategy)
            if version is not None:
                await session.refresh(version)
            else:
                version = await repository.get_version(
                    session, strategy.id, strategy.current_version
                )
            assert version is not None  # the current version always exists
        await self._committed(plan)
        return Saved(strategy, version)

    async def delete(
        self,
        *,
        owner: str,
        strategy_id: str,
        if_match: frozenset[int] | None,
    ) -> None:
        """Soft delete: the strategy disappears from the API, its versions stay stored."""
        async with self.sessions.begin() as session:
            strategy = await repository.get_live(session, owner, strategy_id, for_update=True)
            if strategy is None:
                raise NotFound(f"there is no strategy {strategy_id}")
            _check_precondition(strategy.current_version, None, if_match)
            strategy.deleted_at = _now()
            await self._stage(
                session,
                STRATEGY_DELETED,
                StrategyDeleted(
                    strategy_id=strategy.id,
                    owner_id=owner,
                    last_version=strategy.current_version,
                ),
                owner,
            )
        await self._committed()


def _now() -> Any:
    # The database clock, as for created_at: one clock for every timestamp of a row.
    return func.now()


def _check_precondition(
    current: int, expected: int | None, if_match: frozenset[int] | None
) -> None:
    if expected is not None and expected != current:
        raise Conflict(
            f"the strategy is at version {current}, not the expected version {expected}; "
            "reload it and apply your change again",
            errors=[{"code": "version_conflict", "current_version": current}],
        )
    if if_match is not None and current not in if_match:
        raise Conflict(
            f'If-Match does not name the current version "{current}"; reload and retry',
            errors=[{"code": "version_conflict", "current_version": current}],
        )
