"""Fixtures: the analytics service on real PostgreSQL, Kafka and S3 (moto's server), with the
real market data service beside it on a port (benchmark bars), and a producer that publishes
session and backtest events the way the forward-test and backtesting services do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydantic import BaseModel

from algotrade import session_events
from algotrade.bus import EventProducer
from algotrade.engine import Bars
from algotrade.events import Topics, default_registry
from algotrade.migrations import upgrade
from algotrade.storage import ObjectStore
from algotrade_testkit.bars import push_rows
from algotrade_testkit.services import (
    ALL_SCOPES,
    internal_token,
    key_settings,
    serve_in_process,
    serve_on_port,
)
from analytics_service.config import Settings
from analytics_service.main import create_app
from market_data_service.config import Settings as MarketSettings
from market_data_service.main import create_app as market_app

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
async def migrated(database_url: str) -> str:
    for package, schema in (("market_data_service", "market"), ("analytics_service", "analytics")):
        await upgrade(database_url, package, schema)
    return database_url


@dataclass
class Analytics:
    client: httpx.AsyncClient
    market: str
    settings: Settings
    producer: EventProducer
    topics: Topics
    store: ObjectStore

    def headers(self, user_id: str = "alice", *scopes: str) -> dict[str, str]:
        token = internal_token(self.settings, user_id, frozenset(scopes) or ALL_SCOPES)
        return {"Authorization": f"Bearer {token}"}

    async def get(self, url: str, user_id: str = "alice", **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, headers=self.headers(user_id), **kwargs)

    async def post(self, url: str, body: Any, user_id: str = "alice") -> httpx.Response:
        return await self.client.post(url, json=body, headers=self.headers(user_id))

    async def publish(
        self, topic: str, kind: str, payload: BaseModel, key: str, user_id: str = "alice"
    ) -> str:
        envelope = default_registry.build(kind, payload, producer="test", key=key, user_id=user_id)
        await self.producer.publish(topic, envelope)
        return envelope.id

    async def publish_envelope(self, topic: str, envelope: Any) -> None:
        await self.producer.publish(topic, envelope)

    async def push_bars(
        self, symbol: str, timeframe: str, bars: Bars, user_id: str = "alice"
    ) -> None:
        rows = push_rows(bars)
        async with httpx.AsyncClient(base_url=self.market) as market:
            for start in range(0, len(rows), 5_000):
                pushed = await market.post(
                    "/api/market/bars",
                    json={
                        "symbol": symbol,
                        "timeframe": timeframe,
                        "bars": rows[start : start + 5_000],
                    },
                    headers=self.headers(user_id),
                )
                assert pushed.status_code == 200, pushed.text

    async def session(
        self,
        session_id: str,
        ts: Sequence[int],
        equity: Sequence[float],
        position: Sequence[float],
        *,
        capital: float,
        symbol: str = "BTC-USD",
        timeframe: str = "4h",
        user_id: str = "alice",
        strategy_id: str = "s1",
        version: int = 1,
        chunk: int = 500,
    ) -> None:
        """A session's ``session.started`` and its ``session.equity`` events."""
        topic = self.topics.session_events
        await self.publish(
            topic,
            session_events.STARTED,
            session_events.SessionStarted(
                session_id=session_id,
                strategy_id=strategy_id,
                version=version,
                plan_id="p" * 64,
                symbol=symbol,
                timeframe=timeframe,
                owner=None,
                capital=capital,
                calendar="24x7",
                warmup=0,
                warmup_bars=0,
                last_bar_ts=None,
            ),
            session_id,
            user_id,
        )
        points = list(zip(ts, equity, position, strict=True))
        for start in range(0, len(points), chunk):
            part = points[start : start + chunk]
            last = part[-1]
            await self.publish(
                topic,
                session_events.EQUITY,
                session_events.SessionEquity(
                    session_id=session_id,
                    ts=last[0],
                    equity=last[1],
                    cash=last[1],
                    position=last[2],
                    bars_applied=start + len(part),
                    points=part,
                ),
                session_id,
                user_id,
            )


@pytest.fixture
async def analytics(
    make_settings: Callable[..., Any], migrated: str, tmp_path: Path
) -> AsyncIterator[Analytics]:
    market_settings = make_settings(MarketSettings, import_spool_dir=tmp_path / "spool")
    async with serve_on_port(market_app(market_settings)) as market_url:
        settings: Settings = make_settings(
            Settings, **key_settings("analytics"), market_data_service_url=market_url
        )
        gateway = make_settings(Settings)  # holds the gateway's key: tokens as it mints them
        producer = EventProducer(settings.kafka_bootstrap, client_id="analytics-test")
        await producer.start()
        store = ObjectStore.from_settings(settings)
        try:
            async with serve_in_process(create_app(settings)) as client:
                yield Analytics(
                    client,
                    market_url,
                    gateway,
                    producer,
                    Topics(settings.kafka_topic_prefix),
                    store,
                )
        finally:
            await producer.stop()


def spy_bars() -> Bars:
    return Bars.from_csv(DATA / "spy-1d.csv")


def btc_bars(count: int, first: int = 0) -> Bars:
    return Bars.from_csv(DATA / "btc-usd-4h.csv").slice(first, first + count)


def hold_curve(bars: Bars, capital: float, units: float) -> tuple[np.ndarray, np.ndarray]:
    """Equity and position of buying ``units`` at the first close and holding."""
    equity = capital + units * (bars.close - bars.close[0])
    return equity, np.full(len(bars), units)
