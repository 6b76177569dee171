"""Warm-up history from the market data service's API: the latest bars of a series and whose
series it is (the owner, which decides the ``market.bars.v1`` key the session follows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt
import orjson

from algotrade.auth import InternalTokens
from algotrade.engine import Bars
from algotrade.errors import DependencyUnavailable
from algotrade.market_client import MarketClient, MarketRefused, MarketUnknown
from forward_test_service.errors import invalid

PLATFORM = "platform"


@dataclass(frozen=True)
class LatestBars:
    """The newest bars of a series, oldest first; ``owner`` is None for platform data."""

    owner: str | None
    bars: Bars


class MarketData(Protocol):
    async def latest(
        self, user_id: str, symbol: str, timeframe: str, limit: int, owner: str | None
    ) -> LatestBars | None:
        """The newest ``limit`` bars of the series ``user_id`` reads under that name (``owner``
        a user id or ``"platform"`` to choose), or None when no such series is visible."""
        ...


def epoch_ms(stamps: list[str]) -> npt.NDArray[np.int64]:
    """``2024-01-02T15:04:00Z`` strings to epoch milliseconds, vectorised."""
    naive = [s[:-1] if s.endswith("Z") else s.removesuffix("+00:00") for s in stamps]
    return np.array(naive, dtype="datetime64[ms]").astype(np.int64)


def bars_from_rows(rows: list[dict[str, Any]]) -> Bars:
    return Bars.from_arrays(
        ts=epoch_ms([r["ts"] for r in rows]) if rows else np.empty(0, dtype=np.int64),
        open=[float(r["open"]) for r in rows],
        high=[float(r["high"]) for r in rows],
        low=[float(r["low"]) for r in rows],
        close=[float(r["close"]) for r in rows],
        volume=[float(r["volume"]) for r in rows],
    )


class HttpMarketData:
    """``GET {base}/api/market/symbols/{symbol}/latest?timeframe&limit[&owner]`` with an
    internal token for the user: the window's newest bars (history when the window is cold)
    and the owner of the series that user's reads resolve to."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, tokens: InternalTokens) -> None:
        self._market = MarketClient(client, base_url, tokens)

    async def latest(
        self, user_id: str, symbol: str, timeframe: str, limit: int, owner: str | None
    ) -> LatestBars | None:
        params: dict[str, Any] = {"timeframe": timeframe, "limit": limit}
        if owner is not None:
            params["owner"] = owner
        try:
            response = await self._market.get(user_id, self._market.url(symbol, "latest"), params)
        except MarketUnknown:
            return None
        except MarketRefused as exc:
            raise invalid("symbol", "bad_market_request", str(exc)) from None
        try:
            body = orjson.loads(response.content)
            rows = body["bars"]
            return LatestBars(owner=body.get("owner") or None, bars=bars_from_rows(rows))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DependencyUnavailable(f"the market data service sent bad bars: {exc}") from None
