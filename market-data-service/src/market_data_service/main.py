"""Composition root of the market data service: builds the app, its clients and workers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from redis.exceptions import RedisError

from algotrade.service import Resources, create_service_app
from algotrade.windows import SlidingWindows
from market_data_service import imports, replay
from market_data_service.api.routes import ROUTERS
from market_data_service.config import Settings
from market_data_service.imports import ImportRunner
from market_data_service.ingest import BarIngestor, IngestMetrics
from market_data_service.models import SCHEMA
from market_data_service.owners import SymbolDirectory
from market_data_service.providers.coinbase import CandleSource, CoinbaseCandles, CoinbaseProvider
from market_data_service.replay import ReplayManager
from market_data_service.resample import Resampler
from market_data_service.services import MarketServices
from market_data_service.ticks import TickAggregator, TickMetrics
from market_data_service.window_cache import WindowCache

NAME = "market-data-service"
logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, candles: CandleSource | None = None) -> FastAPI:
    """The service app. ``candles`` replaces the Coinbase REST backfill (tests)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def setup(resources: Resources) -> AsyncIterator[MarketServices]:
        sessions = resources.require_sessions()
        # History is where a bar becomes durable: without PostgreSQL the service is not ready.
        # Redis (windows refill) and Kafka (events wait in the outbox) only degrade it.
        resources.degradable.update({"redis", "kafka", "outbox"})
        windows = SlidingWindows(
            resources.require_redis(),
            prefix=settings.redis_prefix,
            capacity=settings.window_capacity,
        )
        try:
            cleared = await windows.clear_warm_flags()
            logger.info("windows cold after start: %d flag(s) cleared", cleared)
        except (RedisError, OSError) as exc:
            logger.warning("redis unreachable at start (%s); windows stay cold", exc)
        cache = WindowCache(windows, sessions)
        directory = SymbolDirectory(sessions)
        ingestor = BarIngestor(
            sessions=sessions,
            cache=cache,
            topics=resources.topics,
            producer_name=NAME,
            bars_per_event=settings.bars_per_event,
            relay=resources.relay,
            metrics=IngestMetrics(resources.metrics_registry),
            directory=directory,
        )
        ticks = TickAggregator(
            resources.require_redis(),
            ingestor=ingestor,
            sessions=sessions,
            prefix=settings.redis_prefix,
            grace_seconds=settings.tick_close_grace_seconds,
            interval_seconds=settings.tick_close_interval_seconds,
            metrics=TickMetrics(resources.metrics_registry),
        )
        resampler = Resampler(sessions, ingestor, max_source_bars=settings.resample_max_source_bars)
        market = MarketServices(
            settings=settings,
            sessions=sessions,
            windows=windows,
            cache=cache,
            ingestor=ingestor,
            resampler=resampler,
            directory=directory,
            ticks=ticks,
            imports=ImportRunner(
                sessions=sessions,
                ingestor=ingestor,
                import_dir=settings.import_dir,
                spool_dir=settings.import_spool_dir,
                chunk_rows=settings.import_chunk_rows,
                max_reported_errors=settings.import_max_reported_errors,
                concurrency=settings.import_concurrency,
            ),
            replays=ReplayManager(
                sessions=sessions,
                ingestor=ingestor,
                max_active_per_user=settings.replay_max_active_per_user,
                progress_seconds=settings.replay_progress_seconds,
            ),
        )
        async with contextlib.AsyncExitStack() as stack:
            repair = asyncio.create_task(cache.repair_forever(), name="window-repair")
            stack.callback(repair.cancel)
            await stack.enter_async_context(imports.running(market.imports))
            await stack.enter_async_context(replay.running(market.replays))
            # Closes minutes that went quiet and stores closed minutes a crash left behind.
            await stack.enter_async_context(ticks.running())
            if settings.coinbase_enabled:
                source = candles
                if source is None and settings.coinbase_backfill:
                    source = CoinbaseCandles(settings.coinbase_rest_url)
                market.coinbase = CoinbaseProvider(
                    products=settings.coinbase_products,
                    ws_url=settings.coinbase_ws_url,
                    ingestor=ingestor,
                    sessions=sessions,
                    resampler=resampler,
                    derive_timeframes=settings.coinbase_derive_timeframes,
                    candles=source,
                    max_backfill_minutes=settings.coinbase_max_backfill_minutes,
                    reconnect_initial=settings.coinbase_reconnect_initial_seconds,
                    reconnect_max=settings.coinbase_reconnect_max_seconds,
                )
                await stack.enter_async_context(market.coinbase.running())
            # Everything built so far lives as long as the process: keep it out of the
            # garbage collector's scans (a full scan of a service heap stalls ~50-100 ms).
            gc.freeze()
            yield market

    return create_service_app(
        name=NAME,
        settings=settings,
        uses=("postgres", "redis", "kafka"),
        schema=SCHEMA,
        routers=ROUTERS,
        setup=setup,
        body_limits={
            "/api/market/bars": settings.bars_max_body_bytes,
            "/api/market/ticks": settings.ticks_max_body_bytes,
            "/api/market/imports": settings.import_max_upload_bytes,
        },
    )
