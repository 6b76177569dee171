"""Replays: a stored series played back as if live, into the same path as live bars.

A replay reads a series from history in pages and hands each bar to `BarIngestor` when it
"closes" on a simulated clock running ``speed`` times faster than the wall clock (bar ``i`` is
due ``(ts_i + timeframe - ts_0) / speed`` seconds after the start), so its bars reach the
window, history and ``market.bars`` exactly like bars from a platform or an exchange. With
``speed="max"`` it writes as fast as the ingest path takes it (5,000 bars per call).

Bars are written under a *target* symbol whose last segment starts with ``R`` (default
``<SYMBOL>.R<6 characters of the replay id>``): a replay can never rewrite a real market's
history, and two replays never collide. A replay belongs to the user who started it and writes
into that user's own series; it reads whichever series the user may read (their own, one
shared with them, or the platform's: `market_data_service.owners`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import epoch
from algotrade.bars import (
    MAX_TS,
    MIN_TS,
    SYMBOL_MAX_LENGTH,
    TIMEFRAME_SECONDS,
    Bars,
    normalize_symbol,
)
from algotrade.db import get_owned, list_owned
from algotrade.errors import Conflict, NotFound, ValidationFailed
from algotrade.events import new_event_id
from market_data_service import history, models
from market_data_service.batch import BarBatch
from market_data_service.ingest import BarIngestor

logger = logging.getLogger(__name__)

PAGE_BARS = 5_000
STALE_AFTER = timedelta(minutes=2)
TARGET_PATTERN = re.compile(r"\.R[A-Z0-9]{0,12}$")

_COUNT = text(
    """
SELECT count(*) FROM market.bars
WHERE owner = :owner AND symbol = :symbol AND timeframe = :timeframe
  AND ts >= to_timestamp(:lo) AND ts < to_timestamp(:hi)
"""
)


@dataclass
class ReplayPlan:
    id: str
    user_id: str
    source_owner: str
    symbol: str
    target: str
    timeframe: str
    speed: float | None
    start: int
    end: int


@dataclass
class _Running:
    plan: ReplayPlan
    task: asyncio.Task[None]
    stop: asyncio.Event


class ReplayManager:
    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        ingestor: BarIngestor,
        max_active_per_user: int,
        progress_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._ingestor = ingestor
        self._max_active = max_active_per_user
        self._progress_seconds = progress_seconds
        self._running: dict[str, _Running] = {}

    async def start(
        self,
        *,
        user_id: str,
        source_owner: str,
        symbol: str,
        timeframe: str,
        start: datetime | None,
        end: datetime | None,
        speed: float | None,
        target_symbol: str | None,
    ) -> str:
        replay_id = new_event_id()
        source = parse_symbol(symbol, "symbol")
        target = self._target(source, target_symbol, replay_id)
        lo = epoch.seconds_from_datetime(start) if start is not None else MIN_TS
        hi = epoch.seconds_from_datetime(end) if end is not None else MAX_TS
        if hi <= lo:
            raise ValidationFailed(
                "end must be after start",
                errors=[{"loc": ["body", "end"], "code": "empty_range", "message": "end <= start"}],
            )
        if speed is not None and not (0 < speed <= 1e7):
            raise ValidationFailed(
                "speed must be > 0 and <= 1e7, or 'max'",
                errors=[{"loc": ["body", "speed"], "code": "out_of_range", "message": str(speed)}],
            )
        async with self._sessions() as session, session.begin():
            active = await session.scalar(
                select(func.count())
                .select_from(models.replays)
                .where(models.replays.c.user_id == user_id, models.replays.c.state == "running")
            )
            if int(active or 0) >= self._max_active:
                raise Conflict(f"at most {self._max_active} replays may run at once; stop one")
            total = int(
                await session.scalar(
                    _COUNT,
                    {
                        "owner": source_owner,
                        "symbol": source,
                        "timeframe": timeframe,
                        "lo": lo,
                        "hi": hi,
                    },
                )
                or 0
            )
            if total == 0:
                raise NotFound(f"no stored {timeframe} bars of {source} in that range")
            await session.execute(
                models.replays.insert().values(
                    id=replay_id,
                    user_id=user_id,
                    state="running",
                    source_owner=source_owner,
                    symbol=source,
                    target_symbol=target,
                    timeframe=timeframe,
                    speed=speed,
                    start_ts=start,
                    end_ts=end,
                    bars_total=total,
                )
            )
        plan = ReplayPlan(
            replay_id, user_id, source_owner, source, target, timeframe, speed, lo, hi
        )
        stop = asyncio.Event()
        task = asyncio.create_task(self._run(plan, stop), name=f"replay-{replay_id}")
        self._running[replay_id] = _Running(plan, task, stop)
        task.add_done_callback(lambda _: self._running.pop(replay_id, None))
        return replay_id

    @staticmethod
    def _target(source: str, target_symbol: str | None, replay_id: str) -> str:
        if target_symbol is None:
            target = f"{source}.R{replay_id[-6:]}"
            if len(target) > SYMBOL_MAX_LENGTH:
                raise ValidationFailed(
                    "the symbol is too long for a default replay target; give target_symbol",
                    errors=[{"loc": ["body", "target_symbol"], "code": "missing", "message": ""}],
                )
            return target
        target = parse_symbol(target_symbol, "target_symbol")
        if not TARGET_PATTERN.search(target):
            raise ValidationFailed(
                "target_symbol must end in '.R' plus up to 12 letters or digits (e.g. SPY.RDEMO)",
                errors=[
                    {
                        "loc": ["body", "target_symbol"],
                        "code": "not_a_replay_symbol",
                        "message": "replays write only to '<name>.R<tag>' symbols",
                    }
                ],
            )
        return target

    async def stop(self, user_id: str, replay_id: str) -> dict[str, Any]:
        row = await self.get(user_id, replay_id)
        running = self._running.get(replay_id)
        if running is not None:
            running.stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await running.task
        elif row["state"] == "running":
            # Not ours (another process, or one that died): mark it stopped.
            await self._finish(replay_id, "stopped", None)
        return await self.get(user_id, replay_id)

    async def get(self, user_id: str, replay_id: str) -> dict[str, Any]:
        async with self._sessions() as session:
            return await get_owned(session, models.replays, replay_id, user_id, what="replay")

    async def list_for(self, user_id: str, limit: int = 100) -> list[dict[str, Any]]:
        async with self._sessions() as session:
            return await list_owned(session, models.replays, user_id, limit=limit)

    async def wait(self, replay_id: str) -> None:
        running = self._running.get(replay_id)
        if running is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await running.task

    async def fail_stale(self) -> None:
        cutoff = datetime.now(UTC) - STALE_AFTER
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(models.replays)
                .where(models.replays.c.state == "running", models.replays.c.updated_at < cutoff)
                .values(
                    state="failed",
                    message="interrupted by a service restart",
                    finished_at=datetime.now(UTC),
                )
            )

    async def shutdown(self) -> None:
        for running in list(self._running.values()):
            running.stop.set()
        await asyncio.gather(
            *(r.task for r in list(self._running.values())), return_exceptions=True
        )

    async def _run(self, plan: ReplayPlan, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        step = TIMEFRAME_SECONDS[plan.timeframe]
        emitted = 0
        last_ts: int | None = None
        last_saved = loop.time()
        clock_start = loop.time()
        first_ts: int | None = None
        cursor = plan.start
        state, message = "completed", None
        next_page: asyncio.Task[Bars] | None = None
        try:
            next_page = asyncio.create_task(self._page(plan, cursor))
            while not stop.is_set():
                page = await next_page
                next_page = None
                if len(page) == 0:
                    break
                seconds = page.seconds()
                if len(page) == PAGE_BARS:  # read ahead while this page is being written
                    next_page = asyncio.create_task(self._page(plan, int(seconds[-1]) + 1))
                if first_ts is None:
                    first_ts = int(seconds[0])
                due: npt.NDArray[np.float64]
                if plan.speed is None:
                    due = np.full(len(page), -np.inf)
                else:
                    due = clock_start + (seconds - first_ts + step) / plan.speed
                batch = BarBatch.of_series(plan.target, plan.timeframe, page)
                i = 0
                while i < len(page) and not stop.is_set():
                    delay = float(due[i]) - loop.time()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), timeout=delay)
                        if stop.is_set():
                            break
                    j = int(np.searchsorted(due, loop.time(), side="right"))
                    j = max(j, i + 1)
                    part = batch.take(np.arange(i, j))
                    await self._ingestor.ingest(
                        part, owner=plan.user_id, source="replay", user_id=plan.user_id
                    )
                    emitted += j - i
                    last_ts = int(seconds[j - 1])
                    i = j
                    if loop.time() - last_saved >= self._progress_seconds:
                        await self._progress(plan.id, emitted, last_ts)
                        last_saved = loop.time()
                if next_page is None:
                    break
            if stop.is_set():
                state = "stopped"
        except asyncio.CancelledError:
            state, message = "stopped", "cancelled at shutdown"
            raise
        except Exception as exc:
            logger.exception("replay %s failed", plan.id)
            state, message = "failed", f"{type(exc).__name__}: {exc}"[:500]
        finally:
            if next_page is not None:
                next_page.cancel()
            await asyncio.shield(self._finish(plan.id, state, message, emitted, last_ts))

    async def _page(self, plan: ReplayPlan, cursor: int) -> Bars:
        async with self._sessions() as session:
            return await history.read_range(
                session,
                plan.source_owner,
                plan.symbol,
                plan.timeframe,
                cursor,
                plan.end,
                limit=PAGE_BARS,
            )

    async def _progress(self, replay_id: str, emitted: int, last_ts: int | None) -> None:
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(models.replays)
                .where(models.replays.c.id == replay_id)
                .values(
                    bars_emitted=emitted,
                    last_ts=_dt(last_ts),
                    updated_at=datetime.now(UTC),
                )
            )

    async def _finish(
        self,
        replay_id: str,
        state: str,
        message: str | None,
        emitted: int | None = None,
        last_ts: int | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "state": state,
            "message": message,
            "updated_at": datetime.now(UTC),
            "finished_at": datetime.now(UTC),
        }
        if emitted is not None:
            values["bars_emitted"] = emitted
        if last_ts is not None:
            values["last_ts"] = _dt(last_ts)
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(models.replays).where(models.replays.c.id == replay_id).values(**values)
            )


def _dt(ts: int | None) -> datetime | None:
    return None if ts is None else epoch.datetime_from_seconds(ts)


def parse_symbol(raw: str, field: str) -> str:
    try:
        return normalize_symbol(raw)
    except ValueError as exc:
        raise ValidationFailed(
            f"{field} is invalid: {exc}",
            errors=[{"loc": ["body", field], "code": "invalid_symbol", "message": str(exc)}],
        ) from None


@contextlib.asynccontextmanager
async def running(manager: ReplayManager) -> AsyncIterator[ReplayManager]:
    with contextlib.suppress(Exception):
        await manager.fail_stale()
    try:
        yield manager
    finally:
        await manager.shutdown()
