"""Drive a service app in-process in a test: internal tokens and an HTTP client over ASGI."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.types import ASGIApp

from algotrade.auth import InternalTokens
from algotrade.config import ServiceSettings
from algotrade.keys import InstallationKeys, SignerRole

ALL_SCOPES = frozenset({"*"})


@functools.cache
def session_keys() -> InstallationKeys:
    """Keys generated once per test process: no key in the repository signs anything."""
    return InstallationKeys.generate()


def key_settings(role: SignerRole | None = "gateway") -> dict[str, Any]:
    """Settings values with this test process's keys: every public key, and ``role``'s
    private key (the gateway's by default, so that a test can mint any internal token)."""
    return session_keys().settings_values(role)


def internal_token(
    settings: ServiceSettings,
    user_id: str = "u1",
    scopes: frozenset[str] = ALL_SCOPES,
    ttl_seconds: int = 300,
) -> str:
    """An internal token for ``user_id``, as the gateway mints one for the services behind it."""
    return InternalTokens(settings, ttl_seconds=ttl_seconds).for_user(user_id, *scopes)


@asynccontextmanager
async def serve_in_process(
    app: ASGIApp, *, base_url: str = "http://t", timeout_seconds: float = 30.0
) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and yield a client that calls it over ASGI (no sockets)."""
    from asgi_lifespan import LifespanManager  # a dev dependency, as the tests are

    async with (
        LifespanManager(app, startup_timeout=timeout_seconds, shutdown_timeout=timeout_seconds),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base_url, timeout=timeout_seconds
        ) as client,
    ):
        yield client


@asynccontextmanager
async def serve_on_port(app: ASGIApp, **options: Any) -> AsyncIterator[str]:
    """Run ``app`` behind a real uvicorn server on a free loopback port (real sockets, for
    WebSockets and for services calling each other); yields its base URL. ``options`` go to
    `uvicorn.Config`."""
    import asyncio

    import uvicorn

    from algotrade_devstack.infra import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options
        )
    )
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


def settings_env(settings: ServiceSettings) -> dict[str, str]:
    """The environment variables that rebuild ``settings`` in a child process (secrets
    included: the child is the test's own process)."""
    import orjson
    from pydantic import SecretStr

    def plain(value: object) -> object:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    env: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = plain(getattr(settings, name))
        if value is None:
            continue
        env[name.upper()] = (
            orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)
        )
    return env
