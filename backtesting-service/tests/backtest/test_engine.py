"""`run_backtest`: plans in, deterministic results out; configs, risk nodes, windows."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from algotrade.engine import Bars, GraphInvalid, compile_graph
from backtesting_service.backtest import EXIT_REASONS, BacktestConfig, BacktestInvalid, run_backtest


def test_same_inputs_give_byte_identical_results(spy_daily: Bars, sma_graph: Any) -> None:
    plan = compile_graph(sma_graph(10, 30, short=True))
    config = BacktestConfig(fee_bps=3, slippage_bps=1)
    first = run_backtest(plan, spy_daily, config).to_bytes()
    second = run_backtest(compile_graph(sma_graph(10, 30, short=True)), spy_daily, config)
    assert first == second.to_bytes()


def test_config_is_frozen_and_its_id_is_a_content_hash() -> None:
    config = BacktestConfig(initial_capital=5_000, fee_bps=2)
    assert config.config_id == BacktestConfig(fee_bps=2, initial_capital=5_000.0).config_id
    assert config.config_id != BacktestConfig(initial_capital=5_000, fee_bps=3).config_id
    with pytest.raises(ValidationError):
        config.fee_bps = 4  # type: ignore[misc]


@pytest.mark.parametrize("capital", [0, -1])
def test_capital_must_be_positive(capital: float) -> None:
    with pytest.raises(ValidationError, match="initial_capital"):
        BacktestConfig(initial_capital=capital)


def test_auto_calendar_and_units_follow_the_market(spy_daily: Bars, btc_4h: Bars) -> None:
    equities = BacktestConfig().resolve(spy_daily.ts)
    assert (equities.calendar, equities.units, equities.timeframe) == ("xnys", "whole", "1d")
    crypto = BacktestConfig().resolve(btc_4h.ts)
    assert (crypto.calendar, crypto.units, crypto.timeframe) == ("24x7", "fractional", "4h")


def test_result_reports_trades_equity_positions_and_metrics(
    spy_daily: Bars, sma_graph: Any
) -> None:
    result = run_backtest(compile_graph(sma_graph()), spy_daily, BacktestConfig())
    trades = result.trades
    assert len(trades) > 50
    assert (trades.bars_held >= 0).all()
    assert (trades.exit_ts >= trades.entry_ts).all()
    assert result.equity.shape == result.position.shape == (len(spy_daily),)
    # Equity ends at capital plus every trade's P&L (the open one marked to the last close).
    assert result.equity[-1] == pytest.approx(100_000 + trades.pnl.sum(), rel=1e-12)
    summary = result.summary()
    assert summary["metrics"]["trade_count"] == int((~trades.is_open).sum())
    assert summary["bars"] == len(spy_daily)
    table = result.trades_table()
    assert table.column_names == [
        "entry_time",
        "exit_time",
        "side",
        "quantity",
        "entry_price",
        "exit_price",
        "fees",
        "pnl",
        "return_pct",
        "bars_held",
        "exit_reason",
        "is_open",
    ]
    sink = io.BytesIO()
    pq.write_table(result.equity_table(), sink)
    assert pq.read_table(io.BytesIO(sink.getvalue())).num_rows == len(spy_daily)


def test_risk_nodes_bound_losses(spy_daily: Bars, sma_graph: Any) -> None:
    risk = [
        {"id": "stop", "type": "stop_loss", "params": {"mode": "percent", "percent": 2.0}},
        {"id": "target", "type": "take_profit", "params": {"mode": "percent", "percent": 4.0}},
    ]
    result = run_backtest(compile_graph(sma_graph(risk=risk)), spy_daily, BacktestConfig())
    trades = result.trades
    reasons = np.array(EXIT_REASONS)[trades.reason]
    assert {"stop_loss", "take_profit"} <= set(reasons)
    stopped = reasons == "stop_loss"
    # A stop fills at -2% unless the bar gapped through it (then at a worse open).
    loss = trades.exit_price[stopped] / trades.entry_price[stopped] - 1
    assert (loss <= -0.02 + 1e-12).all()
    assert np.isclose(loss, -0.02).sum() > stopped.sum() / 2


def test_percent_equity_sizing_uses_part_of_the_capital(spy_daily: Bars, sma_graph: Any) -> None:
    risk = [
        {"id": "size", "type": "position_size", "params": {"mode": "percent_equity", "percent": 25}}
    ]
    result = run_backtest(compile_graph(sma_graph(risk=risk)), spy_daily, BacktestConfig())
    first = result.trades
    notional = first.quantity[0] * first.entry_price[0]
    assert 0.24 * 100_000 < notional <= 0.25 * 100_000


def test_short_only_strategy_needs_shorting_allowed(spy_daily: Bars) -> None:
    graph = {
        "nodes": [
            {"id": "close", "type": "price"},
            {"id": "avg", "type": "sma", "params": {"period": 5}},
            {"id": "below", "type": "lt"},
            {"id": "short", "type": "enter_short"},
        ],
        "edges": [
            {"from": "close.out", "to": "avg.in"},
            {"from": "close.out", "to": "below.a"},
            {"from": "avg.out", "to": "below.b"},
            {"from": "below.out", "to": "short.in"},
        ],
    }
    with pytest.raises(BacktestInvalid, match="allow_short"):
        run_backtest(compile_graph(graph), spy_daily, BacktestConfig(allow_short=False))


def test_a_window_uses_warm_indicators_and_starts_flat(spy_daily: Bars, sma_graph: Any) -> None:
    plan = compile_graph(sma_graph())
    result = run_backtest(plan, spy_daily, BacktestConfig(), window=(1_000, 2_000))
    assert len(result.equity) == 1_000
    assert result.equity[0] == 100_000
    assert (result.trades.entry_index >= 1_000).all()
    assert (result.trades.exit_index < 2_000).all()
    # Indicators are warm at the window's start, so trading can begin right away.
    assert result.trades.entry_index[0] < 1_000 + 60


def test_a_plan_compiled_for_indicators_only_is_refused(spy_daily: Bars) -> None:
    graph = {
        "nodes": [{"id": "close", "type": "price"}, {"id": "avg", "type": "sma"}],
        "edges": [{"from": "close.out", "to": "avg.in"}],
    }
    with pytest.raises(GraphInvalid) as invalid:
        compile_graph(graph)  # what the service and the worker call
    assert [p.code.value for p in invalid.value.problems] == ["no_entry_signal"]
    plan = compile_graph(graph, purpose="indicators")
    with pytest.raises(BacktestInvalid, match="no entry signal") as refused:
        run_backtest(plan, spy_daily, BacktestConfig())
    assert refused.value.errors[0]["code"] == "no_entry_signal"
