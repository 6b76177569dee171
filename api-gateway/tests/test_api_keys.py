"""API keys: shown once, stored hashed, scoped, revocable; accepted as bearer or X-API-Key."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

PASSWORD = "correct horse battery"


@pytest.fixture
async def session_headers(identity_client: httpx.AsyncClient) -> dict[str, str]:
    await identity_client.post(
        "/api/auth/register", json={"email": "agent-owner@example.com", "password": PASSWORD}
    )
    login = await identity_client.post(
        "/api/auth/login", json={"email": "agent-owner@example.com", "password": PASSWORD}
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _create(
    client: httpx.AsyncClient, headers: dict[str, str], scopes: list[str], name: str = "agent"
) -> dict[str, str]:
    response = await client.post(
        "/api/api-keys", json={"name": name, "scopes": scopes}, headers=headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, str] = response.json()
    return created


async def test_key_is_shown_once_and_listed_without_its_secret(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    created = await _create(
        identity_client, session_headers, ["strategies:read", "market:write", "market:write"]
    )
    assert created["key"].startswith(f"atk_{created['id']}_")
    assert created["scopes"] == ["market:write", "strategies:read"]
    listed = await identity_client.get("/api/api-keys", headers=session_headers)
    assert listed.status_code == 200
    body = listed.json()
    assert body["count"] == 1
    assert body["data"][0]["prefix"] == f"atk_{created['id']}"
    assert "key" not in body["data"][0]
    assert created["key"].split("_", 2)[2] not in listed.text


async def test_key_authenticates_as_bearer_or_header_and_its_scopes_reach_the_service(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    created = await _create(identity_client, session_headers, ["strategies:read"])
    for headers in ({"Authorization": f"Bearer {created['key']}"}, {"X-API-Key": created["key"]}):
        response = await identity_client.get("/api/strategies/7", headers=headers)
        assert response.status_code == 200, response.text
        principal = response.json()["principal"]
        assert principal["scopes"] == ["strategies:read"]
        assert principal["api_key_id"] == created["id"]
    me = await identity_client.get("/api/auth/me", headers={"X-API-Key": created["key"]})
    assert me.json()["scopes"] == ["strategies:read"]
    assert me.json()["api_key_id"] == created["id"]


async def test_key_scopes_limit_what_it_may_do(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    key = {"X-API-Key": (await _create(identity_client, session_headers, ["market:write"]))["key"]}
    assert (await identity_client.post("/api/market/bars", json={}, headers=key)).status_code == 200
    for method, path in (
        ("GET", "/api/market/bars"),  # write does not imply read
        ("GET", "/api/strategies"),
        ("POST", "/api/backtests"),
    ):
        response = await identity_client.request(method, path, headers=key)
        assert response.status_code == 403, (method, path)
        assert "scope" in response.json()["detail"]


async def test_an_agents_command_list_needs_a_key_that_reads_agents(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    path = "/api/agents/01J0000000000000000000000A/queue"
    reader = {
        "X-API-Key": (await _create(identity_client, session_headers, ["agents:read"]))["key"]
    }
    forwarded = await identity_client.get(path, params={"state": "queued"}, headers=reader)
    assert forwarded.status_code == 200, forwarded.text
    assert forwarded.json()["path"] == path
    assert forwarded.json()["principal"]["scopes"] == ["agents:read"]
    writer = await _create(identity_client, session_headers, ["agents:write", "sessions:read"])
    refused = await identity_client.get(path, headers={"X-API-Key": writer["key"]})
    assert refused.status_code == 403
    assert "scope" in refused.json()["detail"]
    signed_in = await identity_client.get(path, headers=session_headers)
    assert signed_in.status_code == 200, signed_in.text


async def test_revoked_or_forged_keys_fail(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    created = await _create(identity_client, session_headers, ["strategies:read"])
    key = {"X-API-Key": created["key"]}
    assert (await identity_client.get("/api/strategies", headers=key)).status_code == 200

    forged = {"X-API-Key": f"atk_{created['id']}_{'A' * 43}"}
    assert (await identity_client.get("/api/strategies", headers=forged)).status_code == 401

    revoked = await identity_client.delete(
        f"/api/api-keys/{created['id']}", headers=session_headers
    )
    assert revoked.status_code == 204
    refused = await identity_client.get("/api/strategies", headers=key)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "API key revoked"
    listed = (await identity_client.get("/api/api-keys", headers=session_headers)).json()
    assert listed["data"][0]["revoked_at"] is not None

    unknown = await identity_client.delete("/api/api-keys/nope", headers=session_headers)
    assert unknown.status_code == 404


async def test_keys_cannot_manage_keys_and_unknown_scopes_are_refused(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    key = {"X-API-Key": (await _create(identity_client, session_headers, ["market:read"]))["key"]}
    minted = await identity_client.post(
        "/api/api-keys", json={"name": "escalate", "scopes": ["market:write"]}, headers=key
    )
    assert minted.status_code == 403
    assert (await identity_client.get("/api/api-keys", headers=key)).status_code == 403

    unknown = await identity_client.post(
        "/api/api-keys", json={"name": "x", "scopes": ["root:everything"]}, headers=session_headers
    )
    assert unknown.status_code == 422


async def test_rate_limits_count_per_key_not_per_user(
    identity_client: httpx.AsyncClient, session_headers: dict[str, str]
) -> None:
    first = await _create(identity_client, session_headers, ["strategies:read"], name="one")
    second = await _create(identity_client, session_headers, ["strategies:read"], name="two")
    a = await identity_client.get("/api/strategies", headers={"X-API-Key": first["key"]})
    b = await identity_client.get("/api/strategies", headers={"X-API-Key": second["key"]})
    assert a.headers["x-ratelimit-remaining"] == b.headers["x-ratelimit-remaining"] == "1199"
