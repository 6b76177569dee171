"""Every non-2xx answer becomes the ApiError subclass of its status, carrying the problem's
fields; no answer is a TransportError; no credential ever shows in a message or a repr."""

from __future__ import annotations

import httpx
import pytest
from client_fakes import SECRET_KEY, SECRET_REFRESH, SECRET_TOKEN, FakeGateway, problem

from algotrade_client import (
    ApiError,
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    Unprocessable,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (422, Unprocessable),
        (429, RateLimited),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (418, ApiError),
    ],
)
def test_each_status_raises_its_error_class(status: int, kind: type[ApiError]) -> None:
    gateway = FakeGateway()
    gateway.on("GET", "/api/strategies/s1", lambda request: problem(status, "it went wrong"))
    with (
        Client(token=SECRET_TOKEN, transport=gateway.transport()) as client,
        pytest.raises(ApiError) as caught,
    ):
        client.strategies.get("s1")
    assert type(caught.value) is kind
    assert caught.value.status == status and caught.value.detail == "it went wrong"


def test_a_problem_keeps_its_fields_and_the_whole_body() -> None:
    gateway = FakeGateway()
    errors = [{"loc": ["body", "config", "initial_capital"], "code": "float_type", "message": "m"}]
    gateway.on(
        "POST",
        "/api/backtests",
        lambda request: problem(
            422,
            "1 field(s) failed validation",
            code="validation_failed",
            errors=errors,
            request_id="req-1",
        ),
    )
    with (
        Client(token=SECRET_TOKEN, transport=gateway.transport()) as client,
        pytest.raises(Unprocessable) as caught,
    ):
        client.backtests.submit({"symbol": "SPY"})
    error = caught.value
    assert (error.title, error.code, error.request_id) == (
        "Validation failed",
        "validation_failed",
        "req-1",
    )
    assert error.errors == errors and error.problem["type"].endswith("/x")
    assert str(error) == (
        "POST /api/backtests: 422 Validation failed: 1 field(s) failed validation (request req-1)"
    )


def test_a_body_that_is_not_a_problem_still_makes_an_error() -> None:
    gateway = FakeGateway()
    gateway.on(
        "GET",
        "/api/sessions/s1",
        lambda request: httpx.Response(
            502, text="<html>bad gateway</html>", headers={"x-request-id": "rid-9"}
        ),
    )
    with (
        Client(token=SECRET_TOKEN, transport=gateway.transport()) as client,
        pytest.raises(ServerError) as caught,
    ):
        client.sessions.get("s1")
    assert caught.value.detail == "<html>bad gateway</html>"
    assert caught.value.title == "Bad Gateway" and caught.value.request_id == "rid-9"


def test_rate_limited_carries_retry_after() -> None:
    gateway = FakeGateway()
    gateway.on(
        "GET",
        "/api/auth/me",
        lambda request: httpx.Response(
            429,
            json={"title": "Too many requests", "status": 429, "detail": "slow down"},
            headers={"Retry-After": "7"},
        ),
    )
    with (
        Client(api_key=SECRET_KEY, transport=gateway.transport()) as client,
        pytest.raises(RateLimited) as caught,
    ):
        client.auth.me()
    assert caught.value.retry_after == 7.0


def test_no_answer_is_a_transport_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        Client(token=SECRET_TOKEN, transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(TransportError, match="GET /api/auth/me: ConnectError"),
    ):
        client.auth.me()


async def test_the_async_client_raises_the_same_errors() -> None:
    gateway = FakeGateway()
    gateway.on("GET", "/api/backtests/j1", lambda request: problem(404, "no backtest j1"))
    async with AsyncClient(token=SECRET_TOKEN, transport=gateway.transport()) as client:
        with pytest.raises(NotFound, match="no backtest j1"):
            await client.backtests.get("j1")

    def time_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with AsyncClient(transport=httpx.MockTransport(time_out)) as client:
        with pytest.raises(TransportError, match="ReadTimeout"):
            await client.backtests.get("j1")


def test_secrets_never_show_in_messages_or_reprs() -> None:
    gateway = FakeGateway()
    gateway.on("GET", "/api/auth/me", lambda request: problem(401, "token expired"))
    gateway.on("POST", "/api/auth/refresh", lambda request: problem(401, "refresh token reused"))
    client = Client(
        token=SECRET_TOKEN,
        refresh_token=SECRET_REFRESH,
        api_key=SECRET_KEY,
        transport=gateway.transport(),
    )
    with client, pytest.raises(Unauthorized) as caught:
        client.auth.me()
    shown = [repr(client), str(client), repr(caught.value), str(caught.value)]
    shown += [repr(client.auth), repr(client._credentials)]
    for text in shown:
        for secret in (SECRET_TOKEN, SECRET_REFRESH, SECRET_KEY):
            assert secret not in text, text
    assert "token+refresh_token+api_key" in repr(client)
