"""Metrics of a whole backtest agree with vectorbt wherever the definitions match."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from algotrade.engine import Bars, compile_graph
from algotrade_testkit.graphs import sma_cross
from backtesting_service.backtest import BacktestConfig, run_backtest

DATA = Path(__file__).resolve().parents[3] / "data"


def test_metrics_agree_with_vectorbt_where_definitions_match() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vectorbt as vbt

    bars = Bars.from_csv(DATA / "spy-1d.csv")
    result = run_backtest(compile_graph(sma_cross(20, 50)), bars, BacktestConfig(units="whole"))
    m = result.metrics
    index = pd.to_datetime(bars.ts, unit="ms")
    close = pd.Series(bars.close, index=index)
    fast, slow = close.rolling(20).mean(), close.rolling(50).mean()
    entries = ((fast > slow) & (fast.shift(1) <= slow.shift(1))).shift(1, fill_value=False)
    exits = ((fast < slow) & (fast.shift(1) >= slow.shift(1))).shift(1, fill_value=False)
    pf = vbt.Portfolio.from_signals(
        close,
        entries.astype(bool),
        exits.astype(bool),
        price=pd.Series(bars.open, index=index),
        init_cash=100_000.0,
        size=np.inf,
        size_granularity=1.0,
        freq="1D",
    )
    np.testing.assert_allclose(result.equity, pf.value().to_numpy(), rtol=1e-9)
    returns = pf.returns().vbt.returns(freq="1D", year_freq="252 days")
    rel = 1e-9
    assert m.total_return == pytest.approx(pf.total_return(), rel=rel)
    assert m.cagr == pytest.approx(returns.annualized(), rel=rel)
    assert m.volatility == pytest.approx(returns.annualized_volatility(), rel=rel)
    assert m.sharpe == pytest.approx(returns.sharpe_ratio(), rel=rel)
    assert m.sortino == pytest.approx(returns.sortino_ratio(), rel=rel)
    assert m.max_drawdown == pytest.approx(-pf.max_drawdown(), rel=rel)
    assert m.calmar == pytest.approx(returns.calmar_ratio(), rel=rel)
    closed = pf.trades.closed
    assert m.trade_count == closed.count()
    assert m.win_rate == pytest.approx(closed.win_rate(), rel=rel)
    assert m.profit_factor == pytest.approx(closed.profit_factor(), rel=rel)
    assert m.expectancy == pytest.approx(closed.expectancy(), rel=rel)
    assert m.avg_win == pytest.approx(closed.winning.pnl.mean(), rel=rel)
    assert m.avg_loss == pytest.approx(closed.losing.pnl.mean(), rel=rel)
    assert m.benchmark_return == pytest.approx(pf.total_benchmark_return(), rel=rel)
