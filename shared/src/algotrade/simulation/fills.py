"""The fill model: how signals and stops become fills, shared by backtests and forward tests.

Rules (docs/backtesting.md has the long form):

- A signal computed on bar t's close fills at bar t+1's open, moved ``slippage`` against the
  trader. A signal on the last bar never fills.
- Stops, trailing stops and take-profits are resting orders checked inside every bar a
  position is held, the entry bar included, against the bar's low and high. A bar that opens
  beyond a stop (a gap) fills at the open; one that opens beyond a target fills at the open too.
  When a stop and a target both lie inside one bar's range, the order of the touches is unknown,
  so the worse one is assumed to fill first: the stop.
- Stop and trailing-stop fills are market orders (slippage applies); a take-profit is a limit
  order and fills at its price.
- A trailing stop trails the best price seen since entry up to the previous bar (a bar's own
  high cannot both move the stop and hit it, since the order inside a bar is unknown).
- Fees on every fill: ``notional * fee_rate + fee_fixed``.

The scalar rules (`slipped_price`, `fill_fee`, `intrabar_exit`, `entry_quantity`, `decide`)
are numba functions a paper broker calls bar by bar, and `simulate` applies them over whole
arrays; both run the same compiled code. The fill rules and the loop live in this one module on
purpose: numba's on-disk cache is keyed per source file and does not notice a change in another
file's function that a cached kernel inlined. The one exception, the curve statistics of
`algotrade.metrics` that `simulate` folds into its loop, is covered by a hash of that module in
`simulate`'s cache key (`_compile_simulate`).
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from algotrade import metrics as metrics_module
from algotrade.metrics import CurveState, curve_push, curve_start

F = TypeVar("F", bound=Callable[..., Any])

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

NAN = math.nan

# Exit reasons, as stored in the trade records (index into EXIT_REASONS).
EXIT_NONE: Final = 0
EXIT_SIGNAL: Final = 1
EXIT_STOP_LOSS: Final = 2
EXIT_TAKE_PROFIT: Final = 3
EXIT_TRAILING_STOP: Final = 4
EXIT_END: Final = 5
EXIT_REASONS: Final = ("none", "signal", "stop_loss", "take_profit", "trailing_stop", "end")

# How a risk distance series is read (`RiskBinding.unit`).
DISTANCE_NONE: Final = 0
DISTANCE_PERCENT: Final = 1  # percent of the entry price
DISTANCE_PRICE: Final = 2  # price units (ATR mode)

# Position sizing.
SIZE_ALL_IN: Final = 0
SIZE_FIXED: Final = 1  # units per trade
SIZE_PERCENT_EQUITY: Final = 2  # position value = equity * value / 100
SIZE_RISK: Final = 3  # quantity = equity * value / 100 / stop distance

# `simulate`'s ``params`` array.
P_CAPITAL: Final = 0
P_FEE_RATE: Final = 1
P_FEE_FIXED: Final = 2
P_SLIPPAGE: Final = 3
P_FRACTIONAL: Final = 4
P_ALLOW_SHORT: Final = 5
PARAM_COUNT: Final = 6

# `simulate`'s ``modes`` array.
M_STOP: Final = 0
M_TARGET: Final = 1
M_TRAIL: Final = 2
M_SIZE: Final = 3
MODE_COUNT: Final = 4

# Columns of the trade records `simulate` returns (all float64; indices are exact integers).
T_ENTRY_INDEX: Final = 0
T_EXIT_INDEX: Final = 1
T_SIDE: Final = 2
T_QUANTITY: Final = 3
T_ENTRY_PRICE: Final = 4
T_EXIT_PRICE: Final = 5
T_FEES: Final = 6
T_PNL: Final = 7
T_REASON: Final = 8
TRADE_COLUMNS: Final = 9

# Slots of the broker state `step` trades on (one float64 array per account; `new_broker_state`).
S_CASH: Final = 0
S_QUANTITY: Final = 1  # units held, always >= 0; S_SIDE gives the direction
S_SIDE: Final = 2  # +1 long, -1 short, 0 flat
S_ENTRY_PRICE: Final = 3
S_ENTRY_FEE: Final = 4
S_ENTRY_INDEX: Final = 5  # bar index of the entry fill
S_STOP: Final = 6  # resting exit levels, NaN when absent
S_TARGET: Final = 7
S_TRAIL_GAP: Final = 8  # trailing distance (percent or price, as its mode says)
S_TRAIL: Final = 9
S_BEST: Final = 10  # best price since entry, up to the previous bar
S_LAST_CLOSE: Final = 11  # the mark (a NaN close keeps the last one)
S_PENDING_EXIT: Final = 12  # orders for the next open: 1.0 = exit
S_PENDING_ENTRY: Final = 13  # +1 long, -1 short, 0 none
S_SIGNAL_STOP: Final = 14  # risk values read at the pending entry's signal bar
S_SIGNAL_TARGET: Final = 15
S_SIGNAL_TRAIL: Final = 16
S_SIGNAL_SIZE: Final = 17
S_BAR: Final = 18  # index of the next bar
BROKER_SLOTS: Final = 19

# A forward-test account (`live_step`): the broker slots, then the curve statistics and the
# running tallies the live metrics need, so one array is the whole account.
L_CURVE: Final = BROKER_SLOTS  # the 14 values of `algotrade.metrics.CurveState`
CURVE_SLOTS: Final = 14
L_ENTRY_TS: Final = L_CURVE + CURVE_SLOTS  # bar ts of the open position's entry
L_CLOSED: Final = L_ENTRY_TS + 1  # closed trades
L_WINS: Final = L_CLOSED + 1
L_LOSSES: Final = L_WINS + 1
L_GROSS_WIN: Final = L_LOSSES + 1
L_GROSS_LOSS: Final = L_GROSS_WIN + 1
L_PNL_TOTAL: Final = L_GROSS_LOSS + 1
L_ENTRY_NOTIONAL: Final = L_PNL_TOTAL + 1  # notional of every entry fill
L_EXIT_NOTIONAL: Final = L_ENTRY_NOTIONAL + 1  # and of every exit fill
LIVE_SLOTS: Final = L_EXIT_NOTIONAL + 1

# `live_step`'s outputs: trades closed in the bar (the `T_*` columns, then the entry's ts) and
# fills (`F_*` columns). A bar closes at most 2 trades (a signal exit, then an entry stopped
# out in its own bar) and fills at most 3 orders.
T_ENTRY_TS: Final = TRADE_COLUMNS
LIVE_TRADE_COLUMNS: Final = TRADE_COLUMNS + 1
MAX_BAR_TRADES: Final = 2
F_DIRECTION: Final = 0  # +1 buy, -1 sell
F_QUANTITY: Final = 1
F_PRICE: Final = 2
F_FEE: Final = 3
F_REASON: Final = 4  # index into FILL_REASONS
FILL_COLUMNS: Final = 5
MAX_BAR_FILLS: Final = 3
FILL_REASONS: Final = ("entry", *EXIT_REASONS[EXIT_SIGNAL:EXIT_END])


def _njit(fn: F) -> F:
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


def _inline(fn: F) -> F:
    """Compiled into its callers at numba IR level (no call, no array reference counting)."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn))


@_njit
def slipped_price(price: float, direction: float, slippage: float) -> float:
    """A market fill's price: ``direction`` +1 buys above ``price``, -1 sells below it."""
    return price * (1.0 + direction * slippage)


@_njit
def fill_fee(notional: float, fee_rate: float, fee_fixed: float) -> float:
    return abs(notional) * fee_rate + fee_fixed


@_njit
def stop_level(entry: float, side: float, distance: float, mode: int) -> float:
    """The price ``distance`` away from ``entry`` against the position (NaN without one)."""
    if mode == DISTANCE_NONE or distance != distance:
        return NAN
    gap = entry * distance / 100.0 if mode == DISTANCE_PERCENT else distance
    return entry - side * gap


@_njit
def target_level(entry: float, side: float, distance: float, mode: int) -> float:
    """The price ``distance`` away from ``entry`` in the position's favour (NaN without one)."""
    if mode == DISTANCE_NONE or distance != distance:
        return NAN
    gap = entry * distance / 100.0 if mode == DISTANCE_PERCENT else distance
    return entry + side * gap


@_njit
def intrabar_exit(
    side: float,
    open_: float,
    high: float,
    low: float,
    stop: float,
    trail: float,
    target: float,
) -> tuple[int, float]:
    """Which resting exit fills in this bar, and at what price before slippage.

    ``stop``, ``trail`` and ``target`` are price levels, NaN when absent. The tighter of the
    stop and the trailing stop is the one that can fill. Returns ``(EXIT_NONE, nan)`` when none
    fills. Worst case inside the bar: a stop that is touched fills before a touched target.
    """
    level = stop
    reason = EXIT_STOP_LOSS
    if trail == trail and (level != level or side * (trail - level) > 0.0):
        level = trail
        reason = EXIT_TRAILING_STOP
    has_stop = level == level
    has_target = target == target
    if side > 0.0:
        if has_stop and open_ <= level:
            return reason, open_
        if has_target and open_ >= target:
            return EXIT_TAKE_PROFIT, open_
        if has_stop and low <= level:
            return reason, level
        if has_target and high >= target:
            return EXIT_TAKE_PROFIT, target
    else:
        if has_stop and open_ >= level:
            return reason, open_
        if has_target and open_ <= target:
            return EXIT_TAKE_PROFIT, open_
        if has_stop and high >= level:
            return reason, level
        if has_target and low <= target:
            return EXIT_TAKE_PROFIT, target
    return EXIT_NONE, NAN


@_njit
def entry_quantity(
    cash: float,
    price: float,
    size_mode: int,
    size_value: float,
    stop_distance: float,
    fee_rate: float,
    fee_fixed: float,
    fractional: bool,
) -> float:
    """Units to trade when opening at ``price`` with ``cash`` (the equity while flat).

    Never more than all-in (no leverage): the cash after fees. ``stop_distance`` is in price
    units (risk sizing). Whole units are rounded down. Returns 0 when nothing can be bought.
    """
    affordable = (cash - fee_fixed) / (1.0 + fee_rate)
    if affordable <= 0.0 or price <= 0.0 or price != price:
        return 0.0
    most = affordable / price
    if size_mode == SIZE_ALL_IN:
        quantity = most
    elif size_mode == SIZE_FIXED:
        quantity = size_value
    elif size_mode == SIZE_PERCENT_EQUITY:
        quantity = cash * size_value / 100.0 / price
    else:
        if not stop_distance > 0.0:
            return 0.0
        quantity = cash * size_value / 100.0 / stop_distance
    if quantity != quantity:
        return 0.0
    quantity = min(quantity, most)
    if not fractional:
        quantity = math.floor(quantity)
    return max(quantity, 0.0)


@_njit
def _record(
    trades: FloatArray,
    count: int,
    entry_index: int,
    exit_index: int,
    side: float,
    quantity: float,
    entry_price: float,
    exit_price: float,
    fees: float,
    pnl: float,
    reason: int,
) -> None:
    """Write trade number ``count`` (the buffer is sized for every possible entry)."""
    row = trades[count]
    row[T_ENTRY_INDEX] = entry_index
    row[T_EXIT_INDEX] = exit_index
    row[T_SIDE] = side
    row[T_QUANTITY] = quantity
    row[T_ENTRY_PRICE] = entry_price
    row[T_EXIT_PRICE] = exit_price
    row[T_FEES] = fees
    row[T_PNL] = pnl
    row[T_REASON] = reason


@_inline
def decide(
    side: float,
    enter_long: bool,
    exit_long: bool,
    enter_short: bool,
    exit_short: bool,
    allow_short: bool,
) -> tuple[bool, float]:
    """The orders a bar's closing signals place for the next open: ``(exit, entry side)``.

    An entry and its own exit on one bar cancel the entry; long and short entries on one bar
    cancel each other; an opposite entry while holding reverses (exit, then entry).
    """
    want_long = enter_long and not exit_long
    want_short = allow_short and enter_short and not exit_short
    if want_long and want_short:
        return False, 0.0
    if side > 0.0:
        return exit_long or want_short, -1.0 if want_short else 0.0
    if side < 0.0:
        return exit_short or want_long, 1.0 if want_long else 0.0
    return False, 1.0 if want_long else (-1.0 if want_short else 0.0)


@_njit
def new_broker_state(capital: float) -> FloatArray:
    """A flat account holding ``capital`` in cash, before its first bar."""
    state = np.zeros(BROKER_SLOTS, dtype=np.float64)
    state[S_CASH] = capital
    state[S_ENTRY_INDEX] = -1.0
    for slot in (S_STOP, S_TARGET, S_TRAIL_GAP, S_TRAIL, S_BEST, S_LAST_CLOSE):
        state[slot] = NAN
    for slot in (S_SIGNAL_STOP, S_SIGNAL_TARGET, S_SIGNAL_TRAIL, S_SIGNAL_SIZE):
        state[slot] = NAN
    return state


@_inline
def _close_position(
    state: FloatArray,
    trades: FloatArray,
    count: int,
    i: int,
    price: float,
    fee_rate: float,
    fee_fixed: float,
    reason: int,
) -> int:
    """Sell (or buy back) the whole position at ``price``; record the trade as number ``count``."""
    side = state[S_SIDE]
    quantity = state[S_QUANTITY]
    entry_price = state[S_ENTRY_PRICE]
    entry_fee = state[S_ENTRY_FEE]
    notional = quantity * price
    fee = fill_fee(notional, fee_rate, fee_fixed)
    state[S_CASH] += side * notional - fee
    pnl = side * quantity * (price - entry_price) - entry_fee - fee
    _record(
        trades,
        count,
        int(state[S_ENTRY_INDEX]),
        i,
        side,
        quantity,
        entry_price,
        price,
        entry_fee + fee,
        pnl,
        reason,
    )
    state[S_QUANTITY] = 0.0
    state[S_SIDE] = 0.0
    return count + 1


@_inline
def step(
    state: FloatArray,
    curve: CurveState,
    trades: FloatArray,
    count: int,
    i: int,
    open_: float,
    high: float,
    low: float,
    close: float,
    enter_long: bool,
    exit_long: bool,
    enter_short: bool,
    exit_short: bool,
    stop_value: float,
    target_value: float,
    trail_value: float,
    size_value: float,
    decide_next: bool,
    modes: IntArray,
    params: FloatArray,
) -> tuple[CurveState, int]:
    """Trade bar ``i`` on the broker ``state`` (`S_*` slots): the body of `simulate`'s loop.

    In order: fill the orders decided at the previous close at this open (exit first, then
    entry), check resting exits inside the bar, trail, mark to the close (pushing the equity
    onto ``curve``), then, when ``decide_next``, let this close's signals place the orders for
    the next open. The risk values are this bar's (NaN when the plan has no such node); they
    are kept with an order and used when it fills. Closed trades are written to ``trades``
    from row ``count``; returns the new curve and count. A forward test calls it once per bar
    (`live_step`), a backtest once per bar of its window, so both trade alike.
    """
    fee_rate = params[P_FEE_RATE]
    fee_fixed = params[P_FEE_FIXED]
    slippage = params[P_SLIPPAGE]
    stop_mode = modes[M_STOP]
    target_mode = modes[M_TARGET]
    trail_mode = modes[M_TRAIL]

    pending_entry = state[S_PENDING_ENTRY]
    if state[S_PENDING_EXIT] != 0.0 or pending_entry != 0.0:
        o = open_
        if o == o:
            if state[S_PENDING_EXIT] != 0.0 and state[S_QUANTITY] > 0.0:
                price = slipped_price(o, -state[S_SIDE], slippage)
                count = _close_position(
                    state, trades, count, i, price, fee_rate, fee_fixed, EXIT_SIGNAL
                )
            if pending_entry != 0.0 and state[S_QUANTITY] == 0.0:
                price = slipped_price(o, pending_entry, slippage)
                stop = stop_level(price, pending_entry, state[S_SIGNAL_STOP], stop_mode)
                cash = state[S_CASH]
                units = entry_quantity(
                    cash,
                    price,
                    modes[M_SIZE],
                    state[S_SIGNAL_SIZE],
                    abs(price - stop),
                    fee_rate,
                    fee_fixed,
                    params[P_FRACTIONAL] != 0.0,
                )
                if units > 0.0:
                    notional = units * price
                    entry_fee = fill_fee(notional, fee_rate, fee_fixed)
                    state[S_SIDE] = pending_entry
                    state[S_QUANTITY] = units
                    state[S_CASH] = cash - (pending_entry * notional + entry_fee)
                    state[S_ENTRY_PRICE] = price
                    state[S_ENTRY_FEE] = entry_fee
                    state[S_ENTRY_INDEX] = i
                    state[S_STOP] = stop
                    state[S_TARGET] = NAN
                    if target_mode != DISTANCE_NONE:
                        state[S_TARGET] = target_level(
                            price, pending_entry, state[S_SIGNAL_TARGET], target_mode
                        )
                    trail_gap = state[S_SIGNAL_TRAIL] if trail_mode != DISTANCE_NONE else NAN
                    state[S_TRAIL_GAP] = trail_gap
                    state[S_BEST] = price
                    state[S_TRAIL] = stop_level(price, pending_entry, trail_gap, trail_mode)
        state[S_PENDING_EXIT] = 0.0
        state[S_PENDING_ENTRY] = 0.0

    quantity = state[S_QUANTITY]
    if quantity > 0.0 and (
        stop_mode != DISTANCE_NONE or target_mode != DISTANCE_NONE or trail_mode != DISTANCE_NONE
    ):
        side = state[S_SIDE]
        reason, level = EXIT_NONE, NAN
        if open_ == open_ and high == high and low == low:
            reason, level = intrabar_exit(
                side, open_, high, low, state[S_STOP], state[S_TRAIL], state[S_TARGET]
            )
        if reason != EXIT_NONE:
            price = level if reason == EXIT_TAKE_PROFIT else slipped_price(level, -side, slippage)
            count = _close_position(state, trades, count, i, price, fee_rate, fee_fixed, reason)
        elif trail_mode != DISTANCE_NONE:
            extreme = high if side > 0.0 else low
            if side * (extreme - state[S_BEST]) > 0.0:
                state[S_BEST] = extreme
                state[S_TRAIL] = stop_level(extreme, side, state[S_TRAIL_GAP], trail_mode)

    if close == close:
        state[S_LAST_CLOSE] = close
    side = state[S_SIDE]
    held = side * state[S_QUANTITY]
    cash = state[S_CASH]
    value = cash + held * state[S_LAST_CLOSE] if held != 0.0 else cash
    curve = curve_push(curve, value, held, close)
    state[S_BAR] = i + 1
    if decide_next and (enter_long or enter_short or (side != 0.0 and (exit_long or exit_short))):
        pending_exit, pending_entry = decide(
            side, enter_long, exit_long, enter_short, exit_short, params[P_ALLOW_SHORT] != 0.0
        )
        state[S_PENDING_EXIT] = 1.0 if pending_exit else 0.0
        state[S_PENDING_ENTRY] = pending_entry
        if pending_entry != 0.0:
            state[S_SIGNAL_STOP] = stop_value
            state[S_SIGNAL_TARGET] = target_value
            state[S_SIGNAL_TRAIL] = trail_value
            state[S_SIGNAL_SIZE] = size_value
    return curve, count


@_inline
def _simulate(
    open_: FloatArray,
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    enter_long: BoolArray,
    exit_long: BoolArray,
    enter_short: BoolArray,
    exit_short: BoolArray,
    stop_distance: FloatArray,
    target_distance: FloatArray,
    trail_distance: FloatArray,
    size_value: FloatArray,
    modes: IntArray,
    params: FloatArray,
    start: int,
    end: int,
    record: bool,
) -> tuple[FloatArray, FloatArray, int, CurveState]:
    equity = np.empty(max(end - start, 0) if record else 0, dtype=np.float64)
    # Every trade starts with an entry signal, which bounds the trades. (Growing a buffer
    # inside the loop would make numba reference-count it on every bar, ~50x slower.)
    entries = 1
    for i in range(start, end):  # branch-free, so it vectorises
        entries += int(enter_long[i]) + int(enter_short[i])
    trades = np.empty((entries, TRADE_COLUMNS), dtype=np.float64)
    count = 0
    capital = params[P_CAPITAL]
    curve = curve_start(capital)
    state = new_broker_state(capital)
    state[S_BAR] = start
    # Risk series are read only when the plan has the node: absent ones may be empty arrays.
    has_stop = modes[M_STOP] != DISTANCE_NONE
    has_target = modes[M_TARGET] != DISTANCE_NONE
    has_trail = modes[M_TRAIL] != DISTANCE_NONE
    has_size = modes[M_SIZE] != SIZE_ALL_IN
    resting = has_stop or has_target or has_trail
    i = start
    while i < end:
        # Fast paths over bars where `step` would only mark the position (same arithmetic,
        # in registers rather than the state array): flat with no order pending and no entry
        # signal, or holding with no resting exit, no order pending and no signal at all.
        quantity = state[S_QUANTITY]
        if quantity == 0.0 and state[S_PENDING_ENTRY] == 0.0:
            cash = state[S_CASH]
            last_close = state[S_LAST_CLOSE]
            while i < end and not (enter_long[i] | enter_short[i]):
                c = close[i]
                if c == c:
                    last_close = c
                curve = curve_push(curve, cash, 0.0, c)
                if record:
                    equity[i - start] = cash
                i += 1
            state[S_LAST_CLOSE] = last_close
            state[S_BAR] = i
        elif quantity > 0.0 and not resting and state[S_PENDING_EXIT] == 0.0:
            cash = state[S_CASH]
            last_close = state[S_LAST_CLOSE]
            held = state[S_SIDE] * quantity
            while i < end and not (exit_long[i] | exit_short[i] | enter_long[i] | enter_short[i]):
                c = close[i]
                if c == c:
                    last_close = c
                value = cash + held * last_close
                curve = curve_push(curve, value, held, c)
                if record:
                    equity[i - start] = value
                i += 1
            state[S_LAST_CLOSE] = last_close
            state[S_BAR] = i
        if i == end:
            break
        curve, count = step(
            state,
            curve,
            trades,
            count,
            i,
            open_[i],
            high[i],
            low[i],
            close[i],
            enter_long[i],
            exit_long[i],
            enter_short[i],
            exit_short[i],
            stop_distance[i] if has_stop else NAN,
            target_distance[i] if has_target else NAN,
            trail_distance[i] if has_trail else NAN,
            size_value[i] if has_size else NAN,
            i + 1 < end,
            modes,
            params,
        )
        if record:
            equity[i - start] = curve[5]
        i += 1
    if state[S_QUANTITY] > 0.0:
        count = _record_open(state, trades, count, end - 1)
    return equity, trades, count, curve


@_inline
def _record_open(state: FloatArray, trades: FloatArray, count: int, last_index: int) -> int:
    """Record the position still held as an open trade marked to the last close (`EXIT_END`)."""
    side = state[S_SIDE]
    quantity = state[S_QUANTITY]
    last_close = state[S_LAST_CLOSE]
    entry_price = state[S_ENTRY_PRICE]
    entry_fee = state[S_ENTRY_FEE]
    pnl = side * quantity * (last_close - entry_price) - entry_fee
    _record(
        trades,
        count,
        int(state[S_ENTRY_INDEX]),
        last_index,
        side,
        quantity,
        entry_price,
        last_close,
        entry_fee,
        pnl,
        EXIT_END,
    )
    return count + 1


def _metrics_stamp() -> str:
    """A hash of `algotrade.metrics`' source, whose numba functions `simulate` inlines."""
    try:
        source = inspect.getsource(metrics_module).encode()
    except (OSError, TypeError):  # no source shipped: fall back to the module's own version
        source = repr(metrics_module.METRICS_VERSION).encode()
    return hashlib.sha256(source).hexdigest()


def _compile_simulate(stamp: str) -> Any:
    """`simulate`, compiled and cached under a key that includes ``stamp``.

    numba's on-disk cache notices changes to this file but not to `algotrade.metrics`, whose
    curve statistics are inlined here; numba hashes a closure's cell contents into the cache
    key, so closing over the metrics source hash makes a changed metrics module a cache miss.
    """

    def simulate(
        open_: FloatArray,
        high: FloatArray,
        low: FloatArray,
        close: FloatArray,
        enter_long: BoolArray,
        exit_long: BoolArray,
        enter_short: BoolArray,
        exit_short: BoolArray,
        stop_distance: FloatArray,
        target_distance: FloatArray,
        trail_distance: FloatArray,
        size_value: FloatArray,
        modes: IntArray,
        params: FloatArray,
        start: int,
        end: int,
        record: bool,
    ) -> tuple[FloatArray, FloatArray, int, CurveState]:
        _ = stamp  # part of the cache key, see above
        return _simulate(
            open_,
            high,
            low,
            close,
            enter_long,
            exit_long,
            enter_short,
            exit_short,
            stop_distance,
            target_distance,
            trail_distance,
            size_value,
            modes,
            params,
            start,
            end,
            record,
        )

    return _njit(simulate)


simulate = _compile_simulate(_metrics_stamp())
"""Trade bars ``[start, end)`` from flat: ``(equity, trades, count, curve)``.

``curve`` holds the running statistics `algotrade.metrics.curve_finish` turns into metrics.
With ``record`` false ``equity`` is empty (all a sweep needs is ``curve``); otherwise it is
marked at each bar's close. The position at each close follows from the trades
(`positions`). ``trades[:count]`` hold the `T_*` columns; the last one is open (reason
`EXIT_END`, exit price = last close, no exit fee) when a position is held at the end.

Per bar, in this order: fill the orders decided at the previous close at this open (exit
first, then entry), check resting exits inside the bar, trail, mark to the close, decide the
orders for the next open.
"""


def _compile_live_step(stamp: str) -> Any:
    """`live_step`, cached under ``stamp`` like `simulate` (it inlines the curve statistics)."""

    def live_step(
        state: FloatArray,
        values: FloatArray,
        signal_slots: IntArray,
        risk_slots: IntArray,
        modes: IntArray,
        params: FloatArray,
        ts: float,
        trades: FloatArray,
        fills: FloatArray,
    ) -> tuple[int, int]:
        _ = stamp  # part of the cache key, see `_compile_simulate`
        i = int(state[S_BAR])
        # Scalars, not small arrays: an allocation costs as much as the rest of the step.
        enter_long = _signal(values, signal_slots, 0)
        exit_long = _signal(values, signal_slots, 1)
        enter_short = _signal(values, signal_slots, 2)
        exit_short = _signal(values, signal_slots, 3)
        curve = (
            state[L_CURVE],
            state[L_CURVE + 1],
            state[L_CURVE + 2],
            state[L_CURVE + 3],
            state[L_CURVE + 4],
            state[L_CURVE + 5],
            state[L_CURVE + 6],
            state[L_CURVE + 7],
            state[L_CURVE + 8],
            state[L_CURVE + 9],
            state[L_CURVE + 10],
            state[L_CURVE + 11],
            state[L_CURVE + 12],
            state[L_CURVE + 13],
        )
        held_entry_ts = state[L_ENTRY_TS]
        curve, count = step(
            state,
            curve,
            trades,
            0,
            i,
            values[0],
            values[1],
            values[2],
            values[3],
            enter_long,
            exit_long,
            enter_short,
            exit_short,
            values[risk_slots[0]] if risk_slots[0] >= 0 else NAN,
            values[risk_slots[1]] if risk_slots[1] >= 0 else NAN,
            values[risk_slots[2]] if risk_slots[2] >= 0 else NAN,
            values[risk_slots[3]] if risk_slots[3] >= 0 else NAN,
            True,
            modes,
            params,
        )
        for k in range(CURVE_SLOTS):
            state[L_CURVE + k] = curve[k]
        fee_rate = params[P_FEE_RATE]
        fee_fixed = params[P_FEE_FIXED]
        filled = 0
        for row in range(count):
            trade = trades[row]
            side = trade[T_SIDE]
            quantity = trade[T_QUANTITY]
            if int(trade[T_ENTRY_INDEX]) == i:
                trade[T_ENTRY_TS] = ts
                price = trade[T_ENTRY_PRICE]
                _fill(
                    fills,
                    filled,
                    side,
                    quantity,
                    price,
                    fill_fee(quantity * price, fee_rate, fee_fixed),
                    0,
                )
                filled += 1
                state[L_ENTRY_NOTIONAL] += quantity * price
            else:
                trade[T_ENTRY_TS] = held_entry_ts
            price = trade[T_EXIT_PRICE]
            _fill(
                fills,
                filled,
                -side,
                quantity,
                price,
                fill_fee(quantity * price, fee_rate, fee_fixed),
                int(trade[T_REASON]),
            )
            filled += 1
            state[L_EXIT_NOTIONAL] += quantity * price
            pnl = trade[T_PNL]
            state[L_CLOSED] += 1.0
            state[L_PNL_TOTAL] += pnl
            if pnl > 0.0:
                state[L_WINS] += 1.0
                state[L_GROSS_WIN] += pnl
            elif pnl < 0.0:
                state[L_LOSSES] += 1.0
                state[L_GROSS_LOSS] -= pnl
        if state[S_QUANTITY] > 0.0 and int(state[S_ENTRY_INDEX]) == i:
            state[L_ENTRY_TS] = ts
            quantity = state[S_QUANTITY]
            price = state[S_ENTRY_PRICE]
            _fill(fills, filled, state[S_SIDE], quantity, price, state[S_ENTRY_FEE], 0)
            filled += 1
            state[L_ENTRY_NOTIONAL] += quantity * price
        return count, filled

    return _njit(live_step)


@_inline
def _signal(values: FloatArray, signal_slots: IntArray, kind: int) -> bool:
    """Whether any sink of signal ``kind`` (a row of ``signal_slots``, -1 padded) is true."""
    for k in range(signal_slots.shape[1]):
        slot = signal_slots[kind, k]
        if slot >= 0 and values[slot] != 0.0:
            return True
    return False


@_inline
def _fill(
    fills: FloatArray,
    row: int,
    direction: float,
    quantity: float,
    price: float,
    fee: float,
    reason: int,
) -> None:
    out = fills[row]
    out[F_DIRECTION] = direction
    out[F_QUANTITY] = quantity
    out[F_PRICE] = price
    out[F_FEE] = fee
    out[F_REASON] = reason


@_njit
def new_live_state(capital: float) -> FloatArray:
    """A flat forward-test account (`LIVE_SLOTS`) holding ``capital``, before its first bar."""
    state = np.zeros(LIVE_SLOTS, dtype=np.float64)
    state[:BROKER_SLOTS] = new_broker_state(capital)
    curve = curve_start(capital)
    for k in range(CURVE_SLOTS):
        state[L_CURVE + k] = curve[k]
    state[L_ENTRY_TS] = NAN
    return state


live_step = _compile_live_step(_metrics_stamp())
"""Trade one bar on a forward-test account: the bar and the plan's outputs for it in ``values``.

``values`` is the streaming executor's slot array (slots 0-3 hold the bar's open, high, low,
close); ``signal_slots`` (4 x k, -1 padded) names the slots of the enter_long, exit_long,
enter_short and exit_short sinks (several of a kind are OR-ed), ``risk_slots`` those of the
stop, target, trailing-stop and size series (-1 when absent). Runs `step` (deciding the next
open's orders, since live there is always a next bar), then writes the trades it closed to
``trades`` (`LIVE_TRADE_COLUMNS`) and the fills to ``fills`` (`F_*`), returning both counts,
and keeps the curve and trade tallies in ``state`` (`L_*` slots).
"""


@_njit
def positions(start: int, end: int, trades: FloatArray) -> FloatArray:
    """Signed units held at the close of each bar ``[start, end)``, from `simulate`'s trades.

    A trade holds from its entry bar's close up to, not including, its exit bar's close; an
    open trade (`EXIT_END`) through the last bar.
    """
    out = np.zeros(max(end - start, 0), dtype=np.float64)
    for row in range(trades.shape[0]):
        held = trades[row, T_SIDE] * trades[row, T_QUANTITY]
        first = int(trades[row, T_ENTRY_INDEX])
        last = int(trades[row, T_EXIT_INDEX])
        if trades[row, T_REASON] == EXIT_END:
            last += 1
        for i in range(first, last):
            out[i - start] = held
    return out


class FillModel:
    """The fill rules for a broker that works one bar at a time (forward tests' paper broker).

    Same compiled functions `simulate` uses, with the costs of one `BacktestConfig` bound.
    """

    def __init__(self, *, fee_rate: float, fee_fixed: float, slippage: float) -> None:
        self.fee_rate = fee_rate
        self.fee_fixed = fee_fixed
        self.slippage = slippage

    def market_price(self, open_: float, direction: float) -> float:
        """Fill price of a market order at ``open_`` (+1 buy, -1 sell)."""
        return float(slipped_price(open_, direction, self.slippage))

    def fee(self, notional: float) -> float:
        return float(fill_fee(notional, self.fee_rate, self.fee_fixed))

    def resting_exit(
        self,
        side: float,
        open_: float,
        high: float,
        low: float,
        *,
        stop: float = NAN,
        trail: float = NAN,
        target: float = NAN,
    ) -> tuple[str, float] | None:
        """The resting exit that fills in this bar as ``(reason, fill price)``, or None."""
        reason, level = intrabar_exit(side, open_, high, low, stop, trail, target)
        if reason == EXIT_NONE:
            return None
        price = level if reason == EXIT_TAKE_PROFIT else self.market_price(level, -side)
        return EXIT_REASONS[reason], float(price)
