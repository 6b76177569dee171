"""Indicator-only graphs: validated without an entry signal, evaluated as arrays or a frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
import talib

from algotrade.engine import (
    Bars,
    Evaluation,
    GraphInvalid,
    ProblemCode,
    compile_graph,
    evaluate_graph,
    validate_graph,
)


def indicator_graph() -> dict[str, Any]:
    """Close, its SMA(20), Bollinger bands and whether close is above the SMA: no signal."""
    return {
        "nodes": [
            {"id": "close", "type": "price"},
            {"id": "sma20", "type": "sma", "params": {"period": 20}},
            {"id": "bands", "type": "bbands", "params": {"period": 20}},
            {"id": "above", "type": "gt"},
        ],
        "edges": [
            {"from": "close.out", "to": "sma20.in"},
            {"from": "close.out", "to": "bands.in"},
            {"from": "close.out", "to": "above.a"},
            {"from": "sma20.out", "to": "above.b"},
        ],
    }


def codes(problems: list[Any]) -> list[str]:
    return [p.code.value for p in problems]


def test_a_strategy_still_needs_an_entry_signal() -> None:
    assert codes(validate_graph(indicator_graph())) == ["no_entry_signal"]
    assert codes(validate_graph(indicator_graph(), purpose="strategy")) == ["no_entry_signal"]
    with pytest.raises(GraphInvalid) as caught:
        compile_graph(indicator_graph())
    assert [p.code for p in caught.value.problems] == [ProblemCode.NO_ENTRY_SIGNAL]


def test_an_indicator_graph_needs_no_entry_signal() -> None:
    assert validate_graph(indicator_graph(), purpose="indicators") == []
    plan = compile_graph(indicator_graph(), purpose="indicators")
    assert plan.signals == {} and plan.risk == {}
    assert plan.warmup == 19


def test_every_other_rule_still_applies_to_an_indicator_graph() -> None:
    graph = indicator_graph()
    graph["nodes"] += [
        {"id": "odd", "type": "no_such_node"},
        {"id": "short", "type": "sma", "params": {"period": 1}},
        {"id": "loop_a", "type": "add"},
        {"id": "loop_b", "type": "add"},
        {"id": "wrong", "type": "sma"},
    ]
    graph["edges"] += [
        {"from": "close.out", "to": "short.in"},
        {"from": "loop_a.out", "to": "loop_b.a"},
        {"from": "loop_b.out", "to": "loop_a.a"},
        {"from": "close.out", "to": "loop_a.b"},
        {"from": "close.out", "to": "loop_b.b"},
        {"from": "above.out", "to": "wrong.in"},
    ]
    found = set(codes(validate_graph(graph, purpose="indicators")))
    assert found == {"unknown_node_type", "param_out_of_range", "cycle", "type_mismatch"}
    with pytest.raises(GraphInvalid):
        evaluate_graph(graph, Bars.from_arrays(open=[1], high=[1], low=[1], close=[1], volume=[1]))


def test_an_unknown_purpose_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="purpose"):
        validate_graph(indicator_graph(), purpose="research")  # type: ignore[arg-type]


def test_evaluation_matches_talib_for_every_node(spy_daily: Bars) -> None:
    evaluation = evaluate_graph(indicator_graph(), spy_daily)
    assert list(evaluation) == [
        "close.out",
        "sma20.out",
        "bands.upper",
        "bands.middle",
        "bands.lower",
        "above.out",
    ]
    close = spy_daily.close
    sma = talib.SMA(close, 20)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0)
    np.testing.assert_array_equal(evaluation["close.out"], close)
    np.testing.assert_allclose(evaluation["sma20.out"], sma, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(evaluation["bands.upper"], upper, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(evaluation["bands.middle"], middle, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(evaluation["bands.lower"], lower, rtol=1e-9, equal_nan=True)
    above = evaluation["above.out"]
    assert above.dtype == np.bool_
    np.testing.assert_array_equal(above[19:], close[19:] > sma[19:])
    assert not above[:19].any()
    np.testing.assert_array_equal(evaluation.ts, spy_daily.ts)


def test_to_pandas_is_indexed_by_utc_bar_time_and_matches_a_rolling_mean(
    spy_daily: Bars,
) -> None:
    bars = spy_daily.slice(0, 300)
    frame = evaluate_graph(indicator_graph(), bars).to_pandas()
    prices = bars.to_pandas()
    pd.testing.assert_index_equal(frame.index, prices.index)
    assert str(frame.index.tz) == "UTC" and frame.index[0] == pd.Timestamp(
        int(bars.ts[0]), unit="ms", tz="UTC"
    )
    assert frame["sma20.out"].dtype == np.float64 and frame["above.out"].dtype == np.bool_
    expected = prices["close"].rolling(20).mean()
    pd.testing.assert_series_equal(
        frame["sma20.out"], expected, check_names=False, rtol=1e-12, atol=0
    )
    joined = prices.join(frame)
    assert (joined["above.out"] == (joined["close"] > expected)).all()


def test_outputs_select_ports_or_whole_nodes_in_the_order_given(spy_daily: Bars) -> None:
    bars = spy_daily.slice(0, 100)
    picked = evaluate_graph(indicator_graph(), bars, outputs=["sma20.out", "bands"])
    assert list(picked) == ["sma20.out", "bands.upper", "bands.middle", "bands.lower"]
    assert list(picked.to_pandas().columns) == list(picked)
    assert list(evaluate_graph(indicator_graph(), bars, outputs="close")) == ["close.out"]
    with pytest.raises(ValueError, match=r"'sma50'.*'bands.width'"):
        evaluate_graph(indicator_graph(), bars, outputs=["sma50", "bands.width"])


def test_a_compiled_plan_is_evaluated_as_it_is(spy_daily: Bars, crossover: dict[str, Any]) -> None:
    bars = spy_daily.slice(0, 200)
    plan = compile_graph(crossover)  # a strategy can be charted too
    evaluation = evaluate_graph(plan, bars, outputs=["fast", "golden"])
    assert isinstance(evaluation, Evaluation) and evaluation.plan is plan
    np.testing.assert_allclose(
        evaluation["fast.out"], talib.EMA(bars.close, 12), rtol=1e-9, equal_nan=True
    )
    assert evaluation["golden.out"].dtype == np.bool_
    assert evaluate_graph(crossover, bars).plan == plan  # the same plan id either way
