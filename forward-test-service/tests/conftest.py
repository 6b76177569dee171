"""Fixtures: the forward-test service app and workers on real PostgreSQL, Redis and Kafka,
with the real strategy and market data service apps in-process (over ASGI HTTP): strategies
are saved through the strategy service, and bars pushed to the market data service, whose
outbox relay publishes them on ``market.bars.v1`` as it does in production."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from algotrade.auth import InternalTokens
from algotrade.engine import Bars
from algotrade.migrations import upgrade
from algotrade_testkit.bars import push_rows
from algotrade_testkit.graphs import sma_cross
from algotrade_testkit.services import ALL_SCOPES, internal_token, key_settings, serve_in_process
from forward_test_service.config import Settings
from forward_test_service.main import create_app
from forward_test_service.market import HttpMarketData
from forward_test_service.strategies import HttpStrategySource
from market_data_service.config import Settings as MarketSettings
from market_data_service.main import create_app as market_app
from strategy_service.config import Settings as StrategySettings
from strategy_service.main import create_app as strategy_app

DATA = Path(__file__).resolve().parents[2] / "data"
FAST_GROUP = {"heartbeat_interval_ms": 100, "session_timeout_ms": 6000}


@pytest.fixture
async def migrated(database_url: str) -> str:
    for package, schema in (
        ("strategy_service", "strategy"),
        ("market_data_service", "market"),
        ("forward_test_service", "forward"),
    ):
        await upgrade(database_url, package, schema)
    return database_url


@pytest.fixture
def settings(make_settings: Callable[..., Any], migrated: str) -> Settings:
    settings: Settings = make_settings(
        Settings,
        **key_settings("forward-test"),
        strategy_service_url="http://strategy.test",
        market_data_service_url="http://market.test",
        checkpoint_seconds=1.0,
        equity_event_seconds=0.0,
    )
    return settings


@dataclass
class Platform:
    """The forward-test service with the real strategy and market data apps beside it."""

    app: FastAPI
    client: httpx.AsyncClient
    strategies: httpx.AsyncClient
    market: httpx.AsyncClient
    settings: Settings
    gateway: Settings  # settings holding the gateway's key: tokens as the gateway mints them

    def headers(self, user_id: str = "alice", *scopes: str) -> dict[str, str]:
        token = internal_token(self.gateway, user_id, frozenset(scopes) or ALL_SCOPES)
        return {"Authorization": f"Bearer {token}"}

    async def save_strategy(self, graph: dict[str, Any], user_id: str = "alice") -> str:
        created = await self.strategies.post(
            "/api/strategies",
            json={"name": "cross", "graph": graph},
            headers=self.headers(user_id),
        )
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    async def push(self, symbol: str, timeframe: str, bars: Bars, user_id: str = "alice") -> None:
        rows = push_rows(bars)
        pushed = await self.market.post(
            "/api/market/bars",
            json={"symbol": symbol, "timeframe": timeframe, "bars": rows},
            headers=self.headers(user_id),
        )
        assert pushed.status_code == 200, pushed.text

    async def start(self, body: dict[str, Any], user_id: str = "alice") -> httpx.Response:
        return await self.client.post("/api/sessions", json=body, headers=self.headers(user_id))

    async def get(self, url: str, user_id: str = "alice", **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, headers=self.headers(user_id), **kwargs)

    async def post(self, url: str, user_id: str = "alice") -> httpx.Response:
        return await self.client.post(url, headers=self.headers(user_id))

    async def wait_bars(self, session_id: str, bars: int, within: float = 60) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            session: dict[str, Any] = (await self.get(f"/api/sessions/{session_id}")).json()
            if session["bars_applied"] >= bars:
                return session
            assert asyncio.get_running_loop().time() < deadline, f"session stuck: {session}"
            await asyncio.sleep(0.1)


@pytest.fixture
async def platform(
    settings: Settings, make_settings: Callable[..., Any], tmp_path: Path
) -> AsyncIterator[Platform]:
    gateway = make_settings(Settings)
    strategy = strategy_app(make_settings(StrategySettings))
    market = market_app(make_settings(MarketSettings, import_spool_dir=tmp_path / "spool"))
    async with (
        serve_in_process(strategy, base_url="http://strategy.test") as strategies,
        serve_in_process(market, base_url="http://market.test") as market_client,
    ):
        tokens = InternalTokens(settings, ttl_seconds=60)
        app = create_app(
            settings,
            strategies=HttpStrategySource(strategies, "http://strategy.test", tokens),
            market=HttpMarketData(market_client, "http://market.test", tokens),
        )
        async with serve_in_process(app) as client:
            yield Platform(app, client, strategies, market_client, settings, gateway)


@pytest.fixture
def start_worker(settings: Settings) -> Callable[..., Any]:
    """``async with start_worker() as worker:`` a forward-test worker in this process."""

    @contextlib.asynccontextmanager
    async def start(**options: Any) -> AsyncIterator[Any]:
        from forward_test_service.worker import Worker

        worker = Worker(settings, consumer_options=FAST_GROUP)
        async with worker.running(**options):
            yield worker

    return start


def btc_bars(count: int, first: int = 0) -> Bars:
    every = Bars.from_csv(DATA / "btc-usd-4h.csv")
    return every.slice(first, first + count)


def session_body(strategy_id: str, symbol: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "strategy_id": strategy_id,
        "symbol": symbol,
        "timeframe": "4h",
        "capital": 10_000,
        "config": {"fee_bps": 10, "slippage_bps": 5, "calendar": "24x7"},
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="session")
def graph() -> Callable[..., dict[str, Any]]:
    return sma_cross


def assert_same(a: Any, b: Any) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
