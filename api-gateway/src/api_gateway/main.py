"""Composition root of the API gateway: builds the app, its clients and its domain objects."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio import Redis
from starlette.responses import Response
from starlette.routing import BaseRoute

from algotrade.problems import problem_response
from algotrade.service import Resources, create_service_app
from api_gateway.api.routes import ROUTERS
from api_gateway.api_keys import ApiKeys
from api_gateway.config import Settings
from api_gateway.credentials import Authenticator
from api_gateway.errors import install_gateway_handlers
from api_gateway.gateway import Gateway
from api_gateway.metrics import GatewayMetrics
from api_gateway.models import SCHEMA
from api_gateway.openapi import MergedOpenAPI
from api_gateway.passwords import PasswordHasher
from api_gateway.proxy import Proxy, build_upstreams
from api_gateway.ratelimit import LoginThrottle, RateLimiter, RedisHealth
from api_gateway.routing import WEBSOCKET_RULE, RouteTable
from api_gateway.tokens import AccessTokens, InternalTokens, RefreshTokens
from api_gateway.websocket import WebSocketProxy

NAME = "api-gateway"
_URL_CREDENTIALS = re.compile(r"(\w+://)[^@/\s]+@")
READINESS_TIMEOUT_SECONDS = 2.0
EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app: FastAPI

    @asynccontextmanager
    async def setup(resources: Resources) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            gateway = await _build_gateway(settings, resources, app, stack)
            resources.extras["gateway"] = gateway
            yield

    app = create_service_app(
        name=NAME,
        settings=settings,
        uses=("postgres",),  # Redis is built in `setup`, with the limiter's short timeouts
        schema=SCHEMA,
        routers=ROUTERS,
        setup=setup,
        body_limits=settings.proxy_body_limits,
    )
    install_gateway_handlers(app)
    _replace_route(app, "/readyz", _readyz, "readyz")
    _replace_route(app, app.openapi_url or "/openapi.json", _openapi, "openapi")
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
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
    health = RedisHealth(settings.rate_limit_redis_retry_seconds)
    limiter = RateLimiter(
        redis,
        prefix=settings.redis_prefix,
        rules=settings.rate_limits,
        health=health,
        metrics=metrics,
    )
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
    access_tokens = AccessTokens(settings)
    internal_tokens = InternalTokens(settings)
    api_keys = ApiKeys(
        sessions,
        cache_seconds=settings.api_key_cache_seconds,
        max_per_user=settings.max_api_keys_per_user,
    )
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


def _replace_route(app: FastAPI, path: str, endpoint: Any, name: str) -> None:
    """Swap one of the factory's routes for the gateway's version of it."""
    routes: list[BaseRoute] = app.router.routes
    routes[:] = [r for r in routes if getattr(r, "path", None) != path]
    app.add_api_route(path, endpoint, methods=["GET"], name=name, include_in_schema=False)
    # The factory's routes were registered first and would match first; move ours up.
    routes.insert(0, routes.pop())


async def _openapi(request: Request) -> Response:
    """The merged OpenAPI document: the gateway's own paths and every routed service's."""
    gateway: Gateway = request.app.state.resources.extras["gateway"]
    return _json(await gateway.openapi.document())


async def _readyz(request: Request) -> Response:
    """Ready unless PostgreSQL is down. Without Redis the gateway still serves, degraded:
    rate limiting then fails open for some route classes and closed for others (logins
    included); the answer says which. Answering 503 then would take every gateway out of
    rotation and turn "fail open for reads" into "fail closed for everything".
    """
    resources: Resources = request.app.state.resources
    gateway: Gateway = resources.extras["gateway"]
    names = list(resources.checks)
    results = await asyncio.gather(*(_run_check(resources.checks[n]) for n in names))
    report = dict(zip(names, results, strict=True))
    checks = {name: "ok" if err is None else f"down ({err})" for name, err in report.items()}
    body: dict[str, Any] = {"status": "ready", "service": NAME, "checks": checks}
    rules = gateway.settings.rate_limits
    if report.get("redis") is not None:
        fails_open = sorted(c for c, r in rules.items() if r.fail_open)
        fails_closed = sorted(c for c, r in rules.items() if not r.fail_open)
        body["status"] = "degraded"
        body["rate_limiting"] = {
            "state": "unavailable",
            "fails_open": fails_open,
            "fails_closed": fails_closed,
            "detail": (
                "Redis is down: rate limiting fails open for "
                f"{', '.join(fails_open) or 'no'} requests (served without limits) and "
                f"closed for {', '.join(fails_closed) or 'no'} requests (refused with 503)"
                + ("; logins are refused until Redis is back" if "auth" in fails_closed else "")
            ),
        }
    else:
        body["rate_limiting"] = {"state": "enforced"}
    body["upstreams"] = {name: u.breaker.state for name, u in gateway.upstreams.items()}
    down = {n: e for n, e in report.items() if e is not None and n != "redis"}
    if down:
        detail = "; ".join(f"{dep} is down ({err})" for dep, err in down.items())
        if "rate_limiting" in body and body["rate_limiting"]["state"] == "unavailable":
            detail += "; " + body["rate_limiting"]["detail"]
        return problem_response(
            503,
            "Not ready",
            detail,
            code="not_ready",
            errors=[{"dependency": dep, "message": err} for dep, err in report.items() if err],
        )
    return _json(body)


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


async def _run_check(check: Any) -> str | None:
    try:
        await asyncio.wait_for(check(), timeout=READINESS_TIMEOUT_SECONDS)
    except TimeoutError:
        return f"no answer within {READINESS_TIMEOUT_SECONDS:.0f}s"
    except Exception as exc:
        return _URL_CREDENTIALS.sub(r"\1***@", f"{type(exc).__name__}: {exc}")[:300]
    return None
