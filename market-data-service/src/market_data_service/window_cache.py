"""The Redis windows as a cache of history: apply committed bars, serve latest-N, warm up, repair.

Order of writes, and why: history and the outbox commit first, in one PostgreSQL transaction;
the window is updated after the commit. A crash between the two leaves the window *behind*
history, never ahead of it, so a bar a reader saw in a window is always durable and always on
its way to Kafka. Behind is repaired: a failed window update makes the window cold (its warm
flag is deleted, retried in the background while Redis is down), the service clears every
warm flag when it starts (covering a crash in between), and a cold window is refilled from
history by the next reader. Versions from history make refills safe against concurrent writers.

Each owner's series has its own window, named `algotrade.bars.owned_symbol` (``SYMBOL`` for the
platform's, ``owner/SYMBOL`` for a user's), so two users' ``EURUSD`` never share bars.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from algotrade import epoch
from algotrade.bars import Bars, encode_bar_json, owned_symbol
from algotrade.windows import VERSION_DIGITS, SlidingWindows, WindowEntry
from market_data_service import history

logger = logging.getLogger(__name__)

Series = tuple[str, str]  # (symbol, timeframe) of one owner
Window = tuple[str, str]  # (owned symbol, timeframe): a window's name
REPAIR_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class LatestBars:
    """Latest-N answer: canonical bar JSON (oldest first) and where it came from."""

    payloads: list[bytes]
    source: str  # "window" | "history"


class WindowCache:
    def __init__(self, windows: SlidingWindows, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.windows = windows
        self._sessions = sessions
        self._pending_invalidations: set[Window] = set()
        self._warming: dict[tuple[str, str, str], asyncio.Task[list[bytes]]] = {}

    @property
    def capacity(self) -> int:
        return self.windows.capacity

    async def apply(self, owner: str, entries: Mapping[Series, tuple[bytes, int]]) -> None:
        """Put committed bars (encoded lines) of ``owner``'s series into their windows; on
        failure make those windows cold."""
        if not entries:
            return
        named = {(owned_symbol(owner, s), tf): blob for (s, tf), blob in entries.items()}
        try:
            await self.windows.upsert_encoded(named)
        except (RedisError, OSError) as exc:
            logger.warning(
                "window update failed (%s); invalidating %d window(s)", exc, len(entries)
            )
            await self._invalidate(named.keys())

    async def invalidate(self, owner: str, series: Iterable[Series]) -> None:
        await self._invalidate((owned_symbol(owner, s), tf) for s, tf in series)

    async def _invalidate(self, windows: Iterable[Window]) -> None:
        for item in windows:
            try:
                await self.windows.invalidate(*item)
            except (RedisError, OSError):
                self._pending_invalidations.add(item)

    async def repair_forever(self) -> None:
        """Retry invalidations that failed while Redis was unreachable."""
        while True:
            await asyncio.sleep(REPAIR_INTERVAL_SECONDS)
            for item in list(self._pending_invalidations):
                try:
                    await self.windows.invalidate(*item)
                except (RedisError, OSError):
                    break
                self._pending_invalidations.discard(item)

    @property
    def pending_repairs(self) -> int:
        return len(self._pending_invalidations)

    async def latest(self, owner: str, symbol: str, timeframe: str, n: int) -> LatestBars:
        """Latest ``n`` bars of ``owner``'s series from its window; a cold window is filled
        from history first."""
        name = owned_symbol(owner, symbol)
        try:
            members = await self.windows.latest_members(name, timeframe, n)
        except (RedisError, OSError) as exc:
            logger.warning("window read failed (%s); serving history", exc)
            return LatestBars(await self._from_history(owner, symbol, timeframe, n), "history")
        if members is not None:
            return LatestBars([m[VERSION_DIGITS:] for m in members], "window")
        payloads = await self._warm(owner, symbol, timeframe)
        return LatestBars(payloads[-n:] if n < len(payloads) else payloads, "history")

    async def _from_history(self, owner: str, symbol: str, timeframe: str, n: int) -> list[bytes]:
        async with self._sessions() as session:
            bars, versions = await history.read_latest(session, owner, symbol, timeframe, n)
        return [e.payload for e in window_entries(bars, versions)]

    async def _warm(self, owner: str, symbol: str, timeframe: str) -> list[bytes]:
        """Fill a cold window from history once, however many readers ask at the same time."""
        key = (owner, symbol, timeframe)
        task = self._warming.get(key)
        if task is None:
            task = asyncio.create_task(self._fill(owner, symbol, timeframe))
            self._warming[key] = task
            task.add_done_callback(lambda _: self._warming.pop(key, None))
        return await asyncio.shield(task)

    async def _fill(self, owner: str, symbol: str, timeframe: str) -> list[bytes]:
        async with self._sessions() as session:
            bars, versions = await history.read_latest(
                session, owner, symbol, timeframe, self.capacity
            )
        entries = window_entries(bars, versions)
        with contextlib.suppress(RedisError, OSError):
            await self.windows.fill(owned_symbol(owner, symbol), timeframe, entries)
        return [e.payload for e in entries]


def window_entries(bars: Bars, versions: npt.NDArray[np.int64]) -> list[WindowEntry]:
    """Stored bars as window entries: scored by open time in epoch seconds, canonical JSON."""
    seconds = bars.seconds()
    return [
        WindowEntry(t, encode_bar_json(s, o, h, lo, c, v), ver)
        for t, s, o, h, lo, c, v, ver in zip(
            seconds.tolist(),
            epoch.iso_array_from_seconds(seconds),
            bars.open.tolist(),
            bars.high.tolist(),
            bars.low.tolist(),
            bars.close.tolist(),
            bars.volume.tolist(),
            versions.tolist(),
            strict=True,
        )
    ]
