"""Performance metrics: the one implementation backtests, sweeps, forward tests and analytics use.

Definitions (docs/backtesting.md, "Metrics", has the long form). ``r_t`` is the bar return of
the equity curve, the first one measured from the initial capital; ``N`` bars; ``P`` periods
per year (`periods_per_year`).

- total_return = final equity / initial capital - 1
- cagr = (final / initial) ** (P / N) - 1
- volatility = std(r, ddof=1) * sqrt(P)
- sharpe = mean(r) / std(r, ddof=1) * sqrt(P)   (risk-free rate 0)
- sortino = mean(r) * P / (sqrt(mean(min(r, 0) ** 2)) * sqrt(P))
- max_drawdown = max over t of 1 - equity_t / peak_t (a positive fraction; the initial
  capital counts as the first peak); max_drawdown_duration = the most bars spent below a
  previous peak (to recovery, or to the end if never recovered)
- calmar = cagr / max_drawdown
- win_rate, profit_factor (gross win / gross loss), expectancy (mean P&L per trade),
  avg_win, avg_loss (negative): over closed trades; trade_count counts closed trades
- exposure = share of bars holding a position at the close
- turnover = traded notional (every fill) / mean equity
- benchmark_return = buy and hold: last close / first close - 1

Annualisation follows the market calendar: a 24x7 market (crypto) has 365 * 24 * 60 / tf
periods per year (tf in minutes); an equity market (``xnys``) has 252 trading days times the
bars in a 6.5-hour session (390 / tf, rounded up; 1 for daily bars).

A metric that is undefined (no trades, zero variance, no losing trade for the profit factor)
is NaN or infinite here and ``null`` in JSON (`Metrics.as_dict`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from algotrade.bars import TIMEFRAME_SECONDS

if TYPE_CHECKING:
    import pandas as pd

FloatArray = npt.NDArray[np.float64]

# Bump when a definition changes (also the cache key of code that inlines these functions
# when their source is not shipped; see `algotrade.simulation.fills`).
METRICS_VERSION: Final = 1
TRADING_DAYS_PER_YEAR: Final = 252
SESSION_MINUTES: Final = 390  # NYSE regular session, 09:30-16:00
CALENDARS: Final = ("24x7", "xnys")


def periods_per_year(timeframe: str, calendar: str) -> float:
    """Bars per year for ``timeframe`` on ``calendar`` (``24x7`` or ``xnys``)."""
    minutes = TIMEFRAME_SECONDS[timeframe] / 60
    if calendar == "24x7":
        return 365 * 24 * 60 / minutes
    if calendar == "xnys":
        per_session = 1 if timeframe == "1d" else math.ceil(SESSION_MINUTES / minutes)
        return float(TRADING_DAYS_PER_YEAR * per_session)
    raise ValueError(f"unknown calendar {calendar!r}; use one of {', '.join(CALENDARS)}")


@dataclass(frozen=True, slots=True)
class Metrics:
    """Summary statistics of one equity curve and its trades (see the module doc)."""

    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    max_drawdown_duration: int
    win_rate: float
    profit_factor: float
    expectancy: float
    avg_win: float
    avg_loss: float
    exposure: float
    trade_count: int
    open_trades: int
    turnover: float
    benchmark_return: float
    final_equity: float

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON-ready: NaN and infinities become None."""
        return {key: _finite_or_none(value) for key, value in asdict(self).items()}

    def to_pandas(self) -> pd.Series:
        """The metrics as a float64 Series named ``metrics`` (undefined ones stay NaN/inf).

        Counts (trade_count, open_trades, max_drawdown_duration) become floats, so several
        runs' series concatenate into one numeric frame. pandas is imported only here.
        """
        import pandas as pd

        values = asdict(self)
        return pd.Series(values, index=list(values), dtype=np.float64, name="metrics")


METRIC_NAMES: Final = tuple(f.name for f in fields(Metrics))
RANKABLE_METRICS: Final = tuple(name for name in METRIC_NAMES if name != "open_trades")
"""Metrics a sweep can rank by (higher is better, except `LOWER_IS_BETTER`)."""
LOWER_IS_BETTER: Final = frozenset({"max_drawdown", "max_drawdown_duration", "volatility"})


def _finite_or_none(value: float | int) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# Slots of `curve_finish`'s result.
_TOTAL, _CAGR, _VOL, _SHARPE, _SORTINO, _CALMAR, _MAX_DD, _DD_BARS = range(8)
_EXPOSURE, _MEAN_EQUITY, _BENCHMARK = range(8, 11)
_CURVE_SLOTS: Final = 11

CurveState = tuple[
    float, float, float, float, float, float, float, float, float, float, float, float, float, float
]
"""Running sums of an equity curve (see `curve_push`); a tuple so it lives in registers."""

F = TypeVar("F", bound=Callable[..., Any])


def _inline(fn: F) -> F:
    """Compiled and inlined into its numba callers (`algotrade.simulation.fills.simulate` folds
    the curve statistics into its trading loop, so a sweep never materialises equity)."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")(fn))


@_inline
def curve_start(initial: float) -> CurveState:
    """The state before the first bar: no bars, the initial capital as value and peak."""
    nan = np.nan
    return (0.0, 0.0, 0.0, 0.0, 0.0, initial, initial, -1.0, initial, 0.0, 0.0, 0.0, nan, nan)


@_inline
def curve_push(state: CurveState, value: float, held: float, close: float) -> CurveState:
    """Add one bar: its equity ``value``, the position ``held`` and the bar's ``close``.

    Variance comes from sums of returns and squared returns: bar returns have a mean far
    below their standard deviation, so this loses no meaningful precision and needs one pass.
    """
    (
        n,
        total,
        squares,
        downside,
        equity_sum,
        previous,
        peak,
        peak_index,
        floor,  # equity below this is a new deepest drawdown: peak * (1 - max_dd)
        max_dd,
        max_duration,
        bars_held,
        first_close,
        last_close,
    ) = state
    r = (value - previous) / previous if previous != 0.0 else 0.0
    loss = min(r, 0.0)  # branch-free: the sign of a return is a coin flip
    if value >= peak:
        peak = value
        peak_index = n
        floor = peak * (1.0 - max_dd)
    else:
        if value < floor:
            max_dd = 1.0 - value / peak
            floor = value
        max_duration = max(max_duration, n - peak_index)
    if close == close:
        if first_close != first_close:
            first_close = close
        last_close = close
    return (
        n + 1.0,
        total + r,
        squares + r * r,
        downside + loss * loss,
        equity_sum + value,
        value,
        peak,
        peak_index,
        floor,
        max_dd,
        max_duration,
        bars_held + (1.0 if held != 0.0 else 0.0),
        first_close,
        last_close,
    )


@numba.njit(cache=True, nogil=True, error_model="numpy")
def curve_finish(state: CurveState, initial: float, periods: float) -> FloatArray:
    """``[total_return, cagr, volatility, sharpe, sortino, calmar, max_drawdown,
    max_drawdown_duration, exposure, mean_equity, benchmark_return]`` (NaN if undefined)."""
    out = np.full(_CURVE_SLOTS, np.nan)
    n = state[0]
    if n == 0.0:
        return out
    total, squares, downside, equity_sum, final = state[1], state[2], state[3], state[4], state[5]
    max_dd, max_duration, bars_held = state[9], state[10], state[11]
    mean = total / n
    growth = final / initial
    out[_TOTAL] = growth - 1.0
    out[_CAGR] = growth ** (periods / n) - 1.0 if growth > 0.0 else -1.0
    if n > 1.0:
        std = math.sqrt(max((squares - total * mean) / (n - 1.0), 0.0))
        out[_VOL] = std * math.sqrt(periods)
        if std > 0.0:
            out[_SHARPE] = mean / std * math.sqrt(periods)
        downside_risk = math.sqrt(downside / n) * math.sqrt(periods)
        if downside_risk > 0.0:
            out[_SORTINO] = mean * periods / downside_risk
        elif mean > 0.0:
            out[_SORTINO] = np.inf
    if max_dd > 0.0:
        out[_CALMAR] = out[_CAGR] / max_dd
    out[_MAX_DD] = max_dd
    out[_DD_BARS] = max_duration
    out[_EXPOSURE] = bars_held / n
    out[_MEAN_EQUITY] = equity_sum / n
    out[_BENCHMARK] = state[13] / state[12] - 1.0
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def curve_stats(
    equity: FloatArray, position: FloatArray, close: FloatArray, initial: float, periods: float
) -> FloatArray:
    """`curve_finish` of a whole equity curve with its positions and closes."""
    state = curve_start(initial)
    for i in range(equity.shape[0]):
        state = curve_push(state, equity[i], position[i], close[i])
    return curve_finish(state, initial, periods)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def trade_stats(pnl: FloatArray) -> FloatArray:
    """``[win_rate, profit_factor, expectancy, avg_win, avg_loss]`` of closed trades' P&L."""
    wins = 0
    losses = 0
    gross_win = 0.0
    gross_loss = 0.0
    total = 0.0
    for i in range(pnl.shape[0]):
        value = pnl[i]
        total += value
        if value > 0.0:
            wins += 1
            gross_win += value
        elif value < 0.0:
            losses += 1
            gross_loss -= value
    return trade_stats_from_tally(pnl.shape[0], wins, losses, gross_win, gross_loss, total)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def trade_stats_from_tally(
    n: float, wins: float, losses: float, gross_win: float, gross_loss: float, total: float
) -> FloatArray:
    """`trade_stats` from running tallies (a forward test keeps these, not every P&L):
    ``total``, ``gross_win`` and ``gross_loss`` summed in trade order, as `trade_stats` does."""
    out = np.full(5, np.nan)
    if n == 0:
        return out
    out[0] = wins / n
    if gross_loss > 0.0:
        out[1] = gross_win / gross_loss
    elif gross_win > 0.0:
        out[1] = np.inf
    out[2] = total / n
    if wins:
        out[3] = gross_win / wins
    if losses:
        out[4] = -gross_loss / losses
    return out


def compute_metrics(
    equity: FloatArray,
    *,
    initial_capital: float,
    periods: float,
    closed_pnl: FloatArray,
    open_trades: int,
    traded_notional: float,
    position: FloatArray,
    close: FloatArray,
) -> Metrics:
    """All metrics of one run.

    ``equity`` and ``position`` are marked at each bar's close, ``close`` is the same bars'
    closes (for the benchmark), ``closed_pnl`` the net P&L of each closed trade and
    ``traded_notional`` the sum of every fill's notional.
    """
    curve = curve_stats(equity, position, close, initial_capital, periods)
    return assemble(
        curve,
        closed_pnl=closed_pnl,
        open_trades=open_trades,
        traded_notional=traded_notional,
        final_equity=float(equity[-1]) if equity.shape[0] else initial_capital,
    )


def assemble(
    curve: FloatArray,
    *,
    closed_pnl: FloatArray,
    open_trades: int,
    traded_notional: float,
    final_equity: float,
) -> Metrics:
    """`Metrics` from `curve_finish`'s result and the trades (see `compute_metrics`)."""
    return assemble_tallied(
        curve,
        trades=trade_stats(closed_pnl),
        trade_count=int(closed_pnl.shape[0]),
        open_trades=open_trades,
        traded_notional=traded_notional,
        final_equity=final_equity,
    )


def assemble_tallied(
    curve: FloatArray,
    *,
    trades: FloatArray,
    trade_count: int,
    open_trades: int,
    traded_notional: float,
    final_equity: float,
) -> Metrics:
    """`assemble` with the trade statistics already computed (`trade_stats_from_tally`)."""
    mean_equity = float(curve[_MEAN_EQUITY])
    return Metrics(
        total_return=float(curve[_TOTAL]),
        cagr=float(curve[_CAGR]),
        volatility=float(curve[_VOL]),
        sharpe=float(curve[_SHARPE]),
        sortino=float(curve[_SORTINO]),
        calmar=float(curve[_CALMAR]),
        max_drawdown=float(curve[_MAX_DD]),
        max_drawdown_duration=int(curve[_DD_BARS]) if math.isfinite(curve[_DD_BARS]) else 0,
        win_rate=float(trades[0]),
        profit_factor=float(trades[1]),
        expectancy=float(trades[2]),
        avg_win=float(trades[3]),
        avg_loss=float(trades[4]),
        exposure=float(curve[_EXPOSURE]),
        trade_count=trade_count,
        open_trades=open_trades,
        turnover=traded_notional / mean_equity if mean_equity > 0 else math.nan,
        benchmark_return=float(curve[_BENCHMARK]),
        final_equity=final_equity,
    )
