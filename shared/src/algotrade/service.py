"""The app factory every service uses: lifespan-built clients, health, readiness, metrics.

`create_service_app` is each service's composition root. It builds only the clients the service
declares it uses (PostgreSQL, Redis, Kafka, S3), runs the service's own ``setup`` inside the same
lifespan, and closes everything in reverse order on shutdown. ``setup`` yields the service's
domain objects (a typed dataclass in its ``services.py``); routes get them as one ``ServicesDep``
made by `services_dependency`, and the clients through `Resources`. Workers build the same
clients with `open_resources`. Nothing lives in globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.responses import Response

from algotrade.auth import TokenVerifier, internal_verifier
from algotrade.bus import EventProducer
from algotrade.config import LOCAL_S3_SECRET, ServiceSettings
from algotrade.db import ServiceSchema, build_engine, build_session_factory, ping
from algotrade.errors import ConfigurationError, DependencyUnavailable
from algotrade.events import Topics
from algotrade.middleware import PlatformMiddleware, RequestMetrics
from algotrade.openapi import install_problem_openapi
from algotrade.outbox import OutboxRelay
from algotrade.problems import install_problem_handlers, problem_response
from algotrade.storage import ObjectStore

logger = logging.getLogger(__name__)

Dependency = Literal["postgres", "redis", "kafka", "s3"]
Check = Callable[[], Awaitable[Any]]
ReadinessReport = Mapping[str, str | None]  # dependency -> error, None when it answered
StatusSection = Callable[[ReadinessReport], Any]
Setup = Callable[["Resources"], AbstractAsyncContextManager[object]]
"""Builds the domain objects from the clients; what it yields becomes ``app.state.services``."""
S = TypeVar("S")

READINESS_TIMEOUT_SECONDS = 2.0
PRODUCER_START_WAIT_SECONDS = 3.0
_URL_CREDENTIALS = re.compile(r"(\w+://)[^@/\s]+@")


@dataclass
class Resources:
    """Clients built in the lifespan and handed to routes and background workers."""

    name: str
    settings: ServiceSettings
    topics: Topics
    metrics_registry: CollectorRegistry
    verifier: TokenVerifier
    engine: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    redis: Redis | None = None
    producer: EventProducer | None = None
    store: ObjectStore | None = None
    relay: OutboxRelay | None = None
    checks: dict[str, Check] = field(default_factory=dict)
    degradable: set[str] = field(default_factory=set)
    """Dependencies whose outage degrades the service (``status: degraded``) but keeps it ready."""
    status_sections: dict[str, StatusSection] = field(default_factory=dict)
    """Extra sections of the ``/readyz`` answer, computed from the dependency report."""

    def require_sessions(self) -> async_sessionmaker[AsyncSession]:
        if self.sessions is None:
            raise DependencyUnavailable("this service has no database")
        return self.sessions

    def require_redis(self) -> Redis:
        if self.redis is None:
            raise DependencyUnavailable("this service has no Redis")
        return self.redis

    def require_producer(self) -> EventProducer:
        if self.producer is None:
            raise DependencyUnavailable("this service has no Kafka producer")
        return self.producer

    def require_store(self) -> ObjectStore:
        if self.store is None:
            raise DependencyUnavailable("this service has no object store")
        return self.store


def create_service_app(
    *,
    name: str,
    settings: ServiceSettings,
    uses: Iterable[Dependency],
    routers: Iterable[APIRouter] = (),
    schema: ServiceSchema | None = None,
    setup: Setup | None = None,
    body_limits: dict[str, int] | None = None,
    openapi_url: str | None = "/openapi.json",
    app_class: type[FastAPI] = FastAPI,
) -> FastAPI:
    """A FastAPI app with the platform's lifespan, middleware, error mapping and probes.

    ``app_class``: a `FastAPI` subclass for a service that answers some requests before
    FastAPI's own layers (the gateway's proxy lane).
    """
    used = frozenset(uses)
    metrics_registry = CollectorRegistry(auto_describe=True)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            resources = await stack.enter_async_context(
                open_resources(
                    name=name,
                    settings=settings,
                    uses=used,
                    schema=schema,
                    metrics_registry=metrics_registry,
                )
            )
            app.state.resources = resources
            app.state.verifier = resources.verifier
            if setup is not None:
                app.state.services = await stack.enter_async_context(setup(resources))
            logger.info("%s started", name)
            yield
            logger.info("%s stopping", name)

    app = app_class(title=f"AlgoTrade {name}", lifespan=lifespan, openapi_url=openapi_url)
    install_problem_handlers(app)
    install_problem_openapi(app)
    app.add_middleware(
        PlatformMiddleware,
        metrics=RequestMetrics(metrics_registry, name),
        max_body_bytes=settings.max_body_bytes,
        body_limits=body_limits,
    )
    app.include_router(_probe_router(name))
    for router in routers:
        app.include_router(router)
    return app


@asynccontextmanager
async def open_resources(
    *,
    name: str,
    settings: ServiceSettings,
    uses: Iterable[Dependency],
    schema: ServiceSchema | None = None,
    metrics_registry: CollectorRegistry | None = None,
) -> AsyncIterator[Resources]:
    """The clients a service or a worker declares it uses, closed in reverse order on exit.

    One construction for apps (inside `create_service_app`'s lifespan) and workers, so both
    get the same pool sizes, timeouts, Kafka start-up retry and outbox relay.
    """
    async with AsyncExitStack() as stack:
        resources = Resources(
            name=name,
            settings=settings,
            topics=Topics(settings.kafka_topic_prefix),
            metrics_registry=metrics_registry or CollectorRegistry(auto_describe=True),
            verifier=internal_verifier(settings),
        )
        await _build_clients(resources, frozenset(uses), schema, stack)
        yield resources


async def wait_until_ready(check: Check, within_seconds: float) -> None:
    """Wait for a dependency a worker cannot start without (Kafka: it joins a group); a
    `DependencyUnavailable` naming the last failure after ``within_seconds``."""
    last: Exception | None = None
    try:
        async with asyncio.timeout(within_seconds):
            while True:
                try:
                    await check()
                    return
                except Exception as exc:
                    last = exc
                    await asyncio.sleep(0.5)
    except TimeoutError:
        raise DependencyUnavailable(f"not reachable within {within_seconds:.0f}s: {last}") from last


def services_dependency(kind: type[S]) -> Callable[[Request], Awaitable[S]]:
    """The route dependency returning the service's domain objects (what its setup yielded).

    Each service declares ``ServicesDep = Annotated[XServices, Depends(services_dependency(
    XServices))]`` in ``api/deps.py``: one typed entry point instead of loose keys. It is a
    coroutine because FastAPI runs a plain ``def`` dependency in a worker thread, a hop that
    costs more than many whole requests.
    """

    async def get_services(request: Request) -> S:
        services = getattr(request.app.state, "services", None)
        if not isinstance(services, kind):
            raise DependencyUnavailable(f"{kind.__name__} is not built (the app has not started)")
        return services

    return get_services


async def _build_clients(
    res: Resources, used: frozenset[Dependency], schema: ServiceSchema | None, stack: AsyncExitStack
) -> None:
    settings = res.settings
    if "postgres" in used:
        engine = build_engine(
            settings.database_url.get_secret_value(), pool_size=settings.db_pool_size
        )
        stack.push_async_callback(engine.dispose)
        res.engine = engine
        res.sessions = build_session_factory(engine)
        res.checks["postgres"] = lambda: ping(engine)
    if "redis" in used:
        # A burst beyond the pool waits for a connection (up to the socket timeout) instead of
        # failing at once, as redis-py's default pool does past 100 connections.
        pool = BlockingConnectionPool.from_url(
            settings.redis_url.get_secret_value(),
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_pool_wait_seconds,
            socket_connect_timeout=2,
            socket_timeout=settings.redis_timeout_seconds,
        )
        redis = Redis(connection_pool=pool)
        stack.push_async_callback(redis.aclose)
        stack.push_async_callback(pool.aclose)
        res.redis = redis
        res.checks["redis"] = redis.ping
    if "kafka" in used:
        producer = EventProducer(settings.kafka_bootstrap, client_id=res.name)
        started = await _start_producer(producer, stack)
        res.producer = producer
        res.checks["kafka"] = _producer_check(producer, started)
    if "s3" in used:
        if not settings.is_local and settings.s3_secret_key.get_secret_value() == LOCAL_S3_SECRET:
            raise ConfigurationError("S3_SECRET_KEY is the local default outside local mode")
        store = ObjectStore.from_settings(settings)
        try:
            await store.ensure_bucket()
        except Exception as exc:  # readiness reports it; the service still starts
            logger.warning("object store not reachable at start: %s", _scrub(exc))
        res.store = store
        res.checks["s3"] = store.ping
    if schema is not None and res.engine is not None and res.producer is not None:
        relay = OutboxRelay(
            res.engine, schema.outbox, res.producer, poll_seconds=settings.outbox_poll_seconds
        )
        task = asyncio.create_task(relay.run(), name=f"{res.name}-outbox-relay")

        async def stop_relay() -> None:
            await relay.stop_task(task)

        stack.push_async_callback(stop_relay)
        res.relay = relay
        res.checks["outbox"] = relay.check


async def _start_producer(producer: EventProducer, stack: AsyncExitStack) -> asyncio.Event:
    """Start the producer, retrying in the background if Kafka is not up yet."""
    started = asyncio.Event()

    async def keep_trying() -> None:
        delay = 0.5
        while True:
            try:
                await producer.start()
            except Exception as exc:
                logger.warning(
                    "kafka not reachable yet (%s); retrying in %.1fs", _scrub(exc), delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            started.set()
            return

    task = asyncio.create_task(keep_trying())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), timeout=PRODUCER_START_WAIT_SECONDS)

    async def close() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if started.is_set():
            await producer.stop()

    stack.push_async_callback(close)
    return started


def _producer_check(producer: EventProducer, started: asyncio.Event) -> Check:
    async def check() -> None:
        if not started.is_set():
            raise ConnectionError("producer not connected")
        await producer.ping()

    return check


def _scrub(exc: BaseException) -> str:
    """An error message safe to log or return: no credentials from URLs, bounded length."""
    return _URL_CREDENTIALS.sub(r"\1***@", f"{type(exc).__name__}: {exc}")[:300]


def _probe_router(name: str) -> APIRouter:
    router = APIRouter(tags=["probes"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": name}

    @router.get("/readyz", response_model=None)
    async def readyz(request: Request) -> Response | dict[str, Any]:
        resources: Resources = request.app.state.resources
        results = await asyncio.gather(*(_run_check(check) for check in resources.checks.values()))
        report = dict(zip(resources.checks, results, strict=True))
        down = {dep: err for dep, err in report.items() if err is not None}
        required_down = {dep: err for dep, err in down.items() if dep not in resources.degradable}
        if required_down:
            detail = "; ".join(f"{dep} is down ({err})" for dep, err in required_down.items())
            return problem_response(
                503,
                "Not ready",
                detail,
                code="not_ready",
                errors=[{"dependency": dep, "message": err} for dep, err in down.items()],
            )
        body: dict[str, Any] = {
            "status": "degraded" if down else "ready",
            "service": name,
            "checks": {
                dep: "ok" if err is None else f"down ({err})" for dep, err in report.items()
            },
        }
        body.update({key: section(report) for key, section in resources.status_sections.items()})
        return body

    @router.get("/metrics")
    async def metrics(request: Request) -> Response:
        resources: Resources = request.app.state.resources
        return Response(generate_latest(resources.metrics_registry), media_type=CONTENT_TYPE_LATEST)

    return router


async def _run_check(check: Check) -> str | None:
    try:
        await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"no answer within {READINESS_TIMEOUT_SECONDS:.0f}s"
    except Exception as exc:
        return _scrub(exc)
    return None


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_resources(request).require_sessions()() as session:
        yield session


ResourcesDep = Annotated[Resources, Depends(get_resources)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
