"""Fixtures: the forward-test service, the gateway and (for bars) the market-data service, each
a real app behind a real uvicorn server on the test's PostgreSQL, Redis and Kafka, that a test
can stop and start again on the same port and data."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import sdk_testkit

from sdk_testkit import Served, Trader, sign_up

from algotrade.migrations import upgrade
from algotrade.topics import ensure_topics
from algotrade_devstack.infra import free_port
from algotrade_testkit.services import key_settings
from api_gateway.config import Settings as GatewaySettings
from api_gateway.main import create_app as gateway_app
from forward_test_service.config import Settings as ForwardSettings
from forward_test_service.main import create_app as forward_app
from market_data_service.config import Settings as MarketSettings
from market_data_service.main import create_app as market_app

AGENT_QUEUE = {
    "agent_lease_seconds": 1.0,  # a command not acked within 1 s is delivered again
    "agent_backoff_base_seconds": 0.05,
    "agent_backoff_max_seconds": 0.2,
    "agent_monitor_seconds": 0.1,
}


@dataclass
class Stack:
    """The running apps, and a client of the gateway (whose port never changes)."""

    gateway: Served
    forward: Served
    market: Served | None
    gateway_settings: GatewaySettings
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        return self.gateway.url

    async def trader(self, **agent: Any) -> Trader:
        return await sign_up(self.client, **agent)


@pytest.fixture
def make_stack(
    database_url: str,
    make_settings: Callable[..., Any],
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> Callable[..., Any]:
    """``async with make_stack(market=True) as stack``: the apps, started; stopped after."""

    @contextlib.asynccontextmanager
    async def build(*, market: bool = False) -> AsyncIterator[Stack]:
        await upgrade(database_url, "forward_test_service", "forward")
        await upgrade(database_url, "api_gateway", "gateway")
        # Created up front: a send to a topic the broker is still auto-creating can hold a
        # producer's shutdown past the lifespan's timeout.
        await ensure_topics(kafka_bootstrap, topic_prefix)
        served_market: Served | None = None
        if market:
            await upgrade(database_url, "market_data_service", "market")
            market_settings = make_settings(MarketSettings, import_spool_dir=tmp_path / "spool")
            served_market = Served("market-data-service", lambda: market_app(market_settings))
        market_url = served_market.url if served_market else f"http://127.0.0.1:{free_port()}"
        forward_settings = make_settings(
            ForwardSettings,
            **key_settings("forward-test"),
            **AGENT_QUEUE,
            market_data_service_url=market_url,
        )
        forward = Served("forward-test-service", lambda: forward_app(forward_settings))
        gateway_settings = make_settings(
            GatewaySettings,
            **key_settings("gateway"),
            forward_test_service_url=forward.url,
            market_data_service_url=market_url,
            password_hash_time_cost=1,
            password_hash_memory_kib=1024,
            password_hash_parallelism=1,
        )
        gateway = Served("api-gateway", lambda: gateway_app(gateway_settings))
        started: list[Served] = []
        try:
            for served in (served_market, forward, gateway):
                if served is not None:
                    await served.start()
                    started.append(served)
            async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
                yield Stack(gateway, forward, served_market, gateway_settings, client)
        finally:
            for served in reversed(started):
                await served.stop()

    return build


@pytest.fixture
async def stack(make_stack: Callable[..., Any]) -> AsyncIterator[Stack]:
    """The forward-test service and the gateway (no market data)."""
    async with make_stack() as stack:
        yield stack
