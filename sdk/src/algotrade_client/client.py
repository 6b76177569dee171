"""`Client` and `AsyncClient`: the platform's REST API and live events through the gateway.

Both hold the same resources (``auth``, ``strategies``, ``market``, ``backtests``,
``sessions``, ``agents``, ``analytics``), built over one runner: `SyncRunner` with an
`httpx.Client`, or `AsyncRunner` with an `httpx.AsyncClient`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Generic, TypeVar

import httpx

from algotrade_client.calls import JSON
from algotrade_client.credentials import Credentials
from algotrade_client.resources.agents import Agents
from algotrade_client.resources.analytics import Analytics
from algotrade_client.resources.auth import Auth
from algotrade_client.resources.backtests import Backtests
from algotrade_client.resources.market import Market
from algotrade_client.resources.sessions import Sessions
from algotrade_client.resources.strategies import Strategies
from algotrade_client.subscribe import Subscription, afollow, follow, websocket_url
from algotrade_client.transport import AsyncRunner, SyncRunner

DEFAULT_URL = "http://127.0.0.1:8000"
USER_AGENT = "algotrade-client/0.1"

R = TypeVar("R", SyncRunner, AsyncRunner)


class _Resources(Generic[R]):
    """What both clients hold: the credentials and one instance of each resource."""

    def __init__(self, base_url: str, runner: R, credentials: Credentials) -> None:
        self.base_url = base_url
        self._credentials = credentials
        self.auth: Auth[R] = Auth(runner, credentials)
        self.strategies: Strategies[R] = Strategies(runner, credentials)
        self.market: Market[R] = Market(runner, credentials)
        self.backtests: Backtests[R] = Backtests(runner, credentials)
        self.sessions: Sessions[R] = Sessions(runner, credentials)
        self.agents: Agents[R] = Agents(runner, credentials)
        self.analytics: Analytics[R] = Analytics(runner, credentials)

    @property
    def token(self) -> str | None:
        """The current access token (after `Auth.login`, or a refresh)."""
        return self._credentials.token

    @property
    def refresh_token(self) -> str | None:
        return self._credentials.refresh_token

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.base_url!r}, credentials={self._credentials.describe()})"
        )


def _environment() -> dict[str, str | None]:
    return {
        "base_url": os.environ.get("ALGOTRADE_URL") or DEFAULT_URL,
        "token": os.environ.get("ALGOTRADE_TOKEN") or None,
        "api_key": os.environ.get("ALGOTRADE_API_KEY") or None,
    }


class Client(_Resources[SyncRunner]):
    """The platform's API, blocking. A context manager; `close` ends its connections.

    ``token`` (with ``refresh_token``) or ``api_key`` authenticate it from the start; or call
    ``client.auth.login(email, password)``. On a 401 the client refreshes the token once (when
    it holds a refresh token) and sends the request again.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )
        self._timeout = timeout
        credentials = Credentials(token=token, refresh_token=refresh_token, api_key=api_key)
        super().__init__(base_url, SyncRunner(self._http), credentials)

    @classmethod
    def from_env(cls) -> Client:
        """A client of ``ALGOTRADE_URL`` (default the local gateway) with ``ALGOTRADE_TOKEN``
        or ``ALGOTRADE_API_KEY``."""
        env = _environment()
        return cls(env["base_url"] or DEFAULT_URL, token=env["token"], api_key=env["api_key"])

    def subscribe(
        self, channels: Sequence[str], *, resume: Mapping[str, int] | None = None
    ) -> Iterator[JSON]:
        """Every message of ``channels`` (``session:<id>``, ``backtest:<id>``, ``user``...)
        over the WebSocket, reconnecting and resuming after a drop; ``resume`` maps a channel
        to the last number already seen. Needs the ``live`` extra."""
        return follow(
            websocket_url(self.base_url),
            self._credentials,
            self.auth.refresh,
            Subscription(channels, resume),
            open_timeout=self._timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Resources[AsyncRunner]):
    """The platform's API on asyncio: the same resources and methods as `Client`, each a
    coroutine. An async context manager; `aclose` ends its connections."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        refresh_token: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT},
        )
        self._timeout = timeout
        credentials = Credentials(token=token, refresh_token=refresh_token, api_key=api_key)
        super().__init__(base_url, AsyncRunner(self._http), credentials)

    @classmethod
    def from_env(cls) -> AsyncClient:
        """Like `Client.from_env`."""
        env = _environment()
        return cls(env["base_url"] or DEFAULT_URL, token=env["token"], api_key=env["api_key"])

    def subscribe(
        self, channels: Sequence[str], *, resume: Mapping[str, int] | None = None
    ) -> AsyncIterator[JSON]:
        """Like `Client.subscribe`, as an async iterator: ``async for message in ...``."""
        return afollow(
            websocket_url(self.base_url),
            self._credentials,
            self.auth.refresh,
            Subscription(channels, resume),
            open_timeout=self._timeout,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
