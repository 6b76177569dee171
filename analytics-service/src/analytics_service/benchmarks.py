"""Benchmark closes from the market data service: ``GET /api/market/symbols/{symbol}/bars``
as one Arrow stream, read with an internal token for the report's user, so a user's benchmark
is a series that user may read (theirs, shared with them, or the platform's)."""

from __future__ import annotations

import httpx

from algotrade import epoch
from algotrade.auth import InternalTokens
from algotrade.columnar import ARROW_STREAM, ColumnarError, decode_bars
from algotrade.errors import DependencyUnavailable, ValidationFailed
from algotrade.market_client import MarketClient, MarketRefused, MarketUnknown
from analytics_service.analysis import Benchmark


def unknown_benchmark(symbol: str, why: str) -> ValidationFailed:
    return ValidationFailed(
        f"benchmark {symbol!r}: {why}",
        errors=[{"loc": ["query", "benchmark"], "code": "unknown_benchmark", "message": why}],
    )


class MarketBenchmarks:
    def __init__(self, client: httpx.AsyncClient, base_url: str, tokens: InternalTokens) -> None:
        self._market = MarketClient(client, base_url, tokens)

    async def closes(
        self, user_id: str, symbol: str, timeframe: str, start_ms: int, end_ms: int
    ) -> Benchmark:
        """Closes of ``symbol`` at ``timeframe`` with open times in ``[start_ms, end_ms]``."""
        params = {
            "timeframe": timeframe,
            "start": epoch.iso_from_ms(start_ms),
            "end": epoch.iso_from_ms(end_ms + 1000),
        }
        url = self._market.url(symbol, "bars")
        try:
            response = await self._market.get(user_id, url, params, accept=ARROW_STREAM)
        except MarketUnknown:
            raise unknown_benchmark(symbol, f"no {timeframe} bars you may read") from None
        except MarketRefused:
            raise unknown_benchmark(symbol, "the market data service refused the range") from None
        try:
            bars = decode_bars(response.content)
        except ColumnarError as exc:
            raise DependencyUnavailable(f"the market data service sent bad bars: {exc}") from None
        if len(bars) == 0:
            raise unknown_benchmark(symbol, f"no {timeframe} bars in the run's period")
        return Benchmark(symbol=symbol, ts=bars.ts.copy(), close=bars.close.copy())
