"""Sessions on someone else's series keep running only while that series is theirs to read.

A session may follow a series another user shares with its owner (`SessionCreate.owner`). When
the share is revoked, the session must stop receiving that user's bars. `AccessWatch` asks the
market data service, as the session's user, every ``ACCESS_CHECK_SECONDS`` whether each such
series can still be read (one read of its newest bar per distinct user, symbol and owner), and
fails the sessions that lost access with the reason. A failed session is dropped by its worker
at the next bar (its revision changed), so at most the bars of one check interval plus the
market data service's owner cache pass after a revocation. Platform data cannot be revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

from algotrade.background import stop_task
from algotrade.errors import AlgoTradeError
from forward_test_service.market import MarketData
from forward_test_service.store import SessionStore

logger = logging.getLogger(__name__)


class AccessWatch:
    def __init__(self, store: SessionStore, market: MarketData, *, every: float) -> None:
        self._store = store
        self._market = market
        self._every = every

    async def check(self) -> list[str]:
        """One pass: the ids of the sessions failed because their series is no longer
        readable (a market data service that cannot answer fails nothing)."""
        groups: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
        for row in await self._store.active_on_shared_series():
            groups[(row.user_id, row.symbol, row.timeframe, row.owner)].append(row.id)
        failed: list[str] = []
        for (user, symbol, timeframe, owner), ids in groups.items():
            try:
                latest = await self._market.latest(user, symbol, timeframe, 1, owner)
            except AlgoTradeError as exc:
                logger.warning("access to %s of %s not checked: %s", symbol, owner, exc)
                continue
            if latest is not None:
                continue
            reason = f"access revoked: {owner} no longer shares {symbol} with you"
            for session_id in ids:
                await self._store.fail(session_id, user, reason)
                failed.append(session_id)
            logger.info(
                "access to %s of %s revoked: %d sessions of %s failed",
                symbol,
                owner,
                len(ids),
                user,
            )
        return failed

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        stop = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self._every)
                if stop.is_set():
                    return
                try:
                    await self.check()
                except Exception as exc:  # PostgreSQL away: the next pass tries again
                    logger.warning("access check failed: %r", exc)

        task = asyncio.create_task(loop(), name="access-watch")
        try:
            yield
        finally:
            await stop_task(task, stop)
