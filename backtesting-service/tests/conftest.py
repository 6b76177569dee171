"""Fixtures: the service app and a worker on real PostgreSQL, Kafka and S3 (moto).

Strategy graphs come from a small stand-in of the strategy service's documented API (that
service is another team's; the HTTP client under test talks to it over real ASGI HTTP). Bars
come from `CsvBarSource` over the repository's real data files; `test_bar_sources.py` runs the
HTTP bar source against the real market data service app.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from algotrade.auth import InternalTokens, internal_verifier
from algotrade.migrations import upgrade
from algotrade_testkit.graphs import sma_cross
from algotrade_testkit.services import ALL_SCOPES, internal_token, serve_in_process, session_keys
from backtesting_service.bar_sources import BarSource, CsvBarSource
from backtesting_service.config import Settings
from backtesting_service.main import create_app
from backtesting_service.strategies import HttpStrategySource
from backtesting_service.worker import Worker

DATA = Path(__file__).resolve().parents[2] / "data"
# Generated per run (make_settings passes it already); kept for modules that pass it too.
TEST_SECRET = session_keys().access_secret
FAST_GROUP = {"heartbeat_interval_ms": 100, "session_timeout_ms": 6000}


@dataclass
class StrategyServiceStandIn:
    """The strategy service's version endpoint: the graph of a user's strategy version."""

    settings: Settings
    versions: dict[tuple[str, str, int], dict[str, Any]] = field(default_factory=dict)
    refusals: dict[tuple[str, str, int], int] = field(default_factory=dict)  # -> a 4xx status
    calls: list[tuple[str, str, int, frozenset[str]]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()
        verifier = internal_verifier(self.settings)

        @app.get("/api/strategies/{strategy_id}/versions/{version}")
        async def version(strategy_id: str, version: int, request: Request) -> JSONResponse:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            principal = verifier.verify(token)
            self.calls.append((principal.user_id, strategy_id, version, principal.scopes))
            if status := self.refusals.get((principal.user_id, strategy_id, version)):
                return JSONResponse({"detail": "refused"}, status_code=status)
            graph = self.versions.get((principal.user_id, strategy_id, version))
            if graph is None:
                return JSONResponse({"detail": "not found"}, status_code=404)
            return JSONResponse(
                {"strategy_id": strategy_id, "n": version, "graph": graph, "plan_id": "p"}
            )

        return app


def csv_bars() -> CsvBarSource:
    return CsvBarSource(
        {("SPY", "1d"): DATA / "spy-1d.csv", ("BTC-USD", "4h"): DATA / "btc-usd-4h.csv"}
    )


@pytest.fixture
async def migrated(database_url: str) -> str:
    await upgrade(database_url, "backtesting_service", "backtest")
    return database_url


@pytest.fixture
def settings(make_settings: Callable[..., Any], migrated: str) -> Settings:
    settings: Settings = make_settings(
        Settings,
        sweep_chunk_size=4,
        strategy_service_url="http://strategy.test",
        market_data_service_url="http://market.test",
    )
    return settings


@pytest.fixture
def strategy_service(settings: Settings) -> StrategyServiceStandIn:
    return StrategyServiceStandIn(settings)


@dataclass
class Service:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    def headers(self, user_id: str = "alice", *scopes: str) -> dict[str, str]:
        token = internal_token(self.settings, user_id, frozenset(scopes) or ALL_SCOPES)
        return {"Authorization": f"Bearer {token}"}

    async def submit(self, body: dict[str, Any], user_id: str = "alice") -> httpx.Response:
        return await self.client.post("/api/backtests", json=body, headers=self.headers(user_id))

    async def submit_sweep(self, body: dict[str, Any], user_id: str = "alice") -> httpx.Response:
        return await self.client.post(
            "/api/backtests/sweeps", json=body, headers=self.headers(user_id)
        )

    async def get(self, url: str, user_id: str = "alice", **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, headers=self.headers(user_id), **kwargs)

    async def wait_status(self, job_id: str, *statuses: str, within: float = 60) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + within
        while True:
            job: dict[str, Any] = (await self.get(f"/api/backtests/{job_id}")).json()
            if job["status"] in statuses:
                return job
            assert asyncio.get_running_loop().time() < deadline, f"job stuck: {job}"
            await asyncio.sleep(0.1)


@pytest.fixture
async def service(
    settings: Settings, strategy_service: StrategyServiceStandIn
) -> AsyncIterator[Service]:
    strategy_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=strategy_service.app()), base_url="http://strategy.test"
    )
    strategies = HttpStrategySource(
        strategy_client, "http://strategy.test", InternalTokens(settings, ttl_seconds=60)
    )
    app = create_app(settings, strategies=strategies, bars=csv_bars())
    async with strategy_client, serve_in_process(app) as client:
        yield Service(app, client, settings)


@pytest.fixture
def start_worker(settings: Settings) -> Callable[..., Any]:
    """``async with start_worker(bars=..., **settings) as worker:`` a worker with one pool
    process; keyword arguments replace settings of that worker only."""

    @contextlib.asynccontextmanager
    async def start(bars: BarSource | None = None, **changed: Any) -> AsyncIterator[Worker]:
        worker = Worker(
            settings.model_copy(update=changed),
            processes=1,
            bars=bars or csv_bars(),
            consumer_options=FAST_GROUP,
        )
        async with worker.running():
            yield worker

    return start


@pytest.fixture(scope="session")
def graph() -> Callable[..., dict[str, Any]]:
    return sma_cross


def spy_request(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "graph": sma_cross(),
        "symbol": "SPY",
        "timeframe": "1d",
        "start": "2010-01-01T00:00:00Z",
        "end": "2015-01-01T00:00:00Z",
        "config": {"initial_capital": 100_000, "fee_bps": 1},
    }
    body.update(overrides)
    return body


@pytest.fixture(scope="session")
def request_body() -> Callable[..., dict[str, Any]]:
    return spy_request
