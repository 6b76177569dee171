"""Execution semantics: NaN handling, division by zero, bar-shift nodes (see also test_parity)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import talib

from algotrade.engine import Bars, compile_graph

Graph = dict[str, Any]


def _bars(close: list[float], volume: list[float] | None = None) -> Bars:
    data = np.array(close, dtype=np.float64)
    return Bars.from_arrays(
        open=data, high=data + 1, low=data - 1, close=data, volume=volume or [1.0] * len(close)
    )


def test_indicators_skip_nan_bars_and_resume_with_the_last_valid_values(
    make_graph: Callable[..., Graph],
) -> None:
    graph = make_graph(
        [
            {"id": "c", "type": "price"},
            {"id": "avg", "type": "sma", "params": {"period": 3}},
            {"id": "ema", "type": "ema", "params": {"period": 3}},
        ],
        [("c.out", "avg.in"), ("c.out", "ema.in")],
    )
    close = [1.0, 2.0, 3.0, np.nan, 4.0, 5.0, 6.0]
    out = compile_graph(graph).evaluate(_bars(close))
    avg = out["avg.out"]
    assert np.isnan(avg[3])
    np.testing.assert_allclose(avg[[2, 4, 5, 6]], [2.0, 3.0, 4.0, 5.0])
    valid = np.array([c for c in close if not np.isnan(c)])
    np.testing.assert_allclose(out["ema.out"][[2, 4, 5, 6]], talib.EMA(valid, 3)[2:])


def test_elementwise_nodes_propagate_nan_and_comparisons_with_nan_are_false(
    make_graph: Callable[..., Graph],
) -> None:
    graph = make_graph(
        [
            {"id": "c", "type": "price"},
            {"id": "one", "type": "constant", "params": {"value": 1.0}},
            {"id": "sum", "type": "add"},
            {"id": "big", "type": "gt"},
            {"id": "small", "type": "lte"},
            {"id": "low", "type": "min"},
        ],
        [
            ("c.out", "sum.a"),
            ("one.out", "sum.b"),
            ("c.out", "big.a"),
            ("one.out", "big.b"),
            ("c.out", "small.a"),
            ("one.out", "small.b"),
            ("c.out", "low.a"),
            ("one.out", "low.b"),
        ],
    )
    out = compile_graph(graph).evaluate(_bars([3.0, np.nan, 0.5]))
    np.testing.assert_array_equal(out["sum.out"], [4.0, np.nan, 1.5])
    np.testing.assert_array_equal(out["big.out"], [True, False, False])
    np.testing.assert_array_equal(out["small.out"], [False, False, True])
    np.testing.assert_array_equal(out["low.out"], [1.0, np.nan, 0.5])


def test_division_by_zero_gives_nan_in_both_executors(make_graph: Callable[..., Graph]) -> None:
    graph = make_graph(
        [
            {"id": "c", "type": "price"},
            {"id": "zero", "type": "constant", "params": {"value": 0.0}},
            {"id": "ratio", "type": "div"},
            {"id": "pct", "type": "pct_change"},
        ],
        [("c.out", "ratio.a"), ("zero.out", "ratio.b"), ("c.out", "pct.in")],
    )
    plan = compile_graph(graph)
    bars = _bars([0.0, 2.0, 3.0])
    out = plan.evaluate(bars)
    assert np.isnan(out["ratio.out"]).all()
    np.testing.assert_array_equal(out["pct.out"], [np.nan, np.nan, 0.5])
    rows = [plan.stream().update(row) for row in bars.rows()]
    assert np.isnan(rows[1]["ratio.out"])


def test_bar_shift_nodes_count_bars_and_cross_looks_one_bar_back(
    make_graph: Callable[..., Graph],
) -> None:
    graph = make_graph(
        [
            {"id": "c", "type": "price"},
            {"id": "prev", "type": "lag", "params": {"n": 2}},
            {"id": "diff", "type": "change", "params": {"n": 1}},
            {"id": "mid", "type": "constant", "params": {"value": 2.5}},
            {"id": "up", "type": "cross_above"},
            {"id": "down", "type": "cross_below"},
        ],
        [
            ("c.out", "prev.in"),
            ("c.out", "diff.in"),
            ("c.out", "up.a"),
            ("mid.out", "up.b"),
            ("c.out", "down.a"),
            ("mid.out", "down.b"),
        ],
    )
    out = compile_graph(graph).evaluate(_bars([1.0, 2.0, np.nan, 3.0, 2.0, 4.0]))
    np.testing.assert_array_equal(out["prev.out"], [np.nan, np.nan, 1.0, 2.0, np.nan, 3.0])
    np.testing.assert_array_equal(out["diff.out"], [np.nan, 1.0, np.nan, np.nan, -1.0, 2.0])
    np.testing.assert_array_equal(out["up.out"], [False, False, False, False, False, True])
    np.testing.assert_array_equal(out["down.out"], [False, False, False, False, True, False])


def test_vwap_is_nan_for_a_window_without_volume(make_graph: Callable[..., Graph]) -> None:
    graph = make_graph([{"id": "vw", "type": "vwap", "params": {"period": 2}}], [])
    volume = [5.0, 1.0, 0.0, 0.0, 2.0]
    out = compile_graph(graph).evaluate(_bars([10.0, 12.0, 14.0, 16.0, 18.0], volume))["vw.out"]
    np.testing.assert_allclose(out, [np.nan, (10 * 5 + 12) / 6, 12.0, np.nan, 18.0])
