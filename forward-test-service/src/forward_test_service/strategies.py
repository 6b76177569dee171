"""Strategy versions with their compiled plans, as the session's user may read them: the shared
`algotrade.strategy_client`, its refusals as this service's 422s."""

from __future__ import annotations

from typing import Protocol

from algotrade.strategy_client import (
    StrategyClient,
    StrategyRefused,
    StrategyUnknown,
    StrategyVersion,
)
from forward_test_service.errors import SessionInvalid, invalid

__all__ = ["HttpStrategySource", "StrategySource", "StrategyVersion"]


class StrategySource(Protocol):
    async def version(self, user_id: str, strategy_id: str, version: int | None) -> StrategyVersion:
        """``strategy_id`` at ``version`` (its current one when None) as ``user_id`` may read
        it; raises `SessionInvalid` when it does not exist for that user."""
        ...


def unknown_strategy(strategy_id: str, version: int | None) -> SessionInvalid:
    which = f"version {version}" if version is not None else "a current version"
    return invalid(
        "strategy_id",
        "unknown_strategy",
        f"strategy {strategy_id} {which} not found",
        f"strategy {strategy_id!r} has no {which} you can read",
    )


class HttpStrategySource(StrategyClient):
    async def version(self, user_id: str, strategy_id: str, version: int | None) -> StrategyVersion:
        try:
            return await super().version(user_id, strategy_id, version)
        except StrategyUnknown:
            raise unknown_strategy(strategy_id, version) from None
        except StrategyRefused as exc:
            if exc.status == 422:  # an id the strategy service cannot even look up
                raise unknown_strategy(strategy_id, version) from None
            raise invalid(
                "version",
                "strategy_refused",
                str(exc),
                f"the strategy service refused strategy {strategy_id!r}"
                + (f": {exc.detail}" if exc.detail else ""),
            ) from None
