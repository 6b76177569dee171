"""What the analytics service learns from ``session.events.v1`` and ``backtest.events.v1``.

Each event is applied in one transaction together with its claim in ``processed_events``
(`algotrade.db.claim_event`), so an event delivered again changes nothing. What a fetch brings
for a partition is applied as one batch, in one transaction (`Ingestor.batch`): the claims in
one statement, every equity point in one, each run's bar count once; should the batch fail,
the consumer runner applies its events one by one (`algotrade.bus`). Rows are keyed
by what they describe (a session's equity point by bar time, a trade by its number), so even a
point sent twice in two events (a restarted forward-test worker sends its pending points again)
is stored once. Events of one session share a partition, but the outbox-relayed ones
(``session.started``) may arrive after the directly sent ``session.equity``: whichever comes
first creates the run, the other completes it.

Only single backtests become runs; a sweep's chunks are many runs the sweep API ranks already.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord
from pydantic import BaseModel
from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import backtest_events, session_events
from algotrade.bus import Decoded
from algotrade.db import claim_event, claim_events
from algotrade.events import Envelope
from analytics_service.models import BACKTEST, SCHEMA, SESSION, run_fills, run_trades
from analytics_service.models import runs as runs_t

logger = logging.getLogger(__name__)

CONSUMER = "analytics"
STATUS_OF = {
    session_events.PAUSED: "paused",
    session_events.RESUMED: "running",
    session_events.STOPPED: "stopped",
    session_events.FAILED: "failed",
}


class Ingestor:
    """The handler of both topics (`algotrade.bus.EventHandler`)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __call__(
        self, envelope: Envelope, payload: BaseModel, record: ConsumerRecord[Any, Any]
    ) -> None:
        if envelope.user_id is None:
            return  # every run has an owner; an event without one describes nothing of ours
        async with self._sessions.begin() as db:
            if not await claim_event(db, SCHEMA.processed_events, CONSUMER, envelope.id):
                return
            await self._apply(db, envelope.user_id, envelope.type, payload)

    async def batch(self, items: Sequence[Decoded]) -> None:
        """Apply ``items`` in one transaction (all or nothing; see the module doc)."""
        async with self._sessions.begin() as db:
            claimed = await claim_events(
                db, SCHEMA.processed_events, CONSUMER, [envelope.id for envelope, _, _ in items]
            )
            bars: dict[str, tuple[str, int]] = {}  # run -> (user, bars applied)
            points: list[tuple[str, int, float, float]] = []
            for envelope, payload, _ in items:
                user = envelope.user_id
                if envelope.id not in claimed or user is None:
                    continue
                claimed.discard(envelope.id)  # the same event twice in one batch: once
                if isinstance(payload, session_events.SessionEquity):
                    run = payload.session_id
                    bars[run] = (user, max(payload.bars_applied, bars.get(run, (user, 0))[1]))
                    points.extend((run, ts, eq, pos) for ts, eq, pos in payload.points)
                else:
                    await self._apply(db, user, envelope.type, payload)
            if bars:
                await _count_bars(db, bars)
            await _insert_points(db, points)

    async def _apply(self, db: AsyncSession, user: str, kind: str, payload: BaseModel) -> None:
        if isinstance(payload, session_events.SessionStarted):
            await _upsert_run(
                db,
                payload.session_id,
                SESSION,
                user,
                status="running",
                strategy_id=payload.strategy_id,
                strategy_version=payload.version,
                plan_id=payload.plan_id,
                symbol=payload.symbol,
                timeframe=payload.timeframe,
                calendar=payload.calendar,
                capital=payload.capital,
                warmup_bars=payload.warmup_bars,
            )
        elif isinstance(payload, session_events.SessionEquity):
            await _count_bars(db, {payload.session_id: (user, payload.bars_applied)})
            run = payload.session_id
            await _insert_points(db, [(run, ts, eq, pos) for ts, eq, pos in payload.points])
        elif isinstance(payload, session_events.TradeClosed):
            await _upsert_run(db, payload.session_id, SESSION, user, status="running")
            await db.execute(
                insert(run_trades)
                .values(run_id=payload.session_id, **payload.model_dump(exclude={"session_id"}))
                .on_conflict_do_nothing()
            )
        elif isinstance(payload, session_events.OrderFilled):
            await _upsert_run(db, payload.session_id, SESSION, user, status="running")
            await db.execute(
                insert(run_fills)
                .values(
                    run_id=payload.session_id,
                    seq=payload.seq,
                    ts=payload.ts,
                    notional=payload.quantity * payload.price,
                )
                .on_conflict_do_nothing()
            )
        elif isinstance(
            payload, session_events.SessionStatusChanged | session_events.SessionFailed
        ):
            status = STATUS_OF[kind]
            await _upsert_run(db, payload.session_id, SESSION, user, status=status)
            await db.execute(
                runs_t.update()
                .where(runs_t.c.id == payload.session_id, runs_t.c.status.notin_(FINAL))
                .values(status=status, updated_at=func.now())
            )
        elif isinstance(payload, backtest_events.BacktestCompleted) and payload.kind == BACKTEST:
            summary = payload.summary
            await _upsert_run(
                db,
                payload.job_id,
                BACKTEST,
                user,
                status="completed",
                strategy_id=payload.strategy_id,
                strategy_version=payload.strategy_version,
                plan_id=payload.plan_id,
                symbol=payload.symbol,
                timeframe=payload.timeframe,
                calendar=summary.get("calendar"),
                results_prefix=payload.results_prefix,
                summary=summary,
            )


FINAL = ("stopped", "failed")


_INSERT_POINTS = text(
    "INSERT INTO analytics.run_points (run_id, ts, equity, position) "
    "SELECT * FROM unnest(CAST(:run AS text[]), CAST(:ts AS bigint[]), "
    "CAST(:equity AS float8[]), CAST(:position AS float8[])) ON CONFLICT DO NOTHING"
)


async def _insert_points(db: AsyncSession, points: list[tuple[str, int, float, float]]) -> None:
    """Every point in one statement, as four arrays (a point already stored stays as is)."""
    if not points:
        return
    run, ts, equity, position = (list(column) for column in zip(*points, strict=True))
    await db.execute(_INSERT_POINTS, {"run": run, "ts": ts, "equity": equity, "position": position})


async def _count_bars(db: AsyncSession, bars: dict[str, tuple[str, int]]) -> None:
    """Create each session's run if new, and keep the highest bar count it reported."""
    statement = insert(runs_t).values(
        [
            {"id": run, "kind": SESSION, "user_id": user, "status": "running", "bars_applied": n}
            for run, (user, n) in bars.items()
        ]
    )
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=[runs_t.c.id],
            set_={
                "bars_applied": func.greatest(
                    func.coalesce(runs_t.c.bars_applied, 0), statement.excluded.bars_applied
                )
            },
            where=runs_t.c.user_id == statement.excluded.user_id,
        )
    )


async def _upsert_run(
    db: AsyncSession, run_id: str, kind: str, user: str, *, status: str, **values: Any
) -> None:
    """Create the run, or fill in what ``values`` knows (never another user's run)."""
    known = {key: value for key, value in values.items() if value is not None}
    statement = insert(runs_t).values(id=run_id, kind=kind, user_id=user, status=status, **known)
    if known:
        statement = statement.on_conflict_do_update(
            index_elements=[runs_t.c.id],
            set_={**known, "updated_at": func.now()},
            where=runs_t.c.user_id == user,
        )
    else:
        statement = statement.on_conflict_do_nothing()
    await db.execute(statement)
