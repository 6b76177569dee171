"""Flat and near-flat windows at any price level give TA-Lib's answers.

Exchange outages produce bars with open = high = low = close. A window of identical values
has standard deviation, Bollinger width and CCI exactly 0 whatever the price, and windows
that are almost flat keep their digits at tiny (1e-6) and huge (1e6) quotes alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import talib

from algotrade.engine import Bars, compile_graph

LEVELS = (1e-6, 0.1, 1.1, 123.456, 98765.4321, 1e6)


def _bars(close: np.ndarray, spread: float = 0.0) -> Bars:
    return Bars.from_arrays(
        open=close,
        high=close * (1 + spread),
        low=close * (1 - spread),
        close=close,
        volume=np.ones_like(close),
    )


def _evaluate(
    make_graph: Callable[..., dict[str, Any]], node: dict[str, Any], bars: Bars, wired: bool
) -> dict[str, np.ndarray]:
    edges = [("c.out", "n.in")] if wired else []
    plan = compile_graph(make_graph([{"id": "c", "type": "price"}, {"id": "n", **node}], edges))
    return plan.evaluate(bars)


def _near_flat(level: float, noise: float, seed: int) -> np.ndarray:
    """A random walk of relative size ``noise`` around ``level``, with a flat stretch inside."""
    rng = np.random.default_rng(seed)
    close = level * (1 + noise * rng.standard_normal(300).cumsum())
    close[150:200] = close[149]
    return close


@pytest.mark.parametrize("level", LEVELS)
def test_identical_bars_give_zero_spread_at_any_price_level(
    make_graph: Callable[..., dict[str, Any]], level: float
) -> None:
    bars = _bars(np.full(40, level))
    std = _evaluate(make_graph, {"type": "stddev", "params": {"period": 20}}, bars, True)
    bands = _evaluate(make_graph, {"type": "bbands", "params": {"period": 20}}, bars, True)
    cci = _evaluate(make_graph, {"type": "cci", "params": {"period": 14}}, bars, False)
    assert (std["n.out"][19:] == 0.0).all()
    assert (bands["n.upper"][19:] == bands["n.lower"][19:]).all()
    assert (bands["n.upper"][19:] == bands["n.middle"][19:]).all()
    assert (cci["n.out"][13:] == 0.0).all()
    np.testing.assert_array_equal(std["n.out"][19:], talib.STDDEV(bars.close, 20)[19:])
    expected_cci = talib.CCI(bars.high, bars.low, bars.close, 14)
    np.testing.assert_array_equal(cci["n.out"][13:], expected_cci[13:])


@pytest.mark.parametrize("level", LEVELS)
def test_a_flat_stretch_after_volatile_bars_has_zero_spread(
    make_graph: Callable[..., dict[str, Any]], level: float
) -> None:
    """No rounding residue of the volatile bars survives into the flat window."""
    bars = _bars(_near_flat(level, 1e-2, seed=1))
    std = _evaluate(make_graph, {"type": "stddev", "params": {"period": 20}}, bars, True)
    bands = _evaluate(make_graph, {"type": "bbands", "params": {"period": 20}}, bars, True)
    cci = _evaluate(make_graph, {"type": "cci", "params": {"period": 14}}, bars, False)
    assert (std["n.out"][169:200] == 0.0).all()
    assert (bands["n.upper"][169:200] - bands["n.lower"][169:200] == 0.0).all()
    assert (cci["n.out"][163:200] == 0.0).all()
    assert (talib.STDDEV(bars.close, 20)[169:200] == 0.0).all()


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("noise", [1e-12, 1e-9, 1e-3])
def test_near_flat_windows_match_talib_at_any_price_level(
    make_graph: Callable[..., dict[str, Any]], level: float, noise: float
) -> None:
    close = _near_flat(level, noise, seed=2)
    bars = _bars(close, spread=noise)
    std = _evaluate(make_graph, {"type": "stddev", "params": {"period": 20}}, bars, True)
    bands = _evaluate(make_graph, {"type": "bbands", "params": {"period": 20}}, bars, True)
    cci = _evaluate(make_graph, {"type": "cci", "params": {"period": 14}}, bars, False)
    slope = _evaluate(make_graph, {"type": "linearreg_slope", "params": {"period": 14}}, bars, True)
    expected_std = talib.STDDEV(close, 20)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0)
    valid = slice(19, None)
    # TA-Lib's own variance is accurate to ~1e-10 of itself on such windows.
    np.testing.assert_allclose(std["n.out"][valid], expected_std[valid], rtol=1e-9, atol=0)
    np.testing.assert_allclose(
        bands["n.upper"][valid] - bands["n.lower"][valid],
        (upper - lower)[valid],
        rtol=1e-6,
        atol=level * 1e-15,
    )
    np.testing.assert_allclose(bands["n.middle"][valid], middle[valid], rtol=1e-12)
    expected_cci = talib.CCI(bars.high, bars.low, bars.close, 14)
    np.testing.assert_allclose(cci["n.out"][13:], expected_cci[13:], rtol=1e-8, atol=1e-8)
    # TA-Lib sums raw prices: its slope is off by ~1e-13 of the price level (ours is exact
    # on a flat window, as asserted below).
    expected_slope = talib.LINEARREG_SLOPE(close, 14)
    np.testing.assert_allclose(
        slope["n.out"][13:], expected_slope[13:], rtol=1e-6, atol=level * 1e-13
    )
    assert (slope["n.out"][163:200] == 0.0).all()
