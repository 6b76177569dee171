"""Agents through the gateway, as a trader sets one up: a signed-in user registers an agent and
gets its API key once; the terminal then uses only that key. The forward-test service and the
gateway are real apps behind real uvicorn servers, on the test run's PostgreSQL, Redis and
Kafka."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from algotrade.migrations import upgrade
from algotrade_testkit.plugin import unique
from algotrade_testkit.services import key_settings, serve_on_port
from api_gateway.config import Settings as GatewaySettings
from api_gateway.main import create_app as gateway_app
from forward_test_service.config import Settings as ForwardSettings
from forward_test_service.main import create_app as forward_app

PASSWORD = "agents-need-a-good-password-7"
AGENT = {
    "name": "London desk",
    "platform": "mt5",
    "account_number": "5012345",
    "broker": "MetaQuotes-Demo",
    "currency": "USD",
}


@dataclass
class Gateway:
    client: httpx.AsyncClient

    async def user(self) -> dict[str, str]:
        credentials = {"email": f"{unique('trader')}@example.com", "password": PASSWORD}
        (await self.client.post("/api/auth/register", json=credentials)).raise_for_status()
        login = await self.client.post("/api/auth/login", json=credentials)
        login.raise_for_status()
        return {"Authorization": f"Bearer {login.json()['access_token']}"}


@pytest.fixture
async def gateway(database_url: str, make_settings: Callable[..., Any]) -> AsyncIterator[Gateway]:
    await upgrade(database_url, "forward_test_service", "forward")
    await upgrade(database_url, "api_gateway", "gateway")
    forward = make_settings(ForwardSettings, **key_settings("forward-test"))
    async with serve_on_port(forward_app(forward)) as forward_url:
        settings = make_settings(
            GatewaySettings,
            **key_settings("gateway"),
            forward_test_service_url=forward_url,
            password_hash_time_cost=1,
            password_hash_memory_kib=1024,
            password_hash_parallelism=1,
        )
        async with (
            serve_on_port(gateway_app(settings)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as client,
        ):
            yield Gateway(client)


async def test_registration_answers_a_key_that_acts_on_its_own_agent_only(
    gateway: Gateway,
) -> None:
    user = await gateway.user()
    created = await gateway.client.post("/api/agents", json=AGENT, headers=user)
    assert created.status_code == 201, created.text
    agent = created.json()
    key = agent["api_key"]
    assert key.startswith("atk_")
    other = (await gateway.client.post("/api/agents", json=AGENT, headers=user)).json()
    as_agent = {"X-API-Key": key}

    beat = await gateway.client.post(
        f"/api/agents/{agent['id']}/heartbeat",
        json={"balance": 1000.0, "equity": 1001.5, "open_positions": 0},
        headers=as_agent,
    )
    assert beat.status_code == 200, beat.text
    assert beat.json()["pending_commands"] == 0

    # The key on the user's other agent: 403, and it cannot act as the user.
    elsewhere = await gateway.client.post(
        f"/api/agents/{other['id']}/heartbeat",
        json={"balance": 1.0, "equity": 1.0},
        headers=as_agent,
    )
    assert elsewhere.status_code == 403
    assert elsewhere.headers["content-type"] == "application/problem+json"
    for method, path, body in (
        ("POST", "/api/agents", AGENT),
        ("POST", f"/api/agents/{agent['id']}/commands", {"kind": "close_all"}),
        ("GET", "/api/strategies", None),
        ("GET", "/api/api-keys", None),
    ):
        refused = await gateway.client.request(method, path, json=body, headers=as_agent)
        assert refused.status_code == 403, (path, refused.text)
    listed = await gateway.client.get("/api/agents", headers=as_agent)
    assert [a["id"] for a in listed.json()["data"]] == [agent["id"]]

    # The user queues a command; the agent's key leases and acks it.
    queued = await gateway.client.post(
        f"/api/agents/{agent['id']}/commands",
        json={"kind": "open", "symbol": "EURUSD", "side": "buy", "volume": 0.1},
        headers=user,
    )
    assert queued.status_code == 201, queued.text
    polled = await gateway.client.get(
        f"/api/agents/{agent['id']}/commands", params={"wait": 5}, headers=as_agent
    )
    assert [c["id"] for c in polled.json()["data"]] == [queued.json()["id"]]

    # Another user sees nothing of it; a key the user made cannot claim an agent binding.
    stranger = await gateway.user()
    assert (
        await gateway.client.get(f"/api/agents/{agent['id']}", headers=stranger)
    ).status_code == 404
    forged = await gateway.client.post(
        "/api/api-keys",
        json={"name": "sneaky", "scopes": [f"agent:{agent['id']}", "agents:write"]},
        headers=stranger,
    )
    assert forged.status_code == 422

    # A new key for the agent; revoking the first one stops it.
    fresh = await gateway.client.post(f"/api/agents/{agent['id']}/keys", headers=user)
    assert fresh.status_code == 201, fresh.text
    keys = (await gateway.client.get("/api/api-keys", headers=user)).json()["data"]
    first_id = next(k["id"] for k in keys if key.startswith(k["prefix"] + "_"))
    assert (
        await gateway.client.delete(f"/api/api-keys/{first_id}", headers=user)
    ).status_code == 204
    old = await gateway.client.post(
        f"/api/agents/{agent['id']}/heartbeat",
        json={"balance": 1.0, "equity": 1.0},
        headers=as_agent,
    )
    assert old.status_code == 401
    new = await gateway.client.post(
        f"/api/agents/{agent['id']}/heartbeat",
        json={"balance": 1.0, "equity": 1.0},
        headers={"X-API-Key": fresh.json()["api_key"]},
    )
    assert new.status_code == 200


async def test_a_refused_registration_creates_no_agent_and_no_key(gateway: Gateway) -> None:
    user = await gateway.user()
    bad = await gateway.client.post(
        "/api/agents", json={**AGENT, "platform": "metatrader4"}, headers=user
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert (await gateway.client.get("/api/agents", headers=user)).json()["count"] == 0
    assert (await gateway.client.get("/api/api-keys", headers=user)).json()["data"] == []
    other_users_agent = await gateway.client.post(
        "/api/agents/01J0000000000000000000000A/keys", headers=user
    )
    assert other_users_agent.status_code == 404


async def test_the_owner_reads_the_command_list_through_the_gateway_without_leasing(
    gateway: Gateway,
) -> None:
    user = await gateway.user()
    agent = (await gateway.client.post("/api/agents", json=AGENT, headers=user)).json()
    as_agent = {"X-API-Key": agent["api_key"]}
    queue = f"/api/agents/{agent['id']}/queue"
    queued = await gateway.client.post(
        f"/api/agents/{agent['id']}/commands",
        json={"kind": "info", "message": "hello"},
        headers=user,
    )
    assert queued.status_code == 201, queued.text

    listed = await gateway.client.get(queue, params={"state": "queued"}, headers=user)
    assert listed.status_code == 200, listed.text
    assert [(c["id"], c["state"]) for c in listed.json()["items"]] == [
        (queued.json()["id"], "queued")
    ]
    # Reading leased nothing: the agent's poll still gets the command.
    polled = await gateway.client.get(f"/api/agents/{agent['id']}/commands", headers=as_agent)
    assert [c["id"] for c in polled.json()["data"]] == [queued.json()["id"]]
    own = await gateway.client.get(queue, headers=as_agent)
    assert [c["state"] for c in own.json()["items"]] == ["leased"]

    # An API key reads it with agents:read only; another user's request is a 404.
    for scopes, status in ((["agents:read"], 200), (["agents:write", "sessions:read"], 403)):
        made = await gateway.client.post(
            "/api/api-keys", json={"name": "reader", "scopes": scopes}, headers=user
        )
        answer = await gateway.client.get(queue, headers={"X-API-Key": made.json()["key"]})
        assert answer.status_code == status, (scopes, answer.text)
    stranger = await gateway.client.get(queue, headers=await gateway.user())
    assert stranger.status_code == 404
    assert stranger.headers["content-type"] == "application/problem+json"
    bad = await gateway.client.get(queue, params={"limit": 0}, headers=user)
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"

    # The gateway's merged OpenAPI documents it.
    document = (await gateway.client.get("/openapi.json")).json()
    assert "get" in document["paths"]["/api/agents/{agent_id}/queue"]
