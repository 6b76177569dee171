"""Sweeps: combinations and their limits, shared evaluation, chunking, walk-forward."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from algotrade.engine import compile_graph
from backtesting_service.backtest import BacktestConfig, BacktestInvalid, run_backtest
from backtesting_service.backtest.sweep import (
    MAX_COMBINATIONS,
    SearchSpace,
    SharedEvaluator,
    SweepSpec,
    ValueRange,
    WalkForward,
    combinations,
    run_sweep,
    sort_key,
    walk_forward_report,
)


@pytest.fixture
def plan(sma_graph: Any) -> Any:
    return compile_graph(sma_graph(10, 30))


def test_grid_enumerates_every_combination_by_index(plan: Any) -> None:
    space = SearchSpace(parameters={"fast": [5, 10], "slow": ValueRange(min=20, max=60, step=20)})
    combos = combinations(plan, space)
    assert len(combos) == 6
    assert [combos[i] for i in range(6)] == [
        {"fast": 5, "slow": 20},
        {"fast": 5, "slow": 40},
        {"fast": 5, "slow": 60},
        {"fast": 10, "slow": 20},
        {"fast": 10, "slow": 40},
        {"fast": 10, "slow": 60},
    ]
    assert combos.slice(4, 100) == [(4, combos[4]), (5, combos[5])]


def test_an_empty_search_spans_every_tunable_with_a_step(sma_graph: Any) -> None:
    graph = sma_graph()
    graph["parameters"] = {
        "fast": {"default": 10, "min": 5, "max": 15, "step": 5},
        "slow": {"default": 30, "min": 20, "max": 40, "step": 10},
    }
    combos = combinations(compile_graph(graph), SearchSpace())
    assert len(combos) == 9
    assert combos[0] == {"fast": 5, "slow": 20}
    assert combos[8] == {"fast": 15, "slow": 40}


def test_random_search_is_reproducible_and_distinct(plan: Any) -> None:
    space = SearchSpace(method="random", samples=50, seed=7)
    first = combinations(plan, space)
    again = combinations(plan, space)
    rows = [tuple(first[i].values()) for i in range(len(first))]
    assert len(first) == 50 and len(set(rows)) == 50
    assert rows == [tuple(again[i].values()) for i in range(len(again))]
    assert all(2 <= f <= 100 and 5 <= s <= 300 for f, s in rows)


def test_more_than_ten_thousand_combinations_is_refused_before_expanding(plan: Any) -> None:
    space = SearchSpace(parameters={"fast": ValueRange(min=2, max=100, step=1e-5)})
    with pytest.raises(BacktestInvalid, match="9,800,001 combinations") as caught:
        combinations(plan, space)
    assert caught.value.errors[0]["code"] == "too_many_combinations"
    huge = SearchSpace(
        parameters={"fast": ValueRange(step=1), "slow": ValueRange(min=5, max=10_000_005)}
    )
    with pytest.raises(BacktestInvalid, match="at most 10,000"):
        combinations(plan, huge)
    with pytest.raises(BacktestInvalid, match="10,001 samples"):
        combinations(plan, SearchSpace(method="random", samples=MAX_COMBINATIONS + 1))


def test_values_outside_a_declared_range_are_refused(plan: Any) -> None:
    with pytest.raises(BacktestInvalid) as caught:
        combinations(plan, SearchSpace(parameters={"fast": [5, 500]}))
    error = caught.value.errors[0]
    assert error["loc"] == ["search", "parameters", "fast"]
    assert error["code"] == "value_out_of_range"
    assert "fast" in error["message"]
    with pytest.raises(BacktestInvalid, match="whole number"):
        combinations(plan, SearchSpace(parameters={"fast": [5.5]}))
    with pytest.raises(BacktestInvalid, match="not a parameter"):
        combinations(plan, SearchSpace(parameters={"nope": [1]}))


def test_sweep_spec_checks_its_metric() -> None:
    with pytest.raises(ValueError, match="metric must be one of"):
        SweepSpec(metric="luck")


def test_shared_evaluation_equals_evaluating_each_plan(plan: Any, walk: Any) -> None:
    bars = walk(3_000)
    plans = [plan.with_params({"fast": f, "slow": s}) for f in (5, 10) for s in (20, 40)]
    plans.append(plan.with_params({"fast": 5, "slow": 20}))  # a repeat shares everything
    for position, outputs in SharedEvaluator(bars).evaluate_all(plans):
        expected = plans[position].evaluate(bars)
        assert outputs.keys() == expected.keys()
        for key, array in expected.items():
            np.testing.assert_array_equal(outputs[key], array, err_msg=key)


def test_sweep_metrics_equal_single_backtests(plan: Any, walk: Any) -> None:
    bars = walk(5_000)
    config = BacktestConfig(fee_bps=2)
    combos = combinations(plan, SearchSpace(parameters={"fast": [5, 8], "slow": [20, 35]}))
    results = run_sweep(plan, bars, config, combos.slice(0, len(combos)))
    assert [r.index for r in results] == [0, 1, 2, 3]
    for result in results:
        single = run_backtest(plan.with_params(result.params), bars, config)
        assert result.metrics == single.metrics


def test_chunks_of_a_sweep_give_the_same_results_as_the_whole(plan: Any, walk: Any) -> None:
    bars = walk(2_000)
    combos = combinations(plan, SearchSpace(parameters={"fast": [4, 6, 9], "slow": [20, 30]}))
    whole = run_sweep(plan, bars, BacktestConfig(), combos.slice(0, 6))
    parts = [
        *run_sweep(plan, bars, BacktestConfig(), combos.slice(4, 6)),
        *run_sweep(plan, bars, BacktestConfig(), combos.slice(0, 4)),
    ]
    by_index = {r.index: r for r in parts}
    assert all(by_index[r.index].metrics == r.metrics for r in whole)


def test_walk_forward_picks_the_best_on_train_and_reports_it_on_test(plan: Any, walk: Any) -> None:
    bars = walk(3_000)
    spec = WalkForward(train_bars=1_000, test_bars=500)
    assert spec.windows(3_000) == [
        ((0, 1_000), (1_000, 1_500)),
        ((500, 1_500), (1_500, 2_000)),
        ((1_000, 2_000), (2_000, 2_500)),
        ((1_500, 2_500), (2_500, 3_000)),
    ]
    combos = combinations(plan, SearchSpace(parameters={"fast": [5, 10, 15], "slow": [30]}))
    config = BacktestConfig()
    results = run_sweep(plan, bars, config, combos.slice(0, 3), walk_forward=spec)
    rows = [r.as_dict("sharpe") for r in results]
    report = walk_forward_report(rows, "sharpe", spec, len(bars))
    assert len(report["folds"]) == 4
    for k, fold in enumerate(report["folds"]):
        best = fold["best"]
        train_values = [row["folds"][k]["train"] for row in rows]
        assert best["train"] == max(v for v in train_values if v is not None)
        # The reported test metrics are that combination's run on the test window alone.
        start, end = fold["test"]
        single = run_backtest(plan.with_params(best["params"]), bars, config, window=(start, end))
        assert best["test"] == single.metrics.as_dict()
    assert report["out_of_sample_return"] is not None


def test_walk_forward_on_too_few_bars_is_refused(plan: Any, walk: Any) -> None:
    spec = WalkForward(train_bars=1_000, test_bars=500)
    with pytest.raises(BacktestInvalid, match="at least 1500 bars"):
        run_sweep(plan, walk(1_200), BacktestConfig(), [(0, {})], walk_forward=spec)


def test_ranking_puts_the_best_first_and_nulls_last() -> None:
    rows = [
        {"index": 0, "metrics": {"sharpe": 0.5, "max_drawdown": 0.3}},
        {"index": 1, "metrics": {"sharpe": None, "max_drawdown": 0.1}},
        {"index": 2, "metrics": {"sharpe": 1.5, "max_drawdown": 0.2}},
    ]
    assert [r["index"] for r in sorted(rows, key=sort_key("sharpe"))] == [2, 0, 1]
    assert [r["index"] for r in sorted(rows, key=sort_key("max_drawdown"))] == [1, 2, 0]


def test_sweep_spec_round_trips_as_json() -> None:
    spec = SweepSpec(
        search=SearchSpace(method="random", samples=10, parameters={"fast": ValueRange(min=3)}),
        metric="calmar",
        walk_forward=WalkForward(train_bars=100, test_bars=20),
    )
    assert SweepSpec.model_validate_json(spec.model_dump_json()) == spec
