"""The proxy lane's plain requests (no body, no Origin) answer exactly as through the layers.

Each request is sent twice to the same running gateway: once as any client sends it (a plain
request takes the lane's single layer) and once through `ProxyLane.layered` (CORS, the
credential header limit and `PlatformMiddleware`, as every other request). Status, headers (in
order) and body must be the same; only the rate limit's running figures may differ.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api_gateway.proxy_lane import ProxyLane

pytestmark = pytest.mark.timeout(60)

# Running figures of the limit: they move from one request to the next.
_MOVING = {"x-ratelimit-remaining", "x-ratelimit-reset"}


@contextlib.asynccontextmanager
async def both_ways(
    app: FastAPI,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, list[str]]]:
    """A client of the gateway, a client of its lane's layers, and the paths that went through
    the layers (either way)."""
    lane = app.proxy_lane  # type: ignore[attr-defined]
    assert isinstance(lane, ProxyLane)
    layered_paths: list[str] = []
    through_layers = lane._layered

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        layered_paths.append(scope["path"])
        await through_layers(scope, receive, send)

    lane._layered = counted
    direct = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    layered = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=lane.layered), base_url="http://t"
    )
    try:
        yield direct, layered, layered_paths
    finally:
        lane._layered = through_layers
        await direct.aclose()
        await layered.aclose()


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [
        (name, "<moving>" if name in _MOVING else value)
        for name, value in response.headers.multi_items()
    ]
    return response.status_code, headers, response.content


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/market/bars?symbol=EURUSD", {"auth": "alice"}),
        ("HEAD", "/api/market/bars", {"auth": "alice"}),
        ("DELETE", "/api/strategies/s-1", {"auth": "alice"}),
        ("GET", "/api/backtests/status/404", {"auth": "alice"}),
        ("GET", "/api/backtests/status/409", {"auth": "alice"}),
        ("GET", "/api/strategies/headers-out", {"auth": "alice", "x-custom": "kept"}),
        ("GET", "/api/market/x", {}),  # no credential: 401
        ("GET", "/api/market/x", {"auth": "read-only"}),  # GET allowed with market:read
        ("DELETE", "/api/market/x", {"auth": "read-only"}),  # lacks the scope: 403
        ("GET", "/api/market/a/../b", {"auth": "alice"}),  # dot segments: 400
        ("GET", "/api/market/x", {"authorization": "Basic abc"}),  # wrong scheme: 401
        ("GET", "/api/market/x", {"auth": "alice", "x-correlation-id": "c-1"}),
    ],
)
async def test_plain_requests_answer_as_through_the_layers(
    start_gateway: Callable[..., Any],
    issue_token: Callable[..., str],
    method: str,
    path: str,
    headers: dict[str, str],
) -> None:
    sent = {"x-request-id": "req-lane-1", **headers}
    who = sent.pop("auth", None)
    if who is not None:
        scopes = frozenset({"market:read"}) if who == "read-only" else frozenset({"*"})
        sent["authorization"] = f"Bearer {issue_token(user_id=who, scopes=scopes)}"
    async with start_gateway() as (app, _), both_ways(app) as (direct, layered, via_layers):
        request = httpx.Request(method, f"http://t{path}", headers=sent)
        plain = await direct.send(request)
        assert via_layers == []  # the lane's own layer answered
        assert _comparable(plain) == _comparable(await layered.send(request))
        assert plain.headers["x-request-id"] == "req-lane-1"
        assert plain.headers["vary"].endswith("Origin")


async def test_a_generated_request_id_is_sent_on_and_returned_once(
    start_gateway: Callable[..., Any], issue_token: Callable[..., str]
) -> None:
    auth = {"authorization": f"Bearer {issue_token(user_id='alice')}"}
    async with start_gateway() as (app, _), both_ways(app) as (direct, layered, via_layers):
        for given in ({}, {"x-request-id": "not a safe id!"}):
            answers = [await direct.get("/api/market/x", headers={**auth, **given})]
            assert via_layers == []
            answers.append(await layered.get("/api/market/x", headers={**auth, **given}))
            via_layers.clear()
            ids = [answer.headers.get_list("x-request-id") for answer in answers]
            assert all(len(one) == 1 and len(one[0]) == 32 for one in ids)  # a new id, once
            assert ids[0] != ids[1]
            for answer, (request_id,) in zip(answers, ids, strict=True):
                seen = dict(answer.json()["headers"])
                assert seen["x-request-id"] == request_id  # the service saw the same id
                assert seen["x-correlation-id"] == request_id


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"origin": "https://app.example"}, 200),  # CORS
        ({"content-length": "2", "content-type": "application/json"}, 200),  # a body: its limit
        ({"x-api-key": "k" * 9000}, 431),  # over the credential limit
    ],
)
async def test_requests_that_are_not_plain_take_the_layers(
    start_gateway: Callable[..., Any],
    issue_token: Callable[..., str],
    headers: dict[str, str],
    status: int,
) -> None:
    auth = {"authorization": f"Bearer {issue_token(user_id='alice')}"}
    body = b"{}" if "content-length" in headers else None
    async with start_gateway() as (app, _), both_ways(app) as (direct, _, via_layers):
        response = await direct.request(
            "POST" if body else "GET", "/api/market/x", headers={**auth, **headers}, content=body
        )
        assert via_layers == ["/api/market/x"]
        assert response.status_code == status


async def test_an_unexpected_error_is_a_problem_either_way(
    start_gateway: Callable[..., Any],
    issue_token: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth = {"authorization": f"Bearer {issue_token(user_id='alice')}", "x-request-id": "r-9"}
    async with start_gateway() as (app, _), both_ways(app) as (direct, layered, via_layers):

        async def broken(*_: Any) -> None:
            raise RuntimeError("a bug, not a dependency")

        monkeypatch.setattr(app.state.services.proxy, "handle", broken)
        answers = [await direct.get("/api/market/x", headers=auth)]
        assert via_layers == []
        answers.append(await layered.get("/api/market/x", headers=auth))
        assert answers[0].status_code == 500
        assert answers[0].headers["content-type"] == "application/problem+json"
        assert "a bug" not in answers[0].text
        assert _comparable(answers[0]) == _comparable(answers[1])
