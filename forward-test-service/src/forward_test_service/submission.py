"""Turning a request into a session, validating everything that can be known up front.

The strategy version is fetched with the plan the strategy service compiled (compiled here
only when none comes back), the request's parameters are applied and checked, the plan must be
able to trade under the config, and the market data service must hold bars of the series. The
plan's warm-up length of the newest bars is then applied to a fresh account, so the session
starts warmed up as far as history goes. Any problem is a 4xx answer naming it, and nothing is
created.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from algotrade.bars import Bars
from algotrade.engine import Plan, ProblemCode, compile_graph
from algotrade.simulation import BacktestConfig, ResolvedConfig
from algotrade.simulation.live import BarOutcome
from forward_test_service.broker import Account, Broker, live_bar
from forward_test_service.errors import invalid
from forward_test_service.market import MarketData
from forward_test_service.schemas import SessionCreate
from forward_test_service.strategies import StrategySource

ENTRY_SIGNAL_KINDS = ("enter_long", "enter_short")


@dataclass
class NewSession:
    """Everything a submission decided, ready to be stored."""

    user_id: str
    strategy_id: str
    version: int
    plan: Plan
    params: dict[str, float]
    symbol: str
    timeframe: str
    owner: str | None
    config: BacktestConfig
    account: Account
    resolved: dict[str, Any]
    warmup_bars: int
    outcomes: list[BarOutcome] = field(default_factory=list)
    mode: str = "paper"
    agent_id: str | None = None
    agent_symbol: str | None = None


def check_plan(plan: Plan, config: BacktestConfig) -> None:
    """Refuse a plan this config cannot trade (the engine already checked the graph)."""
    if not any(kind in plan.signals for kind in ENTRY_SIGNAL_KINDS):
        raise invalid(
            "strategy_id",
            ProblemCode.NO_ENTRY_SIGNAL.value,
            "add an enter_long or enter_short node",
            "the plan has no entry signal; a session needs an enter_long or enter_short node",
        )
    if not config.allow_short and "enter_long" not in plan.signals:
        raise invalid(
            "config",
            "short_only_strategy",
            "allow short positions or add an enter_long signal",
            "the strategy only enters short positions but config.allow_short is false",
        )


@dataclass(frozen=True)
class Submission:
    strategies: StrategySource
    market: MarketData
    broker: Broker
    warmup_max_bars: int

    def _warm_account(
        self, plan: Plan, resolved: ResolvedConfig, bars: Bars
    ) -> tuple[Account, list[BarOutcome]]:
        """A fresh account with the warm-up bars applied, oldest first."""
        account = self.broker.start(plan, resolved)
        outcomes = [
            account.apply(
                live_bar(
                    int(bars.ts[i]),
                    float(bars.open[i]),
                    float(bars.high[i]),
                    float(bars.low[i]),
                    float(bars.close[i]),
                    float(bars.volume[i]),
                )
            )
            for i in range(len(bars))
        ]
        return account, outcomes

    async def session(self, user_id: str, request: SessionCreate) -> NewSession:
        saved = await self.strategies.version(user_id, request.strategy_id, request.version)
        # GraphInvalid: 422 listing every problem. A stored version normally arrives compiled.
        plan = saved.plan or compile_graph(saved.graph)
        if request.params:
            plan = plan.with_params(request.params)
        config = request.config.model_copy(
            update={"initial_capital": request.capital, "timeframe": request.timeframe}
        )
        check_plan(plan, config)
        wanted = min(max(plan.warmup, 1), self.warmup_max_bars)
        latest = await self.market.latest(
            user_id, request.symbol, request.timeframe, wanted, request.owner
        )
        if latest is None or len(latest.bars) == 0:
            raise invalid(
                "symbol",
                "no_data",
                f"no {request.timeframe} bars of {request.symbol}",
                f"there are no {request.timeframe} bars of {request.symbol} you can read"
                + (f" (owner {request.owner})" if request.owner else ""),
            )
        bars = latest.bars
        # "auto" fields are decided once, on the warm-up bars, and kept for the session's life.
        resolved = config.resolve(bars.ts)
        # Up to warmup_max_bars applications (and, on a cold kernel cache, a compilation):
        # off the event loop, so other requests keep being answered meanwhile.
        account, outcomes = await asyncio.to_thread(self._warm_account, plan, resolved, bars)
        return NewSession(
            user_id=user_id,
            strategy_id=request.strategy_id,
            version=saved.version,
            plan=plan,
            params=dict(request.params),
            symbol=request.symbol,
            timeframe=request.timeframe,
            owner=latest.owner,
            config=config,
            account=account,
            resolved=resolved.model_dump(mode="json"),
            warmup_bars=len(bars),
            outcomes=outcomes,
            mode=request.mode,
            agent_id=request.agent_id,
            agent_symbol=(request.agent_symbol or request.symbol) if request.agent_id else None,
        )
