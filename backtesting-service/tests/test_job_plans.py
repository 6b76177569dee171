"""A job carries the plan compiled at submission; the worker loads it instead of compiling."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from sqlalchemy import select, update

from algotrade.db import build_engine
from algotrade.engine import Plan, compile_graph
from algotrade_testkit.graphs import sma_cross
from backtesting_service import models, worker
from backtesting_service.backtest import BacktestConfig, run_backtest
from backtesting_service.config import Settings

from .conftest import Service
from .test_worker import spy_bars

PARAMS = {"fast": 12.0, "slow": 40.0}


async def stored_spec(settings: Settings, job_id: str) -> dict[str, Any]:
    engine = build_engine(settings.database_url.get_secret_value())
    try:
        async with engine.connect() as conn:
            spec: dict[str, Any] = await conn.scalar(
                select(models.jobs.c.spec).where(models.jobs.c.id == job_id)
            )
    finally:
        await engine.dispose()
    return spec


def expected_metrics(body: dict[str, Any], bars: Any) -> Any:
    plan = compile_graph(body["graph"]).with_params(PARAMS)
    config = BacktestConfig(initial_capital=100_000, fee_bps=1, timeframe="1d")
    return orjson.loads(orjson.dumps(run_backtest(plan, bars, config).metrics.as_dict()))


async def test_the_worker_runs_the_plan_compiled_at_submission_without_compiling(
    service: Service,
    start_worker: Callable[..., Any],
    request_body: Callable[..., dict[str, Any]],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = request_body(params=PARAMS)
    job = (await service.submit(body)).json()
    spec = await stored_spec(settings, job["id"])
    plan = Plan.from_bytes(spec["plan"].encode())
    assert plan.plan_id == job["plan_id"] and dict(plan.values) == PARAMS

    def no_compiling(graph: Any) -> Plan:
        raise AssertionError("the worker compiled a graph")

    monkeypatch.setattr(worker, "compile_graph", no_compiling)
    async with start_worker():
        done = await service.wait_status(job["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    bars = await spy_bars(body["start"], body["end"])
    assert done["summary"]["metrics"] == expected_metrics(body, bars)


async def test_a_job_stored_without_a_plan_still_runs(
    service: Service,
    start_worker: Callable[..., Any],
    request_body: Callable[..., dict[str, Any]],
    settings: Settings,
) -> None:
    body = request_body(params=PARAMS)
    job = (await service.submit(body)).json()
    engine = build_engine(settings.database_url.get_secret_value())
    try:
        async with engine.begin() as conn:  # as a job submitted before plans were stored
            await conn.execute(
                update(models.jobs)
                .where(models.jobs.c.id == job["id"])
                .values(spec=models.jobs.c.spec.op("-")("plan"))
            )
    finally:
        await engine.dispose()
    assert "plan" not in await stored_spec(settings, job["id"])
    async with start_worker():
        done = await service.wait_status(job["id"], "completed", "failed")
    assert done["status"] == "completed", done["error"]
    bars = await spy_bars(body["start"], body["end"])
    assert done["summary"]["metrics"] == expected_metrics(body, bars)


def test_an_unusable_stored_plan_falls_back_to_compiling_the_graph() -> None:
    graph = sma_cross()
    wanted = compile_graph(graph).with_params(PARAMS)
    other = compile_graph(sma_cross(5, 50)).to_bytes().decode()
    for stored in (None, "not a plan", other, wanted.to_bytes().decode()):
        spec = {"graph": graph, "params": PARAMS, **({"plan": stored} if stored else {})}
        job = SimpleNamespace(id="j", plan_id=wanted.plan_id, spec=spec)
        assert worker.plan_of(job).plan_id == wanted.plan_id  # type: ignore[arg-type]
