"""Analyses of one run and of a portfolio of runs, as the JSON-ready report the API serves and
the tear sheet renders (`analytics_service.tearsheet`).

Metrics come from `algotrade.metrics`, the one implementation backtests and forward tests use:
the same equity curve gives the same numbers here as in its backtest's summary. Risk figures
come from `analytics_service.risk` (its module doc states every convention).

A portfolio allocates ``weight_i`` of its capital to member ``i`` at the start and lets each run
(no rebalancing): its value on a common clock (every bar time of any member) is
``capital * sum_i weight_i * equity_i(t) / capital_i``, where a member's equity is carried
forward between its bars and is its capital before its first bar. With capital weights this is
exactly the sum of the members' accounts. Its periods per year are its members' when they agree
and the finest member's otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

from algotrade import epoch
from algotrade.bars import TIMEFRAME_SECONDS
from algotrade.metrics import Metrics, compute_metrics
from analytics_service import risk
from analytics_service.runs import FloatArray, IntArray, RunData

Weighting = Literal["equal", "capital", "weights"]
WEIGHTINGS: Final = ("equal", "capital", "weights")
METHODS: Final = ("historical", "gaussian", "cornish_fisher")


@dataclass(frozen=True, slots=True)
class Options:
    """What a reader may choose (query parameters of the analytics endpoints)."""

    confidences: tuple[float, ...] = (0.95, 0.99)
    horizons: tuple[int, ...] = (1,)
    window: int | None = None
    """Rolling window in bars; default: about a month of bars, within [20, a fifth of the curve]."""
    top_drawdowns: int = 5
    bins: int = 50


@dataclass(frozen=True, slots=True)
class Benchmark:
    """Closes of a benchmark symbol at its bar open times (epoch ms), oldest first."""

    symbol: str
    ts: IntArray
    close: FloatArray

    def at(self, ts: IntArray) -> FloatArray:
        """The benchmark's last close at or before each of ``ts`` (NaN before its first bar)."""
        index = np.searchsorted(self.ts, ts, side="right") - 1
        out = np.full(ts.shape[0], np.nan)
        known = index >= 0
        out[known] = self.close[index[known]]
        return out


@dataclass(slots=True)
class Curve:
    """An equity curve with what the metrics need alongside it."""

    ts: IntArray
    equity: FloatArray
    held: FloatArray  # non-zero where a position is held at the close
    capital: float
    periods: float
    closed_pnl: FloatArray
    open_trades: int
    traded_notional: float
    trade_bars: FloatArray = field(default_factory=lambda: np.empty(0))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_window(n: int, periods: float) -> int:
    return int(max(20, min(round(periods / 12), max(n // 5, 20))))


def curve_of(run: RunData) -> Curve:
    step = TIMEFRAME_SECONDS[run.timeframe] * 1000
    trades = run.trades
    return Curve(
        ts=run.ts,
        equity=run.equity,
        held=run.position,
        capital=run.capital,
        periods=run.periods,
        closed_pnl=trades.pnl,
        open_trades=run.open_trades,
        traded_notional=run.traded_notional,
        trade_bars=(trades.exit_ts - trades.entry_ts).astype(np.float64) / step,
    )


def metrics_of(curve: Curve, close: FloatArray | None = None) -> Metrics:
    return compute_metrics(
        curve.equity,
        initial_capital=curve.capital,
        periods=curve.periods,
        closed_pnl=curve.closed_pnl,
        open_trades=curve.open_trades,
        traded_notional=curve.traded_notional,
        position=curve.held,
        close=close if close is not None else np.full(curve.ts.shape[0], np.nan),
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _floats(values: npt.NDArray[Any]) -> list[float | None]:
    """A float array as JSON values (NaN and infinities become None)."""
    out: list[float | None] = values.tolist()
    if not np.all(np.isfinite(values)):
        return [v if math.isfinite(v) else None for v in out]  # type: ignore[arg-type]
    return out


def analyse_curve(
    curve: Curve,
    *,
    kind: str,
    title: str,
    subtitle: str | None,
    timeframe: str,
    calendar: str,
    options: Options,
    benchmark: Benchmark | None = None,
) -> dict[str, Any]:
    """The report of one curve: metrics, risk, drawdowns, monthly returns, trades, series."""
    n = curve.ts.shape[0]
    close = benchmark.at(curve.ts) if benchmark is not None else None
    metrics = metrics_of(curve, close)
    returns = risk.bar_returns(curve.equity, curve.capital)
    window = options.window or default_window(n, curve.periods)
    report: dict[str, Any] = {
        "kind": kind,
        "title": title,
        "subtitle": subtitle,
        "generated_at": now_iso(),
        "period": {
            "start": epoch.iso_from_ms(int(curve.ts[0])) if n else None,
            "end": epoch.iso_from_ms(int(curve.ts[-1])) if n else None,
            "bars": n,
            "timeframe": timeframe,
        },
        "conventions": {
            "periods_per_year": curve.periods,
            "calendar": calendar,
            "risk_free_rate": 0.0,
            "returns": "bar returns of equity at each bar's close; the first from the capital",
            "var": "losses as positive fractions of equity over the horizon (in bars)",
            "rolling_window": window,
            "benchmark": benchmark.symbol if benchmark is not None else None,
        },
        "metrics": metrics.as_dict(),
    }
    bench_equity = None
    if close is not None and np.isfinite(close).any():
        first = close[np.isfinite(close)][0]
        bench_equity = curve.capital * close / first
    report["series"] = {
        "ts": curve.ts.tolist(),
        "equity": _floats(curve.equity),
        "benchmark": _floats(bench_equity) if bench_equity is not None else None,
        "drawdown": _floats(risk.drawdown_series(curve.equity, curve.capital)),
        "rolling_sharpe": _floats(risk.rolling_sharpe(returns, window, curve.periods)),
        "rolling_volatility": _floats(risk.rolling_volatility(returns, window, curve.periods)),
        "rolling_window": window,
    }
    report["monthly_returns"] = risk.monthly_returns(curve.ts, curve.equity, curve.capital)
    report["return_histogram"] = risk.return_histogram(returns, bins=options.bins)
    beta = None
    if close is not None and benchmark is not None:
        bench_returns = np.full(n, np.nan)
        if n > 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                bench_returns[1:] = close[1:] / close[:-1] - 1.0
        beta = {
            "benchmark": benchmark.symbol,
            **{k: _finite(v) for k, v in risk.beta(returns, bench_returns, curve.periods).items()},
        }
    report["risk"] = {
        "var": _var_rows(returns, options),
        "volatility": _finite(metrics.volatility),
        "beta": beta,
    }
    report["drawdowns"] = risk.drawdown_table(
        curve.ts, curve.equity, curve.capital, top=options.top_drawdowns
    )
    report["trades"] = trade_section(curve)
    return report


def _var_rows(returns: FloatArray, options: Options) -> list[dict[str, Any]]:
    rows = risk.var_table(returns, confidences=options.confidences, horizons=options.horizons)
    return [{key: _finite(value) for key, value in row.items()} for row in rows]


def trade_section(curve: Curve) -> dict[str, Any]:
    pnl = curve.closed_pnl
    metrics = metrics_of(curve)
    return {
        "count": int(pnl.shape[0]),
        "open": curve.open_trades,
        "win_rate": _finite(metrics.win_rate),
        "profit_factor": _finite(metrics.profit_factor),
        "expectancy": _finite(metrics.expectancy),
        "avg_win": _finite(metrics.avg_win),
        "avg_loss": _finite(metrics.avg_loss),
        "best": float(pnl.max()) if pnl.size else None,
        "worst": float(pnl.min()) if pnl.size else None,
        "avg_bars_held": float(curve.trade_bars.mean()) if curve.trade_bars.size else None,
    }


def analyse_run(
    run: RunData, *, options: Options, benchmark: Benchmark | None = None
) -> dict[str, Any]:
    version = f" v{run.strategy_version}" if run.strategy_version is not None else ""
    report = analyse_curve(
        curve_of(run),
        kind=run.kind,
        title=f"{run.symbol} {run.timeframe} {run.kind}",
        subtitle=f"strategy {run.strategy_id}{version} · {run.id} · {run.status}",
        timeframe=run.timeframe,
        calendar=run.calendar,
        options=options,
        benchmark=benchmark,
    )
    report["run"] = {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "strategy_id": run.strategy_id,
        "strategy_version": run.strategy_version,
        "plan_id": run.plan_id,
        "symbol": run.symbol,
        "timeframe": run.timeframe,
        "capital": run.capital,
    }
    if run.expected_points is not None:
        report["coverage"] = {
            "points": int(run.ts.shape[0]),
            "expected": run.expected_points,
            "complete": int(run.ts.shape[0]) >= run.expected_points,
        }
    return report


# ---------------------------------------------------------------------------- portfolios


def portfolio_weights(
    members: Sequence[RunData], weighting: Weighting, given: Sequence[float | None]
) -> FloatArray:
    """Weights summing to one."""
    raw: FloatArray
    if weighting == "equal":
        raw = np.ones(len(members))
    elif weighting == "capital":
        raw = np.array([m.capital for m in members], dtype=np.float64)
    else:
        raw = np.array([w if w is not None else 0.0 for w in given], dtype=np.float64)
    total = raw.sum()
    if not total > 0:
        raise ValueError("the weights must sum to more than zero")
    out: FloatArray = raw / total
    return out


@dataclass(frozen=True, slots=True)
class Combined:
    clock: IntArray
    value: FloatArray  # the portfolio's equity on the clock
    member_values: FloatArray  # (members, clock): equity_i / capital_i carried forward
    member_returns: FloatArray  # (clock, members) view: bar returns where the member had a bar
    held: FloatArray
    periods: float


def combine(members: Sequence[RunData], weights: FloatArray, capital: float) -> Combined:
    """The members on one clock (see the module doc).

    Each member's bars sit at known places of the clock (one `searchsorted`); carrying its
    equity forward is then a running maximum of "the member's last bar so far", so the whole
    alignment is linear in the clock's length, with no search per clock bar.
    """
    clock = np.unique(np.concatenate([m.ts for m in members])) if members else np.empty(0, np.int64)
    n = clock.shape[0]
    values = np.empty((len(members), n))
    returns = np.full((len(members), n), np.nan)
    held = np.zeros(n)
    last = np.empty(n, dtype=np.int64)
    for i, member in enumerate(members):
        growth = member.equity / member.capital
        own = np.searchsorted(clock, member.ts)
        last.fill(0)
        last[own] = np.arange(1, member.ts.shape[0] + 1)  # 1 + the member's bar index
        np.maximum.accumulate(last, out=last)  # 0 before its first bar
        values[i] = np.concatenate(([1.0], growth))[last]
        held += np.concatenate(([0.0], np.abs(member.position)))[last]
        returns[i, own] = growth / np.concatenate(([1.0], growth[:-1])) - 1.0
    value = capital * (weights @ values)
    periods = {m.periods for m in members}
    return Combined(clock, value, values, returns.T, held, max(periods) if periods else 1.0)


def analyse_portfolio(
    name: str,
    members: Sequence[RunData],
    *,
    weighting: Weighting,
    given: Sequence[float | None],
    options: Options,
    benchmark: Benchmark | None = None,
) -> dict[str, Any]:
    weights = portfolio_weights(members, weighting, given)
    capital = float(sum(m.capital for m in members))
    combined = combine(members, weights, capital)
    scale = [weights[i] * capital / m.capital for i, m in enumerate(members)]
    curve = Curve(
        ts=combined.clock,
        equity=combined.value,
        held=combined.held,
        capital=capital,
        periods=combined.periods,
        closed_pnl=np.concatenate([m.trades.pnl * s for m, s in zip(members, scale, strict=True)])
        if members
        else np.empty(0),
        open_trades=sum(m.open_trades for m in members),
        traded_notional=float(
            sum(m.traded_notional * s for m, s in zip(members, scale, strict=True))
        ),
        trade_bars=np.concatenate([curve_of(m).trade_bars for m in members])
        if members
        else np.empty(0),
    )
    timeframes = sorted({m.timeframe for m in members})
    calendars = sorted({m.calendar for m in members})
    report = analyse_curve(
        curve,
        kind="portfolio",
        title=name,
        subtitle=f"{len(members)} members · {weighting} weights",
        timeframe="/".join(timeframes),
        calendar="/".join(calendars),
        options=options,
        benchmark=benchmark,
    )
    report["conventions"]["weighting"] = weighting
    report["conventions"]["portfolio"] = (
        "each member gets its weight of the capital at the start and runs unrebalanced; "
        "members are carried forward between their bars on the common clock"
    )
    member_rows = []
    for member, weight in zip(members, weights.tolist(), strict=True):
        m = metrics_of(curve_of(member))
        member_rows.append(
            {
                "id": member.id,
                "kind": member.kind,
                "name": member.name,
                "symbol": member.symbol,
                "timeframe": member.timeframe,
                "weight": weight,
                "total_return": _finite(m.total_return),
                "sharpe": _finite(m.sharpe),
                "max_drawdown": _finite(m.max_drawdown),
                "exposure": _finite(m.exposure),
            }
        )
    report["members"] = member_rows
    matrix = risk.correlation_matrix(combined.member_returns)
    report["correlation"] = {
        "labels": [m.name for m in members],
        "matrix": [_floats(row) for row in np.asarray(matrix, dtype=np.float64)],
    }
    exposure = risk.exposure_by_symbol(
        (row["symbol"], row["weight"], row["exposure"] or 0.0) for row in member_rows
    )
    report["exposure"] = {
        "by_symbol": exposure["symbols"],
        "hhi": exposure["hhi"],
        "effective_symbols": exposure["effective_symbols"],
    }
    return report
