"""Built-in strategy templates: real graphs whose tunables are graph ``parameters``.

A template is instantiated by choosing values for its parameters (each checked against its
range by the engine); the values become the parameters' defaults in the user's copy of the
graph, so a later sweep still varies them within the template's ranges.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from algotrade.engine import Plan, compile_graph
from algotrade.errors import NotFound


def _node(node_id: str, node_type: str, **params: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "params": params}


def _edges(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"from": source, "to": target} for source, target in pairs]


def _ref(name: str) -> dict[str, str]:
    return {"$param": name}


def _tunable(
    default: float, low: float, high: float, step: float, doc: str
) -> dict[str, float | str]:
    return {"default": default, "min": low, "max": high, "step": step, "doc": doc}


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    summary: str
    doc: str
    tags: tuple[str, ...]
    graph: Mapping[str, Any] = field(repr=False)

    def graph_copy(self) -> dict[str, Any]:
        return copy.deepcopy(dict(self.graph))


def _moving_average_cross(kind: str, fast: int, slow: int) -> dict[str, Any]:
    return {
        "nodes": [
            _node("close", "price", field="close"),
            _node("fast_ma", kind, period=_ref("fast")),
            _node("slow_ma", kind, period=_ref("slow")),
            _node("cross_up", "cross_above"),
            _node("cross_down", "cross_below"),
            _node("entry", "enter_long"),
            _node("exit", "exit_long"),
        ],
        "edges": _edges(
            ("close.out", "fast_ma.in"),
            ("close.out", "slow_ma.in"),
            ("fast_ma.out", "cross_up.a"),
            ("slow_ma.out", "cross_up.b"),
            ("fast_ma.out", "cross_down.a"),
            ("slow_ma.out", "cross_down.b"),
            ("cross_up.out", "entry.in"),
            ("cross_down.out", "exit.in"),
        ),
        "parameters": {
            "fast": _tunable(fast, 2, 100, 1, f"period of the fast {kind.upper()}"),
            "slow": _tunable(slow, 5, 400, 1, f"period of the slow {kind.upper()}"),
        },
    }


SMA_CROSS = Template(
    key="sma_cross",
    name="SMA crossover",
    summary="Long when the fast SMA crosses above the slow SMA; out when it crosses below.",
    doc=(
        "The classic trend-following crossover. Two simple moving averages of the close: a "
        "cross of the fast one above the slow one enters long, the opposite cross exits. "
        "Works in trending markets, whipsaws in ranges; a wider gap between the periods trades "
        "less often and later."
    ),
    tags=("trend", "moving-average"),
    graph=_moving_average_cross("sma", 10, 30),
)

EMA_CROSS = Template(
    key="ema_cross",
    name="EMA crossover",
    summary="Long when the fast EMA crosses above the slow EMA; out when it crosses below.",
    doc=(
        "Like the SMA crossover with exponential moving averages (TA-Lib convention: seeded "
        "with the SMA of the first period), which react faster to recent prices. 12/26 are "
        "the periods MACD uses."
    ),
    tags=("trend", "moving-average"),
    graph=_moving_average_cross("ema", 12, 26),
)

RSI_MEAN_REVERSION = Template(
    key="rsi_mean_reversion",
    name="RSI mean reversion",
    summary="Long when RSI climbs back above the oversold level; out when it reaches overbought.",
    doc=(
        "Buys weakness: when the RSI (Wilder smoothing) rises back through the oversold level "
        "the selling is taken to be exhausted and a long is opened; it is closed when RSI "
        "crosses above the overbought level. A percent stop-loss limits the damage when the "
        "dip keeps going. Suits range-bound markets and index ETFs."
    ),
    tags=("mean-reversion", "oscillator"),
    graph={
        "nodes": [
            _node("close", "price", field="close"),
            _node("rsi", "rsi", period=_ref("period")),
            _node("oversold_level", "constant", value=_ref("oversold")),
            _node("overbought_level", "constant", value=_ref("overbought")),
            _node("recovers", "cross_above"),
            _node("stretched", "cross_above"),
            _node("entry", "enter_long"),
            _node("exit", "exit_long"),
            _node("stop", "stop_loss", mode="percent", percent=_ref("stop_percent")),
        ],
        "edges": _edges(
            ("close.out", "rsi.in"),
            ("rsi.out", "recovers.a"),
            ("oversold_level.out", "recovers.b"),
            ("rsi.out", "stretched.a"),
            ("overbought_level.out", "stretched.b"),
            ("recovers.out", "entry.in"),
            ("stretched.out", "exit.in"),
        ),
        "parameters": {
            "period": _tunable(14, 2, 50, 1, "RSI period"),
            "oversold": _tunable(30, 5, 50, 1, "RSI level below which the market is oversold"),
            "overbought": _tunable(70, 50, 95, 1, "RSI level at which the long is closed"),
            "stop_percent": _tunable(5.0, 0.5, 20.0, 0.5, "stop-loss distance, % of entry"),
        },
    },
)

BOLLINGER_BREAKOUT = Template(
    key="bollinger_breakout",
    name="Bollinger Band breakout",
    summary="Long when the close breaks above the upper band; out when it falls below the middle.",
    doc=(
        "A volatility breakout: a close above the upper Bollinger Band (SMA plus a multiple of "
        "the standard deviation) signals expanding momentum; the trade ends when the close "
        "falls back below the middle band. Wider deviations give fewer, stronger signals."
    ),
    tags=("breakout", "volatility"),
    graph={
        "nodes": [
            _node("close", "price", field="close"),
            _node(
                "bands",
                "bbands",
                period=_ref("period"),
                dev_up=_ref("deviations"),
                dev_down=_ref("deviations"),
            ),
            _node("breakout", "cross_above"),
            _node("fades", "cross_below"),
            _node("entry", "enter_long"),
            _node("exit", "exit_long"),
        ],
        "edges": _edges(
            ("close.out", "bands.in"),
            ("close.out", "breakout.a"),
            ("bands.upper", "breakout.b"),
            ("close.out", "fades.a"),
            ("bands.middle", "fades.b"),
            ("breakout.out", "entry.in"),
            ("fades.out", "exit.in"),
        ),
        "parameters": {
            "period": _tunable(20, 5, 100, 1, "period of the middle band (SMA)"),
            "deviations": _tunable(2.0, 0.5, 4.0, 0.25, "band width in standard deviations"),
        },
    },
)

MACD_TREND = Template(
    key="macd_trend",
    name="MACD trend",
    summary="Long on a bullish MACD/signal cross while price is above its long-term EMA.",
    doc=(
        "MACD (fast EMA minus slow EMA) crossing above its signal line shows momentum turning "
        "up; the long-term EMA filter takes those crosses only in an uptrend. The long is "
        "closed when MACD crosses back below its signal line."
    ),
    tags=("trend", "momentum"),
    graph={
        "nodes": [
            _node("close", "price", field="close"),
            _node(
                "macd",
                "macd",
                fast=_ref("fast"),
                slow=_ref("slow"),
                signal=_ref("signal"),
            ),
            _node("trend", "ema", period=_ref("trend")),
            _node("bull_cross", "cross_above"),
            _node("bear_cross", "cross_below"),
            _node("uptrend", "gt"),
            _node("go_long", "and"),
            _node("entry", "enter_long"),
            _node("exit", "exit_long"),
        ],
        "edges": _edges(
            ("close.out", "macd.in"),
            ("close.out", "trend.in"),
            ("macd.macd", "bull_cross.a"),
            ("macd.signal", "bull_cross.b"),
            ("macd.macd", "bear_cross.a"),
            ("macd.signal", "bear_cross.b"),
            ("close.out", "uptrend.a"),
            ("trend.out", "uptrend.b"),
            ("bull_cross.out", "go_long.a"),
            ("uptrend.out", "go_long.b"),
            ("go_long.out", "entry.in"),
            ("bear_cross.out", "exit.in"),
        ),
        "parameters": {
            "fast": _tunable(12, 2, 50, 1, "fast EMA period of MACD"),
            "slow": _tunable(26, 5, 100, 1, "slow EMA period of MACD"),
            "signal": _tunable(9, 2, 50, 1, "EMA period of the signal line"),
            "trend": _tunable(200, 20, 400, 10, "period of the trend-filter EMA"),
        },
    },
)

DONCHIAN_BREAKOUT = Template(
    key="donchian_breakout",
    name="Donchian channel breakout",
    summary="Long when the close clears the prior N-bar high; out below the prior M-bar low.",
    doc=(
        "The Turtle-style breakout: enter when the close rises above the highest high of the "
        "previous entry_period bars, exit when it falls below the lowest low of the previous "
        "exit_period bars. The channels are lagged one bar, so a bar is compared with the "
        "channel before it (a bar's own high is always inside its own channel)."
    ),
    tags=("breakout", "trend"),
    graph={
        "nodes": [
            _node("close", "price", field="close"),
            _node("entry_channel", "donchian", period=_ref("entry_period")),
            _node("exit_channel", "donchian", period=_ref("exit_period")),
            _node("prior_high", "lag", n=1),
            _node("prior_low", "lag", n=1),
            _node("breakout", "cross_above"),
            _node("breakdown", "cross_below"),
            _node("entry", "enter_long"),
            _node("exit", "exit_long"),
        ],
        "edges": _edges(
            ("entry_channel.upper", "prior_high.in"),
            ("exit_channel.lower", "prior_low.in"),
            ("close.out", "breakout.a"),
            ("prior_high.out", "breakout.b"),
            ("close.out", "breakdown.a"),
            ("prior_low.out", "breakdown.b"),
            ("breakout.out", "entry.in"),
            ("breakdown.out", "exit.in"),
        ),
        "parameters": {
            "entry_period": _tunable(20, 5, 100, 1, "bars of the breakout channel"),
            "exit_period": _tunable(10, 2, 50, 1, "bars of the exit channel"),
        },
    },
)

STOCHASTIC_OVERSOLD = Template(
    key="stochastic_oversold",
    name="Stochastic oversold",
    summary="Long when %K crosses above %D in the oversold zone; out when %K reaches overbought.",
    doc=(
        "The slow stochastic oscillator places the close within its recent high-low range. A "
        "cross of %K above %D while %K is still below the oversold level marks a turn up "
        "from an oversold market; the long is closed when %K crosses above the overbought "
        "level."
    ),
    tags=("mean-reversion", "oscillator"),
    graph={
        "nodes": [
            _node(
                "stoch",
                "stoch",
                fastk_period=_ref("k_period"),
                slowk_period=3,
                slowd_period=_ref("d_period"),
            ),
            _node("oversold_level", "constant", value=_ref("oversold")),
            _node("overbought_level", "constant", value=_ref("overbought")),
            _node("turns_up", "cross_above"),
            _node("is_oversold", "lt"),
            _node("go_long", "and"),
            _node("stretched", "cross_above"),
            _node("entry", "enter_long"),
            _node("exit", "exit_long"),
        ],
        "edges": _edges(
            ("stoch.k", "turns_up.a"),
            ("stoch.d", "turns_up.b"),
            ("stoch.k", "is_oversold.a"),
            ("oversold_level.out", "is_oversold.b"),
            ("turns_up.out", "go_long.a"),
            ("is_oversold.out", "go_long.b"),
            ("stoch.k", "stretched.a"),
            ("overbought_level.out", "stretched.b"),
            ("go_long.out", "entry.in"),
            ("stretched.out", "exit.in"),
        ),
        "parameters": {
            "k_period": _tunable(14, 5, 50, 1, "raw %K window"),
            "d_period": _tunable(3, 1, 10, 1, "SMA period of %D"),
            "oversold": _tunable(20, 5, 40, 1, "%K level below which the market is oversold"),
            "overbought": _tunable(80, 60, 95, 1, "%K level at which the long is closed"),
        },
    },
)

ATR_TRAILING_STOP_TREND = Template(
    key="atr_trailing_stop_trend",
    name="ATR trailing-stop trend",
    summary="Long when the close crosses above its EMA, protected by ATR stops, sized by risk.",
    doc=(
        "Trend entry with volatility-based risk management: enter when the close crosses "
        "above the trend EMA, exit when it crosses below. An ATR trailing stop follows the "
        "trade, an initial ATR stop-loss bounds the first loss, and the position is sized so "
        "that hitting the stop loses risk_percent of equity."
    ),
    tags=("trend", "risk-management"),
    graph={
        "nodes": [
            _node("close", "price", field="close"),
            _node("trend", "ema", period=_ref("trend_period")),
            _node("cross_up", "cross_above"),
            _node("cross_down", "cross_below"),
            _node("entry", "enter_long"),
            _node("exit", "exit_long"),
            _node(
                "trail",
                "trailing_stop",
                mode="atr",
                atr_period=_ref("atr_period"),
                atr_multiple=_ref("trail_multiple"),
            ),
            _node(
                "stop",
                "stop_loss",
                mode="atr",
                atr_period=_ref("atr_period"),
                atr_multiple=_ref("stop_multiple"),
            ),
            _node("size", "position_size", mode="risk", risk_percent=_ref("risk_percent")),
        ],
        "edges": _edges(
            ("close.out", "trend.in"),
            ("close.out", "cross_up.a"),
            ("trend.out", "cross_up.b"),
            ("close.out", "cross_down.a"),
            ("trend.out", "cross_down.b"),
            ("cross_up.out", "entry.in"),
            ("cross_down.out", "exit.in"),
        ),
        "parameters": {
            "trend_period": _tunable(50, 10, 300, 5, "period of the trend EMA"),
            "atr_period": _tunable(14, 5, 50, 1, "ATR period of both stops"),
            "trail_multiple": _tunable(3.0, 1.0, 6.0, 0.5, "trailing stop distance in ATRs"),
            "stop_multiple": _tunable(2.0, 0.5, 5.0, 0.5, "initial stop distance in ATRs"),
            "risk_percent": _tunable(1.0, 0.25, 5.0, 0.25, "equity lost when the stop is hit"),
        },
    },
)

BUILT_IN_TEMPLATES: tuple[Template, ...] = (
    SMA_CROSS,
    EMA_CROSS,
    RSI_MEAN_REVERSION,
    BOLLINGER_BREAKOUT,
    MACD_TREND,
    DONCHIAN_BREAKOUT,
    STOCHASTIC_OVERSOLD,
    ATR_TRAILING_STOP_TREND,
)


class TemplateCatalog:
    """The templates, each compiled once (a template that does not compile fails startup)."""

    def __init__(self, templates: Iterable[Template] = BUILT_IN_TEMPLATES) -> None:
        self._entries: dict[str, tuple[Template, Plan]] = {}
        for template in templates:
            if template.key in self._entries:
                raise ValueError(f"template key {template.key!r} used twice")
            self._entries[template.key] = (template, compile_graph(template.graph))

    def __iter__(self) -> Iterator[tuple[Template, Plan]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> tuple[Template, Plan]:
        entry = self._entries.get(key)
        if entry is None:
            raise NotFound(f"there is no template {key!r}")
        return entry

    def instantiate(self, key: str, values: Mapping[str, Any]) -> tuple[Template, dict[str, Any]]:
        """The template's graph with ``values`` as its parameters' defaults.

        Raises `algotrade.engine.GraphInvalid` (422) for an unknown parameter or a value
        outside its range or of the wrong type.
        """
        template, plan = self.get(key)
        tuned = plan.with_params(values)
        graph = template.graph_copy()
        for name, spec in graph.get("parameters", {}).items():
            spec["default"] = tuned.values[name]
        graph.setdefault("meta", {})["template"] = template.key
        return template, graph
