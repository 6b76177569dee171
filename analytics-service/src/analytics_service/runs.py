"""A run's data: its description, equity curve and trades, wherever they live.

A session's curve and trades are in this service's tables (from ``session.events.v1``); its
curve is read with one binary ``COPY`` straight into NumPy (`algotrade.db.copy_columns`). A
backtest's are the Parquet files the backtesting service wrote to S3; they never change, so a
few are kept in memory.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade.db import copy_columns
from algotrade.errors import DependencyUnavailable, NotFound
from algotrade.metrics import periods_per_year
from algotrade.storage import ObjectStore
from analytics_service.models import BACKTEST, SESSION, run_fills, run_trades
from analytics_service.models import runs as runs_t

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Trades:
    """Closed trades in exit order (sessions) or entry order (backtests)."""

    side: npt.NDArray[np.int8]  # +1 long, -1 short
    entry_ts: IntArray
    exit_ts: IntArray
    entry_price: FloatArray
    exit_price: FloatArray
    quantity: FloatArray
    pnl: FloatArray

    def __len__(self) -> int:
        return int(self.pnl.shape[0])


@dataclass(frozen=True, slots=True)
class RunData:
    """What an analysis needs of one session or backtest."""

    id: str
    kind: str
    user_id: str
    status: str
    strategy_id: str | None
    strategy_version: int | None
    plan_id: str | None
    symbol: str
    timeframe: str
    calendar: str
    capital: float
    periods: float
    ts: IntArray
    equity: FloatArray
    position: FloatArray
    trades: Trades
    open_trades: int
    traded_notional: float
    expected_points: int | None
    """Points the session applied live (its curve is complete when it holds them all)."""

    @property
    def name(self) -> str:
        version = f" v{self.strategy_version}" if self.strategy_version is not None else ""
        return f"{self.kind} {self.id[-6:]}: {self.symbol} {self.timeframe}{version}"


def empty_trades() -> Trades:
    f = np.empty(0, dtype=np.float64)
    i = np.empty(0, dtype=np.int64)
    return Trades(np.empty(0, dtype=np.int8), i, i, f, f, f, f)


class RunStore:
    """Runs of the analytics schema and the backtest results in S3."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        objects: ObjectStore | None,
        *,
        cache_entries: int,
    ) -> None:
        self._sessions = sessions
        self._objects = objects
        self._cache: OrderedDict[str, RunData] = OrderedDict()
        self._cache_entries = cache_entries

    async def row(self, user_id: str, run_id: str, kind: str) -> Any:
        """The run ``run_id`` of kind ``kind`` if ``user_id`` owns it; a 404 otherwise."""
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(runs_t).where(
                        runs_t.c.id == run_id, runs_t.c.user_id == user_id, runs_t.c.kind == kind
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"no {kind} {run_id!r} known to analytics")
        return row

    async def rows_of_strategy(self, user_id: str, strategy_id: str, version: int) -> list[Any]:
        async with self._sessions() as db:
            result = await db.execute(
                select(runs_t)
                .where(
                    runs_t.c.user_id == user_id,
                    runs_t.c.strategy_id == strategy_id,
                    runs_t.c.strategy_version == version,
                )
                .order_by(runs_t.c.id)
            )
            return list(result.all())

    async def load(self, user_id: str, run_id: str, kind: str) -> RunData:
        return await self.load_row(await self.row(user_id, run_id, kind))

    async def load_row(self, row: Any) -> RunData:
        if row.kind == BACKTEST:
            cached = self._cache.get(row.id)
            if cached is not None:
                self._cache.move_to_end(row.id)
                return cached
            data = await self._load_backtest(row)
            if self._cache_entries:
                self._cache[row.id] = data
                while len(self._cache) > self._cache_entries:
                    self._cache.popitem(last=False)
            return data
        return await self._load_session(row)

    async def load_many(self, rows: Sequence[Any]) -> list[RunData]:
        return [await self.load_row(row) for row in rows]

    # ------------------------------------------------------------------ sessions

    async def _load_session(self, row: Any) -> RunData:
        if row.capital is None or row.timeframe is None:
            raise NotFound(f"session {row.id!r} has not been described yet (no session.started)")
        async with self._sessions() as db:
            # One snapshot for the bar count and the points: read apart, a batch committing
            # between the two would show more points than bars (ingest writes both at once).
            await db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            counted = (
                await db.execute(
                    select(runs_t.c.bars_applied, runs_t.c.warmup_bars).where(runs_t.c.id == row.id)
                )
            ).one()
            curve = await copy_columns(
                db,
                "SELECT ts, equity, position FROM analytics.run_points WHERE run_id = $1 "
                "ORDER BY ts",
                row.id,
                columns=(("ts", "int8"), ("equity", "float8"), ("position", "float8")),
            )
            trades = (
                await db.execute(
                    select(run_trades)
                    .where(run_trades.c.run_id == row.id)
                    .order_by(run_trades.c.seq)
                )
            ).all()
            notional = (
                (await db.execute(select(run_fills.c.notional).where(run_fills.c.run_id == row.id)))
                .scalars()
                .all()
            )
        ts, equity, position = curve["ts"], curve["equity"], curve["position"]
        calendar = row.calendar or "24x7"
        expected = None
        if counted.bars_applied is not None and counted.warmup_bars is not None:
            expected = int(counted.bars_applied) - int(counted.warmup_bars)
        return RunData(
            id=row.id,
            kind=SESSION,
            user_id=row.user_id,
            status=row.status,
            strategy_id=row.strategy_id,
            strategy_version=row.strategy_version,
            plan_id=row.plan_id,
            symbol=row.symbol,
            timeframe=row.timeframe,
            calendar=calendar,
            capital=float(row.capital),
            periods=periods_per_year(row.timeframe, calendar),
            ts=ts,
            equity=equity,
            position=position,
            trades=Trades(
                side=np.array([1 if t.side == "long" else -1 for t in trades], dtype=np.int8),
                entry_ts=np.array([t.entry_ts for t in trades], dtype=np.int64),
                exit_ts=np.array([t.exit_ts for t in trades], dtype=np.int64),
                entry_price=np.array([t.entry_price for t in trades], dtype=np.float64),
                exit_price=np.array([t.exit_price for t in trades], dtype=np.float64),
                quantity=np.array([t.quantity for t in trades], dtype=np.float64),
                pnl=np.array([t.pnl for t in trades], dtype=np.float64),
            ),
            open_trades=int(position.shape[0] > 0 and position[-1] != 0.0),
            traded_notional=float(math.fsum(notional)),
            expected_points=expected,
        )

    # ------------------------------------------------------------------ backtests

    async def _load_backtest(self, row: Any) -> RunData:
        if self._objects is None:
            raise DependencyUnavailable("this service has no object store")
        prefix = row.results_prefix
        try:
            summary = await self._objects.get_json(prefix + "summary.json")
            curve = await self._objects.get_parquet(prefix + "equity.parquet")
            trades = await self._objects.get_parquet(prefix + "trades.parquet")
        except NotFound:
            raise NotFound(f"the results of backtest {row.id!r} are gone") from None
        calendar = summary.get("calendar") or row.calendar or "24x7"
        timeframe = summary.get("timeframe") or row.timeframe
        is_open = trades.column("is_open").to_numpy(zero_copy_only=False).astype(bool)
        closed = trades.filter(pc.invert(trades.column("is_open")))

        def col(table: pa.Table, name: str) -> FloatArray:
            return np.asarray(table.column(name).to_numpy(), dtype=np.float64)

        def stamps(table: pa.Table, name: str) -> IntArray:
            return np.asarray(table.column(name).cast(pa.int64()).to_numpy(), dtype=np.int64)

        quantity, entry = col(trades, "quantity"), col(trades, "entry_price")
        notional = float(np.sum(quantity * entry)) + float(
            np.sum(quantity[~is_open] * col(trades, "exit_price")[~is_open])
        )
        side = closed.column("side").to_pylist()
        return RunData(
            id=row.id,
            kind=BACKTEST,
            user_id=row.user_id,
            status=row.status,
            strategy_id=row.strategy_id,
            strategy_version=row.strategy_version,
            plan_id=row.plan_id,
            symbol=row.symbol,
            timeframe=timeframe,
            calendar=calendar,
            capital=float(summary["config"]["initial_capital"]),
            periods=float(summary.get("periods_per_year") or periods_per_year(timeframe, calendar)),
            ts=stamps(curve, "ts"),
            equity=col(curve, "equity"),
            position=col(curve, "position"),
            trades=Trades(
                side=np.array([1 if s == "long" else -1 for s in side], dtype=np.int8),
                entry_ts=stamps(closed, "entry_time"),
                exit_ts=stamps(closed, "exit_time"),
                entry_price=col(closed, "entry_price"),
                exit_price=col(closed, "exit_price"),
                quantity=col(closed, "quantity"),
                pnl=col(closed, "pnl"),
            ),
            open_trades=int(is_open.sum()),
            traded_notional=notional,
            expected_points=None,
        )
