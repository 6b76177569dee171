"""The CPU-bound part of a job, run in a worker's process pool.

Functions here take and return plain picklable values (plan bytes, bars, JSON), so a pool
process needs nothing from the worker's event loop. An error that retrying cannot fix (bad
input discovered while running) comes back as `JobRejected`; anything else is a crash the
worker retries.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import orjson

from algotrade.engine import Bars, Plan, compile_graph
from algotrade.errors import AlgoTradeError
from algotrade.processes import die_with_parent
from backtesting_service.backtest import BacktestConfig, run_backtest
from backtesting_service.backtest.sweep import Combination, WalkForward, run_sweep
from backtesting_service.results import parquet_bytes


class JobRejected(Exception):
    """The job cannot succeed however often it is retried; the message says why."""


def pool_process_start() -> None:
    """The pool's initializer: die with the worker (no orphan after a ``kill -9``), then
    load the kernels."""
    die_with_parent()
    warm_up()


def pool_ready() -> int:
    """A no-op run in each pool process (after `warm_up`, its initializer): its pid."""
    return os.getpid()


def warm_up() -> None:
    """Load (or compile) the numba kernels once per process, before the first job arrives."""
    graph = {
        "nodes": [
            {"id": "close", "type": "price"},
            {"id": "avg", "type": "sma", "params": {"period": 2}},
            {"id": "up", "type": "cross_above"},
            {"id": "down", "type": "cross_below"},
            {"id": "buy", "type": "enter_long"},
            {"id": "sell", "type": "exit_long"},
        ],
        "edges": [
            {"from": "close.out", "to": "avg.in"},
            {"from": "close.out", "to": "up.a"},
            {"from": "avg.out", "to": "up.b"},
            {"from": "close.out", "to": "down.a"},
            {"from": "avg.out", "to": "down.b"},
            {"from": "up.out", "to": "buy.in"},
            {"from": "down.out", "to": "sell.in"},
        ],
    }
    prices = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    bars = Bars.from_arrays(open=prices, high=prices, low=prices, close=prices, volume=prices)
    plan = compile_graph(graph)
    run_backtest(plan, bars, BacktestConfig())
    run_sweep(plan, bars, BacktestConfig(), [(0, {})])


def run_single(plan_bytes: bytes, bars: Bars, config_json: str) -> tuple[bytes, bytes, bytes]:
    """One backtest: ``(summary JSON, equity Parquet, trades Parquet)``."""
    try:
        result = run_backtest(
            Plan.from_bytes(plan_bytes), bars, BacktestConfig.model_validate_json(config_json)
        )
    except AlgoTradeError as exc:
        raise JobRejected(exc.detail) from None
    summary = result.summary()
    summary["trades"] = len(result.trades)
    return (
        orjson.dumps(summary),
        parquet_bytes(result.equity_table()),
        parquet_bytes(result.trades_table()),
    )


def run_combinations(
    plan_bytes: bytes,
    bars: Bars,
    config_json: str,
    combos: list[tuple[int, Combination]],
    walk_forward_json: str | None,
    metric: str,
) -> list[dict[str, Any]]:
    """A slice of a sweep: one result dict per combination (see `ComboResult.as_dict`)."""
    walk_forward = WalkForward.model_validate_json(walk_forward_json) if walk_forward_json else None
    try:
        results = run_sweep(
            Plan.from_bytes(plan_bytes),
            bars,
            BacktestConfig.model_validate_json(config_json),
            combos,
            walk_forward=walk_forward,
        )
    except AlgoTradeError as exc:
        raise JobRejected(exc.detail) from None
    return [result.as_dict(metric) for result in results]
