"""Backtest against live on real bars: a session that is the backtest's own tail is
``consistent`` (every trade matched, no drift); one that trades differently or ends far
from the backtest is ``diverging`` with the reasons; too little data says so."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from algotrade.engine import compile_graph
from algotrade.metrics import periods_per_year
from algotrade.simulation import BacktestConfig
from algotrade_testkit.graphs import sma_cross
from analytics_service.divergence import MIN_IN_SAMPLE, compare
from analytics_service.runs import RunData, Trades
from backtesting_service.backtest import run_backtest

from .conftest import btc_bars

CAPITAL = 10_000.0


def backtest_run(count: int = 1_200, first: int = 3_000) -> RunData:
    bars = btc_bars(count, first=first)
    config = BacktestConfig(initial_capital=CAPITAL, fee_bps=10, slippage_bps=5, calendar="24x7")
    result = run_backtest(compile_graph(sma_cross(5, 20)), bars, config)
    t = result.trades
    closed = ~t.is_open
    return RunData(
        id="B" * 26,
        kind="backtest",
        user_id="alice",
        status="completed",
        strategy_id="s",
        strategy_version=1,
        plan_id=None,
        symbol="BTC-USD",
        timeframe="4h",
        calendar="24x7",
        capital=CAPITAL,
        periods=periods_per_year("4h", "24x7"),
        ts=result.ts.copy(),
        equity=result.equity.copy(),
        position=result.position,
        trades=Trades(
            side=t.side[closed].astype(np.int8),
            entry_ts=t.entry_ts[closed],
            exit_ts=t.exit_ts[closed],
            entry_price=t.entry_price[closed],
            exit_price=t.exit_price[closed],
            quantity=t.quantity[closed],
            pnl=t.pnl[closed],
        ),
        open_trades=int(t.is_open.sum()),
        traded_notional=0.0,
        expected_points=None,
    )


def tail_session(backtest: RunData, start: int) -> RunData:
    """The backtest's bars from ``start`` as a session with the capital it had there (flat
    at ``start``), and the trades entered from then on."""
    assert backtest.position[start - 1] == 0.0, "start the session while flat"
    capital = float(backtest.equity[start - 1])
    t = backtest.trades
    keep = t.entry_ts >= backtest.ts[start]
    return replace(
        backtest,
        id="S" * 26,
        kind="session",
        capital=capital,
        ts=backtest.ts[start:],
        equity=backtest.equity[start:],
        position=backtest.position[start:],
        trades=Trades(*(getattr(t, f)[keep] for f in Trades.__slots__)),
    )


def flat_start(backtest: RunData, near: int) -> int:
    flat = np.flatnonzero(backtest.position[near:] == 0.0)
    return near + int(flat[0]) + 1


def test_the_backtests_own_tail_is_consistent_trade_for_trade() -> None:
    backtest = backtest_run()
    start = flat_start(backtest, 600)
    session = tail_session(backtest, start)
    divergence = compare(backtest, [session])["divergence"]
    assert divergence["verdict"] == "consistent", divergence["reasons"]
    assert divergence["trade_matches"] == len(session.trades) > 3
    assert divergence["trade_mismatches"] == 0
    assert divergence["return_drift"] == pytest.approx(0.0, abs=1e-12)
    assert divergence["mean_entry_delay_bars"] == 0.0
    assert divergence["mean_price_diff"] == 0.0
    assert divergence["in_sample_bars"] == start


def test_a_session_that_trades_late_and_returns_less_diverges() -> None:
    backtest = backtest_run()
    start = flat_start(backtest, 600)
    session = tail_session(backtest, start)
    step = 4 * 3600 * 1000
    t = session.trades
    late = replace(t, entry_ts=t.entry_ts + 3 * step)  # three bars late: beyond the tolerance
    worse = session.equity * np.linspace(1.0, 0.9, session.equity.shape[0])
    drifted = replace(session, trades=late, equity=worse)
    divergence = compare(backtest, [drifted])["divergence"]
    assert divergence["verdict"] == "diverging"
    assert divergence["trade_matches"] == 0
    assert divergence["trade_mismatches"] == 2 * len(t)
    assert any("no counterpart" in r for r in divergence["reasons"])
    assert any("over the same bars" in r for r in divergence["reasons"])


def test_a_session_beyond_the_backtest_is_judged_by_its_expected_range() -> None:
    backtest = backtest_run()
    cut = 900
    history = replace(
        backtest,
        ts=backtest.ts[:cut],
        equity=backtest.equity[:cut],
        position=backtest.position[:cut],
    )
    session = tail_session(backtest, flat_start(backtest, cut))
    inside = compare(history, [session])["divergence"]
    assert inside["return_drift"] is None  # nothing to compare bar for bar
    low, high = inside["expected_range"]["low"], inside["expected_range"]["high"]
    assert low < 0.0 < high
    live_return = session.equity[-1] / session.capital - 1
    assert inside["verdict"] == ("consistent" if low <= live_return <= high else "diverging")
    crash = replace(session, equity=session.equity * 0.5)
    crashed = compare(history, [crash])["divergence"]
    assert crashed["verdict"] == "diverging"
    assert any("outside the 95% range" in r for r in crashed["reasons"])


def test_too_little_history_is_insufficient_data() -> None:
    backtest = backtest_run(count=400)
    short = replace(
        backtest,
        ts=backtest.ts[: MIN_IN_SAMPLE - 5],
        equity=backtest.equity[: MIN_IN_SAMPLE - 5],
        position=backtest.position[: MIN_IN_SAMPLE - 5],
    )
    session = tail_session(backtest, flat_start(backtest, 100))
    divergence = compare(short, [session])["divergence"]
    assert divergence["verdict"] == "insufficient_data"
    assert compare(backtest, [])["divergence"]["verdict"] == "insufficient_data"
