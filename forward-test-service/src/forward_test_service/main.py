"""Composition root of the forward-test service: builds the app and its clients.

The HTTP service creates, lists, controls and reads sessions; bars are applied to them by
`forward_test_service.worker` processes. The outbox relay (started by the app factory)
publishes the session events the API stages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI

from algotrade import agent_events, session_events
from algotrade.auth import InternalTokens
from algotrade.service import Resources, create_service_app
from forward_test_service.access import AccessWatch
from forward_test_service.agent_orders import AgentOrders
from forward_test_service.agents.commands import CommandQueue, queue_policy
from forward_test_service.agents.connections import Connections
from forward_test_service.agents.desk import AgentDesk
from forward_test_service.agents.journal import AgentMonitor, Journal
from forward_test_service.agents.layout import SharedKeys
from forward_test_service.agents.registry import AgentRegistry
from forward_test_service.agents.sync import TradeBook
from forward_test_service.agents.wakeups import Wakeups
from forward_test_service.api.agent_lane import AgentLane, ForwardTestApp
from forward_test_service.api.routes import ROUTERS
from forward_test_service.broker import Broker, PaperBroker
from forward_test_service.checkpoints import CheckpointStore
from forward_test_service.config import Settings
from forward_test_service.market import HttpMarketData, MarketData
from forward_test_service.models import SCHEMA
from forward_test_service.services import SessionServices
from forward_test_service.store import SessionStore
from forward_test_service.strategies import HttpStrategySource, StrategySource
from forward_test_service.submission import Submission
from forward_test_service.warmup import warm_up_in_background

NAME = "forward-test-service"
# The event payload models register themselves on import; keep the import explicit.
EVENT_TYPES = (session_events.STARTED, session_events.STOPPED, agent_events.REGISTERED)


def create_app(
    settings: Settings | None = None,
    *,
    strategies: StrategySource | None = None,
    market: MarketData | None = None,
    broker: Broker | None = None,
) -> FastAPI:
    """The service app. ``strategies`` and ``market`` replace the HTTP clients of the
    strategy and market data services (tests, demos)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def setup(resources: Resources) -> AsyncIterator[SessionServices]:
        async with contextlib.AsyncExitStack() as stack:
            tokens = InternalTokens(settings, ttl_seconds=settings.internal_token_ttl_seconds)
            client = httpx.AsyncClient(timeout=settings.http_timeout_seconds)
            stack.push_async_callback(client.aclose)
            paper = broker or PaperBroker()
            agents = await stack.enter_async_context(_agents(settings, resources, NAME))
            # Not awaited: readiness does not wait for the kernels, the first session will.
            warming = asyncio.create_task(warm_up_in_background(), name="live-engine-warm-up")
            stack.push_async_callback(_settle, warming)
            store = SessionStore(
                resources.require_sessions(), resources.topics, producer=NAME, relay=resources.relay
            )
            market_data = market or HttpMarketData(client, settings.market_data_service_url, tokens)
            access = AccessWatch(store, market_data, every=settings.access_check_seconds)
            await stack.enter_async_context(access.running())
            yield SessionServices(
                settings=settings,
                sessions=store,
                checkpoints=CheckpointStore(resources.require_redis(), settings.redis_prefix),
                broker=paper,
                submission=Submission(
                    strategies=strategies
                    or HttpStrategySource(client, settings.strategy_service_url, tokens),
                    market=market_data,
                    broker=paper,
                    warmup_max_bars=settings.warmup_max_bars,
                ),
                agents=agents,
                access=access,
                orders=AgentOrders(resources.require_sessions(), agents.queue, store),
            )

    app = create_service_app(
        name=NAME,
        settings=settings,
        uses=("postgres", "redis", "kafka"),
        schema=SCHEMA,
        routers=ROUTERS,
        setup=setup,
        app_class=ForwardTestApp,
    )
    assert isinstance(app, ForwardTestApp)
    # Last, so that the lane's requests go through every middleware the app has.
    app.agent_lane = AgentLane(app, middleware=list(app.user_middleware))
    return app


@contextlib.asynccontextmanager
async def _agents(settings: Settings, resources: Resources, name: str) -> AsyncIterator[AgentDesk]:
    """The agent desk, with its wake-up subscription and its monitor running."""
    redis = resources.require_redis()
    prefix = settings.redis_prefix
    connections = Connections(redis, prefix)
    await connections.start()
    journal = Journal(
        redis,
        resources.require_sessions(),
        resources.topics,
        prefix,
        producer=name,
        relay=resources.relay,
    )
    wakeups = Wakeups(redis, SharedKeys(prefix).wake_channel)
    desk = AgentDesk(
        AgentRegistry(
            resources.require_sessions(),
            resources.topics,
            producer=name,
            max_per_user=settings.max_agents_per_user,
            relay=resources.relay,
        ),
        connections,
        CommandQueue(redis, prefix, queue_policy(settings), queued=wakeups.wake),
        TradeBook(redis, prefix),
        wakeups,
        poll_recheck_seconds=settings.agent_poll_recheck_seconds,
    )
    monitor = AgentMonitor(connections, journal, every=settings.agent_monitor_seconds)
    try:
        async with wakeups.running(), monitor.running():
            yield desk
    finally:
        await connections.aclose()


async def _settle(task: asyncio.Task[None]) -> None:
    """Let a warm-up still compiling finish in its thread (a thread cannot be cancelled)."""
    with contextlib.suppress(asyncio.CancelledError):
        await task
