"""Fixtures: the forward-test service app on real PostgreSQL, Redis and Kafka, and `Desk`, a
client that speaks the agent protocol as a user (full scopes) or as an agent (its own key's
scopes: ``agents:*`` and ``agent:<id>``, as the gateway forwards them)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from algotrade.migrations import upgrade
from algotrade.topics import ensure_topics
from algotrade_testkit.services import ALL_SCOPES, internal_token, key_settings, serve_in_process
from forward_test_service.config import Settings
from forward_test_service.main import create_app

FAST = {
    "agent_lease_seconds": 0.5,
    "agent_backoff_base_seconds": 0.05,
    "agent_backoff_max_seconds": 0.2,
    "agent_max_attempts": 3,
    "agent_monitor_seconds": 0.1,
    "agent_poll_recheck_seconds": 60.0,  # only a wake-up can end a poll's wait early
}


def agent_scopes(agent_id: str) -> frozenset[str]:
    return frozenset(
        {"agents:read", "agents:write", "market:read", "market:write", f"agent:{agent_id}"}
    )


@dataclass
class Desk:
    client: httpx.AsyncClient
    settings: Settings
    gateway: Settings
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def user(self, user_id: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {internal_token(self.gateway, user_id, ALL_SCOPES)}"}

    def agent(self, agent_id: str, user_id: str = "alice") -> dict[str, str]:
        """The agent's credentials as the gateway forwards them (minted once per agent, as the
        gateway reuses a principal's token)."""
        key = (agent_id, user_id)
        if key not in self._tokens:
            self._tokens[key] = internal_token(self.gateway, user_id, agent_scopes(agent_id))
        return {"Authorization": f"Bearer {self._tokens[key]}"}

    async def register(self, user_id: str = "alice", **overrides: Any) -> str:
        body = {
            "name": "desk terminal",
            "platform": "mt5",
            "account_number": "5012345",
            "broker": "MetaQuotes-Demo",
            "currency": "USD",
            **overrides,
        }
        created = await self.client.post("/api/agents", json=body, headers=self.user(user_id))
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    async def enqueue(self, agent_id: str, user_id: str = "alice", **body: Any) -> httpx.Response:
        return await self.client.post(
            f"/api/agents/{agent_id}/commands", json=body, headers=self.user(user_id)
        )

    async def poll(self, agent_id: str, user_id: str = "alice", **params: Any) -> list[Any]:
        answer = await self.client.get(
            f"/api/agents/{agent_id}/commands", params=params, headers=self.agent(agent_id, user_id)
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json()["data"])

    async def ack(
        self, agent_id: str, command_id: str, user_id: str = "alice", **body: Any
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/agents/{agent_id}/commands/{command_id}/ack",
            json=body,
            headers=self.agent(agent_id, user_id),
        )

    async def heartbeat(self, agent_id: str, user_id: str = "alice", **body: Any) -> httpx.Response:
        return await self.client.post(
            f"/api/agents/{agent_id}/heartbeat",
            json={"balance": 10_000.0, "equity": 10_000.0, **body},
            headers=self.agent(agent_id, user_id),
        )


@pytest.fixture
async def agent_settings(make_settings: Callable[..., Any], database_url: str) -> Settings:
    await upgrade(database_url, "forward_test_service", "forward")
    settings: Settings = make_settings(Settings, **key_settings("forward-test"), **FAST)
    # Created up front: a send to a topic the broker is still auto-creating can hold the
    # producer's shutdown past the lifespan's timeout.
    await ensure_topics(settings.kafka_bootstrap, settings.kafka_topic_prefix)
    return settings


@pytest.fixture
def serve_desk(agent_settings: Settings, make_settings: Callable[..., Any]) -> Callable[..., Any]:
    """``async with serve_desk() as desk``: the service app (another one after a restart)."""
    gateway = make_settings(Settings)

    @contextlib.asynccontextmanager
    async def serve(**overrides: Any) -> AsyncIterator[Desk]:
        settings = agent_settings.model_copy(update=overrides) if overrides else agent_settings
        async with serve_in_process(create_app(settings)) as client:
            yield Desk(client, settings, gateway)

    return serve


@pytest.fixture
async def desk(serve_desk: Callable[..., Any]) -> AsyncIterator[Desk]:
    async with serve_desk() as desk:
        yield desk
