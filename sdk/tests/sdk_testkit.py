"""Helpers for the SDK's tests: the platform's apps behind real uvicorn servers that can be
stopped and started again on the same port, and a trader who drives an agent through the
gateway (imported by conftest and the tests)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from algotrade_devstack.infra import free_port
from algotrade_sdk.agent import AgentConfig, ReferenceAgent
from algotrade_testkit.plugin import unique, wait_for

PASSWORD = "agents-need-a-good-password-7"
AGENT = {
    "name": "simulated desk",
    "platform": "other",
    "account_number": "SIM-1",
    "broker": "AlgoTrade simulator",
    "currency": "USD",
    "heartbeat_seconds": 1,
}
ENDED = ("executed", "rejected", "failed", "expired")


class Served:
    """An app behind uvicorn on a port that stays the same across `stop` and `start` (each
    start builds a fresh app from ``build``, as a restarted process would)."""

    def __init__(self, name: str, build: Callable[[], Any]) -> None:
        self.name = name
        self.port = free_port()
        self._build = build
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        server = uvicorn.Server(
            uvicorn.Config(
                self._build(),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                # An agent's long-poll in flight must not hold the stop for its whole wait.
                timeout_graceful_shutdown=1,
            )
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError(f"{self.name} did not start")
            await asyncio.sleep(0.01)
        self._server, self._task = server, task

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server, self._task = None, None


@dataclass
class Trader:
    """A signed-in user with one registered agent (its id and its key, as the gateway
    answered them once), calling through the gateway."""

    client: httpx.AsyncClient
    headers: dict[str, str]
    user_id: str
    agent_id: str
    api_key: str

    async def enqueue(self, **body: Any) -> dict[str, Any]:
        answer = await self.client.post(
            f"/api/agents/{self.agent_id}/commands", json=body, headers=self.headers
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    async def command(self, command_id: str) -> dict[str, Any]:
        answer = await self.client.get(
            f"/api/agents/{self.agent_id}/commands/{command_id}", headers=self.headers
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def ended(self, command_id: str, within: float = 15.0) -> dict[str, Any]:
        """The command once it ended (executed, rejected, failed or expired)."""

        async def check() -> dict[str, Any] | None:
            command = await self.command(command_id)
            return command if command["state"] in ENDED else None

        return dict(await wait_for(check, within=within, interval=0.1))

    async def positions(self) -> list[dict[str, Any]]:
        answer = await self.client.get(
            f"/api/agents/{self.agent_id}/positions", headers=self.headers
        )
        assert answer.status_code == 200, answer.text
        return list(answer.json()["data"])

    async def agent(self) -> dict[str, Any]:
        answer = await self.client.get(f"/api/agents/{self.agent_id}", headers=self.headers)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    async def last_sync(self) -> dict[str, Any] | None:
        """The agent's last sync summary from ``/api/agents/status``."""
        answer = await self.client.get("/api/agents/status", headers=self.headers)
        assert answer.status_code == 200, answer.text
        mine = [a for a in answer.json()["agents"] if a["id"] == self.agent_id]
        return mine[0]["last_sync"] if mine else None

    def config(self, url: str, **overrides: Any) -> AgentConfig:
        """The agent's configuration, with short intervals for tests."""
        values: dict[str, Any] = {
            "heartbeat_seconds": 1.0,
            "sync_seconds": 1.0,
            "poll_wait_seconds": 5.0,
            "backoff_initial_seconds": 0.1,
            "backoff_max_seconds": 0.5,
            "refused_wait_seconds": 1.0,
            "request_timeout_seconds": 5.0,
            **overrides,
        }
        return AgentConfig(url=url, agent_id=self.agent_id, api_key=self.api_key, **values)


async def sign_up(client: httpx.AsyncClient, **agent: Any) -> Trader:
    """Register and sign in a user, then register an agent through the gateway."""
    credentials = {"email": f"{unique('trader')}@example.com", "password": PASSWORD}
    (await client.post("/api/auth/register", json=credentials)).raise_for_status()
    login = await client.post("/api/auth/login", json=credentials)
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    me = await client.get("/api/auth/me", headers=headers)
    me.raise_for_status()
    created = await client.post("/api/agents", json={**AGENT, **agent}, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    return Trader(client, headers, me.json()["id"], body["id"], body["api_key"])


@contextlib.asynccontextmanager
async def running(agent: ReferenceAgent) -> AsyncIterator[ReferenceAgent]:
    """Run ``agent`` for the block, connected before it starts; stop it afterwards."""
    task = asyncio.create_task(agent.run())
    try:
        await wait_for(lambda: agent.connected or task.done(), within=10)
        if task.done():
            task.result()
        yield agent
    finally:
        agent.stop()
        await asyncio.wait_for(task, 10)


async def synced_after(agent: ReferenceAgent, within: float = 10.0) -> dict[str, Any]:
    """The report of the agent's first trade sync that reads the account from now on (syncs
    are a second apart in these tests, and this looks every 20 ms)."""
    now = time.monotonic()

    def synced() -> bool:
        read_at = agent.stats.last_sync_read_at
        return read_at is not None and read_at > now

    await wait_for(synced, within=within, interval=0.02)
    report = agent.stats.last_sync
    assert report is not None
    return dict(report)


def now_ms() -> int:
    return int(time.time() * 1000)
