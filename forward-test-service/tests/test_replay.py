"""Replay ≡ backtest: a session fed its series' bars through Kafka by a forward-test worker
makes exactly the trades (time, side, size, prices, P&L) and ends with exactly the equity of a
backtest of the same plan, config and bars; and still does when its worker is killed halfway
and a new one restores the sessions from their checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from algotrade.engine import Bars, compile_graph
from algotrade.simulation import BacktestConfig
from backtesting_service.backtest import run_backtest

from .conftest import Platform, btc_bars, session_body

BARS = 600


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def backtest_of(graph: dict[str, Any], bars: Bars) -> tuple[list[dict[str, Any]], float, Any]:
    """Closed trades as the session API shows them, the final equity and the open trade."""
    config = BacktestConfig(
        initial_capital=10_000, fee_bps=10, slippage_bps=5, calendar="24x7", timeframe="4h"
    )
    result = run_backtest(compile_graph(graph), bars, config)
    t = result.trades
    closed = [
        {
            "side": "long" if t.side[k] > 0 else "short",
            "entry_time": iso(int(t.entry_ts[k])),
            "exit_time": iso(int(t.exit_ts[k])),
            "entry_price": float(t.entry_price[k]),
            "exit_price": float(t.exit_price[k]),
            "quantity": float(t.quantity[k]),
            "pnl": float(t.pnl[k]),
            "fees": float(t.fees[k]),
            "exit_reason": ["none", "signal", "stop_loss", "take_profit", "trailing_stop", "end"][
                int(t.reason[k])
            ],
        }
        for k in range(len(t))
        if not t.is_open[k]
    ]
    still_open = [k for k in range(len(t)) if t.is_open[k]]
    opened = (
        (float(t.quantity[still_open[0]]) * float(t.side[still_open[0]])) if still_open else 0.0
    )
    return closed, float(result.equity[-1]), opened


async def session_trades(platform: Platform, session_id: str) -> list[dict[str, Any]]:
    page = (await platform.get(f"/api/sessions/{session_id}/trades", params={"limit": 1000})).json()
    return [
        {k: v for k, v in trade.items() if k != "seq"}
        | {
            "entry_time": trade["entry_time"].replace("+00:00", "Z"),
            "exit_time": trade["exit_time"].replace("+00:00", "Z"),
        }
        for trade in page["trades"]
    ]


async def push_in_chunks(platform: Platform, symbol: str, bars: Bars, sizes: list[int]) -> None:
    start = 0
    k = 0
    while start < len(bars):
        size = sizes[k % len(sizes)]
        await platform.push(symbol, "4h", bars.slice(start, min(start + size, len(bars))))
        start += size
        k += 1


@pytest.mark.parametrize("restart", [False, True], ids=["one-worker", "worker-killed-halfway"])
async def test_a_session_fed_through_kafka_trades_exactly_as_the_backtest(
    platform: Platform,
    graph: Callable[..., dict[str, Any]],
    start_worker: Callable[..., Any],
    restart: bool,
) -> None:
    strategy = graph(5, 20)
    plan = compile_graph(strategy)
    symbol = "FTREPLAY"
    bars = btc_bars(BARS, first=1_000)
    strategy_id = await platform.save_strategy(strategy)
    await platform.push(symbol, "4h", bars.slice(0, plan.warmup))
    created = await platform.start(session_body(strategy_id, symbol))
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    live = bars.slice(plan.warmup, len(bars))
    half = len(live) // 2

    if restart:
        async with start_worker(copy_on_exit=False) as worker:
            await push_in_chunks(platform, symbol, live.slice(0, half), [1, 7, 1, 30])
            await platform.wait_bars(session_id, plan.warmup + half)
            # A crash: the consumer dies without committing anything further or copying.
            assert worker.consumer_task is not None
            worker.consumer_task.cancel()
        await push_in_chunks(platform, symbol, live.slice(half, len(live)), [3, 50])
        async with start_worker():
            await platform.wait_bars(session_id, BARS)
    else:
        async with start_worker():
            await push_in_chunks(platform, symbol, live, [1, 7, 1, 30])
            await platform.wait_bars(session_id, BARS)

    session = (await platform.get(f"/api/sessions/{session_id}")).json()
    closed, final_equity, held = backtest_of(strategy, bars)
    assert len(closed) >= 3, "the replay should trade"
    assert await session_trades(platform, session_id) == closed
    assert session["equity"] == final_equity
    assert session["position"] == held
    assert session["gaps"] == 0 and session["corrections"] == 0
    assert session["last_bar_time"].replace("+00:00", "Z") == iso(int(bars.ts[-1]))
    orders = (await platform.get(f"/api/sessions/{session_id}/orders")).json()
    assert orders["total"] == 2 * len(closed) + (1 if held else 0)
    equity = (await platform.get(f"/api/sessions/{session_id}/equity")).json()
    assert equity["total_points"] == BARS - plan.warmup
    assert equity["points"][-1]["equity"] == final_equity
