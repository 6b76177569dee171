"""`AgentClient`: the agent's HTTP calls, and what a failure means for the caller.

Failures fall in three kinds, because the agent reacts to each differently:

- `ServerUnavailable`: no answer, a 5xx or a 429 (the gateway or a service is away, or asks to
  slow down): reconnect with backoff, keep what was not delivered;
- `CredentialsRefused`: 401 or 403 (a revoked or wrong key): retrying soon cannot help;
- `RequestRefused`: any other 4xx (a problem with this request): give up on this request.

The API key goes into the client's default headers only; it never appears in a message or log.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, cast

import httpx

from algotrade_sdk.protocol import (
    ACK,
    API_KEY_HEADER,
    BARS,
    COMMANDS,
    HEARTBEAT,
    TRADE_SYNC,
    BarsPush,
    CommandAck,
    CommandsLeased,
    Heartbeat,
    HeartbeatAnswer,
    PushResult,
    SyncReport,
    TradeSync,
)

logger = logging.getLogger(__name__)

POLL_GRACE_SECONDS = 10.0
"""A long-poll's read timeout is its ``wait`` plus this much."""


class AgentClientError(Exception):
    """A call of the agent protocol failed."""


class ServerUnavailable(AgentClientError):
    """No answer, a 5xx or a 429; ``retry_after`` is the server's Retry-After, if it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CredentialsRefused(AgentClientError):
    """401 or 403: the key is wrong, revoked, or belongs to another agent."""


class RequestRefused(AgentClientError):
    """Another 4xx: this request is wrong (``status``, and the problem's ``detail``)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AgentClient:
    """One agent's calls to the platform, through the gateway at ``url``."""

    def __init__(
        self,
        url: str,
        agent_id: str,
        api_key: str,
        *,
        timeout_seconds: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.agent_id = agent_id
        self._timeout = timeout_seconds
        self._http = httpx.AsyncClient(
            base_url=url,
            headers={API_KEY_HEADER: api_key},
            timeout=timeout_seconds,
            transport=transport,
        )

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def heartbeat(self, body: Heartbeat) -> HeartbeatAnswer:
        return cast(HeartbeatAnswer, await self._call("POST", self._agent_path(HEARTBEAT), body))

    async def poll(self, wait: float, limit: int) -> CommandsLeased:
        """Lease up to ``limit`` commands, the service holding the request up to ``wait`` s."""
        answer = await self._call(
            "GET",
            self._agent_path(COMMANDS),
            params={"wait": round(wait, 3), "limit": limit},
            seconds=wait + POLL_GRACE_SECONDS,
        )
        return cast(CommandsLeased, answer)

    async def ack(self, command_id: str, body: CommandAck) -> dict[str, Any]:
        path = self._agent_path(ACK).replace("{command_id}", command_id)
        return cast(dict[str, Any], await self._call("POST", path, body))

    async def sync(self, body: TradeSync) -> SyncReport:
        return cast(SyncReport, await self._call("POST", self._agent_path(TRADE_SYNC), body))

    async def push_bars(self, body: BarsPush) -> PushResult:
        return cast(PushResult, await self._call("POST", BARS, body))

    def _agent_path(self, template: str) -> str:
        return template.replace("{agent_id}", self.agent_id)

    async def _call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        params: dict[str, Any] | None = None,
        seconds: float | None = None,
    ) -> Any:
        try:
            response = await self._http.request(
                method,
                path,
                json=body,
                params=params,
                timeout=self._timeout if seconds is None else seconds,
            )
        except httpx.TransportError as exc:
            raise ServerUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status < 400:
            return response.json()
        detail = _detail(response)
        message = f"{method} {path}: {status} {detail}"
        if status >= 500 or status == 429:
            raise ServerUnavailable(message, _retry_after(response))
        if status in (401, 403):
            raise CredentialsRefused(message)
        raise RequestRefused(message, status)


def _detail(response: httpx.Response) -> str:
    """The problem's detail (or title), else the start of the body."""
    try:
        problem = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(problem, dict):
        return str(problem.get("detail") or problem.get("title") or problem)[:500]
    return str(problem)[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:  # an HTTP date: not sent by the gateway; the backoff decides
        return None
