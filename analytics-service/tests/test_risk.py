"""`analytics_service.risk` against independent references on real bars (``data/spy-1d.csv``,
``data/btc-usd-4h.csv``): empyrical, scipy, pandas and plain per-bar loops, plus properties
with hypothesis.

The curves are a buy-and-hold bought at the first bar's open (so the first bar return, measured
from the capital, is not 0) and a long/flat strategy (long over the next bar when the close is
above its 50-bar mean), which has long runs of exactly zero returns. Where a reference's own
convention differs from the module's, the test converts explicitly and says so. Tolerances are
for floating-point rounding only (the bound is given where it comes from the reference).
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import empyrical
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.lib.stride_tricks import sliding_window_view
from scipy import integrate, stats

from algotrade.bars import Bars
from algotrade.metrics import Metrics, compute_metrics, periods_per_year
from analytics_service import risk

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

DATA = Path(__file__).resolve().parents[2] / "data"
CAPITAL = 100_000.0
DAY_MS = 86_400_000
CONFIDENCES = (0.95, 0.99)
# Floating-point rounding between two evaluations of the same quantity in a different order
# (running sums, compounding in another order, a power and its root); a convention difference
# would be many orders of magnitude larger.
ROUNDING = 1e-9


@dataclass(frozen=True)
class Curve:
    name: str
    ts: IntArray
    equity: FloatArray
    periods: float

    @property
    def returns(self) -> FloatArray:
        returns: FloatArray = risk.bar_returns(self.equity, CAPITAL)
        return returns

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.to_datetime(self.ts, unit="ms", utc=True)


MARKETS = {"spy-1d": ("1d", "xnys"), "btc-usd-4h": ("4h", "24x7")}
CURVES = tuple(f"{market} {kind}" for market in MARKETS for kind in ("buy-and-hold", "long-flat"))


@cache
def bars(market: str) -> Bars:
    return Bars.from_csv(DATA / f"{market}.csv")


@cache
def curve(name: str) -> Curve:
    market, kind = name.split()
    b = bars(market)
    periods = periods_per_year(*MARKETS[market])
    if kind == "buy-and-hold":
        equity = CAPITAL * b.close / b.open[0]
    else:
        above = b.close > pd.Series(b.close).rolling(50).mean().to_numpy()
        growth = np.ones_like(b.close)
        growth[1:] = np.where(above[:-1], b.close[1:] / b.close[:-1], 1.0)
        equity = CAPITAL * np.cumprod(growth)
    return Curve(name, b.ts, equity, periods)


def metrics_of(c: Curve) -> Metrics:
    n = c.equity.shape[0]
    return compute_metrics(
        c.equity,
        initial_capital=CAPITAL,
        periods=c.periods,
        closed_pnl=np.zeros(0),
        open_trades=0,
        traded_notional=0.0,
        position=np.ones(n),
        close=np.ones(n),
    )


def daily_returns(dates: IntArray, close: FloatArray) -> pd.Series:
    """Close-to-close returns of the last close of each UTC day, indexed by day number."""
    last = pd.Series(close, index=dates // DAY_MS).groupby(level=0).last()
    return last.pct_change().iloc[1:]


@cache
def daily_frame() -> pd.DataFrame:
    """SPY, BTC and the SPY long/flat curve as daily returns on the union of their days: BTC
    trades every day and SPY on trading days, so each column has its own gaps (NaN)."""
    spy, btc = bars("spy-1d"), bars("btc-usd-4h")
    strategy = curve("spy-1d long-flat")
    return pd.DataFrame(
        {
            "spy": daily_returns(spy.ts, spy.close),
            "btc": daily_returns(btc.ts, btc.close),
            "spy long-flat": daily_returns(strategy.ts, strategy.equity),
        }
    )


def no_tie_at_cutoff(sample: FloatArray, alpha: float) -> bool:
    """Whether the two order statistics that the alpha quantile interpolates between differ."""
    ordered = np.sort(sample)
    k = int((sample.shape[0] - 1) * alpha)
    return bool(ordered[k] < ordered[k + 1])


def cornish_fisher_quantile(p: float, skew: float, kurt: float) -> float:
    z = float(stats.norm.ppf(p))
    return (
        z + (z**2 - 1) * skew / 6 - (2 * z**3 - 5 * z) * skew**2 / 36 + (z**3 - 3 * z) * kurt / 24
    )


# Returns and the platform's metrics


@pytest.mark.parametrize("name", CURVES)
def test_bar_returns_start_from_the_capital_and_reproduce_the_metrics(name: str) -> None:
    c = curve(name)
    r = c.returns
    # empyrical's simple returns of the curve with the capital prepended: diff / previous.
    assert np.array_equal(r, empyrical.simple_returns(np.concatenate(([CAPITAL], c.equity))))
    if "buy-and-hold" in name:
        first = bars(name.split()[0])
        # Bought at the first open: the first return is that bar's open-to-close move.
        assert r[0] == pytest.approx(first.close[0] / first.open[0] - 1, rel=1e-12)
        assert r[0] != 0.0
    m = metrics_of(c)
    # algotrade.metrics uses running sums; empyrical two-pass moments (ddof=1, annualisation
    # given explicitly instead of its 252 default).
    assert m.sharpe == pytest.approx(
        empyrical.sharpe_ratio(r, annualization=c.periods), rel=ROUNDING
    )
    assert m.volatility == pytest.approx(
        empyrical.annual_volatility(r, annualization=c.periods), rel=ROUNDING
    )


# Value at risk


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("name", CURVES)
def test_historical_var_is_empyricals_linear_percentile(name: str, confidence: float) -> None:
    r = curve(name).returns
    # empyrical returns the alpha percentile as a (negative) return; the module reports a loss.
    expected = -empyrical.value_at_risk(r, cutoff=1 - confidence)
    assert risk.value_at_risk(r, confidence) == pytest.approx(expected, rel=1e-12)
    assert risk.value_at_risk(r, confidence) > 0


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("name", CURVES)
def test_historical_cvar_is_the_mean_of_returns_at_or_below_the_var_quantile(
    name: str, confidence: float
) -> None:
    r = curve(name).returns
    alpha = 1 - confidence
    cvar = risk.conditional_var(r, confidence)
    # pandas' quantile (linear, like numpy's) and the mean of the returns at or below it.
    series = pd.Series(r)
    assert cvar == pytest.approx(-series[series <= series.quantile(alpha)].mean(), rel=1e-12)
    # empyrical averages the floor((n - 1) * alpha) + 1 smallest returns: the same returns as
    # "at or below the interpolated quantile" exactly when the two order statistics the
    # quantile lies between are not tied, which holds on this data (checked, not assumed).
    assert no_tie_at_cutoff(r, alpha)
    expected = -empyrical.conditional_value_at_risk(r, cutoff=alpha)
    assert cvar == pytest.approx(expected, rel=1e-12)
    assert cvar > risk.value_at_risk(r, confidence)


@pytest.mark.parametrize("horizon", [5, 21])
@pytest.mark.parametrize("name", CURVES)
def test_historical_var_over_a_horizon_uses_overlapping_compounded_windows(
    name: str, horizon: int
) -> None:
    r = curve(name).returns
    windows = np.prod(sliding_window_view(1 + r, horizon), axis=1) - 1
    assert windows.shape[0] == r.shape[0] - horizon + 1
    for confidence in CONFIDENCES:
        alpha = 1 - confidence
        # The module multiplies each window in another order (two partial products), hence
        # rounding-level differences from the sequential np.prod.
        assert risk.value_at_risk(r, confidence, horizon) == pytest.approx(
            -empyrical.value_at_risk(windows, cutoff=alpha), rel=ROUNDING
        )
        cvar = risk.conditional_var(r, confidence, horizon)
        tail = pd.Series(windows)
        assert cvar == pytest.approx(-tail[tail <= tail.quantile(alpha)].mean(), rel=ROUNDING)
        # empyrical's CVaR takes exactly floor((n - 1) * alpha) + 1 windows, so it agrees only
        # without a tie at the cutoff; the flat strategy's windows that hold the same single
        # active bar are such ties.
        if no_tie_at_cutoff(windows, alpha):
            assert cvar == pytest.approx(
                -empyrical.conditional_value_at_risk(windows, cutoff=alpha), rel=ROUNDING
            )


@pytest.mark.parametrize("horizon", [1, 10])
@pytest.mark.parametrize("name", CURVES)
def test_gaussian_var_and_cvar_are_the_normal_quantile_and_tail_mean(
    name: str, horizon: int
) -> None:
    r = pd.Series(curve(name).returns)
    mu = r.mean() * horizon
    sigma = r.std() * math.sqrt(horizon)  # pandas' std is ddof=1, like the module's
    normal = stats.norm(loc=mu, scale=sigma)
    for confidence in CONFIDENCES:
        cutoff = normal.ppf(1 - confidence)
        # The tail mean by scipy's numerical integration (conditional expectation below the
        # cutoff), not the closed form the module uses.
        tail_mean = normal.expect(lambda x: x, ub=cutoff, conditional=True)
        assert risk.value_at_risk(r.to_numpy(), confidence, horizon, "gaussian") == (
            pytest.approx(-cutoff, rel=1e-12)
        )
        assert risk.conditional_var(r.to_numpy(), confidence, horizon, "gaussian") == (
            pytest.approx(-tail_mean, rel=1.49e-8)  # quad's default relative tolerance
        )


@pytest.mark.parametrize("horizon", [1, 10])
@pytest.mark.parametrize("name", CURVES)
def test_cornish_fisher_uses_bias_corrected_moments_and_the_tail_mean_of_its_quantile(
    name: str, horizon: int
) -> None:
    r = curve(name).returns
    series = pd.Series(r)
    # pandas' skew and kurt are the bias-corrected G1 and G2, the module's documented choice
    # (scipy's bias=False): checked here so the two references cannot drift apart unseen.
    skew, kurt = series.skew(), series.kurt()
    assert skew == pytest.approx(stats.skew(r, bias=False), rel=1e-10)
    assert kurt == pytest.approx(stats.kurtosis(r, bias=False), rel=1e-10)
    mu = series.mean() * horizon
    sigma = series.std() * math.sqrt(horizon)
    # Sums of h independent bars: skewness / sqrt(h), excess kurtosis / h.
    s, k = skew / math.sqrt(horizon), kurt / horizon
    for confidence in CONFIDENCES:
        alpha = 1 - confidence
        var = -(mu + sigma * cornish_fisher_quantile(alpha, s, k))
        # CVaR: the mean of the CF quantile function over tail levels p in (0, alpha),
        # integrated numerically in p (the module uses closed-form truncated moments).
        integral, error = integrate.quad(
            lambda p, s=s, k=k: cornish_fisher_quantile(p, s, k), 0.0, alpha, limit=200
        )
        cvar = -(mu + sigma * integral / alpha)
        assert risk.value_at_risk(r, confidence, horizon, "cornish_fisher") == pytest.approx(
            var, rel=1e-12
        )
        assert risk.conditional_var(r, confidence, horizon, "cornish_fisher") == pytest.approx(
            cvar,
            rel=0,
            abs=sigma * error / alpha,  # quad's own error estimate
        )


def test_var_table_rows_are_the_single_estimates_and_json_ready() -> None:
    r = curve("btc-usd-4h long-flat").returns
    rows = risk.var_table(r, confidences=(0.95, 0.99), horizons=(1, 6))
    assert [(row["method"], row["horizon"], row["confidence"]) for row in rows] == [
        (method, horizon, confidence)
        for method in risk.VAR_METHODS
        for horizon in (1, 6)
        for confidence in (0.95, 0.99)
    ]
    for row in rows:
        args = (r, row["confidence"], row["horizon"], row["method"])
        assert row["var"] == risk.value_at_risk(*args)
        assert row["cvar"] == risk.conditional_var(*args)
    json.dumps(rows, allow_nan=False)
    assert risk.var_table(r, methods=("gaussian",), horizons=(1,), confidences=(0.9,)) == [
        {
            "method": "gaussian",
            "confidence": 0.9,
            "horizon": 1,
            "var": risk.value_at_risk(r, 0.9, 1, "gaussian"),
            "cvar": risk.conditional_var(r, 0.9, 1, "gaussian"),
        }
    ]


def test_var_needs_enough_returns_and_skips_non_finite_ones() -> None:
    assert [row["var"] for row in risk.var_table(np.array([-0.01]), confidences=(0.95,))] == [
        0.01,
        None,
        None,
    ]
    assert math.isnan(risk.value_at_risk(np.array([]), 0.95))
    assert math.isnan(risk.conditional_var(np.array([0.01, -0.02, 0.0]), 0.95, 4))
    r = curve("spy-1d buy-and-hold").returns
    gappy = r.copy()
    gappy[::10] = np.nan
    kept = r[np.isfinite(gappy)]
    for method in risk.VAR_METHODS:
        assert risk.value_at_risk(gappy, 0.99, 1, method) == risk.value_at_risk(
            kept, 0.99, 1, method
        )
    # Over a horizon, a window holding a NaN is left out, not bridged.
    windows = np.prod(sliding_window_view(1 + gappy, 3), axis=1) - 1
    assert risk.value_at_risk(gappy, 0.95, 3) == pytest.approx(
        -np.quantile(windows[np.isfinite(windows)], 0.05), rel=ROUNDING
    )
    # Equal returns: the loss is minus the return, and Cornish-Fisher (skewness and kurtosis
    # undefined) is the normal's.
    flat = np.full(50, 0.001)
    for method in risk.VAR_METHODS:
        assert risk.value_at_risk(flat, 0.99, 1, method) == pytest.approx(-0.001, rel=1e-12)
        assert risk.conditional_var(flat, 0.99, 1, method) == pytest.approx(-0.001, rel=1e-12)


def test_invalid_arguments_are_rejected() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.0, -0.01])
    for confidence in (0.0, 1.0, 1.5, -0.1, math.nan):
        with pytest.raises(ValueError, match="confidence"):
            risk.value_at_risk(r, confidence)
    for horizon in (0, 1.5, -2, True):
        with pytest.raises(ValueError, match="horizon"):
            risk.conditional_var(r, 0.95, horizon)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method"):
        risk.value_at_risk(r, 0.95, 1, "montecarlo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        risk.rolling_sharpe(r, 1, 252)
    with pytest.raises(ValueError, match="periods"):
        risk.rolling_volatility(r, 3, 0)
    with pytest.raises(ValueError, match="initial capital"):
        risk.bar_returns(r, 0.0)
    with pytest.raises(ValueError, match="increasing"):
        risk.drawdown_table(np.array([2, 1]), np.array([1.0, 2.0]), 1.0)
    with pytest.raises(ValueError, match="same length"):
        risk.beta(r, r[:-1], 252)


# Rolling statistics


@pytest.mark.parametrize("window", [21, 252])
@pytest.mark.parametrize("name", CURVES)
def test_rolling_volatility_and_sharpe_match_empyrical_and_pandas_windows(
    name: str, window: int
) -> None:
    c = curve(name)
    r = c.returns
    vol = risk.rolling_volatility(r, window, c.periods)
    sharpe = risk.rolling_sharpe(r, window, c.periods)
    assert np.isnan(vol[: window - 1]).all()
    assert np.isnan(sharpe[: window - 1]).all()
    # empyrical recomputes every window (ddof=1; annualisation given explicitly) and returns
    # only the n - window + 1 complete windows.
    ref_vol = empyrical.roll_annual_volatility(r, window, annualization=c.periods)
    ref_sharpe = empyrical.roll_sharpe_ratio(r, window, annualization=c.periods)
    np.testing.assert_allclose(vol[window - 1 :], ref_vol, rtol=ROUNDING, atol=0)
    # A window of identical returns: empyrical divides by a zero deviation (0/0 = NaN for the
    # flat strategy's zero returns, inf otherwise); the module leaves that Sharpe NaN.
    ref_sharpe = np.where(np.isinf(ref_sharpe), np.nan, ref_sharpe)
    np.testing.assert_allclose(sharpe[window - 1 :], ref_sharpe, rtol=ROUNDING, atol=0)
    constant = np.zeros(r.shape[0], dtype=bool)
    constant[window - 1 :] = np.ptp(sliding_window_view(r, window), axis=1) == 0
    assert (vol[constant] == 0).all()
    assert np.isnan(sharpe[constant]).all()
    if "long-flat" in name and window == 21:
        assert constant.sum() > 100  # the flat runs are exercised
    # pandas' online rolling variance leaves a rounding residue (about 1e-9 annualised) after
    # a run of equal returns, where the variance is exactly 0; compare it on the other windows.
    pandas_vol = pd.Series(r).rolling(window).std().to_numpy() * math.sqrt(c.periods)
    np.testing.assert_allclose(vol[~constant], pandas_vol[~constant], rtol=ROUNDING, atol=0)


@pytest.mark.parametrize("name", CURVES)
def test_a_window_over_the_whole_curve_gives_the_metrics_sharpe(name: str) -> None:
    c = curve(name)
    n = c.equity.shape[0]
    m = metrics_of(c)
    assert risk.rolling_sharpe(c.returns, n, c.periods)[-1] == pytest.approx(m.sharpe, rel=ROUNDING)
    assert risk.rolling_volatility(c.returns, n, c.periods)[-1] == pytest.approx(
        m.volatility, rel=ROUNDING
    )


# Drawdowns


@pytest.mark.parametrize("name", CURVES)
def test_drawdown_series_matches_empyrical_and_the_metrics(name: str) -> None:
    c = curve(name)
    drawdown = risk.drawdown_series(c.equity, CAPITAL)
    # empyrical anchors the running peak at a start value before the first return (the
    # capital) and reports drawdowns as negative fractions; it rebuilds the curve from the
    # returns by cumulative product, hence rounding-level differences.
    np.testing.assert_allclose(
        drawdown, -empyrical.stats.drawdown_series(c.returns), rtol=0, atol=1e-12
    )
    assert drawdown.max() == metrics_of(c).max_drawdown
    assert drawdown.max() == pytest.approx(-empyrical.max_drawdown(c.returns), abs=1e-12)
    assert (drawdown >= 0).all()


def drawdown_episodes_bar_by_bar(ts: IntArray, equity: FloatArray, initial: float) -> list[Any]:
    """Every drawdown episode, walking the curve one bar at a time (the reference)."""
    episodes: list[dict[str, Any]] = []
    peak_value, peak_index = initial, -1
    current: dict[str, Any] | None = None
    for i, value in enumerate(equity.tolist()):
        if value >= peak_value:
            if current is not None:
                current["recovery"] = i
                episodes.append(current)
                current = None
            peak_value, peak_index = value, i
            continue
        depth = 1 - value / peak_value
        if current is None:
            current = {"peak": peak_index, "trough": i, "depth": depth, "recovery": None}
        elif depth > current["depth"]:
            current["trough"], current["depth"] = i, depth
    if current is not None:
        episodes.append(current)
    last = equity.shape[0] - 1
    rows = []
    for e in episodes:
        peak, trough, recovery = e["peak"], e["trough"], e["recovery"]
        rows.append(
            {
                "start": int(ts[max(peak, 0)]),
                "trough": int(ts[trough]),
                "recovery": None if recovery is None else int(ts[recovery]),
                "depth": e["depth"],
                "length": (last if recovery is None else recovery) - peak,
                "to_trough": trough - peak,
                "recovery_bars": None if recovery is None else recovery - trough,
            }
        )
    return sorted(rows, key=lambda row: (-row["depth"], row["start"]))


@pytest.mark.parametrize("name", CURVES)
def test_drawdown_table_matches_a_bar_by_bar_walk_and_the_metrics(name: str) -> None:
    c = curve(name)
    every = risk.drawdown_table(c.ts, c.equity, CAPITAL, top=None)
    assert every == drawdown_episodes_bar_by_bar(c.ts, c.equity, CAPITAL)
    assert len(every) > 5
    assert risk.drawdown_table(c.ts, c.equity, CAPITAL) == every[:5]
    m = metrics_of(c)
    assert every[0]["depth"] == m.max_drawdown
    # The metrics' duration counts bars below the peak: a recovered episode's length less the
    # recovery bar, an open one's whole length.
    below = [e["length"] - (e["recovery"] is not None) for e in every]
    assert max(below) == m.max_drawdown_duration
    json.dumps(every, allow_nan=False)


def test_drawdown_table_by_hand() -> None:
    ts = np.arange(8, dtype=np.int64) * 1000
    equity = np.array([90.0, 95.0, 100.0, 105.0, 100.0, 110.0, 98.0, 98.0])
    assert risk.drawdown_table(ts, equity, 100.0) == [
        # From the peak at bar 5 (110), never recovered: counted to the last bar.
        {
            "start": 5000,
            "trough": 6000,  # the first of two equal lows
            "recovery": None,
            "depth": 1 - 98 / 110,
            "length": 2,
            "to_trough": 1,
            "recovery_bars": None,
        },
        # From the initial capital (bar -1, stamped with the first bar's ts), back to exactly
        # the peak at bar 2.
        {
            "start": 0,
            "trough": 0,
            "recovery": 2000,
            "depth": 1 - 90 / 100,
            "length": 3,
            "to_trough": 1,
            "recovery_bars": 2,
        },
        {
            "start": 3000,
            "trough": 4000,
            "recovery": 5000,
            "depth": 1 - 100 / 105,
            "length": 2,
            "to_trough": 1,
            "recovery_bars": 1,
        },
    ]
    assert risk.drawdown_table(ts, equity, 100.0, top=1)[0]["start"] == 5000
    assert risk.drawdown_table(ts, np.arange(1.0, 9.0), 1.0) == []
    assert risk.drawdown_table(ts[:0], equity[:0], 1.0) == []


# Relations between series


def test_beta_against_its_own_benchmark_matches_empyrical_and_linregress() -> None:
    strategy = curve("spy-1d long-flat").returns
    benchmark = curve("spy-1d buy-and-hold").returns
    check_beta(strategy, benchmark, 252.0)


def test_beta_uses_only_the_days_both_series_have() -> None:
    frame = daily_frame()
    btc, spy = frame["btc"].to_numpy(), frame["spy"].to_numpy()
    assert np.isnan(spy).sum() > 1000  # weekends: BTC has returns, SPY none
    check_beta(btc, spy, 365.0)


def check_beta(r: FloatArray, b: FloatArray, periods: float) -> None:
    result = risk.beta(r, b, periods)
    both = np.isfinite(r) & np.isfinite(b)
    rp, bp = r[both], b[both]
    # empyrical: population covariance over population variance, the same ratio as ddof=1 / 1.
    assert result["beta"] == pytest.approx(empyrical.beta(rp, bp), rel=1e-12)
    # empyrical compounds the mean daily alpha, (1 + mean(r - beta b)) ** P - 1; the module
    # annualises arithmetically, mean(r - beta b) * P. Convert back before comparing.
    compounded = empyrical.alpha(rp, bp, annualization=periods)
    assert result["alpha"] == pytest.approx(
        ((1 + compounded) ** (1 / periods) - 1) * periods, rel=ROUNDING
    )
    fit = stats.linregress(bp, rp)
    assert result["beta"] == pytest.approx(fit.slope, rel=1e-12)
    assert result["alpha"] == pytest.approx(fit.intercept * periods, rel=ROUNDING)
    assert result["correlation"] == pytest.approx(fit.rvalue, rel=1e-12)
    assert result["r_squared"] == pytest.approx(fit.rvalue**2, rel=1e-12)
    assert result["correlation"] == pytest.approx(np.corrcoef(rp, bp)[0, 1], rel=1e-12)


def test_beta_is_undefined_without_two_common_bars_or_benchmark_variance() -> None:
    undefined = {"beta": None, "alpha": None, "correlation": None, "r_squared": None}
    assert risk.beta(np.array([0.01, np.nan]), np.array([np.nan, 0.02]), 252) == undefined
    flat = risk.beta(np.array([0.01, 0.02, -0.01]), np.array([0.01, 0.01, 0.01]), 252)
    assert flat == undefined


def test_correlation_matrix_is_pandas_pairwise_complete_correlation() -> None:
    frame = daily_frame()
    assert frame.isna().any().all()  # every column has gaps, each its own
    matrix = risk.correlation_matrix(frame.to_numpy())
    np.testing.assert_allclose(matrix, frame.corr().to_numpy(), rtol=1e-12, atol=1e-15)
    assert np.array_equal(np.diag(matrix), np.ones(3))


def test_correlation_matrix_is_nan_where_undefined() -> None:
    x = np.array(
        [
            [0.1, 1.0, np.nan, 2.0],
            [0.2, 1.0, 3.0, 1.0],
            [0.4, 1.0, np.nan, 5.0],
            [0.3, 1.0, 4.0, 0.0],
        ]
    )
    matrix = risk.correlation_matrix(x)
    expected = pd.DataFrame(x).corr().to_numpy()
    # A constant column (1) has no correlation, nor its own diagonal; column 2 has 2 values.
    assert np.isnan(matrix[1]).all() and np.isnan(matrix[:, 1]).all()
    np.testing.assert_allclose(matrix, expected, rtol=1e-12, atol=1e-15)


# Calendar and distribution


@pytest.mark.parametrize("name", CURVES)
def test_monthly_returns_match_empyricals_monthly_aggregation(name: str) -> None:
    c = curve(name)
    months = risk.monthly_returns(c.ts, c.equity, CAPITAL)
    # empyrical compounds the bar returns (the first from the capital) by calendar month of
    # a UTC index; the module divides month-end equities, hence rounding-level differences.
    expected = empyrical.aggregate_returns(pd.Series(c.returns, index=c.index), "monthly")
    assert [(m["year"], m["month"]) for m in months] == list(expected.index)
    np.testing.assert_allclose(
        [m["return"] for m in months], expected.to_numpy(), rtol=0, atol=1e-12
    )


def test_monthly_returns_by_hand_use_utc_months_and_skip_empty_ones() -> None:
    stamps = ["2024-01-31T23:00Z", "2024-02-01T00:00Z", "2024-02-29T12:00Z", "2024-04-02T00:00Z"]
    ts = np.array([pd.Timestamp(s).value // 1_000_000 for s in stamps], dtype=np.int64)
    equity = np.array([101.0, 103.0, 99.0, 110.0])
    assert risk.monthly_returns(ts, equity, 100.0) == [
        {"year": 2024, "month": 1, "return": pytest.approx(0.01, rel=1e-14)},
        {"year": 2024, "month": 2, "return": pytest.approx(99 / 101 - 1, rel=1e-14)},
        {"year": 2024, "month": 4, "return": pytest.approx(110 / 99 - 1, rel=1e-14)},
    ]


def test_return_histogram_counts_every_finite_return_in_one_bin() -> None:
    r = curve("btc-usd-4h buy-and-hold").returns.copy()
    r[::100] = np.nan
    finite = r[np.isfinite(r)]
    histogram = risk.return_histogram(r, bins=40)
    edges, counts = np.array(histogram["edges"]), np.array(histogram["counts"])
    assert edges.shape == (41,) and counts.shape == (40,)
    assert edges[0] == finite.min() and edges[-1] == finite.max()
    np.testing.assert_allclose(np.diff(edges), (finite.max() - finite.min()) / 40, rtol=1e-9)
    # Each bin is [left, right) except the last, [left, right].
    left, right = edges[:-1, np.newaxis], edges[1:, np.newaxis]
    inside = (finite >= left) & ((finite < right) | (np.arange(40)[:, np.newaxis] == 39))
    assert counts.tolist() == inside.sum(axis=1).tolist()
    assert counts.sum() == finite.shape[0]
    json.dumps(histogram, allow_nan=False)
    assert risk.return_histogram(np.array([np.nan])) == {"edges": [], "counts": []}


# Allocation


def test_exposure_by_symbol_adds_members_and_measures_concentration() -> None:
    result = risk.exposure_by_symbol(
        [("BTC-USD", 0.5, 0.4), ("SPY", 0.3, 0.9), ("BTC-USD", 0.2, 1.0)]
    )
    assert result == {
        "symbols": [
            {"symbol": "BTC-USD", "weight": pytest.approx(0.7), "exposure": pytest.approx(0.4)},
            {"symbol": "SPY", "weight": 0.3, "exposure": pytest.approx(0.27)},
        ],
        "hhi": pytest.approx(0.7**2 + 0.3**2),
        "effective_symbols": pytest.approx(1 / (0.7**2 + 0.3**2)),
    }
    equal = risk.exposure_by_symbol([(s, 2.0, 1.0) for s in ("A", "B", "C", "D")])
    assert equal["hhi"] == pytest.approx(0.25)  # weights are normalised first
    assert equal["effective_symbols"] == pytest.approx(4.0)
    assert risk.exposure_by_symbol([("A", 0.0, 0.5)])["hhi"] is None
    assert risk.exposure_by_symbol([]) == {"symbols": [], "hhi": None, "effective_symbols": None}
    with pytest.raises(ValueError, match="weight"):
        risk.exposure_by_symbol([("A", -0.1, 0.5)])
    with pytest.raises(ValueError, match="time in market"):
        risk.exposure_by_symbol([("A", 0.1, 1.5)])


# Properties

returns_arrays = hnp.arrays(
    np.float64,
    st.integers(8, 200),
    elements=st.floats(-0.3, 0.3, allow_nan=False, allow_subnormal=False),
)
methods = st.sampled_from(risk.VAR_METHODS)
confidences = st.floats(0.5, 0.999)


def cornish_fisher_is_increasing_in_the_tail(r: FloatArray, confidence: float, h: int) -> bool:
    """Whether the CF quantile is increasing in z over the whole tail z <= Phi^-1(alpha): the
    expansion's domain of validity, outside which it is not a quantile function at all."""
    if r.min() == r.max():
        return True  # the module's S = K = 0: the normal quantile
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scipy on nearly constant samples
        s = stats.skew(r, bias=False) / math.sqrt(h)
        k = stats.kurtosis(r, bias=False) / h
    if not (math.isfinite(s) and math.isfinite(k)) or k / 8 - s * s / 6 < 0:
        return False  # the z^2 term of dq/dz is negative: it turns back far enough out
    z = np.linspace(-40.0, stats.norm.ppf(1 - confidence), 2000)
    slope = 1 + s * z / 3 + k * (3 * z**2 - 3) / 24 - s * s * (6 * z**2 - 5) / 36
    return bool((slope > 0).all())


def at_least(a: float, b: float) -> bool:
    """``a >= b`` up to rounding of the two estimates (a few units in the last place)."""
    return a >= b - 1e-12 * max(abs(a), abs(b), 1e-300)


@settings(max_examples=100, deadline=None)
@given(returns_arrays, confidences, st.integers(1, 5), methods)
def test_cvar_is_at_least_var(r: FloatArray, confidence: float, horizon: int, method: Any) -> None:
    if method == "cornish_fisher":
        assume(cornish_fisher_is_increasing_in_the_tail(r, confidence, horizon))
    var = risk.value_at_risk(r, confidence, horizon, method)
    cvar = risk.conditional_var(r, confidence, horizon, method)
    assert at_least(cvar, var)


@settings(max_examples=100, deadline=None)
@given(returns_arrays, confidences, confidences, st.integers(1, 5), methods)
def test_var_does_not_fall_as_confidence_rises(
    r: FloatArray, first: float, second: float, horizon: int, method: Any
) -> None:
    low, high = sorted((first, second))
    if method == "cornish_fisher":
        assume(cornish_fisher_is_increasing_in_the_tail(r, low, horizon))
    assert at_least(
        risk.value_at_risk(r, high, horizon, method), risk.value_at_risk(r, low, horizon, method)
    )


@settings(max_examples=100, deadline=None)
@given(returns_arrays, st.integers(0, 4))
def test_drawdown_episodes_are_disjoint_ranked_and_agree_with_the_metrics(
    r: FloatArray, top: int
) -> None:
    equity = np.asarray(CAPITAL * np.cumprod(1 + r), dtype=np.float64)
    n = equity.shape[0]
    ts = np.arange(n, dtype=np.int64) * 60_000 + 1_700_000_000_000
    every = risk.drawdown_table(ts, equity, CAPITAL, top=None)
    depths = [e["depth"] for e in every]
    assert depths == sorted(depths, reverse=True)
    assert risk.drawdown_table(ts, equity, CAPITAL, top=top) == every[:top]
    index = {int(t): i for i, t in enumerate(ts)}
    spans = sorted(
        (index[e["start"]], index[e["recovery"]] if e["recovery"] is not None else n) for e in every
    )
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start  # the next episode starts at or after this one's recovery
    c = Curve("random", ts, equity, 252.0)
    m = metrics_of(c)
    if every:
        # metrics tracks the deepest point through a rounded floor, peak * (1 - max_dd), so it
        # can miss a new low by one unit in the last place.
        assert every[0]["depth"] == pytest.approx(m.max_drawdown, rel=1e-12)
        below = [e["length"] - (e["recovery"] is not None) for e in every]
        assert max(below) == m.max_drawdown_duration
    else:
        assert m.max_drawdown == 0


# Returns on a grid of 1e-4 (as prices in ticks give): a window's spread is either exactly 0
# or far above the rounding of its sums, so both branches are pinned without a tolerance that
# would have to guess how close to constant a window is.
grid_returns = st.one_of(st.integers(-2000, 2000).map(lambda k: k * 1e-4), st.just(np.nan))


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.float64, st.integers(3, 120), elements=grid_returns), st.integers(2, 30))
def test_rolling_statistics_are_those_of_each_window(r: FloatArray, window: int) -> None:
    vol = risk.rolling_volatility(r, window, 252.0)
    sharpe = risk.rolling_sharpe(r, window, 252.0)
    for end in range(r.shape[0]):
        chunk = r[max(end - window + 1, 0) : end + 1]
        if end < window - 1 or not np.isfinite(chunk).all():
            assert math.isnan(vol[end]) and math.isnan(sharpe[end])
            continue
        if (chunk == chunk[0]).all():
            assert vol[end] == 0 and math.isnan(sharpe[end])
            continue
        std = float(np.std(chunk, ddof=1))
        assert vol[end] == pytest.approx(std * math.sqrt(252), rel=ROUNDING)
        expected = float(np.mean(chunk)) / std * math.sqrt(252)
        assert sharpe[end] == pytest.approx(expected, rel=ROUNDING, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(0, 40), st.integers(1, 5)),
        elements=st.one_of(st.integers(-50, 50).map(lambda k: k / 100), st.just(np.nan)),
    )
)
def test_correlation_matrix_is_symmetric_bounded_and_pandas_pairwise(x: FloatArray) -> None:
    matrix = risk.correlation_matrix(x)
    assert np.array_equal(matrix, matrix.T, equal_nan=True)
    finite = matrix[np.isfinite(matrix)]
    assert ((finite >= -1) & (finite <= 1)).all()
    expected = pd.DataFrame(x).corr().to_numpy()
    m = x.shape[1]
    for i, j in itertools.product(range(m), range(m)):
        shared = np.isfinite(x[:, i]) & np.isfinite(x[:, j])
        a, b = x[shared, i], x[shared, j]
        if a.shape[0] < 2 or a.min() == a.max() or b.min() == b.max():
            # pandas divides by the rounding residue a constant column's mean leaves (a
            # number with no meaning); the module reports no correlation.
            assert math.isnan(matrix[i, j])
        elif i == j:
            assert matrix[i, j] == 1.0
        else:
            assert matrix[i, j] == pytest.approx(expected[i, j], rel=ROUNDING, abs=1e-12)
