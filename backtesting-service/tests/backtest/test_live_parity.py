"""A forward-test session replaying a backtest's bars gives `run_backtest`'s result exactly.

`algotrade.simulation.live.LiveSession` runs the streaming executor and the backtest's own
per-bar fill rule (`fills.step`); here its trades, equity curve, positions and metrics are
compared with the service's `run_backtest` on real data, with the session snapshotted to bytes
and restored at random bars, as after a crash.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from algotrade.engine import Bars, compile_graph
from algotrade.simulation.live import LiveBar, LiveSession
from algotrade_testkit.graphs import twenty_nodes
from backtesting_service.backtest import EXIT_REASONS, BacktestConfig, run_backtest

RISK = [
    {"id": "stop", "type": "stop_loss", "params": {"mode": "atr", "atr_multiple": 2.0}},
    {"id": "target", "type": "take_profit", "params": {"mode": "percent", "percent": 8.0}},
    {"id": "trail", "type": "trailing_stop", "params": {"mode": "percent", "percent": 5.0}},
    {"id": "size", "type": "position_size", "params": {"mode": "risk", "risk_percent": 2.0}},
]


def replay(plan: Any, bars: Bars, config: Any, checkpoints: set[int]) -> dict[str, Any]:
    session = LiveSession.start(plan, config)
    equity, position, closed = [], [], []
    fields = (bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)
    for index, row in enumerate(zip(*(column.tolist() for column in fields), strict=True)):
        if index in checkpoints:
            session = LiveSession.restore(plan, config, session.snapshot())
        outcome = session.apply(LiveBar(*row))
        equity.append(outcome.equity)
        position.append(outcome.position)
        closed += outcome.closed
    return {"session": session, "equity": equity, "position": position, "closed": closed}


@pytest.mark.parametrize(
    ("data", "graph", "config"),
    [
        ("spy", {}, BacktestConfig()),
        ("spy", {"short": True}, BacktestConfig(fee_bps=5.0, fee_fixed=1.0, slippage_bps=2.0)),
        ("spy", {"risk": RISK}, BacktestConfig(fee_bps=5.0, slippage_bps=2.0)),
        ("btc", {"short": True, "risk": RISK}, BacktestConfig(fee_bps=10.0, slippage_bps=5.0)),
        ("btc", "twenty", BacktestConfig(fee_bps=10.0)),
    ],
    ids=["spy-long", "spy-reversal-costs", "spy-risk", "btc-risk-short", "btc-twenty-nodes"],
)
def test_a_replayed_session_equals_run_backtest(
    spy_daily: Bars, btc_4h: Bars, sma_graph: Any, data: str, graph: Any, config: BacktestConfig
) -> None:
    bars = spy_daily if data == "spy" else btc_4h
    plan = compile_graph(twenty_nodes() if graph == "twenty" else sma_graph(10, 30, **graph))
    result = run_backtest(plan, bars, config)
    rng = np.random.default_rng(11)
    got = replay(plan, bars, result.config, set(rng.integers(0, len(bars), 50).tolist()))

    np.testing.assert_array_equal(np.array(got["equity"]), result.equity)
    np.testing.assert_array_equal(np.array(got["position"]), result.position)
    trades = result.trades
    closed = ~trades.is_open
    assert [
        (t.side, t.entry_ts, t.exit_ts, t.quantity, t.entry_price, t.exit_price, t.fees, t.pnl)
        for t in got["closed"]
    ] == list(
        zip(
            np.where(trades.side[closed] > 0, "long", "short").tolist(),
            trades.entry_ts[closed].tolist(),
            trades.exit_ts[closed].tolist(),
            trades.quantity[closed].tolist(),
            trades.entry_price[closed].tolist(),
            trades.exit_price[closed].tolist(),
            trades.fees[closed].tolist(),
            trades.pnl[closed].tolist(),
            strict=True,
        )
    )
    assert [t.exit_reason for t in got["closed"]] == [
        EXIT_REASONS[reason] for reason in trades.reason[closed].tolist()
    ]
    session: LiveSession = got["session"]
    assert session.equity == result.metrics.final_equity == result.equity[-1]
    held = session.open_position
    assert (held is not None) == bool(trades.is_open.any())
    if held is not None:
        assert (held.entry_ts, held.quantity, held.entry_price, held.pnl) == (
            trades.entry_ts[-1],
            trades.quantity[-1],
            trades.entry_price[-1],
            trades.pnl[-1],
        )
    live, backtested = session.metrics().as_dict(), result.metrics.as_dict()
    # Turnover's notional is summed in fill order live, per column by NumPy in the backtest.
    assert live.pop("turnover") == pytest.approx(backtested.pop("turnover"), rel=1e-12)
    assert live == backtested
    assert len(got["closed"]) >= 3
