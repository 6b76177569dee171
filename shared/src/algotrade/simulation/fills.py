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
    capital = params[P_CAPITAL]
    fee_rate = params[P_FEE_RATE]
    fee_fixed = params[P_FEE_FIXED]
    slippage = params[P_SLIPPAGE]
    fractional = params[P_FRACTIONAL] != 0.0
    allow_short = params[P_ALLOW_SHORT] != 0.0
    stop_mode = modes[M_STOP]
    target_mode = modes[M_TARGET]
    trail_mode = modes[M_TRAIL]
    size_mode = modes[M_SIZE]
    resting = (
        stop_mode != DISTANCE_NONE or target_mode != DISTANCE_NONE or trail_mode != DISTANCE_NONE
    )

    equity = np.empty(max(end - start, 0) if record else 0, dtype=np.float64)
    # Every trade starts with an entry signal, which bounds the trades. (Growing a buffer
    # inside the loop would make numba reference-count it on every bar, ~50x slower.)
    entries = 1
    for i in range(start, end):  # branch-free, so it vectorises
        entries += int(enter_long[i]) + int(enter_short[i])
    trades = np.empty((entries, TRADE_COLUMNS), dtype=np.float64)
    count = 0
    curve = curve_start(capital)

    cash = capital
    quantity = 0.0  # units held, always >= 0; ``side`` gives the direction
    side = 0.0
    entry_price = 0.0
    entry_fee = 0.0
    entry_index = -1
    stop = NAN
    target = NAN
    trail_gap = NAN  # trailing distance as a price gap (DISTANCE_PRICE) or percent
    trail = NAN
    best = NAN
    last_close = NAN
    pending_exit = False
    pending_entry = 0.0  # +1 long, -1 short at the next open
    signal_bar = -1

    i = start
    while i < end:
        # Fast path: flat with no order pending. Mark and look for the next entry signal.
        if quantity == 0.0 and pending_entry == 0.0:
            while i < end:
                c = close[i]
                if c == c:
                    last_close = c
                curve = curve_push(curve, cash, 0.0, c)
                if record:
                    equity[i - start] = cash
                if (enter_long[i] | enter_short[i]) and i + 1 < end:
                    pending_exit, pending_entry = decide(
                        0.0, enter_long[i], exit_long[i], enter_short[i], exit_short[i], allow_short
                    )
                    signal_bar = i
                i += 1
                if pending_entry != 0.0:
                    break
            continue
        # Fast path: holding with no resting exit and no order pending. Mark and look for a
        # signal that exits or reverses.
        if quantity > 0.0 and not resting and not pending_exit:
            held = side * quantity
            while i < end:
                c = close[i]
                if c == c:
                    last_close = c
                value = cash + held * last_close
                curve = curve_push(curve, value, held, c)
                if record:
                    equity[i - start] = value
                if (exit_long[i] | exit_short[i] | enter_long[i] | enter_short[i]) and i + 1 < end:
                    pending_exit, pending_entry = decide(
                        side,
                        enter_long[i],
                        exit_long[i],
                        enter_short[i],
                        exit_short[i],
                        allow_short,
                    )
                    signal_bar = i
                i += 1
                if pending_exit:
                    break
            continue

        # The general bar: orders at the open, resting exits inside the bar, the close.
        o = open_[i]
        if o == o:
            if pending_exit and quantity > 0.0:
                price = slipped_price(o, -side, slippage)
                notional = quantity * price
                fee = fill_fee(notional, fee_rate, fee_fixed)
                cash += side * notional - fee
                pnl = side * quantity * (price - entry_price) - entry_fee - fee
                _record(
                    trades,
                    count,
                    entry_index,
                    i,
                    side,
                    quantity,
                    entry_price,
                    price,
                    entry_fee + fee,
                    pnl,
                    EXIT_SIGNAL,
                )
                count += 1
                quantity = 0.0
                side = 0.0
            if pending_entry != 0.0 and quantity == 0.0:
                price = slipped_price(o, pending_entry, slippage)
                # Risk series are read only when the plan has the node: absent ones may be
                # passed as empty arrays.
                stop_value = stop_distance[signal_bar] if stop_mode != DISTANCE_NONE else NAN
                stop = stop_level(price, pending_entry, stop_value, stop_mode)
                units = entry_quantity(
                    cash,
                    price,
                    size_mode,
                    size_value[signal_bar] if size_mode != SIZE_ALL_IN else NAN,
                    abs(price - stop),
                    fee_rate,
                    fee_fixed,
                    fractional,
                )
                if units > 0.0:
                    side = pending_entry
                    quantity = units
                    notional = quantity * price
                    entry_fee = fill_fee(notional, fee_rate, fee_fixed)
                    cash -= side * notional + entry_fee
                    entry_price = price
                    entry_index = i
                    target = NAN
                    if target_mode != DISTANCE_NONE:
                        target = target_level(price, side, target_distance[signal_bar], target_mode)
                    trail_gap = NAN
                    if trail_mode != DISTANCE_NONE:
                        trail_gap = trail_distance[signal_bar]
                    best = price
                    trail = stop_level(best, side, trail_gap, trail_mode)
        pending_exit = False
        pending_entry = 0.0

        if quantity > 0.0 and resting:
            h = high[i]
            lo = low[i]
            reason, level = EXIT_NONE, NAN
            if o == o and h == h and lo == lo:
                reason, level = intrabar_exit(side, o, h, lo, stop, trail, target)
            if reason != EXIT_NONE:
                price = (
                    level if reason == EXIT_TAKE_PROFIT else slipped_price(level, -side, slippage)
                )
                notional = quantity * price
                fee = fill_fee(notional, fee_rate, fee_fixed)
                cash += side * notional - fee
                pnl = side * quantity * (price - entry_price) - entry_fee - fee
                _record(
                    trades,
                    count,
                    entry_index,
                    i,
                    side,
                    quantity,
                    entry_price,
                    price,
                    entry_fee + fee,
                    pnl,
                    reason,
                )
                count += 1
                quantity = 0.0
                side = 0.0
            elif trail_mode != DISTANCE_NONE:
                extreme = h if side > 0.0 else lo
                if side * (extreme - best) > 0.0:
                    best = extreme
                    trail = stop_level(best, side, trail_gap, trail_mode)

        c = close[i]
        if c == c:
            last_close = c
        held = side * quantity
        value = cash + held * last_close if held != 0.0 else cash
        curve = curve_push(curve, value, held, c)
        if record:
            equity[i - start] = value
        if i + 1 < end:
            pending_exit, pending_entry = decide(
                side, enter_long[i], exit_long[i], enter_short[i], exit_short[i], allow_short
            )
            signal_bar = i
        i += 1

    if quantity > 0.0:
        pnl = side * quantity * (last_close - entry_price) - entry_fee
        _record(
            trades,
            count,
            entry_index,
            end - 1,
            side,
            quantity,
            entry_price,
            last_close,
            entry_fee,
            pnl,
            EXIT_END,
        )
        count += 1
    return equity, trades, count, curve


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
