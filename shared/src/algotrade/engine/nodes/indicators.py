"""Technical indicators, with TA-Lib's definitions, seeds and lookbacks."""

from __future__ import annotations

from collections.abc import Callable

from algotrade.engine import kernels
from algotrade.engine.nodes._build import (
    bar_series,
    float_out,
    integer,
    number,
    period,
    series,
)
from algotrade.engine.specs import NodeType, ParamSpec, ResolvedParams

_HLC = (bar_series("high"), bar_series("low"), bar_series("close"))


def _period_minus_one(p: ResolvedParams) -> int:
    return integer(p, "period") - 1


def _period(p: ResolvedParams) -> int:
    return integer(p, "period")


def _period_param(p: ResolvedParams) -> tuple[float, ...]:
    return (float(integer(p, "period")),)


def _single(
    name: str,
    doc: str,
    kernel: kernels.Kernel,
    default: int,
    *,
    lookback: Callable[[ResolvedParams], int] = _period_minus_one,
    warmup_doc: str = "period - 1 bars",
) -> NodeType:
    """A one-input, one-output indicator whose only parameter is its period."""
    return NodeType(
        name=name,
        category="indicator",
        doc=doc,
        kernel=kernel,
        inputs=(series(),),
        outputs=(float_out(),),
        params=(period(default),),
        lookback=lookback,
        warmup_doc=warmup_doc,
        kernel_params=_period_param,
    )


SMA = _single("sma", "Simple moving average.", kernels.SMA, 20)
EMA = _single(
    "ema", "Exponential moving average, seeded with the SMA of its first period.", kernels.EMA, 20
)
WMA = _single("wma", "Linearly weighted moving average.", kernels.WMA, 20)
DEMA = _single(
    "dema",
    "Double EMA: 2*EMA - EMA(EMA).",
    kernels.DEMA,
    20,
    lookback=lambda p: 2 * (integer(p, "period") - 1),
    warmup_doc="2 * (period - 1) bars",
)
TEMA = _single(
    "tema",
    "Triple EMA: 3*EMA - 3*EMA(EMA) + EMA(EMA(EMA)).",
    kernels.TEMA,
    20,
    lookback=lambda p: 3 * (integer(p, "period") - 1),
    warmup_doc="3 * (period - 1) bars",
)
RSI = _single(
    "rsi",
    "Relative strength index (0-100) with Wilder smoothing.",
    kernels.RSI,
    14,
    lookback=_period,
    warmup_doc="period bars",
)


def _macd_lookback(p: ResolvedParams) -> int:
    slow = max(integer(p, "fast"), integer(p, "slow"))
    return slow - 1 + integer(p, "signal") - 1


MACD = NodeType(
    name="macd",
    category="indicator",
    doc="MACD line (fast EMA - slow EMA), its EMA signal line and their difference.",
    kernel=kernels.MACD,
    inputs=(series(),),
    outputs=(
        float_out("macd", "fast EMA - slow EMA"),
        float_out("signal", "EMA of the MACD line"),
        float_out("hist", "macd - signal"),
    ),
    params=(
        period(12, name="fast", doc="fast EMA period"),
        period(26, name="slow", doc="slow EMA period (swapped with fast if smaller, as TA-Lib)"),
        period(9, name="signal", minimum=1, doc="signal EMA period"),
    ),
    lookback=_macd_lookback,
    warmup_doc="max(fast, slow) - 1 + signal - 1 bars",
    kernel_params=lambda p: (
        float(integer(p, "fast")),
        float(integer(p, "slow")),
        float(integer(p, "signal")),
    ),
)

BBANDS = NodeType(
    name="bbands",
    category="indicator",
    doc="Bollinger bands: SMA middle band +/- multiples of the population standard deviation.",
    kernel=kernels.BBANDS,
    inputs=(series(),),
    outputs=(float_out("upper"), float_out("middle"), float_out("lower")),
    params=(
        period(20),
        ParamSpec("dev_up", "float", "deviations above the middle", default=2.0, min=0.0, max=100),
        ParamSpec("dev_down", "float", "deviations below the middle", default=2.0, min=0, max=100),
    ),
    lookback=_period_minus_one,
    warmup_doc="period - 1 bars",
    kernel_params=lambda p: (
        float(integer(p, "period")),
        number(p, "dev_up"),
        number(p, "dev_down"),
    ),
)

ATR = NodeType(
    name="atr",
    category="indicator",
    doc="Average true range with Wilder smoothing (seeded with the mean of the first true ranges).",
    kernel=kernels.ATR,
    inputs=_HLC,
    outputs=(float_out(),),
    params=(period(14, minimum=1),),
    lookback=_period,
    warmup_doc="period bars",
    kernel_params=_period_param,
)


def _stoch_lookback(p: ResolvedParams) -> int:
    return integer(p, "fastk_period") + integer(p, "slowk_period") + integer(p, "slowd_period") - 3


STOCH = NodeType(
    name="stoch",
    category="indicator",
    doc="Slow stochastic oscillator: %K smoothed by an SMA, and %D, the SMA of %K (0-100).",
    kernel=kernels.STOCH,
    inputs=_HLC,
    outputs=(float_out("k", "slow %K"), float_out("d", "slow %D")),
    params=(
        period(5, name="fastk_period", minimum=1, doc="raw %K window"),
        period(3, name="slowk_period", minimum=1, doc="SMA smoothing of %K"),
        period(3, name="slowd_period", minimum=1, doc="SMA of slow %K giving %D"),
    ),
    lookback=_stoch_lookback,
    warmup_doc="fastk_period + slowk_period + slowd_period - 3 bars",
    kernel_params=lambda p: (
        float(integer(p, "fastk_period")),
        float(integer(p, "slowk_period")),
        float(integer(p, "slowd_period")),
    ),
)

ROC = NodeType(
    name="roc",
    category="indicator",
    doc="Rate of change in percent: (x / x[period] - 1) * 100 (0 when x[period] is 0, as TA-Lib).",
    kernel=kernels.SHIFT_DIFF,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(period(10, minimum=1),),
    lookback=_period,
    warmup_doc="period bars",
    kernel_params=lambda p: (float(integer(p, "period")), 0.0),
)

MOM = NodeType(
    name="mom",
    category="indicator",
    doc="Momentum: x - x[period].",
    kernel=kernels.SHIFT_DIFF,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(period(10, minimum=1),),
    lookback=_period,
    warmup_doc="period bars",
    kernel_params=lambda p: (float(integer(p, "period")), 1.0),
)

STDDEV = NodeType(
    name="stddev",
    category="indicator",
    doc="Population standard deviation over a window, times nbdev.",
    kernel=kernels.STDDEV,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(
        period(20),
        ParamSpec("nbdev", "float", "multiplier", default=1.0, min=0.0, max=100.0),
    ),
    lookback=_period_minus_one,
    warmup_doc="period - 1 bars",
    kernel_params=lambda p: (float(integer(p, "period")), number(p, "nbdev")),
)

CCI = NodeType(
    name="cci",
    category="indicator",
    doc="Commodity channel index of the typical price (h+l+c)/3.",
    kernel=kernels.CCI,
    inputs=_HLC,
    outputs=(float_out(),),
    params=(period(14),),
    lookback=_period_minus_one,
    warmup_doc="period - 1 bars",
    kernel_params=_period_param,
)

WILLR = NodeType(
    name="willr",
    category="indicator",
    doc="Williams %R (-100-0): where the close sits in the window's high-low range.",
    kernel=kernels.WILLR,
    inputs=_HLC,
    outputs=(float_out(),),
    params=(period(14),),
    lookback=_period_minus_one,
    warmup_doc="period - 1 bars",
    kernel_params=_period_param,
)

ADX = NodeType(
    name="adx",
    category="indicator",
    doc="Average directional index (0-100), Wilder's trend strength.",
    kernel=kernels.ADX,
    inputs=_HLC,
    outputs=(float_out(),),
    params=(period(14),),
    lookback=lambda p: 2 * integer(p, "period") - 1,
    warmup_doc="2 * period - 1 bars",
    kernel_params=_period_param,
)

OBV = NodeType(
    name="obv",
    category="indicator",
    doc="On-balance volume, starting from the first bar's volume (as TA-Lib).",
    kernel=kernels.OBV,
    inputs=(bar_series("close"), bar_series("volume")),
    outputs=(float_out(),),
)

VWAP = NodeType(
    name="vwap",
    category="indicator",
    doc="Rolling volume-weighted average of the typical price over a window (NaN if no volume).",
    kernel=kernels.VWAP,
    inputs=(*_HLC, bar_series("volume")),
    outputs=(float_out(),),
    params=(period(20, minimum=1),),
    lookback=_period_minus_one,
    warmup_doc="period - 1 bars",
    kernel_params=_period_param,
)

DONCHIAN = NodeType(
    name="donchian",
    category="indicator",
    doc="Donchian channel: highest high, lowest low and their midpoint over a window.",
    kernel=kernels.DONCHIAN,
    inputs=(bar_series("high"), bar_series("low")),
    outputs=(float_out("upper"), float_out("middle"), float_out("lower")),
    params=(period(20, minimum=1),),
    lookback=_period_minus_one,
    warmup_doc="period - 1 bars",
    kernel_params=_period_param,
)

HIGHEST = NodeType(
    name="highest",
    category="indicator",
    doc="Highest value over a window (TA-Lib MAX).",
    kernel=kernels.EXTREME,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(period(20),),
    lookback=_period_minus_one,
    warmup_doc="period - 1 bars",
    kernel_params=lambda p: (float(integer(p, "period")), 1.0),
)

LOWEST = NodeType(
    name="lowest",
    category="indicator",
    doc="Lowest value over a window (TA-Lib MIN).",
    kernel=kernels.EXTREME,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(period(20),),
    lookback=_period_minus_one,
    warmup_doc="period - 1 bars",
    kernel_params=lambda p: (float(integer(p, "period")), 0.0),
)

NODE_TYPES = (
    SMA,
    EMA,
    WMA,
    DEMA,
    TEMA,
    RSI,
    MACD,
    BBANDS,
    ATR,
    STOCH,
    ROC,
    MOM,
    STDDEV,
    CCI,
    WILLR,
    ADX,
    OBV,
    VWAP,
    DONCHIAN,
    HIGHEST,
    LOWEST,
)
