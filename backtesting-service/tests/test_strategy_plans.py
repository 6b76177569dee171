"""One compilation per strategy version: the backtesting service runs the plan the strategy
service compiled and cached, read from the real strategy service app (in-process, over ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from algotrade.auth import InternalTokens
from algotrade.engine import compile_graph
from algotrade.migrations import upgrade
from algotrade_testkit.graphs import sma_cross
from algotrade_testkit.services import internal_token, serve_in_process
from backtesting_service import submission as submission_module
from backtesting_service.config import Settings
from backtesting_service.schemas import BacktestCreate
from backtesting_service.strategies import HttpStrategySource
from backtesting_service.submission import Submission
from strategy_service.config import Settings as StrategySettings
from strategy_service.main import create_app as strategy_app

from .conftest import csv_bars


@pytest.fixture
async def strategies(
    make_settings: Callable[..., Any], database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    await upgrade(database_url, "strategy_service", "strategy")
    app = strategy_app(make_settings(StrategySettings))
    async with serve_in_process(app, base_url="http://strategy.test") as client:
        yield client


async def compilations(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("strategy_plan_compile_seconds_count")
    )


async def test_a_stored_version_is_compiled_once_however_many_backtests_run_it(
    strategies: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Authorization": f"Bearer {internal_token(settings, 'alice')}"}
    created = await strategies.post(
        "/api/strategies", json={"name": "cross", "graph": sma_cross()}, headers=headers
    )
    assert created.status_code == 201, created.text
    strategy_id = created.json()["id"]
    version_plan_id = created.json()["plan_id"]

    source = HttpStrategySource(
        strategies, "http://strategy.test", InternalTokens(settings, ttl_seconds=60)
    )
    # The backtesting service never compiles a stored version itself.
    monkeypatch.setattr(submission_module, "compile_graph", _refuse_to_compile)
    submitting = Submission(strategies=source, bars=csv_bars(), chunk_size=4)
    request = BacktestCreate(
        strategy_id=strategy_id,
        version=1,
        symbol="SPY",
        timeframe="1d",
        start=datetime(2015, 1, 1, tzinfo=UTC),
        end=datetime(2016, 1, 1, tzinfo=UTC),
    )
    before = await compilations(strategies)
    jobs = [await submitting.backtest("alice", request) for _ in range(5)]
    assert {job.plan_id for job in jobs} == {version_plan_id}
    # At most the one compilation that filled the cache (saving may already have filled it).
    assert await compilations(strategies) - before <= 1

    saved = await source.version("alice", strategy_id, 1)
    assert saved.plan is not None
    assert saved.plan.plan_id == compile_graph(sma_cross()).plan_id == version_plan_id
    assert saved.plan.to_bytes() == compile_graph(sma_cross()).to_bytes()


async def test_another_users_version_is_unknown_with_or_without_the_plan(
    strategies: httpx.AsyncClient, settings: Settings
) -> None:
    alice = {"Authorization": f"Bearer {internal_token(settings, 'alice')}"}
    created = await strategies.post(
        "/api/strategies", json={"name": "cross", "graph": sma_cross()}, headers=alice
    )
    strategy_id = created.json()["id"]
    bob = HttpStrategySource(
        strategies, "http://strategy.test", InternalTokens(settings, ttl_seconds=60)
    )
    from backtesting_service.backtest import BacktestInvalid

    with pytest.raises(BacktestInvalid, match="no version 1"):
        await bob.version("bob", strategy_id, 1)


def _refuse_to_compile(graph: Any) -> Any:
    raise AssertionError("a stored version was compiled again by the backtesting service")
