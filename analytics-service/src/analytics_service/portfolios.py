"""Users' portfolio definitions (``analytics.portfolios``): members and weighting only; the
analysis is made when one is read, from the members' data as it is then."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.db import get_owned, list_owned
from algotrade.errors import Conflict, NotFound, ValidationFailed
from algotrade.events import new_event_id
from analytics_service.models import portfolios as portfolios_t
from analytics_service.models import runs as runs_t
from analytics_service.schemas import PortfolioCreate


class Portfolios:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, per_user: int) -> None:
        self._sessions = sessions
        self._per_user = per_user

    async def create(
        self, user_id: str, body: PortfolioCreate, *, max_members: int
    ) -> dict[str, Any]:
        """Store the definition once every member is one of ``user_id``'s known runs."""
        if len(body.members) > max_members:
            raise ValidationFailed(
                f"a portfolio has at most {max_members} members",
                errors=[
                    {"loc": ["body", "members"], "code": "too_many", "message": str(max_members)}
                ],
            )
        async with self._sessions.begin() as db:
            known = {
                (r.kind, r.id)
                for r in await db.execute(
                    select(runs_t.c.kind, runs_t.c.id).where(
                        runs_t.c.user_id == user_id,
                        runs_t.c.id.in_([m.id for m in body.members]),
                    )
                )
            }
            missing = [
                {
                    "loc": ["body", "members", i],
                    "code": "unknown_member",
                    "message": f"no {m.kind} {m.id} of yours is known to analytics",
                }
                for i, m in enumerate(body.members)
                if (m.kind, m.id) not in known
            ]
            if missing:
                raise ValidationFailed(
                    "some members are not yours or not known yet", errors=missing
                )
            count = await db.scalar(
                select(func.count())
                .select_from(portfolios_t)
                .where(portfolios_t.c.user_id == user_id)
            )
            if (count or 0) >= self._per_user:
                raise Conflict(f"you have {count} portfolios, the most one user may keep")
            row = (
                await db.execute(
                    portfolios_t.insert()
                    .values(
                        id=new_event_id(),
                        user_id=user_id,
                        name=body.name,
                        weighting=body.weighting,
                        members=[m.model_dump() for m in body.members],
                        benchmark=body.benchmark,
                    )
                    .returning(portfolios_t)
                )
            ).one()
        return dict(row._mapping)

    async def get(self, user_id: str, portfolio_id: str) -> dict[str, Any]:
        async with self._sessions() as db:
            return await get_owned(db, portfolios_t, portfolio_id, user_id, what="portfolio")

    async def list(self, user_id: str) -> list[dict[str, Any]]:
        async with self._sessions() as db:
            return await list_owned(db, portfolios_t, user_id, limit=self._per_user)

    async def delete(self, user_id: str, portfolio_id: str) -> None:
        async with self._sessions.begin() as db:
            result = await db.execute(
                delete(portfolios_t).where(
                    portfolios_t.c.id == portfolio_id, portfolios_t.c.user_id == user_id
                )
            )
        if not cast(CursorResult[Any], result).rowcount:
            raise NotFound(f"no portfolio {portfolio_id!r}")
