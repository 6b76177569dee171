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


SMA = _single("sma", "Simple moving average.", kernels.k_sma, 20)
EMA = _single(
    "ema", "Exponential moving average, seeded with the SMA of its first period.", kernels.k_ema, 20
)
WMA = _single("wma", "Linearly weighted moving average.", kernels.k_wma, 20)
DEMA = _single(
    "dema",
    "Double EMA: 2*EMA - EMA(EMA).",
    kernels.k_dema,
    20,
    lookback=lambda p: 2 * (integer(p, "period") - 1),
    warmup_doc="2 * (period - 1) bars",
)
TEMA = _single(
    "tema",
    "Triple EMA: 3*EMA - 3*EMA(EMA) + EMA(EMA(EMA)).",
    kernels.k_tema,
    20,
    lookback=lambda p: 3 * (integer(p, "period") - 1),
    warmup_doc="3 * (period - 1) bars",
)
RSI = _single(
    "rsi",
    "Relative strength index (0-100) with Wilder smoothing.",
    kernels.k_rsi,
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
    kernel=kernels.k_macd,
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
    kernel=kernels.k_bbands,
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
    kernel=kernels.k_atr,
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
    kernel=kernels.k_stoch,
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
    kernel=kernels.k_shift_diff,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(period(10, minimum=1),),
    lookback=_period,
    warmup_doc="period bars",
    kernel_params=lambda p: (float(integer(p, "period")), float(kernels.ShiftDiffMode.ROC)),
)

MOM = NodeType(
    name="mom",
    category="indicator",
    doc="Momentum: x - x[period].",
    kernel=kernels.k_shift_diff,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(period(10, minimum=1),),
    lookback=_period,
    warmup_doc="period bars",
    kernel_params=lambda p: (float(integer(p, "period")), float(kernels.ShiftDiffMode.MOM)),
)

STDDEV = NodeType(
    name="stddev",
    category="indicator",
    doc="Population standard deviation over a window, times nbdev.",
    kernel=kernels.k_stddev,
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
    kernel=kernels.k_cci,
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
    kernel=kernels.k_willr,
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
    kernel=kernels.k_adx,
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
    kernel=kernels.k_obv,
    inputs=(bar_series("close"), bar_series("volume")),
    outputs=(float_out(),),
)

VWAP = NodeType(
    name="vwap",
    category="indicator",
    doc="Rolling volume-weighted average of the typical price over a window (NaN if no volume).",
    kernel=kernels.k_vwap,
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
    kernel=kernels.k_donchian,
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
    kernel=kernels.k_extreme,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(period(20),),
    lookback=_period_minus_one,
    warmup_doc="period - 1 bars",
    kernel_params=lambda p: (float(integer(p, "period")), float(kernels.ExtremeMode.HIGHEST)),
)

LOWEST = NodeType(
    name="lowest",
    category="indicator",
    doc="Lowest value over a window (TA-Lib MIN).",
    kernel=kernels.k_extreme,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(period(20),),
    lookback=_period_minus_one,
    warmup_doc="period - 1 bars",
    kernel_params=lambda p: (float(integer(p, "period")), float(kernels.ExtremeMode.LOWEST)),
)

MFI = NodeType(
    name="mfi",
    category="indicator",
    doc="Money flow index (0-100): RSI-like ratio of up and down typical-price money flow.",
    kernel=kernels.k_mfi,
    inputs=(*_HLC, bar_series("volume")),
    outputs=(float_out(),),
    params=(period(14),),
    lookback=_period,
    warmup_doc="period bars",
    kernel_params=_period_param,
)

SAR = NodeType(
    name="sar",
    category="indicator",
    doc="Parabolic SAR (Wilder), TA-Lib's stop-and-reverse points; starts long unless -DM > 0.",
    kernel=kernels.k_sar,
    inputs=(bar_series("high"), bar_series("low")),
    outputs=(float_out(),),
    params=(
        ParamSpec(
            "acceleration", "float", "acceleration factor step", default=0.02, min=0.0, max=10.0
        ),
        ParamSpec("maximum", "float", "acceleration factor cap", default=0.2, min=0.0, max=10.0),
    ),
    lookback=lambda p: 1,
    warmup_doc="1 bar",
    kernel_params=lambda p: (number(p, "acceleration"), number(p, "maximum")),
)

AROON = NodeType(
    name="aroon",
    category="indicator",
    doc="Aroon down/up (0-100): how recently the window's lowest low and highest high occurred.",
    kernel=kernels.k_aroon,
    inputs=(bar_series("high"), bar_series("low")),
    outputs=(
        float_out("down", "100 * (period - bars since the lowest low) / period"),
        float_out("up", "100 * (period - bars since the highest high) / period"),
    ),
    params=(period(14),),
    lookback=_period,
    warmup_doc="period bars",
    kernel_params=lambda p: (float(integer(p, "period")), float(kernels.AroonMode.DOWN_UP)),
)

AROONOSC = NodeType(
    name="aroonosc",
    category="indicator",
    doc="Aroon oscillator (-100-100): Aroon up - Aroon down.",
    kernel=kernels.k_aroon,
    inputs=(bar_series("high"), bar_series("low")),
    outputs=(float_out(),),
    params=(period(14),),
    lookback=_period,
    warmup_doc="period bars",
    kernel_params=lambda p: (float(integer(p, "period")), float(kernels.AroonMode.OSCILLATOR)),
)

TRIX = _single(
    "trix",
    "TRIX: one-bar rate of change (percent) of a triple-smoothed EMA.",
    kernels.k_trix,
    30,
    lookback=lambda p: 3 * (integer(p, "period") - 1) + 1,
    warmup_doc="3 * (period - 1) + 1 bars",
)


def _ultosc_periods(p: ResolvedParams) -> tuple[float, ...]:
    """TA-Lib sorts the three periods: weight 4 goes to the shortest, 1 to the longest."""
    return tuple(float(v) for v in sorted(integer(p, f"period{i}") for i in (1, 2, 3)))


ULTOSC = NodeType(
    name="ultosc",
    category="indicator",
    doc="Ultimate oscillator (0-100): buying pressure over three windows, weighted 4:2:1.",
    kernel=kernels.k_ultosc,
    inputs=_HLC,
    outputs=(float_out(),),
    params=(
        period(7, minimum=1, name="period1", doc="shortest window (weight 4)"),
        period(14, minimum=1, name="period2", doc="middle window (weight 2)"),
        period(28, minimum=1, name="period3", doc="longest window (weight 1)"),
    ),
    lookback=lambda p: max(integer(p, f"period{i}") for i in (1, 2, 3)),
    warmup_doc="max(period1, period2, period3) bars",
    kernel_params=_ultosc_periods,
)

NATR = NodeType(
    name="natr",
    category="indicator",
    doc="Normalized ATR: Wilder ATR as a percent of the close.",
    kernel=kernels.k_natr,
    inputs=_HLC,
    outputs=(float_out(),),
    params=(period(14, minimum=1),),
    lookback=_period,
    warmup_doc="period bars",
    kernel_params=_period_param,
)

PPO = NodeType(
    name="ppo",
    category="indicator",
    doc="Percentage price oscillator: (fast MA - slow MA) / slow MA * 100.",
    kernel=kernels.k_ppo,
    inputs=(series(),),
    outputs=(float_out(),),
    params=(
        period(12, name="fast", doc="fast MA period"),
        period(26, name="slow", doc="slow MA period (swapped with fast if smaller, as TA-Lib)"),
        ParamSpec(
            "ma",
            "choice",
            "moving average: sma (TA-Lib's default) or ema",
            default="sma",
            choices=("sma", "ema"),
        ),
    ),
    lookback=lambda p: max(integer(p, "fast"), integer(p, "slow")) - 1,
    warmup_doc="max(fast, slow) - 1 bars",
    kernel_params=lambda p: (
        float(integer(p, "fast")),
        float(integer(p, "slow")),
        float(kernels.MovingAverage[str(p["ma"]).upper()]),
    ),
)

STOCHRSI = NodeType(
    name="stochrsi",
    category="indicator",
    doc="Stochastic RSI (0-100): fast stochastic %K of the RSI and %D, its SMA.",
    kernel=kernels.k_stochrsi,
    inputs=(series(),),
    outputs=(float_out("k", "fast %K of the RSI"), float_out("d", "SMA of %K")),
    params=(
        period(14, name="period", doc="RSI period"),
        period(5, name="fastk_period", minimum=1, doc="stochastic window over the RSI"),
        period(3, name="fastd_period", minimum=1, doc="SMA of %K giving %D"),
    ),
    lookback=lambda p: (
        integer(p, "period") + integer(p, "fastk_period") - 1 + integer(p, "fastd_period") - 1
    ),
    warmup_doc="period + fastk_period + fastd_period - 2 bars",
    kernel_params=lambda p: (
        float(integer(p, "period")),
        float(integer(p, "fastk_period")),
        float(integer(p, "fastd_period")),
    ),
)

KAMA = _single(
    "kama",
    "Kaufman adaptive moving average: an EMA whose speed follows the efficiency ratio.",
    kernels.k_kama,
    30,
    lookback=_period,
    warmup_doc="period bars",
)

LINEARREG_SLOPE = _single(
    "linearreg_slope",
    "Slope per bar of the least-squares line through the window (TA-Lib LINEARREG_SLOPE).",
    kernels.k_linreg_slope,
    14,
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
    MFI,
    SAR,
    AROON,
    AROONOSC,
    TRIX,
    ULTOSC,
    NATR,
    PPO,
    STOCHRSI,
    KAMA,
    LINEARREG_SLOPE,
)
