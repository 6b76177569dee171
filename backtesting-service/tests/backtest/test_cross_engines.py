"""The engine agrees with two independent engines, backtrader and vectorbt, on real bars.

SMA(10)/SMA(30) crossover on SPY daily bars (data/spy-1d.csv, 5,849 bars): long on the cross
above, flat on the cross below, next-open fills, all-in with whole units. Each library computes
its own moving averages and crossings; only the rules are shared. Trade lists (times, prices,
quantities, P&L) and final equity must agree to 1e-9.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from algotrade.engine import Bars, compile_graph
from backtesting_service.backtest import BacktestConfig, BacktestResult, run_backtest

FAST, SLOW = 10, 30
TOLERANCE = 1e-9


def frame(bars: Bars) -> pd.DataFrame:
    index = pd.to_datetime(bars.ts, unit="ms")
    return pd.DataFrame(
        {
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "volume": bars.volume,
        },
        index=index,
    )


def ours(bars: Bars, sma_graph: Any, config: BacktestConfig) -> BacktestResult:
    return run_backtest(compile_graph(sma_graph(FAST, SLOW)), bars, config)


def our_trades(result: BacktestResult) -> pd.DataFrame:
    t = result.trades
    return pd.DataFrame(
        {
            "entry_time": pd.to_datetime(t.entry_ts, unit="ms"),
            "exit_time": pd.to_datetime(t.exit_ts, unit="ms"),
            "entry_price": t.entry_price,
            "exit_price": t.exit_price,
            "size": t.quantity,
            "pnl": t.pnl,
            "open": t.is_open,
        }
    )


def assert_same_trades(mine: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert len(mine) == len(theirs), (len(mine), len(theirs))
    assert (mine["entry_time"].to_numpy() == theirs["entry_time"].to_numpy()).all()
    closed = ~mine["open"].to_numpy()
    assert (mine["exit_time"].to_numpy()[closed] == theirs["exit_time"].to_numpy()[closed]).all()
    for column in ("entry_price", "size", "pnl"):
        np.testing.assert_allclose(mine[column], theirs[column], rtol=TOLERANCE, atol=0)
    np.testing.assert_allclose(
        mine["exit_price"][closed], theirs["exit_price"][closed], rtol=TOLERANCE, atol=0
    )


# ----------------------------------------------------------------------------- vectorbt


def vectorbt_run(bars: Bars, config: BacktestConfig) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import vectorbt as vbt

    df = frame(bars)
    fast = df["close"].rolling(FAST).mean()
    slow = df["close"].rolling(SLOW).mean()
    above = (fast > slow) & (fast.shift(1) <= slow.shift(1))
    below = (fast < slow) & (fast.shift(1) >= slow.shift(1))
    # A signal on bar t's close executes at bar t+1's open: shift the signals one bar and fill
    # at the open.
    entries = above.shift(1, fill_value=False).astype(bool)
    exits = below.shift(1, fill_value=False).astype(bool)
    return vbt.Portfolio.from_signals(
        df["close"],
        entries,
        exits,
        price=df["open"],
        init_cash=config.initial_capital,
        size=np.inf,
        size_granularity=1.0,
        fees=config.fee_bps / 10_000,
        fixed_fees=config.fee_fixed,
        slippage=config.slippage_bps / 10_000,
        freq="1D",
    )


def vectorbt_trades(pf: Any) -> pd.DataFrame:
    records = pf.trades.records_readable
    return pd.DataFrame(
        {
            "entry_time": pd.to_datetime(records["Entry Timestamp"]),
            "exit_time": pd.to_datetime(records["Exit Timestamp"]),
            "entry_price": records["Avg Entry Price"].to_numpy(),
            "exit_price": records["Avg Exit Price"].to_numpy(),
            "size": records["Size"].to_numpy(),
            "pnl": records["PnL"].to_numpy(),
            "open": (records["Status"] == "Open").to_numpy(),
        }
    )


@pytest.mark.parametrize(
    "costs",
    [
        {},
        {"fee_bps": 5.0, "fee_fixed": 1.0, "slippage_bps": 2.0},
    ],
    ids=["no-costs", "fees-and-slippage"],
)
def test_sma_cross_matches_vectorbt(
    spy_daily: Bars, sma_graph: Any, costs: dict[str, float]
) -> None:
    config = BacktestConfig(initial_capital=100_000, units="whole", **costs)
    result = ours(spy_daily, sma_graph, config)
    pf = vectorbt_run(spy_daily, config)
    assert len(result.trades) > 50
    assert_same_trades(our_trades(result), vectorbt_trades(pf))
    value = pf.value().to_numpy()
    np.testing.assert_allclose(result.equity, value, rtol=TOLERANCE, atol=0)
    assert math.isclose(result.metrics.final_equity, value[-1], rel_tol=TOLERANCE)


# ----------------------------------------------------------------------------- backtrader


def backtrader_run(bars: Bars, config: BacktestConfig) -> tuple[float, pd.DataFrame]:
    import backtrader as bt

    fills: list[dict[str, Any]] = []

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            fast = bt.indicators.SMA(self.data.close, period=FAST)
            slow = bt.indicators.SMA(self.data.close, period=SLOW)
            self.cross = bt.indicators.CrossOver(fast, slow)
            self.decision = 0.0

        def next(self) -> None:
            self.decision = float(self.cross[0])  # decided on this bar's close

        def next_open(self) -> None:
            # cheat-on-open: orders placed here fill at this (the next) bar's open.
            if self.decision > 0 and not self.position:
                price = self.data.open[0]
                cash = self.broker.getcash()
                size = math.floor((cash - config.fee_fixed) / (1 + config.fee_bps / 10_000) / price)
                if size > 0:
                    self.buy(size=size)
            elif self.decision < 0 and self.position:
                self.close()

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                fills.append(
                    {
                        "time": bt.num2date(order.executed.dt),
                        "price": order.executed.price,
                        "size": order.executed.size,
                        "comm": order.executed.comm,
                    }
                )

    cerebro = bt.Cerebro(cheat_on_open=True, stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame(bars)))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(config.initial_capital)
    cerebro.broker.setcommission(commission=config.fee_bps / 10_000)
    cerebro.run()
    last_close = float(bars.close[-1])
    rows = []
    for entry, exit_ in zip(fills[::2], [*fills[1::2], None], strict=False):
        size = entry["size"]
        if exit_ is None:
            pnl = size * (last_close - entry["price"]) - entry["comm"]
            exit_time, exit_price, is_open = pd.NaT, last_close, True
        else:
            pnl = size * (exit_["price"] - entry["price"]) - entry["comm"] - exit_["comm"]
            exit_time, exit_price, is_open = exit_["time"], exit_["price"], False
        rows.append(
            {
                "entry_time": pd.Timestamp(entry["time"]),
                "exit_time": pd.Timestamp(exit_time),
                "entry_price": entry["price"],
                "exit_price": exit_price,
                "size": size,
                "pnl": pnl,
                "open": is_open,
            }
        )
    return cerebro.broker.getvalue(), pd.DataFrame(rows)


@pytest.mark.parametrize("fee_bps", [0.0, 10.0], ids=["no-fees", "10bps"])
def test_sma_cross_matches_backtrader_cheat_on_open(
    spy_daily: Bars, sma_graph: Any, fee_bps: float
) -> None:
    config = BacktestConfig(initial_capital=100_000, units="whole", fee_bps=fee_bps)
    result = ours(spy_daily, sma_graph, config)
    final_value, trades = backtrader_run(spy_daily, config)
    assert len(result.trades) > 50
    assert_same_trades(our_trades(result), trades)
    assert math.isclose(result.metrics.final_equity, final_value, rel_tol=TOLERANCE)
