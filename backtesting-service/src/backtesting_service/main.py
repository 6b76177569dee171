"""Composition root of the backtesting service: builds the app and its clients.

The HTTP service accepts, lists and cancels jobs and serves results; the work happens in
`backtesting_service.worker` processes. The outbox relay (started by the app factory) publishes
the job messages the API stages.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from algotrade import backtest_events
from algotrade.auth import InternalTokens
from algotrade.service import Resources, create_service_app
from backtesting_service.api.routes import ROUTERS
from backtesting_service.bar_sources import BarSource, HttpBarSource
from backtesting_service.config import Settings
from backtesting_service.jobs import JobStore
from backtesting_service.models import SCHEMA
from backtesting_service.results import ResultStore
from backtesting_service.services import BacktestServices
from backtesting_service.strategies import HttpStrategySource, StrategySource
from backtesting_service.submission import Submission

NAME = "backtesting-service"
# The event payload models register themselves on import; keep the import explicit.
EVENT_TYPES = (backtest_events.REQUESTED, backtest_events.COMPLETED)


def create_app(
    settings: Settings | None = None,
    *,
    strategies: StrategySource | None = None,
    bars: BarSource | None = None,
) -> FastAPI:
    """The service app. ``strategies`` and ``bars`` replace the HTTP clients of the strategy
    and market data services (tests, demos)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def setup(resources: Resources) -> AsyncIterator[BacktestServices]:
        async with contextlib.AsyncExitStack() as stack:
            tokens = InternalTokens(settings, ttl_seconds=settings.internal_token_ttl_seconds)
            client = httpx.AsyncClient(timeout=settings.http_timeout_seconds)
            stack.push_async_callback(client.aclose)
            yield BacktestServices(
                settings=settings,
                jobs=JobStore(
                    resources.require_sessions(),
                    resources.topics,
                    producer=NAME,
                    relay=resources.relay,
                ),
                results=ResultStore(resources.require_store()),
                submission=Submission(
                    strategies=strategies
                    or HttpStrategySource(client, settings.strategy_service_url, tokens),
                    bars=bars
                    or HttpBarSource(
                        client,
                        settings.market_data_service_url,
                        tokens,
                        page_size=settings.bars_page_size,
                        max_bars=settings.max_bars,
                    ),
                    chunk_size=settings.sweep_chunk_size,
                ),
            )

    return create_service_app(
        name=NAME,
        settings=settings,
        uses=("postgres", "kafka", "s3"),
        schema=SCHEMA,
        routers=ROUTERS,
        setup=setup,
    )
