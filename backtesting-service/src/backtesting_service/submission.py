"""Turning a request into a job, validating everything that can be known up front.

The graph is fetched (a stored strategy) and compiled, parameter values and the config are
checked, a sweep's combinations are counted and checked, and the market data service is asked
for the first bar of the range. Any problem is a 4xx answer naming it, and no job is created.

The compiled plan (with the request's parameter values) goes into the job's spec as
``Plan.to_bytes()`` text, so a worker loads it instead of compiling the graph again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from algotrade.engine import Plan, compile_graph
from backtesting_service.backtest import BacktestInvalid
from backtesting_service.backtest.run import check_plan
from backtesting_service.backtest.sweep import combinations
from backtesting_service.bar_sources import BarSource
from backtesting_service.jobs import NewJob
from backtesting_service.schemas import BacktestCreate, SweepCreate
from backtesting_service.strategies import StrategySource


@dataclass(frozen=True)
class Submission:
    strategies: StrategySource
    bars: BarSource
    chunk_size: int

    async def backtest(self, user_id: str, request: BacktestCreate) -> NewJob:
        graph, plan = await self._plan(user_id, request)
        await self._check_range(user_id, request)
        return self._job(user_id, "backtest", request, plan, {"graph": graph})

    async def sweep(self, user_id: str, request: SweepCreate) -> NewJob:
        graph, plan = await self._plan(user_id, request)
        spec = request.sweep_spec()
        count = len(combinations(plan, spec.search))
        if count == 0:
            raise BacktestInvalid(
                "the search has no combination to run",
                errors=[{"loc": ["body", "search"], "code": "empty_search"}],
            )
        await self._check_range(user_id, request)
        size = self.chunk_size
        chunks = tuple(
            (k * size, min((k + 1) * size, count)) for k in range(math.ceil(count / size))
        )
        return self._job(
            user_id,
            "sweep",
            request,
            plan,
            {"graph": graph, "sweep": spec.model_dump(mode="json")},
            combinations=count,
            chunks=chunks,
        )

    async def _plan(self, user_id: str, request: BacktestCreate) -> tuple[dict[str, Any], Plan]:
        plan: Plan | None = None
        if request.graph is not None:
            graph = request.graph
        else:
            assert request.strategy_id is not None and request.version is not None
            saved = await self.strategies.version(user_id, request.strategy_id, request.version)
            graph, plan = saved.graph, saved.plan
        # GraphInvalid: 422 listing every problem. A stored version arrives compiled.
        plan = plan or compile_graph(graph)
        if request.params:
            plan = plan.with_params(request.params)
        check_plan(plan, request.config)
        return graph, plan

    async def _check_range(self, user_id: str, request: BacktestCreate) -> None:
        first = await self.bars.bars(
            user_id, request.symbol, request.timeframe, request.start, request.end, limit=1
        )
        if len(first) == 0:
            raise BacktestInvalid(
                f"no {request.timeframe} bars of {request.symbol} between "
                f"{request.start.isoformat()} and {request.end.isoformat()}",
                errors=[
                    {
                        "loc": ["body", "start"],
                        "code": "no_data",
                        "message": "the range holds no bars",
                    }
                ],
            )

    def _job(
        self,
        user_id: str,
        kind: str,
        request: BacktestCreate,
        plan: Plan,
        spec: dict[str, Any],
        *,
        combinations: int = 1,
        chunks: tuple[tuple[int, int], ...] = ((0, 0),),
    ) -> NewJob:
        return NewJob(
            user_id=user_id,
            kind=kind,
            strategy_id=request.strategy_id,
            strategy_version=request.version,
            plan_id=plan.plan_id,
            symbol=request.symbol,
            timeframe=request.timeframe,
            start=request.start,
            end=request.end,
            config=request.config.model_copy(update={"timeframe": request.timeframe}),
            spec={**spec, "params": request.params, "plan": plan.to_bytes().decode()},
            combinations=combinations,
            chunks=chunks,
        )
