"""`BacktestResult`, `Trades` and `Metrics` as pandas objects, for research in notebooks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from algotrade.engine import Bars, compile_graph
from backtesting_service.backtest import EXIT_REASONS, BacktestConfig, BacktestResult, run_backtest

CAPITAL = 50_000.0
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def result(spy_daily: Bars, sma_graph: Any) -> BacktestResult:
    stop = {"id": "stop", "type": "stop_loss", "params": {"mode": "percent", "percent": 3}}
    graph = sma_graph(10, 30, short=True, risk=[stop])
    config = BacktestConfig(initial_capital=CAPITAL, fee_bps=5, slippage_bps=2)
    return run_backtest(compile_graph(graph), spy_daily, config)


def test_equity_curve_is_indexed_by_utc_bar_time(result: BacktestResult, spy_daily: Bars) -> None:
    frame = result.to_pandas()
    pd.testing.assert_index_equal(frame.index, spy_daily.to_pandas().index)
    assert str(frame.index.tz) == "UTC" and frame.index.name == "ts"
    assert list(frame.columns) == ["equity", "position", "drawdown"]
    assert (frame.dtypes == np.float64).all()
    np.testing.assert_array_equal(frame["equity"].to_numpy(), result.equity)
    # Drawdown recomputed with pandas: the initial capital is the first peak.
    peak = frame["equity"].cummax().clip(lower=CAPITAL)
    pd.testing.assert_series_equal(
        frame["drawdown"], 1 - frame["equity"] / peak, check_names=False, rtol=1e-12
    )
    assert frame["position"].ne(0).any() and frame["position"].lt(0).any()


def test_trades_frame_has_proper_dtypes_and_agrees_with_the_bars(
    result: BacktestResult, spy_daily: Bars
) -> None:
    trades = result.trades.to_pandas()
    assert len(trades) == len(result.trades) > 10
    assert trades.index.name == "trade" and trades.index.equals(pd.RangeIndex(len(trades)))
    assert str(trades["entry_time"].dtype) == "datetime64[ms, UTC]"
    assert str(trades["exit_time"].dtype) == "datetime64[ms, UTC]"
    assert list(trades["side"].cat.categories) == ["long", "short"]
    assert list(trades["exit_reason"].cat.categories) == list(EXIT_REASONS)
    for column in ("quantity", "entry_price", "exit_price", "fees", "pnl", "return_pct"):
        assert trades[column].dtype == np.float64, column
    for column in ("entry_index", "exit_index", "bars_held"):
        assert trades[column].dtype == np.int64, column
    assert trades["is_open"].dtype == np.bool_

    times = spy_daily.to_pandas().index
    assert (trades["entry_time"].to_numpy() == times[trades["entry_index"]].to_numpy()).all()
    assert (trades["exit_time"] >= trades["entry_time"]).all()
    assert set(trades["side"]) == {"long", "short"}
    assert {"signal", "stop_loss"} <= set(trades["exit_reason"])
    # The same rows the service stores as Parquet, read back through Arrow.
    stored = result.trades_table().to_pandas()
    for column in ("quantity", "entry_price", "pnl", "bars_held", "is_open"):
        np.testing.assert_array_equal(trades[column].to_numpy(), stored[column].to_numpy())
    assert (trades["side"].astype(str) == stored["side"]).all()
    assert (trades["exit_reason"].astype(str) == stored["exit_reason"]).all()
    # Every trade's net P&L adds up to the equity gained (open trades marked to the close).
    final = result.to_pandas()["equity"].iloc[-1]
    assert trades["pnl"].sum() == pytest.approx(final - CAPITAL, rel=1e-9)


def test_metrics_series_is_numeric_and_matches_the_curve(result: BacktestResult) -> None:
    metrics = result.metrics.to_pandas()
    assert metrics.dtype == np.float64 and metrics.name == "metrics"
    assert list(metrics.index) == list(result.metrics.as_dict())
    equity = result.to_pandas()["equity"]
    assert metrics["total_return"] == pytest.approx(equity.iloc[-1] / CAPITAL - 1, rel=1e-12)
    assert metrics["max_drawdown"] == pytest.approx(result.to_pandas()["drawdown"].max())
    closed = result.trades.to_pandas().query("not is_open")
    assert metrics["trade_count"] == len(closed)
    assert metrics["win_rate"] == pytest.approx((closed["pnl"] > 0).mean())


def test_a_run_without_trades_gives_empty_frames_of_the_same_dtypes(
    spy_daily: Bars, sma_graph: Any
) -> None:
    quiet = run_backtest(
        compile_graph(sma_graph(10, 30)), spy_daily, BacktestConfig(), window=(0, 5)
    )
    trades = quiet.trades.to_pandas()
    assert trades.empty and str(trades["entry_time"].dtype) == "datetime64[ms, UTC]"
    assert trades["side"].dtype == "category" and trades["pnl"].dtype == np.float64
    assert len(quiet.to_pandas()) == 5
    assert np.isnan(quiet.metrics.to_pandas()["win_rate"])


def test_pandas_is_imported_only_when_asked_for() -> None:
    code = (
        "import sys\n"
        "import backtesting_service.backtest, algotrade.engine, algotrade.metrics\n"
        "assert 'pandas' not in sys.modules, 'pandas imported at module load'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_documented_example_runs(
    monkeypatch: pytest.MonkeyPatch, spy_daily: Bars, sma_graph: Any
) -> None:
    guide = (ROOT / "docs" / "backtesting.md").read_text()
    section = guide.split("\n### Results as pandas\n", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert block is not None
    monkeypatch.chdir(ROOT)  # the example reads data/spy-1d.csv
    scope: dict[str, Any] = {}
    exec(block.group(1), scope)
    expected = run_backtest(compile_graph(sma_graph(10, 30)), spy_daily, BacktestConfig(fee_bps=5))
    pd.testing.assert_frame_equal(scope["curve"], expected.to_pandas())
    assert scope["metrics"]["trade_count"] == expected.metrics.trade_count
    assert scope["yearly"].index.year[-1] == scope["curve"].index.year[-1]
