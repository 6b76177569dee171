"""Helpers for the market data service tests (imported by tests and conftest)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import FastAPI

from algotrade_testkit.services import ALL_SCOPES, internal_token, serve_in_process
from market_data_service.config import Settings
from market_data_service.main import create_app
from market_data_service.models import PLATFORM
from market_data_service.services import MarketServices


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def market(self) -> MarketServices:
        market: MarketServices = self.app.state.services
        return market

    def headers(self, user_id: str = "u1", scopes: frozenset[str] = ALL_SCOPES) -> dict[str, str]:
        return {"Authorization": f"Bearer {internal_token(self.settings, user_id, scopes)}"}

    async def push(self, body: Any, **kwargs: Any) -> httpx.Response:
        try:
            content = orjson.dumps(body)
        except TypeError:  # integers beyond 64 bits: only the stdlib writes them
            content = json.dumps(body).encode()
        return await self.client.post(
            "/api/market/bars",
            content=content,
            headers={**self.headers(), "content-type": "application/json"},
            **kwargs,
        )

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, headers=self.headers(), **kwargs)


@asynccontextmanager
async def running(settings: Settings, candles: Any) -> AsyncIterator[Service]:
    app = create_app(settings, candles=candles)
    async with serve_in_process(app) as client:
        yield Service(app, client, settings)


def bar(
    ts: str,
    o: float = 100.0,
    h: float = 101.0,
    lo: float = 99.0,
    c: float = 100.5,
    v: float = 10.0,
    **extra: Any,
) -> dict[str, Any]:
    return {"ts": ts, "open": o, "high": h, "low": lo, "close": c, "volume": v, **extra}


def minute_bars(n: int, start: int = 1_704_067_200, **extra: Any) -> list[dict[str, Any]]:
    """``n`` valid consecutive 1m bars from 2024-01-01T00:00Z (prices vary with the index)."""
    out = []
    for i in range(n):
        price = 100.0 + (i % 50) * 0.25
        out.append(
            {
                "ts": start + 60 * i,
                "open": price,
                "high": price + 1.0,
                "low": price - 1.0,
                "close": price + 0.5,
                "volume": float(i % 7),
                **extra,
            }
        )
    return out


DATA = Path(__file__).resolve().parents[2] / "data"


async def load_file(
    service: Service, path: Path, symbol: str, timeframe: str, owner: str = PLATFORM
) -> int:
    """Store a demo file through the ingest path directly (fast; the import API has its tests),
    as the platform's reference data unless ``owner`` says whose series it is."""
    from market_data_service.bar_files import read_csv_chunks

    stored = 0
    for chunk in read_csv_chunks(path, symbol=symbol, timeframe=timeframe, chunk_rows=5000):
        assert not chunk.rejections, chunk.rejections[:3]
        written = await service.market.ingestor.ingest(chunk.bars, owner=owner, source="test")
        stored += written.counts()["accepted"]
    return stored


def epochs(stamps: Any) -> Any:
    """A pandas series of UTC timestamps as int64 epoch seconds (any resolution)."""
    import numpy as np
    import pandas as pd

    return ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
