"""Composition root of the API gateway: builds the app, its clients and its domain objects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from redis.asyncio import Redis
from starlette.responses import Response

from algotrade.service import ReadinessReport, Resources, create_service_app
from api_gateway.api.routes import ROUTERS
from api_gateway.api.routes.proxy import PROXY_PATH
from api_gateway.api_keys import ApiKeys
from api_gateway.config import Settings
from api_gateway.cors import GatewayCORS
from api_gateway.credentials import Authenticator
from api_gateway.errors import install_gateway_handlers
from api_gateway.header_limits import CredentialHeaderLimit
from api_gateway.metrics import GatewayMetrics
from api_gateway.models import SCHEMA
from api_gateway.openapi import MergedOpenAPI
from api_gateway.passwords import PasswordHasher
from api_gateway.proxy import Proxy, build_upstreams
from api_gateway.proxy_lane import GatewayApp, ProxyLane
from api_gateway.ratelimit import LoginThrottle, RateLimiter, RedisHealth
from api_gateway.routing import WEBSOCKET_RULE, RouteTable
from api_gateway.services import Gateway
from api_gateway.tokens import AccessTokens, InternalTokens, RefreshTokens
from api_gateway.webapp import WebAppRoute
from api_gateway.websocket import WebSocketProxy

NAME = "api-gateway"
EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
]


def create_app(settings: Settings | None = None) -> GatewayApp:
    settings = settings or Settings()
    app: GatewayApp

    @asynccontextmanager
    async def setup(resources: Resources) -> AsyncIterator[Gateway]:
        async with AsyncExitStack() as stack:
            yield await _build_gateway(settings, resources, app, stack)

    created = create_service_app(
        name=NAME,
        settings=settings,
        uses=("postgres",),  # Redis is built in `setup`, with the limiter's short timeouts
        schema=SCHEMA,
        routers=ROUTERS,
        setup=setup,
        body_limits=settings.proxy_body_limits,
        openapi_url=None,  # the gateway serves the merged document of every routed service
        app_class=GatewayApp,
    )
    assert isinstance(created, GatewayApp)
    app = created
    install_gateway_handlers(app)
    app.add_api_route("/openapi.json", _openapi, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", _docs, methods=["GET"], include_in_schema=False)
    # Last: the web app answers the GET paths no route above claims (never /api, /ws, /docs).
    app.router.routes.append(WebAppRoute(settings.web_dist_dir))
    # Before anything reads a credential; inside CORS so that a browser can read the 431.
    app.add_middleware(CredentialHeaderLimit, max_bytes=settings.max_credential_header_bytes)
    app.add_middleware(
        GatewayCORS,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
    # Before FastAPI's own layers: routed requests go through the middleware above, then
    # straight to the proxy.
    app.proxy_lane = ProxyLane(
        app,
        middleware=list(app.user_middleware),
        table=RouteTable(),
        route_path=PROXY_PATH,
        max_credential_bytes=settings.max_credential_header_bytes,
    )
    return app


async def _build_gateway(
    settings: Settings, resources: Resources, app: FastAPI, stack: AsyncExitStack
) -> Gateway:
    sessions = resources.require_sessions()
    metrics = GatewayMetrics(resources.metrics_registry)
    redis = Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=settings.rate_limit_redis_timeout_seconds,
        socket_timeout=settings.rate_limit_redis_timeout_seconds,
    )
    stack.push_async_callback(redis.aclose)
    resources.redis = redis
    resources.checks["redis"] = redis.ping
    # Without Redis the gateway still serves, degraded: answering 503 would take every gateway
    # out of rotation and turn "fail open for reads" into "fail closed for everything".
    resources.degradable.add("redis")
    resources.status_sections["rate_limiting"] = partial(rate_limiting_status, settings)
    health = RedisHealth(settings.rate_limit_redis_retry_seconds)
    limiter = RateLimiter(
        redis,
        prefix=settings.redis_prefix,
        rules=settings.rate_limits,
        health=health,
        metrics=metrics,
        lease_seconds=settings.rate_limit_lease_seconds,
        max_lease=settings.rate_limit_max_lease,
    )
    stack.push_async_callback(limiter.aclose)
    login_throttle = LoginThrottle(
        redis,
        prefix=settings.redis_prefix,
        max_per_account=settings.login_max_failures_per_account,
        max_per_address=settings.login_max_failures_per_address,
        window_seconds=settings.login_throttle_window_seconds,
        health=health,
    )
    upstreams = build_upstreams(settings)
    for upstream in upstreams.values():
        stack.push_async_callback(upstream.aclose)
    resources.status_sections["upstreams"] = lambda _report: {
        name: upstream.breaker.state for name, upstream in upstreams.items()
    }
    access_tokens = AccessTokens(settings)
    internal_tokens = InternalTokens(settings)
    api_keys = ApiKeys(
        sessions,
        cache_seconds=settings.api_key_cache_seconds,
        max_per_user=settings.max_api_keys_per_user,
    )
    await stack.enter_async_context(api_keys.refreshing())
    authenticator = Authenticator(access_tokens, api_keys)
    table = RouteTable()
    return Gateway(
        settings=settings,
        sessions=sessions,
        passwords=PasswordHasher(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
            parallelism=settings.password_hash_parallelism,
            concurrency=settings.password_hash_concurrency,
        ),
        access_tokens=access_tokens,
        refresh_tokens=RefreshTokens(ttl_seconds=settings.refresh_token_ttl_seconds),
        internal_tokens=internal_tokens,
        api_keys=api_keys,
        authenticator=authenticator,
        limiter=limiter,
        login_throttle=login_throttle,
        redis_health=health,
        upstreams=upstreams,
        proxy=Proxy(
            settings=settings,
            table=table,
            upstreams=upstreams,
            authenticator=authenticator,
            limiter=limiter,
            internal_tokens=internal_tokens,
            metrics=metrics,
        ),
        websockets=WebSocketProxy(
            upstream=upstreams[WEBSOCKET_RULE.upstream],
            authenticator=authenticator,
            limiter=limiter,
            internal_tokens=internal_tokens,
            metrics=metrics,
            auth_timeout=settings.websocket_auth_timeout_seconds,
            send_timeout=settings.websocket_send_timeout_seconds,
            connect_timeout=settings.upstream_connect_timeout_seconds,
        ),
        openapi=MergedOpenAPI(
            own=app.openapi,
            upstreams=upstreams,
            table=table,
            cache_seconds=settings.openapi_cache_seconds,
            fetch_timeout=settings.openapi_fetch_timeout_seconds,
        ),
        metrics=metrics,
    )


def rate_limiting_status(settings: Settings, report: ReadinessReport) -> dict[str, Any]:
    """What rate limiting does right now; with Redis down, which route classes fail which way."""
    if report.get("redis") is None:
        return {"state": "enforced"}
    rules = settings.rate_limits
    fails_open = sorted(c for c, r in rules.items() if r.fail_open)
    fails_closed = sorted(c for c, r in rules.items() if not r.fail_open)
    return {
        "state": "unavailable",
        "fails_open": fails_open,
        "fails_closed": fails_closed,
        "detail": (
            "Redis is down: rate limiting fails open for "
            f"{', '.join(fails_open) or 'no'} requests (served without limits) and "
            f"closed for {', '.join(fails_closed) or 'no'} requests (refused with 503); "
            "logins are refused until Redis is back (failed sign-ins are counted there)"
        ),
    }


async def _docs(request: Request) -> Response:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="AlgoTrade Beta2 API")


async def _openapi(request: Request) -> Response:
    """The merged OpenAPI document: the gateway's own paths and every routed service's."""
    gateway: Gateway = request.app.state.services
    return _json(await gateway.openapi.document())


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")
