"""The fill model on hand-made bars, where every fill can be worked out on paper."""

from __future__ import annotations

import hashlib
import inspect
import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algotrade import metrics
from algotrade.simulation import fills
from algotrade.simulation.fills import FillModel

NAN = math.nan
EMPTY = np.empty(0)


def run(
    bars: list[tuple[float, float, float, float]],
    *,
    enter_long: tuple[int, ...] = (),
    exit_long: tuple[int, ...] = (),
    enter_short: tuple[int, ...] = (),
    exit_short: tuple[int, ...] = (),
    stop: tuple[int, float] | None = None,
    target: tuple[int, float] | None = None,
    trail: tuple[int, float] | None = None,
    size: tuple[int, float] | None = None,
    capital: float = 1_000.0,
    fee_rate: float = 0.0,
    fee_fixed: float = 0.0,
    slippage: float = 0.0,
    fractional: bool = False,
    allow_short: bool = True,
    window: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Simulate OHLC rows with signals on the given bar indices. Risk args: (mode, value)."""
    n = len(bars)
    o, h, lo, c = (np.array(col, dtype=np.float64) for col in zip(*bars, strict=True))

    def mask(indices: tuple[int, ...]) -> np.ndarray:
        out = np.zeros(n, dtype=np.bool_)
        out[list(indices)] = True
        return out

    modes = np.zeros(fills.MODE_COUNT, dtype=np.int64)
    series = []
    for slot, spec in ((fills.M_STOP, stop), (fills.M_TARGET, target), (fills.M_TRAIL, trail)):
        if spec is None:
            series.append(EMPTY)
        else:
            modes[slot] = spec[0]
            series.append(np.full(n, spec[1]))
    if size is None:
        size_series = EMPTY
    else:
        modes[fills.M_SIZE] = size[0]
        size_series = np.full(n, size[1])
    params = np.array(
        [capital, fee_rate, fee_fixed, slippage, float(fractional), float(allow_short)]
    )
    start, end = window or (0, n)
    equity, records, count, _ = fills.simulate(
        o,
        h,
        lo,
        c,
        mask(enter_long),
        mask(exit_long),
        mask(enter_short),
        mask(exit_short),
        series[0],
        series[1],
        series[2],
        size_series,
        modes,
        params,
        start,
        end,
        True,
    )
    trades = [
        {
            "entry": int(r[fills.T_ENTRY_INDEX]),
            "exit": int(r[fills.T_EXIT_INDEX]),
            "side": int(r[fills.T_SIDE]),
            "qty": float(r[fills.T_QUANTITY]),
            "entry_price": float(r[fills.T_ENTRY_PRICE]),
            "exit_price": float(r[fills.T_EXIT_PRICE]),
            "fees": float(r[fills.T_FEES]),
            "pnl": float(r[fills.T_PNL]),
            "reason": fills.EXIT_REASONS[int(r[fills.T_REASON])],
        }
        for r in records[:count]
    ]
    position = fills.positions(start, end, records[:count])
    return {"equity": equity, "position": position, "trades": trades}


FLAT = (100.0, 101.0, 99.0, 100.0)


def test_signal_on_close_fills_at_next_open() -> None:
    bars = [FLAT, (102.0, 103.0, 101.0, 102.5), (104.0, 105.0, 103.0, 104.0), FLAT]
    out = run(bars, enter_long=(0,), exit_long=(1,))
    (trade,) = out["trades"]
    assert (trade["entry"], trade["entry_price"]) == (1, 102.0)
    assert (trade["exit"], trade["exit_price"]) == (2, 104.0)
    assert trade["qty"] == 9  # floor(1000 / 102)
    assert trade["pnl"] == pytest.approx(9 * 2.0)
    assert trade["reason"] == "signal"
    assert list(out["position"]) == [0, 9, 0, 0]
    assert out["equity"][1] == pytest.approx(1000 - 9 * 102 + 9 * 102.5)


def test_signal_on_last_bar_never_fills() -> None:
    out = run([FLAT, FLAT, FLAT], enter_long=(2,))
    assert out["trades"] == []
    assert list(out["equity"]) == [1000.0] * 3


def test_open_position_is_marked_to_last_close_and_reported_open() -> None:
    out = run([FLAT, (100.0, 106.0, 99.0, 105.0), (105.0, 111.0, 104.0, 110.0)], enter_long=(0,))
    (trade,) = out["trades"]
    assert trade["reason"] == "end"
    assert trade["exit"] == 2 and trade["exit_price"] == 110.0
    assert trade["pnl"] == pytest.approx(10 * 10.0)
    assert out["equity"][-1] == pytest.approx(1000 + 100)


def test_stop_and_target_inside_one_bar_assumes_the_stop_filled_first() -> None:
    # Long at 100 with a 5% stop (95) and a 5% target (105); the bar spans both.
    bars = [FLAT, FLAT, (100.0, 106.0, 94.0, 100.0), FLAT]
    out = run(
        bars,
        enter_long=(0,),
        stop=(fills.DISTANCE_PERCENT, 5.0),
        target=(fills.DISTANCE_PERCENT, 5.0),
    )
    (trade,) = out["trades"]
    assert trade["reason"] == "stop_loss"
    assert (trade["exit"], trade["exit_price"]) == (2, 95.0)


def test_short_stop_and_target_inside_one_bar_assumes_the_stop_filled_first() -> None:
    bars = [FLAT, FLAT, (100.0, 106.0, 94.0, 100.0), FLAT]
    out = run(
        bars,
        enter_short=(0,),
        stop=(fills.DISTANCE_PERCENT, 5.0),
        target=(fills.DISTANCE_PERCENT, 5.0),
    )
    (trade,) = out["trades"]
    assert trade["side"] == -1
    assert (trade["reason"], trade["exit_price"]) == ("stop_loss", 105.0)
    assert trade["pnl"] == pytest.approx(-10 * 5.0)


def test_gap_through_the_stop_fills_at_the_open() -> None:
    bars = [FLAT, FLAT, (90.0, 91.0, 88.0, 89.0), FLAT]
    out = run(bars, enter_long=(0,), stop=(fills.DISTANCE_PERCENT, 5.0))
    (trade,) = out["trades"]
    assert (trade["reason"], trade["exit"], trade["exit_price"]) == ("stop_loss", 2, 90.0)


def test_gap_through_the_target_fills_at_the_open() -> None:
    bars = [FLAT, FLAT, (110.0, 112.0, 109.0, 111.0), FLAT]
    out = run(bars, enter_long=(0,), target=(fills.DISTANCE_PERCENT, 5.0))
    (trade,) = out["trades"]
    assert (trade["reason"], trade["exit_price"]) == ("take_profit", 110.0)


def test_target_inside_the_bar_fills_at_its_price_without_slippage() -> None:
    bars = [FLAT, FLAT, (101.0, 106.0, 100.5, 104.0), FLAT]
    out = run(bars, enter_long=(0,), target=(fills.DISTANCE_PRICE, 3.0), slippage=0.01)
    (trade,) = out["trades"]
    entry = 100.0 * 1.01
    assert trade["entry_price"] == pytest.approx(entry)
    assert (trade["reason"], trade["exit_price"]) == ("take_profit", pytest.approx(entry + 3.0))


def test_stops_are_checked_on_the_entry_bar() -> None:
    bars = [FLAT, (100.0, 100.5, 97.0, 99.0), FLAT]
    out = run(bars, enter_long=(0,), stop=(fills.DISTANCE_PRICE, 2.0), slippage=0.0)
    (trade,) = out["trades"]
    assert (trade["entry"], trade["exit"], trade["exit_price"]) == (1, 1, 98.0)


def test_stop_fill_pays_slippage() -> None:
    bars = [FLAT, FLAT, (100.0, 100.5, 94.0, 95.0), FLAT]
    out = run(bars, enter_long=(0,), stop=(fills.DISTANCE_PERCENT, 5.0), slippage=0.001)
    (trade,) = out["trades"]
    entry = 100.0 * 1.001
    level = entry * (1 - 0.05)
    assert trade["exit_price"] == pytest.approx(level * (1 - 0.001))


def test_trailing_stop_follows_the_best_price_of_previous_bars() -> None:
    bars = [
        FLAT,
        (100.0, 100.0, 99.5, 100.0),  # entry at 100; trail at 90
        (101.0, 120.0, 100.5, 119.0),  # best 120 after this bar; trail 108
        (118.0, 118.5, 107.0, 110.0),  # hits 108
        FLAT,
    ]
    out = run(bars, enter_long=(0,), trail=(fills.DISTANCE_PERCENT, 10.0))
    (trade,) = out["trades"]
    assert trade["reason"] == "trailing_stop"
    assert (trade["exit"], trade["exit_price"]) == (3, pytest.approx(108.0))


def test_a_bar_cannot_both_raise_the_trailing_stop_and_hit_it() -> None:
    # The bar makes a new high at 120 and a low at 107: whether 107 came before the high is
    # unknown, so the trail (90 from the entry) is not moved to 108 within that bar.
    bars = [
        FLAT,
        (100.0, 100.0, 99.5, 100.0),
        (101.0, 120.0, 107.0, 110.0),
        (111.0, 112.0, 110.0, 111.0),
    ]
    out = run(bars, enter_long=(0,), trail=(fills.DISTANCE_PERCENT, 10.0))
    assert out["trades"][0]["reason"] == "end"


def test_reversal_closes_the_long_and_opens_a_short_at_the_same_open() -> None:
    bars = [FLAT, FLAT, (110.0, 111.0, 109.0, 110.0), (100.0, 101.0, 99.0, 100.0)]
    out = run(bars, enter_long=(0,), enter_short=(1,))
    long_, short = out["trades"]
    assert (long_["side"], long_["exit"], long_["exit_price"]) == (1, 2, 110.0)
    assert (short["side"], short["entry"], short["entry_price"]) == (-1, 2, 110.0)
    assert short["qty"] == math.floor((1000 + 10 * 10) / 110)
    assert short["reason"] == "end"
    assert out["equity"][-1] == pytest.approx(1100 + short["qty"] * 10)
    assert list(out["position"]) == [0, 10, -short["qty"], -short["qty"]]


def test_short_entries_are_ignored_when_shorting_is_not_allowed() -> None:
    out = run([FLAT, FLAT, FLAT], enter_short=(0,), allow_short=False)
    assert out["trades"] == []


def test_an_entry_and_its_exit_on_one_bar_cancel_the_entry() -> None:
    out = run([FLAT, FLAT, FLAT], enter_long=(0,), exit_long=(0,))
    assert out["trades"] == []


def test_fees_are_charged_on_both_fills_and_all_in_sizing_leaves_room_for_them() -> None:
    bars = [FLAT, (50.0, 51.0, 49.0, 50.0), (60.0, 61.0, 59.0, 60.0), FLAT]
    out = run(bars, enter_long=(0,), exit_long=(1,), fee_rate=0.01, fee_fixed=2.0)
    (trade,) = out["trades"]
    # (1000 - 2) / 1.01 / 50 = 19.76 -> 19 units
    assert trade["qty"] == 19
    entry_fee = 19 * 50 * 0.01 + 2
    exit_fee = 19 * 60 * 0.01 + 2
    assert trade["fees"] == pytest.approx(entry_fee + exit_fee)
    assert trade["pnl"] == pytest.approx(19 * 10 - entry_fee - exit_fee)
    assert out["equity"][-1] == pytest.approx(1000 + trade["pnl"])


def test_fractional_units_when_the_market_allows_them() -> None:
    bars = [FLAT, (300.0, 301.0, 299.0, 300.0), FLAT]
    out = run(bars, enter_long=(0,), fractional=True)
    assert out["trades"][0]["qty"] == pytest.approx(1000 / 300)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((fills.SIZE_FIXED, 3.0), 3.0),
        ((fills.SIZE_FIXED, 50.0), 10.0),  # capped at all-in: no leverage
        ((fills.SIZE_PERCENT_EQUITY, 50.0), 5.0),
        # Risk 1% of 1000 = 10 with a stop 2 away: 5 units.
        ((fills.SIZE_RISK, 1.0), 5.0),
    ],
    ids=["fixed", "fixed-capped", "percent-equity", "risk"],
)
def test_position_sizing_modes(size: tuple[int, float], expected: float) -> None:
    out = run([FLAT, FLAT, FLAT], enter_long=(0,), size=size, stop=(fills.DISTANCE_PRICE, 2.0))
    assert out["trades"][0]["qty"] == expected


def test_risk_sizing_without_a_stop_distance_does_not_trade() -> None:
    out = run([FLAT, FLAT, FLAT], enter_long=(0,), size=(fills.SIZE_RISK, 1.0))
    assert out["trades"] == []


def test_a_window_starts_flat_and_ignores_signals_before_it() -> None:
    bars = [FLAT, (101.0, 102.0, 100.0, 101.0), (102.0, 103.0, 101.0, 102.0), FLAT]
    out = run(bars, enter_long=(0, 1), window=(1, 4))
    (trade,) = out["trades"]
    assert (trade["entry"], trade["entry_price"]) == (2, 102.0)
    assert len(out["equity"]) == 3


def test_fill_model_facade_uses_the_same_rules() -> None:
    model = FillModel(fee_rate=0.001, fee_fixed=1.0, slippage=0.002)
    assert model.market_price(100.0, 1.0) == pytest.approx(100.2)
    assert model.market_price(100.0, -1.0) == pytest.approx(99.8)
    assert model.fee(10_000.0) == pytest.approx(11.0)
    assert model.resting_exit(1.0, 100.0, 106.0, 94.0, stop=95.0, target=105.0) == (
        "stop_loss",
        pytest.approx(95.0 * 0.998),
    )
    assert model.resting_exit(1.0, 100.0, 106.0, 99.0, stop=95.0, target=105.0) == (
        "take_profit",
        105.0,
    )
    assert model.resting_exit(-1.0, 100.0, 101.0, 99.0, stop=102.0) is None


def test_the_compiled_loop_is_recached_when_the_metrics_it_inlines_change() -> None:
    # numba keys its disk cache on this file only; simulate closes over a hash of
    # algotrade.metrics so that a change there is a cache miss, not a stale kernel.
    source = inspect.getsource(metrics).encode()
    stamp = hashlib.sha256(source).hexdigest()
    cells = [cell.cell_contents for cell in fills.simulate.py_func.__closure__]
    assert stamp in cells


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 120),
    density=st.floats(0.0, 0.5),
    stop=st.sampled_from([None, (fills.DISTANCE_PERCENT, 1.0), (fills.DISTANCE_PRICE, 0.8)]),
    target=st.sampled_from([None, (fills.DISTANCE_PERCENT, 2.0)]),
    trail=st.sampled_from([None, (fills.DISTANCE_PERCENT, 1.5)]),
    fee_rate=st.sampled_from([0.0, 0.001]),
    fractional=st.booleans(),
)
def test_accounting_invariants_hold_for_any_signals(
    seed: int,
    n: int,
    density: float,
    stop: tuple[int, float] | None,
    target: tuple[int, float] | None,
    trail: tuple[int, float] | None,
    fee_rate: float,
    fractional: bool,
) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    opens = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(opens, close) * (1 + np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(opens, close) * (1 - np.abs(rng.normal(0, 0.004, n)))
    bars = list(zip(opens, high, low, close, strict=True))

    def signals() -> tuple[int, ...]:
        return tuple(int(i) for i in np.flatnonzero(rng.random(n) < density))

    out = run(
        bars,
        enter_long=signals(),
        exit_long=signals(),
        enter_short=signals(),
        exit_short=signals(),
        stop=stop,
        target=target,
        trail=trail,
        fee_rate=fee_rate,
        fee_fixed=0.5 if fee_rate else 0.0,
        fractional=fractional,
    )
    trades = out["trades"]
    # Equity ends at capital plus every trade's net P&L (open ones marked to the last close).
    assert out["equity"][-1] == pytest.approx(1_000 + sum(t["pnl"] for t in trades), abs=1e-6)
    for before, after in itertools.pairwise(trades):
        assert after["entry"] >= before["exit"], "one position at a time"
    for trade in trades:
        assert trade["entry"] <= trade["exit"] and trade["qty"] > 0 and trade["fees"] >= 0
        assert fractional or trade["qty"] == int(trade["qty"])
        assert trade["entry"] >= 1, "a signal fills at the next bar's open at the earliest"
        gross = trade["side"] * trade["qty"] * (trade["exit_price"] - trade["entry_price"])
        assert trade["pnl"] == pytest.approx(gross - trade["fees"], abs=1e-9)
    # Positions are held exactly between each trade's entry and exit closes.
    expected = np.zeros(n)
    for trade in trades:
        last = trade["exit"] + (1 if trade["reason"] == "end" else 0)
        expected[trade["entry"] : last] = trade["side"] * trade["qty"]
    np.testing.assert_array_equal(out["position"], expected)
