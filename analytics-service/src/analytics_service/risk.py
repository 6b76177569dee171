"""Risk and performance series of equity curves: pure NumPy/SciPy, vectorised (100k bars in a
few milliseconds), the figures the analytics reports and tear sheets show.

Conventions (the same as `algotrade.metrics`, the one implementation of Sharpe, volatility and
maximum drawdown; nothing here re-derives those differently):

- Bar returns: ``r_0 = (equity_0 - initial) / initial`` and
  ``r_t = (equity_t - equity_{t-1}) / equity_{t-1}``; a bar after zero equity returns 0,
  as in `algotrade.metrics`. Equity is marked at each bar's close.
- ``periods`` is bars per year, `algotrade.metrics.periods_per_year` (timeframe, calendar).
- Standard deviations use ``ddof=1``; the risk-free rate is 0.
- Timestamps are int64 epoch milliseconds of bar open times, read in UTC.
- Undefined values are NaN in arrays and ``None`` in dicts; every dict (and list of dicts)
  returned is JSON-ready (plain ``int``, ``float``, ``str``, ``None``).
- Non-finite returns (NaN, inf) are left out of an estimate; a rolling or compounding window
  that contains one is NaN (or left out of a sample).

Value at risk and expected shortfall (`value_at_risk`, `conditional_var`, `var_table`):

- Losses are positive fractions of equity over the horizon: VaR 0.02 means a 2% loss (and a
  negative VaR that even the tail quantile is a gain). ``confidence`` is in (0, 1) and
  ``alpha = 1 - confidence`` is the tail probability.
- Horizon ``h`` in bars. Historical: overlapping ``h``-bar compounded returns,
  ``prod(1 + r) - 1`` over every window of ``h`` consecutive bars. Parametric (gaussian,
  Cornish-Fisher): the one-bar mean scales by ``h`` and the standard deviation by ``sqrt(h)``
  (independent bars).
- Historical VaR = ``-quantile(R, alpha)`` with linear interpolation between order statistics
  (``numpy.quantile(method="linear")``, the same as ``numpy.percentile`` and empyrical);
  historical CVaR = ``-mean(R[R <= quantile(R, alpha)])``, the mean of the returns at or below
  that quantile.
- Gaussian, with ``z = Phi^-1(alpha)`` (``scipy.stats.norm.ppf(1 - confidence)``, negative):
  VaR = ``-(mu + z * sigma)``, CVaR = ``-(mu - sigma * phi(z) / alpha)``.
- Cornish-Fisher: ``S`` and ``K`` are the sample skewness and excess kurtosis with the
  small-sample bias correction, G1 and G2 (what ``scipy.stats.skew(bias=False)``,
  ``scipy.stats.kurtosis(fisher=True, bias=False)`` and pandas' ``skew``/``kurt`` estimate).
  Over ``h`` bars they scale as for sums of independent bars, ``S / sqrt(h)`` and ``K / h``
  (the assumption that scales sigma by ``sqrt(h)``). The modified quantile is
  ``q(z) = z + (z^2 - 1) S/6 + (z^3 - 3z) K/24 - (2z^3 - 5z) S^2/36`` and
  VaR = ``-(mu + sigma * q(z))``. CVaR is the mean of that quantile function over the tail,
  ``-(mu + sigma * (1/alpha) * integral_0^alpha q(Phi^-1(p)) dp)``, evaluated exactly from the
  truncated moments of the standard normal (no numerical integration). Returns that are all
  equal give ``sigma = S = K = 0``. The expansion is a quantile function (increasing) only for
  moderate ``S`` and ``K``; with strong skew and light kurtosis it bends back in the far tail,
  and CVaR can then fall below VaR.
- Historical needs one finite window, gaussian 2 finite returns, Cornish-Fisher 4; less gives
  NaN.

Series and tables:

- `rolling_volatility` = ``std(r, ddof=1) * sqrt(periods)`` and `rolling_sharpe` =
  ``mean(r) / std(r, ddof=1) * sqrt(periods)`` over the last ``window`` bars; the first
  ``window - 1`` entries are NaN. A window of identical returns has volatility 0 and Sharpe
  NaN (as `algotrade.metrics` leaves a zero-variance Sharpe NaN).
- Drawdown = ``1 - equity / running peak`` (a positive fraction); the initial capital counts
  as the first peak, and a bar at or above the running peak is a new peak (drawdown 0).
- A drawdown episode is a maximal run of bars below the running peak. ``start`` is the ts of
  its peak bar (the first bar's ts when the peak is the initial capital, which counts as bar
  -1 in bar counts), ``trough`` the ts of its deepest bar (the first if several),
  ``recovery`` the ts of the first bar back at or above the peak (None if never). Bar counts
  are index differences: ``to_trough = trough - peak``, ``recovery_bars = recovery - trough``,
  ``length = recovery - peak``, or ``last bar - peak`` if not recovered. (So the bars spent
  below the peak, `algotrade.metrics`' drawdown duration, are ``length - 1`` for a recovered
  episode and ``length`` for one still open.) Episodes never overlap; one may start at the
  bar where the previous one recovered. The table lists the ``top`` deepest, deepest first,
  an earlier episode first on equal depth.
- `beta`: over the bars where both returns are finite, ``beta = cov(r, b) / var(b)`` (both
  ``ddof=1``), ``alpha = (mean(r) - beta * mean(b)) * periods`` (arithmetic, annualised),
  ``correlation`` is Pearson's and ``r_squared = correlation^2``.
- `correlation_matrix`: Pearson correlation of each pair of columns over the rows where both
  are finite (pairwise deletion, as pandas ``DataFrame.corr``); NaN with fewer than 2 such rows
  or when a column is constant over them (its variance within rounding of zero, below 1e-12 of
  its sum of squares about the column mean); the diagonal is 1 where a column varies.
- `beta` and `correlation` treat a series of exactly equal values as having no variance
  (beta, correlation and R^2 NaN), whatever rounding its mean leaves.
- `monthly_returns`: bars belong to the UTC calendar month of their open time; a month's
  return is its last equity over the previous month's last equity (the initial capital for
  the first month) minus 1, which is the compounding of its bar returns. Months without bars
  are not listed.
- `return_histogram`: ``numpy.histogram`` of the finite returns: ``bins`` equal-width bins
  from the smallest to the largest return, each ``[left, right)`` except the last, which is
  closed (identical returns get the range ``value +- 0.5``).
- `exposure_by_symbol`: members are ``(symbol, weight, time_in_market)``, a capital weight
  >= 0 and the share of bars in a position, in [0, 1]. Per symbol, ``weight`` is the sum of
  its members' weights and ``exposure = sum(weight * time_in_market)``: capital allocation
  times time in market, not mark-to-market notional (leverage, position size and direction
  are not seen). ``hhi = sum(w_i^2)`` over the symbol weights normalised to sum to 1 (1 = one
  symbol, ``1/n`` = ``n`` equal symbols), ``effective_symbols = 1 / hhi``; both None when no
  weight is positive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Final, Literal, TypedDict

import numpy as np
import numpy.typing as npt
from scipy import stats

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

VarMethod = Literal["historical", "gaussian", "cornish_fisher"]
VAR_METHODS: Final[tuple[VarMethod, ...]] = ("historical", "gaussian", "cornish_fisher")


class VarRow(TypedDict):
    method: VarMethod
    confidence: float
    horizon: int
    var: float | None
    cvar: float | None


class DrawdownEpisode(TypedDict):
    start: int
    trough: int
    recovery: int | None
    depth: float
    length: int
    to_trough: int
    recovery_bars: int | None


class BetaStats(TypedDict):
    beta: float | None
    alpha: float | None
    correlation: float | None
    r_squared: float | None


MonthlyReturn = TypedDict("MonthlyReturn", {"year": int, "month": int, "return": float | None})


class Histogram(TypedDict):
    edges: list[float]
    counts: list[int]


class SymbolExposure(TypedDict):
    symbol: str
    weight: float
    exposure: float


class Exposure(TypedDict):
    symbols: list[SymbolExposure]
    hhi: float | None
    effective_symbols: float | None


# Returns


def bar_returns(equity: FloatArray, initial: float) -> FloatArray:
    """Bar returns of an equity curve, the first measured from ``initial`` (module doc)."""
    values = _floats(equity, "equity")
    _check_capital(initial)
    previous = np.empty_like(values)
    previous[:1] = initial
    previous[1:] = values[:-1]
    # The expression and the zero-equity rule are `algotrade.metrics.curve_push`'s, so a
    # Sharpe from these returns is the one the metrics report.
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (values - previous) / previous
    out[previous == 0.0] = 0.0
    return out


# Value at risk


def value_at_risk(
    returns: FloatArray,
    confidence: float,
    horizon: int = 1,
    method: VarMethod = "historical",
) -> float:
    """The loss not exceeded with probability ``confidence`` over ``horizon`` bars."""
    return _TailSample(returns).estimate(confidence, horizon, method)[0]


def conditional_var(
    returns: FloatArray,
    confidence: float,
    horizon: int = 1,
    method: VarMethod = "historical",
) -> float:
    """Expected shortfall: the mean loss in the ``1 - confidence`` tail over ``horizon`` bars."""
    return _TailSample(returns).estimate(confidence, horizon, method)[1]


def var_table(
    returns: FloatArray,
    confidences: Sequence[float] = (0.95, 0.99),
    horizons: Sequence[int] = (1,),
    methods: Sequence[VarMethod] = VAR_METHODS,
) -> list[VarRow]:
    """VaR and CVaR for every method, horizon and confidence, in that nesting order."""
    sample = _TailSample(returns)
    rows: list[VarRow] = []
    for method in methods:
        for horizon in horizons:
            for confidence in confidences:
                var, cvar = sample.estimate(confidence, horizon, method)
                rows.append(
                    {
                        "method": method,
                        "confidence": float(confidence),
                        "horizon": int(horizon),
                        "var": _finite_or_none(var),
                        "cvar": _finite_or_none(cvar),
                    }
                )
    return rows


class _TailSample:
    """One return series with what its estimates share (moments, compounded windows),
    each computed once however many confidences and horizons are asked for."""

    def __init__(self, returns: FloatArray) -> None:
        self._returns = _floats(returns, "returns")
        self._windows: dict[int, FloatArray] = {}

    def estimate(self, confidence: float, horizon: int, method: VarMethod) -> tuple[float, float]:
        """``(VaR, CVaR)`` as positive losses."""
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        if isinstance(horizon, bool) or int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be a whole number of bars >= 1, got {horizon!r}")
        horizon = int(horizon)
        if method == "historical":
            return self._historical(confidence, horizon)
        if method in ("gaussian", "cornish_fisher"):
            return self._parametric(confidence, horizon, method)
        raise ValueError(f"unknown VaR method {method!r}; use one of {', '.join(VAR_METHODS)}")

    def _historical(self, confidence: float, horizon: int) -> tuple[float, float]:
        windows = self._windows.get(horizon)
        if windows is None:
            compounded = (
                self._returns
                if horizon == 1
                else _window_reduce(1.0 + self._returns, horizon, np.multiply, 1.0) - 1.0
            )
            windows = self._windows[horizon] = compounded[np.isfinite(compounded)]
        if windows.shape[0] == 0:
            return math.nan, math.nan
        cutoff = float(np.quantile(windows, 1.0 - confidence, method="linear"))
        tail = windows[windows <= cutoff]
        # The interpolated cutoff is never below the smallest return in exact arithmetic; the
        # guard keeps a rounding of the interpolation from leaving the tail empty.
        shortfall = float(tail.mean()) if tail.shape[0] else float(windows.min())
        return -cutoff, -shortfall

    @cached_property
    def _finite(self) -> FloatArray:
        return np.asarray(self._returns[np.isfinite(self._returns)], dtype=np.float64)

    @cached_property
    def _moments(self) -> tuple[float, float, float, float]:
        """Mean, standard deviation (ddof=1), bias-corrected skewness G1 and excess kurtosis
        G2 (the estimators of ``scipy.stats.skew``/``kurtosis`` with ``bias=False``)."""
        sample = self._finite
        n = sample.shape[0]
        if n == 0:
            return math.nan, math.nan, math.nan, math.nan
        mean = float(sample.mean())
        if n >= 2 and sample.min() == sample.max():
            return mean, 0.0, 0.0, 0.0  # equal returns: no spread, no shape
        deviations = sample - mean
        # Scaled by a power of two (exactly) to a largest deviation in [0.5, 1), so the powers
        # up to the fourth cannot underflow; the shape ratios do not depend on the scale.
        scale = math.ldexp(1.0, math.frexp(float(np.abs(deviations).max()))[1])
        deviations /= scale
        squared = deviations * deviations
        m2 = float(squared.mean())
        m3 = float((squared * deviations).mean())
        m4 = float((squared * squared).mean())
        std = scale * math.sqrt(m2 * n / (n - 1)) if n >= 2 else math.nan
        skew = m3 / m2**1.5 * math.sqrt(n * (n - 1)) / (n - 2) if n >= 3 else math.nan
        kurt = (
            ((n * n - 1) * m4 / (m2 * m2) - 3 * (n - 1) ** 2) / ((n - 2) * (n - 3))
            if n >= 4
            else math.nan
        )
        return mean, std, skew, kurt

    def _parametric(
        self, confidence: float, horizon: int, method: VarMethod
    ) -> tuple[float, float]:
        mean, std, skew, kurt = self._moments
        alpha = 1.0 - confidence
        mu = mean * horizon
        sigma = std * math.sqrt(horizon)
        z = float(stats.norm.ppf(alpha))
        density = float(stats.norm.pdf(z))
        if method == "gaussian":
            return -(mu + z * sigma), -(mu - sigma * density / alpha)
        if self._finite.shape[0] < 4:
            return math.nan, math.nan
        s = skew / math.sqrt(horizon)
        k = kurt / horizon
        quantile = (
            z
            + (z * z - 1.0) * s / 6.0
            + (z**3 - 3.0 * z) * k / 24.0
            - (2.0 * z**3 - 5.0 * z) * s * s / 36.0
        )
        # Integrals of z**j * phi(z) from -inf to z: the tail moments of the standard normal.
        m0 = alpha
        m1 = -density
        m2 = alpha - z * density
        m3 = -(z * z + 2.0) * density
        tail_integral = (
            m1
            + (m2 - m0) * s / 6.0
            + (m3 - 3.0 * m1) * k / 24.0
            - (2.0 * m3 - 5.0 * m1) * s * s / 36.0
        )
        return -(mu + sigma * quantile), -(mu + sigma * tail_integral / alpha)


# Rolling statistics


def rolling_volatility(returns: FloatArray, window: int, periods: float) -> FloatArray:
    """Annualised standard deviation (ddof=1) of the last ``window`` returns at each bar."""
    _check_periods(periods)
    return _rolling_mean_std(returns, window)[1] * math.sqrt(periods)


def rolling_sharpe(returns: FloatArray, window: int, periods: float) -> FloatArray:
    """Annualised Sharpe ratio (risk-free 0, ddof=1) of the last ``window`` returns at each bar;
    NaN where the window's returns are all equal."""
    _check_periods(periods)
    mean, std = _rolling_mean_std(returns, window)
    out = np.full(mean.shape[0], np.nan)
    spread = std > 0.0
    out[spread] = mean[spread] / std[spread] * math.sqrt(periods)
    return out


def _rolling_mean_std(returns: FloatArray, window: int) -> tuple[FloatArray, FloatArray]:
    values = _floats(returns, "returns")
    if isinstance(window, bool) or int(window) != window or window < 2:
        raise ValueError(f"window must be a whole number of bars >= 2, got {window!r}")
    window = int(window)
    n = values.shape[0]
    mean = np.full(n, np.nan)
    std = np.full(n, np.nan)
    if n < window:
        return mean, std
    finite = np.isfinite(values)
    # Centring on the overall mean keeps sum(x^2) - sum(x)^2 / w from cancelling when a
    # window's mean is far from 0 relative to its spread.
    shift = float(values[finite].mean()) if finite.any() else 0.0
    centred = values - shift
    sums = _window_reduce(centred, window, np.add, 0.0)
    squares = _window_reduce(centred * centred, window, np.add, 0.0)
    variance = np.maximum((squares - sums * sums / window) / (window - 1), 0.0)
    # A window of identical returns has variance exactly 0, which the sums above only reach
    # to rounding; count value changes instead (exact integer arithmetic).
    changes = np.concatenate(([0], np.cumsum(values[1:] != values[:-1])))
    constant = (changes[window - 1 :] == changes[: n - window + 1]) & np.isfinite(sums)
    variance[constant] = 0.0
    mean[window - 1 :] = shift + sums / window
    std[window - 1 :] = np.sqrt(variance)
    return mean, std


def _window_reduce(values: FloatArray, window: int, op: np.ufunc, identity: float) -> FloatArray:
    """``op`` over every run of ``window`` consecutive values (``n - window + 1`` results).

    Van Herk/Gil-Werman: within blocks of ``window`` values, prefix and suffix accumulations;
    a window is at most one suffix combined with one prefix. O(n), each result rounds like a
    direct reduction of its window (unlike differences of running totals, whose error grows
    with the length of the series), and a NaN reaches only the windows that contain it.
    """
    n = values.shape[0]
    if n < window:
        return np.empty(0)
    blocks = -(-n // window)
    padded = np.full(blocks * window, identity)
    padded[:n] = values
    prefix = op.accumulate(padded.reshape(blocks, window), axis=1).ravel()
    # Reversing the whole array reverses the blocks' order and each block: the prefixes of the
    # reversed array, reversed back, are the suffixes (without a strided copy of each row).
    suffix = op.accumulate(padded[::-1].reshape(blocks, window), axis=1).ravel()[::-1]
    count = n - window + 1
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.asarray(op(suffix[:count], prefix[window - 1 : n]), dtype=np.float64)
    # A window that starts a block is that whole block: its prefix alone.
    out[::window] = prefix[window - 1 : n : window]
    return out


# Drawdowns


def drawdown_series(equity: FloatArray, initial: float) -> FloatArray:
    """``1 - equity / running peak`` at each bar, the initial capital being the first peak."""
    values = _floats(equity, "equity")
    _check_capital(initial)
    peak = np.fmax.accumulate(np.concatenate(([initial], values)))[1:]
    return np.asarray(1.0 - values / peak, dtype=np.float64)


def drawdown_table(
    ts: IntArray, equity: FloatArray, initial: float, top: int | None = 5
) -> list[DrawdownEpisode]:
    """The ``top`` deepest drawdown episodes (all if None), deepest first (module doc)."""
    stamps, values = _stamped(ts, equity)
    if not np.isfinite(values).all():
        raise ValueError("equity must be finite to find drawdown episodes")
    if top is not None and top < 0:
        raise ValueError(f"top must be >= 0 or None, got {top!r}")
    drawdown = drawdown_series(values, initial)
    n = drawdown.shape[0]
    below = np.concatenate(([False], drawdown > 0.0, [False]))
    steps = np.diff(below.astype(np.int8))
    starts = np.flatnonzero(steps == 1)  # first bar below the peak
    ends = np.flatnonzero(steps == -1)  # first bar back at or above it (n: not recovered)
    if starts.shape[0] == 0:
        return []
    # Between two episodes the drawdown is 0, so each segment's maximum is its episode's depth.
    depths = np.maximum.reduceat(drawdown, starts)
    order = np.lexsort((starts, -depths))
    if top is not None:
        order = order[:top]
    episodes: list[DrawdownEpisode] = []
    for k in order:
        first, end = int(starts[k]), int(ends[k])
        peak = first - 1  # -1: the initial capital
        trough = first + int(np.argmax(drawdown[first:end]))
        recovered = end < n
        episodes.append(
            {
                "start": int(stamps[max(peak, 0)]),
                "trough": int(stamps[trough]),
                "recovery": int(stamps[end]) if recovered else None,
                "depth": float(depths[k]),
                "length": (end if recovered else n - 1) - peak,
                "to_trough": trough - peak,
                "recovery_bars": end - trough if recovered else None,
            }
        )
    return episodes


# Relations between series


def beta(returns: FloatArray, benchmark_returns: FloatArray, periods: float) -> BetaStats:
    """Beta, annualised alpha, correlation and R^2 against a benchmark on common finite bars."""
    r = _floats(returns, "returns")
    b = _floats(benchmark_returns, "benchmark_returns")
    if r.shape != b.shape:
        raise ValueError("returns and benchmark_returns must have the same length")
    _check_periods(periods)
    both = np.isfinite(r) & np.isfinite(b)
    r, b = r[both], b[both]
    n = r.shape[0]
    if n < 2:
        return {"beta": None, "alpha": None, "correlation": None, "r_squared": None}
    r_mean, b_mean = float(r.mean()), float(b.mean())
    r_dev, b_dev = r - r_mean, b - b_mean
    # Elementwise products and numpy's pairwise sums, not a BLAS dot: as accurate, and a dot
    # pays for BLAS threads on a busy machine.
    covariance = float((r_dev * b_dev).sum()) / (n - 1)
    r_var = float((r_dev * r_dev).sum()) / (n - 1)
    b_var = float((b_dev * b_dev).sum()) / (n - 1)
    # A series of equal values has no variance, whatever rounding its mean leaves behind.
    b_varies = bool(b.min() < b.max())
    r_varies = bool(r.min() < r.max())
    scale = math.sqrt(r_var) * math.sqrt(b_var)
    slope = covariance / b_var if b_varies and b_var > 0.0 else math.nan
    correlation = (
        min(max(covariance / scale, -1.0), 1.0)
        if r_varies and b_varies and scale > 0.0
        else math.nan
    )
    return {
        "beta": _finite_or_none(slope),
        "alpha": _finite_or_none((r_mean - slope * b_mean) * periods),
        "correlation": _finite_or_none(correlation),
        "r_squared": _finite_or_none(correlation * correlation),
    }


def correlation_matrix(matrix: FloatArray) -> FloatArray:
    """Pairwise Pearson correlation of the columns (members), each pair on its common finite
    rows."""
    x = np.asarray(matrix, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("matrix must be 2-D: one row per bar, one column per member")
    # One row per member: every reduction below runs along contiguous memory.
    columns = np.ascontiguousarray(x.T)
    m = columns.shape[0]
    finite = np.isfinite(columns)
    present = finite.astype(np.float64)
    counts = present.sum(axis=1)
    totals = np.where(finite, columns, 0.0).sum(axis=1)
    # Centring each column on its own mean first keeps the per-pair sums below from cancelling
    # (the rows a pair shares have a mean close to each column's).
    col_mean = np.divide(totals, counts, out=np.zeros(m), where=counts > 0)
    c = np.where(finite, columns - col_mean[:, np.newaxis], 0.0)
    # One product gives every per-pair sum over the rows where both columns are finite.
    stacked = np.concatenate((c, c * c, present), axis=0)
    gram = stacked @ stacked.T
    products = gram[:m, :m]  # [i, j]: sum of c_i * c_j
    squares = gram[m : 2 * m, 2 * m :]  # [i, j]: sum of c_i^2
    sums = gram[:m, 2 * m :]  # [i, j]: sum of c_i
    n = gram[2 * m :, 2 * m :]  # [i, j]: number of rows
    with np.errstate(divide="ignore", invalid="ignore"):
        covariance = products - sums * sums.T / n
        var_row = squares - sums * sums / n
        var_col = var_row.T
        corr = covariance / np.sqrt(var_row * var_col)
    # A variance within rounding of zero (below 1e-12 of the sum of squares it came from) is
    # a column constant over the pair's rows, whose correlation would be rounding noise.
    varies = var_row > 1e-12 * squares
    defined = (n >= 2) & varies & varies.T
    out = np.where(defined, np.clip(corr, -1.0, 1.0), np.nan)
    diagonal = np.diagonal(defined).copy()
    out[np.diag_indices_from(out)] = np.where(diagonal, 1.0, np.nan)
    return np.asarray(out, dtype=np.float64)


# Calendar and distribution


def monthly_returns(ts: IntArray, equity: FloatArray, initial: float) -> list[MonthlyReturn]:
    """Compounded return of each UTC calendar month with bars, oldest first."""
    stamps, values = _stamped(ts, equity)
    _check_capital(initial)
    if values.shape[0] == 0:
        return []
    months = stamps.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
    ends = np.append(np.flatnonzero(np.diff(months) != 0), values.shape[0] - 1)
    closes = values[ends]
    opens = np.concatenate(([initial], closes[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = closes / opens - 1.0
    return [
        {
            "year": int(month // 12 + 1970),
            "month": int(month % 12 + 1),
            "return": _finite_or_none(g),
        }
        for month, g in zip(months[ends].tolist(), growth.tolist(), strict=True)
    ]


def return_histogram(returns: FloatArray, bins: int = 50) -> Histogram:
    """Counts of the finite returns in ``bins`` equal-width bins (``numpy.histogram``)."""
    values = _floats(returns, "returns")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins!r}")
    finite = values[np.isfinite(values)]
    if finite.shape[0] == 0:
        return {"edges": [], "counts": []}
    counts, edges = np.histogram(finite, bins=int(bins))
    return {"edges": edges.tolist(), "counts": counts.tolist()}


# Allocation


def exposure_by_symbol(members: Iterable[tuple[str, float, float]]) -> Exposure:
    """Per-symbol capital weight and exposure, and the concentration of the weights.

    ``members`` are ``(symbol, weight, time_in_market)``: a capital weight (>= 0) and the
    share of bars in a position (0 to 1). Symbols are listed by weight, largest first.
    """
    weights: dict[str, float] = {}
    exposures: dict[str, float] = {}
    for symbol, weight, time_in_market in members:
        if not (math.isfinite(weight) and weight >= 0.0):
            raise ValueError(f"weight of {symbol!r} must be finite and >= 0, got {weight!r}")
        if not 0.0 <= time_in_market <= 1.0:
            raise ValueError(
                f"time in market of {symbol!r} must be in [0, 1], got {time_in_market!r}"
            )
        weights[symbol] = weights.get(symbol, 0.0) + float(weight)
        exposures[symbol] = exposures.get(symbol, 0.0) + float(weight) * float(time_in_market)
    total = math.fsum(weights.values())
    hhi = math.fsum((w / total) ** 2 for w in weights.values()) if total > 0.0 else math.nan
    ranked = sorted(weights, key=lambda s: (-weights[s], s))
    return {
        "symbols": [{"symbol": s, "weight": weights[s], "exposure": exposures[s]} for s in ranked],
        "hhi": _finite_or_none(hhi),
        "effective_symbols": _finite_or_none(1.0 / hhi) if hhi > 0.0 else None,
    }


# Checks


def _floats(values: FloatArray, name: str) -> FloatArray:
    out = np.asarray(values, dtype=np.float64)
    if out.ndim != 1:
        raise ValueError(f"{name} must be 1-D")
    return out


def _stamped(ts: IntArray, equity: FloatArray) -> tuple[IntArray, FloatArray]:
    stamps = np.asarray(ts, dtype=np.int64)
    values = _floats(equity, "equity")
    if stamps.shape != values.shape:
        raise ValueError("ts and equity must have the same length")
    if stamps.shape[0] > 1 and not bool(np.all(np.diff(stamps) > 0)):
        raise ValueError("ts must be strictly increasing")
    return stamps, values


def _check_capital(initial: float) -> None:
    if not (math.isfinite(initial) and initial > 0.0):
        raise ValueError(f"initial capital must be finite and > 0, got {initial!r}")


def _check_periods(periods: float) -> None:
    if not (math.isfinite(periods) and periods > 0.0):
        raise ValueError(f"periods per year must be finite and > 0, got {periods!r}")


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
