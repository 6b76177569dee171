"""Helpers for the market data service tests (imported by tests and conftest)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from algotrade.auth import KeySet, Principal, TokenIssuer
from algotrade.events import Envelope, default_registry
from market_data_service.config import Settings
from market_data_service.main import create_app
from market_data_service.services import MarketServices


def token(settings: Settings, user_id: str = "u1", scopes: frozenset[str] | None = None) -> str:
    issuer = TokenIssuer(KeySet.from_settings(settings), issuer=settings.jwt_issuer)
    return issuer.issue(
        Principal(user_id=user_id, scopes=scopes if scopes is not None else frozenset({"*"})),
        audience=settings.internal_token_audience,
        token_type="internal",
        ttl_seconds=300,
    )


def auth(
    settings: Settings, user_id: str = "u1", scopes: frozenset[str] | None = None
) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(settings, user_id, scopes)}"}


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def market(self) -> MarketServices:
        market: MarketServices = self.app.state.resources.extras["market"]
        return market

    def headers(self, user_id: str = "u1", scopes: frozenset[str] | None = None) -> dict[str, str]:
        return auth(self.settings, user_id, scopes)

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


class running:
    def __init__(self, settings: Settings, candles: Any) -> None:
        self.settings = settings
        self.candles = candles

    async def __aenter__(self) -> Service:
        app = create_app(self.settings, candles=self.candles)
        self._lifespan = LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
        await self._lifespan.__aenter__()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=30
        )
        return Service(app, self._client, self.settings)

    async def __aexit__(self, *exc: Any) -> None:
        await self._client.aclose()
        await self._lifespan.__aexit__(*exc)


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


async def read_events(
    bootstrap: str, topic: str, *, expect: int, within: float = 15.0
) -> list[tuple[bytes | None, Envelope, Any]]:
    """Read ``topic`` from the beginning until ``expect`` events arrived (no consumer group)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        partitions = None
        while partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                if loop.time() > deadline:
                    raise AssertionError(f"topic {topic} never appeared")
                await asyncio.sleep(0.1)
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        out: list[tuple[bytes | None, Envelope, Any]] = []
        while len(out) < expect:
            if loop.time() > deadline:
                raise AssertionError(f"{len(out)} of {expect} events arrived on {topic}")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    envelope, payload = default_registry.decode(record.value)
                    out.append((record.key, envelope, payload))
        # Anything extra that is already there is a bug the caller should see.
        batches = await consumer.getmany(timeout_ms=300)
        for records in batches.values():
            for record in records:
                envelope, payload = default_registry.decode(record.value)
                out.append((record.key, envelope, payload))
        return out
    finally:
        await consumer.stop()


DATA = Path(__file__).resolve().parents[2] / "data"


async def load_file(service: Service, path: Path, symbol: str, timeframe: str) -> int:
    """Store a demo file through the ingest path directly (fast; the import API has its tests)."""
    from market_data_service.bar_files import read_csv_chunks

    stored = 0
    for chunk in read_csv_chunks(path, symbol=symbol, timeframe=timeframe, chunk_rows=5000):
        assert not chunk.rejections, chunk.rejections[:3]
        written = await service.market.ingestor.ingest(chunk.bars, source="test")
        stored += written.counts()["accepted"]
    return stored


def epochs(stamps: Any) -> Any:
    """A pandas series of UTC timestamps as int64 epoch seconds (any resolution)."""
    import numpy as np
    import pandas as pd

    return ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)
