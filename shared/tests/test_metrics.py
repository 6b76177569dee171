"""`algotrade.metrics`: hand-computed values on small series (vectorbt parity of a whole
backtest is in backtesting-service/tests/backtest/test_metrics_vectorbt.py)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from algotrade.metrics import compute_metrics, periods_per_year

DATA = Path(__file__).resolve().parents[2] / "data"


def metrics_of(
    equity: list[float],
    *,
    pnl: list[float] = (),  # type: ignore[assignment]
    position: list[float] | None = None,
    close: list[float] | None = None,
    periods: float = 252.0,
    notional: float = 0.0,
) -> dict[str, float | int | None]:
    values = np.array(equity, dtype=np.float64)
    return compute_metrics(
        values,
        initial_capital=100.0,
        periods=periods,
        closed_pnl=np.array(pnl, dtype=np.float64),
        open_trades=0,
        traded_notional=notional,
        position=np.array(position if position is not None else [0.0] * len(equity)),
        close=np.array(close if close is not None else [1.0] * len(equity)),
    ).as_dict()


def test_return_metrics_by_hand() -> None:
    equity = [110.0, 99.0, 108.9, 130.68]
    m = metrics_of(equity, periods=4.0)  # four bars = one year
    returns = [0.10, -0.10, 0.10, 0.20]
    assert m["total_return"] == pytest.approx(0.3068)
    assert m["cagr"] == pytest.approx(0.3068)  # exactly one year
    mean, std = statistics.mean(returns), statistics.stdev(returns)
    assert m["volatility"] == pytest.approx(std * 2)
    assert m["sharpe"] == pytest.approx(mean / std * 2)
    downside = math.sqrt(0.01 / 4) * 2
    assert m["sortino"] == pytest.approx(mean * 4 / downside)
    # Peak 110 -> 99 is the only drawdown: 10%, two bars under water (99 and 108.9).
    assert m["max_drawdown"] == pytest.approx(0.10)
    assert m["max_drawdown_duration"] == 2
    assert m["calmar"] == pytest.approx(0.3068 / 0.10)
    assert m["final_equity"] == 130.68


def test_cagr_annualises_by_bar_count() -> None:
    m = metrics_of([105.0, 110.25], periods=1.0)  # two bars, one per year
    assert m["cagr"] == pytest.approx(0.05)


def test_drawdown_counts_the_initial_capital_as_a_peak_and_unrecovered_time() -> None:
    m = metrics_of([90.0, 95.0, 80.0, 85.0])
    assert m["max_drawdown"] == pytest.approx(0.20)
    assert m["max_drawdown_duration"] == 4


def test_trade_metrics_by_hand() -> None:
    m = metrics_of([100.0] * 4, pnl=[30.0, -10.0, 20.0, -20.0])
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(50 / 30)
    assert m["expectancy"] == pytest.approx(5.0)
    assert m["avg_win"] == pytest.approx(25.0)
    assert m["avg_loss"] == pytest.approx(-15.0)
    assert m["trade_count"] == 4


def test_exposure_turnover_and_benchmark_by_hand() -> None:
    m = metrics_of(
        [100.0, 102.0, 98.0, 100.0],
        position=[0.0, 2.0, 2.0, 0.0],
        close=[10.0, 11.0, float("nan"), 12.5],
        notional=200.0,
    )
    assert m["exposure"] == 0.5
    assert m["turnover"] == pytest.approx(200.0 / 100.0)
    assert m["benchmark_return"] == pytest.approx(0.25)


def test_undefined_metrics_are_null() -> None:
    m = metrics_of([100.0, 100.0, 100.0])
    assert m["sharpe"] is None and m["sortino"] is None and m["calmar"] is None
    assert m["win_rate"] is None and m["profit_factor"] is None
    only_wins = metrics_of([100.0, 100.0], pnl=[1.0, 2.0])
    assert only_wins["profit_factor"] is None  # infinite
    assert only_wins["win_rate"] == 1.0


@pytest.mark.parametrize(
    ("timeframe", "calendar", "expected"),
    [
        ("1d", "xnys", 252),
        ("1h", "xnys", 252 * 7),
        ("1m", "xnys", 252 * 390),
        ("4h", "xnys", 252 * 2),
        ("1d", "24x7", 365),
        ("4h", "24x7", 365 * 6),
        ("1m", "24x7", 365 * 24 * 60),
    ],
)
def test_annualisation_follows_timeframe_and_calendar(
    timeframe: str, calendar: str, expected: float
) -> None:
    assert periods_per_year(timeframe, calendar) == expected
