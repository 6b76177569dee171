"""Strategy versions with their compiled plans, read from the strategy service's API (never
from its tables) as a user may read them: the one client backtests and sessions share.

``GET {base}/api/strategies/{id}/versions/{n}?include=plan`` brings the plan from the strategy
service's plan cache, so a version is compiled once however many runs use it. Without a
version, ``GET {base}/api/strategies/{id}`` names the current one first. The strategy service's
refusals become `StrategyUnknown` (the user cannot read it) or `StrategyRefused` (it answered
another 4xx, with its words: a draft, for instance); each caller turns them into its own 4xx.
Timeouts, connection errors and 5xx are `DependencyUnavailable` (503).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from algotrade.auth import InternalTokens
from algotrade.engine import Plan, PlanDecodeError
from algotrade.errors import DependencyUnavailable
from algotrade.problems import problem_detail

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StrategyVersion:
    """A saved version: its number, graph and, when the source has it, its compiled plan."""

    version: int
    graph: dict[str, Any]
    plan: Plan | None = None


class StrategyUnknown(Exception):
    """The strategy, or that version of it, does not exist for the user."""


class StrategyRefused(Exception):
    """The strategy service refused the read for another reason; ``detail`` is its word."""

    def __init__(self, status: int, detail: str | None) -> None:
        self.status = status
        self.detail = detail
        super().__init__(detail or f"strategy service answered {status}")


class StrategyClient:
    def __init__(self, client: httpx.AsyncClient, base_url: str, tokens: InternalTokens) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._tokens = tokens

    async def version(self, user_id: str, strategy_id: str, version: int | None) -> StrategyVersion:
        """``strategy_id`` at ``version`` (its current one when None) as ``user_id`` reads it."""
        headers = {"authorization": f"Bearer {self._tokens.for_user(user_id, 'strategies:read')}"}
        base = f"{self._base}/api/strategies/{quote(strategy_id, safe='')}"
        if version is None:
            current = await self._get(base, {}, headers)
            number = current.get("current_version")
            if isinstance(number, bool) or not isinstance(number, int):
                raise DependencyUnavailable("the strategy service's answer has no current_version")
            version = number
        body = await self._get(f"{base}/versions/{version}", {"include": "plan"}, headers)
        graph = body.get("graph")
        if not isinstance(graph, dict):
            raise DependencyUnavailable("the strategy service's answer has no graph")
        return StrategyVersion(version=version, graph=graph, plan=_plan_of(body))

    async def _get(
        self, url: str, params: dict[str, str], headers: dict[str, str]
    ) -> dict[str, Any]:
        try:
            response = await self._client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"the strategy service is unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code in (403, 404):
            raise StrategyUnknown
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            # The caller asked for something the strategy service refuses: the caller's error,
            # a 4xx, never a 503 that would count against the services in between.
            raise StrategyRefused(response.status_code, problem_detail(response.content))
        if response.status_code != 200:
            logger.warning("strategy service answered %d", response.status_code)
            raise DependencyUnavailable(f"the strategy service answered {response.status_code}")
        body = response.json()
        if not isinstance(body, dict):
            raise DependencyUnavailable("the strategy service's answer is not an object")
        return body


def _plan_of(body: dict[str, Any]) -> Plan | None:
    """The version's compiled plan when the answer carries one that is the version's own
    (same ``plan_id``); None otherwise, and the caller compiles the graph."""
    stored = body.get("plan")
    if not isinstance(stored, str):
        return None
    try:
        plan = Plan.from_bytes(stored.encode())
    except PlanDecodeError as exc:
        logger.warning("the strategy service's plan is unusable, compiling: %s", exc)
        return None
    if plan.plan_id != body.get("plan_id"):
        logger.warning("the strategy service's plan is not the version's, compiling")
        return None
    return plan
