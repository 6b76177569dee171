"""Bars for a job: from the market data service's API, or (demos, tests) from CSV files.

`HttpBarSource` reads ``GET {base}/api/market/symbols/{symbol}/bars`` as one Arrow IPC
stream (the whole range, columnar) with an internal token for the job's user. `CsvBarSource`
reads the repository's ``timestamp,open,high,low,close,volume`` files; it is a named stand-in
for the market data service where that service is not what is being tested, never a fake of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from operator import itemgetter
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np

from algotrade import epoch
from algotrade.auth import InternalTokens
from algotrade.bars import Bars
from algotrade.columnar import ARROW_STREAM, ColumnarError, decode_bars
from algotrade.errors import DependencyUnavailable
from algotrade.market_client import MarketClient, MarketRefused, MarketUnknown, json_object
from backtesting_service.backtest import BacktestInvalid

logger = logging.getLogger(__name__)


class BarSource(Protocol):
    async def bars(
        self,
        user_id: str,
        symbol: str,
        timeframe: str,
        start: datetime,
        end: datetime,
        *,
        limit: int | None = None,
    ) -> Bars:
        """Bars with ``start <= open time < end``, oldest first, at most ``limit``."""
        ...


def too_many_bars(limit: int) -> BacktestInvalid:
    return BacktestInvalid(
        f"the range holds more than {limit:,} bars; narrow it or use a longer timeframe",
        errors=[{"loc": ["body", "start"], "code": "range_too_large", "message": str(limit)}],
    )


_FIELDS = itemgetter("ts", "open", "high", "low", "close", "volume")


class HttpBarSource:
    """Reads a range in one Arrow IPC answer and builds `Bars` from its columns.

    A market data service that answers JSON instead (one predating the columnar answer) is
    paged through ``next_cursor`` as before.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        tokens: InternalTokens,
        *,
        page_size: int,
        max_bars: int,
    ) -> None:
        self._market = MarketClient(client, base_url, tokens)
        self._page = page_size
        self._max = max_bars

    async def bars(
        self,
        user_id: str,
        symbol: str,
        timeframe: str,
        start: datetime,
        end: datetime,
        *,
        limit: int | None = None,
    ) -> Bars:
        url = self._market.url(symbol, "bars")
        params: dict[str, Any] = {
            "timeframe": timeframe,
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        if limit is not None:
            params["limit"] = limit
        response = await self._get(user_id, url, params, f"{ARROW_STREAM}, application/json;q=0.5")
        if response is None:
            return _no_bars()
        if response.headers.get("content-type", "").startswith(ARROW_STREAM):
            try:
                bars = decode_bars(response.content)
            except ColumnarError as exc:
                raise DependencyUnavailable(
                    f"the market data service sent bad bars: {exc}"
                ) from None
        else:
            bars = await self._json_pages(user_id, url, params, limit, json_object(response))
        if limit is None and len(bars) > self._max:
            raise too_many_bars(self._max)
        return bars

    async def _json_pages(
        self,
        user_id: str,
        url: str,
        params: dict[str, Any],
        limit: int | None,
        first: dict[str, Any],
    ) -> Bars:
        """The JSON fallback: the first page is in hand; follow cursors up to the limit."""
        wanted = limit if limit is not None else self._max + 1
        pages: list[tuple[tuple[Any, ...], ...]] = []
        count = 0
        page = first
        while True:
            rows = (page.get("bars") or [])[: wanted - count]
            if rows:
                # Six columns per page, transposed in C (a page holds up to 10,000 bars).
                pages.append(tuple(zip(*map(_FIELDS, rows), strict=True)))
            count += len(rows)
            cursor = page.get("next_cursor")
            if not cursor or not rows or count >= wanted:
                break
            params = {**params, "cursor": cursor, "limit": min(self._page, wanted - count)}
            response = await self._get(user_id, url, params, "application/json")
            if response is None:
                break
            page = json_object(response)

        def column(k: int) -> list[Any]:
            return [value for page in pages for value in page[k]]

        if not pages:
            return _no_bars()
        return Bars.from_arrays(
            ts=epoch.ms_from_iso_array(column(0)),
            open=column(1),
            high=column(2),
            low=column(3),
            close=column(4),
            volume=column(5),
        )

    async def _get(
        self, user_id: str, url: str, params: Mapping[str, Any], accept: str
    ) -> httpx.Response | None:
        """The 200 answer, or None when there is no such series; refusals become problems."""
        try:
            return await self._market.get(user_id, url, params, accept=accept)
        except MarketUnknown:
            return None
        except MarketRefused as exc:
            if "range_too_large" in exc.codes:
                raise too_many_bars(self._max) from None
            raise BacktestInvalid(
                str(exc), errors=[{"loc": ["body", "symbol"], "code": "bad_market_request"}]
            ) from None


def _no_bars() -> Bars:
    return Bars.empty()


class CsvBarSource:
    """Bars from CSV files named per ``(symbol, timeframe)``; for demos and tests."""

    def __init__(self, files: Mapping[tuple[str, str], str | PathLike[str]]) -> None:
        self._files = {key: Path(path) for key, path in files.items()}
        self._cache: dict[tuple[str, str], Bars] = {}

    async def bars(
        self,
        user_id: str,
        symbol: str,
        timeframe: str,
        start: datetime,
        end: datetime,
        *,
        limit: int | None = None,
    ) -> Bars:
        key = (symbol, timeframe)
        if key not in self._files:
            return _no_bars()
        if key not in self._cache:
            self._cache[key] = Bars.from_csv(self._files[key])
        every = self._cache[key]
        lo, hi = np.searchsorted(
            every.ts, [epoch.ms_from_datetime(start), epoch.ms_from_datetime(end)]
        )
        hi = min(int(hi), int(lo) + limit) if limit is not None else int(hi)
        return every.slice(int(lo), hi)
