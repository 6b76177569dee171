"""Indicator values against TA-Lib on the real bars in data/ (after warm-up).

VWAP and Donchian channels are not in TA-Lib; they are checked against a plain NumPy
reference (sliding windows) instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import talib
from numpy.lib.stride_tricks import sliding_window_view

from algotrade.engine import Bars, compile_graph

DATASETS = ("spy-1d", "spy-1h", "btc-usd-4h")

Reference = Callable[[Bars], Any]

# (case id, node under test (id "ind"), input wiring, {port: reference})
CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]], dict[str, Reference]]] = [
    ("sma", {"type": "sma", "params": {"period": 20}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.SMA(b.close, 20)}),
    ("ema", {"type": "ema", "params": {"period": 20}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.EMA(b.close, 20)}),
    ("ema-2", {"type": "ema", "params": {"period": 2}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.EMA(b.close, 2)}),
    ("wma", {"type": "wma", "params": {"period": 20}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.WMA(b.close, 20)}),
    ("dema", {"type": "dema", "params": {"period": 10}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.DEMA(b.close, 10)}),
    ("tema", {"type": "tema", "params": {"period": 10}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.TEMA(b.close, 10)}),
    ("rsi", {"type": "rsi", "params": {"period": 14}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.RSI(b.close, 14)}),
    ("rsi-2", {"type": "rsi", "params": {"period": 2}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.RSI(b.close, 2)}),
    ("macd", {"type": "macd"}, [("c.out", "ind.in")],
     {port: (lambda b, i=i: talib.MACD(b.close, 12, 26, 9)[i])
      for i, port in enumerate(("macd", "signal", "hist"))}),
    ("macd-swapped", {"type": "macd", "params": {"fast": 26, "slow": 12, "signal": 1}},
     [("c.out", "ind.in")],
     {port: (lambda b, i=i: talib.MACD(b.close, 26, 12, 1)[i])
      for i, port in enumerate(("macd", "signal", "hist"))}),
    ("bbands", {"type": "bbands", "params": {"period": 20, "dev_up": 2.0, "dev_down": 1.5}},
     [("c.out", "ind.in")],
     {port: (lambda b, i=i: talib.BBANDS(b.close, 20, 2.0, 1.5)[i])
      for i, port in enumerate(("upper", "middle", "lower"))}),
    ("atr", {"type": "atr", "params": {"period": 14}}, [],
     {"out": lambda b: talib.ATR(b.high, b.low, b.close, 14)}),
    ("atr-1", {"type": "atr", "params": {"period": 1}}, [],
     {"out": lambda b: talib.ATR(b.high, b.low, b.close, 1)}),
    ("stoch", {"type": "stoch",
               "params": {"fastk_period": 14, "slowk_period": 3, "slowd_period": 3}}, [],
     {"k": lambda b: talib.STOCH(b.high, b.low, b.close, 14, 3, 0, 3, 0)[0],
      "d": lambda b: talib.STOCH(b.high, b.low, b.close, 14, 3, 0, 3, 0)[1]}),
    ("stoch-fast", {"type": "stoch",
                    "params": {"fastk_period": 5, "slowk_period": 1, "slowd_period": 2}}, [],
     {"k": lambda b: talib.STOCH(b.high, b.low, b.close, 5, 1, 0, 2, 0)[0],
      "d": lambda b: talib.STOCH(b.high, b.low, b.close, 5, 1, 0, 2, 0)[1]}),
    ("roc", {"type": "roc", "params": {"period": 10}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.ROC(b.close, 10)}),
    ("mom", {"type": "mom", "params": {"period": 10}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.MOM(b.close, 10)}),
    ("stddev", {"type": "stddev", "params": {"period": 20, "nbdev": 1.5}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.STDDEV(b.close, 20, 1.5)}),
    ("cci", {"type": "cci", "params": {"period": 14}}, [],
     {"out": lambda b: talib.CCI(b.high, b.low, b.close, 14)}),
    ("willr", {"type": "willr", "params": {"period": 14}}, [],
     {"out": lambda b: talib.WILLR(b.high, b.low, b.close, 14)}),
    ("adx", {"type": "adx", "params": {"period": 14}}, [],
     {"out": lambda b: talib.ADX(b.high, b.low, b.close, 14)}),
    ("obv", {"type": "obv"}, [], {"out": lambda b: talib.OBV(b.close, b.volume)}),
    ("highest", {"type": "highest", "params": {"period": 20}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.MAX(b.close, 20)}),
    ("lowest", {"type": "lowest", "params": {"period": 20}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.MIN(b.close, 20)}),
    ("hl2", {"type": "price", "params": {"field": "hl2"}}, [],
     {"out": lambda b: talib.MEDPRICE(b.high, b.low)}),
    ("hlc3", {"type": "price", "params": {"field": "hlc3"}}, [],
     {"out": lambda b: talib.TYPPRICE(b.high, b.low, b.close)}),
    ("ohlc4", {"type": "price", "params": {"field": "ohlc4"}}, [],
     {"out": lambda b: talib.AVGPRICE(b.open, b.high, b.low, b.close)}),
    ("atr-on-wired-inputs", {"type": "atr", "params": {"period": 10}},
     [("c.out", "ind.close"), ("h.out", "ind.high"), ("lo.out", "ind.low")],
     {"out": lambda b: talib.ATR(b.high, b.low, b.close, 10)}),
    ("mfi", {"type": "mfi", "params": {"period": 14}}, [],
     {"out": lambda b: talib.MFI(b.high, b.low, b.close, b.volume, 14)}),
    ("sar", {"type": "sar"}, [], {"out": lambda b: talib.SAR(b.high, b.low, 0.02, 0.2)}),
    ("sar-fast", {"type": "sar", "params": {"acceleration": 0.05, "maximum": 0.1}}, [],
     {"out": lambda b: talib.SAR(b.high, b.low, 0.05, 0.1)}),
    ("aroon", {"type": "aroon", "params": {"period": 14}}, [],
     {"down": lambda b: talib.AROON(b.high, b.low, 14)[0],
      "up": lambda b: talib.AROON(b.high, b.low, 14)[1]}),
    ("aroonosc", {"type": "aroonosc", "params": {"period": 25}}, [],
     {"out": lambda b: talib.AROONOSC(b.high, b.low, 25)}),
    ("trix", {"type": "trix", "params": {"period": 30}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.TRIX(b.close, 30)}),
    ("ultosc", {"type": "ultosc"}, [],
     {"out": lambda b: talib.ULTOSC(b.high, b.low, b.close, 7, 14, 28)}),
    ("ultosc-unsorted", {"type": "ultosc", "params": {"period1": 20, "period2": 5, "period3": 10}},
     [], {"out": lambda b: talib.ULTOSC(b.high, b.low, b.close, 20, 5, 10)}),
    ("natr", {"type": "natr", "params": {"period": 14}}, [],
     {"out": lambda b: talib.NATR(b.high, b.low, b.close, 14)}),
    ("ppo", {"type": "ppo"}, [("c.out", "ind.in")],
     {"out": lambda b: talib.PPO(b.close, 12, 26, talib.MA_Type.SMA)}),
    ("ppo-ema-swapped", {"type": "ppo", "params": {"fast": 26, "slow": 12, "ma": "ema"}},
     [("c.out", "ind.in")], {"out": lambda b: talib.PPO(b.close, 26, 12, talib.MA_Type.EMA)}),
    ("stochrsi", {"type": "stochrsi"}, [("c.out", "ind.in")],
     {"k": lambda b: talib.STOCHRSI(b.close, 14, 5, 3, talib.MA_Type.SMA)[0],
      "d": lambda b: talib.STOCHRSI(b.close, 14, 5, 3, talib.MA_Type.SMA)[1]}),
    ("kama", {"type": "kama", "params": {"period": 30}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.KAMA(b.close, 30)}),
    ("kama-10", {"type": "kama", "params": {"period": 10}}, [("c.out", "ind.in")],
     {"out": lambda b: talib.KAMA(b.close, 10)}),
    ("linearreg_slope", {"type": "linearreg_slope", "params": {"period": 14}},
     [("c.out", "ind.in")], {"out": lambda b: talib.LINEARREG_SLOPE(b.close, 14)}),
    # An indicator of an indicator: TA-Lib skips the NaN prefix of its input, and so do we.
    ("ema-of-sma", {"type": "ema", "params": {"period": 20}}, [("s.out", "ind.in")],
     {"out": lambda b: talib.EMA(talib.SMA(b.close, 10), 20)}),
    ("rsi-of-tema", {"type": "rsi", "params": {"period": 9}}, [("t.out", "ind.in")],
     {"out": lambda b: talib.RSI(talib.TEMA(b.close, 5), 9)}),
]  # fmt: skip


def _rolling(values: np.ndarray, period: int, reduce: Callable[..., np.ndarray]) -> np.ndarray:
    out = np.full(len(values), np.nan)
    out[period - 1 :] = reduce(sliding_window_view(values, period), axis=1)
    return out


def _vwap_reference(bars: Bars, period: int) -> np.ndarray:
    typical = (bars.high + bars.low + bars.close) / 3.0
    pv = _rolling(typical * bars.volume, period, np.sum)
    volume = _rolling(bars.volume, period, np.sum)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(volume > 0, pv / volume, np.nan)


NUMPY_CASES: list[tuple[str, dict[str, Any], dict[str, Reference]]] = [
    ("vwap", {"type": "vwap", "params": {"period": 20}},
     {"out": lambda b: _vwap_reference(b, 20)}),
    ("donchian", {"type": "donchian", "params": {"period": 20}},
     {"upper": lambda b: _rolling(b.high, 20, np.max),
      "lower": lambda b: _rolling(b.low, 20, np.min),
      "middle": lambda b: (_rolling(b.high, 20, np.max) + _rolling(b.low, 20, np.min)) / 2}),
]  # fmt: skip

HELPERS = [
    {"id": "c", "type": "price"},
    {"id": "h", "type": "price", "params": {"field": "high"}},
    {"id": "lo", "type": "price", "params": {"field": "low"}},
    {"id": "s", "type": "sma", "params": {"period": 10}},
    {"id": "t", "type": "tema", "params": {"period": 5}},
]
HELPER_EDGES = [("c.out", "s.in"), ("c.out", "t.in")]


def _evaluate(
    make_graph: Callable[..., dict[str, Any]],
    bars: Bars,
    node: dict[str, Any],
    edges: list[tuple[str, str]],
) -> dict[str, np.ndarray]:
    graph = make_graph([*HELPERS, {"id": "ind", **node}], [*HELPER_EDGES, *edges])
    return compile_graph(graph).evaluate(bars)


# TA-Lib's LINEARREG_SLOPE sums raw prices, so near a zero slope it carries an absolute error of
# about 1e-13 of the price level (ours sums deviations from the newest bar, exact when flat).
PRICE_RELATIVE_ATOL = {"linearreg_slope": 1e-13}


def _compare(ours: np.ndarray, reference: np.ndarray, label: str, atol: float = 1e-9) -> None:
    reference = np.asarray(reference, dtype=np.float64)
    assert np.array_equal(np.isnan(ours), np.isnan(reference)), f"{label}: warm-up differs"
    valid = ~np.isnan(reference)
    assert valid.sum() > 1000
    np.testing.assert_allclose(ours[valid], reference[valid], rtol=1e-9, atol=atol, err_msg=label)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize(
    ("node", "edges", "references"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_indicator_matches_talib_on_real_bars(
    load_bars: Callable[[str], Bars],
    make_graph: Callable[..., dict[str, Any]],
    dataset: str,
    node: dict[str, Any],
    edges: list[tuple[str, str]],
    references: dict[str, Reference],
) -> None:
    bars = load_bars(dataset)
    out = _evaluate(make_graph, bars, node, edges)
    relative = PRICE_RELATIVE_ATOL.get(node["type"])
    atol = 1e-9 if relative is None else max(1e-9, relative * float(np.max(bars.close)))
    for port, reference in references.items():
        _compare(out[f"ind.{port}"], reference(bars), f"{dataset} {node['type']}.{port}", atol)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize(
    ("node", "references"), [c[1:] for c in NUMPY_CASES], ids=[c[0] for c in NUMPY_CASES]
)
def test_indicator_without_talib_twin_matches_numpy_reference(
    load_bars: Callable[[str], Bars],
    make_graph: Callable[..., dict[str, Any]],
    dataset: str,
    node: dict[str, Any],
    references: dict[str, Reference],
) -> None:
    bars = load_bars(dataset)
    out = _evaluate(make_graph, bars, node, [])
    for port, reference in references.items():
        _compare(out[f"ind.{port}"], reference(bars), f"{dataset} {node['type']}.{port}")
