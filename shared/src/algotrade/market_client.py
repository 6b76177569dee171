"""Reads of the market data service's API from another service, as a user may read them: the
one way its answers are mapped, which backtests, sessions and reports share.

``GET {base}/api/market/symbols/{symbol}/{what}`` with an internal token for the user
(``market:read``). A series the user may not read (404, or 403) is `MarketUnknown`; another
refusal (400, 422) is `MarketRefused`, with the service's problem; each caller turns them into
its own answer (no bars, or a 4xx naming its own field). Timeouts, connection errors, 5xx and
any other status are `DependencyUnavailable` (503).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from algotrade.auth import InternalTokens
from algotrade.errors import DependencyUnavailable


class MarketUnknown(Exception):
    """No such series for the user (the market data service answered 404 or 403)."""


class MarketRefused(Exception):
    """The market data service refused the request (400, 422); ``problem`` is its answer
    (``{}`` when it was not a JSON object)."""

    def __init__(self, status: int, problem: dict[str, Any], text: str) -> None:
        self.status = status
        self.problem = problem
        self.detail = str(problem.get("detail") or text[:200])
        super().__init__(f"the market data service refused the request: {self.detail}")

    @property
    def codes(self) -> set[str]:
        """The ``code`` of each of the problem's errors."""
        errors = self.problem.get("errors")
        return {e["code"] for e in errors or () if isinstance(e, dict) and "code" in e}


class MarketClient:
    def __init__(self, client: httpx.AsyncClient, base_url: str, tokens: InternalTokens) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._tokens = tokens

    def url(self, symbol: str, what: str) -> str:
        return f"{self._base}/api/market/symbols/{quote(symbol, safe='')}/{what}"

    async def get(
        self,
        user_id: str,
        url: str,
        params: Mapping[str, Any],
        *,
        accept: str | None = None,
    ) -> httpx.Response:
        """The 200 answer to ``GET url`` as ``user_id`` reads it (see the module doc)."""
        headers = {"authorization": f"Bearer {self._tokens.for_user(user_id, 'market:read')}"}
        if accept is not None:
            headers["accept"] = accept
        try:
            response = await self._client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"the market data service is unreachable ({type(exc).__name__})"
            ) from None
        status = response.status_code
        if status in (403, 404):
            raise MarketUnknown(url)
        if status in (400, 422):
            raise MarketRefused(status, json_object(response), response.text)
        if status != 200:
            raise DependencyUnavailable(f"the market data service answered {status}")
        return response


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or ``{}`` when it is not one."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}
