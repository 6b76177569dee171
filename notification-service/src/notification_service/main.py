"""Composition root of the notification service: builds the app and its clients.

One process serves ``/ws`` (sockets and subscriptions, `notification_service.subscriber`) and
``/api/notifications`` (status and modes), and consumes every event topic in a group of its own
(`notification_service.fanout`), numbering each message in Redis and handing it to its sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from algotrade import agent_events, backtest_events, bars, session_events
from algotrade.auth import InternalTokens
from algotrade.background import stop_task
from algotrade.bus import ConsumerRunner, RetryPolicy, consuming
from algotrade.events import default_registry
from algotrade.service import Resources, create_service_app
from notification_service.api.routes import ROUTERS
from notification_service.config import Settings
from notification_service.fanout import Fanout
from notification_service.features import FeatureBoard
from notification_service.hub import Hub
from notification_service.models import SCHEMA
from notification_service.parity import ParityChecker
from notification_service.sequencer import Sequencer
from notification_service.services import Notifications
from notification_service.snapshots import ResourceReader
from notification_service.status import StatusBoard
from notification_service.subscriber import features_frame

logger = logging.getLogger(__name__)

NAME = "notification-service"
# The event payload models register themselves on import; keep the imports explicit.
EVENT_MODULES = (agent_events, backtest_events, bars, session_events)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def setup(resources: Resources) -> AsyncIterator[Notifications]:
        redis = resources.require_redis()
        async with contextlib.AsyncExitStack() as stack:
            client = httpx.AsyncClient(timeout=settings.http_timeout_seconds)
            stack.push_async_callback(client.aclose)
            tokens = InternalTokens(
                settings, ttl_seconds=settings.internal_token_ttl_seconds, reuse_seconds=60
            )
            reader = ResourceReader(client, settings, tokens)
            features = FeatureBoard(resources.require_sessions(), redis, settings)
            hub = Hub(features.mode)
            features.listen(lambda modes: hub.broadcast(features_frame(modes)))
            sequencer = Sequencer(
                redis,
                settings.redis_prefix,
                buffer=settings.channel_buffer,
                ttl_seconds=settings.channel_ttl_seconds,
            )
            stack.push_async_callback(sequencer.aclose)
            parity = ParityChecker(
                reader, delay=settings.parity_delay_seconds, max_pending=settings.parity_max_pending
            )
            stack.push_async_callback(parity.aclose)
            status = StatusBoard(
                redis,
                settings.redis_prefix,
                settings.instance_id,
                hub,
                parity,
                lambda: features.modes,
                every=settings.stats_flush_seconds,
            )
            await stack.enter_async_context(features.running())
            await stack.enter_async_context(_repairing(hub, sequencer))
            await stack.enter_async_context(status.running())
            fanout = Fanout(sequencer, hub, parity, features.mode)
            await stack.enter_async_context(
                consuming(lambda: _runner(settings, resources, fanout), name="fanout")
            )
            yield Notifications(settings, hub, sequencer, reader, features, parity, status)

    return create_service_app(
        name=NAME,
        settings=settings,
        uses=("postgres", "redis", "kafka"),
        schema=SCHEMA,
        routers=ROUTERS,
        setup=setup,
    )


HOLE_SECONDS = 0.25  # a hole in a subscription's numbers open this long is filled from Redis


@contextlib.asynccontextmanager
async def _repairing(hub: Hub, sequencer: Sequencer) -> AsyncIterator[None]:
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            await asyncio.sleep(HOLE_SECONDS)
            try:
                await hub.repair(sequencer.replay, older_than=HOLE_SECONDS)
            except Exception as exc:  # Redis away: the holes wait for the next turn
                logger.warning("holes not repaired: %r", exc)

    task = asyncio.create_task(loop(), name="hole-repair")
    try:
        yield
    finally:
        await stop_task(task, stop)


def _runner(settings: Settings, resources: Resources, fanout: Fanout) -> ConsumerRunner:
    """Every event topic, in this instance's own group (starting at the end when new)."""
    topics = resources.topics
    return ConsumerRunner(
        bootstrap=settings.kafka_bootstrap,
        topics=[
            topics.market_bars,
            topics.session_events,
            topics.backtest_events,
            topics.agent_events,
        ],
        group_id=f"{topics.prefix}notification.{settings.instance_id}",
        handler=fanout.handle,
        producer=resources.require_producer(),
        registry=default_registry,
        consumer_options={"auto_offset_reset": "latest"},
        stall_seconds=60.0,
        # Redis or a broker away: wait for it rather than dead-letter the event stream.
        retry=RetryPolicy(outage_seconds=300.0),
    )
