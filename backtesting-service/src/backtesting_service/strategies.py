"""Strategy graphs, read from the strategy service's API (never from its tables)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from algotrade.auth import InternalTokens
from algotrade.engine import Plan, PlanDecodeError
from algotrade.errors import DependencyUnavailable
from algotrade.problems import problem_detail
from backtesting_service.backtest import BacktestInvalid

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StrategyVersion:
    """A saved version: its graph and, when the source has it, the plan compiled from it."""

    graph: dict[str, Any]
    plan: Plan | None = None


class StrategySource(Protocol):
    async def version(self, user_id: str, strategy_id: str, version: int) -> StrategyVersion:
        """``strategy_id`` at ``version`` as ``user_id`` may read it; raises `BacktestInvalid`
        when it does not exist for that user."""
        ...


def unknown_strategy(strategy_id: str, version: int) -> BacktestInvalid:
    return BacktestInvalid(
        f"strategy {strategy_id!r} has no version {version} you can read",
        errors=[
            {
                "loc": ["body", "strategy_id"],
                "code": "unknown_strategy",
                "message": f"strategy {strategy_id} version {version} not found",
            }
        ],
    )


class HttpStrategySource:
    """``GET {base}/api/strategies/{id}/versions/{n}?include=plan`` → ``{"graph": {...},
    "plan_id": ..., "plan": ...}``: the plan comes from the strategy service's plan cache, so a
    version is compiled once however many backtests run it."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, tokens: InternalTokens) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self._tokens = tokens

    async def version(self, user_id: str, strategy_id: str, version: int) -> StrategyVersion:
        token = self._tokens.for_user(user_id, "strategies:read")
        url = f"{self._base}/api/strategies/{quote(strategy_id, safe='')}/versions/{version}"
        try:
            response = await self._client.get(
                url,
                params={"include": "plan"},
                headers={"authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as exc:
            raise DependencyUnavailable(
                f"the strategy service is unreachable ({type(exc).__name__})"
            ) from None
        if response.status_code in (403, 404):
            raise unknown_strategy(strategy_id, version)
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            # The strategy service refused what the caller asked for: the caller's error, a
            # 4xx here too, never a 503 that would count against this service.
            detail = problem_detail(response.content)
            raise BacktestInvalid(
                f"the strategy service refused strategy {strategy_id!r} version {version}"
                + (f": {detail}" if detail else ""),
                errors=[
                    {
                        "loc": ["body", "version"],
                        "code": "strategy_refused",
                        "message": detail or f"strategy service answered {response.status_code}",
                    }
                ],
            )
        if response.status_code != 200:
            logger.warning("strategy service answered %d", response.status_code)
            raise DependencyUnavailable(f"the strategy service answered {response.status_code}")
        body = response.json()
        graph = body.get("graph") if isinstance(body, dict) else None
        if not isinstance(graph, dict):
            raise DependencyUnavailable("the strategy service's answer has no graph")
        return StrategyVersion(graph=graph, plan=_plan_of(body))


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
