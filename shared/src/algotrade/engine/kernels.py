"""Numba kernels: the one implementation of every node's arithmetic.

Every kernel advances one node over a run of bars and keeps everything it must remember in a
float64 ``state`` array. The vectorized executor calls a kernel once over whole arrays; the
streaming executor calls the very same kernel through `run_bar`, one bar at a time, with
length-one views. Both executors therefore perform the same floating-point operations in the
same order, which is what makes their outputs agree (tests check it; this makes it so).

All kernels share one signature, ``kernel(a, b, c, d, o0, o1, o2, state, params)``: up to four
input series, up to three output series (unused ones are ignored), the node's state and its
numeric parameters. Booleans travel as 0.0/1.0.

Each kernel is declared once: ``@kernel(Op.X, *slots)`` above its definition compiles it and
registers it in `KERNELS` under its `Op` code with its state layout, named slots whose sizes
follow from the parameters. The initial state, the checkpoint size and `run_bar`'s dispatch on
the op code are all derived from that registry (tests check that every node type has a
kernel, that the dispatch reaches every kernel and that each kernel stays inside its layout).

NaN policy (documented in docs/strategy-graphs.md): indicators *skip* a bar on which any input
is NaN (output NaN, state untouched), which is how TA-Lib treats the NaN prefix of a series;
bar-shift nodes (lag, change, cross) count bars, NaN or not; element-wise nodes propagate NaN
and comparisons with NaN are false.

Recursive indicators mirror TA-Lib's C code step by step (running sums updated in TA-Lib's
order, EMA seeded with the SMA of its first period, Wilder smoothing for RSI/ATR/ADX). Zero
tests are exact (``!= 0.0``) where TA-Lib uses a fixed epsilon, and relative (``TA_EPSILON``
times the operands' magnitude) where TA-Lib uses its scale-aware test, so results never depend
on the instrument's price scale.

All numba code lives in this single module on purpose: numba's on-disk cache is invalidated
per source file and does not follow calls into other modules, so kernels split across files
could leave a stale compiled `run_bar` behind after a change. The cache goes where numba's own
``NUMBA_CACHE_DIR`` says (the Makefile points it at ``.algotrade/numba``); this module never
sets it.
"""

from __future__ import annotations

import linecache
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Final, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
F = TypeVar("F", bound=Callable[..., Any])
KernelParams = Sequence[float]

NAN = math.nan
# Kernel arguments: input series a-d and output series o0-o2 (executors pad unused ones).
MAX_INPUTS: Final = 4
MAX_OUTPUTS: Final = 3


def _njit(fn: F) -> F:
    """Compile with numba, cached on disk, with NumPy (not Python) division semantics."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))


def _inline(fn: F) -> F:
    """A helper that takes arrays, inlined into its callers at numba IR level.

    A regular call would increment and decrement the array's reference count on every bar,
    which costs more than the helper's own arithmetic.
    """
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn))


# ---------------------------------------------------------------------------------------------
# The kernel registry: op codes, state layouts and the @kernel decorator
# ---------------------------------------------------------------------------------------------


class Op(IntEnum):
    """A kernel's code in a streaming program row; each has exactly one ``@kernel``."""

    PRICE = 0
    CONSTANT = 1
    SMA = 2
    EMA = 3
    WMA = 4
    DEMA = 5
    TEMA = 6
    RSI = 7
    MACD = 8
    STOCH = 9
    SHIFT_DIFF = 10
    CCI = 11
    WILLR = 12
    ADX = 13
    BBANDS = 14
    STDDEV = 15
    ATR = 16
    EXTREME = 17
    DONCHIAN = 18
    OBV = 19
    VWAP = 20
    BINARY = 21
    ABS = 22
    LAG = 23
    CHANGE = 24
    COMPARE = 25
    CROSS = 26
    BETWEEN = 27
    LOGIC = 28
    PASS = 29
    RISK_DISTANCE = 30
    MFI = 31
    SAR = 32
    AROON = 33
    TRIX = 34
    ULTOSC = 35
    NATR = 36
    PPO = 37
    STOCHRSI = 38
    KAMA = 39
    LINREG_SLOPE = 40


SlotSize = int | Callable[[KernelParams], int]


@dataclass(frozen=True, slots=True)
class Slot:
    """A named run of state values: ``size`` floats (fixed, or computed from the kernel's
    numeric parameters, e.g. a ring buffer of ``period`` values), all starting at ``initial``.
    """

    name: str
    size: SlotSize = 1
    initial: float = 0.0

    def length(self, params: KernelParams) -> int:
        return self.size if isinstance(self.size, int) else self.size(params)


def _param(index: int, plus: int = 0) -> Callable[[KernelParams], int]:
    """A slot size read from the kernel's parameters: ``int(params[index]) + plus``."""
    return lambda params: int(params[index]) + plus


def _larger_param(first: int, second: int) -> Callable[[KernelParams], int]:
    return lambda params: int(max(params[first], params[second]))


@dataclass(frozen=True, slots=True)
class StateLayout:
    """The slots of a kernel's state array, in order; the array is their concatenation."""

    slots: tuple[Slot, ...]

    @classmethod
    def of(cls, *slots: str | Slot) -> StateLayout:
        """Slots from `Slot` objects and strings of space-separated scalar slot names."""
        expanded: list[Slot] = []
        for item in slots:
            if isinstance(item, Slot):
                expanded.append(item)
            else:
                expanded.extend(Slot(name) for name in item.split())
        names = [slot.name for slot in expanded]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"state slots named more than once: {duplicates}")
        return cls(tuple(expanded))

    def spans(self, params: KernelParams) -> dict[str, range]:
        """Where each slot lives in the state array for these parameters."""
        spans: dict[str, range] = {}
        start = 0
        for slot in self.slots:
            end = start + slot.length(params)
            spans[slot.name] = range(start, end)
            start = end
        return spans

    def size(self, params: KernelParams) -> int:
        return sum(slot.length(params) for slot in self.slots)

    def initial(self, params: KernelParams) -> list[float]:
        state: list[float] = []
        for slot in self.slots:
            state.extend([slot.initial] * slot.length(params))
        return state


@dataclass(frozen=True, slots=True)
class Kernel:
    """A compiled kernel, its op code and the layout of its state."""

    op: Op
    fn: Callable[..., None]
    state: StateLayout

    @property
    def name(self) -> str:
        return self.op.name.lower()

    def init_state(self, params: KernelParams) -> list[float]:
        return self.state.initial(params)


# Filled once, at import, by @kernel; read only through the frozen `KERNELS` view below.
_REGISTERED: dict[Op, Kernel] = {}


def kernel(op: Op, *state: str | Slot) -> Callable[[Callable[..., None]], Kernel]:
    """Compile the decorated function and register it as the kernel for ``op``.

    ``state`` names its state slots in order (see `StateLayout.of`); the decorated name is
    bound to the registered `Kernel`, whose ``fn`` is the compiled function.
    """
    layout = StateLayout.of(*state)

    def register(fn: Callable[..., None]) -> Kernel:
        if op in _REGISTERED:
            raise ValueError(f"{op!r} already has a kernel: {_REGISTERED[op].fn.__name__}")
        entry = Kernel(op, _njit(fn), layout)
        _REGISTERED[op] = entry
        return entry

    return register


# ---------------------------------------------------------------------------------------------
# Small shared steps (inlined by LLVM into the kernels that use them)
# ---------------------------------------------------------------------------------------------


@_njit
def _ema_next(
    count: float, acc: float, prev: float, period: float, k: float, x: float
) -> tuple[float, float, float, float]:
    """One EMA step: SMA seed over the first ``period`` values, then TA-Lib's recurrence."""
    if count < period:
        acc += x
        count += 1.0
        if count == period:
            prev = acc / period
            return count, acc, prev, prev
        return count, acc, prev, NAN
    prev = (x - prev) * k + prev
    return count, acc, prev, prev


def _ema_slots(prefix: str) -> tuple[str | Slot, ...]:
    """The state `_ema_next` carries: count, seed sum and EMA."""
    return (f"{prefix}_count {prefix}_seed_sum {prefix}",)


@_inline
def _sma_push(st: FloatArray, off: int, period: int, x: float) -> float:
    """Running-sum SMA over ``st[off:]`` laid out as [count, head, total, ring...]."""
    count = st[off]
    head = int(st[off + 1])
    total = st[off + 2] + x
    st[off + 3 + head] = x
    head += 1
    if head == period:
        head = 0
    if count < period:
        count += 1.0
    out = NAN
    if count >= period:
        out = total / period
        total -= st[off + 3 + head]
    st[off] = count
    st[off + 1] = head
    st[off + 2] = total
    return out


def _sma_slots(prefix: str, size: SlotSize) -> tuple[str | Slot, ...]:
    """The state `_sma_push` keeps at its offset: count, head, total and a ring of ``size``."""
    return (f"{prefix}_count {prefix}_head {prefix}_total", Slot(f"{prefix}_ring", size))


@_njit
def _rescan_extreme(
    st: FloatArray, ring: int, period: int, head: int, want_max: bool
) -> tuple[float, int]:
    """Max (or min) of the full ring ``st[ring:ring+period]`` and how many bars ago it was seen.

    ``head`` is the position of the oldest value. Kernels keep a running extreme and its age
    and only rescan when it leaves the window, as TA-Lib's MAX/MIN do; ties keep the newest.
    """
    best = st[ring + head]
    age = period - 1
    position = head
    for j in range(1, period):
        position += 1
        if position == period:
            position = 0
        v = st[ring + position]
        if (v >= best) if want_max else (v <= best):
            best = v
            age = period - 1 - j
    return best, age


def _high_low_window(size: SlotSize) -> tuple[str | Slot, ...]:
    """A window's running high and low, their ages, and rings of highs and lows to rescan."""
    return ("count head high high_age low low_age", Slot("highs", size), Slot("lows", size))


@_njit
def _true_range(high: float, low: float, prev_close: float) -> float:
    """TA-Lib's TRANGE for one bar, in TA-Lib's comparison order."""
    greatest = high - low
    v = abs(prev_close - high)
    if v > greatest:
        greatest = v
    v = abs(low - prev_close)
    if v > greatest:
        greatest = v
    return greatest


@_njit
def _atr_next(
    count: float,
    prev_close: float,
    acc: float,
    atr: float,
    period: int,
    h: float,
    lo: float,
    c: float,
) -> tuple[float, float, float, float, float]:
    """One Wilder ATR step: (count, prev_close, tr_sum, atr, output)."""
    if count == 0.0:
        return 1.0, c, acc, atr, NAN
    tr = _true_range(h, lo, prev_close)
    if count <= period:
        acc += tr
        count += 1.0
        if count == period + 1:
            atr = acc / period
            return count, c, acc, atr, atr
        return count, c, acc, atr, NAN
    # Wilder's (atr * (p - 1) + tr) / p with the division hoisted out of the dependency chain:
    # within a few ulps of TA-Lib's operation order, and several times faster.
    atr = atr * ((period - 1) / period) + tr * (1.0 / period)
    return count, c, acc, atr, atr


# The state `_atr_next` carries.
_ATR_SLOTS = "count prev_close tr_sum atr"


# ---------------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------------


@kernel(Op.PRICE)
def k_price(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Mean of the first ``pr[0]`` inputs: a bar field, hl2, hlc3 or ohlc4."""
    k = int(pr[0])
    n = o0.shape[0]
    if k == 1:
        for i in range(n):
            o0[i] = a[i]
    elif k == 2:
        for i in range(n):
            o0[i] = (a[i] + b[i]) / 2.0
    elif k == 3:
        for i in range(n):
            o0[i] = (a[i] + b[i] + c[i]) / 3.0
    else:
        for i in range(n):
            o0[i] = (a[i] + b[i] + c[i] + d[i]) / 4.0


@kernel(Op.CONSTANT)
def k_constant(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    value = pr[0]
    for i in range(o0.shape[0]):
        o0[i] = value


# ---------------------------------------------------------------------------------------------
# Moving averages
# ---------------------------------------------------------------------------------------------


@kernel(Op.SMA, "count head total", Slot("ring", _param(0)))
def k_sma(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Running-sum SMA (TA-Lib's order of additions and subtractions)."""
    period = int(pr[0])
    count = st[0]
    head = int(st[1])
    total = st[2]
    for i in range(o0.shape[0]):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            continue
        total += x
        st[3 + head] = x
        head += 1
        if head == period:
            head = 0
        if count < period:
            count += 1.0
        if count >= period:
            o0[i] = total / period
            total -= st[3 + head]
        else:
            o0[i] = NAN
    st[0] = count
    st[1] = head
    st[2] = total


@kernel(Op.EMA, "count seed_sum ema")
def k_ema(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """EMA seeded with the SMA of its first ``period`` values."""
    period = pr[0]
    k = 2.0 / (period + 1.0)
    count = st[0]
    acc = st[1]
    prev = st[2]
    for i in range(o0.shape[0]):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            continue
        count, acc, prev, out = _ema_next(count, acc, prev, period, k, x)
        o0[i] = out
    st[0] = count
    st[1] = acc
    st[2] = prev


@kernel(Op.WMA, "count head weighted_sum plain_sum trailing", Slot("ring", _param(0)))
def k_wma(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """TA-Lib's O(1) WMA."""
    period = int(pr[0])
    divider = float((period * (period + 1)) >> 1)
    count = st[0]
    head = int(st[1])
    wsum = st[2]
    psum = st[3]
    trailing = st[4]
    for i in range(o0.shape[0]):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            continue
        st[5 + head] = x
        head += 1
        if head == period:
            head = 0
        if count < period - 1:
            psum += x
            wsum += x * (count + 1.0)
            count += 1.0
            o0[i] = NAN
            continue
        psum += x
        psum -= trailing
        wsum += x * period
        trailing = st[5 + head]
        o0[i] = wsum / divider
        wsum -= psum
        if count < period:
            count += 1.0
    st[0] = count
    st[1] = head
    st[2] = wsum
    st[3] = psum
    st[4] = trailing


@kernel(Op.DEMA, *_ema_slots("ema1"), *_ema_slots("ema2"))
def k_dema(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """2*EMA - EMA(EMA)."""
    period = pr[0]
    k = 2.0 / (period + 1.0)
    c1, s1, e1 = st[0], st[1], st[2]
    c2, s2, e2 = st[3], st[4], st[5]
    for i in range(o0.shape[0]):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            continue
        c1, s1, e1, v1 = _ema_next(c1, s1, e1, period, k, x)
        if math.isnan(v1):
            o0[i] = NAN
            continue
        c2, s2, e2, v2 = _ema_next(c2, s2, e2, period, k, v1)
        o0[i] = NAN if math.isnan(v2) else (2.0 * v1) - v2
    st[0], st[1], st[2] = c1, s1, e1
    st[3], st[4], st[5] = c2, s2, e2


@kernel(Op.TEMA, *_ema_slots("ema1"), *_ema_slots("ema2"), *_ema_slots("ema3"))
def k_tema(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """3*EMA - 3*EMA(EMA) + EMA(EMA(EMA))."""
    period = pr[0]
    k = 2.0 / (period + 1.0)
    c1, s1, e1 = st[0], st[1], st[2]
    c2, s2, e2 = st[3], st[4], st[5]
    c3, s3, e3 = st[6], st[7], st[8]
    for i in range(o0.shape[0]):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            continue
        c1, s1, e1, v1 = _ema_next(c1, s1, e1, period, k, x)
        if math.isnan(v1):
            o0[i] = NAN
            continue
        c2, s2, e2, v2 = _ema_next(c2, s2, e2, period, k, v1)
        if math.isnan(v2):
            o0[i] = NAN
            continue
        c3, s3, e3, v3 = _ema_next(c3, s3, e3, period, k, v2)
        if math.isnan(v3):
            o0[i] = NAN
            continue
        out = (3.0 * v1) - (3.0 * v2)
        o0[i] = out + v3
    st[0], st[1], st[2] = c1, s1, e1
    st[3], st[4], st[5] = c2, s2, e2
    st[6], st[7], st[8] = c3, s3, e3


# ---------------------------------------------------------------------------------------------
# Oscillators and momentum
# ---------------------------------------------------------------------------------------------


@kernel(Op.RSI, "count prev avg_gain avg_loss")
def k_rsi(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Wilder RSI."""
    period = pr[0]
    keep = (period - 1.0) / period
    share = 1.0 / period
    count = st[0]
    prev = st[1]
    gain = st[2]
    loss = st[3]
    for i in range(o0.shape[0]):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            continue
        if count == 0.0:
            prev = x
            count = 1.0
            o0[i] = NAN
            continue
        diff = x - prev
        prev = x
        # min/max instead of TA-Lib's if/else: same values (adding 0.0 is exact), no branch.
        if count <= period:
            loss -= min(diff, 0.0)
            gain += max(diff, 0.0)
            count += 1.0
            if count <= period:
                o0[i] = NAN
                continue
            loss /= period
            gain /= period
        else:
            # Wilder smoothing with the division out of the dependency chain (see _atr_next).
            loss = loss * keep - min(diff, 0.0) * share
            gain = gain * keep + max(diff, 0.0) * share
        total = gain + loss
        o0[i] = 100.0 * (gain / total) if total != 0.0 else 0.0
    st[0] = count
    st[1] = prev
    st[2] = gain
    st[3] = loss


@kernel(Op.MACD, "count slow_sum fast_sum fast slow signal_count signal_sum signal")
def k_macd(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """TA-Lib MACD (fast EMA seeded on the tail of the slow seed window)."""
    fast_p = pr[0]
    slow_p = pr[1]
    if slow_p < fast_p:
        fast_p, slow_p = slow_p, fast_p
    signal_p = pr[2]
    fast_k = 2.0 / (fast_p + 1.0)
    slow_k = 2.0 / (slow_p + 1.0)
    signal_k = 2.0 / (signal_p + 1.0)
    count, slow_sum, fast_sum = st[0], st[1], st[2]
    fast, slow = st[3], st[4]
    sig_count, sig_sum, signal = st[5], st[6], st[7]
    for i in range(o0.shape[0]):
        x = a[i]
        o0[i] = NAN
        o1[i] = NAN
        o2[i] = NAN
        if math.isnan(x):
            continue
        if count < slow_p:
            if count >= slow_p - fast_p:
                fast_sum += x
            slow_sum += x
            count += 1.0
            if count < slow_p:
                continue
            slow = slow_sum / slow_p
            fast = fast_sum / fast_p
        else:
            fast = (x - fast) * fast_k + fast
            slow = (x - slow) * slow_k + slow
        macd = fast - slow
        if sig_count < signal_p:
            sig_sum += macd
            sig_count += 1.0
            if sig_count < signal_p:
                continue
            signal = sig_sum / signal_p
        else:
            signal = (macd - signal) * signal_k + signal
        o0[i] = macd
        o1[i] = signal
        o2[i] = macd - signal
    st[0], st[1], st[2] = count, slow_sum, fast_sum
    st[3], st[4] = fast, slow
    st[5], st[6], st[7] = sig_count, sig_sum, signal


@kernel(
    Op.STOCH,
    *_high_low_window(_param(0)),
    *_sma_slots("slow_k", _param(1)),
    *_sma_slots("slow_d", _param(2)),
)
def k_stoch(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Slow stochastic %K/%D with SMA smoothing."""
    fk = int(pr[0])
    sk = int(pr[1])
    sd = int(pr[2])
    highs = 6
    lows = highs + fk
    k_off = lows + fk
    d_off = k_off + 3 + sk
    count = int(st[0])
    head = int(st[1])
    highest, high_age, lowest, low_age = st[2], int(st[3]), st[4], int(st[5])
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        cl = c[i]
        o0[i] = NAN
        o1[i] = NAN
        if math.isnan(h) or math.isnan(lo) or math.isnan(cl):
            continue
        st[highs + head] = h
        st[lows + head] = lo
        head += 1
        if head == fk:
            head = 0
        if count < fk:
            count += 1
        low_age += 1
        if count == 1 or lo <= lowest:
            lowest = lo
            low_age = 0
        elif low_age >= fk:
            lowest, low_age = _rescan_extreme(st, lows, fk, head, False)
        high_age += 1
        if count == 1 or h >= highest:
            highest = h
            high_age = 0
        elif high_age >= fk:
            highest, high_age = _rescan_extreme(st, highs, fk, head, True)
        if count < fk:
            continue
        diff = (highest - lowest) / 100.0
        fast_k = (cl - lowest) / diff if diff != 0.0 else 0.0
        slow_k = _sma_push(st, k_off, sk, fast_k)
        if math.isnan(slow_k):
            continue
        slow_d = _sma_push(st, d_off, sd, slow_k)
        if math.isnan(slow_d):
            continue
        o0[i] = slow_k
        o1[i] = slow_d
    st[0] = count
    st[1] = head
    st[2], st[3], st[4], st[5] = highest, high_age, lowest, low_age


class ShiftDiffMode(IntEnum):
    """`k_shift_diff`'s output (its ``pr[1]``)."""

    ROC = 0
    MOM = 1


@kernel(Op.SHIFT_DIFF, "count head", Slot("ring", _param(0)))
def k_shift_diff(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """ROC or MOM (``pr[1]``, a `ShiftDiffMode`) over accepted values."""
    period = int(pr[0])
    roc = int(pr[1]) == ShiftDiffMode.ROC
    count = st[0]
    head = int(st[1])
    for i in range(o0.shape[0]):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            continue
        if count >= period:
            old = st[2 + head]
            if roc:
                o0[i] = ((x / old) - 1.0) * 100.0 if old != 0.0 else 0.0
            else:
                o0[i] = x - old
        else:
            o0[i] = NAN
            count += 1.0
        st[2 + head] = x
        head += 1
        if head == period:
            head = 0
    st[0] = count
    st[1] = head


@kernel(Op.CCI, "count head", Slot("typical", _param(0)))
def k_cci(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Commodity Channel Index, TA-Lib's circular-buffer sums."""
    period = int(pr[0])
    count = st[0]
    head = int(st[1])
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        cl = c[i]
        if math.isnan(h) or math.isnan(lo) or math.isnan(cl):
            o0[i] = NAN
            continue
        typical = (h + lo + cl) / 3
        st[2 + head] = typical
        head += 1
        if head == period:
            head = 0
        if count < period:
            count += 1.0
        if count < period:
            o0[i] = NAN
            continue
        average = 0.0
        for j in range(period):
            average += st[2 + j]
        average /= period
        deviation = 0.0
        for j in range(period):
            deviation += abs(st[2 + j] - average)
        deviation /= period
        num = typical - average
        # TA-Lib's flatness test, relative to the window's own price level (TA_IS_ZERO_SCALED):
        # an identical-price window leaves rounding residue in the average, never a signal.
        scale = TA_EPSILON * abs(average)
        if abs(num) > scale and abs(deviation) > scale:
            o0[i] = num / (0.015 * deviation)
        else:
            o0[i] = 0.0
    st[0] = count
    st[1] = head


@kernel(Op.WILLR, *_high_low_window(_param(0)))
def k_willr(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Williams %R."""
    period = int(pr[0])
    highs = 6
    lows = highs + period
    count = int(st[0])
    head = int(st[1])
    highest, high_age, lowest, low_age = st[2], int(st[3]), st[4], int(st[5])
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        cl = c[i]
        if math.isnan(h) or math.isnan(lo) or math.isnan(cl):
            o0[i] = NAN
            continue
        st[highs + head] = h
        st[lows + head] = lo
        head += 1
        if head == period:
            head = 0
        if count < period:
            count += 1
        low_age += 1
        if count == 1 or lo <= lowest:
            lowest = lo
            low_age = 0
        elif low_age >= period:
            lowest, low_age = _rescan_extreme(st, lows, period, head, False)
        high_age += 1
        if count == 1 or h >= highest:
            highest = h
            high_age = 0
        elif high_age >= period:
            highest, high_age = _rescan_extreme(st, highs, period, head, True)
        if count < period:
            o0[i] = NAN
            continue
        diff = (highest - lowest) / (0 - 100.0)
        o0[i] = (highest - cl) / diff if diff != 0.0 else 0.0
    st[0] = count
    st[1] = head
    st[2], st[3], st[4], st[5] = highest, high_age, lowest, low_age


@kernel(Op.ADX, "count prev_high prev_low prev_close plus_dm minus_dm tr_sum sum_dx adx")
def k_adx(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Wilder ADX as TA-Lib computes it."""
    period = pr[0]
    # Divisions by the period are hoisted into reciprocals (as for ATR and RSI): results stay
    # within a few ulps of TA-Lib's and the loop runs about twice as fast.
    inv_period = 1.0 / period
    keep = (period - 1.0) / period
    count = st[0]
    prev_h, prev_l, prev_c = st[1], st[2], st[3]
    plus_dm, minus_dm, tr_sum = st[4], st[5], st[6]
    sum_dx, adx = st[7], st[8]
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        cl = c[i]
        o0[i] = NAN
        if math.isnan(h) or math.isnan(lo) or math.isnan(cl):
            continue
        if count == 0.0:
            prev_h, prev_l, prev_c = h, lo, cl
            count = 1.0
            continue
        diff_p = h - prev_h
        prev_h = h
        diff_m = prev_l - lo
        prev_l = lo
        tr = _true_range(prev_h, prev_l, prev_c)
        prev_c = cl
        if count < period:
            minus_dm += diff_m if (diff_m > 0.0) & (diff_p < diff_m) else 0.0
            plus_dm += diff_p if (diff_p > 0.0) & (diff_p > diff_m) else 0.0
            tr_sum += tr
            count += 1.0
            continue
        minus_dm -= minus_dm * inv_period
        plus_dm -= plus_dm * inv_period
        # TA-Lib's if/elif as selects: the two cases exclude each other and adding 0.0 is exact.
        minus_dm += diff_m if (diff_m > 0.0) & (diff_p < diff_m) else 0.0
        plus_dm += diff_p if (diff_p > 0.0) & (diff_p > diff_m) else 0.0
        tr_sum = tr_sum - tr_sum * inv_period + tr
        dx = NAN
        if tr_sum != 0.0:
            scale = 100.0 / tr_sum
            minus_di = minus_dm * scale
            plus_di = plus_dm * scale
            di_sum = minus_di + plus_di
            if di_sum != 0.0:
                dx = 100.0 * (abs(minus_di - plus_di) / di_sum)
        if count < 2.0 * period:
            if not math.isnan(dx):
                sum_dx += dx
            count += 1.0
            if count < 2.0 * period:
                continue
            adx = sum_dx / period
        elif not math.isnan(dx):
            adx = adx * keep + dx * inv_period
        o0[i] = adx
    st[0] = count
    st[1], st[2], st[3] = prev_h, prev_l, prev_c
    st[4], st[5], st[6] = plus_dm, minus_dm, tr_sum
    st[7], st[8] = sum_dx, adx


# ---------------------------------------------------------------------------------------------
# Volatility and bands
# ---------------------------------------------------------------------------------------------


# A window's sums are rebuilt once its variance has cancelled this far below their peak.
_REBUILD_RATIO = 1e-4
# Relative dead-zone of TA-Lib's scale-aware zero test (TA_IS_ZERO_SCALED, ~90 ulp).
TA_EPSILON = 1e-14


@_inline
def _shifted_sums(st: FloatArray, ring: int, period: int, shift: float) -> tuple[float, float]:
    """Sums of the ring's deviations from ``shift`` and of their squares."""
    s1 = 0.0
    s2 = 0.0
    for j in range(period):
        dev = st[ring + j] - shift
        s1 += dev
        s2 += dev * dev
    return s1, s2


@_inline
def _variance_next(
    st: FloatArray,
    ring: int,
    period: int,
    head: int,
    count: float,
    shift: float,
    s1: float,
    s2: float,
    peak: float,
    run: float,
    x: float,
    old: float,
    prev: float,
    was_full: bool,
) -> tuple[float, float, float, float, float, float]:
    """Population variance of the window in ``st[ring:ring+period]``.

    Returns (shift, s1, s2, peak, run, variance). ``x`` has just been written (``old`` left
    the window if it ``was_full``; ``prev`` is the previous value). The window keeps running
    sums of deviations from a ``shift`` taken from the window itself, so a near-flat window
    keeps its digits at any price level (deviations of nearby prices are exact). The sums
    are rebuilt from the ring, around the newest value, each time the ring wraps or the
    variance has cancelled far below the sums' recent peak, so rounding never builds up.
    ``run`` counts equal values in a row: a window of identical values (an exchange outage's
    open=high=low=close bars) has variance exactly 0, as in TA-Lib, at any price level.
    Variance is NaN until the window is full.
    """
    run = run + 1.0 if (count > 1.0 and x == prev) else 1.0
    if run > period:
        run = period
    if count == 1.0:
        shift = x
    if count < period:
        dev = x - shift
        s1 += dev
        s2 += dev * dev
        return shift, s1, s2, peak, run, NAN
    if run == period:
        return x, 0.0, 0.0, 0.0, run, 0.0
    if head == 0 or not was_full:
        shift = x
        s1, s2 = _shifted_sums(st, ring, period, shift)
        peak = s2
    else:
        dev_new = x - shift
        dev_old = old - shift
        s1 = s1 + dev_new - dev_old
        s2 = s2 + dev_new * dev_new - dev_old * dev_old
        if s2 > peak:
            peak = s2
    m2 = s2 - s1 * (s1 / period)
    if m2 < peak * _REBUILD_RATIO:
        shift = x
        s1, s2 = _shifted_sums(st, ring, period, shift)
        peak = s2
        m2 = s2 - s1 * (s1 / period)
    variance = m2 / period
    return shift, s1, s2, peak, run, (variance if variance > 0.0 else 0.0)


# The state `_variance_next` carries besides its ring.
_VARIANCE_SLOTS = "shift s1 s2 peak run prev"


@kernel(Op.BBANDS, "count head total", _VARIANCE_SLOTS, Slot("ring", _param(0)))
def k_bbands(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Bollinger bands around an SMA. Outputs upper/middle/lower."""
    period = int(pr[0])
    dev_up = pr[1]
    dev_down = pr[2]
    count = st[0]
    head = int(st[1])
    total = st[2]
    shift, s1, s2, peak, run, prev = st[3], st[4], st[5], st[6], st[7], st[8]
    for i in range(o0.shape[0]):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            o1[i] = NAN
            o2[i] = NAN
            continue
        old = st[9 + head]
        was_full = count == period
        total += x
        st[9 + head] = x
        head += 1
        if head == period:
            head = 0
        if count < period:
            count += 1.0
        shift, s1, s2, peak, run, variance = _variance_next(
            st, 9, period, head, count, shift, s1, s2, peak, run, x, old, prev, was_full
        )
        prev = x
        if count < period:
            o0[i] = NAN
            o1[i] = NAN
            o2[i] = NAN
            continue
        middle = total / period
        total -= st[9 + head]
        deviation = math.sqrt(variance)
        o0[i] = middle + deviation * dev_up
        o1[i] = middle
        o2[i] = middle - deviation * dev_down
    st[0] = count
    st[1] = head
    st[2] = total
    st[3], st[4], st[5], st[6], st[7], st[8] = shift, s1, s2, peak, run, prev


@kernel(Op.STDDEV, "count head", _VARIANCE_SLOTS, Slot("ring", _param(0)))
def k_stddev(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Population standard deviation times ``nbdev``."""
    period = int(pr[0])
    nbdev = pr[1]
    count = st[0]
    head = int(st[1])
    shift, s1, s2, peak, run, prev = st[2], st[3], st[4], st[5], st[6], st[7]
    for i in range(o0.shape[0]):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            continue
        old = st[8 + head]
        was_full = count == period
        st[8 + head] = x
        head += 1
        if head == period:
            head = 0
        if count < period:
            count += 1.0
        shift, s1, s2, peak, run, variance = _variance_next(
            st, 8, period, head, count, shift, s1, s2, peak, run, x, old, prev, was_full
        )
        prev = x
        o0[i] = NAN if math.isnan(variance) else math.sqrt(variance) * nbdev
    st[0] = count
    st[1] = head
    st[2], st[3], st[4], st[5], st[6], st[7] = shift, s1, s2, peak, run, prev


@kernel(Op.ATR, _ATR_SLOTS)
def k_atr(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Wilder ATR."""
    period = int(pr[0])
    count, prev_close, acc, atr = st[0], st[1], st[2], st[3]
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        cl = c[i]
        if math.isnan(h) or math.isnan(lo) or math.isnan(cl):
            o0[i] = NAN
            continue
        count, prev_close, acc, atr, out = _atr_next(count, prev_close, acc, atr, period, h, lo, cl)
        o0[i] = out
    st[0], st[1], st[2], st[3] = count, prev_close, acc, atr


class ExtremeMode(IntEnum):
    """`k_extreme`'s extreme (its ``pr[1]``)."""

    LOWEST = 0
    HIGHEST = 1


@kernel(Op.EXTREME, "count head best age", Slot("ring", _param(0)))
def k_extreme(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Highest or lowest (``pr[1]``, an `ExtremeMode`) over a window."""
    period = int(pr[0])
    want_max = int(pr[1]) == ExtremeMode.HIGHEST
    n = o0.shape[0]
    count = int(st[0])
    head = int(st[1])
    best = st[2]
    age = int(st[3])
    for i in range(n):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            continue
        st[4 + head] = x
        head += 1
        if head == period:
            head = 0
        if count < period:
            count += 1
        age += 1
        if count == 1 or ((x >= best) if want_max else (x <= best)):
            best = x
            age = 0
        elif age >= period:
            best, age = _rescan_extreme(st, 4, period, head, want_max)
        o0[i] = best if count >= period else NAN
    st[0] = count
    st[1] = head
    st[2] = best
    st[3] = age


@kernel(Op.DONCHIAN, *_high_low_window(_param(0)))
def k_donchian(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Donchian channel: highest high, midpoint, lowest low."""
    period = int(pr[0])
    highs = 6
    lows = highs + period
    n = o0.shape[0]
    count = int(st[0])
    head = int(st[1])
    upper, upper_age, lower, lower_age = st[2], int(st[3]), st[4], int(st[5])
    for i in range(n):
        h = a[i]
        lo = b[i]
        if math.isnan(h) or math.isnan(lo):
            o0[i] = NAN
            o1[i] = NAN
            o2[i] = NAN
            continue
        st[highs + head] = h
        st[lows + head] = lo
        head += 1
        if head == period:
            head = 0
        if count < period:
            count += 1
        upper_age += 1
        if count == 1 or h >= upper:
            upper = h
            upper_age = 0
        elif upper_age >= period:
            upper, upper_age = _rescan_extreme(st, highs, period, head, True)
        lower_age += 1
        if count == 1 or lo <= lower:
            lower = lo
            lower_age = 0
        elif lower_age >= period:
            lower, lower_age = _rescan_extreme(st, lows, period, head, False)
        if count < period:
            o0[i] = NAN
            o1[i] = NAN
            o2[i] = NAN
            continue
        o0[i] = upper
        o1[i] = (upper + lower) / 2.0
        o2[i] = lower
    st[0] = count
    st[1] = head
    st[2], st[3], st[4], st[5] = upper, upper_age, lower, lower_age


# ---------------------------------------------------------------------------------------------
# Volume
# ---------------------------------------------------------------------------------------------


@kernel(Op.OBV, "started prev obv")
def k_obv(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """On-balance volume starting at the first bar's volume."""
    started = st[0]
    prev = st[1]
    obv = st[2]
    for i in range(o0.shape[0]):
        x = a[i]
        v = b[i]
        if math.isnan(x) or math.isnan(v):
            o0[i] = NAN
            continue
        if started == 0.0:
            started = 1.0
            obv = v
        elif x > prev:
            obv += v
        elif x < prev:
            obv -= v
        prev = x
        o0[i] = obv
    st[0] = started
    st[1] = prev
    st[2] = obv


@kernel(
    Op.VWAP,
    "count head pv_total v_total nonzero_volumes",
    Slot("pv", _param(0)),
    Slot("volumes", _param(0)),
)
def k_vwap(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Rolling VWAP of the typical price."""
    period = int(pr[0])
    count = st[0]
    head = int(st[1])
    pv_total = st[2]
    v_total = st[3]
    nonzero = st[4]
    ring_v = 5 + period
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        cl = c[i]
        v = d[i]
        if math.isnan(h) or math.isnan(lo) or math.isnan(cl) or math.isnan(v):
            o0[i] = NAN
            continue
        pv = ((h + lo + cl) / 3.0) * v
        pv_total += pv
        v_total += v
        if v != 0.0:
            nonzero += 1.0
        st[5 + head] = pv
        st[ring_v + head] = v
        head += 1
        if head == period:
            head = 0
        if count < period:
            count += 1.0
        if count < period:
            o0[i] = NAN
            continue
        o0[i] = pv_total / v_total if nonzero > 0.0 and v_total != 0.0 else NAN
        old_v = st[ring_v + head]
        pv_total -= st[5 + head]
        v_total -= old_v
        if old_v != 0.0:
            nonzero -= 1.0
        if nonzero == 0.0:
            # No volume left in the window: drop the rounding residue of the running sums.
            pv_total = 0.0
            v_total = 0.0
    st[0] = count
    st[1] = head
    st[2] = pv_total
    st[3] = v_total
    st[4] = nonzero


# ---------------------------------------------------------------------------------------------
# More TA-Lib indicators: MFI, SAR, AROON, TRIX, ULTOSC, NATR, PPO, STOCHRSI, KAMA, slope
# ---------------------------------------------------------------------------------------------


@kernel(
    Op.MFI,
    "count head prev_tp pos_sum neg_sum nonzero",
    Slot("pos", _param(0)),
    Slot("neg", _param(0)),
)
def k_mfi(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Money flow index (0-100) over ``period`` typical-price changes.

    When no money flow is left in the window the sums are reset to exact zeros (no rounding
    residue).
    """
    period = int(pr[0])
    pos_ring = 6
    neg_ring = 6 + period
    count = st[0]
    head = int(st[1])
    prev_tp = st[2]
    pos_sum = st[3]
    neg_sum = st[4]
    nonzero = st[5]
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        cl = c[i]
        v = d[i]
        if math.isnan(h) or math.isnan(lo) or math.isnan(cl) or math.isnan(v):
            o0[i] = NAN
            continue
        tp = (h + lo + cl) / 3
        if count == 0.0:
            prev_tp = tp
            count = 1.0
            o0[i] = NAN
            continue
        change = tp - prev_tp
        # TA-Lib's scale-aware zero test: rounding of (h + l + c) / 3 is no price change.
        if abs(change) <= TA_EPSILON * (abs(tp) + abs(prev_tp)):
            change = 0.0
        prev_tp = tp
        flow = tp * v
        positive = flow if change > 0.0 else 0.0
        negative = flow if change < 0.0 else 0.0
        if count > period:
            old_pos = st[pos_ring + head]
            old_neg = st[neg_ring + head]
            pos_sum -= old_pos
            neg_sum -= old_neg
            if old_pos != 0.0 or old_neg != 0.0:
                nonzero -= 1.0
        else:
            count += 1.0
        st[pos_ring + head] = positive
        st[neg_ring + head] = negative
        head += 1
        if head == period:
            head = 0
        pos_sum += positive
        neg_sum += negative
        if positive != 0.0 or negative != 0.0:
            nonzero += 1.0
        if nonzero == 0.0:
            pos_sum = 0.0
            neg_sum = 0.0
        if count <= period:
            o0[i] = NAN
            continue
        total = pos_sum + neg_sum
        o0[i] = 100.0 * (pos_sum / total) if total != 0.0 else 0.0
    st[0] = count
    st[1] = head
    st[2] = prev_tp
    st[3] = pos_sum
    st[4] = neg_sum
    st[5] = nonzero


@kernel(Op.SAR, "count is_long sar ep af prev_high prev_low")
def k_sar(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Wilder's parabolic SAR, step by step as TA-Lib's SAR.

    The first direction comes from the first two bars' directional movement (long unless
    -DM > 0).
    """
    step = pr[0]
    maximum = pr[1]
    if step > maximum:
        step = maximum
    count = st[0]
    is_long = st[1]
    sar = st[2]
    ep = st[3]
    af = st[4]
    prev_high = st[5]
    prev_low = st[6]
    for i in range(o0.shape[0]):
        new_high = a[i]
        new_low = b[i]
        if math.isnan(new_high) or math.isnan(new_low):
            o0[i] = NAN
            continue
        if count == 0.0:
            count = 1.0
            prev_high = new_high
            prev_low = new_low
            o0[i] = NAN
            continue
        if count == 1.0:
            count = 2.0
            diff_m = prev_low - new_low
            diff_p = new_high - prev_high
            minus_dm = diff_m if (diff_m > 0.0 and diff_p < diff_m) else 0.0
            is_long = 0.0 if minus_dm > 0.0 else 1.0
            af = step
            if is_long == 1.0:
                ep = new_high
                sar = prev_low
            else:
                ep = new_low
                sar = prev_high
            # TA-Lib's first step compares the second bar with itself.
            prev_high = new_high
            prev_low = new_low
        if is_long == 1.0:
            if new_low <= sar:
                is_long = 0.0
                sar = ep
                if sar < prev_high:
                    sar = prev_high
                if sar < new_high:
                    sar = new_high
                o0[i] = sar
                af = step
                ep = new_low
                sar = sar + af * (ep - sar)
                if sar < prev_high:
                    sar = prev_high
                if sar < new_high:
                    sar = new_high
            else:
                o0[i] = sar
                if new_high > ep:
                    ep = new_high
                    af += step
                    if af > maximum:
                        af = maximum
                sar = sar + af * (ep - sar)
                if sar > prev_low:
                    sar = prev_low
                if sar > new_low:
                    sar = new_low
        else:
            if new_high >= sar:
                is_long = 1.0
                sar = ep
                if sar > prev_low:
                    sar = prev_low
                if sar > new_low:
                    sar = new_low
                o0[i] = sar
                af = step
                ep = new_high
                sar = sar + af * (ep - sar)
                if sar > prev_low:
                    sar = prev_low
                if sar > new_low:
                    sar = new_low
            else:
                o0[i] = sar
                if new_low < ep:
                    ep = new_low
                    af += step
                    if af > maximum:
                        af = maximum
                sar = sar + af * (ep - sar)
                if sar < prev_high:
                    sar = prev_high
                if sar < new_high:
                    sar = new_high
        prev_high = new_high
        prev_low = new_low
    st[0] = count
    st[1] = is_long
    st[2] = sar
    st[3] = ep
    st[4] = af
    st[5] = prev_high
    st[6] = prev_low


class AroonMode(IntEnum):
    """`k_aroon`'s outputs (its ``pr[1]``)."""

    DOWN_UP = 0
    OSCILLATOR = 1


@kernel(Op.AROON, *_high_low_window(_param(0, plus=1)))
def k_aroon(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Aroon down/up or the Aroon oscillator, up - down (``pr[1]``, an `AroonMode`).

    The window is ``period + 1`` bars, as in TA-Lib; ties keep the newest extreme.
    """
    period = int(pr[0])
    oscillator = int(pr[1]) == AroonMode.OSCILLATOR
    size = period + 1
    factor = 100.0 / period
    highs = 6
    lows = highs + size
    count = int(st[0])
    head = int(st[1])
    highest, high_age, lowest, low_age = st[2], int(st[3]), st[4], int(st[5])
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        if math.isnan(h) or math.isnan(lo):
            o0[i] = NAN
            if not oscillator:
                o1[i] = NAN
            continue
        st[highs + head] = h
        st[lows + head] = lo
        head += 1
        if head == size:
            head = 0
        if count < size:
            count += 1
        low_age += 1
        if count == 1 or lo <= lowest:
            lowest = lo
            low_age = 0
        elif low_age >= size:
            lowest, low_age = _rescan_extreme(st, lows, size, head, False)
        high_age += 1
        if count == 1 or h >= highest:
            highest = h
            high_age = 0
        elif high_age >= size:
            highest, high_age = _rescan_extreme(st, highs, size, head, True)
        if count < size:
            o0[i] = NAN
            if not oscillator:
                o1[i] = NAN
            continue
        if oscillator:
            o0[i] = factor * (low_age - high_age)
        else:
            o0[i] = factor * (period - low_age)
            o1[i] = factor * (period - high_age)
    st[0] = count
    st[1] = head
    st[2], st[3], st[4], st[5] = highest, high_age, lowest, low_age


@kernel(
    Op.TRIX,
    *_ema_slots("ema1"),
    *_ema_slots("ema2"),
    *_ema_slots("ema3"),
    Slot("prev", initial=NAN),
)
def k_trix(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """TRIX: one-bar rate of change (percent) of a triple EMA."""
    period = pr[0]
    k = 2.0 / (period + 1.0)
    c1, s1, e1 = st[0], st[1], st[2]
    c2, s2, e2 = st[3], st[4], st[5]
    c3, s3, e3 = st[6], st[7], st[8]
    prev = st[9]
    for i in range(o0.shape[0]):
        x = a[i]
        o0[i] = NAN
        if math.isnan(x):
            continue
        c1, s1, e1, v1 = _ema_next(c1, s1, e1, period, k, x)
        if math.isnan(v1):
            continue
        c2, s2, e2, v2 = _ema_next(c2, s2, e2, period, k, v1)
        if math.isnan(v2):
            continue
        c3, s3, e3, v3 = _ema_next(c3, s3, e3, period, k, v2)
        if math.isnan(v3):
            continue
        if not math.isnan(prev):
            o0[i] = ((v3 / prev) - 1.0) * 100.0 if prev != 0.0 else 0.0
        prev = v3
    st[0], st[1], st[2] = c1, s1, e1
    st[3], st[4], st[5] = c2, s2, e2
    st[6], st[7], st[8] = c3, s3, e3
    st[9] = prev


@kernel(
    Op.ULTOSC,
    "bars head prev_close bp_sum1 bp_sum2 bp_sum3 tr_sum1 tr_sum2 tr_sum3",
    Slot("bp", _param(2)),
    Slot("tr", _param(2)),
)
def k_ultosc(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Ultimate oscillator: weighted 4/2/1 buying-pressure ratios over three windows.

    ``pr`` holds the three periods sorted shortest first (as TA-Lib sorts them); ``bars`` in the
    state is capped at p3 + 1.
    """
    p1 = int(pr[0])
    p2 = int(pr[1])
    p3 = int(pr[2])
    bp_ring = 9
    tr_ring = 9 + p3
    count = st[0]
    head = int(st[1])
    prev_close = st[2]
    a1, a2, a3 = st[3], st[4], st[5]
    b1, b2, b3 = st[6], st[7], st[8]
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        cl = c[i]
        if math.isnan(h) or math.isnan(lo) or math.isnan(cl):
            o0[i] = NAN
            continue
        if count == 0.0:
            prev_close = cl
            count = 1.0
            o0[i] = NAN
            continue
        true_low = lo if lo < prev_close else prev_close
        pressure = cl - true_low
        tr = _true_range(h, lo, prev_close)
        prev_close = cl
        st[bp_ring + head] = pressure
        st[tr_ring + head] = tr
        a1 += pressure
        a2 += pressure
        a3 += pressure
        b1 += tr
        b2 += tr
        b3 += tr
        if count <= p3:
            count += 1.0
        terms = count - 1.0
        if terms < p3:
            # Until the first output each window holds its period - 1 latest terms.
            if terms >= p1:
                j = head - p1 + 1
                j = j + p3 if j < 0 else j
                a1 -= st[bp_ring + j]
                b1 -= st[tr_ring + j]
            if terms >= p2:
                j = head - p2 + 1
                j = j + p3 if j < 0 else j
                a2 -= st[bp_ring + j]
                b2 -= st[tr_ring + j]
            head += 1
            if head == p3:
                head = 0
            o0[i] = NAN
            continue
        total = 0.0
        if b1 != 0.0:
            total += 4.0 * (a1 / b1)
        if b2 != 0.0:
            total += 2.0 * (a2 / b2)
        if b3 != 0.0:
            total += a3 / b3
        o0[i] = 100.0 * (total / 7.0)
        j = head - p1 + 1
        j = j + p3 if j < 0 else j
        a1 -= st[bp_ring + j]
        b1 -= st[tr_ring + j]
        j = head - p2 + 1
        j = j + p3 if j < 0 else j
        a2 -= st[bp_ring + j]
        b2 -= st[tr_ring + j]
        j = head - p3 + 1
        j = j + p3 if j < 0 else j
        a3 -= st[bp_ring + j]
        b3 -= st[tr_ring + j]
        head += 1
        if head == p3:
            head = 0
    st[0] = count
    st[1] = head
    st[2] = prev_close
    st[3], st[4], st[5] = a1, a2, a3
    st[6], st[7], st[8] = b1, b2, b3


@kernel(Op.NATR, _ATR_SLOTS)
def k_natr(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Normalized ATR: Wilder ATR / close * 100 (0 when close is 0, as TA-Lib)."""
    period = int(pr[0])
    count, prev_close, acc, atr = st[0], st[1], st[2], st[3]
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        cl = c[i]
        if math.isnan(h) or math.isnan(lo) or math.isnan(cl):
            o0[i] = NAN
            continue
        count, prev_close, acc, atr, out = _atr_next(count, prev_close, acc, atr, period, h, lo, cl)
        if math.isnan(out):
            o0[i] = NAN
        else:
            o0[i] = (out / cl) * 100.0 if cl != 0.0 else 0.0
    st[0], st[1], st[2], st[3] = count, prev_close, acc, atr


class MovingAverage(IntEnum):
    """`k_ppo`'s moving averages (its ``pr[2]``)."""

    SMA = 0
    EMA = 1


@kernel(Op.PPO, "count head fast_sum slow_sum fast slow", Slot("ring", _larger_param(0, 1)))
def k_ppo(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Percentage price oscillator: (fast MA - slow MA) / slow MA * 100.

    SMAs (TA-Lib's default) or EMAs (each seeded with the SMA of its own first period, as
    TA-Lib's PPO), as ``pr[2]`` (a `MovingAverage`) says. Fast and slow are swapped if needed;
    the ring is used by SMAs only.
    """
    fast_p = int(pr[0])
    slow_p = int(pr[1])
    if slow_p < fast_p:
        fast_p, slow_p = slow_p, fast_p
    use_ema = int(pr[2]) == MovingAverage.EMA
    fast_k = 2.0 / (fast_p + 1.0)
    slow_k = 2.0 / (slow_p + 1.0)
    ring = 6
    count = st[0]
    head = int(st[1])
    fast_sum = st[2]
    slow_sum = st[3]
    fast = st[4]
    slow = st[5]
    for i in range(o0.shape[0]):
        x = a[i]
        o0[i] = NAN
        if math.isnan(x):
            continue
        if use_ema:
            if count < slow_p:
                count += 1.0
                if count <= fast_p:
                    fast_sum += x
                    if count == fast_p:
                        fast = fast_sum / fast_p
                else:
                    fast = (x - fast) * fast_k + fast
                slow_sum += x
                if count < slow_p:
                    continue
                slow = slow_sum / slow_p
            else:
                fast = (x - fast) * fast_k + fast
                slow = (x - slow) * slow_k + slow
        else:
            written = head
            st[ring + head] = x
            head += 1
            if head == slow_p:
                head = 0
            fast_sum += x
            slow_sum += x
            if count < slow_p:
                count += 1.0
            if count >= fast_p:
                fast = fast_sum / fast_p
                j = written - fast_p + 1
                fast_sum -= st[ring + (j + slow_p if j < 0 else j)]
            if count < slow_p:
                continue
            slow = slow_sum / slow_p
            slow_sum -= st[ring + head]
        o0[i] = ((fast - slow) / slow) * 100.0 if slow != 0.0 else 0.0
    st[0] = count
    st[1] = head
    st[2] = fast_sum
    st[3] = slow_sum
    st[4] = fast
    st[5] = slow


@_njit
def _rsi_next(
    count: float,
    prev: float,
    gain: float,
    loss: float,
    period: float,
    keep: float,
    share: float,
    x: float,
) -> tuple[float, float, float, float, float]:
    """One Wilder RSI step, exactly as `k_rsi`: (count, prev, avg_gain, avg_loss, rsi)."""
    if count == 0.0:
        return 1.0, x, gain, loss, NAN
    diff = x - prev
    prev = x
    if count <= period:
        loss -= min(diff, 0.0)
        gain += max(diff, 0.0)
        count += 1.0
        if count <= period:
            return count, prev, gain, loss, NAN
        loss /= period
        gain /= period
    else:
        loss = loss * keep - min(diff, 0.0) * share
        gain = gain * keep + max(diff, 0.0) * share
    total = gain + loss
    return count, prev, gain, loss, (100.0 * (gain / total) if total != 0.0 else 0.0)


@kernel(
    Op.STOCHRSI,
    "rsi_count rsi_prev avg_gain avg_loss count head high high_age low low_age",
    Slot("rsis", _param(1)),
    *_sma_slots("fast_d", _param(2)),
)
def k_stochrsi(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Stochastic RSI: fast stochastic %K and SMA %D of a Wilder RSI, as TA-Lib STOCHRSI."""
    period = pr[0]
    fk = int(pr[1])
    fd = int(pr[2])
    keep = (period - 1.0) / period
    share = 1.0 / period
    ring = 10
    d_off = ring + fk
    rc, rp, gain, loss = st[0], st[1], st[2], st[3]
    count = int(st[4])
    head = int(st[5])
    highest, high_age, lowest, low_age = st[6], int(st[7]), st[8], int(st[9])
    for i in range(o0.shape[0]):
        x = a[i]
        o0[i] = NAN
        o1[i] = NAN
        if math.isnan(x):
            continue
        rc, rp, gain, loss, rsi = _rsi_next(rc, rp, gain, loss, period, keep, share, x)
        if math.isnan(rsi):
            continue
        st[ring + head] = rsi
        head += 1
        if head == fk:
            head = 0
        if count < fk:
            count += 1
        low_age += 1
        if count == 1 or rsi <= lowest:
            lowest = rsi
            low_age = 0
        elif low_age >= fk:
            lowest, low_age = _rescan_extreme(st, ring, fk, head, False)
        high_age += 1
        if count == 1 or rsi >= highest:
            highest = rsi
            high_age = 0
        elif high_age >= fk:
            highest, high_age = _rescan_extreme(st, ring, fk, head, True)
        if count < fk:
            continue
        diff = (highest - lowest) / 100.0
        fast_k = (rsi - lowest) / diff if diff != 0.0 else 0.0
        fast_d = _sma_push(st, d_off, fd, fast_k)
        if math.isnan(fast_d):
            continue
        o0[i] = fast_k
        o1[i] = fast_d
    st[0], st[1], st[2], st[3] = rc, rp, gain, loss
    st[4] = count
    st[5] = head
    st[6], st[7], st[8], st[9] = highest, high_age, lowest, low_age


@kernel(Op.KAMA, "count head volatility kama", Slot("ring", _param(0, plus=1)))
def k_kama(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Kaufman adaptive moving average (fast 2, slow 30 EMA constants, as TA-Lib)."""
    period = int(pr[0])
    size = period + 1
    const_max = 2.0 / (30.0 + 1.0)
    const_diff = 2.0 / (2.0 + 1.0) - const_max
    count = st[0]
    head = int(st[1])
    volatility = st[2]
    kama = st[3]
    for i in range(o0.shape[0]):
        x = a[i]
        o0[i] = NAN
        if math.isnan(x):
            continue
        newest = head - 1 if head > 0 else size - 1
        if count < size:
            if count > 0.0:
                volatility += abs(st[4 + newest] - x)
            st[4 + head] = x
            head = head + 1 if head + 1 < size else 0
            count += 1.0
            if count < size:
                continue
            kama = st[4 + newest]
            oldest = st[4 + head]
            trailing = oldest
        else:
            # The ring holds the last period + 1 values; head is the oldest.
            leaving = st[4 + head]
            nxt = head + 1 if head + 1 < size else 0
            trailing = st[4 + nxt]
            volatility -= abs(leaving - trailing)
            volatility += abs(x - st[4 + newest])
            st[4 + head] = x
            head = nxt
        change = x - trailing
        # TA-Lib's guard: a move at least as large as the path (or no path) is fully efficient.
        ratio = 1.0 if volatility <= change or volatility == 0.0 else abs(change / volatility)
        smoothing = ratio * const_diff + const_max
        smoothing *= smoothing
        kama = ((x - kama) * smoothing) + kama
        o0[i] = kama
    st[0] = count
    st[1] = head
    st[2] = volatility
    st[3] = kama


@kernel(Op.LINREG_SLOPE, "count head", Slot("ring", _param(0)))
def k_linreg_slope(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Least-squares slope per bar over a window (TA-Lib LINEARREG_SLOPE).

    Sums are taken of deviations from the newest value, so a flat window has slope exactly 0
    and a near-flat one keeps its digits at any price level.
    """
    period = int(pr[0])
    sum_x = period * (period - 1) * 0.5
    sum_x_sqr = period * (period - 1) * (2 * period - 1) / 6.0
    divisor = sum_x * sum_x - period * sum_x_sqr
    count = st[0]
    head = int(st[1])
    for i in range(o0.shape[0]):
        x = a[i]
        if math.isnan(x):
            o0[i] = NAN
            continue
        st[2 + head] = x
        head += 1
        if head == period:
            head = 0
        if count < period:
            count += 1.0
        if count < period:
            o0[i] = NAN
            continue
        # TA-Lib's x runs from period - 1 (oldest) down to 0 (newest).
        sum_xy = 0.0
        sum_y = 0.0
        position = head
        for j in range(period - 1, -1, -1):
            y = st[2 + position] - x
            sum_y += y
            sum_xy += j * y
            position += 1
            if position == period:
                position = 0
        o0[i] = (period * sum_xy - sum_x * sum_y) / divisor
    st[0] = count
    st[1] = head


# ---------------------------------------------------------------------------------------------
# Math
# ---------------------------------------------------------------------------------------------


class BinaryOp(IntEnum):
    """`k_binary`'s operation (its ``pr[0]``)."""

    ADD = 0
    SUB = 1
    MUL = 2
    DIV = 3
    MIN = 4
    MAX = 5


@kernel(Op.BINARY)
def k_binary(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Element-wise a (op) b; division by zero and NaN operands give NaN."""
    op = int(pr[0])
    n = o0.shape[0]
    if op == BinaryOp.ADD:
        for i in range(n):
            o0[i] = a[i] + b[i]
    elif op == BinaryOp.SUB:
        for i in range(n):
            o0[i] = a[i] - b[i]
    elif op == BinaryOp.MUL:
        for i in range(n):
            o0[i] = a[i] * b[i]
    elif op == BinaryOp.DIV:
        for i in range(n):
            o0[i] = a[i] / b[i] if b[i] != 0.0 else NAN
    elif op == BinaryOp.MIN:
        for i in range(n):
            x = a[i]
            y = b[i]
            o0[i] = NAN if (math.isnan(x) or math.isnan(y)) else (x if x < y else y)
    else:  # BinaryOp.MAX
        for i in range(n):
            x = a[i]
            y = b[i]
            o0[i] = NAN if (math.isnan(x) or math.isnan(y)) else (x if x > y else y)


@kernel(Op.ABS)
def k_abs(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    for i in range(o0.shape[0]):
        o0[i] = abs(a[i])


@kernel(Op.LAG, "count head", Slot("ring", _param(0)))
def k_lag(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Value ``n`` bars back (NaN included)."""
    lag = int(pr[0])
    count = st[0]
    head = int(st[1])
    for i in range(o0.shape[0]):
        if count >= lag:
            o0[i] = st[2 + head]
        else:
            o0[i] = NAN
            count += 1.0
        st[2 + head] = a[i]
        head += 1
        if head == lag:
            head = 0
    st[0] = count
    st[1] = head


class ChangeMode(IntEnum):
    """`k_change`'s output (its ``pr[1]``)."""

    DIFFERENCE = 0
    RELATIVE = 1


@kernel(Op.CHANGE, "count head", Slot("ring", _param(0)))
def k_change(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """x - x[n] or x / x[n] - 1, as ``pr[1]`` (a `ChangeMode`) says."""
    lag = int(pr[0])
    relative = int(pr[1]) == ChangeMode.RELATIVE
    count = st[0]
    head = int(st[1])
    for i in range(o0.shape[0]):
        x = a[i]
        if count >= lag:
            old = st[2 + head]
            if relative:
                o0[i] = (x / old) - 1.0 if old != 0.0 else NAN
            else:
                o0[i] = x - old
        else:
            o0[i] = NAN
            count += 1.0
        st[2 + head] = x
        head += 1
        if head == lag:
            head = 0
    st[0] = count
    st[1] = head


# ---------------------------------------------------------------------------------------------
# Comparisons and logic (booleans as 0.0 / 1.0)
# ---------------------------------------------------------------------------------------------


class CompareOp(IntEnum):
    """`k_compare`'s comparison (its ``pr[0]``)."""

    GT = 0
    GTE = 1
    LT = 2
    LTE = 3


@kernel(Op.COMPARE)
def k_compare(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    op = int(pr[0])
    n = o0.shape[0]
    if op == CompareOp.GT:
        for i in range(n):
            o0[i] = 1.0 if a[i] > b[i] else 0.0
    elif op == CompareOp.GTE:
        for i in range(n):
            o0[i] = 1.0 if a[i] >= b[i] else 0.0
    elif op == CompareOp.LT:
        for i in range(n):
            o0[i] = 1.0 if a[i] < b[i] else 0.0
    else:  # CompareOp.LTE
        for i in range(n):
            o0[i] = 1.0 if a[i] <= b[i] else 0.0


class CrossDirection(IntEnum):
    """`k_cross`'s direction (its ``pr[0]``)."""

    ABOVE = 0
    BELOW = 1


@kernel(Op.CROSS, "seen", Slot("prev_a", initial=NAN), Slot("prev_b", initial=NAN))
def k_cross(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """a crosses above or below b (``pr[0]``, a `CrossDirection`) on this bar."""
    below = int(pr[0]) == CrossDirection.BELOW
    seen = st[0]
    pa = st[1]
    pb = st[2]
    for i in range(o0.shape[0]):
        x = a[i]
        y = b[i]
        if seen == 0.0:
            o0[i] = 0.0
            seen = 1.0
        elif below:
            o0[i] = 1.0 if (x < y and pa >= pb) else 0.0
        else:
            o0[i] = 1.0 if (x > y and pa <= pb) else 0.0
        pa = x
        pb = y
    st[0] = seen
    st[1] = pa
    st[2] = pb


@kernel(Op.BETWEEN)
def k_between(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """lower <= x <= upper, inclusive; NaN anywhere gives false."""
    for i in range(o0.shape[0]):
        x = a[i]
        o0[i] = 1.0 if (b[i] <= x and x <= c[i]) else 0.0


class LogicOp(IntEnum):
    """`k_logic`'s operation (its ``pr[0]``); NOT reads only ``a``."""

    AND = 0
    OR = 1
    XOR = 2
    NOT = 3


@kernel(Op.LOGIC)
def k_logic(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    op = int(pr[0])
    n = o0.shape[0]
    if op == LogicOp.AND:
        for i in range(n):
            o0[i] = 1.0 if (a[i] != 0.0 and b[i] != 0.0) else 0.0
    elif op == LogicOp.OR:
        for i in range(n):
            o0[i] = 1.0 if (a[i] != 0.0 or b[i] != 0.0) else 0.0
    elif op == LogicOp.XOR:
        for i in range(n):
            o0[i] = 1.0 if ((a[i] != 0.0) != (b[i] != 0.0)) else 0.0
    else:  # LogicOp.NOT
        for i in range(n):
            o0[i] = 0.0 if a[i] != 0.0 else 1.0


@kernel(Op.PASS)
def k_pass(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """Signal sinks: the input, as a clean 0.0/1.0."""
    for i in range(o0.shape[0]):
        o0[i] = 1.0 if a[i] != 0.0 else 0.0


# ---------------------------------------------------------------------------------------------
# Risk
# ---------------------------------------------------------------------------------------------


class RiskMode(IntEnum):
    """`k_risk_distance`'s mode (its ``pr[0]``), one per choice of the risk nodes' ``mode``."""

    PERCENT = 0
    ATR = 1


@kernel(Op.RISK_DISTANCE, _ATR_SLOTS)
def k_risk_distance(
    a: FloatArray,
    b: FloatArray,
    c: FloatArray,
    d: FloatArray,
    o0: FloatArray,
    o1: FloatArray,
    o2: FloatArray,
    st: FloatArray,
    pr: FloatArray,
) -> None:
    """`RiskMode.PERCENT`: the constant percent ``pr[1]``. `RiskMode.ATR`: ATR(pr[2]) * pr[3].

    Both modes have the same state layout (the percent mode leaves it untouched).
    """
    if int(pr[0]) == RiskMode.PERCENT:
        value = pr[1]
        for i in range(o0.shape[0]):
            o0[i] = value
        return
    period = int(pr[2])
    multiple = pr[3]
    count, prev_close, acc, atr = st[0], st[1], st[2], st[3]
    for i in range(o0.shape[0]):
        h = a[i]
        lo = b[i]
        cl = c[i]
        if math.isnan(h) or math.isnan(lo) or math.isnan(cl):
            o0[i] = NAN
            continue
        count, prev_close, acc, atr, out = _atr_next(count, prev_close, acc, atr, period, h, lo, cl)
        o0[i] = out * multiple
    st[0], st[1], st[2], st[3] = count, prev_close, acc, atr


# ---------------------------------------------------------------------------------------------
# The registry, frozen, and the streaming interpreter dispatching on it
# ---------------------------------------------------------------------------------------------

KERNELS: Mapping[Op, Kernel] = MappingProxyType(dict(sorted(_REGISTERED.items())))


def dispatch_source(kernels: Mapping[Op, Kernel]) -> str:
    """Python source of `_dispatch`: an if-chain calling each registered kernel by op code.

    numba cannot call through a table of functions at full speed, but it inlines an if-chain
    of direct calls; generating that chain from the registry keeps it complete by construction.
    Each kernel is called through its `_fn_<name>` alias in the namespace the source runs in.
    """
    lines = ["def _dispatch(op, a, b, c, d, o0, o1, o2, st, pr):"]
    for position, entry in enumerate(kernels.values()):
        branch = "if" if position == 0 else "elif"
        lines.append(f"    {branch} op == Op.{entry.op.name}:")
        lines.append(f"        _fn_{entry.name}(a, b, c, d, o0, o1, o2, st, pr)")
    return "\n".join(lines) + "\n"


def _compile_dispatch(kernels: Mapping[Op, Kernel]) -> Callable[..., None]:
    source = dispatch_source(kernels)
    filename = f"<generated {__name__}._dispatch>"
    # Registered with linecache so that numba's messages and tracebacks can show the source.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"Op": Op, **{f"_fn_{k.name}": k.fn for k in kernels.values()}}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - source built above
    # Not cached on its own (generated code has no file for numba to key a cache on): it is
    # always inlined into `run_bar`, whose cache entry then holds the whole chain.
    return cast(
        Callable[..., None],
        numba.njit(nogil=True, error_model="numpy", inline="always")(namespace["_dispatch"]),
    )


_dispatch = _compile_dispatch(KERNELS)

# Columns of a streaming program row (one row per plan step).
(
    COL_OP,
    COL_IN0,
    COL_IN1,
    COL_IN2,
    COL_IN3,
    COL_OUT0,
    COL_OUT1,
    COL_OUT2,
    COL_N_OUT,
    COL_STATE_OFF,
    COL_STATE_LEN,
    COL_PARAM_OFF,
    COL_PARAM_LEN,
    COL_WARMUP,
    COL_BOOL,
) = range(15)
PROGRAM_COLUMNS = 15


@_njit
def run_bar(
    program: IntArray, params: FloatArray, state: FloatArray, values: FloatArray, bar_index: int
) -> None:
    """Advance every step of a plan by one bar held in ``values`` (slots 0-4: o/h/l/c/v)."""
    for s in range(program.shape[0]):
        i0 = program[s, COL_IN0]
        i1 = program[s, COL_IN1]
        i2 = program[s, COL_IN2]
        i3 = program[s, COL_IN3]
        q0 = program[s, COL_OUT0]
        q1 = program[s, COL_OUT1]
        q2 = program[s, COL_OUT2]
        so = program[s, COL_STATE_OFF]
        po = program[s, COL_PARAM_OFF]
        _dispatch(
            program[s, COL_OP],
            values[i0 : i0 + 1],
            values[i1 : i1 + 1],
            values[i2 : i2 + 1],
            values[i3 : i3 + 1],
            values[q0 : q0 + 1],
            values[q1 : q1 + 1],
            values[q2 : q2 + 1],
            state[so : so + program[s, COL_STATE_LEN]],
            params[po : po + program[s, COL_PARAM_LEN]],
        )
        if bar_index < program[s, COL_WARMUP]:
            fill = 0.0 if program[s, COL_BOOL] == 1 else NAN
            values[q0] = fill
            if program[s, COL_N_OUT] > 1:
                values[q1] = fill
            if program[s, COL_N_OUT] > 2:
                values[q2] = fill
