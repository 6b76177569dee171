"""Accounts and sessions: register, login, refresh rotation and reuse, logout, password change,
login throttling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from algotrade import migrations

pytestmark = pytest.mark.timeout(60)

PASSWORD = "correct horse battery"
NEW_PASSWORD = "another long passphrase"


async def _register(client: httpx.AsyncClient, email: str = "alice@example.com") -> httpx.Response:
    return await client.post("/api/auth/register", json={"email": email, "password": PASSWORD})


async def _login(
    client: httpx.AsyncClient, email: str = "alice@example.com", password: str = PASSWORD
) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


def _bearer(pair: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {pair['access_token']}"}


async def test_register_normalises_email_and_refuses_duplicates(
    identity_client: httpx.AsyncClient,
) -> None:
    created = await _register(identity_client, "  Alice@Example.COM ")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["email"] == "alice@example.com"
    assert body["roles"] == ["user"]
    assert "password" not in created.text and "argon2" not in created.text

    duplicate = await _register(identity_client, "ALICE@example.com")
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"


async def test_register_lists_every_broken_password_rule(
    identity_client: httpx.AsyncClient,
) -> None:
    weak = await identity_client.post(
        "/api/auth/register", json={"email": "bob@example.com", "password": "bob"}
    )
    assert weak.status_code == 422
    codes = {e["code"] for e in weak.json()["errors"]}
    assert {"password_too_short", "password_too_repetitive"} <= codes

    for password, code in (
        ("bobbyjones@example.com", "password_contains_email"),
        ("xx-bobbyjones-xx", "password_contains_email"),
        ("Password123", "password_too_common"),
    ):
        response = await identity_client.post(
            "/api/auth/register", json={"email": "bobbyjones@example.com", "password": password}
        )
        assert response.status_code == 422, password
        assert code in {e["code"] for e in response.json()["errors"]}, password

    bad_email = await identity_client.post(
        "/api/auth/register", json={"email": "not-an-email", "password": PASSWORD}
    )
    assert bad_email.status_code == 422

    not_json = await identity_client.post(
        "/api/auth/register",
        content=b'{"email": "bob@example.com", "password": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400  # strict JSON, as on every platform route


async def test_login_issues_tokens_and_me_shows_the_user(
    identity_client: httpx.AsyncClient,
) -> None:
    await _register(identity_client)
    login = await _login(identity_client, " ALICE@example.com")
    assert login.status_code == 200, login.text
    pair = login.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == 900
    assert pair["refresh_token"].startswith("atr_")

    me = await identity_client.get("/api/auth/me", headers=_bearer(pair))
    assert me.status_code == 200
    assert me.json()["email"] == "alice@example.com"
    assert me.json()["scopes"] == ["*"]
    assert me.json()["api_key_id"] is None
    assert me.headers["x-ratelimit-limit"] == "1200"


async def test_login_failure_does_not_reveal_whether_the_email_exists(
    identity_client: httpx.AsyncClient,
) -> None:
    await _register(identity_client)
    wrong_password = await _login(identity_client, password="wrong password 123")
    unknown_email = await _login(identity_client, email="nobody@example.com")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json()["detail"] == unknown_email.json()["detail"]


async def test_refresh_rotates_and_reuse_revokes_the_family(
    identity_client: httpx.AsyncClient,
) -> None:
    await _register(identity_client)
    first = (await _login(identity_client)).json()

    rotated = await identity_client.post(
        "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await identity_client.get("/api/auth/me", headers=_bearer(second))).status_code == 200

    # Someone replays the spent token: refused, and the legitimate successor dies with it.
    replay = await identity_client.post(
        "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401
    assert "reused" in replay.json()["detail"]
    successor = await identity_client.post(
        "/api/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert successor.status_code == 401

    # Other logins (other families) are untouched.
    other = (await _login(identity_client)).json()
    again = await identity_client.post(
        "/api/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert again.status_code == 200


async def test_a_refresh_token_is_not_an_access_token(identity_client: httpx.AsyncClient) -> None:
    await _register(identity_client)
    pair = (await _login(identity_client)).json()
    response = await identity_client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {pair['refresh_token']}"}
    )
    assert response.status_code == 401
    assert "refresh token" in response.json()["detail"]


async def test_logout_revokes_the_session(identity_client: httpx.AsyncClient) -> None:
    await _register(identity_client)
    pair = (await _login(identity_client)).json()
    rotated = (
        await identity_client.post(
            "/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
    ).json()
    out = await identity_client.post(
        "/api/auth/logout", json={"refresh_token": rotated["refresh_token"]}
    )
    assert out.status_code == 204
    after = await identity_client.post(
        "/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]}
    )
    assert after.status_code == 401
    # Logging out twice, or with an unknown token, is harmless.
    again = await identity_client.post(
        "/api/auth/logout", json={"refresh_token": rotated["refresh_token"]}
    )
    assert again.status_code == 204


async def test_password_change_revokes_other_sessions(identity_client: httpx.AsyncClient) -> None:
    await _register(identity_client)
    laptop = (await _login(identity_client)).json()
    phone = (await _login(identity_client)).json()

    wrong = await identity_client.post(
        "/api/auth/password",
        json={"current_password": "not the password", "new_password": NEW_PASSWORD},
        headers=_bearer(laptop),
    )
    assert wrong.status_code == 422

    changed = await identity_client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=_bearer(laptop),
    )
    assert changed.status_code == 200, changed.text
    fresh = changed.json()

    for stale in (phone, laptop):
        refused = await identity_client.post(
            "/api/auth/refresh", json={"refresh_token": stale["refresh_token"]}
        )
        assert refused.status_code == 401
    kept = await identity_client.post(
        "/api/auth/refresh", json={"refresh_token": fresh["refresh_token"]}
    )
    assert kept.status_code == 200
    assert (await _login(identity_client)).status_code == 401
    assert (await _login(identity_client, password=NEW_PASSWORD)).status_code == 200


async def test_password_change_needs_a_session_not_an_api_key(
    identity_client: httpx.AsyncClient,
) -> None:
    await _register(identity_client)
    pair = (await _login(identity_client)).json()
    key = (
        await identity_client.post(
            "/api/api-keys", json={"name": "bot", "scopes": ["market:read"]}, headers=_bearer(pair)
        )
    ).json()["key"]
    response = await identity_client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"X-API-Key": key},
    )
    assert response.status_code == 403


async def test_failed_logins_are_throttled_per_account(
    database_url: str, start_gateway: Callable[..., Any]
) -> None:
    await migrations.upgrade(database_url, "api_gateway", "gateway")
    async with start_gateway(database_url=database_url, login_max_failures_per_account=3) as (
        _,
        client,
    ):
        await _register(client)
        for _ in range(3):
            assert (await _login(client, password="wrong password 123")).status_code == 401
        # Past the limit even the right password waits: guessing gains nothing.
        blocked = await _login(client)
        assert blocked.status_code == 429
        assert blocked.json()["code"] == "rate_limited"
        assert 800 <= int(blocked.headers["retry-after"]) <= 900
        # Another account from the same address is not locked by this one.
        await _register(client, "carol@example.com")
        assert (await _login(client, "carol@example.com")).status_code == 200


async def test_failed_logins_are_throttled_per_address(
    database_url: str, start_gateway: Callable[..., Any]
) -> None:
    await migrations.upgrade(database_url, "api_gateway", "gateway")
    async with start_gateway(
        database_url=database_url,
        login_max_failures_per_address=3,
        login_throttle_window_seconds=60,
    ) as (_, client):
        for n in range(3):
            response = await _login(client, f"user{n}@example.com", "wrong password 123")
            assert response.status_code == 401
        blocked = await _login(client, "user9@example.com", "wrong password 123")
        assert blocked.status_code == 429
        assert 1 <= int(blocked.headers["retry-after"]) <= 60


async def test_login_requests_are_rate_limited_per_address(
    database_url: str, start_gateway: Callable[..., Any]
) -> None:
    await migrations.upgrade(database_url, "api_gateway", "gateway")
    async with start_gateway(
        database_url=database_url,
        rate_limits={"auth": {"limit": 2, "period_seconds": 60, "fail_open": False}},
    ) as (_, client):
        await _register(client)  # the auth class counts registrations too
        second = await _login(client)
        assert second.status_code == 200
        assert second.headers["x-ratelimit-remaining"] == "0"
        third = await _login(client)
        assert third.status_code == 429
        assert third.headers["x-ratelimit-limit"] == "2"
        assert int(third.headers["retry-after"]) >= 1
