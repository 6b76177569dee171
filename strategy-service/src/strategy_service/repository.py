"""Queries on strategies and versions. Every read of a strategy is scoped to its owner and to
live (not deleted) rows, so another user's or a deleted strategy is simply not found."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from strategy_service.models import Strategy, StrategyVersion
from strategy_service.schemas import ListSort


def _live(owner_id: str) -> list[ColumnElement[bool]]:
    return [Strategy.owner_id == owner_id, Strategy.deleted_at.is_(None)]


def _current_version_join() -> ColumnElement[bool]:
    return (StrategyVersion.strategy_id == Strategy.id) & (
        StrategyVersion.n == Strategy.current_version
    )


async def get_live(
    session: AsyncSession, owner_id: str, strategy_id: str, *, for_update: bool = False
) -> Strategy | None:
    query = select(Strategy).where(Strategy.id == strategy_id, *_live(owner_id))
    if for_update:
        query = query.with_for_update()
    result: Strategy | None = await session.scalar(query)
    return result


async def get_live_with_current(
    session: AsyncSession, owner_id: str, strategy_id: str
) -> tuple[Strategy, StrategyVersion] | None:
    row = (
        await session.execute(
            select(Strategy, StrategyVersion)
            .join(StrategyVersion, _current_version_join())
            .where(Strategy.id == strategy_id, *_live(owner_id))
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


def _search(q: str) -> ColumnElement[bool]:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(
        Strategy.name.ilike(pattern, escape="\\"),
        Strategy.description.ilike(pattern, escape="\\"),
    )


_ORDER: dict[str, tuple[Any, ...]] = {
    "updated": (Strategy.updated_at.desc(), Strategy.id.desc()),
    "created": (Strategy.created_at.desc(), Strategy.id.desc()),
    "name": (func.lower(Strategy.name), Strategy.id),
}


async def list_live(
    session: AsyncSession,
    owner_id: str,
    *,
    q: str | None,
    sort: ListSort,
    limit: int,
    offset: int,
) -> tuple[Sequence[Row[Strategy, str | None]], int]:
    """One page of ``(strategy, current plan id)`` and the total number of matches."""
    conditions = _live(owner_id)
    if q:
        conditions.append(_search(q))
    total = await session.scalar(select(func.count()).select_from(Strategy).where(*conditions))
    rows = (
        await session.execute(
            select(Strategy, StrategyVersion.plan_id)
            .join(StrategyVersion, _current_version_join())
            .where(*conditions)
            .order_by(*_ORDER[sort])
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return rows, int(total or 0)


async def get_version(session: AsyncSession, strategy_id: str, n: int) -> StrategyVersion | None:
    result: StrategyVersion | None = await session.get(StrategyVersion, (strategy_id, n))
    return result


async def list_versions(
    session: AsyncSession, strategy_id: str, *, limit: int, offset: int
) -> tuple[Sequence[Row[int, str | None, datetime, str]], int]:
    """One page of version summaries, newest first, and the number of versions."""
    total = await session.scalar(
        select(func.count())
        .select_from(StrategyVersion)
        .where(StrategyVersion.strategy_id == strategy_id)
    )
    rows = (
        await session.execute(
            select(
                StrategyVersion.n,
                StrategyVersion.plan_id,
                StrategyVersion.created_at,
                StrategyVersion.created_by,
            )
            .where(StrategyVersion.strategy_id == strategy_id)
            .order_by(StrategyVersion.n.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return rows, int(total or 0)
