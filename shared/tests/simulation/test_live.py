"""A live session replays a backtest exactly: same trades, same equity curve, same metrics.

The backtest here is `fills.simulate` fed the plan's vectorized outputs the way the
backtesting service feeds it (its own parity test, against `run_backtest`, lives in
backtesting-service/tests/backtest/test_live_parity.py). Sessions are checkpointed to bytes
and restored at random bars, as after a crash.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from algotrade.engine import Bars, Plan, StateMismatch, compile_graph
from algotrade.metrics import Metrics, assemble, curve_finish, periods_per_year
from algotrade.simulation import BacktestConfig, ResolvedConfig, fills
from algotrade.simulation.live import (
    ClosedTrade,
    Fill,
    LiveBar,
    LiveSession,
    LiveTemplate,
    OpenPosition,
    StaleBar,
)
from algotrade_testkit.graphs import sma_cross, twenty_nodes
from algotrade_testkit.random_graphs import random_bars, random_graphs

DATA_DIR = Path(__file__).resolve().parents[3] / "data"
_DISTANCE = {"percent_of_price": fills.DISTANCE_PERCENT, "price": fills.DISTANCE_PRICE}
_SIZE = {
    "quantity": fills.SIZE_FIXED,
    "percent_of_equity": fills.SIZE_PERCENT_EQUITY,
    "percent_of_equity_at_risk": fills.SIZE_RISK,
}


@pytest.fixture(scope="module")
def bars_of() -> dict[str, Bars]:
    return {name: Bars.from_csv(DATA_DIR / f"{name}.csv") for name in ("spy-1d", "btc-usd-4h")}


# --- the backtest and the replay --------------------------------------------------------------


def backtest(plan: Plan, bars: Bars, resolved: ResolvedConfig) -> dict[str, Any]:
    """`fills.simulate` over all bars from the plan's vectorized outputs, as a backtest runs."""
    n = len(bars)
    out = plan.evaluate(bars)

    def signal(kind: str) -> np.ndarray:
        combined = np.zeros(n, dtype=np.bool_)
        for key in plan.signals.get(kind, ()):
            combined = combined | out[key]
        return combined

    modes = np.zeros(fills.MODE_COUNT, dtype=np.int64)
    series = []
    for slot, kind in enumerate(("stop_loss", "take_profit", "trailing_stop", "position_size")):
        binding = plan.risk.get(kind)
        if binding is None:
            series.append(np.empty(0))
            continue
        modes[slot] = (_SIZE if kind == "position_size" else _DISTANCE)[binding.unit]
        series.append(out[binding.output])
    config = resolved.config
    params = np.array(
        [
            config.initial_capital,
            config.fee_bps / 10_000,
            config.fee_fixed,
            config.slippage_bps / 10_000,
            1.0 if resolved.fractional else 0.0,
            1.0 if config.allow_short else 0.0,
        ]
    )
    equity, records, count, curve = fills.simulate(
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        signal("enter_long"),
        signal("exit_long"),
        signal("enter_short"),
        signal("exit_short"),
        *series,
        modes,
        params,
        0,
        n,
        True,
    )
    records = records[:count]
    is_open = records[:, fills.T_REASON] == fills.EXIT_END
    quantity = records[:, fills.T_QUANTITY]
    notional = float(
        np.sum(quantity * records[:, fills.T_ENTRY_PRICE])
        + np.sum(quantity[~is_open] * records[~is_open, fills.T_EXIT_PRICE])
    )
    periods = periods_per_year(resolved.timeframe, resolved.calendar)
    metrics = assemble(
        curve_finish(curve, config.initial_capital, periods),
        closed_pnl=np.ascontiguousarray(records[~is_open, fills.T_PNL]),
        open_trades=int(np.count_nonzero(is_open)),
        traded_notional=notional,
        final_equity=float(equity[-1]) if n else config.initial_capital,
    )
    return {"equity": equity, "records": records, "metrics": metrics}


def live_bars(bars: Bars) -> list[LiveBar]:
    fields = ("open", "high", "low", "close", "volume")
    columns = (bars.ts.tolist(), *(bars.field(name).tolist() for name in fields))
    return [LiveBar(*row) for row in zip(*columns, strict=True)]


def replay(
    plan: Plan, bars: Bars, resolved: ResolvedConfig, checkpoints: set[int] = frozenset()
) -> dict[str, Any]:
    """Apply every bar to a live session, snapshotting and restoring before the checkpoints."""
    session = LiveSession.start(plan, resolved)
    equity, trades, fills_seen, positions = [], [], [], []
    for index, bar in enumerate(live_bars(bars)):
        if index in checkpoints:
            session = LiveSession.restore(plan, resolved, session.snapshot())
        outcome = session.apply(bar)
        assert outcome.equity == session.equity and outcome.cash == session.cash
        equity.append(outcome.equity)
        trades += outcome.closed
        fills_seen += outcome.fills
        positions.append(outcome.position)
    return {
        "session": session,
        "equity": np.array(equity),
        "trades": trades,
        "fills": fills_seen,
        "positions": np.array(positions),
    }


def expected_fills(records: np.ndarray, ts: np.ndarray) -> list[tuple[Any, ...]]:
    """``(ts, side, quantity, price, reason)`` of every fill a backtest's trades imply, in
    order: at a bar's open a signal exit, then the entry; a resting exit inside the bar."""
    events: list[tuple[int, int, tuple[Any, ...]]] = []
    for number, row in enumerate(records.tolist()):
        quantity = row[fills.T_QUANTITY]
        entry, exit_ = int(row[fills.T_ENTRY_INDEX]), int(row[fills.T_EXIT_INDEX])
        buy, sell = ("buy", "sell") if row[fills.T_SIDE] > 0 else ("sell", "buy")
        price = row[fills.T_ENTRY_PRICE]
        events.append((entry, 2 * number + 1, (int(ts[entry]), buy, quantity, price, "entry")))
        if row[fills.T_REASON] != fills.EXIT_END:
            reason = fills.EXIT_REASONS[int(row[fills.T_REASON])]
            order = 2 * number if reason == "signal" else 2 * number + 2
            price = row[fills.T_EXIT_PRICE]
            events.append((exit_, order, (int(ts[exit_]), sell, quantity, price, reason)))
    events.sort(key=lambda event: (event[0], event[1]))
    return [fill for _, _, fill in events]


def assert_replay_equals_backtest(
    plan: Plan, bars: Bars, resolved: ResolvedConfig, checkpoints: set[int] = frozenset()
) -> LiveSession:
    expected = backtest(plan, bars, resolved)
    got = replay(plan, bars, resolved, checkpoints)
    ts = bars.ts
    records = expected["records"]
    # The equity curve, bar by bar, and the position at each close: exactly.
    np.testing.assert_array_equal(got["equity"], expected["equity"])
    np.testing.assert_array_equal(got["positions"], fills.positions(0, len(bars), records))
    closed = records[records[:, fills.T_REASON] != fills.EXIT_END]
    assert got["trades"] == [
        ClosedTrade(
            side="long" if row[fills.T_SIDE] > 0 else "short",
            entry_ts=int(ts[int(row[fills.T_ENTRY_INDEX])]),
            exit_ts=int(ts[int(row[fills.T_EXIT_INDEX])]),
            entry_price=row[fills.T_ENTRY_PRICE],
            exit_price=row[fills.T_EXIT_PRICE],
            quantity=row[fills.T_QUANTITY],
            pnl=row[fills.T_PNL],
            fees=row[fills.T_FEES],
            exit_reason=fills.EXIT_REASONS[int(row[fills.T_REASON])],
        )
        for row in closed.tolist()
    ]
    # Fills: the same orders at the same bars, sizes and prices; a closed trade's entry and
    # exit fees add up to its fees exactly as the backtest added them.
    got_fills: list[Fill] = got["fills"]
    assert [(f.ts, f.side, f.quantity, f.price, f.reason) for f in got_fills] == expected_fills(
        records, ts
    )
    entry_fees = {f.ts: f.fee for f in got_fills if f.reason == "entry"}
    for trade in got["trades"]:
        exit_fee = next(
            f.fee for f in got_fills if f.ts == trade.exit_ts and f.reason == trade.exit_reason
        )
        assert entry_fees[trade.entry_ts] + exit_fee == trade.fees
    session: LiveSession = got["session"]
    position = session.open_position
    still_open = records[records[:, fills.T_REASON] == fills.EXIT_END]
    if len(still_open):
        row = still_open[0]
        assert position == OpenPosition(
            side="long" if row[fills.T_SIDE] > 0 else "short",
            entry_ts=int(ts[int(row[fills.T_ENTRY_INDEX])]),
            entry_price=row[fills.T_ENTRY_PRICE],
            quantity=row[fills.T_QUANTITY],
            entry_fee=position.entry_fee if position else math.nan,
            mark=row[fills.T_EXIT_PRICE],
            pnl=row[fills.T_PNL],
            stop=position.stop if position else math.nan,
            target=position.target if position else math.nan,
            trail=position.trail if position else math.nan,
        )
        assert position is not None and position.entry_fee == row[fills.T_FEES]
    else:
        assert position is None
    if len(bars):
        assert session.equity == expected["equity"][-1]
    assert_same_metrics(session.metrics(), expected["metrics"])
    return session


def assert_same_metrics(got: Metrics, want: Metrics) -> None:
    """Identical, except turnover: its notional is summed in fill order, the backtest's by
    column with NumPy's pairwise sum, so the last bits may differ (1e-12 relative)."""
    for name in Metrics.__dataclass_fields__:
        a, b = getattr(got, name), getattr(want, name)
        if name == "turnover":
            assert a == pytest.approx(b, rel=1e-12, nan_ok=True), name
        else:
            assert a == b or (a != a and b != b), name


# --- properties -------------------------------------------------------------------------------


@st.composite
def configs(draw: st.DrawFn, calendar: str) -> ResolvedConfig:
    config = BacktestConfig(
        initial_capital=draw(st.sampled_from([1_000.0, 100_000.0, 3_000_000.0])),
        fee_bps=draw(st.sampled_from([0.0, 2.5, 10.0])),
        fee_fixed=draw(st.sampled_from([0.0, 1.0])),
        slippage_bps=draw(st.sampled_from([0.0, 5.0])),
        allow_short=draw(st.booleans()),
        units=draw(st.sampled_from(["auto", "whole", "fractional"])),
    )
    timeframe = "4h" if calendar == "24x7" else "1d"
    return config.resolve_market(timeframe=timeframe, calendar=calendar)  # type: ignore[arg-type]


@st.composite
def sized(draw: st.DrawFn, graph: dict[str, Any]) -> dict[str, Any]:
    """The graph, maybe with a position_size node (risk sizing only next to a stop)."""
    has_stop = any(node["type"] == "stop_loss" for node in graph["nodes"])
    modes = ["none", "fixed", "percent_equity", *(["risk"] if has_stop else [])]
    mode = draw(st.sampled_from(modes))
    if mode == "none":
        return graph
    params: dict[str, Any] = {"mode": mode}
    if mode == "fixed":
        params["quantity"] = draw(st.sampled_from([0.5, 3.0, 40.0]))
    elif mode == "percent_equity":
        params["percent"] = draw(st.sampled_from([10.0, 50.0, 100.0]))
    else:
        params["risk_percent"] = draw(st.sampled_from([0.5, 2.0]))
    nodes = [*graph["nodes"], {"id": "size", "type": "position_size", "params": params}]
    return {**graph, "nodes": nodes}


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_a_replay_with_random_crashes_trades_exactly_as_the_backtest(
    data: st.DataObject, bars_of: dict[str, Bars]
) -> None:
    name, calendar = data.draw(st.sampled_from([("btc-usd-4h", "24x7"), ("spy-1d", "xnys")]))
    graph = data.draw(sized(data.draw(random_graphs())))
    bars = data.draw(random_bars(bars_of[name]))
    resolved = data.draw(configs(calendar))
    checkpoints = set(data.draw(st.lists(st.integers(0, len(bars)), max_size=5)))
    assert_replay_equals_backtest(compile_graph(graph), bars, resolved, checkpoints)


def rsi_reversion() -> dict[str, Any]:
    """Long and short with percent stop, target and trailing stop and percent sizing."""
    nodes = [
        {"id": "close", "type": "price"},
        {"id": "rsi", "type": "rsi", "params": {"period": 14}},
        {"id": "low", "type": "constant", "params": {"value": 35}},
        {"id": "high", "type": "constant", "params": {"value": 65}},
        {"id": "oversold", "type": "lt"},
        {"id": "overbought", "type": "gt"},
        {"id": "buy", "type": "enter_long"},
        {"id": "short", "type": "enter_short"},
        {"id": "stop", "type": "stop_loss", "params": {"mode": "percent", "percent": 4.0}},
        {"id": "target", "type": "take_profit", "params": {"mode": "percent", "percent": 6.0}},
        {"id": "trail", "type": "trailing_stop", "params": {"mode": "atr", "atr_multiple": 3}},
        {"id": "size", "type": "position_size", "params": {"mode": "percent_equity"}},
    ]
    edges = [
        ("close.out", "rsi.in"),
        ("rsi.out", "oversold.a"),
        ("low.out", "oversold.b"),
        ("rsi.out", "overbought.a"),
        ("high.out", "overbought.b"),
        ("oversold.out", "buy.in"),
        ("overbought.out", "short.in"),
    ]
    return {"nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]}


def atr_crossover() -> dict[str, Any]:
    """EMA crossover with an ATR stop and risk sizing (the docs' first example)."""
    graph = sma_cross(12, 26)
    for node in graph["nodes"]:
        if node["type"] == "sma":
            node["type"] = "ema"
    graph["nodes"] += [
        {"id": "stop", "type": "stop_loss", "params": {"mode": "atr", "atr_multiple": 2.0}},
        {"id": "size", "type": "position_size", "params": {"mode": "risk", "risk_percent": 1}},
    ]
    return graph


GRAPHS = {"sma_cross": sma_cross, "atr_crossover": atr_crossover, "rsi": rsi_reversion}


@pytest.mark.parametrize("graph", list(GRAPHS))
@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("spy-1d", BacktestConfig()),
        ("spy-1d", BacktestConfig(fee_bps=5.0, fee_fixed=1.0, slippage_bps=2.0)),
        ("btc-usd-4h", BacktestConfig(fee_bps=10.0, slippage_bps=5.0)),
    ],
    ids=["spy-free", "spy-costs", "btc-costs"],
)
def test_a_replay_of_real_data_equals_the_backtest(
    bars_of: dict[str, Bars], graph: str, name: str, config: BacktestConfig
) -> None:
    bars = bars_of[name]
    plan = compile_graph(GRAPHS[graph]())
    resolved = config.resolve(bars.ts)
    rng = np.random.default_rng(len(bars))
    checkpoints = set(rng.integers(0, len(bars), 40).tolist())
    session = assert_replay_equals_backtest(plan, bars, resolved, checkpoints)
    assert session.bars_applied == len(bars) and session.last_ts == int(bars.ts[-1])
    assert session.metrics().trade_count > 3


def test_the_live_config_of_a_known_market_is_what_the_backtest_infers(
    bars_of: dict[str, Bars],
) -> None:
    for name, timeframe, calendar in (("spy-1d", "1d", "xnys"), ("btc-usd-4h", "4h", "24x7")):
        ts = bars_of[name].ts
        for config in (BacktestConfig(), BacktestConfig(units="fractional", calendar="24x7")):
            known = config.resolve_market(timeframe=timeframe, calendar=calendar)  # type: ignore[arg-type]
            assert known == config.resolve(ts)


# --- session behaviour ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def btc_session_bars(bars_of: dict[str, Bars]) -> list[LiveBar]:
    return live_bars(bars_of["btc-usd-4h"].slice(0, 400))


def test_a_bar_not_after_the_last_one_is_refused_and_changes_nothing(
    btc_session_bars: list[LiveBar],
) -> None:
    resolved = BacktestConfig().resolve_market(timeframe="4h", calendar="24x7")
    session = LiveSession.start(compile_graph(sma_cross(3, 8)), resolved)
    for bar in btc_session_bars[:50]:
        session.apply(bar)
    before = session.snapshot()
    last = btc_session_bars[49]
    for stale in (last, btc_session_bars[10], LiveBar(last.ts - 1, 1.0, 2.0, 0.5, 1.5, 1.0)):
        with pytest.raises(ValueError, match="not after the last bar"):
            session.apply(stale)
    with pytest.raises(StaleBar):
        session.apply(last)
    assert session.snapshot() == before and session.bars_applied == 50
    session.apply(btc_session_bars[50])
    assert session.bars_applied == 51


def test_no_trade_before_the_plan_is_warmed_up(btc_session_bars: list[LiveBar]) -> None:
    plan = compile_graph(sma_cross(10, 60))
    resolved = BacktestConfig().resolve_market(timeframe="4h", calendar="24x7")
    session = LiveSession.start(plan, resolved)
    outcomes = [session.apply(bar) for bar in btc_session_bars]
    assert plan.warmup > 0
    for index, outcome in enumerate(outcomes):
        assert outcome.warmed_up is (index + 1 >= plan.warmup)
        if index <= plan.warmup:  # a signal at the warm-up's end fills one bar later
            assert outcome.fills == () and outcome.position == 0.0
    assert any(outcome.fills for outcome in outcomes)


def test_a_signal_on_the_last_bar_is_pending_and_fills_at_the_next_open(
    btc_session_bars: list[LiveBar],
) -> None:
    plan = compile_graph(sma_cross(3, 8))
    resolved = BacktestConfig(fee_bps=10.0).resolve_market(timeframe="4h", calendar="24x7")
    session = LiveSession.start(plan, resolved)
    for bar in btc_session_bars:
        session.apply(bar)
        _, entry = session.pending
        if entry:
            break
    else:
        pytest.fail("no entry signal in 400 bars")
    restored = LiveSession.restore(plan, resolved, session.snapshot())
    assert restored.pending == session.pending
    nxt = btc_session_bars[session.bars_applied]
    outcome = restored.apply(nxt)
    entry_fill = outcome.fills[-1]
    assert entry_fill.reason == "entry" and entry_fill.price == nxt.open
    assert entry_fill.fee == entry_fill.quantity * nxt.open * 0.001
    assert outcome.cash == session.cash - (entry_fill.quantity * nxt.open + entry_fill.fee)


def test_snapshot_is_compact_and_refuses_another_plan_config_version_or_damage(
    bars_of: dict[str, Bars],
) -> None:
    plan = compile_graph(twenty_nodes())
    resolved = BacktestConfig().resolve_market(timeframe="1d", calendar="xnys")
    template = LiveTemplate(plan, resolved)
    session = template.start()
    for bar in live_bars(bars_of["spy-1d"].slice(0, 300)):
        session.apply(bar)
    saved = session.snapshot()
    assert len(saved) < 20_000
    assert template.restore(saved).snapshot() == saved
    other_plan = compile_graph(sma_cross())
    other_config = BacktestConfig(fee_bps=1.0).resolve_market(timeframe="1d", calendar="xnys")
    with pytest.raises(StateMismatch, match="another plan"):
        LiveSession.restore(other_plan, resolved, saved)
    with pytest.raises(StateMismatch, match="another config"):
        LiveSession.restore(plan, other_config, saved)
    newer = saved[:4] + (99).to_bytes(2, "little") + saved[6:]
    for damaged in (saved[:-8], saved + b"\0", saved[:20], b"x" * len(saved), newer):
        with pytest.raises(StateMismatch):
            template.restore(damaged)


def test_metrics_before_any_bar_are_those_of_an_empty_run() -> None:
    resolved = BacktestConfig().resolve_market(timeframe="1d", calendar="xnys")
    session = LiveSession.start(compile_graph(sma_cross()), resolved)
    metrics = session.metrics()
    assert session.equity == session.cash == 100_000.0 and session.position == 0.0
    assert metrics.final_equity == 100_000.0 and metrics.trade_count == 0
    assert session.last_ts is None and not session.warmed_up
