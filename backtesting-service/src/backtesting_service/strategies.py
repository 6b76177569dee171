"""Strategy graphs with their compiled plans, as the job's user may read them: the shared
`algotrade.strategy_client`, its refusals as this service's 422s."""

from __future__ import annotations

from typing import Protocol

from algotrade.strategy_client import (
    StrategyClient,
    StrategyRefused,
    StrategyUnknown,
    StrategyVersion,
)
from backtesting_service.backtest import BacktestInvalid

__all__ = ["HttpStrategySource", "StrategySource", "StrategyVersion"]


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


class HttpStrategySource(StrategyClient):
    async def version(self, user_id: str, strategy_id: str, version: int | None) -> StrategyVersion:
        try:
            return await super().version(user_id, strategy_id, version)
        except StrategyUnknown:
            raise unknown_strategy(strategy_id, version or 0) from None
        except StrategyRefused as exc:
            raise BacktestInvalid(
                f"the strategy service refused strategy {strategy_id!r} version {version}"
                + (f": {exc.detail}" if exc.detail else ""),
                errors=[
                    {
                        "loc": ["body", "version"],
                        "code": "strategy_refused",
                        "message": str(exc),
                    }
                ],
            ) from None
