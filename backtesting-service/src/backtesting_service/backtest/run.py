"""`run_backtest`: a compiled plan, bars and a config in; trades, equity and metrics out.

The plan runs vectorized over all bars (`Plan.evaluate`), its signal sinks and risk bindings
become the inputs of the compiled simulation (`algotrade.simulation.fills.simulate`), and
`algotrade.metrics` summarises the result. A run may cover a window of the bars (walk-forward):
indicators still see every earlier bar, so a window starts warmed up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from algotrade.engine import Bars, Plan, ProblemCode
from algotrade.engine.specs import ENTRY_SIGNAL_KINDS
from algotrade.metrics import CurveState, Metrics, assemble, curve_finish, periods_per_year
from algotrade.simulation import fills
from algotrade.simulation.config import BacktestConfig, ResolvedConfig
from backtesting_service.backtest.errors import BacktestInvalid
from backtesting_service.backtest.result import BacktestResult, Trades

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_DISTANCE_UNITS: Final = {
    "percent_of_price": fills.DISTANCE_PERCENT,
    "price": fills.DISTANCE_PRICE,
}
_SIZE_UNITS: Final = {
    "quantity": fills.SIZE_FIXED,
    "percent_of_equity": fills.SIZE_PERCENT_EQUITY,
    "percent_of_equity_at_risk": fills.SIZE_RISK,
}


# A risk series the plan does not have (`fills.simulate` never reads it).
_ABSENT: Final[FloatArray] = np.empty(0, dtype=np.float64)


@dataclass(frozen=True, slots=True, eq=False)
class SimulationInputs:
    """What `fills.simulate` reads from a plan's outputs: signals, risk series and modes."""

    enter_long: BoolArray
    exit_long: BoolArray
    enter_short: BoolArray
    exit_short: BoolArray
    stop: FloatArray
    target: FloatArray
    trail: FloatArray
    size: FloatArray
    modes: npt.NDArray[np.int64]


def check_plan(plan: Plan, config: BacktestConfig) -> None:
    """Refuse a plan this config cannot trade (the engine already checked the graph itself)."""
    if not any(kind in plan.signals for kind in ENTRY_SIGNAL_KINDS):
        # Only a plan compiled with purpose="indicators" gets here: it would never trade.
        raise BacktestInvalid(
            "the plan has no entry signal; a backtest needs an enter_long or enter_short node",
            errors=[
                {
                    "loc": ["graph"],
                    "code": ProblemCode.NO_ENTRY_SIGNAL.value,
                    "message": "add an enter_long or enter_short node",
                }
            ],
        )
    if config.allow_short or "enter_long" in plan.signals:
        return
    raise BacktestInvalid(
        "the strategy only enters short positions but config.allow_short is false",
        errors=[
            {
                "loc": ["config", "allow_short"],
                "code": "short_only_strategy",
                "message": "allow short positions or add an enter_long signal",
            }
        ],
    )


def simulation_inputs(
    plan: Plan, outputs: Mapping[str, npt.NDArray[Any]], n: int
) -> SimulationInputs:
    """Combine the plan's sinks: several sinks of one kind are OR-ed; absent ones are never true."""

    def signal(kind: str) -> BoolArray:
        keys = plan.signals.get(kind, ())
        if not keys:
            return np.zeros(n, dtype=np.bool_)
        combined: BoolArray = outputs[keys[0]]
        for key in keys[1:]:
            combined = combined | outputs[key]
        return combined

    modes = np.zeros(fills.MODE_COUNT, dtype=np.int64)
    unused = _ABSENT

    def distance(kind: str, slot: int) -> FloatArray:
        binding = plan.risk.get(kind)
        if binding is None:
            return unused
        modes[slot] = _DISTANCE_UNITS[binding.unit]
        series: FloatArray = outputs[binding.output]
        return series

    stop = distance("stop_loss", fills.M_STOP)
    target = distance("take_profit", fills.M_TARGET)
    trail = distance("trailing_stop", fills.M_TRAIL)
    sizing = plan.risk.get("position_size")
    size = unused
    if sizing is not None:
        modes[fills.M_SIZE] = _SIZE_UNITS[sizing.unit]
        size = outputs[sizing.output]
    return SimulationInputs(
        enter_long=signal("enter_long"),
        exit_long=signal("exit_long"),
        enter_short=signal("enter_short"),
        exit_short=signal("exit_short"),
        stop=stop,
        target=target,
        trail=trail,
        size=size,
        modes=modes,
    )


def simulation_params(resolved: ResolvedConfig) -> FloatArray:
    config = resolved.config
    params = np.zeros(fills.PARAM_COUNT, dtype=np.float64)
    params[fills.P_CAPITAL] = config.initial_capital
    params[fills.P_FEE_RATE] = config.fee_bps / 10_000
    params[fills.P_FEE_FIXED] = config.fee_fixed
    params[fills.P_SLIPPAGE] = config.slippage_bps / 10_000
    params[fills.P_FRACTIONAL] = 1.0 if resolved.fractional else 0.0
    params[fills.P_ALLOW_SHORT] = 1.0 if config.allow_short else 0.0
    return params


@dataclass(frozen=True, slots=True, eq=False)
class Simulated:
    """`fills.simulate`'s output for bars ``[start, end)``."""

    start: int
    end: int
    equity: FloatArray  # empty unless recorded
    records: FloatArray  # trade records (`fills.T_*` columns)
    curve: CurveState

    def metrics(self, initial_capital: float, periods: float) -> Metrics:
        records = self.records
        is_open = records[:, fills.T_REASON] == fills.EXIT_END
        quantity = records[:, fills.T_QUANTITY]
        notional = float(
            np.sum(quantity * records[:, fills.T_ENTRY_PRICE])
            + np.sum(quantity[~is_open] * records[~is_open, fills.T_EXIT_PRICE])
        )
        final = self.curve[5] if self.end > self.start else initial_capital
        return assemble(
            curve_finish(self.curve, initial_capital, periods),
            closed_pnl=np.ascontiguousarray(records[~is_open, fills.T_PNL]),
            open_trades=int(np.count_nonzero(is_open)),
            traded_notional=notional,
            final_equity=float(final),
        )


def simulate(
    bars: Bars,
    inputs: SimulationInputs,
    params: FloatArray,
    start: int,
    end: int,
    *,
    record: bool = True,
) -> Simulated:
    """Run the compiled simulation over ``[start, end)`` (without ``record``: metrics only)."""
    equity, records, count, curve = fills.simulate(
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        inputs.enter_long,
        inputs.exit_long,
        inputs.enter_short,
        inputs.exit_short,
        inputs.stop,
        inputs.target,
        inputs.trail,
        inputs.size,
        inputs.modes,
        params,
        start,
        end,
        record,
    )
    return Simulated(start, end, equity, records[:count], curve)


def run_backtest(
    plan: Plan,
    bars: Bars,
    config: BacktestConfig,
    *,
    window: tuple[int, int] | None = None,
    outputs: Mapping[str, npt.NDArray[Any]] | None = None,
) -> BacktestResult:
    """Backtest ``plan`` on ``bars``; optionally only bars ``window = (start, end)``.

    ``outputs`` may pass the plan's evaluated outputs when the caller already has them.
    """
    check_plan(plan, config)
    n = len(bars)
    start, end = window if window is not None else (0, n)
    if not 0 <= start <= end <= n:
        raise ValueError(f"window {window} is outside the {n} bars")
    resolved = config.resolve(bars.ts[start:end])
    periods = periods_per_year(resolved.timeframe, resolved.calendar)
    values = outputs if outputs is not None else plan.evaluate(bars)
    inputs = simulation_inputs(plan, values, n)
    run = simulate(bars, inputs, simulation_params(resolved), start, end)
    return BacktestResult(
        plan_id=plan.plan_id,
        config=resolved,
        periods_per_year=periods,
        start=start,
        ts=bars.ts[start:end],
        equity=run.equity,
        trades=Trades.from_records(run.records, bars.ts),
        metrics=run.metrics(config.initial_capital, periods),
    )
