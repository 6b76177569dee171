"""Bars for a job: from the market data service's API, or (demos, tests) from CSV files.

`HttpBarSource` pages ``GET {base}/api/market/symbols/{symbol}/bars`` (oldest first, opaque
cursor) with an internal token for the job's user. `CsvBarSource` reads the repository's
``timestamp,open,high,low,close,volume`` files; it is a named stand-in for the market data
service where that service is not what is being tested, never a fake of it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from operator import itemgetter
from os import PathLike
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import numpy as np
import numpy.typing as npt
import orjson

from algotrade.auth import InternalTokens
from algotrade.backtest import BacktestInvalid
from algotrade.backtest.config import epoch_ms
from algotrade.engine import Bars
from algotrade.errors import DependencyUnavailable

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


def _epoch_ms(stamps: list[str]) -> npt.NDArray[np.int64]:
    """``2024-01-02T15:04:00Z`` strings to epoch milliseconds, vectorised."""
    naive = [s[:-1] if s.endswith("Z") else s.removesuffix("+00:00") for s in stamps]
    return np.array(naive, dtype="datetime64[ms]").astype(np.int64)


class HttpBarSource:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        tokens: InternalTokens,
        *,
        page_size: int,
        max_bars: int,
    ) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._tokens = tokens
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
        wanted = limit if limit is not None else self._max + 1
        headers = {"authorization": f"Bearer {self._tokens.for_user(user_id, 'market:read')}"}
        url = f"{self._base}/api/market/symbols/{quote(symbol, safe='')}/bars"
        params: dict[str, Any] = {
            "timeframe": timeframe,
            "start": start.isoformat(),
            "end": end.isoformat(),
        }
        pages: list[tuple[tuple[Any, ...], ...]] = []
        count = 0
        cursor: str | None = None
        while count < wanted:
            params["limit"] = min(self._page, wanted - count)
            if cursor is not None:
                params["cursor"] = cursor
            page = await self._get(url, params, headers)
            rows = page.get("bars") or []
            if rows:
                # Six columns per page, transposed in C (a page holds up to 10,000 bars).
                pages.append(tuple(zip(*map(_FIELDS, rows), strict=True)))
            count += len(rows)
            cursor = page.get("next_cursor")
            if not cursor or not rows:
                break
        if limit is None and count > self._max:
            raise too_many_bars(self._max)

        def column(k: int) -> list[Any]:
            return [value for page in pages for value in page[k]]

        return Bars.from_arrays(
            ts=_epoch_ms(column(0)),
            open=column(1),
            high=column(2),
            low=column(3),
            close=column(4),
            volume=column(5),
        )

    async def _get(
        self, url: str, params: Mapping[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        try:
            response = await self._client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"the market data service is unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code == 404:
            return {"bars": [], "next_cursor": None}
        if response.status_code in (400, 422):
            detail = response.json().get("detail", response.text[:200])
            raise BacktestInvalid(
                f"the market data service refused the request: {detail}",
                errors=[{"loc": ["body", "symbol"], "code": "bad_market_request"}],
            )
        if response.status_code != 200:
            raise DependencyUnavailable(f"the market data service answered {response.status_code}")
        body: dict[str, Any] = orjson.loads(response.content)
        return body


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
            return Bars.from_arrays(open=[], high=[], low=[], close=[], volume=[], ts=[])
        if key not in self._cache:
            self._cache[key] = Bars.from_csv(self._files[key])
        every = self._cache[key]
        lo, hi = np.searchsorted(every.ts, [epoch_ms(start), epoch_ms(end)])
        hi = min(int(hi), int(lo) + limit) if limit is not None else int(hi)
        return every.slice(int(lo), hi)
