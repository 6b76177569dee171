"""Sessions in PostgreSQL, with every announced change staged in the outbox.

running <-> paused, running|paused -> stopped, and -> failed (by a worker). Each transition is a
guarded ``UPDATE ... WHERE status IN (...)`` that also takes a new ``revision``, which is how
workers notice it. Fills and trades are inserted with ``ON CONFLICT DO NOTHING`` on (session,
sequence number) and their events staged only for rows actually inserted, so a bar applied a
second time (a worker restored from an older checkpoint) announces nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy.typing as npt
import orjson
from pydantic import BaseModel
from sqlalchemy import Row, and_, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import session_events as events
from algotrade.bars import series_key
from algotrade.db import copy_columns
from algotrade.errors import Conflict, NotFound
from algotrade.events import Topics, default_registry, new_event_id
from algotrade.outbox import OutboxRelay, stage_event
from algotrade.simulation.live import BarOutcome
from forward_test_service import models
from forward_test_service.models import ACTIVE, FAILED, PAUSED, RUNNING, SCHEMA, STOPPED
from forward_test_service.submission import NewSession

logger = logging.getLogger(__name__)

sessions_t = models.sessions
orders_t = models.session_orders
trades_t = models.session_trades
equity_t = models.session_equity
series_versions_t = models.series_versions
# `SessionStore.save_checkpoints` (tables of `models`, schema `forward`): an older checkpoint
# never replaces a newer one.
_COPY_CHECKPOINTS = text(
    "UPDATE forward.sessions AS s SET snapshot = u.snapshot, bars_applied = u.bars, "
    "last_bar_ts = u.last, summary = u.summary, updated_at = now() "
    "FROM unnest(CAST(:ids AS text[]), CAST(:bars AS bigint[]), CAST(:snapshots AS bytea[]), "
    "CAST(:lasts AS bigint[]), CAST(CAST(:summaries AS text[]) AS jsonb[])) "
    "AS u(id, bars, snapshot, last, summary) "
    "WHERE s.id = u.id AND s.bars_applied <= u.bars"
)
_INSERT_EQUITY = text(
    "INSERT INTO forward.session_equity (session_id, ts, equity, position) "
    "SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:ts AS bigint[]), "
    "CAST(:equity AS float8[]), CAST(:position AS float8[])) ON CONFLICT DO NOTHING"
)
EQUITY_COLUMNS = (("ts", "int8"), ("equity", "float8"), ("position", "float8"))
anomalies_t = models.session_anomalies

ERROR_MAX = 2_000
Action = str  # "pause" | "resume" | "stop" | "delete"

# action -> (statuses it applies to, new status, event type)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "pause": ((RUNNING,), PAUSED, events.PAUSED),
    "resume": ((PAUSED,), RUNNING, events.RESUMED),
    "stop": (ACTIVE, STOPPED, events.STOPPED),
}


def summary_of(account: Any) -> dict[str, Any]:
    """The account figures the API shows, as the worker last saw them."""
    return {
        "position": float(account.position),
        "cash": float(account.cash),
        "equity": float(account.equity),
        "warmed_up": bool(account.warmed_up),
        "bars_applied": int(account.bars_applied),
        "last_ts": account.last_ts,
    }


@dataclass
class Counters:
    """Per-session sequence numbers and anomaly counts, kept in each checkpoint's meta."""

    fills: int = 0
    trades: int = 0
    gaps: int = 0
    corrections: int = 0

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Counters:
        return cls(
            fills=int(meta.get("fills", 0)),
            trades=int(meta.get("trades", 0)),
            gaps=int(meta.get("gaps", 0)),
            corrections=int(meta.get("corrections", 0)),
        )

    def as_meta(self) -> dict[str, int]:
        return {
            "fills": self.fills,
            "trades": self.trades,
            "gaps": self.gaps,
            "corrections": self.corrections,
        }


@dataclass
class BarRecord:
    """What one session did on one bar, to be recorded in PostgreSQL (events included)."""

    session_id: str
    user_id: str
    outcome: BarOutcome | None
    first_fill: int  # sequence number of the outcome's first fill
    first_trade: int
    warmed_up: bool = False  # the account is warmed up after this bar
    gap: tuple[int, int] | None = None  # (first missing open time, how many)
    correction: dict[str, Any] | None = None
    failure: str | None = None


class SessionStore:
    """Reads and guarded writes of sessions, shared by the HTTP service and the workers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        topics: Topics,
        *,
        producer: str,
        relay: OutboxRelay | None = None,
    ) -> None:
        self._sessions = sessions
        self._topics = topics
        self._producer = producer
        self._relay = relay

    # ------------------------------------------------------------------ the API side

    async def create(self, new: NewSession, *, limit: int) -> Row[Any]:
        """Store a session and announce it, unless the user already has ``limit`` running or
        paused sessions (409). The user's sessions are counted under a per-user lock, so two
        concurrent creations cannot both slip under the limit."""
        session_id = new_event_id()
        account = new.account
        counters = Counters()
        async with self._sessions.begin() as session:
            await session.execute(
                select(func.pg_advisory_xact_lock(func.hashtext(f"forward.sessions:{new.user_id}")))
            )
            active = await session.scalar(
                select(func.count())
                .select_from(sessions_t)
                .where(
                    sessions_t.c.user_id == new.user_id,
                    sessions_t.c.status.in_(ACTIVE),
                    sessions_t.c.deleted_at.is_(None),
                )
            )
            if int(active or 0) >= limit:
                raise Conflict(
                    f"you already run {active} sessions, the most allowed; stop one first",
                    errors=[
                        {
                            "loc": ["body"],
                            "code": "too_many_sessions",
                            "message": f"at most {limit} running or paused sessions per user",
                        }
                    ],
                )
            row: Row[Any] = (
                await session.execute(
                    sessions_t.insert()
                    .values(
                        id=session_id,
                        user_id=new.user_id,
                        status=RUNNING,
                        strategy_id=new.strategy_id,
                        strategy_version=new.version,
                        plan_id=new.plan.plan_id,
                        plan=new.plan.to_bytes().decode(),
                        params=new.params,
                        symbol=new.symbol,
                        timeframe=new.timeframe,
                        owner=new.owner or "",
                        series_key=series_key(new.symbol, new.timeframe, new.owner),
                        config=new.resolved,
                        config_id=new.config.config_id,
                        capital=new.config.initial_capital,
                        mode=new.mode,
                        agent_id=new.agent_id,
                        agent_symbol=new.agent_symbol,
                        warmup=new.plan.warmup,
                        revision=models.revision_seq.next_value(),
                        snapshot=account.snapshot(),
                        bars_applied=account.bars_applied,
                        last_bar_ts=account.last_ts,
                        summary={**summary_of(account), **counters.as_meta()},
                        warmed_up_at=func.now() if account.warmed_up else None,
                    )
                    .returning(sessions_t)
                )
            ).one()
            await self.stage(
                session,
                events.STARTED,
                events.SessionStarted(
                    session_id=session_id,
                    strategy_id=new.strategy_id,
                    version=new.version,
                    plan_id=new.plan.plan_id,
                    symbol=new.symbol,
                    timeframe=new.timeframe,
                    owner=new.owner,
                    capital=new.config.initial_capital,
                    calendar=new.resolved["calendar"],
                    warmup=new.plan.warmup,
                    warmup_bars=new.warmup_bars,
                    last_bar_ts=account.last_ts,
                ),
                new.user_id,
                session_id,
            )
            if account.warmed_up and account.last_ts is not None:
                await self.stage(
                    session,
                    events.WARMED_UP,
                    events.SessionWarmedUp(
                        session_id=session_id,
                        ts=account.last_ts,
                        bars_applied=account.bars_applied,
                    ),
                    new.user_id,
                    session_id,
                )
            for outcome in new.outcomes:  # history fills nothing as a rule; record any it did
                if outcome.fills or outcome.closed:
                    await self._record_fills(
                        session,
                        BarRecord(
                            session_id, new.user_id, outcome, counters.fills, counters.trades
                        ),
                    )
                    counters.fills += len(outcome.fills)
                    counters.trades += len(outcome.closed)
            if counters.fills:
                row = (
                    await session.execute(
                        update(sessions_t)
                        .where(sessions_t.c.id == session_id)
                        .values(summary={**summary_of(account), **counters.as_meta()})
                        .returning(sessions_t)
                    )
                ).one()
        self.wake()
        return row

    async def get(self, user_id: str, session_id: str) -> Row[Any]:
        """The user's session; 404 for one that does not exist, is deleted or not theirs."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(sessions_t).where(
                        sessions_t.c.id == session_id.upper(),
                        sessions_t.c.user_id == user_id,
                        sessions_t.c.deleted_at.is_(None),
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"no session {session_id}")
        return row

    async def page(
        self,
        user_id: str,
        *,
        limit: int,
        before: str | None = None,
        status: str | None = None,
        strategy_id: str | None = None,
        symbol: str | None = None,
    ) -> Sequence[Row[Any]]:
        """The user's sessions, newest first (ids are ULIDs), ``limit`` from ``before``."""
        query = select(sessions_t).where(
            sessions_t.c.user_id == user_id, sessions_t.c.deleted_at.is_(None)
        )
        if before is not None:
            query = query.where(sessions_t.c.id < before)
        if status is not None:
            query = query.where(sessions_t.c.status == status)
        if strategy_id is not None:
            query = query.where(sessions_t.c.strategy_id == strategy_id)
        if symbol is not None:
            query = query.where(sessions_t.c.symbol == symbol)
        async with self._sessions() as session:
            return (
                await session.execute(query.order_by(sessions_t.c.id.desc()).limit(limit))
            ).all()

    async def control(
        self,
        user_id: str,
        session_id: str,
        action: Action,
        *,
        snapshot: tuple[bytes, dict[str, Any]] | None = None,
    ) -> Row[Any]:
        """Pause, resume, stop or (soft) delete a session; 409 when its status forbids it.

        ``snapshot`` (the latest checkpoint, from Redis) is copied with a stop or delete, so the
        row keeps where the session ended."""
        current = await self.get(user_id, session_id)
        values: dict[str, Any] = {
            "revision": models.revision_seq.next_value(),
            "updated_at": func.now(),
        }
        if action == "delete":
            allowed: tuple[str, ...] = (*ACTIVE, STOPPED, FAILED)
            values["deleted_at"] = func.now()
            if current.status in ACTIVE:
                values |= {"status": STOPPED, "stopped_at": func.now()}
            event = events.STOPPED if current.status in ACTIVE else None
        else:
            allowed, target, event = TRANSITIONS[action]
            values["status"] = target
            if target == STOPPED:
                values["stopped_at"] = func.now()
        if current.status not in allowed:
            raise Conflict(
                f"session {current.id} is {current.status}; it cannot {action}",
                errors=[
                    {
                        "loc": ["path", "session_id"],
                        "code": f"session_{current.status}",
                        "message": f"a {current.status} session cannot {action}",
                    }
                ],
            )
        if snapshot is not None and values.get("status") == STOPPED:
            data, meta = snapshot
            values |= _checkpoint_values(data, meta)
        async with self._sessions.begin() as session:
            where = and_(
                sessions_t.c.id == current.id,
                sessions_t.c.status.in_(allowed),
                sessions_t.c.deleted_at.is_(None),
            )
            row = (
                await session.execute(
                    update(sessions_t).where(where).values(**values).returning(sessions_t)
                )
            ).first()
            if row is None:  # changed meanwhile
                raise Conflict(f"session {current.id} changed meanwhile; read it and try again")
            if event is not None:
                await self.stage(
                    session,
                    event,
                    events.SessionStatusChanged(
                        session_id=row.id,
                        status=row.status,
                        last_bar_ts=row.last_bar_ts,
                    ),
                    user_id,
                    row.id,
                )
        self.wake()
        return cast(Row[Any], row)

    async def orders(
        self, user_id: str, session_id: str, *, offset: int, limit: int
    ) -> tuple[int, Sequence[Row[Any]]]:
        return await self._children(user_id, session_id, orders_t, offset=offset, limit=limit)

    async def terminal_of(self, session_id: str) -> TerminalRows:
        """What the terminal account of an agent-mode session is folded from."""
        async with self._sessions() as session:
            return await terminal_rows(session, session_id)

    async def trades(
        self, user_id: str, session_id: str, *, offset: int, limit: int
    ) -> tuple[int, Sequence[Row[Any]]]:
        return await self._children(user_id, session_id, trades_t, offset=offset, limit=limit)

    async def _children(
        self, user_id: str, session_id: str, table: Any, *, offset: int, limit: int
    ) -> tuple[int, Sequence[Row[Any]]]:
        row = await self.get(user_id, session_id)
        async with self._sessions() as session:
            total = await session.scalar(
                select(func.count()).select_from(table).where(table.c.session_id == row.id)
            )
            rows = (
                await session.execute(
                    select(table)
                    .where(table.c.session_id == row.id)
                    .order_by(table.c.seq)
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
        return int(total or 0), rows

    async def equity(self, session_id: str) -> dict[str, npt.NDArray[Any]]:
        """Every equity point copied to PostgreSQL, oldest first, as ``ts``, ``equity`` and
        ``position`` arrays (callers checked access)."""
        async with self._sessions() as session:
            return await copy_columns(
                session,
                "SELECT ts, equity, position FROM forward.session_equity WHERE session_id = $1 "
                "ORDER BY ts",
                session_id,
                columns=EQUITY_COLUMNS,
            )

    # ------------------------------------------------------------------ the worker side

    async def series_version(self, series: str) -> tuple[int, int]:
        """``(rows, sum of revisions)`` of the sessions following ``series``: the per-bar
        question "did anything change?". Every creation and status change takes a new,
        larger revision for its row, so the sum moves even when transactions commit out of
        sequence order (a maximum would not). One row of ``series_versions``, which a trigger
        keeps in the transaction that changes a session (migration 0007)."""
        query = select(series_versions_t.c.sessions, series_versions_t.c.revisions).where(
            series_versions_t.c.series_key == series
        )
        async with self._sessions() as session:
            row = (await session.execute(query)).first()
        return (0, 0) if row is None else (int(row.sessions), int(row.revisions))

    async def active_in_series(self, series: str) -> dict[str, str]:
        """``{session id: status}`` of the running and paused sessions following ``series``:
        the per-bar look-up, so it reads two narrow columns only."""
        query = select(sessions_t.c.id, sessions_t.c.status).where(
            sessions_t.c.series_key == series,
            sessions_t.c.status.in_(ACTIVE),
            sessions_t.c.deleted_at.is_(None),
        )
        async with self._sessions() as session:
            return {row.id: row.status for row in (await session.execute(query)).all()}

    async def active_on_shared_series(self) -> Sequence[Row[Any]]:
        """Running and paused sessions following another user's series (shared with theirs);
        `forward_test_service.access` checks that each is still shared."""
        query = select(
            sessions_t.c.id,
            sessions_t.c.user_id,
            sessions_t.c.symbol,
            sessions_t.c.timeframe,
            sessions_t.c.owner,
        ).where(
            sessions_t.c.status.in_(ACTIVE),
            sessions_t.c.deleted_at.is_(None),
            sessions_t.c.owner != "",
            sessions_t.c.owner != sessions_t.c.user_id,
        )
        async with self._sessions() as session:
            return cast(Sequence[Row[Any]], (await session.execute(query)).all())

    async def rows(self, session_ids: Sequence[str]) -> Sequence[Row[Any]]:
        """Whole session rows (plan, config, checkpoint copy), to restore them."""
        async with self._sessions() as session:
            return (
                await session.execute(select(sessions_t).where(sessions_t.c.id.in_(session_ids)))
            ).all()

    async def record(self, records: Sequence[BarRecord]) -> None:
        """Fills, trades, gaps, corrections, warm-ups and failures of one bar batch, with
        their events, in one transaction."""
        if not any(
            (r.outcome is not None and (r.outcome.fills or r.outcome.closed))
            or r.warmed_up
            or r.gap
            or r.correction
            or r.failure
            for r in records
        ):
            return
        async with self._sessions.begin() as session:
            for r in records:
                if r.outcome is not None and (r.outcome.fills or r.outcome.closed):
                    await self._record_fills(session, r)
                if r.warmed_up and r.outcome is not None:
                    await self._record_warm(session, r)
                if r.gap is not None:
                    first, count = r.gap
                    await session.execute(
                        pg_insert(anomalies_t)
                        .values(session_id=r.session_id, kind="gap", ts=first, bars=count)
                        .on_conflict_do_nothing()
                    )
                if r.correction is not None:
                    await session.execute(
                        pg_insert(anomalies_t)
                        .values(
                            session_id=r.session_id,
                            kind="correction",
                            ts=r.correction["ts"],
                            revision=r.correction.get("revision", 0),
                            detail=r.correction,
                        )
                        .on_conflict_do_nothing()
                    )
                if r.failure is not None:
                    await self._record_failure(session, r)
        self.wake()

    async def save_checkpoints(
        self,
        checkpoints: Sequence[tuple[str, bytes, dict[str, Any]]],
        equity: dict[str, list[list[float]]],
    ) -> None:
        """Copy checkpoints ``(session id, snapshot, meta)`` and equity points to PostgreSQL;
        an older checkpoint never replaces a newer one."""
        # Each is one statement over arrays (an UPDATE or INSERT per row cost ~1-2 ms each).
        async with self._sessions.begin() as session:
            if checkpoints:
                await session.execute(
                    _COPY_CHECKPOINTS,
                    {
                        "ids": [sid for sid, _, _ in checkpoints],
                        "bars": [int(meta.get("bars_applied", 0)) for _, _, meta in checkpoints],
                        "snapshots": [data for _, data, _ in checkpoints],
                        "lasts": [meta.get("last_ts") for _, _, meta in checkpoints],
                        "summaries": [orjson.dumps(meta).decode() for _, _, meta in checkpoints],
                    },
                )
            rows = [(sid, int(p[0]), p[1], p[2]) for sid, points in equity.items() for p in points]
            if rows:
                ids, ts, values, positions = (list(column) for column in zip(*rows, strict=True))
                await session.execute(
                    _INSERT_EQUITY,
                    {"ids": ids, "ts": ts, "equity": values, "position": positions},
                )

    async def fail(self, session_id: str, user_id: str, reason: str) -> None:
        async with self._sessions.begin() as session:
            await self._record_failure(
                session, BarRecord(session_id, user_id, None, 0, 0, failure=reason)
            )
        self.wake()

    # ------------------------------------------------------------------ helpers

    async def _record_fills(self, session: AsyncSession, r: BarRecord) -> None:
        assert r.outcome is not None
        for k, fill in enumerate(r.outcome.fills):
            seq = r.first_fill + k
            inserted = (
                await session.execute(
                    pg_insert(orders_t)
                    .values(
                        session_id=r.session_id,
                        seq=seq,
                        ts=int(fill.ts),
                        side=fill.side,
                        quantity=float(fill.quantity),
                        price=float(fill.price),
                        fee=float(fill.fee),
                        reason=str(fill.reason),
                    )
                    .on_conflict_do_nothing()
                    .returning(orders_t.c.seq)
                )
            ).first()
            if inserted is not None:
                await self.stage(
                    session,
                    events.ORDER_FILLED,
                    events.OrderFilled(
                        session_id=r.session_id,
                        seq=seq,
                        ts=int(fill.ts),
                        side=fill.side,
                        quantity=float(fill.quantity),
                        price=float(fill.price),
                        fee=float(fill.fee),
                        reason=str(fill.reason),
                    ),
                    r.user_id,
                    r.session_id,
                )
        for k, trade in enumerate(r.outcome.closed):
            seq = r.first_trade + k
            values = {
                "side": trade.side,
                "entry_ts": int(trade.entry_ts),
                "exit_ts": int(trade.exit_ts),
                "entry_price": float(trade.entry_price),
                "exit_price": float(trade.exit_price),
                "quantity": float(trade.quantity),
                "pnl": float(trade.pnl),
                "fees": float(trade.fees),
                "exit_reason": str(trade.exit_reason),
            }
            inserted = (
                await session.execute(
                    pg_insert(trades_t)
                    .values(session_id=r.session_id, seq=seq, **values)
                    .on_conflict_do_nothing()
                    .returning(trades_t.c.seq)
                )
            ).first()
            if inserted is not None:
                await self.stage(
                    session,
                    events.TRADE_CLOSED,
                    events.TradeClosed(session_id=r.session_id, seq=seq, **values),
                    r.user_id,
                    r.session_id,
                )

    async def _record_warm(self, session: AsyncSession, r: BarRecord) -> None:
        assert r.outcome is not None
        first = (
            await session.execute(
                update(sessions_t)
                .where(sessions_t.c.id == r.session_id, sessions_t.c.warmed_up_at.is_(None))
                .values(warmed_up_at=func.now())
                .returning(sessions_t.c.bars_applied)
            )
        ).first()
        if first is not None:
            await self.stage(
                session,
                events.WARMED_UP,
                events.SessionWarmedUp(
                    session_id=r.session_id, ts=int(r.outcome.ts), bars_applied=0
                ),
                r.user_id,
                r.session_id,
            )

    async def _record_failure(self, session: AsyncSession, r: BarRecord) -> None:
        reason = (r.failure or "failed")[:ERROR_MAX]
        row = (
            await session.execute(
                update(sessions_t)
                .where(sessions_t.c.id == r.session_id, sessions_t.c.status.in_(ACTIVE))
                .values(
                    status=FAILED,
                    error=reason,
                    revision=models.revision_seq.next_value(),
                    updated_at=func.now(),
                    stopped_at=func.now(),
                )
                .returning(sessions_t.c.last_bar_ts)
            )
        ).first()
        if row is not None:
            await self.stage(
                session,
                events.FAILED,
                events.SessionFailed(
                    session_id=r.session_id, reason=reason, last_bar_ts=row.last_bar_ts
                ),
                r.user_id,
                r.session_id,
            )

    async def stage(
        self,
        session: AsyncSession,
        type_: str,
        payload: BaseModel,
        user_id: str,
        session_id: str,
    ) -> None:
        """Stage a session event in ``session``'s transaction (the outbox relay sends it
        after the commit; `wake` it then)."""
        envelope = default_registry.build(
            type_, payload, producer=self._producer, key=session_id, user_id=user_id
        )
        await stage_event(session, SCHEMA.outbox, self._topics.session_events, envelope)

    def wake(self) -> None:
        if self._relay is not None:
            self._relay.wake()


def _checkpoint_values(data: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "snapshot": data,
        "bars_applied": int(meta.get("bars_applied", 0)),
        "last_bar_ts": meta.get("last_ts"),
        "summary": meta,
        "updated_at": func.now(),
    }


@dataclass(frozen=True, slots=True)
class TerminalRows:
    """A session's orders (in order) and the terminal's own deals on them: what
    `forward_test_service.terminal.fold` folds."""

    orders: Sequence[Row[Any]]
    deals: Sequence[Row[Any]]


async def terminal_rows(db: AsyncSession, session_id: str) -> TerminalRows:
    deals_t = models.terminal_deals
    orders = (
        await db.execute(
            select(orders_t).where(orders_t.c.session_id == session_id).order_by(orders_t.c.seq)
        )
    ).all()
    deals = (await db.execute(select(deals_t).where(deals_t.c.session_id == session_id))).all()
    return TerminalRows(orders, deals)
