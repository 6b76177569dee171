"""Credentials: login keeps the tokens, a 401 refreshes the token once and retries, concurrent
401s spend the refresh token once, API keys travel in X-API-Key, and from_env reads the
environment."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from client_fakes import SECRET_KEY, FakeGateway, problem

from algotrade_client import AsyncClient, Client, Unauthorized

PAIR_1 = {"access_token": "A1", "refresh_token": "R1", "token_type": "bearer"}
PAIR_2 = {"access_token": "A2", "refresh_token": "R2", "token_type": "bearer"}


def gateway_with_expiry(valid_token: str = "A2") -> FakeGateway:
    """/me accepts only ``valid_token``; /refresh swaps R1 for the second pair, once."""
    gateway = FakeGateway()
    gateway.on("POST", "/api/auth/login", lambda request: httpx.Response(200, json=PAIR_1))

    def refresh(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content) != {"refresh_token": "R1"}:
            return problem(401, "refresh token reused: the session is revoked")
        return httpx.Response(200, json=PAIR_2)

    def me(request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {valid_token}":
            return problem(401, "expired")
        return httpx.Response(200, json={"id": "u1", "email": "a@example.com"})

    gateway.on("POST", "/api/auth/refresh", refresh)
    gateway.on("GET", "/api/auth/me", me)
    return gateway


def test_login_keeps_the_tokens_and_a_401_refreshes_once_and_retries() -> None:
    gateway = gateway_with_expiry()
    with Client(transport=gateway.transport()) as client:
        assert client.auth.login("a@example.com", "pw") == PAIR_1
        assert (client.token, client.refresh_token) == ("A1", "R1")
        assert client.auth.me()["id"] == "u1"
        assert (client.token, client.refresh_token) == ("A2", "R2")
        client.auth.me()
    assert gateway.paths() == [
        "POST /api/auth/login",
        "GET /api/auth/me",
        "POST /api/auth/refresh",
        "GET /api/auth/me",
        "GET /api/auth/me",
    ]
    login, first, renew = gateway.requests[:3]
    assert "authorization" not in login.headers and "authorization" not in renew.headers
    assert first.headers["authorization"] == "Bearer A1"


def test_a_401_after_the_refresh_is_raised_without_a_second_refresh() -> None:
    gateway = gateway_with_expiry(valid_token="nobody")
    with Client(transport=gateway.transport()) as client:
        client.auth.login("a@example.com", "pw")
        with pytest.raises(Unauthorized, match="expired"):
            client.auth.me()
    assert gateway.paths().count("POST /api/auth/refresh") == 1


def test_without_a_refresh_token_a_401_is_raised_at_once() -> None:
    gateway = gateway_with_expiry()
    with Client(token="A1", transport=gateway.transport()) as client, pytest.raises(Unauthorized):
        client.auth.me()
    assert gateway.paths() == ["GET /api/auth/me"]


def test_an_api_key_travels_in_x_api_key() -> None:
    gateway = FakeGateway()
    gateway.on("GET", "/api/agents", {"data": [{"id": "a1"}], "count": 1})
    with Client(api_key=SECRET_KEY, transport=gateway.transport()) as client:
        assert client.agents.list() == [{"id": "a1"}]
    assert gateway.requests[0].headers["x-api-key"] == SECRET_KEY
    assert "authorization" not in gateway.requests[0].headers


async def test_concurrent_401s_spend_the_refresh_token_once() -> None:
    gateway = gateway_with_expiry()
    refreshes = 0
    plain_refresh = gateway.routes[("POST", "/api/auth/refresh")]

    async def slow_refresh(request: httpx.Request) -> httpx.Response:
        nonlocal refreshes
        refreshes += 1
        await asyncio.sleep(0.05)  # the other calls get their 401 meanwhile
        return plain_refresh(request)

    gateway.routes[("POST", "/api/auth/refresh")] = slow_refresh  # type: ignore[assignment]
    async with AsyncClient(token="A1", refresh_token="R1", transport=gateway.transport()) as client:
        answers = await asyncio.gather(*(client.auth.me() for _ in range(5)))
    assert [a["id"] for a in answers] == ["u1"] * 5
    assert refreshes == 1 and client.token == "A2"


def test_refresh_and_logout_by_hand() -> None:
    gateway = gateway_with_expiry()
    gateway.on("POST", "/api/auth/logout", lambda request: httpx.Response(204))
    with Client(refresh_token="R1", transport=gateway.transport()) as client:
        assert client.auth.refresh() == PAIR_2 and client.token == "A2"
        client.auth.logout()
        assert (client.token, client.refresh_token) == (None, None)
    assert json.loads(gateway.requests[-1].content) == {"refresh_token": "R2"}
    with Client(transport=gateway.transport()) as client, pytest.raises(ValueError):
        client.auth.refresh()


def test_api_keys_are_created_listed_and_revoked() -> None:
    gateway = FakeGateway()
    gateway.on(
        "POST",
        "/api/api-keys",
        lambda request: httpx.Response(201, json={"id": "k1", "key": SECRET_KEY}),
    )
    gateway.on("GET", "/api/api-keys", {"data": [{"id": "k1"}], "count": 1})
    gateway.on("DELETE", "/api/api-keys/k1", lambda request: httpx.Response(204))
    with Client(token="A1", transport=gateway.transport()) as client:
        created = client.auth.create_api_key("ci", ["backtests:read"], expires_in_days=30)
        assert created["key"] == SECRET_KEY
        assert client.auth.api_keys() == [{"id": "k1"}]
        assert client.auth.revoke_api_key("k1") is None
    assert json.loads(gateway.requests[0].content) == {
        "name": "ci",
        "scopes": ["backtests:read"],
        "expires_in_days": 30,
    }


def test_from_env_reads_url_token_and_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALGOTRADE_URL", "http://gateway.example:9000")
    monkeypatch.setenv("ALGOTRADE_TOKEN", "A9")
    monkeypatch.setenv("ALGOTRADE_API_KEY", SECRET_KEY)
    with Client.from_env() as client:
        assert client.base_url == "http://gateway.example:9000" and client.token == "A9"
        assert client._credentials.api_key == SECRET_KEY
    monkeypatch.delenv("ALGOTRADE_URL")
    monkeypatch.delenv("ALGOTRADE_TOKEN")
    with Client.from_env() as client:
        assert client.base_url == "http://127.0.0.1:8000" and client.token is None
