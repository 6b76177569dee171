"""A dependency that cannot be reached is a 503 problem, not a 500, whatever client raised it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from algotrade.config import ServiceSettings
from algotrade.outages import unreachable
from algotrade.problems import PROBLEM_JSON
from algotrade.service import create_service_app
from algotrade.strict_json import api_router
from algotrade_devstack.infra import free_port


async def _query_a_closed_port() -> None:
    engine = create_async_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


def _starting_up() -> sqlalchemy.exc.DBAPIError:
    """What SQLAlchemy raises while PostgreSQL restarts (seen in the chaos suite): a DBAPIError,
    neither Operational nor Interface, raised from asyncpg's CannotConnectNowError."""
    cause = asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
    try:
        raise sqlalchemy.exc.DBAPIError("connect", None, cause) from cause
    except sqlalchemy.exc.DBAPIError as exc:
        return exc


async def test_connection_refused_and_database_starting_up_are_outages() -> None:
    with pytest.raises(Exception) as refused:
        await _query_a_closed_port()
    # asyncpg lets a refused connection through as the OSError it is: which store is unknown.
    assert unreachable(refused.value) == "a dependency"
    assert unreachable(_starting_up()) == "the database"
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError) as upstream:
            await http.get(f"http://127.0.0.1:{free_port()}/")
    assert unreachable(upstream.value) == "an upstream service"


def test_other_errors_are_not_outages() -> None:
    assert unreachable(RuntimeError("a bug")) is None
    assert unreachable(sqlalchemy.exc.IntegrityError("insert", None, Exception("dup"))) is None
    try:
        try:
            raise ConnectionRefusedError
        except ConnectionRefusedError:
            raise KeyError("raised while handling one, not because of it") from None
    except KeyError as exc:
        assert unreachable(exc) is None


def routes() -> APIRouter:
    router = api_router()

    @router.get("/refused")
    async def refused() -> None:
        await _query_a_closed_port()

    @router.get("/starting")
    async def starting() -> None:
        raise _starting_up()

    @router.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    return router


async def test_an_unreachable_dependency_is_a_503_problem_and_a_bug_still_a_500(
    make_settings: Callable[..., ServiceSettings],
) -> None:
    app: Any = create_service_app(
        name="test-service",
        settings=make_settings(ServiceSettings),
        uses=(),
        routers=[routes()],  # type: ignore[arg-type]
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        for path, detail in [
            ("/refused", "a dependency is unavailable (ConnectionRefusedError)"),
            ("/starting", "the database is unavailable (DBAPIError)"),
        ]:
            response = await client.get(path)
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == PROBLEM_JSON
            assert response.json()["code"] == "dependency_unavailable"
            assert response.json()["detail"] == detail
        bug = await client.get("/bug")
        assert bug.status_code == 500
        assert bug.json()["code"] == "internal_error"
