"""Benchmark closes from the market data service: ``GET /api/market/symbols/{symbol}/bars``
as one Arrow stream, read with an internal token for the report's user, so a user's benchmark
is a series that user may read (theirs, shared with them, or the platform's)."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from algotrade import epoch
from algotrade.auth import InternalTokens
from algotrade.columnar import ARROW_STREAM, ColumnarError, decode_bars
from algotrade.errors import DependencyUnavailable, ValidationFailed
from analytics_service.analysis import Benchmark


def unknown_benchmark(symbol: str, why: str) -> ValidationFailed:
    return ValidationFailed(
        f"benchmark {symbol!r}: {why}",
        errors=[{"loc": ["query", "benchmark"], "code": "unknown_benchmark", "message": why}],
    )


class MarketBenchmarks:
    def __init__(self, client: httpx.AsyncClient, base_url: str, tokens: InternalTokens) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._tokens = tokens

    async def closes(
        self, user_id: str, symbol: str, timeframe: str, start_ms: int, end_ms: int
    ) -> Benchmark:
        """Closes of ``symbol`` at ``timeframe`` with open times in ``[start_ms, end_ms]``."""
        headers = {
            "authorization": f"Bearer {self._tokens.for_user(user_id, 'market:read')}",
            "accept": ARROW_STREAM,
        }
        params = {
            "timeframe": timeframe,
            "start": epoch.iso_from_ms(start_ms),
            "end": epoch.iso_from_ms(end_ms + 1000),
        }
        url = f"{self._base}/api/market/symbols/{quote(symbol, safe='')}/bars"
        try:
            response = await self._client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"the market data service is unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code in (403, 404):
            raise unknown_benchmark(symbol, f"no {timeframe} bars you may read")
        if response.status_code in (400, 422):
            raise unknown_benchmark(symbol, "the market data service refused the range")
        if response.status_code != 200:
            raise DependencyUnavailable(f"the market data service answered {response.status_code}")
        try:
            bars = decode_bars(response.content)
        except ColumnarError as exc:
            raise DependencyUnavailable(f"the market data service sent bad bars: {exc}") from None
        if len(bars) == 0:
            raise unknown_benchmark(symbol, f"no {timeframe} bars in the run's period")
        return Benchmark(symbol=symbol, ts=bars.ts.copy(), close=bars.close.copy())
