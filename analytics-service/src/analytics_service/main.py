"""Composition root of the analytics service: builds the app and its clients.

One process serves ``/api/analytics`` and consumes ``session.events.v1`` and
``backtest.events.v1`` in the ``analytics`` consumer group (`analytics_service.ingest`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from algotrade import backtest_events, session_events
from algotrade.auth import InternalTokens
from algotrade.bus import ConsumerRunner, RetryPolicy, consuming
from algotrade.events import default_registry
from algotrade.service import Resources, create_service_app
from analytics_service.api.routes import ROUTERS
from analytics_service.benchmarks import MarketBenchmarks
from analytics_service.config import Settings
from analytics_service.ingest import Ingestor
from analytics_service.models import SCHEMA
from analytics_service.portfolios import Portfolios
from analytics_service.runs import RunStore
from analytics_service.services import Analytics

NAME = "analytics-service"
# The event payload models register themselves on import; keep the imports explicit.
EVENT_MODULES = (backtest_events, session_events)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def setup(resources: Resources) -> AsyncIterator[Analytics]:
        sessions = resources.require_sessions()
        async with contextlib.AsyncExitStack() as stack:
            client = httpx.AsyncClient(timeout=settings.http_timeout_seconds)
            stack.push_async_callback(client.aclose)
            tokens = InternalTokens(
                settings, ttl_seconds=settings.internal_token_ttl_seconds, reuse_seconds=60
            )
            ingestor = Ingestor(sessions)
            await stack.enter_async_context(
                consuming(lambda: _runner(settings, resources, ingestor), name="analytics-ingest")
            )
            yield Analytics(
                settings=settings,
                sessions=sessions,
                runs=RunStore(
                    sessions, resources.store, cache_entries=settings.backtest_cache_entries
                ),
                portfolios=Portfolios(sessions, per_user=settings.portfolios_per_user),
                benchmarks=MarketBenchmarks(client, settings.market_data_service_url, tokens),
            )

    return create_service_app(
        name=NAME,
        settings=settings,
        uses=("postgres", "kafka", "s3"),
        schema=SCHEMA,
        routers=ROUTERS,
        setup=setup,
    )


def _runner(settings: Settings, resources: Resources, ingestor: Ingestor) -> ConsumerRunner:
    topics = resources.topics
    return ConsumerRunner(
        bootstrap=settings.kafka_bootstrap,
        topics=[topics.session_events, topics.backtest_events],
        group_id=f"{topics.prefix}{settings.consumer_group_id}",
        handler=ingestor,
        batch_handler=ingestor.batch,
        producer=resources.require_producer(),
        registry=default_registry,
        stall_seconds=120.0,
        # PostgreSQL away: wait for it rather than dead-letter what the analyses are made of.
        retry=RetryPolicy(outage_seconds=300.0),
    )
