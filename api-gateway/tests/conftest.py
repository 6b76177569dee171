"""Fixtures: a real echo upstream (a platform service app behind uvicorn) and the gateway.

The echo service is built with `create_service_app` and guards its routes with the shared
`CurrentPrincipal`, so every answer proves the gateway's internal token end to end: it only
answers requests carrying a valid internal token, and it reports the principal it saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response, StreamingResponse

from algotrade import migrations
from algotrade.auth import KeySet, Principal, TokenIssuer, current_principal, internal_verifier
from algotrade.config import ServiceSettings
from algotrade.errors import Unauthorized
from algotrade.service import create_service_app
from algotrade_devstack.infra import free_port
from algotrade_testkit.services import key_settings
from api_gateway.config import Settings
from api_gateway.main import create_app


@dataclass
class Echo:
    """The running echo upstream and what it observed."""

    url: str
    app: FastAPI
    first_chunk: asyncio.Event = field(default_factory=asyncio.Event)
    release_response: asyncio.Event = field(default_factory=asyncio.Event)


def _principal_json(principal: Principal) -> dict[str, Any]:
    return {
        "user_id": principal.user_id,
        "roles": sorted(principal.roles),
        "scopes": sorted(principal.scopes),
        "api_key_id": principal.api_key_id,
    }


def _echo_router(echo_state: dict[str, Any]) -> APIRouter:
    router = APIRouter()

    @router.get("/api/market/slow")
    async def slow(request: Request, seconds: float = 1.0) -> dict[str, str]:
        await current_principal(request)
        await asyncio.sleep(seconds)
        return {"slept": str(seconds)}

    @router.api_route("/api/market/big", methods=["GET", "HEAD"], include_in_schema=False)
    async def big(request: Request, size: int) -> Response:
        await current_principal(request)
        return Response(b"x" * size, media_type="application/octet-stream")

    @router.get("/api/backtests/status/{code}")
    async def status(code: int, request: Request) -> Any:
        await current_principal(request)
        return JSONResponse({"status": code}, status_code=code)

    @router.get("/api/strategies/headers-out")
    async def headers_out(request: Request) -> Any:
        await current_principal(request)
        return JSONResponse(
            {"ok": True},
            headers={
                "Set-Cookie": "session=upstream; Path=/",
                "Keep-Alive": "timeout=5",
                "X-Upstream": "yes",
                "Connection": "X-Private-Hop",
                "X-Private-Hop": "secret",
            },
        )

    @router.get("/api/market/stream")
    async def stream(request: Request) -> StreamingResponse:
        await current_principal(request)
        echo: Echo = echo_state["echo"]

        async def body() -> AsyncIterator[bytes]:
            yield b"first-chunk;"
            # The rest only after the client has seen the first chunk: a gateway that
            # buffered the response would deadlock here.
            await asyncio.wait_for(echo.release_response.wait(), timeout=5)
            yield b"second-chunk"

        return StreamingResponse(body(), media_type="text/plain")

    @router.api_route(
        "/api/{path:path}",
        methods=["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def everything(path: str, request: Request) -> dict[str, Any]:
        principal = await current_principal(request)
        echo: Echo = echo_state["echo"]
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.stream():
            if chunk and size == 0:
                echo.first_chunk.set()
            size += len(chunk)
            digest.update(chunk)
        return {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "headers": [[k, v] for k, v in request.headers.items()],
            "principal": _principal_json(principal),
            "body_bytes": size,
            "body_sha256": digest.hexdigest(),
        }

    @router.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        verifier = websocket.app.state.verifier
        try:
            header = websocket.headers.get("authorization", "")
            token = header.partition(" ")[2]
            principal = verifier.verify(token)
        except Unauthorized:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        await websocket.send_json(
            {
                "principal": _principal_json(principal),
                "query": websocket.url.query,
                "subprotocols": websocket.scope.get("subprotocols") or [],
            }
        )
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text == "close-me":
                await websocket.close(code=4000, reason="asked to")
                return
            if text and text.startswith("flood:"):  # flood:<count>:<bytes each>
                _, count, size = text.split(":")
                for n in range(int(count)):
                    await websocket.send_text(f"{n}:".ljust(int(size), "x"))
                continue
            await websocket.send_text(f"echo:{text}")

    return router


@contextlib.asynccontextmanager
async def serve(app: Any, port: int, **options: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1:``port`` in this event loop (``options``: more
    of uvicorn's, the protocol for one)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
async def echo() -> AsyncIterator[Echo]:
    state: dict[str, Any] = {}
    # A service as deployed: public keys only, no JWT_SECRET, nothing to sign with.
    settings = ServiceSettings(
        environment="test", **key_settings(None), max_body_bytes=64 * 1024 * 1024
    )
    app = create_service_app(name="echo", settings=settings, uses=(), routers=[_echo_router(state)])
    async with serve(app, free_port()) as url:
        state["echo"] = Echo(url=url, app=app)
        yield state["echo"]


@pytest.fixture
def dead_url() -> str:
    """A port nothing listens on: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def settings_factory(
    postgres_admin_url: str, redis_url: str, redis_prefix: str, echo: Echo
) -> Callable[..., Settings]:
    """Gateway settings: every upstream is the echo service, argon2 cheap enough for tests."""
    echo.first_chunk.clear()
    echo.release_response.clear()

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": postgres_admin_url,
            "redis_url": redis_url,
            "redis_prefix": redis_prefix,
            **key_settings("gateway"),
            "password_hash_time_cost": 1,
            "password_hash_memory_kib": 1024,
            "password_hash_parallelism": 1,
            "upstream_connect_retries": 1,
            **{
                f"{name.replace('-', '_')}_url": echo.url
                for name in (
                    "strategy-service",
                    "market-data-service",
                    "backtesting-service",
                    "forward-test-service",
                    "notification-service",
                    "analytics-service",
                )
            },
        }
        values.update(overrides)
        return Settings(**values)

    return build


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield app, client


@pytest.fixture
def start_gateway(
    settings_factory: Callable[..., Settings],
) -> Callable[..., contextlib.AbstractAsyncContextManager[tuple[FastAPI, httpx.AsyncClient]]]:
    """``async with start_gateway(**overrides) as (app, client)``: a gateway whose database is
    never touched (routing, tokens, limits: credentials are crafted, not looked up)."""

    def start(**overrides: Any) -> contextlib.AbstractAsyncContextManager[Any]:
        return running(settings_factory(**overrides))

    return start


@pytest.fixture
async def client(start_gateway: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with start_gateway() as (_, http):
        yield http


@pytest.fixture
async def identity_client(
    database_url: str, settings_factory: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway on a fresh, migrated database (users, refresh tokens, API keys)."""
    await migrations.upgrade(database_url, "api_gateway", "gateway")
    async with running(settings_factory(database_url=database_url)) as (_, http):
        yield http


def issue(
    settings: Settings | None = None,
    *,
    user_id: str = "user-1",
    scopes: frozenset[str] = frozenset({"*"}),
    roles: frozenset[str] = frozenset({"user"}),
    audience: str | None = None,
    token_type: str = "access",
    ttl_seconds: int = 900,
    now: float | None = None,
    api_key_id: str | None = None,
) -> str:
    """A token signed with this run's keys, as the gateway would sign it: access tokens with
    its HMAC secret, internal tokens with its Ed25519 key."""
    base = settings or Settings(environment="test", **key_settings("gateway"))
    keys = (
        KeySet.for_internal_tokens(base, signing=True)
        if token_type == "internal"
        else KeySet.for_access_tokens(base)
    )
    return TokenIssuer(keys, issuer=base.jwt_issuer).issue(
        Principal(user_id=user_id, roles=roles, scopes=scopes, api_key_id=api_key_id),
        audience=audience or base.jwt_audience,
        token_type=token_type,  # type: ignore[arg-type]
        ttl_seconds=ttl_seconds,
        now=now,
    )


@pytest.fixture
def serve_gateway(
    settings_factory: Callable[..., Settings],
) -> Callable[..., contextlib.AbstractAsyncContextManager[str]]:
    """``async with serve_gateway(**overrides) as url``: the gateway behind a real uvicorn
    (WebSockets, and streaming that the in-process ASGI transport would buffer)."""

    def start(**overrides: Any) -> contextlib.AbstractAsyncContextManager[str]:
        return serve(create_app(settings_factory(**overrides)), free_port())

    return start


@pytest.fixture
def serve_app() -> Callable[..., contextlib.AbstractAsyncContextManager[str]]:
    """``async with serve_app(app, **uvicorn_options) as url``: any app behind uvicorn."""
    return lambda app, **options: serve(app, free_port(), **options)


@pytest.fixture
def issue_token() -> Callable[..., str]:
    return issue


@pytest.fixture
def verify_internal() -> Callable[[str], Principal]:
    """Verify a token the way every service does (the shared internal verifier)."""
    verifier = internal_verifier(ServiceSettings(environment="test", **key_settings(None)))
    return verifier.verify
