"""Risk sinks: stop distances and position sizing, read by the backtest and forward-test engines.

Each risk node outputs one float series; `RiskBinding.unit` in the compiled plan says how to read
it (see docs/strategy-graphs.md, "Risk nodes").
"""

from __future__ import annotations

from algotrade.engine import kernels
from algotrade.engine.nodes._build import MAX_PERIOD, bar_series, float_out, integer, number
from algotrade.engine.specs import NodeType, ParamSpec, ResolvedParams

# The modes of the distance nodes, in the order of `kernels.RiskMode`.
DISTANCE_MODES = tuple(mode.name.lower() for mode in kernels.RiskMode)
SIZE_MODES = ("fixed", "percent_equity", "risk")


def _distance_lookback(p: ResolvedParams) -> int:
    return integer(p, "atr_period") if p["mode"] == "atr" else 0


def _distance_kernel_params(p: ResolvedParams) -> tuple[float, ...]:
    return (
        float(kernels.RiskMode[str(p["mode"]).upper()]),
        number(p, "percent"),
        float(integer(p, "atr_period")),
        number(p, "atr_multiple"),
    )


def _distance(name: str, doc: str, percent: float, multiple: float) -> NodeType:
    return NodeType(
        name=name,
        category="risk",
        doc=doc,
        kernel=kernels.k_risk_distance,
        inputs=(bar_series("high"), bar_series("low"), bar_series("close")),
        outputs=(
            float_out("distance", "percent of the entry price, or a price distance (ATR mode)"),
        ),
        params=(
            ParamSpec(
                "mode", "choice", "percent or atr", default="percent", choices=DISTANCE_MODES
            ),
            ParamSpec(
                "percent",
                "float",
                "distance in percent (mode=percent)",
                default=percent,
                min=0.01,
                max=100.0,
            ),
            ParamSpec(
                "atr_period", "int", "ATR period (mode=atr)", default=14, min=1, max=MAX_PERIOD
            ),
            ParamSpec(
                "atr_multiple",
                "float",
                "ATR multiple (mode=atr)",
                default=multiple,
                min=0.01,
                max=100.0,
            ),
        ),
        lookback=_distance_lookback,
        warmup_doc="0 bars (percent) or atr_period bars (atr)",
        kernel_params=_distance_kernel_params,
    )


STOP_LOSS = _distance(
    "stop_loss",
    "Stop-loss distance below a long entry (above a short): percent or ATR multiple.",
    2.0,
    2.0,
)
TAKE_PROFIT = _distance(
    "take_profit", "Take-profit distance from the entry: percent or ATR multiple.", 4.0, 3.0
)
TRAILING_STOP = _distance(
    "trailing_stop",
    "Trailing-stop distance from the best price since entry: percent or ATR multiple.",
    3.0,
    3.0,
)


def _size_value(p: ResolvedParams) -> float:
    mode = p["mode"]
    if mode == "fixed":
        return number(p, "quantity")
    if mode == "percent_equity":
        return number(p, "percent")
    return number(p, "risk_percent")


POSITION_SIZE = NodeType(
    name="position_size",
    category="risk",
    doc="Position size: a fixed quantity, a percent of equity, or a percent of equity at risk.",
    kernel=kernels.k_constant,
    outputs=(float_out("size", "quantity, percent of equity, or percent of equity at risk"),),
    params=(
        ParamSpec(
            "mode",
            "choice",
            "fixed, percent_equity or risk",
            default="percent_equity",
            choices=SIZE_MODES,
        ),
        ParamSpec(
            "quantity", "float", "units per trade (mode=fixed)", default=1.0, min=1e-9, max=1e12
        ),
        ParamSpec(
            "percent",
            "float",
            "percent of equity per trade (mode=percent_equity)",
            default=10.0,
            min=0.01,
            max=100.0,
        ),
        ParamSpec(
            "risk_percent",
            "float",
            "percent of equity lost if the stop is hit (mode=risk; needs a stop_loss)",
            default=1.0,
            min=0.01,
            max=100.0,
        ),
    ),
    kernel_params=lambda p: (_size_value(p),),
)

NODE_TYPES = (STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, POSITION_SIZE)
